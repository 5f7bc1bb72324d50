/**
 * MediaManager with the relay out of reach (a closed port: real fetches that
 * fail) and a conversation that reaches peers directly (an in-memory stand-in
 * for NetHub; the real path, over libp2p and WebRTC, is in
 * src/lib/p2p/chunk-fetch.test.ts and tests/e2e/p2p.spec.ts and
 * lan-peer.spec.ts): a download takes its chunks from the peers, a download
 * that failed for want of any source tries again once a peer comes, and a
 * file is sent to peers when the relay cannot take it — never when nobody
 * could fetch it — and uploaded to the relay once it is back (a stand-in of
 * its blob endpoints).
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { newRoomId, randomBytes, type RoomId } from '../crypto';
import { BlobClient } from './blob-client';
import { MemoryChunkStore } from './chunk-store';
import { encryptFile, sourceFromBytes } from './encrypt-file';
import type { ChunkId, FileManifest } from './manifest';
import {
	MediaManager,
	type MediaPeers,
	type MediaRoom,
	type PendingRelayRecord,
	type PendingRelayStore,
	type Transfer
} from './media.svelte';

/** A loopback port nothing listens on: every request to it fails at once. */
async function deadRelay(): Promise<string> {
	const server = createServer();
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	const { port } = server.address() as { port: number };
	await new Promise<void>((resolve) => server.close(() => resolve()));
	return `http://127.0.0.1:${port}`;
}

/**
 * The relay's blob endpoints as far as an upload goes (a challenge, a grant
 * for anyone, chunks kept as they come): a relay that is back.
 */
async function blobRelay(): Promise<{
	url: string;
	chunks: Map<string, Uint8Array>;
	close(): Promise<void>;
}> {
	const chunks = new Map<string, Uint8Array>();
	const server = createHttpServer((req, res) => {
		const path = new URL(req.url ?? '/', 'http://relay').pathname;
		const body: Buffer[] = [];
		req.on('data', (part: Buffer) => body.push(part));
		req.on('end', () => {
			const json = (value: unknown) => {
				res.setHeader('Content-Type', 'application/json');
				res.end(JSON.stringify(value));
			};
			if (path === '/blobs/challenge') return json({ nonce: 'nonce' });
			if (path === '/blobs/grant' && req.method === 'POST') return json({ token: 'token' });
			if (path.startsWith('/blobs/') && req.method === 'PUT') {
				chunks.set(path.slice('/blobs/'.length), new Uint8Array(Buffer.concat(body)));
				res.statusCode = 201;
				return res.end();
			}
			res.statusCode = 404;
			res.end();
		});
	});
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	const { port } = server.address() as { port: number };
	return {
		url: `http://127.0.0.1:${port}`,
		chunks,
		close: () => new Promise<void>((resolve) => server.close(() => resolve()))
	};
}

/** Peers of one room holding `chunks`; `connected` says whether the room reaches them. */
function peersOf(room: RoomId, chunks: Map<string, Uint8Array>) {
	const peers: MediaPeers & { connected: boolean; given: number } = {
		connected: true,
		/** Chunks handed over. */
		given: 0,
		hasPeers: (roomId) => peers.connected && roomId === room,
		async fetchChunk(roomId, id) {
			if (!peers.connected || roomId !== room) return null;
			const blob = chunks.get(id) ?? null;
			if (blob) peers.given++;
			return blob;
		}
	};
	return peers;
}

async function sentFile(size = 600_000) {
	const bytes = new Uint8Array(size).map((_, i) => (i * 13 + (i >> 9)) & 0xff);
	const chunks = new Map<string, Uint8Array>();
	const manifest = await encryptFile(
		sourceFromBytes(bytes),
		{ name: 'notes.bin', type: 'application/octet-stream' },
		(_i, id, blob) => void chunks.set(id, blob)
	);
	return { bytes, chunks, manifest };
}

async function until(condition: () => boolean): Promise<void> {
	const deadline = Date.now() + 10_000;
	while (!condition()) {
		if (Date.now() > deadline) throw new Error('timed out');
		await new Promise((resolve) => setTimeout(resolve, 10));
	}
}

function settled(transfer: Transfer): Promise<void> {
	return until(() => transfer.state !== 'active' && transfer.state !== 'idle');
}

describe('MediaManager with the relay out of reach', () => {
	it('downloads a file from the conversation’s peers', async () => {
		const room = newRoomId();
		const { chunks, manifest } = await sentFile();
		const store = new MemoryChunkStore();
		const media = new MediaManager({ client: new BlobClient(await deadRelay()), store });
		const peers = peersOf(room, chunks);
		media.peers = peers;
		const transfer = media.download(manifest, true, room);
		await settled(transfer);
		expect(transfer.error).toBeNull();
		expect(transfer.state).toBe('complete');
		expect(peers.given).toBe(manifest.chunks.length);
		for (const id of manifest.chunks) expect(store.chunks.get(id)).toEqual(chunks.get(id));
	});

	it('asks the LAN peers once: before the relay, and after it fails only the other browsers', async () => {
		const room = newRoomId();
		const { chunks, manifest } = await sentFile();
		const store = new MemoryChunkStore();
		const media = new MediaManager({ client: new BlobClient(await deadRelay()), store });
		// A LAN peer without the file; a browser with it.
		const asked: string[] = [];
		media.peers = {
			hasPeers: (roomId) => roomId === room,
			async fetchChunk(roomId, id, _signal, reach = 'any') {
				asked.push(reach);
				return reach === 'lan' || roomId !== room ? null : (chunks.get(id) ?? null);
			}
		};
		const transfer = media.download(manifest, true, room);
		await settled(transfer);
		expect(transfer.state).toBe('complete');
		const count = manifest.chunks.length;
		expect(asked.sort()).toEqual([...Array(count).fill('far'), ...Array(count).fill('lan')]);
		for (const id of manifest.chunks) expect(store.chunks.get(id)).toEqual(chunks.get(id));
	});

	it('tries a failed download again once its room reaches a peer, and not while it has none', async () => {
		const room = newRoomId();
		const { chunks, manifest } = await sentFile();
		const media = new MediaManager({
			client: new BlobClient(await deadRelay()),
			store: new MemoryChunkStore()
		});
		const peers = peersOf(room, chunks);
		peers.connected = false;
		media.peers = peers;
		const transfer = media.download(manifest, true, room);
		await settled(transfer);
		expect(transfer.state).toBe('failed');
		expect(transfer.error).toContain('cannot be reached');

		media.peersChanged(); // still nobody: stays failed
		expect(transfer.state).toBe('failed');
		peers.connected = true;
		media.peersChanged();
		await settled(transfer);
		expect(transfer.state).toBe('complete');
	});

	it('sends a file to peers when the relay cannot take it, and refuses when no peer could fetch it', async () => {
		const room = newRoomId();
		const store = new MemoryChunkStore();
		const media = new MediaManager({ client: new BlobClient(await deadRelay()), store });
		const peers = peersOf(room, new Map());
		media.peers = peers;
		const sent: FileManifest[] = [];
		const target: MediaRoom = {
			roomId: room,
			capability: async () => ({
				publicKey: randomBytes(32),
				sign: async () => randomBytes(64)
			}),
			send: async (manifest) => void sent.push(manifest)
		};
		const bytes = randomBytes(50_000) as Uint8Array<ArrayBuffer>;

		peers.connected = false;
		const refused = await media.sendFile('c', target, new File([bytes], 'alone.bin'));
		await settled(refused);
		expect(refused.state).toBe('failed');
		expect(refused.error).toContain('the relay cannot be reached');
		expect(sent).toEqual([]);

		peers.connected = true;
		const upload = await media.sendFile('c', target, new File([bytes], 'to-peers.bin'));
		await settled(upload);
		expect(upload.state).toBe('complete');
		expect(sent.map((m) => m.name)).toEqual(['to-peers.bin']);
		// Every chunk waits on this device for the peers to fetch.
		const held = await store.held(sent[0]!.chunks);
		expect(sent[0]!.chunks.every((id: ChunkId) => held.has(id))).toBe(true);
	});

	it('keeps what the relay is owed across pages, and a new page uploads it there once the relay is back', async () => {
		const room = newRoomId();
		const kept = new Map<string, PendingRelayRecord>();
		const pending: PendingRelayStore = {
			list: async () => [...kept],
			put: async (fileId, record) => void kept.set(fileId, structuredClone(record)),
			delete: async (fileId) => void kept.delete(fileId)
		};
		const store = new MemoryChunkStore();
		const relay = await deadRelay();
		const first = new MediaManager({ client: new BlobClient(relay), store, pending });
		first.peers = peersOf(room, new Map());
		const sent: FileManifest[] = [];
		let grantsAsked = 0;
		const target: MediaRoom = {
			roomId: room,
			capability: async () => {
				grantsAsked++;
				return { publicKey: randomBytes(32), sign: async () => randomBytes(64) };
			},
			send: async (manifest) => void sent.push(manifest)
		};
		const upload = await first.sendFile(
			'c',
			target,
			new File([randomBytes(40_000) as Uint8Array<ArrayBuffer>], 'kept.bin')
		);
		await settled(upload);
		const manifest = sent[0]!;
		expect([...kept]).toEqual([[manifest.id, { room, size: 40_000, chunks: manifest.chunks }]]);

		// A new page (after a reload) with the relay still away: it tries, in the
		// conversation's room, and the record stays for the next try.
		const second = new MediaManager({ client: new BlobClient(relay), store, pending });
		second.rooms = (roomId) => (roomId === room ? target : null);
		const before = grantsAsked;
		second.relayBack();
		await until(() => grantsAsked > before);
		expect(kept.has(manifest.id)).toBe(true);

		// Another page, and the relay is back: every owed chunk lands there, and the record goes.
		const back = await blobRelay();
		try {
			const third = new MediaManager({ client: new BlobClient(back.url), store, pending });
			third.rooms = (roomId) => (roomId === room ? target : null);
			third.relayBack();
			await until(() => !kept.has(manifest.id));
			expect([...back.chunks.keys()].sort()).toEqual([...manifest.chunks].sort());
			for (const id of manifest.chunks) expect(back.chunks.get(id)).toEqual(store.chunks.get(id));
		} finally {
			await back.close();
		}
	});
});
