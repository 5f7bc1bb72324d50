import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { checkUpdate, ConversationDoc, encodeStateVector, updateSince } from '../conversation';
import { newRoomId, newSecretKey } from '../crypto';
import { splitUpdate } from './split-update';
import { docFor, ids, newDevice, write } from './test-support';

describe('splitUpdate', () => {
	it('returns a small update as it is', () => {
		const update = new Uint8Array([0, 0]);
		expect(splitUpdate(update, 100)).toEqual([update]);
	});

	it('splits into pieces under the limit that, applied in order, pass the doc rules and converge', async () => {
		const room = newRoomId();
		const key = newSecretKey();
		const [alice, bob] = [await newDevice(), await newDevice()];
		const source = docFor(room, alice);
		const texts = Array.from({ length: 30 }, (_, i) => `message ${i} `.repeat(400));
		await write(source, alice, key, ...texts);
		const bobDoc = docFor(room, bob);
		await write(bobDoc, bob, key, 'b1', 'b2', 'b3');
		Y.applyUpdate(source.doc, bobDoc.encodeState());

		// What a replica holding bob's entries lacks, as a step2 would carry it.
		const target = new ConversationDoc(room, (await newDevice()).client);
		expect((await target.applyRemote(bobDoc.encodeState(), 'test')).ok).toBe(true);
		const whole = updateSince(source, encodeStateVector(target));
		const pieces = splitUpdate(whole, 16 * 1024);
		expect(pieces.length).toBeGreaterThan(5);
		for (const piece of pieces) {
			expect(piece.length).toBeLessThanOrEqual(16 * 1024);
			const applied = await target.applyRemote(piece, 'test');
			expect(applied.ok).toBe(true);
		}
		expect(ids(target)).toEqual(ids(source));
		await expect(checkUpdate(whole)).resolves.toMatchObject({ ok: true });
		for (const d of [source, bobDoc, target]) d.destroy();
	});

	it('keeps an item bigger than the limit whole, in a piece of its own', async () => {
		const room = newRoomId();
		const alice = await newDevice();
		const source = docFor(room, alice);
		await write(source, alice, newSecretKey(), 'x'.repeat(5000), 'small', 'y'.repeat(5000));
		const pieces = splitUpdate(source.encodeState(), 1024);
		expect(pieces).toHaveLength(3);
		const target = new ConversationDoc(room, 1);
		for (const piece of pieces) expect((await target.applyRemote(piece, 'test')).ok).toBe(true);
		expect(ids(target)).toEqual(ids(source));
	});

	it('leaves an update with a delete set whole', () => {
		const doc = new Y.Doc({ gc: false });
		doc.getMap('e').set('k', new Uint8Array(4000));
		doc.getMap('e').delete('k');
		const update = Y.encodeStateAsUpdate(doc);
		expect(splitUpdate(update, 100)).toEqual([update]);
	});
});
