import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deriveKey, isRoomId, randomBytes, toBase64Url } from '../crypto';
import { nameOf } from '../crypto/test-support';
import { InvalidInviteError } from './errors';
import { deriveInviteRoom, INVITE_ROOM_ID_INFO, INVITE_ROOM_KEY_INFO } from './invite-room';

describe('deriveInviteRoom', () => {
	it('is HKDF-SHA256 of the secret: 16 bytes of room id, 32 bytes of key', async () => {
		const secret = new Uint8Array(32).fill(9);
		const room = await deriveInviteRoom(secret);
		expect(INVITE_ROOM_ID_INFO).toBe('kith/invite-room/id');
		expect(INVITE_ROOM_KEY_INFO).toBe('kith/invite-room/key');
		expect(room.roomId).toBe(toBase64Url(deriveKey(secret, 'kith/invite-room/id', 16)));
		expect(room.key).toEqual(deriveKey(secret, 'kith/invite-room/key', 32));
	});

	it('gives every secret a well-formed room id and a 32-byte key, the same every time', async () => {
		await fc.assert(
			fc.asyncProperty(fc.uint8Array({ minLength: 32, maxLength: 32 }), async (secret) => {
				const a = await deriveInviteRoom(secret);
				const b = await deriveInviteRoom(secret.slice());
				expect(isRoomId(a.roomId)).toBe(true);
				expect(a.key.length).toBe(32);
				expect(b).toEqual(a);
			}),
			{ numRuns: 100 }
		);
	});

	it('gives different secrets different rooms and keys', async () => {
		const a = await deriveInviteRoom(randomBytes(32));
		const b = await deriveInviteRoom(randomBytes(32));
		expect(a.roomId).not.toBe(b.roomId);
		expect(a.key).not.toEqual(b.key);
	});

	it('refuses a secret that is not 32 bytes', async () => {
		for (const length of [0, 16, 31, 33, 64]) {
			expect(await nameOf(deriveInviteRoom(new Uint8Array(length)))).toBe(InvalidInviteError.NAME);
		}
	});
});
