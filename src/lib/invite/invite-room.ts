/**
 * The invite room: where the people holding an invite link meet the members
 * who can let them in. Both sides derive it from the link's one-time secret,
 * so the relay sees only a random-looking room id, and nobody without the
 * link can find or enter the room:
 *
 *   roomId = base64url(HKDF-SHA256(secret, salt = none, info = "kith/invite-room/id", 16))
 *   key    = HKDF-SHA256(secret, salt = none, info = "kith/invite-room/key", 32)
 *
 * `roomId` has the shape of every other room id (22 base64url characters).
 * `key` is the room's key material: its access capability is derived from it
 * (sync/capability.ts), as for any other room. The invitation carries
 * `roomId`, signed, so the secret in a link is checked against the signature.
 */
import {
	asSecretKey,
	deriveKey,
	isRoomId,
	toBase64Url,
	type RoomId,
	type SecretKey
} from '../crypto';
import { InvalidInviteError } from './errors';

export const INVITE_ROOM_ID_INFO = 'kith/invite-room/id';
export const INVITE_ROOM_KEY_INFO = 'kith/invite-room/key';
/** Length of an invite link's one-time secret. */
export const INVITE_SECRET_LENGTH = 32;

export interface InviteRoom {
	roomId: RoomId;
	key: SecretKey;
}

/** Derive the invite room of a link's secret (throws InvalidInviteError unless it is 32 bytes). */
export async function deriveInviteRoom(secret: Uint8Array): Promise<InviteRoom> {
	if (!(secret instanceof Uint8Array) || secret.length !== INVITE_SECRET_LENGTH) {
		throw new InvalidInviteError('wrong-secret');
	}
	const roomId = toBase64Url(deriveKey(secret, INVITE_ROOM_ID_INFO, 16));
	// 16 bytes always encode to 22 characters; checked so a change here cannot slip by.
	if (!isRoomId(roomId)) throw new InvalidInviteError('wrong-secret');
	return { roomId, key: asSecretKey(deriveKey(secret, INVITE_ROOM_KEY_INFO, 32)) };
}
