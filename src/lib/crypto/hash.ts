/**
 * Hashing. SHA-256 is synchronous here (@noble/hashes) because the document
 * rules are checked inside synchronous Yjs code paths and the relay checks
 * them per frame; WebCrypto's digest is async only. A runtime with a native
 * synchronous SHA-256 (Node's `crypto.hash`) may install it with
 * `useSyncSha256`: the relay does, because it hashes every envelope it
 * forwards and the native one costs a fraction of the JavaScript one there.
 */
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { utf8Encode } from './bytes';

/** A synchronous SHA-256 of the platform: 32 bytes for any input. */
export type SyncSha256 = (bytes: Uint8Array) => Uint8Array;

let platformSha256: SyncSha256 | undefined;

/** Installs (or, with undefined, removes) the platform's SHA-256 for `sha256`. */
export function useSyncSha256(impl: SyncSha256 | undefined): void {
	platformSha256 = impl;
}

export function sha256(bytes: Uint8Array): Uint8Array {
	return platformSha256 ? platformSha256(bytes) : nobleSha256(bytes);
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
