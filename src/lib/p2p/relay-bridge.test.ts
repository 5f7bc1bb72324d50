/**
 * One conversation over both paths at once: a peer that holds a relay
 * connection and p2p sessions carries updates between them through its doc,
 * with no code of its own for it (the transaction origin stops echoes only).
 * The real relay (sync-server) runs in-process on port 0, loaded by path as
 * in ../sync/relay.test.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { BRIDGE_DELAY_MS, RelayConnection } from '../sync/relay-connection';
import { captureLogger, docFor, newDevice, WebSocketImpl } from '../sync/test-support';
import {
	connect,
	doc,
	ids,
	newRoom,
	sleep,
	startPeer,
	stopAll,
	until,
	write,
	type Room
} from './test-support';

interface ServerLike {
	listen(): Promise<{ port: number; url: string }>;
	close(): Promise<void>;
}

const serverSource = (path: string) =>
	fileURLToPath(new URL(`../../../sync-server/src/${path}`, import.meta.url));

const [configModule, serverModule, relayModule] = (await Promise.all([
	import(/* @vite-ignore */ serverSource('config.ts')),
	import(/* @vite-ignore */ serverSource('server.ts')),
	import(/* @vite-ignore */ serverSource('relay/index.ts'))
])) as [
	{ loadConfig(env: Record<string, string>, cwd?: string): unknown },
	{ createServer(config: unknown): ServerLike },
	{ attachRelay(server: ServerLike, config: unknown): unknown }
];

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
	for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
	await stopAll();
});

async function startRelay(): Promise<string> {
	const dir = await mkdtemp(join(tmpdir(), 'kith-p2p-relay-'));
	const config = configModule.loadConfig(
		{ HOST: '127.0.0.1', PORT: '0', KITH_DATA: dir, KITH_STATIC: dir, LOG_LEVEL: 'silent' },
		dir
	);
	const server = serverModule.createServer(config);
	relayModule.attachRelay(server, config);
	const { url } = await server.listen();
	cleanups.push(async () => {
		await server.close();
		await rm(dir, { recursive: true, force: true });
	});
	return url;
}

function relayConnection(
	relayUrl: string,
	room: Room,
	cdoc: ReturnType<typeof docFor>,
	sent?: Uint8Array[]
) {
	const connection = new RelayConnection({
		relayUrl,
		roomId: room.roomId,
		cdoc,
		capabilityIkm: room.key,
		WebSocketImpl: sent ? recording(sent) : WebSocketImpl,
		networkEvents: null,
		logger: captureLogger()
	});
	cleanups.push(async () => connection.destroy());
	return connection;
}

/** A WebSocket class that records every binary frame sent into `sent`. */
function recording(sent: Uint8Array[]): typeof WebSocket {
	const Base = WebSocketImpl as unknown as new (url: string) => WebSocket;
	return class extends Base {
		override send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
			if (data instanceof Uint8Array) sent.push(data.slice());
			super.send(data);
		}
	} as unknown as typeof WebSocket;
}

/** Sync updates (message 0, step 2) among recorded frames. */
const syncUpdates = (frames: Uint8Array[]) => frames.filter((f) => f[0] === 0 && f[1] === 2);

describe('relay and peers together', () => {
	it('a peer forwards between its p2p sessions and its relay connection, both ways, without echoes', async () => {
		const room = newRoom();
		const relayUrl = await startRelay();
		// lan: a LAN-only peer; bridge: on the LAN and on the relay; remote: relay only.
		const [lan, bridge] = await Promise.all([startPeer([room]), startPeer([room])]);
		const remoteDevice = await newDevice();
		const remote = docFor(room.roomId, remoteDevice);
		const bridgeConnection = relayConnection(relayUrl, room, doc(bridge, room));
		relayConnection(relayUrl, room, remote);
		await connect(lan.node, bridge.node);

		await write(doc(lan, room), lan.device, room.key, 'from the LAN only');
		await write(remote, remoteDevice, room.key, 'from across the internet');
		await until(
			() => doc(lan, room).size === 2 && remote.size === 2 && doc(bridge, room).size === 2,
			'both messages everywhere',
			20_000
		);
		expect(ids(doc(lan, room))).toEqual(ids(remote));
		for (const cdoc of [doc(lan, room), doc(bridge, room), remote]) {
			expect(Y.decodeUpdate(cdoc.encodeState()).ds.clients.size).toBe(0);
		}
		// The relay stored (acknowledged) the LAN peer's message it got through the bridge.
		await until(
			() => (bridgeConnection.relayState.get(lan.device.client) ?? 0) >= 1,
			'the relay stored the LAN message'
		);
	});

	it('a burst shared over p2p goes to the relay once, from its writer: the peer does not upload it again', async () => {
		const room = newRoom();
		const relayUrl = await startRelay();
		const [writer, reader] = await Promise.all([startPeer([room]), startPeer([room])]);
		const writerSent: Uint8Array[] = [];
		const readerSent: Uint8Array[] = [];
		const writerConnection = relayConnection(relayUrl, room, doc(writer, room), writerSent);
		const readerConnection = relayConnection(relayUrl, room, doc(reader, room), readerSent);
		await connect(writer.node, reader.node);
		await until(
			() =>
				writerConnection.status === 'connected' &&
				readerConnection.status === 'connected' &&
				writer.sync.sessions(room.roomId).length > 0,
			'both on the relay and in a p2p session'
		);
		const before = readerSent.length;
		const count = 100;
		for (let i = 0; i < count; i++) {
			await write(doc(writer, room), writer.device, room.key, `burst ${i}`);
		}
		await until(
			() =>
				doc(reader, room).size === count &&
				(writerConnection.relayState.get(writer.device.client) ?? 0) >= count,
			'the burst at the reader and on the relay',
			20_000
		);
		// Past the grace period of updates from peers (BRIDGE_DELAY_MS).
		await sleep(BRIDGE_DELAY_MS + 1000);
		// One frame per message from the writer. The reader, whose relay passed
		// the burst on, sends none of it (before the fix: one upload per
		// message); at most a bridge round, should the relay lag past the grace.
		expect(syncUpdates(writerSent)).toHaveLength(count);
		expect(syncUpdates(readerSent.slice(before)).length).toBeLessThan(3);
		expect(writerConnection.lastRefusal).toBeNull();
		expect(readerConnection.lastRefusal).toBeNull();
	});
});
