import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChunkError, chunkIdOf, decryptChunk, encryptChunk, importFileKey } from './chunks';
import {
	decryptFile,
	encryptFile,
	newFileSecrets,
	openChunk,
	readChunks,
	sourceFromBytes
} from './encrypt-file';
import {
	ManifestError,
	chunkCount,
	parseManifest,
	type ChunkId,
	type FileManifest
} from './manifest';
import { chunkSpan, parseRange } from './range';

const SMALL = 1024;

async function encrypt(bytes: Uint8Array, chunkSize = SMALL) {
	const blobs = new Map<string, Uint8Array>();
	const order: ChunkId[] = [];
	const manifest = await encryptFile(
		sourceFromBytes(bytes),
		{ name: 'a.bin', type: 'application/octet-stream' },
		(_i, id, blob) => {
			blobs.set(id, blob);
			order.push(id);
		},
		{ chunkSize }
	);
	return { manifest, blobs, order };
}

describe('chunks', () => {
	it('round-trips any file through chunks and a manifest', async () => {
		await fc.assert(
			fc.asyncProperty(
				fc.uint8Array({ maxLength: 5 * SMALL + 7 }),
				fc.integer({ min: 1, max: 4 }),
				async (bytes, k) => {
					const { manifest, blobs } = await encrypt(bytes, k * SMALL);
					expect(manifest.chunks).toHaveLength(chunkCount(bytes.length, k * SMALL));
					// The manifest survives JSON (it travels inside an operation).
					const parsed = parseManifest(JSON.parse(JSON.stringify(manifest)));
					const out = await decryptFile(parsed, async (id) => blobs.get(id) as Uint8Array);
					expect(out).toEqual(bytes);
				}
			),
			{ numRuns: 40 }
		);
	});

	it('addresses each chunk by the SHA-256 of its ciphertext', async () => {
		const { manifest, blobs } = await encrypt(new Uint8Array(3000).fill(7));
		for (const id of manifest.chunks) expect(await chunkIdOf(blobs.get(id) as Uint8Array)).toBe(id);
		// Ciphertext carries no plaintext run.
		for (const blob of blobs.values())
			expect(Buffer.from(blob).includes(Buffer.alloc(32, 7))).toBe(false);
	});

	it('rejects a tampered chunk: any flipped bit', async () => {
		const { manifest, blobs } = await encrypt(new Uint8Array(2500).map((_, i) => i));
		await fc.assert(
			fc.asyncProperty(
				fc.integer({ min: 0, max: manifest.chunks.length - 1 }),
				fc.nat(),
				fc.integer({ min: 0, max: 7 }),
				async (index, at, bit) => {
					const blob = new Uint8Array(blobs.get(manifest.chunks[index] as string) as Uint8Array);
					blob[at % blob.length]! ^= 1 << bit;
					await expect(openChunk(manifest, index, blob)).rejects.toMatchObject({
						name: ChunkError.NAME,
						code: 'hash-mismatch'
					});
					// Even when the hash check is skipped, GCM refuses it.
					await expect(openChunk(manifest, index, blob, true)).rejects.toMatchObject({
						name: ChunkError.NAME
					});
				}
			),
			{ numRuns: 60 }
		);
	});

	it('rejects reordered or swapped chunks, within a file and across files', async () => {
		const bytes = new Uint8Array(4 * SMALL).map((_, i) => i * 31);
		const a = await encrypt(bytes);
		const b = await encrypt(bytes);
		await fc.assert(
			fc.asyncProperty(
				fc.integer({ min: 0, max: 3 }),
				fc.integer({ min: 0, max: 3 }),
				async (i, j) => {
					fc.pre(i !== j);
					const blobJ = a.blobs.get(a.manifest.chunks[j] as string) as Uint8Array;
					// By address: the hash does not match the manifest's id for slot i.
					await expect(openChunk(a.manifest, i, blobJ)).rejects.toMatchObject({
						code: 'hash-mismatch'
					});
					// A forged manifest naming chunk j at slot i: the AD binds the index.
					const forged: FileManifest = { ...a.manifest, chunks: [...a.manifest.chunks] };
					forged.chunks[i] = a.manifest.chunks[j] as ChunkId;
					await expect(openChunk(forged, i, blobJ)).rejects.toMatchObject({
						code: 'decrypt-failed'
					});
				}
			),
			{ numRuns: 12 }
		);
		// Another file's chunk under this file's key and id: refused.
		const foreign = b.blobs.get(b.manifest.chunks[0] as string) as Uint8Array;
		const forged = {
			...a.manifest,
			chunks: [b.manifest.chunks[0] as ChunkId, ...a.manifest.chunks.slice(1)]
		};
		await expect(openChunk(forged, 0, foreign)).rejects.toMatchObject({ code: 'decrypt-failed' });
		// The same key but another file id (a chunk replayed into a copy): refused.
		const secrets = newFileSecrets();
		const key = await importFileKey(secrets.key);
		const sealed = await encryptChunk(key, { fileId: secrets.id, index: 0, count: 2 }, bytes);
		await expect(
			decryptChunk(key, { fileId: newFileSecrets().id, index: 0, count: 2 }, sealed.id, sealed.blob)
		).rejects.toMatchObject({ code: 'decrypt-failed' });
		// A truncated file (another count): refused.
		await expect(
			decryptChunk(key, { fileId: secrets.id, index: 0, count: 1 }, sealed.id, sealed.blob)
		).rejects.toMatchObject({ code: 'decrypt-failed' });
	});
});

describe('manifest', () => {
	it('parses what encryptFile writes, and refuses a chunk list that does not match the size', async () => {
		const { manifest } = await encrypt(new Uint8Array(3 * SMALL + 1));
		expect(parseManifest(manifest)).toEqual(manifest);
		expect(() => parseManifest({ ...manifest, chunks: manifest.chunks.slice(1) })).toThrow(
			ManifestError
		);
		expect(() => parseManifest({ ...manifest, size: manifest.size + SMALL })).toThrow(
			ManifestError
		);
	});

	it('refuses malformed fields without quoting them', () => {
		fc.assert(
			fc.property(fc.anything(), (value) => {
				try {
					parseManifest(value);
				} catch (error) {
					expect((error as Error).name).toBe(ManifestError.NAME);
				}
			})
		);
		const good = {
			v: 1,
			id: 'AAAAAAAAAAAAAAAAAAAAAA',
			name: 'x',
			type: 'text/plain',
			size: 0,
			chunkSize: SMALL,
			chunks: [],
			key: 'A'.repeat(43)
		};
		expect(parseManifest(good).size).toBe(0);
		expect(() => parseManifest({ ...good, type: 'text/plain\r\nX-Evil: 1' })).toThrow(
			ManifestError
		);
		expect(() => parseManifest({ ...good, key: 'B'.repeat(43) })).toThrow(ManifestError);
		expect(() => parseManifest({ ...good, name: '' })).toThrow(ManifestError);
		expect(() => parseManifest({ ...good, preview: 'data:text/html;base64,AAAA' })).toThrow(
			ManifestError
		);
	});
});

describe('range', () => {
	it('parses single byte ranges as RFC 9110 says', () => {
		expect(parseRange(null, 100)).toEqual({ kind: 'full' });
		expect(parseRange('bytes=0-', 100)).toEqual({ kind: 'partial', start: 0, end: 99 });
		expect(parseRange('bytes=10-19', 100)).toEqual({ kind: 'partial', start: 10, end: 19 });
		expect(parseRange('bytes=90-200', 100)).toEqual({ kind: 'partial', start: 90, end: 99 });
		expect(parseRange('bytes=-10', 100)).toEqual({ kind: 'partial', start: 90, end: 99 });
		expect(parseRange('bytes=-1000', 100)).toEqual({ kind: 'partial', start: 0, end: 99 });
		expect(parseRange('bytes=100-', 100)).toEqual({ kind: 'unsatisfiable' });
		expect(parseRange('bytes=0-1,5-6', 100)).toEqual({ kind: 'full' });
		expect(parseRange('items=0-1', 100)).toEqual({ kind: 'full' });
		expect(parseRange('bytes=5-1', 100)).toEqual({ kind: 'full' });
	});

	it('maps a range onto the chunks that hold it', () => {
		fc.assert(
			fc.property(fc.nat(10_000), fc.nat(10_000), fc.integer({ min: 1, max: 999 }), (a, b, cs) => {
				const [start, end] = a <= b ? [a, b] : [b, a];
				const span = chunkSpan(start, end, cs);
				expect(span.first * cs + span.offset).toBe(start);
				expect(span.last * cs).toBeLessThanOrEqual(end);
				expect((span.last + 1) * cs).toBeGreaterThan(end);
			})
		);
	});
});

describe('pipeline', () => {
	it('resumes an encryption with the same secrets, reusing the chunks already made', async () => {
		const bytes = new Uint8Array(5 * SMALL).map((_, i) => i);
		const secrets = newFileSecrets();
		const made: ChunkId[] = [];
		let calls = 0;
		const failing = encryptFile(
			sourceFromBytes(bytes),
			{ name: 'a', type: '' },
			(i, id) => {
				if (i === 3) throw new Error('network');
				made[i] = id;
			},
			{ chunkSize: SMALL, secrets, concurrency: 1 }
		);
		await expect(failing).rejects.toThrow('network');
		const blobs = new Map<string, Uint8Array>();
		const manifest = await encryptFile(
			sourceFromBytes(bytes),
			{ name: 'a', type: '' },
			(_i, id, blob) => {
				calls++;
				blobs.set(id, blob);
			},
			{ chunkSize: SMALL, secrets, skip: (i) => made[i] }
		);
		expect(calls).toBe(2);
		expect(manifest.chunks.slice(0, 3)).toEqual(made.slice(0, 3));
	});

	it('reads any span of chunks in order, with read-ahead', async () => {
		const { manifest, blobs } = await encrypt(new Uint8Array(7 * SMALL + 5).map((_, i) => i % 251));
		await fc.assert(
			fc.asyncProperty(
				fc.nat(7),
				fc.nat(7),
				fc.integer({ min: 1, max: 5 }),
				async (a, b, ahead) => {
					const [first, last] = a <= b ? [a, b] : [b, a];
					const seen: number[] = [];
					await readChunks(
						manifest,
						async (id) => blobs.get(id) as Uint8Array,
						(plain, index) => {
							seen.push(index);
							expect(plain.length).toBe(index === 7 ? 5 : SMALL);
						},
						{ first, last, ahead }
					);
					expect(seen).toEqual(Array.from({ length: last - first + 1 }, (_, i) => first + i));
				}
			),
			{ numRuns: 30 }
		);
	});
});
