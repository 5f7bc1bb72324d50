/**
 * The relay's native crypto for the doc rules, on the event loop.
 *
 * Ed25519 with Node's own `crypto.verify`: synchronous. WebCrypto's
 * `subtle.verify` runs the same OpenSSL code, but as a job on libuv's thread
 * pool, and the round trip costs more than the ~50 µs verification on the
 * path of every update the relay forwards.
 *
 * SHA-256 with Node's `crypto.hash` (OpenSSL, one call) instead of the
 * JavaScript one: every envelope the relay checks is hashed for its key.
 *
 * Installed once by `attachRelay` for everything in this process that checks
 * envelopes (the doc rules).
 */
import { createPublicKey, hash, verify, type KeyObject } from 'node:crypto';
import { toBase64Url } from '../../../src/lib/crypto/bytes.ts';
import { useSyncSha256 } from '../../../src/lib/crypto/hash.ts';
import {
	publicKeyCacheKey,
	useSyncEd25519Verifier,
	type SyncEd25519Verifier
} from '../../../src/lib/crypto/sign.ts';

/** Device keys kept parsed; a room has a handful, the relay a few thousand at most. */
const KEY_CACHE = 4096;
const keys = new Map<string, KeyObject>();

function keyObject(publicKey: Uint8Array): KeyObject {
	const id = publicKeyCacheKey(publicKey);
	let key = keys.get(id);
	if (!key) {
		key = createPublicKey({
			key: { kty: 'OKP', crv: 'Ed25519', x: toBase64Url(publicKey) },
			format: 'jwk'
		});
		if (keys.size >= KEY_CACHE) keys.clear();
		keys.set(id, key);
	}
	return key;
}

export const nodeEd25519Verify: SyncEd25519Verifier = (publicKey, message, signature) =>
	verify(null, message, keyObject(publicKey), signature);

export function nodeSha256(bytes: Uint8Array): Uint8Array {
	const digest = hash('sha256', bytes, 'buffer');
	return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
}

export function installNodeVerifier(): void {
	useSyncEd25519Verifier(nodeEd25519Verify);
	useSyncSha256(nodeSha256);
}
