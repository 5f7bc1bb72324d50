import { describe, expect, it } from 'vitest';
import { newRoomId, newSecretKey } from '../crypto';
import { isSentBy } from './status';
import { docFor, newDevice, write } from './test-support';

describe('isSentBy', () => {
	it('is true exactly when the relay clock of the signer is past the envelope clock', async () => {
		const room = newRoomId();
		const key = newSecretKey();
		const device = await newDevice();
		const cdoc = docFor(room, device);
		const [first, second] = await write(cdoc, device, key, 'one', 'two');
		if (!first || !second) throw new Error('sealed nothing');
		const state = new Map<number, number>();
		expect(isSentBy(state, first.bytes)).toBe(false);
		state.set(device.client, 1); // clock 0 stored
		expect(isSentBy(state, first.bytes)).toBe(true);
		expect(isSentBy(state, second.bytes)).toBe(false);
		state.set(device.client, 2);
		expect(isSentBy(state, second.bytes)).toBe(true);
		cdoc.destroy();
	});

	it('looks at the signer’s client id only', async () => {
		const room = newRoomId();
		const key = newSecretKey();
		const [alice, bob] = [await newDevice(), await newDevice()];
		const cdoc = docFor(room, alice);
		const [entry] = await write(cdoc, alice, key, 'hi');
		expect(isSentBy(new Map([[bob.client, 10]]), entry!.bytes)).toBe(false);
		cdoc.destroy();
	});

	it('is false for bytes that are not an envelope', () => {
		expect(isSentBy(new Map([[1, 99]]), new Uint8Array(5))).toBe(false);
	});
});
