/**
 * Room retirement (docs/protocol.md, "Room retirement"): `POST /sync/retire`
 * records which devices must move on, `POST /sync/moved` records that one
 * did; when all have, or the retention limit passed, the room's updates leave
 * the database file for good, its connections are closed with `room-retired`
 * and it admits nobody again. Real relay, real SQLite, raw file bytes.
 */
import Database from 'better-sqlite3';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { newSecretKey, toBase64Url, type Signer } from '../../../src/lib/crypto/index.ts';
import { accessMessage, movedMessage, retireMessage } from './challenge.ts';
import { DAY_MS, MAX_RETIRE_BODY_BYTES, MAX_RETIRE_DEVICES } from './retire.ts';
import { DATABASE_FILE, RelayStore } from './store.ts';
import {
	accessParams,
	cleanUp,
	Conversation,
	fetchChallenge,
	Member,
	metricsText,
	refusalCount,
	RelayClient,
	roomCapability,
	startRelay,
	tempDir,
	type RunningRelay
} from './test-support.ts';

afterEach(cleanUp);

interface Answer {
	status: number;
	body: Record<string, unknown>;
	headers: Headers;
}

async function post(base: string, path: string, room: string, body: unknown): Promise<Answer> {
	const res = await fetch(`${base}${path}?room=${encodeURIComponent(room)}`, {
		method: 'POST',
		headers: { 'Content-Type': 'application/json' },
		body: typeof body === 'string' ? body : JSON.stringify(body)
	});
	return {
		status: res.status,
		body: (await res.json()) as Record<string, unknown>,
		headers: res.headers
	};
}

/** `cap`, `nonce`, `sig` over the retire message, from a fresh challenge. */
async function retireProof(base: string, room: string, cap: Signer) {
	const { nonce } = await fetchChallenge(base, room);
	const sig = await cap.sign(retireMessage(room, nonce));
	return { cap: toBase64Url(cap.publicKey), nonce, sig: toBase64Url(sig) };
}

async function movedProof(base: string, room: string, cap: Signer, tag: string) {
	const { nonce } = await fetchChallenge(base, room);
	const sig = await cap.sign(movedMessage(room, nonce, tag));
	return { cap: toBase64Url(cap.publicKey), nonce, sig: toBase64Url(sig), tag };
}

async function retire(
	relay: RunningRelay,
	conversation: Conversation,
	devices: string[],
	retainUntil: number
): Promise<Answer> {
	const proof = await retireProof(relay.base, conversation.roomId, await conversation.capability());
	return post(relay.base, '/sync/retire', conversation.roomId, { ...proof, devices, retainUntil });
}

async function moved(relay: RunningRelay, conversation: Conversation, tag: string) {
	const cap = await conversation.capability();
	const proof = await movedProof(relay.base, conversation.roomId, cap, tag);
	return post(relay.base, '/sync/moved', conversation.roomId, proof);
}

const newTag = () => toBase64Url(crypto.getRandomValues(new Uint8Array(32)));

/**
 * Whether `bytes` is in the file: whole, or — spread over overflow pages,
 * each with a 4-byte header — piece by piece but for the windows that cross
 * a page boundary.
 */
function stored(haystack: Buffer, bytes: Uint8Array): boolean {
	if (contains(haystack, bytes)) return true;
	const { found, of } = traces(haystack, bytes);
	return found >= of - Math.ceil(bytes.length / 4092) - 1;
}

/** The database file and its write-ahead log, as bytes on disk. */
function databaseBytes(dataDir: string): Buffer {
	return Buffer.concat(
		readdirSync(dataDir)
			.filter((f) => f.startsWith(DATABASE_FILE))
			.map((f) => readFileSync(join(dataDir, f)))
	);
}

function contains(haystack: Buffer, needle: Uint8Array): boolean {
	return haystack.indexOf(Buffer.from(needle)) >= 0;
}

/**
 * How many pieces of `bytes` are in `haystack`: 32-byte windows every 256
 * bytes and the last 32 (random ciphertext, tag and signature: a piece
 * found is a remnant, not a coincidence).
 */
function traces(haystack: Buffer, bytes: Uint8Array): { found: number; of: number } {
	const starts = [];
	for (let i = 0; i + 32 <= bytes.length; i += 256) starts.push(i);
	starts.push(bytes.length - 32);
	const found = starts.filter((i) => contains(haystack, bytes.subarray(i, i + 32))).length;
	return { found, of: starts.length };
}

/** Reads the relay's tables through a second, read-only connection. */
function query<T>(dataDir: string, sql: string, ...params: unknown[]): T[] {
	const db = new Database(join(dataDir, DATABASE_FILE), { readonly: true });
	try {
		return db.prepare(sql).all(...params) as T[];
	} finally {
		db.close();
	}
}

/** A room holding envelopes (one of them large enough for overflow pages), acknowledged. */
async function roomWithData(relay: RunningRelay, writes = 6) {
	const conversation = new Conversation();
	const member = await Member.create(conversation);
	const client = await RelayClient.join(relay.base, conversation, { doc: member.doc });
	const envelopes: Uint8Array[] = [];
	for (let i = 0; i < writes; i++) {
		const text = i === 0 ? 'x'.repeat(20_000) : `message ${i}`;
		const { update, entries } = await member.write([text]);
		envelopes.push(...entries.map((e) => e.bytes));
		client.sendUpdate(update);
		await client.acked(member.client, i + 1);
	}
	return { conversation, member, client, envelopes };
}

async function expectDenied(client: RelayClient, reason: string): Promise<void> {
	const closed = await Promise.race([
		client.closed,
		new Promise<{ code: number; reason: string }>((resolve) =>
			setTimeout(() => resolve({ code: 0, reason: 'timeout' }), 5000)
		)
	]);
	expect({ code: closed.code, reason: closed.reason, last: client.kinds().at(-1) }).toEqual({
		code: 4403,
		reason,
		last: `permission-denied(${reason})`
	});
}

async function joinAttempt(relay: RunningRelay, conversation: Conversation): Promise<RelayClient> {
	const cap = await conversation.capability();
	const params = new URLSearchParams(await accessParams(relay.base, conversation.roomId, cap));
	params.set('ack', '1');
	return RelayClient.raw(relay.base, `/sync/${conversation.roomId}?${params}`);
}

describe('room retirement', () => {
	it('deletes the room from the database file once every planned device moved', async () => {
		// Small rows are merged early, so deleted rows of compaction are on disk too.
		const relay = await startRelay({ relay: { compactAfterRows: 3 } });
		const { conversation, member, client, envelopes } = await roomWithData(relay);
		await client.until(() => relay.logs.some((l) => l.msg === 'compacted'), 10_000, 'a compaction');
		// Another room on the same relay, which must keep everything.
		const other = await roomWithData(relay, 2);

		const before = databaseBytes(relay.dataDir);
		// The scan can see them.
		for (const envelope of [...envelopes, ...other.envelopes]) {
			expect(stored(before, envelope)).toBe(true);
		}
		expect(traces(before, envelopes[0]!).of).toBeGreaterThan(70);

		const [a, b] = [newTag(), newTag()];
		const planned = await retire(relay, conversation, [a, b], Date.now() + DAY_MS);
		expect(planned.status).toBe(200);
		expect(planned.body).toMatchObject({ retired: false, devices: 2, pending: 2 });
		expect(planned.headers.get('cache-control')).toBe('no-store');
		expect(planned.headers.get('access-control-allow-origin')).toBe('*');

		// One device moved: nothing is deleted, the room still serves.
		expect((await moved(relay, conversation, a)).body).toMatchObject({
			retired: false,
			pending: 1
		});
		expect((await moved(relay, conversation, a)).body).toMatchObject({ pending: 1 }); // idempotent
		for (const envelope of envelopes) {
			expect(stored(databaseBytes(relay.dataDir), envelope)).toBe(true);
		}
		const late = await Member.create(conversation);
		const reader = await RelayClient.join(relay.base, conversation, { doc: late.doc });
		await reader.pull();
		expect(late.doc.size).toBe(envelopes.length);
		expect(client.ws.readyState).toBe(client.ws.OPEN);

		// The second one: the room is retired at once.
		const last = await moved(relay, conversation, b);
		expect(last).toMatchObject({ status: 200, body: { retired: true } });

		// The bytes are gone from the file and its log; the other room's are not.
		const after = databaseBytes(relay.dataDir);
		for (const envelope of envelopes) expect(traces(after, envelope).found).toBe(0);
		for (const envelope of other.envelopes) expect(stored(after, envelope)).toBe(true);
		const wal = join(relay.dataDir, `${DATABASE_FILE}-wal`);
		expect(existsSync(wal) ? statSync(wal).size : 0).toBe(0);
		expect(
			query(relay.dataDir, 'SELECT * FROM updates WHERE room = ?', conversation.roomId)
		).toEqual([]);
		expect(query(relay.dataDir, 'SELECT * FROM rooms WHERE id = ?', conversation.roomId)).toEqual(
			[]
		);
		expect(query<{ id: string }>(relay.dataDir, 'SELECT id FROM retired').map((r) => r.id)).toEqual(
			[conversation.roomId]
		);
		for (const table of ['retire_plans', 'retire_devices', 'moved']) {
			expect(query(relay.dataDir, `SELECT * FROM ${table}`)).toEqual([]);
		}

		// Open connections are closed with the admission refusal's frame and code.
		await expectDenied(client, 'room-retired');
		await expectDenied(reader, 'room-retired');
		// A new connection is refused, before its credentials are even looked at.
		await expectDenied(await joinAttempt(relay, conversation), 'room-retired');
		await expectDenied(
			RelayClient.raw(relay.base, `/sync/${conversation.roomId}?ack=1`),
			'room-retired'
		);
		// The member's own copy is untouched: retirement is the relay's business.
		expect(member.doc.size).toBe(envelopes.length);

		// Later requests about it: 410.
		expect(await moved(relay, conversation, b)).toMatchObject({
			status: 410,
			body: { error: 'room-retired' }
		});
		expect((await retire(relay, conversation, [a], Date.now())).status).toBe(410);

		// The other room is as it was.
		await other.client.pull();
		const metrics = await metricsText(relay.base);
		expect(metrics).toMatch(/^kith_rooms_retired_total 1$/m);
		expect(refusalCount(metrics, 'room-retired')).toBe(2);
		expect(Number(/^kith_storage_bytes (\d+)$/m.exec(metrics)![1])).toBe(
			query<{ n: number }>(relay.dataDir, 'SELECT sum(length(bytes)) AS n FROM updates')[0]!.n
		);
		const retired = relay.logs.filter((l) => l.msg === 'room retired');
		expect(retired).toEqual([
			expect.objectContaining({ room: conversation.roomId, why: 'moved', closed: 2 })
		]);
		// No tag or key in the log.
		const logs = JSON.stringify(relay.logs);
		const capText = toBase64Url((await conversation.capability()).publicKey);
		for (const secret of [a, b, capText]) expect(logs).not.toContain(secret);
	});

	it('counts moves reported before the plan, and keeps plan and moves across a restart', async () => {
		const relay = await startRelay();
		const { conversation } = await roomWithData(relay, 1);
		const [a, b, c] = [newTag(), newTag(), newTag()];
		expect((await moved(relay, conversation, a)).body).toEqual({
			retired: false,
			retainUntil: null,
			devices: null,
			pending: null
		});
		expect((await retire(relay, conversation, [a, b, c], Date.now() + DAY_MS)).body).toMatchObject({
			retired: false,
			devices: 3,
			pending: 2
		});
		// Replaced: another set of devices, the moves so far still count.
		expect((await retire(relay, conversation, [a, b], Date.now() + DAY_MS)).body).toMatchObject({
			retired: false,
			devices: 2,
			pending: 1
		});

		await relay.close();
		const restarted = await startRelay({ dataDir: relay.dataDir });
		expect((await moved(restarted, conversation, b)).body).toEqual({ retired: true });
		await restarted.close();
		// The tombstone outlives a restart too.
		const again = await startRelay({ dataDir: relay.dataDir });
		await expectDenied(await joinAttempt(again, conversation), 'room-retired');
	});

	it('retires without moves once the deadline passed: at once, or on the timer', async () => {
		let offset = 0;
		const relay = await startRelay({
			config: { retainMaxDays: 2 },
			relay: { now: () => Date.now() + offset, retireCheckMs: 25 }
		});

		// A deadline already past: retired by the request itself.
		const past = await roomWithData(relay, 1);
		const answer = await retire(relay, past.conversation, [newTag()], Date.now() - 1);
		expect(answer.body).toEqual({ retired: true });
		await expectDenied(past.client, 'room-retired');

		// A deadline beyond the maximum is clamped to it, then the timer retires the room.
		const { conversation, client, envelopes } = await roomWithData(relay, 2);
		const t = Date.now();
		const planned = await retire(relay, conversation, [newTag(), newTag()], t + 365 * DAY_MS);
		const retainUntil = planned.body.retainUntil as number;
		expect(retainUntil).toBeGreaterThanOrEqual(t + 2 * DAY_MS);
		expect(retainUntil).toBeLessThanOrEqual(Date.now() + 2 * DAY_MS);
		await new Promise((resolve) => setTimeout(resolve, 100)); // several checks: not due yet
		expect(client.ws.readyState).toBe(client.ws.OPEN);

		offset = 2 * DAY_MS + 60_000;
		await expectDenied(client, 'room-retired');
		const bytes = databaseBytes(relay.dataDir);
		for (const envelope of envelopes) expect(traces(bytes, envelope).found).toBe(0);
		expect(relay.logs.filter((l) => l.msg === 'room retired').map((l) => l.why)).toEqual([
			'deadline',
			'deadline'
		]);
	});

	it('changes nothing for a wrong capability, a bad signature or a replayed nonce', async () => {
		const relay = await startRelay();
		const { conversation, client } = await roomWithData(relay, 1);
		const room = conversation.roomId;
		const tag = newTag();
		const body = { devices: [tag], retainUntil: 0 };
		const stranger = await roomCapability(newSecretKey(), room);

		// A valid signature by another key.
		const wrong = await post(relay.base, '/sync/retire', room, {
			...(await retireProof(relay.base, room, stranger)),
			...body
		});
		expect(wrong).toMatchObject({ status: 403, body: { error: 'wrong-capability' } });
		const wrongMove = await post(
			relay.base,
			'/sync/moved',
			room,
			await movedProof(relay.base, room, stranger, tag)
		);
		expect(wrongMove).toMatchObject({ status: 403, body: { error: 'wrong-capability' } });

		// The right key over the wrong message: the access message, another room, another tag.
		const cap = await conversation.capability();
		const capText = toBase64Url(cap.publicKey);
		const forged = async (sign: (nonce: string) => Uint8Array, extra: object, path: string) => {
			const { nonce } = await fetchChallenge(relay.base, room);
			const sig = toBase64Url(await cap.sign(sign(nonce)));
			return post(relay.base, path, room, { cap: capText, nonce, sig, ...extra });
		};
		const elsewhere = new Conversation().roomId;
		for (const answer of [
			await forged((n) => accessMessage(room, n), body, '/sync/retire'),
			await forged((n) => retireMessage(elsewhere, n), body, '/sync/retire'),
			await forged((n) => retireMessage(room, n), { tag }, '/sync/moved'),
			await forged((n) => movedMessage(room, n, newTag()), { tag }, '/sync/moved'),
			await forged((n) => movedMessage(room, n, tag), body, '/sync/retire')
		]) {
			expect(answer).toMatchObject({ status: 403, body: { error: 'unauthorized' } });
		}

		// A nonce of another room, and a used one.
		const foreign = (await fetchChallenge(relay.base, elsewhere)).nonce;
		const foreignSig = toBase64Url(await cap.sign(retireMessage(room, foreign)));
		expect(
			await post(relay.base, '/sync/retire', room, {
				cap: capText,
				nonce: foreign,
				sig: foreignSig,
				...body
			})
		).toMatchObject({ status: 403, body: { error: 'bad-challenge' } });
		const proof = await retireProof(relay.base, room, cap);
		const planned = await post(relay.base, '/sync/retire', room, {
			...proof,
			devices: [tag],
			retainUntil: Date.now() + DAY_MS
		});
		expect(planned.body).toMatchObject({ retired: false, pending: 1 });
		const replayed = await post(relay.base, '/sync/retire', room, { ...proof, ...body });
		expect(replayed).toMatchObject({ status: 403, body: { error: 'replayed-challenge' } });
		// A nonce a WebSocket admission used is spent for these requests too.
		const spent = await accessParams(relay.base, room, cap);
		const ws = RelayClient.raw(relay.base, `/sync/${room}?${new URLSearchParams(spent)}`);
		await ws.next((f) => f.kind === 'sync-step1');
		const reused = await post(relay.base, '/sync/moved', room, {
			cap: capText,
			nonce: spent.nonce,
			sig: toBase64Url(await cap.sign(movedMessage(room, spent.nonce, tag))),
			tag
		});
		expect(reused).toMatchObject({ status: 403, body: { error: 'replayed-challenge' } });

		// Nothing of the refused requests took effect: the plan is the valid one, nobody moved.
		expect(query(relay.dataDir, 'SELECT room, tag FROM retire_devices')).toEqual([{ room, tag }]);
		expect(query(relay.dataDir, 'SELECT * FROM moved')).toEqual([]);
		expect(query(relay.dataDir, 'SELECT * FROM retired')).toEqual([]);
		expect(client.ws.readyState).toBe(client.ws.OPEN);
		expect((await metricsText(relay.base)).match(/^kith_rooms_retired_total (\d+)$/m)?.[1]).toBe(
			'0'
		);
	});

	it('answers 404 for an unknown room and 400 for malformed requests', async () => {
		const relay = await startRelay();
		const { conversation } = await roomWithData(relay, 1);
		const room = conversation.roomId;
		const cap = await conversation.capability();

		// Never claimed: a valid proof for a room the relay does not hold.
		const unknown = new Conversation();
		const unknownCap = await unknown.capability();
		expect(
			await post(relay.base, '/sync/retire', unknown.roomId, {
				...(await retireProof(relay.base, unknown.roomId, unknownCap)),
				devices: [newTag()],
				retainUntil: 0
			})
		).toMatchObject({ status: 404, body: { error: 'unknown-room' } });
		const tag = newTag();
		expect(
			await post(
				relay.base,
				'/sync/moved',
				unknown.roomId,
				await movedProof(relay.base, unknown.roomId, unknownCap, tag)
			)
		).toMatchObject({ status: 404, body: { error: 'unknown-room' } });
		// Nor did those requests claim it.
		expect(query(relay.dataDir, 'SELECT id FROM rooms WHERE id = ?', unknown.roomId)).toEqual([]);

		// Bad room ids.
		for (const bad of ['', 'short', `${room}x`]) {
			expect(await post(relay.base, '/sync/retire', bad, {})).toMatchObject({
				status: 400,
				body: { error: 'bad-room' }
			});
		}

		const proof = await retireProof(relay.base, room, cap);
		const tags = (n: number) => Array.from({ length: n }, newTag);
		const malformed: Array<[string, unknown]> = [
			['not JSON', '{"cap":'],
			['an array', '[]'],
			['null', 'null'],
			['no devices', { ...proof, retainUntil: 0 }],
			['no retainUntil', { ...proof, devices: tags(1) }],
			['no cap', { ...proof, cap: undefined, devices: tags(1), retainUntil: 0 }],
			['no devices listed', { ...proof, devices: [], retainUntil: 0 }],
			['too many', { ...proof, devices: tags(MAX_RETIRE_DEVICES + 1), retainUntil: 0 }],
			['a tag twice', { ...proof, devices: [tag, tag], retainUntil: 0 }],
			['a short tag', { ...proof, devices: [tag.slice(1)], retainUntil: 0 }],
			['a long tag', { ...proof, devices: [`${tag}A`], retainUntil: 0 }],
			['a tag of 33 bytes', { ...proof, devices: [tag.slice(0, 42) + 'B'], retainUntil: 0 }],
			['a tag with padding', { ...proof, devices: [`${tag.slice(0, 42)}=`], retainUntil: 0 }],
			['a number as tag', { ...proof, devices: [42], retainUntil: 0 }],
			['a negative deadline', { ...proof, devices: tags(1), retainUntil: -1 }],
			['a fractional deadline', { ...proof, devices: tags(1), retainUntil: 1.5 }],
			['a string deadline', { ...proof, devices: tags(1), retainUntil: '0' }],
			['an unknown field', { ...proof, devices: tags(1), retainUntil: 0, extra: 1 }],
			['a cap that is not base64url', { ...proof, cap: 'a+b/', devices: tags(1), retainUntil: 0 }],
			['too large', `{"pad":"${'x'.repeat(MAX_RETIRE_BODY_BYTES)}"}`]
		];
		for (const [what, body] of malformed) {
			const answer = await post(relay.base, '/sync/retire', room, body);
			expect([what, answer.status, answer.body.error]).toEqual([what, 400, 'bad-request']);
			expect(typeof answer.body.message).toBe('string');
		}
		for (const [what, body] of [
			['no tag', { ...proof }],
			['a bad tag', { ...proof, tag: 'abc' }],
			['devices instead', { ...proof, devices: tags(1) }]
		] as const) {
			const answer = await post(relay.base, '/sync/moved', room, body);
			expect([what, answer.status, answer.body.error]).toEqual([what, 400, 'bad-request']);
		}
		// The proof was never looked at: its nonce is still good.
		expect(
			await post(relay.base, '/sync/retire', room, {
				...proof,
				devices: tags(MAX_RETIRE_DEVICES),
				retainUntil: Date.now() + DAY_MS
			})
		).toMatchObject({ status: 200, body: { retired: false, devices: MAX_RETIRE_DEVICES } });
		expect(query(relay.dataDir, 'SELECT * FROM retired')).toEqual([]);

		// Other methods; the CORS preflight.
		expect((await fetch(`${relay.base}/sync/retire?room=${room}`)).status).toBe(405);
		const preflight = await fetch(`${relay.base}/sync/moved?room=${room}`, { method: 'OPTIONS' });
		expect(preflight.status).toBe(204);
		expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
		expect(preflight.headers.get('access-control-allow-methods')).toBe('POST');
		expect(preflight.headers.get('access-control-allow-headers')).toBe('Content-Type');
	});

	it('upgrades a schema 1 database, vacuuming away what was deleted without secure_delete', async () => {
		const dataDir = await tempDir('kith-retire-v1-');
		const stale = crypto.getRandomValues(new Uint8Array(300));
		const kept = crypto.getRandomValues(new Uint8Array(64));
		const db = new Database(join(dataDir, DATABASE_FILE));
		db.pragma('journal_mode = WAL');
		db.exec(`
			CREATE TABLE rooms (id TEXT PRIMARY KEY, cap BLOB NOT NULL, created INTEGER NOT NULL,
			                    bytes INTEGER NOT NULL DEFAULT 0);
			CREATE TABLE updates (seq INTEGER PRIMARY KEY, room TEXT NOT NULL, bytes BLOB NOT NULL);
			CREATE INDEX updates_by_room ON updates (room, seq);
			PRAGMA user_version = 1;
		`);
		const room = new Conversation().roomId;
		db.prepare('INSERT INTO rooms VALUES (?, ?, 0, ?)').run(room, Buffer.alloc(32), kept.length);
		db.prepare('INSERT INTO updates (room, bytes) VALUES (?, ?)').run(room, Buffer.from(stale));
		db.prepare('INSERT INTO updates (room, bytes) VALUES (?, ?)').run(room, Buffer.from(kept));
		db.pragma('wal_checkpoint(TRUNCATE)');
		db.prepare('DELETE FROM updates WHERE seq = 1').run(); // as compaction did
		db.close();
		expect(contains(databaseBytes(dataDir), stale)).toBe(true);

		const relay = await startRelay({ dataDir });
		const bytes = databaseBytes(dataDir);
		expect(contains(bytes, stale)).toBe(false);
		expect(contains(bytes, kept)).toBe(true);
		const version = new Database(join(dataDir, DATABASE_FILE), { readonly: true });
		expect(version.pragma('user_version', { simple: true })).toBe(2);
		version.close();
		expect((await metricsText(relay.base)).match(/^kith_storage_bytes (\d+)$/m)?.[1]).toBe('64');
	});

	it('keeps a bounded number of moved tags per room (store)', async () => {
		const store = new RelayStore(await tempDir('kith-retire-store-'));
		try {
			const room = new Conversation().roomId;
			store.claim(room, new Uint8Array(32), 0);
			const [a, b, c] = [newTag(), newTag(), newTag()];
			expect(store.markMoved(room, a, 1, 2)).toBe(true);
			expect(store.markMoved(room, b, 2, 2)).toBe(true);
			expect(store.markMoved(room, c, 3, 2)).toBe(false); // full: refused, not recorded
			expect(store.markMoved(room, a, 4, 2)).toBe(true); // known: idempotent
			store.plan(room, [a, c], 100, 5);
			expect(store.planOf(room)).toEqual({ retainUntil: 100, devices: 2, pending: 1 });
			expect(store.due(99)).toEqual([]);
			expect(store.due(100)).toEqual([room]);
			expect(store.isRetired(room)).toBe(false);
			store.retire(room, 100);
			expect(store.isRetired(room)).toBe(true);
			expect(store.capOf(room)).toBeUndefined();
			expect(store.planOf(room)).toBeUndefined();
			expect(store.checkpoint()).toBe(true);
		} finally {
			store.close();
		}
	});
});
