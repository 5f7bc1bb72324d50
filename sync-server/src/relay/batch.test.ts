/**
 * Updates that queue up while a room is busy are processed as one batch:
 * each is still judged on its own, the accepted ones are forwarded as one
 * merged update per receiver (never echoed to their sender), stored in one
 * transaction and acknowledged once per sender — and an acknowledgement never
 * precedes the commit, while a forward may.
 *
 * Frames written to a socket in one tick arrive in one read of the relay's
 * socket (client and relay share this process), so they form one batch. An
 * idle room takes an update at once instead (the last test); the other tests
 * turn that off (`idleRoomMs: Infinity`) so that every update goes through
 * the queue.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import * as Y from 'yjs';
import { ENVELOPE_MAP } from '../../../src/lib/conversation/index.ts';
import { DATABASE_FILE, RelayStore } from './store.ts';
import { cleanUp, Conversation, ids, Member, RelayClient, startRelay } from './test-support.ts';
import { MESSAGE_STORED, MESSAGE_SYNC, SYNC_UPDATE } from './wire.ts';

afterEach(async () => {
	vi.restoreAllMocks();
	await cleanUp();
});

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

/** Envelopes (items) a sync update carries. */
function itemCount(update: Uint8Array): number {
	return Y.decodeUpdate(update).structs.filter((s) => s instanceof Y.Item).length;
}

/** An update that breaks the rules (it deletes), from a client of its own. */
function deletingUpdate(): Uint8Array {
	const doc = new Y.Doc();
	const map = doc.getMap(ENVELOPE_MAP);
	map.set('x', new Uint8Array([1]));
	map.delete('x');
	return Y.encodeStateAsUpdate(doc);
}

async function writes(member: Member, n: number): Promise<Uint8Array[]> {
	const updates: Uint8Array[] = [];
	for (let i = 0; i < n; i++) updates.push((await member.write([`message ${i}`])).update);
	return updates;
}

/**
 * A relay with a room, Alice to write (her client `a` joined, the room's
 * step 1 received) and Bob to read (`b`, synced with his doc).
 */
async function writerAndReader(options: Parameters<typeof startRelay>[0]) {
	const relay = await startRelay(options);
	const conversation = new Conversation();
	const alice = await Member.create(conversation);
	const bob = await Member.create(conversation);
	const a = await RelayClient.join(relay.base, conversation);
	const b = await RelayClient.join(relay.base, conversation, { doc: bob.doc });
	await a.next((f) => f.kind === 'sync-step1');
	await b.pull();
	return { relay, conversation, alice, bob, a, b };
}

/** Every update through the room's queue: no update is taken at once. */
const QUEUED = { relay: { idleRoomMs: Number.POSITIVE_INFINITY } };

describe('relay batches', () => {
	it('refuses only the bad update of a batch; stores the rest in one row, forwards one merged update, acknowledges once', async () => {
		const { relay, conversation, alice, bob, a, b } = await writerAndReader(QUEUED);
		const updates = await writes(alice, 4);

		const seen = a.frames.length;
		a.sendUpdate(updates[0]!);
		a.sendUpdate(updates[1]!);
		a.sendUpdate(deletingUpdate());
		a.sendUpdate(updates[2]!);
		a.sendUpdate(updates[3]!);
		await a.acked(alice.client, 4);
		await b.until(() => bob.doc.size === 4, 10_000, 'the batch at Bob');

		expect(a.refusals()).toEqual(['doc-rules:delete-set']);
		expect(a.frames.slice(seen).filter((f) => f.kind === 'stored')).toHaveLength(1);
		expect(a.frames.some((f) => f.kind === 'sync-update')).toBe(false); // never echoed
		const forwarded = b.frames.flatMap((f) => (f.kind === 'sync-update' ? [f.update] : []));
		expect(forwarded.map(itemCount)).toEqual([4]);
		expect(ids(bob.doc)).toEqual(ids(alice.doc));
		expect(b.docRefusals).toEqual([]);
		expect(updateRows(relay.dataDir, conversation.roomId)).toBe(1);

		// What was stored is served whole.
		const carol = await Member.create(conversation);
		const c = await RelayClient.join(relay.base, conversation, { doc: carol.doc });
		await c.pull();
		expect(ids(carol.doc)).toEqual(ids(alice.doc));
	});

	it('sends each sender of a batch the others’ updates only, and every other connection all of them', async () => {
		const relay = await startRelay(QUEUED);
		const conversation = new Conversation();
		const alice = await Member.create(conversation);
		const bob = await Member.create(conversation);
		const carol = await Member.create(conversation);
		const a = await RelayClient.join(relay.base, conversation, { doc: alice.doc });
		const b = await RelayClient.join(relay.base, conversation, { doc: bob.doc });
		const c = await RelayClient.join(relay.base, conversation, { doc: carol.doc });
		for (const client of [a, b, c]) await client.pull();
		const fromAlice = await writes(alice, 2);
		const fromBob = await writes(bob, 2);

		for (const update of fromAlice) a.sendUpdate(update);
		for (const update of fromBob) b.sendUpdate(update);
		await a.acked(alice.client, 2);
		await b.acked(bob.client, 2);
		await c.until(() => carol.doc.size === 4, 10_000, 'both at Carol');
		await a.until(() => alice.doc.size === 4, 10_000, 'Bob’s at Alice');
		await b.until(() => bob.doc.size === 4, 10_000, 'Alice’s at Bob');

		const items = (client: RelayClient) =>
			client.frames.flatMap((f) => (f.kind === 'sync-update' ? [itemCount(f.update)] : []));
		// However the frames fell into batches, nobody got an item twice or their own back.
		expect(items(a).reduce((x, y) => x + y, 0)).toBe(2);
		expect(items(b).reduce((x, y) => x + y, 0)).toBe(2);
		expect(items(c).reduce((x, y) => x + y, 0)).toBe(4);
		expect([a, b, c].flatMap((client) => client.docRefusals)).toEqual([]);
		expect([a, b, c].flatMap((client) => client.refusals())).toEqual([]);
	});

	it('takes an update that repeats items of an earlier one in its batch after that one is stored', async () => {
		const { relay, conversation, alice, bob, a, b } = await writerAndReader(QUEUED);
		const updates = await writes(alice, 2);

		a.sendUpdate(updates[0]!);
		a.sendUpdate(updates[0]!);
		a.sendUpdate(Y.mergeUpdates(updates));
		await a.acked(alice.client, 2);
		await b.until(() => bob.doc.size === 2, 10_000, 'both at Bob');
		expect(a.refusals()).toEqual([]);
		const forwarded = b.frames.flatMap((f) => (f.kind === 'sync-update' ? [f.update] : []));
		expect(forwarded.map(itemCount).reduce((x, y) => x + y, 0)).toBe(2); // each item once
		expect(b.docRefusals).toEqual([]);
		expect(updateRows(relay.dataDir, conversation.roomId)).toBe(2);
	});

	it('forwards before storing, and acknowledges only after the commit', async () => {
		const { alice, bob, a, b } = await writerAndReader(QUEUED);
		const updates = await writes(alice, 6);

		// What the relay does, in order: its sends (by the first bytes) and its commits.
		const events: string[] = [];
		const send = WebSocket.prototype.send;
		vi.spyOn(WebSocket.prototype, 'send').mockImplementation(function (
			this: WebSocket,
			data: unknown,
			...rest: unknown[]
		) {
			if (this !== a.ws && this !== b.ws && data instanceof Uint8Array) {
				if (data[0] === MESSAGE_STORED) events.push('ack');
				else if (data[0] === MESSAGE_SYNC && data[1] === SYNC_UPDATE) events.push('forward');
			}
			return (send as (...args: unknown[]) => void).call(this, data, ...rest);
		} as typeof send);
		const append = RelayStore.prototype.append;
		vi.spyOn(RelayStore.prototype, 'append').mockImplementation(function (
			this: RelayStore,
			...args: Parameters<typeof append>
		) {
			append.apply(this, args);
			events.push('commit');
		});

		a.sendUpdate(updates[0]!); // alone
		await a.acked(alice.client, 1);
		for (const update of updates.slice(1)) a.sendUpdate(update); // a batch
		await a.acked(alice.client, 6);
		await b.until(() => bob.doc.size === 6, 10_000, 'all at Bob');
		expect(events).toEqual(['forward', 'commit', 'ack', 'forward', 'commit', 'ack']);
	});

	it('does not acknowledge a batch whose commit failed; its senders hear server-error and may send again', async () => {
		const { relay, conversation, alice, bob, a, b } = await writerAndReader(QUEUED);
		const updates = await writes(alice, 3);

		vi.spyOn(RelayStore.prototype, 'append').mockImplementationOnce(() => {
			throw new Error('disk I/O error');
		});
		const seen = a.frames.length;
		for (const update of updates) a.sendUpdate(update);
		await a.next((f) => f.kind === 'refused', seen);
		// Give a wrong acknowledgement time to show up.
		await new Promise((resolve) => setTimeout(resolve, 200));
		expect(a.refusals()).toEqual(['server-error']);
		expect(a.ackedState().get(alice.client) ?? 0).toBe(0);
		expect(updateRows(relay.dataDir, conversation.roomId)).toBe(0);
		expect(relay.logs.some((l) => l.msg === 'storing updates failed')).toBe(true);

		// Sent again (as a client does after server-error), it is stored and acknowledged.
		for (const update of updates) a.sendUpdate(update);
		await a.acked(alice.client, 3);
		await b.until(() => bob.doc.size === 3, 10_000, 'all at Bob');
		expect(b.docRefusals).toEqual([]);
		expect(updateRows(relay.dataDir, conversation.roomId)).toBeGreaterThan(0);
	});
	it('takes an update to an idle room at once; what came in the same read waits for one batch', async () => {
		const { relay, conversation, alice, bob, a, b } = await writerAndReader({
			relay: { idleRoomMs: 50 }
		});
		const updates = await writes(alice, 5);

		const events: string[] = [];
		const append = RelayStore.prototype.append;
		vi.spyOn(RelayStore.prototype, 'append').mockImplementation(function (
			this: RelayStore,
			...args: Parameters<typeof append>
		) {
			append.apply(this, args);
			events.push('commit');
		});
		// Idle: nothing came for longer than idleRoomMs (the joins' step2 answers are updates too).
		await new Promise((resolve) => setTimeout(resolve, 150));
		const seen = a.frames.length;
		for (const update of updates) a.sendUpdate(update); // one read of the relay
		await a.acked(alice.client, 5);
		await b.until(() => bob.doc.size === 5, 10_000, 'all at Bob');

		const forwarded = b.frames.flatMap((f) => (f.kind === 'sync-update' ? [f.update] : []));
		// The first alone and as it came (a frame's own bytes), the other four merged.
		expect(forwarded.map(itemCount)).toEqual([1, 4]);
		expect(forwarded[0]).toEqual(updates[0]);
		expect(events).toEqual(['commit', 'commit']);
		expect(a.frames.slice(seen).filter((f) => f.kind === 'stored')).toHaveLength(2);
		expect(ids(bob.doc)).toEqual(ids(alice.doc));
		expect(b.docRefusals).toEqual([]);
		expect(updateRows(relay.dataDir, conversation.roomId)).toBe(2);
	});
});
