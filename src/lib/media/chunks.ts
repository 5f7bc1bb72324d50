/**
 * Encrypted chunks of a file (docs/protocol.md, "Media").
 *
 *   key     = 32 random bytes per file (AES-256-GCM)
 *   aad(i)  = "kith/media/chunk\0" || utf8(file id) || u32be(i) || u32be(count)
 *   blob(i) = u8 1 || nonce (12 random bytes) || AES-256-GCM(key, nonce, plaintext(i), aad(i))
 *   id(i)   = base64url(SHA-256(blob(i)))
 *
 * The associated data binds each chunk to its file and its place in it, so a
 * chunk moved to another index, another file, or a file of another length
 * fails to decrypt even before its id is compared with the manifest. The id
 * is the hash of the ciphertext: anyone can check a chunk against its address
 * without the key (the relay does), and a holder of the manifest rejects a
 * tampered or substituted chunk before decrypting it.
 *
 * Nonces are random, not counters: a retried chunk is encrypted again and a
 * changed file never reuses a (key, nonce) pair. At most 65,536 chunks per
 * file (16 GiB), far below the 2^32 random nonces one key allows.
 */
import {
	asBufferSource,
	BASE64URL_32,
	concatBytes,
	toBase64Url,
	utf8Encode
} from '../crypto/bytes';
import type { ChunkId, FileId } from './manifest';

export const CHUNK_VERSION = 1;
export const CHUNK_NONCE_BYTES = 12;
/** Bytes a blob adds to its plaintext: version, nonce, GCM tag. */
export const CHUNK_OVERHEAD = 1 + CHUNK_NONCE_BYTES + 16;
const AAD_CONTEXT = utf8Encode('kith/media/chunk\0');
/**
 * How long one peer may take to answer a request for a chunk before it
 * counts as not having it (docs/protocol.md, "Media chunks"). The waits
 * around it (another tab asking the leader, the service worker asking a
 * page) are set from it.
 */
export const PEER_CHUNK_TIMEOUT_MS = 30_000;

/** A chunk id: 32 bytes (a SHA-256), base64url without padding (canonical). */
export const CHUNK_ID_PATTERN = BASE64URL_32;

/** Is `value` a chunk id? (The manifest's `ChunkId` without its schema, for the p2p wire.) */
export function isChunkIdText(value: unknown): value is ChunkId {
	return typeof value === 'string' && CHUNK_ID_PATTERN.test(value);
}

/** A chunk is not the one its manifest names (hash mismatch) or does not decrypt under the file's key. */
export class ChunkError extends Error {
	static readonly NAME = 'ChunkError';
	override name = ChunkError.NAME;
	constructor(
		message: string,
		readonly code: 'hash-mismatch' | 'malformed' | 'decrypt-failed'
	) {
		super(message);
	}
}

export function chunkAad(fileId: FileId | string, index: number, count: number): Uint8Array {
	const tail = new Uint8Array(8);
	const view = new DataView(tail.buffer);
	view.setUint32(0, index);
	view.setUint32(4, count);
	return concatBytes(AAD_CONTEXT, utf8Encode(fileId), tail);
}

/** Import a file key for AES-GCM; non-extractable. */
export function importFileKey(raw: Uint8Array): Promise<CryptoKey> {
	if (raw.length !== 32)
		return Promise.reject(new ChunkError('a file key is 32 bytes', 'malformed'));
	return crypto.subtle.importKey('raw', asBufferSource(raw), { name: 'AES-GCM' }, false, [
		'encrypt',
		'decrypt'
	]);
}

/** The content address of a blob: base64url(SHA-256(blob)). */
export async function chunkIdOf(blob: Uint8Array): Promise<ChunkId> {
	const digest = await crypto.subtle.digest('SHA-256', asBufferSource(blob));
	return toBase64Url(new Uint8Array(digest)) as ChunkId;
}

export interface ChunkPlace {
	fileId: FileId | string;
	index: number;
	count: number;
}

export async function encryptChunk(
	key: CryptoKey,
	place: ChunkPlace,
	plaintext: Uint8Array
): Promise<{ id: ChunkId; blob: Uint8Array }> {
	const nonce = crypto.getRandomValues(new Uint8Array(CHUNK_NONCE_BYTES));
	const sealed = await crypto.subtle.encrypt(
		{
			name: 'AES-GCM',
			iv: nonce,
			additionalData: asBufferSource(chunkAad(place.fileId, place.index, place.count))
		},
		key,
		asBufferSource(plaintext)
	);
	const blob = new Uint8Array(1 + CHUNK_NONCE_BYTES + sealed.byteLength);
	blob[0] = CHUNK_VERSION;
	blob.set(nonce, 1);
	blob.set(new Uint8Array(sealed), 1 + CHUNK_NONCE_BYTES);
	return { id: await chunkIdOf(blob), blob };
}

/** Does `blob` hash to `id`? The check every receiver makes before storing a fetched chunk. */
export async function verifyChunk(id: ChunkId | string, blob: Uint8Array): Promise<boolean> {
	return (await chunkIdOf(blob)) === id;
}

/**
 * Check a blob against its id, then decrypt it as chunk `place.index`.
 * Throws ChunkError (`hash-mismatch`, `malformed`, `decrypt-failed`).
 */
export async function decryptChunk(
	key: CryptoKey,
	place: ChunkPlace,
	id: ChunkId | string,
	blob: Uint8Array,
	options: { verified?: boolean } = {}
): Promise<Uint8Array> {
	if (!options.verified && !(await verifyChunk(id, blob))) {
		throw new ChunkError(`chunk ${place.index} does not match its address`, 'hash-mismatch');
	}
	if (blob.length < CHUNK_OVERHEAD || blob[0] !== CHUNK_VERSION) {
		throw new ChunkError(`chunk ${place.index} is not a chunk blob`, 'malformed');
	}
	try {
		const plain = await crypto.subtle.decrypt(
			{
				name: 'AES-GCM',
				iv: asBufferSource(blob.subarray(1, 1 + CHUNK_NONCE_BYTES)),
				additionalData: asBufferSource(chunkAad(place.fileId, place.index, place.count))
			},
			key,
			asBufferSource(blob.subarray(1 + CHUNK_NONCE_BYTES))
		);
		return new Uint8Array(plain);
	} catch {
		throw new ChunkError(`chunk ${place.index} does not decrypt as this file's`, 'decrypt-failed');
	}
}
