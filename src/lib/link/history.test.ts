import { describe, expect, it } from 'vitest';
import { newRoomId, utf8Encode } from '../crypto';
import { verifyChunk } from '../media/chunks';
import {
	decodeHistory,
	downloadHistory,
	encodeHistory,
	HISTORY_CHUNK_BYTES,
	HISTORY_KEEP_SECONDS,
	HistoryError,
	uploadHistory,
	type HistoryBlobs,
	type HistoryView
} from './history';

/** The relay's blob store in memory: a grant per upload, content-addressed chunks. */
function memoryBlobs() {
	const held = new Map<string, Uint8Array>();
	const grants: Array<{ room: string; size: number; keepSeconds: number | undefined }> = [];
	const blobs: HistoryBlobs = {
		async grant(room, _capability, size, _signal, keepSeconds) {
			grants.push({ room, size, keepSeconds });
			return `token-${grants.length}`;
		},
		async put(token, id, blob) {
			if (!token.startsWith('token-')) throw new Error('no grant');
			if (!(await verifyChunk(id, blob))) throw new Error('hash-mismatch');
			held.set(id, blob.slice());
		},
		async get(id) {
			const blob = held.get(id);
			if (!blob) throw new Error('not found');
			return blob.slice();
		}
	};
	return { blobs, held, grants };
}

const capability = { publicKey: new Uint8Array(32), sign: async () => new Uint8Array(64) };

const view = (size: number, i = 0): HistoryView => ({
	room: newRoomId(),
	stateVector: new Uint8Array([1, 200, 1, 7, i]),
	data: { r: { messages: ['x'.repeat(size)] }, m: [['device', 'user', { type: 'member.add' }]] }
});

describe('handed-over history', () => {
	it('round-trips the views, state vectors byte for byte', () => {
		const views = [view(10, 1), view(20, 2)];
		const { bytes, rooms } = encodeHistory(views);
		expect(rooms).toBe(2);
		const back = decodeHistory(bytes);
		expect([...back.keys()]).toEqual(views.map((v) => v.room));
		for (const v of views) expect(back.get(v.room)).toEqual(v);
	});

	it('leaves out the views that would take it past the limit, keeping later ones that fit', () => {
		const [a, big, b] = [view(100), view(5_000), view(100)];
		const { bytes, rooms } = encodeHistory([a, big, b], 1_000);
		expect(rooms).toBe(2);
		expect(bytes.length).toBeLessThanOrEqual(1_000);
		expect([...decodeHistory(bytes).keys()]).toEqual([a.room, b.room]);
		expect(encodeHistory([], 1_000).rooms).toBe(0);
		// The limit is in bytes of UTF-8, not in characters.
		const wide = (n: number): HistoryView => ({ ...view(0), data: { r: '漢'.repeat(n), m: [] } });
		const encoded = encodeHistory([wide(200), wide(200), wide(200)], 1_000);
		expect(encoded.rooms).toBe(1);
		expect(encoded.bytes.length).toBeLessThanOrEqual(1_000);
	});

	it('refuses a malformed history with HistoryError', () => {
		const good = JSON.parse(new TextDecoder().decode(encodeHistory([view(1)]).bytes));
		const bad = [
			'not json',
			JSON.stringify({ ...good, v: 2 }),
			JSON.stringify({ v: 1, rooms: [{ ...good.rooms[0], room: 'nope' }] }),
			JSON.stringify({ v: 1, rooms: [{ ...good.rooms[0], sv: 'not base64!' }] }),
			JSON.stringify({ v: 1, rooms: [{ ...good.rooms[0], data: { r: 1 } }] }),
			JSON.stringify({ v: 1, rooms: [{ ...good.rooms[0], extra: true }] })
		];
		for (const text of bad) expect(() => decodeHistory(utf8Encode(text))).toThrow(HistoryError);
	});

	it('travels as an encrypted file: uploaded under a grant, read back with the manifest only', async () => {
		const { blobs, held, grants } = memoryBlobs();
		const views = [view(HISTORY_CHUNK_BYTES), view(300)]; // more than one chunk
		const { bytes } = encodeHistory(views);
		const room = newRoomId();
		const manifest = await uploadHistory(blobs, room, capability, bytes);
		// Kept only as long as a link needs it: the relay deletes it afterwards.
		expect(grants).toEqual([{ room, size: bytes.length, keepSeconds: HISTORY_KEEP_SECONDS }]);
		expect(manifest.chunks.length).toBe(2);
		// What the store holds is not the document.
		const stored = Buffer.concat([...held.values()]);
		expect(stored.includes(Buffer.from('xxxxxxxxxxxxxxxx'))).toBe(false);
		const back = await downloadHistory(blobs, manifest);
		for (const v of views) expect(back.get(v.room)).toEqual(v);
	});

	it('refuses a history whose bytes changed on the way, or under another key', async () => {
		const { blobs, held } = memoryBlobs();
		const manifest = await uploadHistory(
			blobs,
			newRoomId(),
			capability,
			encodeHistory([view(10)]).bytes
		);
		const wrongKey = {
			...manifest,
			key: manifest.key.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))
		};
		await expect(downloadHistory(blobs, wrongKey)).rejects.toThrow();
		const [id, blob] = [...held][0] as [string, Uint8Array];
		blob[blob.length - 1] = (blob[blob.length - 1] ?? 0) ^ 1;
		held.set(id, blob);
		await expect(downloadHistory(blobs, manifest)).rejects.toThrow();
	});
});
