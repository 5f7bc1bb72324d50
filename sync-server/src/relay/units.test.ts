/**
 * The relay's pure parts: wire format, state tracking and merging, the token
 * bucket, challenges, and the store's compaction transaction.
 */
import { statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { removeTempDirs, tempDir } from '../test-helpers.ts';
import { Challenges, CHALLENGE_TTL_MS, loadRelaySecret, RELAY_SECRET_FILE } from './challenge.ts';
import { TokenBucket } from './rate-limit.ts';
import { EMPTY_UPDATE, mergeInChunks, RoomState } from './room-state.ts';
import { RelayStore } from './store.ts';
import {
	FrameError,
	readClientFrame,
	writePermissionDenied,
	writeRefused,
	writeStored,
	writeSyncStep1,
	writeSyncStep2,
	writeSyncUpdate
} from './wire.ts';
import { readRelayFrame } from './test-support.ts';

afterEach(removeTempDirs);

const ROOM = 'AAAAAAAAAAAAAAAAAAAAAA';

/** One single-item update per clock of `client`, in order. */
function itemUpdates(client: number, count: number): Uint8Array[] {
	const doc = new Y.Doc({ gc: false });
	doc.clientID = client;
	const out: Uint8Array[] = [];
	doc.on('update', (u: Uint8Array) => out.push(u));
	for (let i = 0; i < count; i++) doc.getMap('e').set(`${client}:${i}`, new Uint8Array([i]));
	return out;
}

describe('wire', () => {
	it('reads what the y-protocols framing writes', () => {
		const sv = Y.encodeStateVector(new Map([[7, 3]]));
		expect(readClientFrame(writeSyncStep1(sv))).toEqual({ kind: 'sync-step1', stateVector: sv });
		expect(readClientFrame(writeSyncStep2(EMPTY_UPDATE))).toEqual({
			kind: 'sync-step2',
			update: EMPTY_UPDATE
		});
		expect(readClientFrame(writeSyncUpdate(EMPTY_UPDATE))).toEqual({
			kind: 'sync-update',
			update: EMPTY_UPDATE
		});
		expect(readClientFrame(new Uint8Array([1, 2, 9, 9]))).toEqual({ kind: 'awareness' });
		expect(readClientFrame(new Uint8Array([3]))).toEqual({ kind: 'query-awareness' });
		expect(readClientFrame(new Uint8Array([100, 1]))).toEqual({
			kind: 'unsupported',
			messageType: 100
		});
	});

	it.each([
		['empty', []],
		['a truncated type', [0x80]],
		['a sync message without payload', [0]],
		['an unknown sync type', [0, 3, 0]],
		['a length beyond the frame', [0, 2, 5, 1]],
		['trailing bytes', [0, 2, 2, 0, 0, 7]],
		['a step 1 that is no state vector', [0, 0, 2, 5, 1]],
		['awareness without its length', [1]],
		['query-awareness with a payload', [3, 1]]
	])('refuses %s as broken framing', (_name, bytes) => {
		expect(() => readClientFrame(new Uint8Array(bytes))).toThrow(FrameError);
	});

	it('writes the relay messages as docs/protocol.md lays them out', () => {
		expect([...writePermissionDenied('bad-room')]).toEqual([2, 0, 8, ...Buffer.from('bad-room')]);
		expect([...writeStored(new Uint8Array([1, 5, 2]))]).toEqual([100, 3, 1, 5, 2]);
		expect(readRelayFrame(writeRefused('room-quota', 'full'))).toEqual({
			kind: 'refused',
			reason: 'room-quota',
			message: 'full'
		});
		expect(readRelayFrame(writeRefused('server-error', 'x'.repeat(1000)))).toMatchObject({
			message: 'x'.repeat(200)
		});
	});
});

describe('room state', () => {
	it('merges in chunks to what one merge gives', async () => {
		const updates = itemUpdates(5, 23);
		const chunked = await mergeInChunks(updates, 4);
		const doc = new Y.Doc();
		Y.applyUpdate(doc, chunked);
		expect(doc.getMap('e').size).toBe(23);
		expect(Y.encodeStateVectorFromUpdate(chunked)).toEqual(
			Y.encodeStateVectorFromUpdate(Y.mergeUpdates(updates))
		);
		expect(await mergeInChunks([])).toEqual(EMPTY_UPDATE);
	});

	it('counts only contiguous clocks, like Yjs, in any arrival order', async () => {
		const a = itemUpdates(11, 6);
		const b = itemUpdates(22, 2);
		const order = [a[3]!, b[1]!, a[0]!, a[5]!, a[1]!, b[0]!, a[2]!, a[4]!];
		const seen: Uint8Array[] = [];
		const state = await RoomState.load(() => seen, 0);
		for (const update of order) {
			const items = Y.decodeUpdate(update).structs.map((s) => s.id);
			state.add(update, items);
			seen.push(update);
			// The incremental state vector equals the one Yjs computes from everything.
			expect(state.stateVector()).toEqual(Y.encodeStateVectorFromUpdate(Y.mergeUpdates(seen)));
			// And a state rebuilt from storage agrees (gaps found on load).
			const loaded = await RoomState.load(() => seen, 0);
			expect(Object.fromEntries(loaded.sv)).toEqual(Object.fromEntries(state.sv));
		}
		expect(Object.fromEntries(state.sv)).toEqual({ 11: 6, 22: 2 });
		const doc = new Y.Doc();
		Y.applyUpdate(doc, await state.merged());
		expect(doc.getMap('e').size).toBe(8);
		expect(state.rows).toBe(8);
	});

	it('keeps no stored update in memory: reads the store again after a write', async () => {
		const updates = itemUpdates(5, 3);
		const rows: Uint8Array[] = updates.slice(0, 2);
		let reads = 0;
		const state = await RoomState.load(() => (reads++, rows), 0);
		await state.merged();
		expect(reads).toBe(1); // the merge made on load serves until a write
		rows.push(updates[2]!);
		state.add(updates[2]!, [{ client: 5, clock: 2 }]);
		const doc = new Y.Doc();
		Y.applyUpdate(doc, await state.diff(Y.encodeStateVector(new Map())));
		expect(reads).toBe(2);
		expect(doc.getMap('e').size).toBe(3);
	});

	it('diffs against a client state vector', async () => {
		const updates = itemUpdates(3, 5);
		const state = await RoomState.load(() => updates, 0);
		const diff = await state.diff(Y.encodeStateVector(new Map([[3, 3]])));
		expect(Y.decodeUpdate(diff).structs.map((s) => s.id.clock)).toEqual([3, 4]);
	});
});

describe('token bucket', () => {
	it('lets a burst through, then the rate, and lets one big item into debt', () => {
		let t = 0;
		const bucket = new TokenBucket(10, 20, () => t);
		let passed = 0;
		for (let i = 0; i < 100; i++) if (bucket.take()) passed++;
		expect(passed).toBe(20);
		t += 500;
		passed = 0;
		for (let i = 0; i < 100; i++) if (bucket.take()) passed++;
		expect(passed).toBe(5);
		t += 10_000;
		expect(bucket.take(1000)).toBe(true); // bigger than the burst: passes alone
		expect(bucket.take()).toBe(false); // and is paid for by silence
		t += 97_000;
		expect(bucket.take()).toBe(false);
		t += 2000;
		expect(bucket.take()).toBe(true);
	});
});

describe('challenges', () => {
	it('issues nonces that are single use, bound to their room, and expire', async () => {
		const dir = await tempDir();
		let now = 1_800_000_000_000;
		const challenges = new Challenges(loadRelaySecret(dir), () => now);
		expect(statSync(join(dir, RELAY_SECRET_FILE)).mode & 0o777).toBe(0o600);
		const { nonce, expiresAt } = challenges.issue(ROOM);
		expect(expiresAt).toBe(now + CHALLENGE_TTL_MS);
		expect(challenges.check('BBBBBBBBBBBBBBBBBBBBBB', nonce)).toEqual({
			ok: false,
			reason: 'bad-challenge'
		});
		const checked = challenges.check(ROOM, nonce);
		expect(checked).toEqual({ ok: true, expiresAt });
		expect(challenges.redeem(nonce, expiresAt)).toBe(true);
		expect(challenges.redeem(nonce, expiresAt)).toBe(false);
		expect(challenges.check(ROOM, nonce)).toEqual({ ok: false, reason: 'replayed-challenge' });
		const later = challenges.issue(ROOM);
		now += CHALLENGE_TTL_MS + 1;
		expect(challenges.check(ROOM, later.nonce)).toEqual({
			ok: false,
			reason: 'expired-challenge'
		});
		// The same secret on the next start; nonces from before it count as expired.
		now = expiresAt - 1;
		const restarted = new Challenges(loadRelaySecret(dir), () => now);
		expect(restarted.check(ROOM, later.nonce)).toEqual({ ok: false, reason: 'expired-challenge' });
		expect(restarted.check(ROOM, restarted.issue(ROOM).nonce).ok).toBe(true);
	});

	it('refuses a relay secret of the wrong size instead of guessing', async () => {
		const dir = await tempDir();
		await writeFile(join(dir, RELAY_SECRET_FILE), 'short');
		expect(() => loadRelaySecret(dir)).toThrow(/holds 5 bytes, not 32/);
	});
});

describe('store', () => {
	it('replaces exactly the merged rows, or nothing', async () => {
		const dir = await tempDir();
		const store = new RelayStore(dir);
		const cap = new Uint8Array(32).fill(1);
		expect(store.claim(ROOM, cap, 1)).toEqual(cap);
		expect(store.claim(ROOM, new Uint8Array(32), 2)).toEqual(cap); // first claim wins
		const updates = itemUpdates(9, 5);
		for (const update of updates) store.append(ROOM, update);
		const total = updates.reduce((n, u) => n + u.length, 0);
		expect(store.totalBytes).toBe(total);
		const rows = store.compactable(ROOM, 1 << 20, 1 << 20, 3);
		expect(rows).toHaveLength(3);
		// The byte cap ends a chunk early (the first two rows are always taken,
		// so a chunk can merge); a row at the row-size cap is never taken.
		const sizes = updates.map((u) => u.length);
		expect(store.compactable(ROOM, 1 << 20, sizes[0]! + sizes[1]!, 5)).toHaveLength(2);
		expect(store.compactable(ROOM, 1 << 20, 1, 5)).toHaveLength(2);
		expect(store.compactable(ROOM, Math.min(...sizes), 1 << 20, 5)).toHaveLength(0);
		const merged = Y.mergeUpdates(rows.map((r) => r.bytes));
		const removed = rows.reduce((n, r) => n + r.bytes.length, 0);
		// A missing row aborts the whole replacement.
		expect(() => store.replace(ROOM, [...rows.map((r) => r.seq), 999], removed, merged)).toThrow(
			/missing/
		);
		expect(store.updates(ROOM)).toHaveLength(5);
		store.replace(
			ROOM,
			rows.map((r) => r.seq),
			removed,
			merged
		);
		expect(store.updates(ROOM)).toHaveLength(3);
		expect(store.room(ROOM)).toMatchObject({ rows: 3, bytes: total - removed + merged.length });
		store.close();
		const reopened = new RelayStore(dir);
		expect(reopened.totalBytes).toBe(total - removed + merged.length);
		const doc = new Y.Doc();
		for (const update of reopened.updates(ROOM)) Y.applyUpdate(doc, update);
		expect(doc.getMap('e').size).toBe(5);
		reopened.close();
	});

	it('appends only to claimed rooms', async () => {
		const store = new RelayStore(await tempDir());
		expect(() => store.append(ROOM, EMPTY_UPDATE)).toThrow(/not registered/);
		expect(store.totalBytes).toBe(0);
		store.close();
	});
});
