/**
 * The service worker's /media route, driven in Node through a stand-in scope:
 * any single byte range of a file comes back exactly (206, Content-Range), a
 * range past the end is 416, chunks missing locally are fetched and checked,
 * and a worker without the manifest asks its clients.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryChunkStore } from '../media/chunk-store';
import { encryptFile, sourceFromBytes } from '../media/encrypt-file';
import type { FileManifest } from '../media/manifest';
import { media } from './media';
import type { ServiceWorkerScope } from './types';

const ORIGIN = 'https://kith.test';
const CS = 1024;

type Listener = (event: unknown) => void;

function worker(
	store: MemoryChunkStore,
	clients: Array<(data: unknown, port: MessagePort) => void> = [],
	releaseSpent = false
) {
	const listeners = new Map<string, Listener[]>();
	const scope = {
		addEventListener: (type: string, fn: Listener) =>
			listeners.set(type, [...(listeners.get(type) ?? []), fn]),
		location: { origin: ORIGIN },
		clients: {
			claim: async () => undefined,
			matchAll: async () =>
				clients.map((answer) => ({
					postMessage: (data: unknown, [port]: MessagePort[]) => answer(data, port as MessagePort)
				}))
		},
		skipWaiting: async () => undefined
	};
	media({ store, releaseSpent })(scope as unknown as ServiceWorkerScope);
	return {
		post(data: unknown) {
			for (const fn of listeners.get('message') ?? []) fn({ data, waitUntil: () => undefined });
		},
		async fetch(path: string, headers: Record<string, string> = {}): Promise<Response | undefined> {
			let answer: Promise<Response> | undefined;
			const event = {
				request: new Request(`${ORIGIN}${path}`, { headers }),
				respondWith: (r: Response | Promise<Response>) => (answer = Promise.resolve(r)),
				waitUntil: () => undefined
			};
			for (const fn of listeners.get('fetch') ?? []) fn(event);
			return answer;
		}
	};
}

async function file(size: number) {
	const bytes = new Uint8Array(size).map((_, i) => (i * 7 + (i >> 8)) & 0xff);
	const store = new MemoryChunkStore();
	const manifest = await encryptFile(
		sourceFromBytes(bytes),
		{ name: 'clip.mp4', type: 'video/mp4' },
		(_i, id, blob) => store.put(id, blob),
		{ chunkSize: CS }
	);
	return { bytes, store, manifest };
}

afterEach(() => vi.unstubAllGlobals());

describe('/media/<id> in the service worker', () => {
	it('frees each body chunk two reads after handing it over, for a consumer that copies as it reads', async () => {
		// ArrayBuffer.prototype.transfer (Chromium; Node from 22): detaching as it does.
		const proto = ArrayBuffer.prototype as ArrayBuffer & { transfer?: (n: number) => ArrayBuffer };
		const native = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'transfer');
		if (!native) {
			Object.defineProperty(ArrayBuffer.prototype, 'transfer', {
				configurable: true,
				value(this: ArrayBuffer) {
					structuredClone(this, { transfer: [this] });
					return new ArrayBuffer(0);
				}
			});
		}
		try {
			expect(typeof proto.transfer).toBe('function');
			const { bytes, store, manifest } = await file(6 * CS + 77);
			const sw = worker(store, [], true);
			sw.post({ type: 'kith-media:manifest', manifest });
			const response = (await sw.fetch(`/media/${manifest.id}`)) as Response;
			// As the browser's body reader does: copy a chunk out before reading the next.
			const reader = response.body!.getReader();
			const chunks: Uint8Array[] = [];
			const copies: Uint8Array[] = [];
			for (;;) {
				const { done, value } = await reader.read();
				if (done) break;
				chunks.push(value);
				copies.push(value.slice());
			}
			const got = new Uint8Array(copies.reduce((n, c) => n + c.length, 0));
			copies.reduce((at, c) => (got.set(c, at), at + c.length), 0);
			expect(got).toEqual(bytes);
			// Every chunk but the last two was freed once the reader moved two past it.
			expect(chunks.map((c) => c.buffer.byteLength === 0)).toEqual([
				...Array(chunks.length - 2).fill(true),
				false,
				false
			]);
		} finally {
			if (!native) delete (ArrayBuffer.prototype as { transfer?: unknown }).transfer;
		}
	});

	it('answers any single range with exactly its bytes', async () => {
		const { bytes, store, manifest } = await file(5 * CS + 123);
		const sw = worker(store);
		sw.post({ type: 'kith-media:manifest', manifest });
		const whole = (await sw.fetch(`/media/${manifest.id}`)) as Response;
		expect(whole.status).toBe(200);
		expect(whole.headers.get('accept-ranges')).toBe('bytes');
		expect(whole.headers.get('content-type')).toBe('video/mp4');
		expect(whole.headers.get('content-security-policy')).toContain('sandbox');
		expect(new Uint8Array(await whole.arrayBuffer())).toEqual(bytes);
		await fc.assert(
			fc.asyncProperty(fc.nat(bytes.length - 1), fc.nat(bytes.length + 50), async (a, b) => {
				const [start, end] = a <= b ? [a, b] : [b, a];
				const res = (await sw.fetch(`/media/${manifest.id}`, {
					Range: `bytes=${start}-${end}`
				})) as Response;
				const last = Math.min(end, bytes.length - 1);
				expect(res.status).toBe(206);
				expect(res.headers.get('content-range')).toBe(`bytes ${start}-${last}/${bytes.length}`);
				expect(res.headers.get('content-length')).toBe(String(last - start + 1));
				expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes.subarray(start, last + 1));
			}),
			{ numRuns: 60 }
		);
		const beyond = (await sw.fetch(`/media/${manifest.id}`, {
			Range: `bytes=${bytes.length}-`
		})) as Response;
		expect(beyond.status).toBe(416);
		expect(beyond.headers.get('content-range')).toBe(`bytes */${bytes.length}`);
	});

	it('serves other files as attachments, never as a page of the app', async () => {
		const { store } = await file(10);
		const bytes = new TextEncoder().encode('<script>alert(1)</script>');
		const manifest: FileManifest = await encryptFile(
			sourceFromBytes(bytes),
			{ name: 'x.html', type: 'text/html' },
			(_i, id, blob) => store.put(id, blob)
		);
		const sw = worker(store);
		sw.post({ type: 'kith-media:manifest', manifest });
		const res = (await sw.fetch(`/media/${manifest.id}`)) as Response;
		expect(res.headers.get('content-type')).toBe('application/octet-stream');
		expect(res.headers.get('content-disposition')).toMatch(
			/^attachment; filename\*=UTF-8''x\.html$/
		);
	});

	it('fetches missing chunks from the relay, refusing bytes that do not match', async () => {
		const { bytes, store, manifest } = await file(3 * CS);
		const remote = new Map(store.chunks);
		const local = new MemoryChunkStore();
		let calls = 0;
		vi.stubGlobal('fetch', async (url: string) => {
			calls++;
			const blob = remote.get(String(url).split('/').pop() as string) as Uint8Array;
			// The first answer is tampered with.
			const body = calls === 1 ? blob.map((b, i) => (i === 40 ? b ^ 1 : b)) : blob;
			return new Response(body as Uint8Array<ArrayBuffer>);
		});
		const sw = worker(local);
		sw.post({ type: 'kith-media:manifest', manifest });
		const res = (await sw.fetch(`/media/${manifest.id}`)) as Response;
		expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
		expect(calls).toBe(4);
		expect(local.chunks.size).toBe(3);
	});

	it('asks its pages for a chunk the relay cannot give (their peers have it), and checks it', async () => {
		const { bytes, store, manifest } = await file(3 * CS);
		vi.stubGlobal('fetch', async () => {
			throw new TypeError('Failed to fetch'); // the relay is gone
		});
		const asked: unknown[] = [];
		let lie = false;
		const page = (data: unknown, port: MessagePort) => {
			asked.push(data);
			const { file: fileId, index } = data as { file: string; index: number };
			const id = fileId === manifest.id ? manifest.chunks[index] : undefined;
			const blob = id ? (store.chunks.get(id) as Uint8Array) : null;
			port.postMessage({ blob: blob && lie ? blob.map((b) => b ^ 1) : blob });
		};
		const local = new MemoryChunkStore();
		// A page that never answers (still loading) does not hold up the one that
		// does: waiting for it would take the whole test's time (30 s).
		const silent = () => undefined;
		const sw = worker(local, [silent, page]);
		sw.post({ type: 'kith-media:manifest', manifest });
		const res = (await sw.fetch(`/media/${manifest.id}`)) as Response;
		expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
		expect(asked).toEqual(
			[0, 1, 2].map((index) => ({ type: 'kith-media:need-chunk', file: manifest.id, index }))
		);
		expect(local.chunks.size).toBe(3);

		// Bytes from a page that do not match the chunk's id are refused.
		lie = true;
		const fresh = worker(new MemoryChunkStore(), [page]);
		fresh.post({ type: 'kith-media:manifest', manifest });
		const refused = (await fresh.fetch(`/media/${manifest.id}`)) as Response;
		await expect(refused.arrayBuffer()).rejects.toThrow();
	});

	it('asks its clients for a manifest it lacks, and is 404 when none knows it', async () => {
		const { bytes, store, manifest } = await file(100);
		const sw = worker(store, [
			(data, port) => {
				const id = (data as { id: string }).id;
				port.postMessage({ manifest: id === manifest.id ? manifest : null });
			}
		]);
		const res = (await sw.fetch(`/media/${manifest.id}`)) as Response;
		expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
		const other = (await sw.fetch('/media/AAAAAAAAAAAAAAAAAAAAAA')) as Response;
		expect(other.status).toBe(404);
		expect(await sw.fetch('/somewhere-else')).toBeUndefined();
	});
});
