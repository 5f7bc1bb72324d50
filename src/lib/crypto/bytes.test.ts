import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
	asBufferSource,
	asSecretKey,
	BASE64URL_32,
	concatBytes,
	deriveKey,
	equalBytes,
	fromBase64Url,
	isRoomId,
	newRoomId,
	newSecretKey,
	randomBytes,
	sha256,
	toBase64Url,
	utf8Decode,
	utf8Encode
} from '.';
import { fromHex, hex } from './test-support';

describe('base64url', () => {
	it('matches the RFC 4648 vectors, without padding', () => {
		const vectors: [string, string][] = [
			['', ''],
			['f', 'Zg'],
			['fo', 'Zm8'],
			['foo', 'Zm9v'],
			['foob', 'Zm9vYg'],
			['fooba', 'Zm9vYmE'],
			['foobar', 'Zm9vYmFy']
		];
		for (const [text, encoded] of vectors) {
			expect(toBase64Url(utf8Encode(text))).toBe(encoded);
			expect(utf8Decode(fromBase64Url(encoded))).toBe(text);
		}
	});

	it('uses the URL-safe alphabet (- and _ instead of + and /)', () => {
		expect(toBase64Url(new Uint8Array([0xfb, 0xff]))).toBe('-_8');
		expect(fromBase64Url('-_8')).toEqual(new Uint8Array([0xfb, 0xff]));
	});

	it('round-trips any bytes and never emits padding or unsafe characters', () => {
		fc.assert(
			fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
				const text = toBase64Url(bytes);
				expect(text).toMatch(/^[A-Za-z0-9_-]*$/);
				expect(fromBase64Url(text)).toEqual(bytes);
			})
		);
	});

	it('rejects padded input and characters outside the alphabet', () => {
		expect(() => fromBase64Url('Zg==')).toThrow();
		expect(() => fromBase64Url('Zm9v+A')).toThrow();
		expect(() => fromBase64Url('Zm9v/A')).toThrow();
		expect(() => fromBase64Url('Z')).toThrow();
	});
});

describe('utf8', () => {
	it('round-trips text, including astral characters', () => {
		fc.assert(
			fc.property(fc.string({ unit: 'grapheme' }), (text) => {
				expect(utf8Decode(utf8Encode(text))).toBe(text);
			})
		);
	});

	it('decodes strictly: invalid sequences throw instead of becoming U+FFFD', () => {
		expect(() => utf8Decode(new Uint8Array([0xff]))).toThrow();
		expect(() => utf8Decode(new Uint8Array([0xc3]))).toThrow();
	});
});

describe('byte helpers', () => {
	it('concatenates in order', () => {
		expect(concatBytes()).toEqual(new Uint8Array(0));
		expect(concatBytes(new Uint8Array([1]), new Uint8Array(0), new Uint8Array([2, 3]))).toEqual(
			new Uint8Array([1, 2, 3])
		);
	});

	it('compares bytes, including length', () => {
		expect(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2]))).toBe(true);
		expect(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false);
		expect(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2, 0]))).toBe(false);
		expect(equalBytes(new Uint8Array(0), new Uint8Array(0))).toBe(true);
	});

	it('gives fresh random bytes of the asked length', () => {
		expect(randomBytes(0)).toHaveLength(0);
		expect(randomBytes(33)).toHaveLength(33);
		expect(equalBytes(randomBytes(16), randomBytes(16))).toBe(false);
	});

	it('hands WebCrypto an ArrayBuffer-backed view, copying a shared one', () => {
		const plain = new Uint8Array([1, 2, 3]);
		expect(asBufferSource(plain)).toBe(plain);
		const shared = new Uint8Array(new SharedArrayBuffer(3));
		shared.set([4, 5, 6]);
		const copy = asBufferSource(shared);
		expect(copy.buffer).toBeInstanceOf(ArrayBuffer);
		expect(copy).toEqual(new Uint8Array([4, 5, 6]));
	});
});

describe('ids', () => {
	it('makes room ids of 16 random bytes as 22 base64url characters', () => {
		const a = newRoomId();
		expect(a).toMatch(/^[A-Za-z0-9_-]{22}$/);
		expect(fromBase64Url(a)).toHaveLength(16);
		expect(isRoomId(a)).toBe(true);
		expect(newRoomId()).not.toBe(a);
	});

	it('recognises only well-formed room ids', () => {
		expect(isRoomId('x'.repeat(21))).toBe(false);
		expect(isRoomId('x'.repeat(23))).toBe(false);
		expect(isRoomId('x'.repeat(21) + '=')).toBe(false);
		expect(isRoomId(42)).toBe(false);
	});

	it('names exactly the canonical base64url of 32 bytes', () => {
		fc.assert(
			fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (bytes) => {
				const text = toBase64Url(bytes);
				expect(BASE64URL_32.test(text)).toBe(true);
				// The same bytes with a non-zero padding bit, one character short or long.
				const last = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.indexOf(
					text.at(-1) as string
				);
				const alias =
					text.slice(0, -1) +
					'BCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_A'[last];
				expect(BASE64URL_32.test(alias)).toBe(false);
				expect(BASE64URL_32.test(text.slice(1))).toBe(false);
				expect(BASE64URL_32.test(text + 'A')).toBe(false);
			})
		);
		expect(BASE64URL_32.test(toBase64Url(new Uint8Array(31)) + 'AA')).toBe(false);
	});

	it('makes 32-byte secret keys and refuses other lengths', () => {
		expect(newSecretKey()).toHaveLength(32);
		expect(() => asSecretKey(new Uint8Array(31))).toThrow(RangeError);
		expect(() => asSecretKey(new Uint8Array(33))).toThrow(RangeError);
		expect(asSecretKey(new Uint8Array(32))).toHaveLength(32);
	});
});

describe('hash', () => {
	it('is SHA-256 (FIPS 180-2 vector)', () => {
		expect(hex(sha256(utf8Encode('abc')))).toBe(
			'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
		);
	});

	it('derives keys with HKDF-SHA256 (RFC 5869 test case 3)', () => {
		const okm = deriveKey(fromHex('0b'.repeat(22)), '', 42);
		expect(hex(okm)).toBe(
			'8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8'
		);
	});

	it('binds derived keys to their purpose and salt', () => {
		const secret = randomBytes(32);
		expect(deriveKey(secret, 'a')).toHaveLength(32);
		expect(equalBytes(deriveKey(secret, 'a'), deriveKey(secret, 'a'))).toBe(true);
		expect(equalBytes(deriveKey(secret, 'a'), deriveKey(secret, 'b'))).toBe(false);
		expect(equalBytes(deriveKey(secret, 'a'), deriveKey(secret, 'a', 32, randomBytes(16)))).toBe(
			false
		);
	});
});
