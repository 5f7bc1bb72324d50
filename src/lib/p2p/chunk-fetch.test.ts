/**
 * Media chunks between real peers (libp2p over loopback TCP): a chunk one
 * peer holds reaches another through the room's /kith/sync stream, checked
 * against its id; a tampered blob is refused and another peer asked; a peer
 * with no store of its own (`kith serve`) passes a request on one hop; a
 * peer that is not in the room gets nothing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { equalBytes, randomBytes } from '../crypto';
import { encryptChunk, importFileKey } from '../media/chunks';
import { MemoryChunkStore } from '../media/chunk-store';
import type { ChunkId } from '../media/manifest';
import {
	capabilityOf,
	connect,
	newRoom,
	rawClient,
	rawHandshake,
	startPeer,
	stopAll,
	until,
	type Peer,
	type Room
} from './test-support';
import { writeChunkWant } from './wire';

afterEach(stopAll);

/** A real encrypted chunk of `bytes` (a full 256 KiB one by default). */
async function realChunk(bytes = 256 * 1024): Promise<{ id: ChunkId; blob: Uint8Array }> {
	const key = await importFileKey(randomBytes(32));
	const plain = new Uint8Array(bytes).map((_, i) => (i * 31 + bytes) & 0xff);
	return encryptChunk(key, { fileId: 'f'.repeat(22), index: 0, count: 1 }, plain);
}

/** A room, and a store holding one real chunk of `bytes`. */
async function roomAndChunk(bytes?: number) {
	const store = new MemoryChunkStore();
	const chunk = await realChunk(bytes);
	await store.put(chunk.id, chunk.blob);
	return { room: newRoom(), store, chunk };
}

function synced(peer: Peer, room: Room, others: number): Promise<void> {
	return until(() => peer.sync.sessions(room.roomId).length >= others, 'sessions open');
}

describe('fetchChunk', () => {
	it('fetches a chunk a peer in the room holds, byte for byte, and null for one nobody has', async () => {
		const { room, store, chunk } = await roomAndChunk();
		const a = await startPeer([room], { chunks: store });
		const b = await startPeer([room]);
		await connect(b.node, a.node);
		await synced(b, room, 1);

		const got = await b.sync.fetchChunk(room.roomId, chunk.id);
		expect(got && equalBytes(got, chunk.blob)).toBe(true);

		const other = await realChunk(1000);
		expect(await b.sync.fetchChunk(room.roomId, other.id)).toBeNull();
	});

	it('refuses a blob that does not hash to its id, and takes it from another peer', async () => {
		const room = newRoom();
		const chunk = await realChunk();
		const liar = await startPeer([room], {
			chunks: { get: async () => chunk.blob.map((b) => b ^ 1) }
		});
		const honest = new MemoryChunkStore();
		await honest.put(chunk.id, chunk.blob);
		const c = await startPeer([room], { chunks: honest });
		const b = await startPeer([room]);
		await connect(b.node, liar.node);
		await synced(b, room, 1);

		// Only the liar: nothing is taken.
		expect(await b.sync.fetchChunk(room.roomId, chunk.id)).toBeNull();
		expect(b.log.some((l) => l.message.includes('does not match its address'))).toBe(true);

		await connect(b.node, c.node);
		await synced(b, room, 2);
		const got = await b.sync.fetchChunk(room.roomId, chunk.id);
		expect(got && equalBytes(got, chunk.blob)).toBe(true);
	});

	it('a peer with no store passes the request on one hop (browser → kith serve → browser)', async () => {
		const { room, store, chunk } = await roomAndChunk();
		const sender = await startPeer([room], { chunks: store });
		const middle = await startPeer([room]);
		const receiver = await startPeer([room]);
		await connect(sender.node, middle.node);
		await connect(receiver.node, middle.node);
		await synced(middle, room, 2);
		await synced(receiver, room, 1);
		expect(receiver.node.getConnections(sender.node.peerId)).toHaveLength(0);

		// Not passed on when the asker says so.
		expect(await receiver.sync.fetchChunk(room.roomId, chunk.id, { hops: 0 })).toBeNull();
		const got = await receiver.sync.fetchChunk(room.roomId, chunk.id);
		expect(got && equalBytes(got, chunk.blob)).toBe(true);
	});

	it('a fetch waiting on a peer rejects when its signal aborts (a cancelled download)', async () => {
		const { room, chunk } = await roomAndChunk(1000);
		// A peer whose store never answers: the request stays open.
		const slow = await startPeer([room], { chunks: { get: () => new Promise(() => undefined) } });
		const b = await startPeer([room]);
		await connect(b.node, slow.node);
		await synced(b, room, 1);
		const abort = new AbortController();
		const fetching = b.sync.fetchChunk(room.roomId, chunk.id, { signal: abort.signal });
		abort.abort(new Error('cancelled'));
		await expect(fetching).rejects.toThrow('cancelled');
	});

	it('gives nothing to a peer that is not in the room', async () => {
		const { room, store, chunk } = await roomAndChunk(1000);
		const elsewhere = newRoom();
		const a = await startPeer([room], { chunks: store });
		const stranger = await startPeer([elsewhere]);
		await connect(stranger.node, a.node);
		// A stranger has no session in the room, so asks nobody.
		expect(await stranger.sync.fetchChunk(room.roomId, chunk.id)).toBeNull();

		// By hand: a chunk request instead of a hello is refused, and so is one
		// after a failed proof.
		const early = await rawClient(stranger.node, a.node);
		await early.send(writeChunkWant(1, chunk.id, 0));
		expect(await early.read()).toMatchObject({ type: 'refused', reason: 'unexpected-message' });

		const raw = await rawClient(stranger.node, a.node);
		const answer = await rawHandshake(
			raw,
			stranger.node,
			a.node,
			room.roomId,
			await capabilityOf(room, randomBytes(32))
		);
		expect(answer).toMatchObject({ type: 'refused', reason: 'unauthorized' });
		await raw.closed;
	});

	it('the answer to a raw chunk request after a real handshake is the blob', async () => {
		const { room, store, chunk } = await roomAndChunk(5000);
		const a = await startPeer([room], { chunks: store });
		const b = await startPeer([]);
		const raw = await rawClient(b.node, a.node);
		const answer = await rawHandshake(raw, b.node, a.node, room.roomId, await capabilityOf(room));
		expect(answer).toMatchObject({ type: 'proof' });
		await raw.send(writeChunkWant(7, chunk.id, 0));
		for (;;) {
			const message = await raw.read();
			if (message === null) throw new Error('the stream ended');
			if (message.type !== 'chunk' && message.type !== 'chunk-none') continue;
			expect(message).toMatchObject({ type: 'chunk', request: 7 });
			expect(message.type === 'chunk' && equalBytes(message.blob, chunk.blob)).toBe(true);
			break;
		}
	});
});
