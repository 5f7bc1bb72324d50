/**
 * Sync through the relay: catch-up, live forwarding, acknowledgements,
 * restarts, compaction, idle rooms, awareness.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { ConversationDoc } from '../../../src/lib/conversation/index.ts';
import { DATABASE_FILE } from './store.ts';
import {
	cleanUp,
	Conversation,
	ids,
	Member,
	metricsText,
	RelayClient,
	startRelay
} from './test-support.ts';
import { KEEPALIVE_FRAME, MESSAGE_AWARENESS, QUERY_AWARENESS_FRAME } from './wire.ts';
import * as encoding from 'lib0/encoding';

afterEach(cleanUp);

function updateRows(dataDir: string, roomId: string): number {
	const db = new Database(join(dataDir, DATABASE_FILE), { readonly: true });
	try {
		return (
			db.prepare('SELECT count(*) AS n FROM updates WHERE room = ?').get(roomId) as { n: number }
		).n;
	} finally {
		db.close();
	}
}

function structCount(update: Uint8Array): number {
	return Y.decodeUpdate(update).structs.length;
}

describe('relay sync', () => {
	it('serves a late joiner everything, forwards live, acknowledges, and survives a restart', async () => {
		const relay = await startRelay();
		const conversation = new Conversation();
		const alice = await Member.create(conversation);
		const a = await RelayClient.join(relay.base, conversation, { doc: alice.doc });
		for (const batch of [['one'], ['two', 'three'], ['four']]) {
			const { update } = await alice.write(batch);
			a.sendUpdate(update);
		}
		await a.acked(alice.client, 4);
		// The acknowledgement is the room's state vector: it covers every item of Alice's.
		expect(a.ackedState().get(alice.client)).toBe(4);
		expect(a.refusals()).toEqual([]);

		const bob = await Member.create(conversation);
		const b = await RelayClient.join(relay.base, conversation, { doc: bob.doc });
		await b.pull();
		expect(ids(bob.doc)).toEqual(ids(alice.doc));
		expect(bob.doc.size).toBe(4);

		// Live: Alice writes, Bob receives without asking; Bob writes, Alice receives.
		const { update: live } = await alice.write(['five']);
		a.sendUpdate(live);
		await b.until(() => bob.doc.size === 5, 10_000, 'live update at Bob');
		const fromBob = await bob.write(['from bob']);
		b.sendUpdate(fromBob.update);
		await a.until(() => alice.doc.size === 6, 10_000, 'live update at Alice');
		await b.acked(bob.client, 1);
		// The forwarded frame is the update as Alice sent it.
		const forwarded = b.frames.filter((f) => f.kind === 'sync-update');
		expect(forwarded).toHaveLength(1);
		expect(forwarded[0]).toMatchObject({ update: live });
		expect(a.docRefusals).toEqual([]);
		expect(b.docRefusals).toEqual([]);

		const metrics = await metricsText(relay.base);
		expect(metrics).toMatch(/^kith_connections 2$/m);
		expect(metrics).toMatch(/^kith_rooms_active 1$/m);
		expect(metrics).toMatch(/^kith_updates_stored_total 5$/m);
		expect(metrics).toMatch(/^kith_storage_bytes [1-9]\d*$/m);
		expect(metrics).toMatch(/^kith_frames_in_total [1-9]\d*$/m);
		expect(metrics).toMatch(/^kith_frames_out_total [1-9]\d*$/m);

		// Restart: close, and a new relay on the same data dir serves everything.
		await relay.close();
		expect((await a.closed).code).toBe(1001);
		const restarted = await startRelay({ dataDir: relay.dataDir });
		const carol = await Member.create(conversation);
		const c = await RelayClient.join(restarted.base, conversation, { doc: carol.doc });
		await c.pull();
		expect(ids(carol.doc)).toEqual(ids(alice.doc));
		expect(carol.doc.size).toBe(6);
		// The relay's own step 1 after the restart names the same state.
		const step1 = c.frames[0];
		expect(step1?.kind).toBe('sync-step1');
		const sv = Y.decodeStateVector((step1 as { stateVector: Uint8Array }).stateVector);
		expect(Object.fromEntries(sv)).toEqual({ [alice.client]: 5, [bob.client]: 1 });
	});

	it('sends acknowledgements and refusals only to clients that asked (ack=1)', async () => {
		const relay = await startRelay();
		const conversation = new Conversation();
		const alice = await Member.create(conversation);
		const quiet = await RelayClient.join(relay.base, conversation, { doc: alice.doc, ack: false });
		const { update } = await alice.write(['hello']);
		quiet.sendUpdate(update);
		quiet.sendUpdate(new Uint8Array([1, 2, 3])); // refused: malformed
		const watcher = await RelayClient.join(relay.base, conversation, {
			doc: (await Member.create(conversation)).doc
		});
		await watcher.pull();
		expect(watcher.doc!.size).toBe(1);
		expect(quiet.frames.map((f) => f.kind)).not.toContain('stored');
		expect(quiet.frames.map((f) => f.kind)).not.toContain('refused');
	});

	it('keeps items that arrive before the ones below them, and counts them once the gap fills', async () => {
		const relay = await startRelay();
		const conversation = new Conversation();
		const alice = await Member.create(conversation);
		const updates = [];
		for (const text of ['0', '1', '2']) updates.push((await alice.write([text])).update);
		const a = await RelayClient.join(relay.base, conversation);
		a.sendUpdate(updates[2]!);
		await a.next((f) => f.kind === 'stored');
		expect(a.ackedState().get(alice.client)).toBeUndefined(); // stored, but above a gap

		// After a restart the relay still knows the item lies above a gap.
		await relay.close();
		const restarted = await startRelay({ dataDir: relay.dataDir });
		const b = await RelayClient.join(restarted.base, conversation);
		const step1 = (await b.next((f) => f.kind === 'sync-step1')) as { stateVector: Uint8Array };
		expect(Y.decodeStateVector(step1.stateVector).get(alice.client)).toBeUndefined();
		b.sendUpdate(updates[0]!);
		b.sendUpdate(updates[1]!);
		await b.acked(alice.client, 3);

		const reader = await Member.create(conversation);
		const r = await RelayClient.join(restarted.base, conversation, { doc: reader.doc });
		await r.pull();
		expect(ids(reader.doc)).toEqual(ids(alice.doc));
	});

	it('stores and forwards only what it lacks when an update repeats held items', async () => {
		const relay = await startRelay();
		const conversation = new Conversation();
		const alice = await Member.create(conversation);
		const bob = await Member.create(conversation);
		const a = await RelayClient.join(relay.base, conversation, { doc: alice.doc });
		const b = await RelayClient.join(relay.base, conversation, { doc: bob.doc });
		const first = await alice.write(['first']);
		a.sendUpdate(first.update);
		await a.acked(alice.client, 1);
		await b.until(() => bob.doc.size === 1);
		// Alice's whole state: one item the relay holds, one it does not.
		await alice.write(['second']);
		const whole = alice.doc.encodeState();
		expect(structCount(whole)).toBe(2);
		a.sendUpdate(whole);
		await a.acked(alice.client, 2);
		await b.until(() => bob.doc.size === 2);
		const forwarded = b.frames.filter((f) => f.kind === 'sync-update');
		expect(forwarded.map((f) => structCount((f as { update: Uint8Array }).update))).toEqual([1, 1]);
		// Sending everything again adds nothing: acknowledged, not stored.
		const stored = /^kith_updates_stored_total (\d+)$/m;
		const before = stored.exec(await metricsText(relay.base))![1];
		const acks = a.frames.filter((f) => f.kind === 'stored').length;
		a.sendUpdate(whole);
		await a.until(() => a.frames.filter((f) => f.kind === 'stored').length === acks + 1);
		expect(stored.exec(await metricsText(relay.base))![1]).toBe(before);
	});

	it('compacts only once the room is quiet, not while updates arrive', async () => {
		const relay = await startRelay({ relay: { compactAfterRows: 8, compactQuietMs: 1500 } });
		const conversation = new Conversation();
		const alice = await Member.create(conversation);
		const a = await RelayClient.join(relay.base, conversation, { doc: alice.doc });
		// One at a time (each acknowledged before the next): a row each.
		for (let i = 0; i < 16; i++) {
			a.sendUpdate((await alice.write([`message ${i}`])).update);
			await a.acked(alice.client, i + 1);
		}
		const lastAck = performance.now();
		// 16 rows, twice the mark, and none merged yet: the room was busy a moment ago.
		expect(relay.logs.some((l) => l.msg === 'compacted')).toBe(false);
		expect(updateRows(relay.dataDir, conversation.roomId)).toBeGreaterThanOrEqual(8);
		await a.until(() => relay.logs.some((l) => l.msg === 'compacted'), 10_000, 'compaction');
		expect(performance.now() - lastAck).toBeGreaterThanOrEqual(1000);
		expect(updateRows(relay.dataDir, conversation.roomId)).toBeLessThan(8);
	});

	it('compacts update rows in the background without losing any, across restarts', async () => {
		const relay = await startRelay({ relay: { compactAfterRows: 8 } });
		const conversation = new Conversation();
		const alice = await Member.create(conversation);
		const a = await RelayClient.join(relay.base, conversation, { doc: alice.doc });
		for (let i = 0; i < 30; i++) a.sendUpdate((await alice.write([`message ${i}`])).update);
		await a.acked(alice.client, 30);
		await a.until(() => updateRows(relay.dataDir, conversation.roomId) < 8, 10_000, 'compaction');
		expect(relay.logs.some((l) => l.msg === 'compacted')).toBe(true);

		const reader = await Member.create(conversation);
		const r = await RelayClient.join(relay.base, conversation, { doc: reader.doc });
		await r.pull();
		expect(reader.doc.size).toBe(30);

		await relay.close();
		const restarted = await startRelay({ dataDir: relay.dataDir });
		const later = new ConversationDoc(conversation.roomId, 7);
		const l = await RelayClient.join(restarted.base, conversation, { doc: later });
		await l.pull();
		expect(ids(later)).toEqual(ids(alice.doc));
		// Storage bytes still add up to what is in the rows.
		const db = new Database(join(relay.dataDir, DATABASE_FILE), { readonly: true });
		const { rows, room } = db
			.prepare(
				'SELECT (SELECT sum(length(bytes)) FROM updates WHERE room = @id) AS rows, (SELECT bytes FROM rooms WHERE id = @id) AS room'
			)
			.get({ id: conversation.roomId }) as { rows: number; room: number };
		db.close();
		expect(rows).toBe(room);
	});

	it('lets idle rooms leave memory and loads them again on demand', async () => {
		const relay = await startRelay({ config: { roomIdleMs: 50 } });
		const conversation = new Conversation();
		const alice = await Member.create(conversation);
		const a = await RelayClient.join(relay.base, conversation, { doc: alice.doc });
		a.sendUpdate((await alice.write(['kept'])).update);
		await a.acked(alice.client, 1);
		expect(relay.relay.roomsActive).toBe(1);
		await a.close();
		await expect.poll(() => relay.relay.roomsActive, { timeout: 5000 }).toBe(0);
		expect(await metricsText(relay.base)).toMatch(/^kith_rooms_active 0$/m);
		const reader = await Member.create(conversation);
		const r = await RelayClient.join(relay.base, conversation, { doc: reader.doc });
		await r.pull();
		expect(reader.doc.size).toBe(1);
	});

	it('forwards awareness opaquely, asks others for theirs on join, and keeps idle clients alive', async () => {
		const relay = await startRelay({ relay: { keepaliveMs: 150 } });
		const conversation = new Conversation();
		const a = await RelayClient.join(relay.base, conversation);
		await a.next((f) => f.kind === 'sync-step1');
		const b = await RelayClient.join(relay.base, conversation);
		// Alice is asked for her awareness states when Bob joins.
		await a.next((f) => f.kind === 'query-awareness');
		// Bytes the relay cannot parse as awareness states still go through unchanged.
		const opaque = encoding.encode((e) => {
			encoding.writeVarUint(e, MESSAGE_AWARENESS);
			encoding.writeVarUint8Array(e, new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
		});
		b.send(opaque);
		const got = await a.next((f) => f.kind === 'awareness' && f.update.length === 4);
		expect(got).toEqual({ kind: 'awareness', update: new Uint8Array([0xde, 0xad, 0xbe, 0xef]) });
		b.send(QUERY_AWARENESS_FRAME);
		await a.until(() => a.frames.filter((f) => f.kind === 'query-awareness').length === 2);
		expect(b.frames.some((f) => f.kind === 'awareness' && f.update.length === 4)).toBe(false);
		// Silence: the relay sends a no-op awareness update (and pings) to keep it open.
		const seen = a.frames.length;
		const keepalive = await a.next((f) => f.kind === 'awareness' && f.update.length === 1, seen);
		expect(keepalive).toEqual({ kind: 'awareness', update: KEEPALIVE_FRAME.subarray(2) });
	});
});
