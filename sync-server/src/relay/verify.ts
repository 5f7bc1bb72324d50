/**
 * Ed25519 verification for the relay with Node's own `crypto.verify`:
 * synchronous, on the event loop. WebCrypto's `subtle.verify` runs the same
 * OpenSSL code, but as a job on libuv's thread pool, and the round trip costs
 * more than the ~50 µs verification on the path of every update the relay
 * forwards. Installed once by `attachRelay` for everything in this process
 * that verifies envelopes (the doc rules).
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { toBase64Url } from '../../../src/lib/crypto/bytes.ts';
import { useSyncEd25519Verifier, type SyncEd25519Verifier } from '../../../src/lib/crypto/sign.ts';

/** Device keys kept parsed; a room has a handful, the relay a few thousand at most. */
const KEY_CACHE = 4096;
const keys = new Map<string, KeyObject>();

function keyObject(publicKey: Uint8Array): KeyObject {
	const x = toBase64Url(publicKey);
	let key = keys.get(x);
	if (!key) {
		key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
		if (keys.size >= KEY_CACHE) keys.clear();
		keys.set(x, key);
	}
	return key;
}

export const nodeEd25519Verify: SyncEd25519Verifier = (publicKey, message, signature) =>
	verify(null, message, keyObject(publicKey), signature);

export function installNodeVerifier(): void {
	useSyncEd25519Verifier(nodeEd25519Verify);
}
