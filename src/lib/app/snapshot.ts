/**
 * Local encrypted snapshots of a reduced view, so a cold start renders the
 * first screen without decrypting 100k envelopes. A snapshot is a cache: it
 * is encrypted under the device-local key (AES-GCM, room id in the AAD),
 * records the doc's state vector it covers, and is only ever taken when every
 * entry up to that state vector was processed and nothing is still unsaved.
 * If it is missing or fails to decrypt, the view is rebuilt from the doc.
 */
import { aeadDecrypt, aeadEncrypt, concatBytes, utf8Decode, utf8Encode } from '../crypto';
import type { RoomId, SecretKey } from '../crypto';
import type { LocalStore } from '../storage';

const AAD = utf8Encode('kith/snapshot\0');

export interface Snapshot<T> {
	v: 1;
	stateVector: Uint8Array;
	data: T;
}

/** What the local store holds for one room. */
export interface StoredSnapshot {
	nonce: Uint8Array;
	ciphertext: Uint8Array;
	stateVector: Uint8Array;
}

export function snapshotKey(roomId: RoomId): string {
	return `snapshot:${roomId}`;
}

/** Associated data: the room and the state vector the snapshot covers are bound to it. */
export function snapshotAad(roomId: RoomId, stateVector: Uint8Array): Uint8Array {
	return concatBytes(AAD, utf8Encode(roomId), stateVector);
}

export async function saveSnapshot<T>(
	store: LocalStore,
	localKey: SecretKey,
	roomId: RoomId,
	stateVector: Uint8Array,
	data: T
): Promise<void> {
	const plaintext = utf8Encode(JSON.stringify(data));
	const { nonce, ciphertext } = await aeadEncrypt(
		localKey,
		plaintext,
		snapshotAad(roomId, stateVector)
	);
	await store.put(snapshotKey(roomId), { nonce, ciphertext, stateVector } satisfies StoredSnapshot);
}

export async function loadSnapshot<T>(
	store: LocalStore,
	localKey: SecretKey,
	roomId: RoomId
): Promise<Snapshot<T> | null> {
	const stored = await store.get<StoredSnapshot>(snapshotKey(roomId));
	if (!stored) return null;
	try {
		const plaintext = await aeadDecrypt(
			localKey,
			stored.nonce,
			stored.ciphertext,
			snapshotAad(roomId, stored.stateVector)
		);
		return { v: 1, stateVector: stored.stateVector, data: JSON.parse(utf8Decode(plaintext)) as T };
	} catch (error) {
		console.warn('kith:snapshot unreadable, rebuilding from the doc', error);
		return null;
	}
}
