/**
 * Shared by the relay tests: a real server with the relay on port 0 and a
 * temporary data dir, members of a conversation built with the app's own
 * code (account, envelope, conversation doc), and a WebSocket client that
 * speaks the relay protocol. Test-only; nothing else imports it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import * as Y from 'yjs';
import {
	ConversationDoc,
	LOCAL_ORIGIN,
	updateSince,
	type EnvelopeEntry
} from '../../../src/lib/conversation/index.ts';
import {
	createSigner,
	deriveKey,
	newRoomId,
	newSecretKey,
	toBase64Url,
	utf8Encode,
	type RoomId,
	type SecretKey,
	type Signer
} from '../../../src/lib/crypto/index.ts';
import { clientIdFor, sealEnvelope } from '../../../src/lib/envelope/index.ts';
import { createAccount } from '../../../src/lib/identity/index.ts';
import { loadConfig, type Config } from '../config.ts';
import { createLogger } from '../log.ts';
import { createServer, type KithServer } from '../server.ts';
import { removeTempDirs, tempDir } from '../test-helpers.ts';
import { accessMessage } from './challenge.ts';
import { attachRelay, type Relay, type RelayOptions } from './relay.ts';
import * as decoding from 'lib0/decoding';
import { readRelayMessage, type RelayMessage } from '../../../src/lib/sync/messages.ts';
import { MESSAGE_AWARENESS, writeSyncStep1, writeSyncStep2, writeSyncUpdate } from './wire.ts';

/**
 * A frame the relay sent, read with the client's own strict reader (so the
 * tests check the relay against the decoder real clients use); `kind` names
 * the message, and a frame that reader refuses is `other`.
 */
export type RelayFrame =
	| (Exclude<RelayMessage, { type: 'awareness' }> extends infer M
			? M extends { type: infer K }
				? Omit<M, 'type'> & { kind: K }
				: never
			: never)
	| { kind: 'awareness'; update: Uint8Array }
	| { kind: 'other' };

export function readRelayFrame(bytes: Uint8Array): RelayFrame {
	// Awareness is opaque to the relay, and these tests forward arbitrary
	// states; the client reader would judge them, so only its framing is read.
	if (bytes[0] === MESSAGE_AWARENESS) {
		try {
			const decoder = decoding.createDecoder(bytes.subarray(1));
			const update = decoding.readVarUint8Array(decoder);
			if (!decoding.hasContent(decoder)) return { kind: 'awareness', update };
		} catch {
			// falls through to 'other'
		}
		return { kind: 'other' };
	}
	try {
		const { type, ...rest } = readRelayMessage(bytes);
		return { kind: type, ...rest } as RelayFrame;
	} catch {
		return { kind: 'other' };
	}
}

export const root = fileURLToPath(new URL('../../..', import.meta.url));

export interface RunningRelay {
	server: KithServer;
	relay: Relay;
	config: Config;
	/** http://127.0.0.1:port */
	base: string;
	dataDir: string;
	/** Every log line, parsed. */
	logs: Array<Record<string, unknown>>;
	close(): Promise<void>;
}

const running: Array<{ close(): Promise<unknown> }> = [];
const sockets = new Set<WebSocket>();
const children: ChildProcess[] = [];

/** For afterEach: closes every client, server and child process, removes temp dirs. */
export async function cleanUp(): Promise<void> {
	for (const ws of sockets) ws.terminate();
	sockets.clear();
	for (const child of children.splice(0)) {
		if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
	}
	await Promise.all(running.splice(0).map((r) => r.close()));
	await removeTempDirs();
}

export async function startRelay(
	options: { dataDir?: string; config?: Partial<Config>; relay?: RelayOptions } = {}
): Promise<RunningRelay> {
	const dataDir = options.dataDir ?? (await tempDir('kith-relay-'));
	const logs: Array<Record<string, unknown>> = [];
	const logger = createLogger({
		level: 'debug',
		write: (line) => logs.push(JSON.parse(line) as Record<string, unknown>)
	});
	const config: Config = {
		...loadConfig({}, root),
		host: '127.0.0.1',
		port: 0,
		dataDir,
		staticDir: join(dataDir, 'no-build'),
		...options.config
	};
	const server = createServer(config, { logger });
	const relay = attachRelay(server, config, { logger, ...options.relay });
	running.push(server);
	const { url } = await server.listen();
	return { server, relay, config, base: url, dataDir, logs, close: () => server.close() };
}

/** The room's access capability, derived as docs/protocol.md says. */
export function roomCapability(epochKey: Uint8Array, roomId: string): Promise<Signer> {
	return createSigner(deriveKey(epochKey, `kith/room-access/${roomId}`, 32));
}

export async function fetchChallenge(
	base: string,
	roomId: string
): Promise<{ nonce: string; expiresAt: number }> {
	const res = await fetch(`${base}/sync/challenge?room=${encodeURIComponent(roomId)}`);
	if (res.status !== 200) throw new Error(`challenge: HTTP ${res.status}`);
	return (await res.json()) as { nonce: string; expiresAt: number };
}

/** `cap`, `nonce` and `sig` for one connection, from a fresh challenge. */
export async function accessParams(
	base: string,
	roomId: string,
	cap: Signer
): Promise<{ cap: string; nonce: string; sig: string }> {
	const { nonce } = await fetchChallenge(base, roomId);
	const sig = await cap.sign(accessMessage(roomId, nonce));
	return { cap: toBase64Url(cap.publicKey), nonce, sig: toBase64Url(sig) };
}

export async function metricsText(base: string): Promise<string> {
	return (await fetch(`${base}/metrics`)).text();
}

export function refusalCount(metrics: string, reason: string): number {
	const m = new RegExp(`^kith_refusals_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(metrics);
	return m ? Number(m[1]) : 0;
}

/** A conversation generation: its room id and epoch key. */
export class Conversation {
	readonly roomId: RoomId = newRoomId();
	readonly epochKey: SecretKey = newSecretKey();
	#cap: Promise<Signer> | undefined;

	capability(): Promise<Signer> {
		this.#cap ??= roomCapability(this.epochKey, this.roomId);
		return this.#cap;
	}
}

/** A device of a member: an account's device key and its own copy of the conversation doc. */
export class Member {
	private constructor(
		readonly conversation: Conversation,
		readonly signer: Signer,
		readonly doc: ConversationDoc
	) {}

	static async create(conversation: Conversation): Promise<Member> {
		const { keyring } = await createAccount();
		const signer = keyring.deviceSigner;
		return new Member(
			conversation,
			signer,
			new ConversationDoc(conversation.roomId, clientIdFor(signer.publicKey))
		);
	}

	get client(): number {
		return this.doc.clientId;
	}

	/** Seals one envelope per text for the next clocks and inserts them; returns the update. */
	async write(texts: string[]): Promise<{ update: Uint8Array; entries: EnvelopeEntry[] }> {
		const base = this.doc.nextClock();
		const entries = await Promise.all(texts.map((text, i) => this.seal(text, base + i)));
		let update: Uint8Array | undefined;
		const capture = (u: Uint8Array, origin: unknown) => {
			if (origin === LOCAL_ORIGIN) update = u;
		};
		this.doc.doc.on('update', capture);
		this.doc.insertLocal(entries);
		this.doc.doc.off('update', capture);
		return { update: update!, entries };
	}

	seal(text: string, clock: number) {
		return sealEnvelope({
			clock,
			roomId: this.conversation.roomId,
			epoch: 0,
			key: this.conversation.epochKey,
			signer: this.signer,
			plaintext: utf8Encode(text)
		});
	}
}

export function ids(doc: ConversationDoc): string[] {
	return [...doc.entries()].map((e) => e.id).sort();
}

export interface Closed {
	code: number;
	reason: string;
}

/**
 * A raw protocol client: records every frame the relay sends and lets a test
 * wait for one. With a `doc`, it also syncs: it answers the relay's step 1,
 * applies (through the doc rules) what arrives, and can send its writes.
 */
export class RelayClient {
	readonly frames: RelayFrame[] = [];
	readonly closed: Promise<Closed>;
	#waiters: Array<() => void> = [];
	#applying: Promise<unknown> = Promise.resolve();
	/** Updates a doc refused (should stay empty: the relay must not relay bad updates). */
	readonly docRefusals: string[] = [];

	private constructor(
		readonly ws: WebSocket,
		readonly doc: ConversationDoc | undefined
	) {
		sockets.add(ws);
		this.closed = new Promise((resolve) =>
			ws.once('close', (code, reason) => {
				sockets.delete(ws);
				this.#wake();
				resolve({ code, reason: reason.toString() });
			})
		);
		ws.on('error', () => {});
		ws.on('message', (data: Buffer) => {
			const frame = readRelayFrame(new Uint8Array(data));
			this.frames.push(frame);
			if (this.doc) this.#sync(frame);
			this.#wake();
		});
	}

	/** Connects with explicit query parameters (for tests of admission). */
	static raw(base: string, path: string, doc?: ConversationDoc): RelayClient {
		return new RelayClient(new WebSocket(`${base.replace(/^http/, 'ws')}${path}`), doc);
	}

	/** Fetches a challenge, signs it with the conversation's capability, connects. */
	static async join(
		base: string,
		conversation: Conversation,
		options: { doc?: ConversationDoc; ack?: boolean; cap?: Signer } = {}
	): Promise<RelayClient> {
		const cap = options.cap ?? (await conversation.capability());
		const params = new URLSearchParams(await accessParams(base, conversation.roomId, cap));
		if (options.ack !== false) params.set('ack', '1');
		const client = RelayClient.raw(base, `/sync/${conversation.roomId}?${params}`, options.doc);
		await client.opened();
		return client;
	}

	opened(): Promise<void> {
		return new Promise((resolve, reject) => {
			if (this.ws.readyState === WebSocket.OPEN) return resolve();
			this.ws.once('open', () => resolve());
			this.ws.once('error', reject);
		});
	}

	send(frame: Uint8Array): void {
		this.ws.send(frame);
	}

	sendUpdate(update: Uint8Array): void {
		this.send(writeSyncUpdate(update));
	}

	/** Asks for everything the relay has that `doc` lacks; resolves when it is applied. */
	async pull(): Promise<void> {
		const seen = this.frames.length;
		this.send(writeSyncStep1(Y.encodeStateVector(this.doc!.doc)));
		await this.next((f) => f.kind === 'sync-step2', seen);
		await this.#applying;
	}

	/** Waits for a frame matching `match` at index `from` or later. */
	async next(
		match: (frame: RelayFrame) => boolean,
		from = 0,
		timeoutMs = 10_000
	): Promise<RelayFrame> {
		const deadline = Date.now() + timeoutMs;
		for (;;) {
			const found = this.frames.slice(from).find(match);
			if (found) return found;
			if (this.ws.readyState === WebSocket.CLOSED) {
				throw new Error(`closed before the frame arrived; got ${this.kinds().join(', ')}`);
			}
			const left = deadline - Date.now();
			if (left <= 0) throw new Error(`no matching frame; got ${this.kinds().join(', ')}`);
			await new Promise<void>((resolve) => {
				const timer = setTimeout(resolve, left);
				this.#waiters.push(() => {
					clearTimeout(timer);
					resolve();
				});
			});
		}
	}

	/** Waits until `condition` holds (checked after every frame). */
	async until(condition: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
		const deadline = Date.now() + timeoutMs;
		while (!condition()) {
			await this.#applying;
			if (condition()) return;
			const left = deadline - Date.now();
			if (left <= 0 || this.ws.readyState === WebSocket.CLOSED) {
				throw new Error(`${what} not met; got ${this.kinds().join(', ')}`);
			}
			await new Promise<void>((resolve) => {
				const timer = setTimeout(resolve, Math.min(left, 200));
				this.#waiters.push(() => {
					clearTimeout(timer);
					resolve();
				});
			});
		}
	}

	/** The latest `kith-stored` state vector. */
	ackedState(): Map<number, number> {
		const acks = this.frames.filter((f) => f.kind === 'stored');
		const last = acks[acks.length - 1];
		return last ? Y.decodeStateVector(last.stateVector) : new Map();
	}

	/** Waits until the relay acknowledged `client`'s items up to `clock` (exclusive). */
	async acked(client: number, clock: number, timeoutMs = 10_000): Promise<void> {
		await this.until(
			() => (this.ackedState().get(client) ?? 0) >= clock,
			timeoutMs,
			`ack of ${client}@${clock}`
		);
	}

	refusals(): string[] {
		return this.frames.flatMap((f) => (f.kind === 'refused' ? [f.reason] : []));
	}

	kinds(): string[] {
		return this.frames.map((f) =>
			f.kind === 'refused' || f.kind === 'permission-denied' ? `${f.kind}(${f.reason})` : f.kind
		);
	}

	close(): Promise<Closed> {
		this.ws.close();
		return this.closed;
	}

	#sync(frame: RelayFrame): void {
		const doc = this.doc!;
		if (frame.kind === 'sync-step1') {
			this.send(writeSyncStep2(updateSince(doc, frame.stateVector)));
		} else if (frame.kind === 'sync-step2' || frame.kind === 'sync-update') {
			const update = frame.update;
			this.#applying = this.#applying.then(async () => {
				const result = await doc.applyRemote(update, this);
				if (!result.ok) this.docRefusals.push(result.reason);
				this.#wake();
			});
		}
	}

	#wake(): void {
		for (const wake of this.#waiters.splice(0)) wake();
	}
}

/**
 * Runs the server's entry point in a child process and reads its output. The
 * child is node itself with tsx as a loader, not the `tsx` wrapper: SIGKILL
 * must reach the process that holds the database (a wrapper cannot relay it).
 */
export function spawnMain(env: Record<string, string>) {
	const child = spawn(process.execPath, ['--import', 'tsx', 'sync-server/src/main.ts'], {
		cwd: root,
		env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'debug', ...env },
		stdio: ['ignore', 'pipe', 'pipe']
	});
	children.push(child);
	let stdout = '';
	let stderr = '';
	const listening = new Promise<string>((resolve, reject) => {
		createInterface({ input: child.stdout! }).on('line', (line) => {
			stdout += line + '\n';
			const m = /^Kith listening on (http:\/\/\S+) /.exec(line);
			if (m) resolve(m[1]!);
		});
		child.once('exit', () => reject(new Error(`exited before listening: ${stderr}`)));
	});
	child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
	const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
	return { child, listening, exited, output: () => ({ stdout, stderr }) };
}

export { tempDir };
