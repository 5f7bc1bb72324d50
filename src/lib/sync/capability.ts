/**
 * The room access capability (docs/protocol.md, "Access capability and the
 * signed challenge"): an Ed25519 key pair every member of a room can derive
 * from the room's key material and nobody else can. The relay admits a
 * connection to a room only when it signs a fresh relay nonce with the key
 * registered for that room (the first valid writer registers it).
 *
 *   capSeed   = HKDF-SHA256(ikm, salt = none, info = "kith/room-access/" + roomId, 32)
 *   publicKey = Ed25519 public key of capSeed
 *   message   = "kith/room-access\0" || utf8(roomId) || utf8(nonce)
 *
 * `ikm` is the room's epoch key (a conversation generation) or the account
 * key (the vault room). The room id is in the HKDF info so one key opens one
 * room only: a relay that learns a capability for one room learns nothing
 * about another room under the same key.
 */
import { concatBytes, createSigner, deriveKey, isRoomId, utf8Encode, type RoomId } from '../crypto';
import { CapabilityError } from './errors';

/** HKDF info prefix; the room id follows it. */
export const ROOM_ACCESS_INFO = 'kith/room-access/';

/** Context string of the challenge signature (ends with a zero byte, docs/protocol.md §1.3). */
const CHALLENGE_CONTEXT = utf8Encode('kith/room-access\0');

export interface RoomCapability {
	/** Sent to the relay as `cap`: the key the room is registered under. */
	readonly publicKey: Uint8Array;
	sign(message: Uint8Array): Promise<Uint8Array>;
}

/**
 * Derive the access capability of `roomId` from the room's key material.
 * Deterministic: every member device derives the same key pair.
 */
export async function deriveRoomCapability(
	ikm: Uint8Array,
	roomId: RoomId
): Promise<RoomCapability> {
	if (ikm.length !== 32) throw new CapabilityError('room key material must be 32 bytes');
	if (!isRoomId(roomId)) throw new CapabilityError('not a room id');
	const seed = deriveKey(ikm, ROOM_ACCESS_INFO + roomId, 32);
	try {
		const signer = await createSigner(seed);
		return { publicKey: signer.publicKey, sign: (message) => signer.sign(message) };
	} finally {
		// The signer holds what it needs (a non-extractable key, or its own copy).
		seed.fill(0);
	}
}

/** The bytes a client signs to answer the relay's challenge `nonce` for `roomId`. */
export function challengeMessage(roomId: RoomId | string, nonce: string): Uint8Array {
	return concatBytes(CHALLENGE_CONTEXT, utf8Encode(roomId), utf8Encode(nonce));
}
