import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ed25519 } from '@noble/curves/ed25519.js';
import { verifySignatureSync } from '../../../src/lib/crypto/sign.ts';
import { nodeEd25519Verify } from './verify.ts';

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
