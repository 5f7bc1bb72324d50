import fc from 'fast-check';
import * as encoding from 'lib0/encoding';
import { beforeAll, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import {
	concatBytes,
	createSigner,
	newRoomId,
	newSecretKey,
	newSigningSeed,
	utf8Encode,
	type EnvelopeId,
	type RoomId,
	type SecretKey,
	type Signer
} from '../crypto';
import { clientIdFor, envelopeId, openEnvelope, sealEnvelope } from '../envelope';
import { ConversationDoc, LOCAL_ORIGIN, type EnvelopeEntry } from './conversation-doc';
import { checkUpdate, ENVELOPE_MAP } from './doc-rules';

interface Device {
	signer: Signer;
	client: number;
}

let roomId: RoomId;
let key: SecretKey;
let alice: Device;
let bob: Device;
let carol: Device;

async function device(): Promise<Device> {
	const signer = await createSigner(newSigningSeed());
	return { signer, client: clientIdFor(signer.publicKey) };
}

function envelope(from: Device, text: string) {
	return sealEnvelope({ roomId, epoch: 0, key, signer: from.signer, plaintext: utf8Encode(text) });
}

function docOf(from: Device): ConversationDoc {
	return new ConversationDoc(roomId, from.client);
}

function ids(doc: ConversationDoc): string[] {
	return [...doc.entries()].map((e) => e.id).sort();
}

function rawDoc(client: number): Y.Doc {
	const doc = new Y.Doc({ gc: false });
	doc.clientID = client;
	return doc;
}

/** An update holding one top-level entry at exactly (client, clock), with no origin. */
function itemAt(client: number, clock: number, entryKey: string, bytes: Uint8Array): Uint8Array {
	const doc = rawDoc(client);
	if (clock > 0) doc.getText('filler').insert(0, 'x'.repeat(clock));
	doc.getMap(ENVELOPE_MAP).set(entryKey, bytes);
	const encoder = encoding.createEncoder();
	encoding.writeVarUint(encoder, 1);
	encoding.writeVarUint(encoder, client);
	encoding.writeVarUint(encoder, clock);
	return Y.encodeStateAsUpdate(doc, encoding.toUint8Array(encoder));
}

async function expectPassesAtFreshReplica(doc: ConversationDoc) {
	const fresh = new ConversationDoc(roomId, 1);
	const check = await fresh.applyRemote(doc.encodeState(), 'test');
	expect(check.ok ? 'accepted' : check.reason).toBe('accepted');
	expect(ids(fresh)).toEqual(ids(doc));
}

beforeAll(async () => {
	roomId = newRoomId();
	key = newSecretKey();
	[alice, bob, carol] = await Promise.all([device(), device(), device()]);
});

describe('ConversationDoc', () => {
	it('is a Yjs doc with gc off, named by the room id, using the bound client id', () => {
		const doc = docOf(alice);
		expect(doc.doc.gc).toBe(false);
		expect(doc.doc.guid).toBe(roomId);
		expect(doc.doc.clientID).toBe(alice.client);
		expect(doc.clientId).toBe(alice.client);
	});

	it('inserts local envelopes in one transaction, skipping ids it holds', async () => {
		const doc = docOf(alice);
		const updates: Uint8Array[] = [];
		doc.doc.on('update', (u: Uint8Array) => updates.push(u));
		const sent = await Promise.all(['1', '2'].map((t) => envelope(alice, t)));
		doc.insertLocal(sent);
		expect(updates).toHaveLength(1);
		expect(doc.size).toBe(2);
		doc.insertLocal([sent[0] as EnvelopeEntry]);
		expect(updates).toHaveLength(1);
		expect(doc.has(sent[0]!.id)).toBe(true);
		expect(doc.get(sent[1]!.id)).toEqual(sent[1]!.bytes);
		expect(doc.get('nope' as EnvelopeId)).toBeUndefined();
	});

	it('a valid update is accepted, applied, and its entries reported with the origin', async () => {
		const a = docOf(alice);
		const b = docOf(bob);
		const seen: [string[], unknown][] = [];
		b.onEntries((entries, origin) => seen.push([entries.map((e) => e.id).sort(), origin]));
		const sent = await Promise.all(['hi', 'there'].map((t) => envelope(alice, t)));
		a.insertLocal(sent);
		const check = await b.applyRemote(a.encodeState(), 'relay');
		expect(check.ok).toBe(true);
		expect(ids(b)).toEqual(sent.map((e) => e.id).sort());
		expect(seen).toEqual([[sent.map((e) => e.id).sort(), 'relay']]);
		for (const { id, bytes } of sent) {
			expect(b.get(id)).toEqual(bytes);
			const opened = await openEnvelope(b.get(id) as Uint8Array, {
				roomId,
				keyForEpoch: () => key
			});
			expect(opened.signer).toEqual(alice.signer.publicKey);
		}
	});

	it('reports local inserts with LOCAL_ORIGIN, and stops reporting after unsubscribe', async () => {
		const doc = docOf(alice);
		const origins: unknown[] = [];
		const stop = doc.onEntries((_entries, origin) => origins.push(origin));
		doc.insertLocal([await envelope(alice, 'x')]);
		stop();
		doc.insertLocal([await envelope(alice, 'y')]);
		expect(origins).toEqual([LOCAL_ORIGIN]);
	});

	it('re-delivery of held items is accepted cheaply: nothing to check, nothing reported', async () => {
		const a = docOf(alice);
		const b = docOf(bob);
		a.insertLocal([await envelope(alice, 'once')]);
		const update = a.encodeState();
		await b.applyRemote(update, 'relay');
		let reported = 0;
		b.onEntries(() => reported++);
		const before = b.encodeState();
		expect(await b.applyRemote(update, 'peer')).toEqual({ ok: true, entries: [] });
		expect(reported).toBe(0);
		expect(b.encodeState()).toEqual(before);
	});

	it('the same update arriving twice at once (two paths) is applied once, refusing neither', async () => {
		const a = docOf(alice);
		const b = docOf(bob);
		a.insertLocal([await envelope(alice, 'x'), await envelope(alice, 'y')]);
		const update = a.encodeState();
		const [one, two] = await Promise.all([
			b.applyRemote(update, 'relay'),
			b.applyRemote(update, 'peer')
		]);
		expect(one.ok && two.ok).toBe(true);
		expect(b.size).toBe(2);
		await expectPassesAtFreshReplica(b);
	});

	it('keeps a validly signed envelope of an unknown newer version, and passes it on', async () => {
		const signed = concatBytes(new Uint8Array([2]), utf8Encode('v2 body'), alice.signer.publicKey);
		const signature = await alice.signer.sign(concatBytes(utf8Encode('kith/envelope\0'), signed));
		const bytes = concatBytes(signed, signature);
		const id = envelopeId(bytes);
		const a = docOf(alice);
		a.insertLocal([{ id, bytes }]);
		const b = docOf(bob);
		expect((await b.applyRemote(a.encodeState(), 'relay')).ok).toBe(true);
		expect(b.get(id)).toEqual(bytes);
		await expectPassesAtFreshReplica(b);
	});

	describe('a refused update leaves the doc unchanged', () => {
		async function expectRefusedUnchanged(update: Uint8Array, reason: string) {
			const b = docOf(bob);
			b.insertLocal([await envelope(bob, 'already here')]);
			const before = b.encodeState();
			let reported = 0;
			b.onEntries(() => reported++);
			const check = await b.applyRemote(update, 'attacker');
			expect(check.ok ? 'accepted' : check.reason).toBe(reason);
			expect(b.encodeState()).toEqual(before);
			expect(b.size).toBe(1);
			expect(reported).toBe(0);
			await expectPassesAtFreshReplica(b);
		}

		it('a delete', async () => {
			const a = docOf(alice);
			const sent = await envelope(alice, 'x');
			a.insertLocal([sent]);
			a.doc.getMap(ENVELOPE_MAP).delete(sent.id);
			await expectRefusedUnchanged(a.encodeState(), 'delete-set');
		});

		it('an overwrite', async () => {
			const a = rawDoc(alice.client);
			const sent = await envelope(alice, 'x');
			a.getMap(ENVELOPE_MAP).set(sent.id, sent.bytes);
			a.getMap(ENVELOPE_MAP).set(sent.id, (await envelope(alice, 'y')).bytes);
			await expectRefusedUnchanged(Y.encodeStateAsUpdate(a), 'delete-set');
		});

		it("another device's client id", async () => {
			const forger = new ConversationDoc(roomId, 424242);
			forger.insertLocal([await envelope(alice, 'x')]);
			await expectRefusedUnchanged(forger.encodeState(), 'client-mismatch');
		});

		it('a key that is not the hash, and non-binary content', async () => {
			const sent = await envelope(alice, 'x');
			const wrongKey = rawDoc(alice.client);
			wrongKey.getMap(ENVELOPE_MAP).set('chosen-key', sent.bytes);
			await expectRefusedUnchanged(Y.encodeStateAsUpdate(wrongKey), 'key-mismatch');
			const text = rawDoc(alice.client);
			text.getMap(ENVELOPE_MAP).set(sent.id, 'plaintext');
			await expectRefusedUnchanged(Y.encodeStateAsUpdate(text), 'not-binary');
		});

		it('another root', async () => {
			const other = rawDoc(alice.client);
			other.getArray('log').push(['plaintext']);
			await expectRefusedUnchanged(Y.encodeStateAsUpdate(other), 'wrong-root');
		});

		it('a forged signature', async () => {
			const forged = (await envelope(alice, 'x')).bytes.slice();
			forged[forged.length - 2] = (forged[forged.length - 2] as number) ^ 0x01;
			const a = docOf(alice);
			a.insertLocal([{ id: envelopeId(forged), bytes: forged }]);
			await expectRefusedUnchanged(a.encodeState(), 'bad-signature');
		});

		it('garbage', async () => {
			await expectRefusedUnchanged(utf8Encode('definitely not an update'), 'malformed-update');
		});

		it("a replay of a held envelope at another clock of its device: 'overwrite'", async () => {
			// Anyone can compute a device's client id; the clock of an item is not signed.
			const a = docOf(alice);
			const sent = await envelope(alice, 'original');
			a.insertLocal([sent]);
			const b = docOf(bob);
			await b.applyRemote(a.encodeState(), 'relay');
			const before = b.encodeState();
			const replay = itemAt(alice.client, 1, sent.id, sent.bytes);
			const check = await b.applyRemote(replay, 'attacker');
			expect(check.ok ? 'accepted' : check.reason).toBe('overwrite');
			expect(b.encodeState()).toEqual(before);
			// Without this refusal Yjs would delete one of the two values, and this doc's
			// state would carry a delete set every other replica refuses.
			await expectPassesAtFreshReplica(b);
		});
	});

	it("keeps its bound client id after loading its own device's history", async () => {
		const first = docOf(alice);
		first.insertLocal([await envelope(alice, 'before reload')]);
		// The app restarts: a new doc for the same device loads what it had.
		const reloaded = docOf(alice);
		expect((await reloaded.applyRemote(first.encodeState(), 'storage')).ok).toBe(true);
		const later = await envelope(alice, 'after reload');
		reloaded.insertLocal([later]);
		expect(reloaded.doc.clientID).toBe(alice.client);
		const b = docOf(bob);
		const check = await b.applyRemote(reloaded.encodeState(), 'relay');
		expect(check.ok ? 'accepted' : check.reason).toBe('accepted');
		expect(b.has(later.id)).toBe(true);
	});

	it('checkStored reports each stored update on its own', async () => {
		const a = docOf(alice);
		const updates: Uint8Array[] = [];
		a.doc.on('update', (u: Uint8Array) => updates.push(u));
		a.insertLocal([await envelope(alice, '1')]);
		a.insertLocal([await envelope(alice, '2')]);
		const forger = new ConversationDoc(roomId, 7);
		forger.insertLocal([await envelope(alice, 'x')]);
		const b = docOf(bob);
		expect(await b.checkStored([...updates, forger.encodeState(), new Uint8Array([0xff])])).toEqual(
			[true, true, false, false]
		);
	});

	it('replicas converge whatever the order and duplication of delivery', async () => {
		const sources = [docOf(alice), docOf(bob), docOf(carol)];
		const updates: Uint8Array[] = [];
		for (const doc of sources) doc.doc.on('update', (u: Uint8Array) => updates.push(u));
		for (let round = 0; round < 3; round++) {
			sources[0]!.insertLocal([await envelope(alice, `a${round}`)]);
			sources[1]!.insertLocal([
				await envelope(bob, `b${round}`),
				await envelope(bob, `bb${round}`)
			]);
			sources[2]!.insertLocal([await envelope(carol, `c${round}`)]);
		}
		const expected = [...new Set(sources.flatMap(ids))].sort();
		expect(expected).toHaveLength(12);
		await fc.assert(
			fc.asyncProperty(
				fc.shuffledSubarray(updates, { minLength: updates.length, maxLength: updates.length }),
				fc.array(fc.nat(updates.length - 1), { maxLength: 6 }),
				async (order, duplicates) => {
					const replica = new ConversationDoc(roomId, 99);
					for (const update of [...order, ...duplicates.map((i) => updates[i] as Uint8Array)]) {
						const check = await replica.applyRemote(update, 'net');
						expect(check.ok).toBe(true);
					}
					expect(ids(replica)).toEqual(expected);
					// And the replica's own state is a valid update for anyone else.
					expect((await checkUpdate(replica.encodeState())).ok).toBe(true);
				}
			),
			{ numRuns: 30 }
		);
	});

	// KNOWN GAP (reported, not fixed here): the Yjs clock of an item is not covered by
	// any signature. Whoever sees a device's envelope before a receiver does can place it
	// at that device's next clock; the receiver then holds that slot, skips the device's
	// real item there as already held, and refuses the device's later update because it
	// carries the same envelope again. The fix needs the clock bound into what is signed.
	it.fails(
		'an envelope replayed at a stolen clock cannot hide a device’s real envelope',
		async () => {
			const a = docOf(alice);
			const first = await envelope(alice, 'first');
			const second = await envelope(alice, 'second');
			a.insertLocal([first]);
			a.insertLocal([second]); // (alice, 1)
			const b = docOf(bob);
			// Bob has nothing yet; the attacker delivers `second` at (alice, 0).
			expect((await b.applyRemote(itemAt(alice.client, 0, second.id, second.bytes), 'x')).ok).toBe(
				true
			);
			await b.applyRemote(a.encodeState(), 'relay');
			expect(b.has(first.id)).toBe(true);
		}
	);
});
