/**
 * The media benchmark's code inside an app page (bundled by bench/media/media.ts
 * and evaluated there): the real library (src/lib/media), real IndexedDB on
 * disk, real WebCrypto.
 */
import { IdbChunkStore } from '../../src/lib/media/chunk-store';
import { encryptFile, readChunks, type FileSource } from '../../src/lib/media/encrypt-file';
import { CHUNK_SIZE, type FileManifest } from '../../src/lib/media/manifest';

/** Bytes that are not all zero, made a chunk at a time (a 500 MB file never exists whole). */
function syntheticSource(size: number, seed: number): FileSource {
	return {
		size,
		read: async (start, end) => {
			const out = new Uint8Array(end - start);
			const words = new Uint32Array(out.buffer, 0, Math.floor(out.length / 4));
			let x = (seed ^ start) >>> 0 || 1;
			for (let i = 0; i < words.length; i++) {
				x ^= x << 13;
				x ^= x >>> 17;
				x ^= x << 5;
				words[i] = x >>> 0;
			}
			return out;
		}
	};
}

const stores = new Map<string, IdbChunkStore>();
function store(name: string): IdbChunkStore {
	let s = stores.get(name);
	if (!s) {
		s = new IdbChunkStore(name);
		stores.set(name, s);
	}
	return s;
}

export interface PipelineResult {
	bytes: number;
	/** chunk + encrypt + hash + store in IndexedDB. */
	writeMs: number;
	/** read from IndexedDB + decrypt (hash already checked on the way in). */
	readMs: number;
	/** WebCrypto AES-256-GCM encrypt, then decrypt, of the same chunks (no hash, no storage). */
	rawEncryptMs: number;
	rawDecryptMs: number;
	/** The write path without storage (chunk + encrypt + hash only). */
	encryptOnlyMs: number;
	/** Storing the same blobs in IndexedDB, alone (all puts at once: group commit). */
	storeOnlyMs: number;
}

/** The pipeline against raw AES-GCM over the same bytes, chunk by chunk. */
export async function pipeline(size: number, seed: number): Promise<PipelineResult> {
	const source = syntheticSource(size, seed);
	// Plaintext read up front for both, so neither timing includes making the bytes.
	const plain: Uint8Array[] = [];
	for (let at = 0; at < size; at += CHUNK_SIZE)
		plain.push(await source.read(at, Math.min(size, at + CHUNK_SIZE)));
	const preRead: FileSource = {
		size,
		read: async (start) => plain[start / CHUNK_SIZE] as Uint8Array
	};
	const db = store(`kith-media-bench-${seed}`);

	let t = performance.now();
	await encryptFile(
		preRead,
		{ name: 'bench.bin', type: 'application/octet-stream' },
		() => undefined
	);
	const encryptOnlyMs = performance.now() - t;
	t = performance.now();
	const manifest = await encryptFile(
		preRead,
		{ name: 'bench.bin', type: 'application/octet-stream' },
		(_i, id, blob) => db.put(id, blob)
	);
	const writeMs = performance.now() - t;

	t = performance.now();
	let read = 0;
	await readChunks(
		manifest,
		async (id) => (await db.get(id)) as Uint8Array,
		(plain) => {
			read += plain.length;
		},
		{ verified: true }
	);
	const readMs = performance.now() - t;
	if (read !== size) throw new Error('read back the wrong number of bytes');

	const key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, [
		'encrypt',
		'decrypt'
	]);
	const iv = new Uint8Array(12);
	t = performance.now();
	const sealed: ArrayBuffer[] = [];
	for (const chunk of plain)
		sealed.push(
			await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, key, chunk as Uint8Array<ArrayBuffer>)
		);
	const rawEncryptMs = performance.now() - t;
	t = performance.now();
	for (const chunk of sealed) await crypto.subtle.decrypt({ name: 'AES-GCM', iv }, key, chunk);
	const rawDecryptMs = performance.now() - t;
	// Storage alone: the same blobs into a fresh store, all puts issued at once.
	const blobs = await Promise.all(manifest.chunks.map((id) => db.get(id)));
	const other = store(`kith-media-bench-store-${seed}`);
	t = performance.now();
	await Promise.all(blobs.map((blob, i) => other.put(`k${i}`, blob as Uint8Array)));
	const storeOnlyMs = performance.now() - t;
	return { bytes: size, writeMs, readMs, rawEncryptMs, rawDecryptMs, encryptOnlyMs, storeOnlyMs };
}

/** Encrypt a synthetic file of `size` bytes into the app's chunk store (kith-media); returns its manifest. */
export async function prepare(size: number, seed: number): Promise<FileManifest> {
	const db = store('kith-media');
	return encryptFile(
		syntheticSource(size, seed),
		{ name: 'big.mp4', type: 'video/mp4' },
		(_i, id, blob) => db.put(id, blob)
	);
}

/** Read `url` through to the end without keeping it; bytes and time. */
export async function drain(
	url: string,
	range?: string
): Promise<{ status: number; bytes: number; ms: number }> {
	const t = performance.now();
	const res = await fetch(url, range ? { headers: { Range: range } } : {});
	const reader = (res.body as ReadableStream<Uint8Array>).getReader();
	let bytes = 0;
	for (;;) {
		const { done, value } = await reader.read();
		if (done) break;
		bytes += value.length;
	}
	return { status: res.status, bytes, ms: performance.now() - t };
}
