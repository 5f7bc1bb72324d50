import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bucketSize, MIN_BUCKET, pad, PaddingError, unpad } from '.';

const KiB = 1024;

function thrownName(fn: () => unknown): string | undefined {
	try {
		fn();
	} catch (error) {
		return (error as Error).name;
	}
	return undefined;
}

describe('bucketSize', () => {
	it('uses powers of two from 256 B to 64 KiB (4 bytes of length prefix included)', () => {
		expect(MIN_BUCKET).toBe(256);
		expect(bucketSize(0)).toBe(256);
		expect(bucketSize(252)).toBe(256);
		expect(bucketSize(253)).toBe(512);
		expect(bucketSize(508)).toBe(512);
		expect(bucketSize(509)).toBe(1 * KiB);
		expect(bucketSize(32 * KiB - 4)).toBe(32 * KiB);
		expect(bucketSize(32 * KiB - 3)).toBe(64 * KiB);
		expect(bucketSize(64 * KiB - 4)).toBe(64 * KiB);
	});

	it('uses multiples of 64 KiB above 64 KiB', () => {
		expect(bucketSize(64 * KiB - 3)).toBe(128 * KiB);
		expect(bucketSize(128 * KiB - 4)).toBe(128 * KiB);
		expect(bucketSize(128 * KiB - 3)).toBe(192 * KiB);
		expect(bucketSize(1000 * KiB)).toBe(1024 * KiB);
	});

	it('always fits the plaintext and its prefix, and lands on a bucket', () => {
		fc.assert(
			fc.property(fc.nat({ max: 4 * 1024 * KiB }), (length) => {
				const size = bucketSize(length);
				expect(size).toBeGreaterThanOrEqual(length + 4);
				if (size <= 64 * KiB) expect(Math.log2(size) % 1).toBe(0);
				else expect(size % (64 * KiB)).toBe(0);
				// The bucket is the smallest one that fits.
				const smaller = size <= 64 * KiB ? size / 2 : size - 64 * KiB;
				if (size > MIN_BUCKET) expect(smaller).toBeLessThan(length + 4);
			})
		);
	});
});

describe('pad / unpad', () => {
	it('round-trips and hides the length inside a bucket', () => {
		fc.assert(
			fc.property(fc.uint8Array({ maxLength: 3000 }), (plaintext) => {
				const padded = pad(plaintext);
				expect(padded.length).toBe(bucketSize(plaintext.length));
				expect(unpad(padded)).toEqual(plaintext);
			})
		);
		expect(pad(new Uint8Array(10)).length).toBe(pad(new Uint8Array(200)).length);
	});

	it('lays out u32 big-endian length, plaintext, zeros', () => {
		const padded = pad(new Uint8Array([7, 8, 9]));
		expect([...padded.subarray(0, 7)]).toEqual([0, 0, 0, 3, 7, 8, 9]);
		expect(padded.subarray(7).every((byte) => byte === 0)).toBe(true);
	});

	it('reads a view that does not start at offset 0 of its buffer', () => {
		const padded = pad(new Uint8Array([1, 2, 3]));
		const backing = new Uint8Array(padded.length + 5);
		backing.set(padded, 5);
		expect(unpad(backing.subarray(5))).toEqual(new Uint8Array([1, 2, 3]));
	});

	it('rejects data too short for the length prefix', () => {
		for (let n = 0; n < 4; n++) {
			expect(thrownName(() => unpad(new Uint8Array(n)))).toBe(PaddingError.NAME);
		}
	});

	it('rejects a length beyond the data', () => {
		const padded = pad(new Uint8Array(10));
		new DataView(padded.buffer).setUint32(0, padded.length - 3);
		expect(thrownName(() => unpad(padded))).toBe('PaddingError');
		new DataView(padded.buffer).setUint32(0, 0xffffffff);
		expect(thrownName(() => unpad(padded))).toBe('PaddingError');
	});

	it('rejects non-zero padding bytes, wherever they are', () => {
		const padded = pad(new Uint8Array(10));
		for (const position of [14, 100, padded.length - 1]) {
			const bad = padded.slice();
			bad[position] = 1;
			expect(thrownName(() => unpad(bad))).toBe('PaddingError');
		}
	});

	it('accepts an exactly full bucket (no padding bytes at all)', () => {
		const plaintext = new Uint8Array(252).fill(9);
		const padded = pad(plaintext);
		expect(padded.length).toBe(256);
		expect(unpad(padded)).toEqual(plaintext);
	});
});
