/**
 * The doc rules at the relay: a member holding the room's capability still
 * cannot delete, overwrite, impersonate or forge. Each bad update is refused
 * with `doc-rules:<reason>`, and is neither stored nor forwarded.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { ConversationDoc, ENVELOPE_MAP, updateSince } from '../../../src/lib/conversation/index.ts';
import { envelopeId } from '../../../src/lib/envelope/index.ts';
import { rawDoc, withoutDeleteSet } from '../../../src/lib/conversation/test-support.ts';
import {
	cleanUp,
	Conversation,
	ids,
	Member,
	metricsText,
	refusalCount,
	RelayClient,
	startRelay
} from './test-support.ts';

afterEach(cleanUp);

describe('doc rules at the relay', () => {
	it('refuses deletes, overwrites, borrowed client ids, wrong clocks and forgeries, storing and forwarding none', async () => {
		const relay = await startRelay();
		const conversation = new Conversation();
		const alice = await Member.create(conversation);
		const bob = await Member.create(conversation);
		const mallory = await Member.create(conversation); // a member: holds the capability
		const a = await RelayClient.join(relay.base, conversation, { doc: alice.doc });
		const b = await RelayClient.join(relay.base, conversation, { doc: bob.doc });
		const m = await RelayClient.join(relay.base, conversation);

		const first = await alice.write(['first']);
		a.sendUpdate(first.update);
		await a.acked(alice.client, 1);
		await b.until(() => bob.doc.size === 1);
		const target = first.entries[0]!;
		const relayState = Y.encodeStateVector(alice.doc.doc);

		const attacks: Array<[string, Uint8Array]> = [];

		// Delete Alice's envelope.
		const deleting = rawDoc(mallory.client, alice.doc);
		deleting.getMap(ENVELOPE_MAP).delete(target.id);
		attacks.push(['delete-set', Y.encodeStateAsUpdate(deleting, relayState)]);

		// Overwrite it with Mallory's own (validly signed) envelope; with and without the deletion.
		const own = await mallory.seal('replacement', 0);
		const overwriting = rawDoc(mallory.client, alice.doc);
		overwriting.getMap(ENVELOPE_MAP).set(target.id, own.bytes);
		const overwrite = Y.encodeStateAsUpdate(overwriting, relayState);
		attacks.push(['delete-set', overwrite]);
		attacks.push(['overwrite', withoutDeleteSet(overwrite)]);

		// Insert Mallory's envelope under Alice's client id (at Alice's next clock).
		const borrowed = new ConversationDoc(conversation.roomId, alice.client);
		Y.applyUpdate(borrowed.doc, alice.doc.encodeState());
		borrowed.insertLocal([await mallory.seal('as alice', 1)]);
		attacks.push(['client-mismatch', updateSince(borrowed, relayState)]);

		// Mallory's envelope signed for clock 5, placed at clock 0.
		const early = await mallory.seal('too early', 5);
		const misplaced = rawDoc(mallory.client);
		misplaced.getMap(ENVELOPE_MAP).set(early.id, early.bytes);
		attacks.push(['clock-mismatch', Y.encodeStateAsUpdate(misplaced)]);

		// A forged signature (one flipped bit), key re-hashed, client and clock right.
		const genuine = await mallory.seal('tampered', 0);
		const forged = genuine.bytes.slice();
		forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 1;
		const forging = new ConversationDoc(conversation.roomId, mallory.client);
		forging.insertLocal([{ id: envelopeId(forged), bytes: forged }]);
		attacks.push(['bad-signature', forging.encodeState()]);

		// One valid envelope in the same update as a forged one: refused whole.
		const mixed = new ConversationDoc(conversation.roomId, mallory.client);
		const valid = await mallory.seal('valid', 0);
		const bad = (await mallory.seal('bad', 1)).bytes.slice();
		bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1;
		mixed.insertLocal([valid, { id: envelopeId(bad), bytes: bad }]);
		attacks.push(['bad-signature', mixed.encodeState()]);

		// Not an update at all.
		attacks.push(['malformed-update', new Uint8Array([0xff, 0xff, 0xff])]);

		for (const [reason, update] of attacks) {
			const seen = m.frames.length;
			m.sendUpdate(update);
			const answer = await m.next((f) => f.kind === 'refused' || f.kind === 'stored', seen);
			expect([reason, answer.kind === 'refused' ? answer.reason : answer.kind]).toEqual([
				reason,
				`doc-rules:${reason}`
			]);
		}
		expect(m.ws.readyState).toBe(m.ws.OPEN); // a refusal keeps the connection

		// A valid write after the attacks: Bob receives it, and nothing else was forwarded.
		const second = await alice.write(['second']);
		a.sendUpdate(second.update);
		await b.until(() => bob.doc.size === 2);
		expect(b.frames.filter((f) => f.kind === 'sync-update')).toHaveLength(2);
		expect(ids(bob.doc)).toEqual(ids(alice.doc));
		expect(b.docRefusals).toEqual([]);

		// A fresh client receives exactly Alice's two envelopes.
		const carol = await Member.create(conversation);
		const c = await RelayClient.join(relay.base, conversation, { doc: carol.doc });
		await c.pull();
		expect(ids(carol.doc)).toEqual(ids(alice.doc));
		expect(carol.doc.get(target.id)).toEqual(target.bytes);

		const metrics = await metricsText(relay.base);
		expect(metrics).toMatch(/^kith_updates_stored_total 2$/m);
		expect(refusalCount(metrics, 'doc-rules:delete-set')).toBe(2);
		for (const reason of ['overwrite', 'client-mismatch', 'clock-mismatch', 'malformed-update']) {
			expect(refusalCount(metrics, `doc-rules:${reason}`)).toBe(1);
		}
		expect(refusalCount(metrics, 'doc-rules:bad-signature')).toBe(2);
		const logged = relay.logs.filter((l) => l.msg === 'refused');
		expect(logged).toHaveLength(attacks.length);
		expect(logged.every((l) => l.room === conversation.roomId && typeof l.conn === 'string')).toBe(
			true
		);
	});
});
