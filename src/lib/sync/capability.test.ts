import { describe, expect, it } from 'vitest';
import {
	concatBytes,
	deriveKey,
	ed25519PublicKey,
	newRoomId,
	newSecretKey,
	utf8Encode,
	verifySignature,
	type RoomId
} from '../crypto';
import { challengeMessage, deriveRoomCapability, ROOM_ACCESS_INFO } from './capability';
import { CapabilityError } from './errors';

describe('deriveRoomCapability', () => {
	it('is deterministic for one (key, room)', async () => {
		const ikm = newSecretKey();
		const room = newRoomId();
		const a = await deriveRoomCapability(ikm, room);
		const b = await deriveRoomCapability(ikm.slice(), room);
		expect(a.publicKey).toEqual(b.publicKey);
		// Ed25519 is deterministic: two devices also sign identically.
		const message = challengeMessage(room, 'bm9uY2U');
		expect(await a.sign(message)).toEqual(await b.sign(message));
	});

	it('differs across rooms and across keys', async () => {
		const ikm = newSecretKey();
		const room = newRoomId();
		const base = (await deriveRoomCapability(ikm, room)).publicKey;
		expect((await deriveRoomCapability(ikm, newRoomId())).publicKey).not.toEqual(base);
		expect((await deriveRoomCapability(newSecretKey(), room)).publicKey).not.toEqual(base);
	});

	it('is HKDF-SHA256(ikm, no salt, "kith/room-access/" + room) as an Ed25519 seed', async () => {
		const ikm = new Uint8Array(32).fill(7);
		const room = 'AAAAAAAAAAAAAAAAAAAAAA' as RoomId;
		const seed = deriveKey(ikm, `${ROOM_ACCESS_INFO}${room}`, 32);
		const capability = await deriveRoomCapability(ikm, room);
		expect(capability.publicKey).toEqual(ed25519PublicKey(seed));
	});

	it('signs challenges that verify under its public key', async () => {
		const room = newRoomId();
		const capability = await deriveRoomCapability(newSecretKey(), room);
		const message = challengeMessage(room, 'c29tZS1ub25jZQ');
		const signature = await capability.sign(message);
		expect(await verifySignature(capability.publicKey, message, signature)).toBe(true);
		expect(
			await verifySignature(capability.publicKey, challengeMessage(room, 'b3RoZXI'), signature)
		).toBe(false);
	});

	it('refuses key material that is not 32 bytes, and non-room ids', async () => {
		await expect(deriveRoomCapability(new Uint8Array(16), newRoomId())).rejects.toMatchObject({
			name: CapabilityError.NAME
		});
		await expect(deriveRoomCapability(newSecretKey(), 'short' as RoomId)).rejects.toMatchObject({
			name: CapabilityError.NAME
		});
	});
});

describe('challengeMessage', () => {
	it('is "kith/room-access\\0" || room || nonce', () => {
		const room = 'BBBBBBBBBBBBBBBBBBBBBB' as RoomId;
		expect(challengeMessage(room, 'xyz')).toEqual(
			concatBytes(utf8Encode('kith/room-access'), new Uint8Array([0]), utf8Encode(room + 'xyz'))
		);
	});
});
