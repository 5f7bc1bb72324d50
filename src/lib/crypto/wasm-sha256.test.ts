import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useSyncSha256, type SyncSha256 } from './hash';
import { useWasmSha256 } from './wasm-sha256';

describe('useWasmSha256', () => {
	let wasm: SyncSha256;
	beforeAll(async () => {
		wasm = await useWasmSha256();
	});
	afterAll(() => useSyncSha256(undefined));

	it('gives the digests noble gives, for any input', () => {
		fc.assert(
			fc.property(fc.uint8Array({ maxLength: 5000 }), (bytes) => {
				expect(wasm(bytes)).toEqual(nobleSha256(bytes));
			}),
			{ numRuns: 500 }
		);
	});

	it('hands back a digest of its own each time (not a view the next hash overwrites)', () => {
		const first = wasm(new Uint8Array([1, 2, 3]));
		const kept = first.slice();
		const second = wasm(new Uint8Array([4, 5, 6]));
		expect(first).toEqual(kept);
		expect(second).not.toEqual(first);
		expect(first.byteLength).toBe(32);
	});

	it('is the known SHA-256 of "abc"', () => {
		expect(Buffer.from(wasm(new TextEncoder().encode('abc'))).toString('hex')).toBe(
			'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
		);
	});
});
