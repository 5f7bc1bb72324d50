import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { sha256, useSyncSha256 } from '../../../src/lib/crypto/hash.ts';
import {
	useSyncEd25519Verifier,
	verifySignature,
	verifySignatureNow,
	verifySignatureSync
} from '../../../src/lib/crypto/sign.ts';
import { installNodeVerifier, nodeEd25519Verify, nodeSha256 } from './verify.ts';

describe("the relay's Node Ed25519 verifier", () => {
	it('agrees with the strict noble verifier on valid, tampered and forged signatures', () => {
		fc.assert(
			fc.property(
				fc.uint8Array({ minLength: 32, maxLength: 32 }),
				fc.uint8Array({ maxLength: 600 }),
				fc.nat(63),
				fc.integer({ min: 1, max: 255 }),
				(seed, message, at, flip) => {
					const publicKey = ed25519.getPublicKey(seed);
					const signature = ed25519.sign(message, seed);
					expect(nodeEd25519Verify(publicKey, message, signature)).toBe(true);
					const tampered = signature.slice();
					tampered[at] = tampered[at]! ^ flip;
					expect(nodeEd25519Verify(publicKey, message, tampered)).toBe(
						verifySignatureSync(publicKey, message, tampered)
					);
					expect(nodeEd25519Verify(publicKey, message, tampered)).toBe(false);
				}
			),
			{ numRuns: 200 }
		);
	});

	it('refuses a non-canonical S (S + L), as RFC 8032 and WebCrypto do', () => {
		const seed = new Uint8Array(32).fill(7);
		const publicKey = ed25519.getPublicKey(seed);
		const message = new TextEncoder().encode('kith');
		const signature = ed25519.sign(message, seed);
		const L = 2n ** 252n + 27742317777372353535851937790883648493n;
		let s = 0n;
		for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(signature[32 + i]!);
		let malleable = s + L;
		const forged = signature.slice();
		for (let i = 0; i < 32; i++) {
			forged[32 + i] = Number(malleable & 0xffn);
			malleable >>= 8n;
		}
		expect(verifySignatureSync(publicKey, message, forged)).toBe(false);
		expect(nodeEd25519Verify(publicKey, message, forged)).toBe(false);
	});
});

describe("the relay's native SHA-256", () => {
	it('agrees with the JavaScript one, also on views into larger buffers', () => {
		fc.assert(
			fc.property(fc.uint8Array({ maxLength: 2000 }), fc.nat(16), (bytes, offset) => {
				expect(nodeSha256(bytes)).toEqual(nobleSha256(bytes));
				const padded = new Uint8Array(offset + bytes.length + 3);
				padded.set(bytes, offset);
				const view = padded.subarray(offset, offset + bytes.length);
				expect(nodeSha256(view)).toEqual(nobleSha256(bytes));
			}),
			{ numRuns: 300 }
		);
	});
});

describe('installNodeVerifier', () => {
	it('puts Node behind sha256, verifySignature and verifySignatureNow, with the same answers', async () => {
		const seed = new Uint8Array(32).fill(3);
		const publicKey = ed25519.getPublicKey(seed);
		const message = new TextEncoder().encode('kith');
		const signature = ed25519.sign(message, seed);
		const forged = signature.slice();
		forged[0] = forged[0]! ^ 1;
		// The identity point: small order, "verifies" R = identity, S = 0 over anything.
		const identity = new Uint8Array(32);
		identity[0] = 1;
		const trivial = new Uint8Array(64);
		trivial[0] = 1;
		installNodeVerifier();
		try {
			expect(sha256(message)).toEqual(nobleSha256(message));
			for (const verify of [verifySignatureNow, verifySignature]) {
				expect(await verify(publicKey, message, signature)).toBe(true);
				expect(await verify(publicKey, message, forged)).toBe(false);
				expect(await verify(identity, message, trivial)).toBe(false);
				expect(await verify(publicKey.subarray(1), message, signature)).toBe(false);
			}
			expect(verifySignatureSync(identity, message, trivial)).toBe(false);
		} finally {
			useSyncEd25519Verifier(undefined);
			useSyncSha256(undefined);
		}
	});
});
