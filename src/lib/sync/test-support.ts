/**
 * Test support for the sync layer (Node only; imported by *.test.ts, never by
 * the app): devices that seal envelopes into conversation docs, a capturing
 * logger, polling, and a small scripted stand-in for a relay — a real HTTP
 * server and real WebSockets on loopback, whose behaviour each test writes.
 * The stand-in is for what a correct relay never does (forged updates, bad
 * frames); everything else is tested against the real relay.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket as NodeWebSocket, WebSocketServer } from 'ws';
import { ConversationDoc, type EnvelopeEntry } from '../conversation';
import {
	createSigner,
	newSigningSeed,
	randomBytes,
	toBase64Url,
	utf8Encode,
	type RoomId,
	type SecretKey,
	type Signer
} from '../crypto';
import { clientIdFor, sealEnvelope } from '../envelope';
import type { SyncLogger } from './relay-connection';

/** `ws` implements the browser API the connection uses; the DOM type differs in details only. */
export const WebSocketImpl = NodeWebSocket as unknown as typeof WebSocket;

export interface Device {
	signer: Signer;
	client: number;
}

export async function newDevice(): Promise<Device> {
	const signer = await createSigner(newSigningSeed());
	return { signer, client: clientIdFor(signer.publicKey) };
}

export function docFor(roomId: RoomId, device: Device): ConversationDoc {
	return new ConversationDoc(roomId, device.client);
}

/** Seal `texts` for the next clocks of `cdoc` and insert them, as the leader tab does. */
export async function write(
	cdoc: ConversationDoc,
	device: Device,
	key: SecretKey,
	...texts: string[]
): Promise<EnvelopeEntry[]> {
	const base = cdoc.nextClock();
	const entries = await Promise.all(
		texts.map((text, i) =>
			sealEnvelope({
				clock: base + i,
				roomId: cdoc.roomId,
				epoch: 0,
				key,
				signer: device.signer,
				plaintext: utf8Encode(text)
			})
		)
	);
	cdoc.insertLocal(entries);
	return entries;
}

export function ids(cdoc: ConversationDoc): string[] {
	return [...cdoc.entries()].map((entry) => entry.id).sort();
}

export interface LogLine {
	level: 'debug' | 'info' | 'warn' | 'error';
	message: string;
	fields: Record<string, unknown> | undefined;
}

export function captureLogger(): SyncLogger & { lines: LogLine[] } {
	const lines: LogLine[] = [];
	const at = (level: LogLine['level']) => (message: string, fields?: Record<string, unknown>) =>
		lines.push({ level, message, fields });
	return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Poll until `condition` holds; fails with `what` after `timeoutMs`. */
export async function until(
	condition: () => boolean,
	what: string,
	timeoutMs = 10_000
): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!condition()) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await sleep(10);
	}
}

export function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- a scripted relay stand-in ---------------------------------------------

export interface FakeSocket {
	ws: NodeWebSocket;
	url: URL;
	/** Binary frames received from the client, in order. */
	frames: Uint8Array[];
	send(bytes: Uint8Array | string): void;
	close(code?: number, reason?: string): void;
	closed: boolean;
}

export interface FakeRelay {
	url: string;
	/** Challenges handed out, in order. */
	nonces: string[];
	sockets: FakeSocket[];
	/** Answer for the next challenge requests: a status other than 200 fails them. */
	challengeStatus: number;
	/** Called for each new socket, after it is recorded. */
	onConnection: (socket: FakeSocket) => void;
	close(): Promise<void>;
}

export async function startFakeRelay(): Promise<FakeRelay> {
	const wss = new WebSocketServer({ noServer: true });
	const server: Server = createServer((req, res) => {
		const url = new URL(req.url ?? '/', 'http://relay.test');
		if (url.pathname === '/sync/challenge' && req.method === 'GET') {
			if (relay.challengeStatus !== 200) {
				res.writeHead(relay.challengeStatus).end();
				return;
			}
			const nonce = toBase64Url(randomBytes(40));
			relay.nonces.push(nonce);
			res.writeHead(200, { 'content-type': 'application/json' });
			res.end(JSON.stringify({ nonce, expiresAt: Date.now() + 60_000 }));
			return;
		}
		res.writeHead(404).end();
	});
	server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
		wss.handleUpgrade(req, socket, head, (ws) => {
			const fake: FakeSocket = {
				ws,
				url: new URL(req.url ?? '/', 'http://relay.test'),
				frames: [],
				closed: false,
				send: (bytes) => ws.send(bytes),
				close: (code, reason) => ws.close(code, reason)
			};
			ws.on('message', (data: Buffer, isBinary: boolean) => {
				if (isBinary) fake.frames.push(new Uint8Array(data));
			});
			ws.on('close', () => {
				fake.closed = true;
			});
			relay.sockets.push(fake);
			relay.onConnection(fake);
		});
	});
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	const { port } = server.address() as AddressInfo;
	const relay: FakeRelay = {
		url: `http://127.0.0.1:${port}`,
		nonces: [],
		sockets: [],
		challengeStatus: 200,
		onConnection: () => {},
		close: async () => {
			for (const client of wss.clients) client.terminate();
			wss.close();
			await new Promise<void>((resolve) => server.close(() => resolve()));
		}
	};
	return relay;
}
