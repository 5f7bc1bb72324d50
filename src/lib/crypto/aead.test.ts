import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
	aeadDecrypt,
	aeadEncrypt,
	aesKey,
	asSecretKey,
	DecryptionError,
	MissingKeyError,
	NONCE_LENGTH,
	newSecretKey,
	randomBytes,
	utf8Decode,
	utf8Encode
} from '.';
import { nameOf } from './test-support';

const aad = utf8Encode('kith/test\0');

describe('AES-256-GCM', () => {
	it('round-trips with a 12-byte random nonce and a 16-byte tag', async () => {
		const key = newSecretKey();
		const plaintext = utf8Encode('hello, kith');
		const a = await aeadEncrypt(key, plaintext, aad);
		const b = await aeadEncrypt(key, plaintext, aad);
		expect(a.nonce).toHaveLength(NONCE_LENGTH);
		expect(NONCE_LENGTH).toBe(12);
		expect(a.ciphertext).toHaveLength(plaintext.length + 16);
		expect(a.nonce).not.toEqual(b.nonce);
		expect(a.ciphertext).not.toEqual(b.ciphertext);
		expect(utf8Decode(await aeadDecrypt(key, a.nonce, a.ciphertext, aad))).toBe('hello, kith');
	});

	it('round-trips any plaintext and AAD', async () => {
		const key = newSecretKey();
		await fc.assert(
			fc.asyncProperty(fc.uint8Array({ maxLength: 2000 }), fc.uint8Array(), async (pt, ad) => {
				const { nonce, ciphertext } = await aeadEncrypt(key, pt, ad);
				expect(await aeadDecrypt(key, nonce, ciphertext, ad)).toEqual(pt);
			}),
			{ numRuns: 50 }
		);
	});

	it('is AES-256-GCM as specified (NIST SP 800-38D, 256-bit key, test case 13)', async () => {
		const key = asSecretKey(new Uint8Array(32));
		const { ciphertext } = await aeadEncrypt(
			key,
			new Uint8Array(0),
			new Uint8Array(0),
			new Uint8Array(12)
		);
		expect(Buffer.from(ciphertext).toString('hex')).toBe('530f8afbc74536b9a963b4f1c4cb738b');
	});

	it('accepts a CryptoKey as well as raw bytes, and imports each key once', async () => {
		const raw = newSecretKey();
		expect(aesKey(raw)).toBe(aesKey(raw));
		const cryptoKey = await aesKey(raw);
		expect(cryptoKey.extractable).toBe(false);
		const sealed = await aeadEncrypt(cryptoKey, utf8Encode('x'), aad);
		expect(utf8Decode(await aeadDecrypt(raw, sealed.nonce, sealed.ciphertext, aad))).toBe('x');
	});

	describe('refuses, with DecryptionError', () => {
		it('the wrong key', async () => {
			const sealed = await aeadEncrypt(newSecretKey(), utf8Encode('secret'), aad);
			const error = await nameOf(aeadDecrypt(newSecretKey(), sealed.nonce, sealed.ciphertext, aad));
			expect(error).toBe(DecryptionError.NAME);
		});

		it('any flipped ciphertext or tag byte', async () => {
			const key = newSecretKey();
			const sealed = await aeadEncrypt(key, utf8Encode('secret message'), aad);
			for (let i = 0; i < sealed.ciphertext.length; i++) {
				const bad = sealed.ciphertext.slice();
				bad[i] = (bad[i] as number) ^ 0x01;
				expect(await nameOf(aeadDecrypt(key, sealed.nonce, bad, aad))).toBe('DecryptionError');
			}
		});

		it('the wrong associated data', async () => {
			const key = newSecretKey();
			const sealed = await aeadEncrypt(key, utf8Encode('secret'), aad);
			for (const other of [
				new Uint8Array(0),
				utf8Encode('kith/test\x01'),
				utf8Encode('kith/test')
			]) {
				expect(await nameOf(aeadDecrypt(key, sealed.nonce, sealed.ciphertext, other))).toBe(
					'DecryptionError'
				);
			}
		});

		it('the wrong nonce, and a truncated ciphertext', async () => {
			const key = newSecretKey();
			const sealed = await aeadEncrypt(key, utf8Encode('secret'), aad);
			expect(await nameOf(aeadDecrypt(key, randomBytes(12), sealed.ciphertext, aad))).toBe(
				'DecryptionError'
			);
			for (const length of [0, 1, 15, sealed.ciphertext.length - 1]) {
				const short = sealed.ciphertext.subarray(0, length);
				expect(await nameOf(aeadDecrypt(key, sealed.nonce, short, aad))).toBe('DecryptionError');
			}
		});
	});

	it('with no key: MissingKeyError, never plaintext', async () => {
		const plaintext = utf8Encode('must never leave in clear');
		for (const key of [undefined, null]) {
			expect(await nameOf(aeadEncrypt(key, plaintext, aad))).toBe(MissingKeyError.NAME);
			expect(await nameOf(aeadDecrypt(key, randomBytes(12), plaintext, aad))).toBe(
				'MissingKeyError'
			);
		}
		expect(await nameOf(aesKey(undefined))).toBe('MissingKeyError');
	});

	it('error names survive without instanceof (what callers compare)', () => {
		expect(new DecryptionError('x').name).toBe('DecryptionError');
		expect(new MissingKeyError('x').name).toBe('MissingKeyError');
		expect(new MissingKeyError('x')).toBeInstanceOf(Error);
	});
});
