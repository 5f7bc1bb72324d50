/**
 * Benchmark 5, message latency browser → relay → browser: two pages of the
 * same browser each join one room, page A sends paced messages, page B
 * records when each is readable. Every time is `performance.timeOrigin +
 * performance.now()`, comparable across the two pages. B echoes each message
 * (it seals or inserts a reply) so A also has a round trip on its own clock.
 *
 * Kith: each page has its own device key and a ConversationDoc synced by the
 * app's RelayConnection with the real relay. A sends as the app does: a
 * `send` operation, encoded, sealed into an envelope for the doc's next
 * clock, inserted locally (the connection sends the insert's update). B hears
 * of the entry when the connection applied the relay's update (doc rules
 * checked: every signature verified), then opens it (AES-GCM decrypt, as the
 * app does with `verified: true`) and decodes the operation.
 *
 * Baseline: the same texts, unencrypted, as Y.Map entries of a plain Y.Doc
 * synced by the stock y-websocket provider with `@y/websocket-server`.
 */
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import {
	ConversationDoc,
	decodeBatch,
	encodeBatch,
	HlcClock,
	makeSend,
	type EnvelopeEntry
} from '$lib/conversation';
import {
	createSigner,
	fromBase64Url,
	newSigningSeed,
	type RoomId,
	type SecretKey
} from '$lib/crypto';
import { useWasmSha256 } from '$lib/crypto/wasm-sha256';
import { clientIdFor, openEnvelope, sealEnvelope } from '$lib/envelope';
import { RelayConnection, type SyncLogger } from '$lib/sync';
import { messageText } from './texts';

export type Role = 'sender' | 'echoer';

export interface LatencyRun {
	/** Per message index: when A started sending it (before encoding/sealing). */
	sent: number[];
	/** Per message index: when A's update for it went to its socket (after sealing). Filled on A. */
	handedOver: number[];
	/** Per message index: when the frame that carried it reached B's socket. Filled on B. */
	frame: number[];
	/** Per message index: when B had it open, or NaN. Filled on B. */
	received: number[];
	/** Per message index: when A had B's echo open, or NaN. Filled on A. */
	echoed: number[];
}

export interface RelayBenchApi {
	/** Join `roomId` on the Kith relay at `relayUrl`; resolves when connected and synced. */
	kithJoin(relayUrl: string, roomId: string, epochKey: string, role: Role): Promise<void>;
	/** Join room `room` on the stock server at `serverUrl` (ws://…); resolves when synced. */
	stockJoin(serverUrl: string, room: string, role: Role): Promise<void>;
	/** On A: send `count` messages, one every `intervalMs`, then wait up to `settleMs` for the echoes. */
	send(count: number, intervalMs: number, settleMs: number): Promise<LatencyRun>;
	/** On B: what arrived. */
	results(): LatencyRun;
	leave(): Promise<void>;
	visibility(): string;
	/** Cross-origin isolated: performance.now() in 5 µs steps (else 100 µs). */
	isolated(): boolean;
}

declare global {
	interface Window {
		kithRelayBench?: RelayBenchApi;
	}
}

const now = (): number => performance.timeOrigin + performance.now();
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const quiet: SyncLogger = {
	debug: () => {},
	info: () => {},
	warn: (message, fields) => console.warn(`kith:sync ${message}`, fields ?? ''),
	error: (message, fields) => console.error(`kith:sync ${message}`, fields ?? '')
};

/** A message's text ends with ` #<index>` (texts.ts); echoes are `echo <index>`. */
function indexOf(text: string): { index: number; echo: boolean } | null {
	const echo = /^echo (\d+)$/.exec(text);
	if (echo) return { index: Number(echo[1]), echo: true };
	const message = / #(\d+)$/.exec(text);
	return message ? { index: Number(message[1]), echo: false } : null;
}

interface Session {
	/** Send one text (a message, or an echo); resolves once its update went to the socket. */
	send(text: string): Promise<void>;
	close(): void;
}

let session: Session | null = null;
const emptyRun = (): LatencyRun => ({
	sent: [],
	handedOver: [],
	frame: [],
	received: [],
	echoed: []
});
let run: LatencyRun = emptyRun();
/** When the last frame reached this page's socket (messages are paced: one at a time). */
let lastFrameAt = Number.NaN;

/** The browser's WebSocket, noting when each frame arrives before the client sees it. */
class TimedWebSocket extends WebSocket {
	constructor(url: string | URL, protocols?: string | string[]) {
		super(url, protocols);
		this.addEventListener('message', () => {
			lastFrameAt = now();
		});
	}
}
let role: Role = 'sender';
let echoes = Promise.resolve();

/** Both systems: what a page does when a text becomes readable. */
function arrived(text: string, at: number): void {
	const found = indexOf(text);
	if (!found) return;
	if (found.echo) {
		if (role === 'sender') run.echoed[found.index] = at;
		return;
	}
	if (role !== 'echoer') return;
	run.received[found.index] = at;
	run.frame[found.index] = lastFrameAt;
	// Replies go out one at a time, in order, as a person's would.
	echoes = echoes.then(() => session?.send(`echo ${found.index}`)).catch(() => {});
}

async function kithJoin(
	relayUrl: string,
	roomId: string,
	epochKey: string,
	as: Role
): Promise<void> {
	role = as;
	run = emptyRun();
	// As the app's composition root does (createApp).
	await useWasmSha256();
	const key = fromBase64Url(epochKey) as SecretKey;
	const signer = await createSigner(newSigningSeed());
	const clock = new HlcClock();
	const cdoc = new ConversationDoc(roomId as RoomId, clientIdFor(signer.publicKey));
	const connection = new RelayConnection({
		relayUrl,
		roomId: roomId as RoomId,
		cdoc,
		capabilityIkm: key,
		WebSocketImpl: TimedWebSocket,
		logger: quiet,
		networkEvents: null
	});
	cdoc.onEntries((entries: EnvelopeEntry[], origin: unknown) => {
		if (origin !== connection) return;
		for (const entry of entries) {
			// The connection applied it only after the doc rules verified its signature.
			openEnvelope(entry.bytes, {
				roomId: roomId as RoomId,
				keyForEpoch: () => key,
				verified: true
			}).then(
				(opened) => {
					const at = now();
					for (const op of decodeBatch(opened.plaintext).ops) {
						if (op.type === 'send') arrived(op.text, at);
					}
				},
				(error: unknown) => console.error('could not open an envelope', error)
			);
		}
	});
	let sealing = Promise.resolve();
	session = {
		send(text) {
			// One at a time: each envelope is sealed for the doc's next clock.
			const step = sealing.then(async () => {
				const plaintext = encodeBatch({ ops: [makeSend(clock, text)] });
				const entry = await sealEnvelope({
					clock: cdoc.nextClock(),
					roomId: roomId as RoomId,
					epoch: 0,
					key,
					signer,
					plaintext
				});
				cdoc.insertLocal([entry]);
			});
			sealing = step.catch(() => {});
			return step;
		},
		close() {
			connection.destroy();
			cdoc.destroy();
		}
	};
	await new Promise<void>((resolve, reject) => {
		const timer = setTimeout(
			() => reject(new Error('the Kith relay did not sync in 20 s')),
			20_000
		);
		const done = () => {
			clearTimeout(timer);
			resolve();
		};
		if (connection.synced) done();
		connection.on('synced', done);
		connection.on('refused', (refusal) => {
			if (refusal.final) reject(new Error(`refused: ${refusal.code}`));
		});
	});
}

async function stockJoin(serverUrl: string, room: string, as: Role): Promise<void> {
	role = as;
	run = emptyRun();
	const doc = new Y.Doc();
	const map = doc.getMap<{ text: string; author: number; time: number }>('messages');
	// No BroadcastChannel: both pages share an origin, and must talk through the server.
	const provider = new WebsocketProvider(serverUrl, room, doc, {
		disableBc: true,
		WebSocketPolyfill: TimedWebSocket
	});
	map.observe((event) => {
		if (event.transaction.local) return;
		const at = now();
		for (const [key, change] of event.changes.keys) {
			if (change.action !== 'add') continue;
			const value = map.get(key);
			if (value) arrived(value.text, at);
		}
	});
	let n = 0;
	session = {
		async send(text) {
			map.set(`${doc.clientID}-${n++}`, { text, author: doc.clientID, time: Date.now() });
		},
		close() {
			provider.destroy();
			doc.destroy();
		}
	};
	await new Promise<void>((resolve, reject) => {
		const timer = setTimeout(
			() => reject(new Error('the stock server did not sync in 20 s')),
			20_000
		);
		const done = () => {
			clearTimeout(timer);
			resolve();
		};
		if (provider.synced) done();
		provider.on('sync', (synced: boolean) => {
			if (synced) done();
		});
	});
}

export const relayBench: RelayBenchApi = {
	kithJoin,
	stockJoin,

	async send(count, intervalMs, settleMs) {
		if (!session) throw new Error('not joined');
		const start = now();
		for (let i = 0; i < count; i++) {
			// On a fixed schedule, so a slow send does not bunch the next ones up.
			const due = start + i * intervalMs;
			const wait = due - now();
			if (wait > 0) await pause(wait);
			run.sent[i] = now();
			await session.send(messageText(i));
			// The connection sends an insert's update from the doc's update event, synchronously.
			run.handedOver[i] = now();
		}
		const deadline = now() + settleMs;
		while (now() < deadline && run.echoed.filter(Number.isFinite).length < count) await pause(20);
		return run;
	},

	results: () => run,

	async leave() {
		await echoes;
		session?.close();
		session = null;
	},

	visibility: () => document.visibilityState,
	isolated: () => crossOriginIsolated
};
