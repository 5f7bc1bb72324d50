/**
 * Hashing. SHA-256 is synchronous here (@noble/hashes) because the document
 * rules are checked inside synchronous Yjs code paths and the relay checks
 * them per frame; WebCrypto's digest is async only.
 */
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { utf8Encode } from './bytes';

export function sha256(bytes: Uint8Array): Uint8Array {
	return nobleSha256(bytes);
}

/** HKDF-SHA256 for deriving purpose-bound subkeys from one secret. */
export function deriveKey(
	secret: Uint8Array,
	info: string,
	length = 32,
	salt?: Uint8Array
): Uint8Array {
	return hkdf(nobleSha256, secret, salt, utf8Encode(info), length);
}
