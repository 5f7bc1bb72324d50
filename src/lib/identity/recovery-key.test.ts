import { base58 } from '@scure/base';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeRecoveryKey, encodeRecoveryKey, RecoveryKeyError } from '.';

const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const seedArb = fc.uint8Array({ minLength: 32, maxLength: 32 });

function errorName(fn: () => unknown): string {
	try {
		fn();
	} catch (error) {
		return (error as Error).name;
	}
	return 'none';
}

describe('recovery key', () => {
	it('round-trips any 32-byte seed', () => {
		fc.assert(
			fc.property(seedArb, (seed) => {
				expect(decodeRecoveryKey(encodeRecoveryKey(seed))).toEqual(seed);
			})
		);
	});

	it('is base58 of 0x8B 0x01 || seed || XOR parity, in groups of four (Matrix format)', () => {
		const seed = new Uint8Array(32).map((_, i) => i);
		const text = encodeRecoveryKey(seed);
		expect(text).toMatch(/^([1-9A-HJ-NP-Za-km-z]{4} )*[1-9A-HJ-NP-Za-km-z]{1,4}$/);
		const bytes = base58.decode(text.replaceAll(' ', ''));
		expect(bytes).toHaveLength(35);
		expect([bytes[0], bytes[1]]).toEqual([0x8b, 0x01]);
		expect(bytes.subarray(2, 34)).toEqual(seed);
		expect(bytes.reduce((x, b) => x ^ b, 0)).toBe(0);
		// Every key starts "Es" because of the prefix, as Matrix keys do.
		expect(text.startsWith('Es')).toBe(true);
	});

	it('has groups of exactly four characters except possibly the last', () => {
		fc.assert(
			fc.property(seedArb, (seed) => {
				const groups = encodeRecoveryKey(seed).split(' ');
				for (const group of groups.slice(0, -1)) expect(group).toHaveLength(4);
				expect(groups.at(-1)?.length).toBeGreaterThan(0);
				expect(groups.at(-1)?.length).toBeLessThanOrEqual(4);
			})
		);
	});

	it('ignores whitespace and grouping when typed back', () => {
		const seed = new Uint8Array(32).fill(7);
		const text = encodeRecoveryKey(seed);
		expect(decodeRecoveryKey(text.replaceAll(' ', ''))).toEqual(seed);
		expect(decodeRecoveryKey(`  ${text.replaceAll(' ', '\n')}\t`)).toEqual(seed);
		expect(decodeRecoveryKey(text.replaceAll(' ', '  '))).toEqual(seed);
	});

	it('detects a one-character typo in a fixed key', () => {
		const seed = new Uint8Array(32).map((_, i) => (i * 37) & 0xff);
		const text = encodeRecoveryKey(seed);
		const position = 20;
		const typo = ALPHABET[(ALPHABET.indexOf(text[position] as string) + 1) % 58] as string;
		const mistyped = text.slice(0, position) + typo + text.slice(position + 1);
		expect(errorName(() => decodeRecoveryKey(mistyped))).toBe(RecoveryKeyError.NAME);
	});

	it('detects nearly every one-character substitution (a one-byte parity misses about 1 in 256)', () => {
		let total = 0;
		let missed = 0;
		fc.assert(
			fc.property(seedArb, (seed) => {
				const text = encodeRecoveryKey(seed);
				for (let i = 0; i < text.length; i += 3) {
					if (text[i] === ' ') continue;
					for (const c of ALPHABET) {
						if (c === text[i]) continue;
						total++;
						try {
							const decoded = decodeRecoveryKey(text.slice(0, i) + c + text.slice(i + 1));
							// A miss must at least not give back the same seed.
							expect(decoded).not.toEqual(seed);
							missed++;
						} catch (error) {
							expect((error as Error).name).toBe('RecoveryKeyError');
						}
					}
				}
			}),
			{ numRuns: 10 }
		);
		expect(total).toBeGreaterThan(5000);
		expect(missed / total).toBeLessThan(0.01);
	});

	it('refuses a dropped or added character, a foreign character, another prefix', () => {
		const text = encodeRecoveryKey(new Uint8Array(32).fill(1));
		const compact = text.replaceAll(' ', '');
		for (const bad of [
			compact.slice(1),
			compact.slice(0, -1),
			compact + 'A',
			compact.slice(0, 10) + '0' + compact.slice(11), // '0' is not base58
			compact.slice(0, 10) + 'l' + compact.slice(11), // nor is 'l'
			'',
			base58.encode(new Uint8Array(35))
		]) {
			expect(errorName(() => decodeRecoveryKey(bad))).toBe('RecoveryKeyError');
		}
	});

	it('encodes only 32-byte seeds', () => {
		expect(() => encodeRecoveryKey(new Uint8Array(31))).toThrow(RangeError);
	});
});
