import fc from 'fast-check';
import * as encoding from 'lib0/encoding';
import { beforeAll, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { concatBytes, utf8Encode } from '../crypto';
import { clientIdFor, envelopeId, verifyFrame } from '../envelope';
import { ConversationDoc } from './conversation-doc';
import {
	checkUpdate as checkUpdateAsync,
	checkUpdateSync,
	checkVouchedUpdate,
	ENVELOPE_MAP,
	knownState,
	type KnownClocks,
	type RuleCheck,
	type Vouch
} from './doc-rules';
import { device, rawDoc, TestRoom, withoutDeleteSet, type Device } from './test-support';

let room: TestRoom;
let alice: Device;
let bob: Device;

/** A version-2 frame: body this build cannot read, validly signed, for a clock. */
async function newerEnvelope(from: Device, clock: number) {
	const signed = concatBytes(
		new Uint8Array([2]),
		encoding.encode((encoder) => encoding.writeVarUint(encoder, clock)),
		utf8Encode('future body'),
		from.signer.publicKey
	);
	const signature = await from.signer.sign(concatBytes(utf8Encode('kith/envelope\0'), signed));
	const bytes = concatBytes(signed, signature);
	return { id: envelopeId(bytes), bytes };
}

function stateVector(entries: [number, number][]): Uint8Array {
	const encoder = encoding.createEncoder();
	encoding.writeVarUint(encoder, entries.length);
	for (const [client, clock] of entries) {
		encoding.writeVarUint(encoder, client);
		encoding.writeVarUint(encoder, clock);
	}
	return encoding.toUint8Array(encoder);
}

/** An update holding one top-level entry at exactly (client, clock), with no origin. */
function itemAt(client: number, clock: number, entryKey: string, bytes: Uint8Array): Uint8Array {
	const doc = rawDoc(client);
	if (clock > 0) doc.getText('filler').insert(0, 'x'.repeat(clock));
	doc.getMap(ENVELOPE_MAP).set(entryKey, bytes);
	const update = Y.encodeStateAsUpdate(doc, stateVector([[client, clock]]));
	const structs = Y.decodeUpdate(update).structs;
	expect(structs).toHaveLength(1);
	expect(structs[0]?.id).toEqual({ client, clock });
	return update;
}

/**
 * Every case runs both checks: `checkUpdate` (WebCrypto, awaited) and
 * `checkUpdateSync` (the relay's; noble here, as no platform verifier is
 * installed). They must agree exactly.
 */
async function checkUpdate(update: Uint8Array, known?: KnownClocks): Promise<RuleCheck> {
	const check = await checkUpdateAsync(update, known);
	expect(checkUpdateSync(update, known)).toEqual(check);
	return check;
}

function refusal(check: RuleCheck): string {
	return check.ok ? 'accepted' : check.reason;
}

/** Whatever checkUpdate accepts must really satisfy every rule. */
async function expectOnlyValidEntries(check: RuleCheck) {
	if (!check.ok) return;
	for (const entry of check.entries) {
		expect(entry.id).toBe(envelopeId(entry.bytes));
		expect(entry.client).toBe(clientIdFor(entry.frame.signer));
		expect(entry.clock).toBe(entry.frame.clock);
		expect(await verifyFrame(entry.frame)).toBe(true);
	}
}

beforeAll(async () => {
	room = new TestRoom();
	[alice, bob] = await Promise.all([device(), device()]);
});

describe('checkUpdate accepts', () => {
	it("a device's inserts, returning each entry with its id, frame and Yjs item id", async () => {
		const doc = new ConversationDoc(room.roomId, alice.client);
		const sent = await room.nextEnvelopes(doc, alice, ['one', 'two', 'three']);
		doc.insertLocal(sent);
		const check = await checkUpdate(doc.encodeState());
		expect(check.ok).toBe(true);
		if (!check.ok) return;
		expect(check.entries.map((e) => e.id).sort()).toEqual(sent.map((e) => e.id).sort());
		for (const entry of check.entries) {
			expect(entry.client).toBe(alice.client);
			expect(entry.frame.signer).toEqual(alice.signer.publicKey);
			expect(entry.frame.clock).toBe(entry.clock);
		}
		expect(check.entries.map((e) => e.clock).sort()).toEqual([0, 1, 2]);
	});

	it('the empty update', async () => {
		expect(await checkUpdate(Y.encodeStateAsUpdate(new Y.Doc()))).toEqual({
			ok: true,
			entries: [],
			held: false,
			spans: []
		});
	});

	it('a merged update of several devices, and each incremental update', async () => {
		const a = new ConversationDoc(room.roomId, alice.client);
		const b = new ConversationDoc(room.roomId, bob.client);
		const incremental: Uint8Array[] = [];
		a.doc.on('update', (u: Uint8Array) => incremental.push(u));
		b.doc.on('update', (u: Uint8Array) => incremental.push(u));
		a.insertLocal(await room.nextEnvelopes(a, alice, ['a1']));
		b.insertLocal(await room.nextEnvelopes(b, bob, ['b1', 'b2']));
		a.insertLocal(await room.nextEnvelopes(a, alice, ['a2']));
		for (const update of incremental) expect(refusal(await checkUpdate(update))).toBe('accepted');
		const merged = Y.mergeUpdates([a.encodeState(), b.encodeState()]);
		const check = await checkUpdate(merged);
		expect(check.ok && check.entries.length).toBe(4);
	});

	it('an envelope of an unknown newer version that is validly signed, at its clock (kept, not dropped)', async () => {
		const doc = new ConversationDoc(room.roomId, alice.client);
		doc.insertLocal(await room.nextEnvelopes(doc, alice, ['before']));
		const future = await newerEnvelope(alice, 1);
		doc.insertLocal([future]);
		const check = await checkUpdate(doc.encodeState());
		expect(check.ok).toBe(true);
		if (!check.ok) return;
		const kept = check.entries.find((e) => e.id === future.id);
		expect(kept?.frame.version).toBe(2);
		expect(kept?.frame.clock).toBe(1);
		expect(kept?.clock).toBe(1);
	});

	it('items below the known state vector without looking at them (cheap re-delivery)', async () => {
		const doc = new ConversationDoc(room.roomId, alice.client);
		doc.insertLocal(await room.nextEnvelopes(doc, alice, ['x', 'y']));
		const check = await checkUpdate(doc.encodeState(), knownState(doc.doc));
		// Still reported as ranges the sender holds (client, clock, end).
		expect(check).toEqual({
			ok: true,
			entries: [],
			held: true,
			spans: [alice.client, 0, 1, alice.client, 1, 2]
		});
		// Partly known: only the unknown item is checked and returned.
		const partly = await checkUpdate(doc.encodeState(), new Map([[alice.client, 1]]));
		expect(partly.ok && partly.entries.map((e) => e.clock)).toEqual([1]);
		expect(partly.ok && partly.held).toBe(true);
		// Nothing known: every item is new.
		const fresh = await checkUpdate(doc.encodeState(), new Map([[bob.client, 5]]));
		expect(fresh.ok && fresh.held).toBe(false);
	});
});

describe('checkUpdate refuses', () => {
	it("a delete set: 'delete-set'", async () => {
		const doc = new ConversationDoc(room.roomId, alice.client);
		const sent = await room.envelope(alice, 'to be deleted', 0);
		doc.insertLocal([sent]);
		doc.doc.getMap(ENVELOPE_MAP).delete(sent.id);
		expect(refusal(await checkUpdate(doc.encodeState()))).toBe('delete-set');
		// Even alone, without any struct.
		const onlyDs = Y.encodeStateAsUpdate(doc.doc, Y.encodeStateVector(doc.doc));
		expect(Y.decodeUpdate(onlyDs).structs).toHaveLength(0);
		expect(refusal(await checkUpdate(onlyDs))).toBe('delete-set');
	});

	it("an overwrite (a second set of an existing key): refused, 'overwrite' behind the delete set", async () => {
		const doc = rawDoc(alice.client);
		const first = await room.envelope(alice, 'first', 0);
		const map = doc.getMap(ENVELOPE_MAP);
		map.set(first.id, first.bytes);
		map.set(first.id, (await room.envelope(alice, 'second', 1)).bytes);
		const update = Y.encodeStateAsUpdate(doc);
		expect(refusal(await checkUpdate(update))).toBe('delete-set');
		expect(refusal(await checkUpdate(withoutDeleteSet(update)))).toBe('overwrite');
		// Only the second value (which has the first as its origin), no delete set.
		const second = withoutDeleteSet(Y.encodeStateAsUpdate(doc, stateVector([[alice.client, 1]])));
		expect(refusal(await checkUpdate(second))).toBe('overwrite');
	});

	it("two values for one key in one update, neither with an origin: 'overwrite'", async () => {
		const sent = await room.envelope(alice, 'twice', 0);
		const both = Y.mergeUpdates([
			itemAt(alice.client, 0, sent.id, sent.bytes),
			itemAt(alice.client, 1, sent.id, sent.bytes)
		]);
		expect(Y.decodeUpdate(both).structs).toHaveLength(2);
		expect(refusal(await checkUpdate(both))).toBe('overwrite');
	});

	it("an entry whose Yjs client id is not its signer's: 'client-mismatch'", async () => {
		const sent = await room.envelope(alice, 'hello', 0);
		for (const client of [bob.client, 12345, (alice.client + 1) >>> 0]) {
			const doc = new ConversationDoc(room.roomId, client);
			doc.insertLocal([sent]);
			expect(refusal(await checkUpdate(doc.encodeState()))).toBe('client-mismatch');
		}
	});

	it("a key that is not the envelope's hash: 'key-mismatch'", async () => {
		const sent = await room.envelope(alice, 'hello', 0);
		const other = await room.envelope(alice, 'other', 0);
		for (const wrongKey of ['not-a-hash', other.id, sent.id.slice(0, -1) + 'A', '']) {
			if (wrongKey === sent.id) continue;
			const doc = rawDoc(alice.client);
			doc.getMap(ENVELOPE_MAP).set(wrongKey, sent.bytes);
			expect(refusal(await checkUpdate(Y.encodeStateAsUpdate(doc)))).toBe('key-mismatch');
		}
	});

	it("non-binary content: 'not-binary'", async () => {
		const sent = await room.envelope(alice, 'hello', 0);
		const values: unknown[] = ['a string', 42, null, { bytes: [...sent.bytes] }, [...sent.bytes]];
		for (const value of values) {
			const doc = rawDoc(alice.client);
			doc.getMap(ENVELOPE_MAP).set(sent.id, value);
			expect(refusal(await checkUpdate(Y.encodeStateAsUpdate(doc)))).toBe('not-binary');
		}
	});

	it("a nested type: 'not-binary' for the type, 'nested-type' for what it holds", async () => {
		const sent = await room.envelope(alice, 'hello', 0);
		for (const nested of [new Y.Map<unknown>(), new Y.Array<unknown>(), new Y.Text()]) {
			const doc = rawDoc(alice.client);
			doc.getMap(ENVELOPE_MAP).set(sent.id, nested);
			if (nested instanceof Y.Map) nested.set(sent.id, sent.bytes);
			if (nested instanceof Y.Array) nested.push([sent.bytes]);
			if (nested instanceof Y.Text) nested.insert(0, 'text');
			expect(refusal(await checkUpdate(Y.encodeStateAsUpdate(doc)))).toBe('not-binary');
			// What the nested type holds, sent on its own (the type item already delivered).
			const inner = Y.encodeStateAsUpdate(doc, stateVector([[alice.client, 1]]));
			expect(refusal(await checkUpdate(inner))).toBe('nested-type');
		}
	});

	it("another root name: 'wrong-root'; an unkeyed item under 'e': 'nested-type'", async () => {
		const sent = await room.envelope(alice, 'hello', 0);
		const map = rawDoc(alice.client);
		map.getMap('x').set(sent.id, sent.bytes);
		expect(refusal(await checkUpdate(Y.encodeStateAsUpdate(map)))).toBe('wrong-root');
		const text = rawDoc(alice.client);
		text.getText('messages').insert(0, 'plaintext!');
		expect(refusal(await checkUpdate(Y.encodeStateAsUpdate(text)))).toBe('wrong-root');
		const array = rawDoc(alice.client);
		array.getArray(ENVELOPE_MAP).push([sent.bytes]);
		expect(refusal(await checkUpdate(Y.encodeStateAsUpdate(array)))).toBe('nested-type');
	});

	it("a forged signature, even with the key re-hashed and the client right: 'bad-signature'", async () => {
		const sent = await room.envelope(alice, 'hello', 0);
		for (const position of [sent.bytes.length - 1, sent.bytes.length - 64, 5, 30]) {
			const forged = sent.bytes.slice();
			forged[position] = (forged[position] as number) ^ 0x01;
			const doc = new ConversationDoc(room.roomId, alice.client);
			doc.insertLocal([{ id: envelopeId(forged), bytes: forged }]);
			expect(refusal(await checkUpdate(doc.encodeState()))).toBe('bad-signature');
		}
	});

	it('a single bad envelope among good ones: the update is refused whole', async () => {
		const doc = new ConversationDoc(room.roomId, alice.client);
		const good = await room.nextEnvelopes(doc, alice, ['1', '2', '3']);
		const bad = (await room.envelope(alice, '4', 3)).bytes.slice();
		bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 0x01;
		doc.insertLocal([...good, { id: envelopeId(bad), bytes: bad }]);
		expect(refusal(await checkUpdate(doc.encodeState()))).toBe('bad-signature');
	});

	it("an envelope replanted at another clock of its device, validly signed: 'clock-mismatch'", async () => {
		// Anyone can compute a device's client id and copy its envelope; only the
		// clock the device signed is accepted.
		const sent = await room.envelope(alice, 'hello', 3);
		expect(refusal(await checkUpdate(itemAt(alice.client, 3, sent.id, sent.bytes)))).toBe(
			'accepted'
		);
		for (const clock of [0, 1, 2, 4, 100]) {
			const replanted = itemAt(alice.client, clock, sent.id, sent.bytes);
			expect([clock, refusal(await checkUpdate(replanted))]).toEqual([clock, 'clock-mismatch']);
		}
	});

	it("a replanted envelope of a newer version: 'clock-mismatch' too (the rule holds for every version)", async () => {
		const future = await newerEnvelope(alice, 2);
		expect(refusal(await checkUpdate(itemAt(alice.client, 2, future.id, future.bytes)))).toBe(
			'accepted'
		);
		for (const clock of [0, 1, 3]) {
			const replanted = itemAt(alice.client, clock, future.id, future.bytes);
			expect(refusal(await checkUpdate(replanted))).toBe('clock-mismatch');
		}
	});

	it("a replanted envelope among valid items of the same update: refused whole, 'clock-mismatch'", async () => {
		const doc = new ConversationDoc(room.roomId, alice.client);
		const sent = await room.nextEnvelopes(doc, alice, ['0', '1']);
		doc.insertLocal(sent);
		const stolen = await room.envelope(alice, 'a later message', 5);
		const merged = Y.mergeUpdates([
			doc.encodeState(),
			itemAt(alice.client, 2, stolen.id, stolen.bytes)
		]);
		expect(Y.decodeUpdate(merged).structs).toHaveLength(3);
		expect(refusal(await checkUpdate(merged))).toBe('clock-mismatch');
	});

	it("a replanted envelope whose signature is also forged: 'clock-mismatch' (checked before signatures)", async () => {
		const forged = (await room.envelope(alice, 'hello', 0)).bytes.slice();
		forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 0x01;
		const id = envelopeId(forged);
		expect(refusal(await checkUpdate(itemAt(alice.client, 0, id, forged)))).toBe('bad-signature');
		expect(refusal(await checkUpdate(itemAt(alice.client, 1, id, forged)))).toBe('clock-mismatch');
	});

	it("an entry that is not an envelope frame: 'malformed-envelope'", async () => {
		const frames = [
			new Uint8Array(0),
			new Uint8Array(96).fill(1),
			new Uint8Array(97).fill(1), // version 1, but no room left for a clock
			new Uint8Array(200)
		];
		for (const bytes of frames) {
			const doc = rawDoc(alice.client);
			doc.getMap(ENVELOPE_MAP).set(envelopeId(bytes), bytes);
			expect(refusal(await checkUpdate(Y.encodeStateAsUpdate(doc)))).toBe('malformed-envelope');
		}
	});

	it("garbage-collected structs: 'gc' (behind the delete set)", async () => {
		const doc = new Y.Doc({ gc: true });
		doc.clientID = alice.client;
		const nested = new Y.Map<unknown>();
		doc.getMap(ENVELOPE_MAP).set('k', nested);
		nested.set('inner', 'value');
		doc.getMap(ENVELOPE_MAP).delete('k');
		const full = Y.encodeStateAsUpdate(doc);
		expect(refusal(await checkUpdate(full))).toBe('delete-set');
		const gcOnly = withoutDeleteSet(Y.encodeStateAsUpdate(doc, stateVector([[alice.client, 1]])));
		expect(Y.decodeUpdate(gcOnly).structs[0]).toBeInstanceOf(Y.GC);
		expect(refusal(await checkUpdate(gcOnly))).toBe('gc');
	});

	it("garbage bytes: 'malformed-update'", async () => {
		for (const garbage of [
			new Uint8Array([0xff]),
			new Uint8Array([1, 1, 0xff, 0xff, 0xff]),
			utf8Encode('hello world, not a Yjs update'),
			new Uint8Array([5])
		]) {
			expect(refusal(await checkUpdate(garbage))).toBe('malformed-update');
		}
	});
});

describe('checkUpdate never throws', () => {
	let valid: Uint8Array;

	beforeAll(async () => {
		const a = new ConversationDoc(room.roomId, alice.client);
		const b = new ConversationDoc(room.roomId, bob.client);
		a.insertLocal(await room.nextEnvelopes(a, alice, ['a1', 'a2']));
		b.insertLocal([await room.envelope(bob, 'b1', 0), await newerEnvelope(bob, 1)]);
		valid = Y.mergeUpdates([a.encodeState(), b.encodeState()]);
		expect((await checkUpdate(valid)).ok).toBe(true);
	});

	it('on random bytes', async () => {
		await fc.assert(
			fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), async (bytes) => {
				await expectOnlyValidEntries(await checkUpdate(bytes));
			}),
			{ numRuns: 500 }
		);
	});

	it('on every truncation of a valid update', async () => {
		for (let length = 0; length < valid.length; length++) {
			await expectOnlyValidEntries(await checkUpdate(valid.slice(0, length)));
		}
	});

	it('on random truncations, byte changes and insertions of a valid update', async () => {
		const mutation = fc.oneof(
			fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.nat(255) }),
			fc.record({ kind: fc.constant('cut' as const), at: fc.nat(), value: fc.nat() }),
			fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.nat(255) })
		);
		await fc.assert(
			fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), async (mutations) => {
				let bytes: Uint8Array = valid.slice();
				for (const { kind, at, value } of mutations) {
					const position = bytes.length === 0 ? 0 : at % bytes.length;
					if (kind === 'set') bytes[position] = value;
					if (kind === 'cut') bytes = bytes.slice(0, position);
					if (kind === 'insert') {
						bytes = concatBytes(
							bytes.subarray(0, position),
							new Uint8Array([value]),
							bytes.subarray(position)
						);
					}
				}
				await expectOnlyValidEntries(await checkUpdate(bytes));
			}),
			{ numRuns: 400 }
		);
	});
});

describe('knownState', () => {
	it("reads the doc's current clocks, like its state vector", async () => {
		const doc = new ConversationDoc(room.roomId, alice.client);
		const known = knownState(doc.doc);
		expect(known.get(alice.client) ?? 0).toBe(0);
		doc.insertLocal(await room.nextEnvelopes(doc, alice, ['1', '2']));
		// A live view: the same object sees the insert.
		expect(known.get(alice.client)).toBe(2);
		expect(known.get(bob.client) ?? 0).toBe(0);
		expect(Y.decodeStateVector(Y.encodeStateVector(doc.doc))).toEqual(new Map([[alice.client, 2]]));
	});
});

describe('checkVouchedUpdate (a device being linked, with its other device’s word)', () => {
	type Entry = { id: ReturnType<typeof envelopeId>; bytes: Uint8Array };
	/** Valid envelopes of alice and bob for clocks 0..5, and a forged twin of each. */
	let valid: { alice: Entry[]; bob: Entry[] };
	let forged: { alice: Entry[]; bob: Entry[] };
	const empty = new Map<number, number>();

	const forge = (entry: Entry): Entry => {
		const bytes = entry.bytes.slice();
		bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0x01;
		return { id: envelopeId(bytes), bytes };
	};
	const envelopes = async (from: Device) =>
		Promise.all([0, 1, 2, 3, 4, 5].map((clock) => room.envelope(from, `m${clock}`, clock)));

	beforeAll(async () => {
		const [a, b] = await Promise.all([envelopes(alice), envelopes(bob)]);
		valid = { alice: a, bob: b };
		forged = { alice: a.map(forge), bob: b.map(forge) };
	});

	/** A doc holding these envelopes of alice and bob (each list in clock order from 0). */
	async function docOf(ofAlice: Entry[], ofBob: Entry[]): Promise<ConversationDoc> {
		const doc = new ConversationDoc(room.roomId, alice.client);
		if (ofAlice.length > 0) doc.insertLocal(ofAlice);
		if (ofBob.length > 0) {
			const other = new ConversationDoc(room.roomId, bob.client);
			other.insertLocal(ofBob);
			// Applied as it is, without the rules: this helper also builds an attacker's doc.
			Y.applyUpdate(doc.doc, other.encodeState());
		}
		return doc;
	}

	function vouchOf(doc: ConversationDoc): Vouch {
		const { stateVector, digest } = doc.vouchFor();
		return { stateVector: Y.decodeStateVector(stateVector), digest };
	}

	it('the vouched set: accepted with the same entries checkUpdate gives', async () => {
		const source = await docOf(valid.alice.slice(0, 4), valid.bob.slice(0, 3));
		const update = source.encodeState();
		const vouched = await checkVouchedUpdate(update, empty, vouchOf(source));
		expect(vouched).toEqual(await checkUpdate(update));
		expect(vouched.ok && vouched.entries).toHaveLength(7);
	});

	it('what the vouch covers is not verified again; what it does not cover is', async () => {
		// A vouching device whose doc held a forged envelope (it never would: its
		// own checks refuse one) shows that the vouched set is taken on its word.
		const trusting = await docOf([valid.alice[0]!, forged.alice[1]!], []);
		const update = trusting.encodeState();
		expect(refusal(await checkUpdate(update))).toBe('bad-signature');
		expect(refusal(await checkVouchedUpdate(update, empty, vouchOf(trusting)))).toBe('accepted');
		// Beyond the vouched state vector, every signature is checked.
		const source = await docOf(valid.alice.slice(0, 2), []);
		const more = await docOf([...valid.alice.slice(0, 2), forged.alice[2]!], []);
		expect(refusal(await checkVouchedUpdate(more.encodeState(), empty, vouchOf(source)))).toBe(
			'bad-signature'
		);
	});

	it('a relay that swaps, adds or drops an envelope below the vouch gets every signature checked', async () => {
		const source = await docOf(valid.alice.slice(0, 3), valid.bob.slice(0, 2));
		const vouch = vouchOf(source);
		const swapped = await docOf(
			[valid.alice[0]!, forged.alice[1]!, valid.alice[2]!],
			valid.bob.slice(0, 2)
		);
		expect(refusal(await checkVouchedUpdate(swapped.encodeState(), empty, vouch))).toBe(
			'bad-signature'
		);
		// Fewer entries than vouched for: the digest differs, all are verified (and valid here).
		const fewer = await docOf(valid.alice.slice(0, 2), valid.bob.slice(0, 2));
		expect(await checkVouchedUpdate(fewer.encodeState(), empty, vouch)).toEqual(
			await checkUpdate(fewer.encodeState())
		);
	});

	it('rules 1–4 still hold under a vouch', async () => {
		const source = await docOf(valid.alice.slice(0, 1), []);
		const sent = valid.alice[0]!;
		// The right bytes under a wrong key, at the right item id.
		const update = itemAt(alice.client, 0, valid.alice[1]!.id, sent.bytes);
		expect(refusal(await checkVouchedUpdate(update, empty, vouchOf(source)))).toBe('key-mismatch');
		const doc = rawDoc(alice.client, source);
		doc.getMap(ENVELOPE_MAP).delete(sent.id);
		expect(
			refusal(await checkVouchedUpdate(Y.encodeStateAsUpdate(doc), empty, vouchOf(source)))
		).toBe('delete-set');
	});

	it('property: with the word of a device that holds only valid envelopes, the answers are checkUpdate’s', async () => {
		await fc.assert(
			fc.asyncProperty(
				fc.record({
					vouchedAlice: fc.nat(6),
					vouchedBob: fc.nat(6),
					sentAlice: fc.nat(6),
					sentBob: fc.nat(6),
					forgedAt: fc.option(fc.tuple(fc.boolean(), fc.nat(5)), { nil: undefined })
				}),
				async ({ vouchedAlice, vouchedBob, sentAlice, sentBob, forgedAt }) => {
					const source = await docOf(
						valid.alice.slice(0, vouchedAlice),
						valid.bob.slice(0, vouchedBob)
					);
					const ofAlice = valid.alice.slice(0, sentAlice);
					const ofBob = valid.bob.slice(0, sentBob);
					if (forgedAt) {
						const [isAlice, at] = forgedAt;
						const list = isAlice ? ofAlice : ofBob;
						if (at < list.length) list[at] = (isAlice ? forged.alice : forged.bob)[at]!;
					}
					const update = (await docOf(ofAlice, ofBob)).encodeState();
					const expected = await checkUpdate(update);
					expect(await checkVouchedUpdate(update, empty, vouchOf(source))).toEqual(expected);
				}
			),
			{ numRuns: 150 }
		);
	});
});
