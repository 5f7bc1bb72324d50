/**
 * The service worker's `/media/<id>` route: a file decrypted as it is read,
 * with HTTP Range, so a <video> seeks and a 1 GB file never sits whole in
 * memory (a few chunks read ahead and one queued: about 1 MiB per response).
 *
 * Chunks come from IndexedDB (kith-media, shared with the page) or, when not
 * held, from the relay's blob store, or when the relay cannot give one, from
 * an open page that asks the conversation's direct peers (a worker cannot
 * reach them); a fetched chunk is checked against its id (refused and
 * fetched again if it does not match) and kept. The worker
 * needs the file's manifest: pages post each one they show
 * (`kith-media:manifest`), and the worker keeps them in memory only — a file
 * key is never written to disk in plaintext. After a restart the worker has
 * none, and asks its clients (`kith-media:need`, answered over a
 * MessageChannel); a file no open page knows is 404.
 *
 * Only images, video and audio are served inline. Anything else is sent as
 * an attachment of type application/octet-stream, and every response is
 * sandboxed by CSP: a file someone sent must never run as a page of this
 * origin.
 */
import { BlobClient } from '../media/blob-client';
import { ChunkError, PEER_CHUNK_TIMEOUT_MS, verifyChunk } from '../media/chunks';
import { IdbChunkStore, type ChunkStore } from '../media/chunk-store';
import { openChunk } from '../media/encrypt-file';
import { isFileId, mediaKind, type ChunkId, type FileManifest } from '../media/manifest';
import { chunkSpan, parseRange } from '../media/range';
import { ChunkAnswer, ManifestAnswer, MEDIA_PATH, RegisterManifest } from '../media/sw-protocol';
import type { ServiceWorkerScope, WorkerExtendableEvent, WorkerModule } from './types';

/** Manifests kept in memory (most recently used last). */
const MAX_MANIFESTS = 2000;
const ASK_TIMEOUT_MS = 3000;
/** A page asking its peers for a chunk may take as long as a peer does. */
const ASK_CHUNK_TIMEOUT_MS = PEER_CHUNK_TIMEOUT_MS;
const TAMPER_RETRIES = 3;
/** Chunks read and decrypted ahead of the one being sent. */
const READ_AHEAD = 2;

interface FetchEvent extends WorkerExtendableEvent {
	readonly request: Request;
	respondWith(response: Response | Promise<Response>): void;
}

interface WindowClientLike {
	postMessage(message: unknown, transfer: Transferable[]): void;
}

/** What this module needs of the worker's scope beyond ServiceWorkerScope. */
interface MediaScope {
	addEventListener(type: 'fetch', listener: (event: FetchEvent) => void): void;
	readonly clients: {
		matchAll(options: {
			type: 'window';
			includeUncontrolled: boolean;
		}): Promise<readonly WindowClientLike[]>;
	};
	readonly location: { origin: string };
}

/**
 * Frees a buffer this worker is done with at once (detaching it), where the
 * runtime can: V8 collects ArrayBuffers only when a GC runs, and starts one
 * for their sake only once ~64 MiB of them piled up.
 */
function release(bytes: Uint8Array): void {
	const buffer = bytes.buffer as ArrayBuffer & { transfer?: (length: number) => ArrayBuffer };
	if (buffer.byteLength > 0 && typeof buffer.transfer === 'function') buffer.transfer(0);
}

export interface MediaOptions {
	store?: ChunkStore;
	/**
	 * Free each chunk of a response body two chunks after handing it over.
	 * Only for a consumer that copies a chunk out before it reads the next:
	 * the browser's own, for a response given to `respondWith` (Chromium's
	 * body reader takes the next chunk once the last is in the response's
	 * data pipe). A consumer that keeps the chunks (a test reading the body
	 * with `arrayBuffer()`) would see them emptied.
	 */
	releaseSpent?: boolean;
}

export function media(options: MediaOptions = {}): WorkerModule {
	return (base: ServiceWorkerScope) => {
		const scope = base as unknown as ServiceWorkerScope & MediaScope;
		const manifests = new Map<string, FileManifest>();
		const store = options.store ?? new IdbChunkStore();
		const client = new BlobClient(scope.location.origin);

		const remember = (manifest: FileManifest) => {
			manifests.delete(manifest.id);
			manifests.set(manifest.id, manifest);
			if (manifests.size > MAX_MANIFESTS) manifests.delete(manifests.keys().next().value as string);
		};

		scope.addEventListener('message', (event) => {
			const message = RegisterManifest.safeParse(event.data);
			if (message.success) remember(message.data.manifest);
		});

		/**
		 * Ask every window client: the first answer `read` accepts, as soon as it
		 * comes; undefined once every client answered otherwise or timed out.
		 */
		async function askPages<T>(
			message: unknown,
			read: (data: unknown) => T | undefined,
			timeoutMs: number
		): Promise<T | undefined> {
			const windows = await scope.clients.matchAll({ type: 'window', includeUncontrolled: true });
			return new Promise<T | undefined>((resolve) => {
				let waiting = windows.length;
				if (waiting === 0) resolve(undefined);
				for (const window of windows) {
					const channel = new MessageChannel();
					const done = (answer: T | undefined) => {
						clearTimeout(timer);
						channel.port1.onmessage = null;
						if (answer !== undefined) resolve(answer);
						else if (--waiting === 0) resolve(undefined);
					};
					const timer = setTimeout(() => done(undefined), timeoutMs);
					channel.port1.onmessage = (event) => done(read(event.data));
					window.postMessage(message, [channel.port2]);
				}
			});
		}

		async function ask(id: string): Promise<FileManifest | undefined> {
			const manifest = await askPages(
				{ type: 'kith-media:need', id },
				(data) => {
					const answer = ManifestAnswer.safeParse(data);
					const found = answer.success ? answer.data.manifest : null;
					return found && found.id === id ? found : undefined;
				},
				ASK_TIMEOUT_MS
			);
			if (manifest) remember(manifest);
			return manifest;
		}

		/** A chunk from the pages' peers (the relay could not give it), not yet checked. */
		function askChunk(manifest: FileManifest, index: number): Promise<Uint8Array | undefined> {
			return askPages(
				{ type: 'kith-media:need-chunk', file: manifest.id, index },
				(data) => {
					const answer = ChunkAnswer.safeParse(data);
					return (answer.success && answer.data.blob) || undefined;
				},
				ASK_CHUNK_TIMEOUT_MS
			);
		}

		async function chunk(manifest: FileManifest, index: number): Promise<Uint8Array> {
			const id = manifest.chunks[index] as ChunkId;
			let blob = await store.get(id);
			if (blob) {
				const plain = await openChunk(manifest, index, blob, true);
				// The store's copy is ours (ChunkStore.get) and spent: free it now.
				release(blob);
				return plain;
			}
			for (let attempt = 0; ; attempt++) {
				try {
					blob = await client.get(id);
					break;
				} catch (error) {
					if ((error as Error).name === ChunkError.NAME && attempt < TAMPER_RETRIES) continue;
					// The relay lacks it or is out of reach: the pages' peers may have it.
					const fromPeers = await askChunk(manifest, index);
					if (!fromPeers || !(await verifyChunk(id, fromPeers))) throw error;
					blob = fromPeers;
					break;
				}
			}
			await store.put(id, blob);
			return openChunk(manifest, index, blob, true);
		}

		async function respond(request: Request, id: string): Promise<Response> {
			const manifest = manifests.get(id) ?? (await ask(id));
			if (!manifest) {
				return new Response('This file is not known to any open Kith page.\n', {
					status: 404,
					headers: { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' }
				});
			}
			const download = new URL(request.url).searchParams.has('download');
			const inline = !download && mediaKind(manifest) !== 'file';
			const headers: Record<string, string> = {
				'Content-Type': inline ? manifest.type : 'application/octet-stream',
				'Accept-Ranges': 'bytes',
				'Cache-Control': 'no-store',
				'X-Content-Type-Options': 'nosniff',
				'Content-Security-Policy': "sandbox; default-src 'none'",
				'Content-Disposition': `${inline ? 'inline' : 'attachment'}; filename*=UTF-8''${encodeURIComponent(manifest.name)}`
			};
			const range = parseRange(request.headers.get('Range'), manifest.size);
			if (range.kind === 'unsatisfiable') {
				return new Response(null, {
					status: 416,
					headers: { ...headers, 'Content-Range': `bytes */${manifest.size}` }
				});
			}
			const start = range.kind === 'partial' ? range.start : 0;
			const end = range.kind === 'partial' ? range.end : manifest.size - 1;
			const length = manifest.size === 0 ? 0 : end - start + 1;
			headers['Content-Length'] = String(length);
			if (range.kind === 'partial')
				headers['Content-Range'] = `bytes ${start}-${end}/${manifest.size}`;
			if (request.method === 'HEAD' || length === 0) {
				return new Response(null, { status: range.kind === 'partial' ? 206 : 200, headers });
			}
			const span = chunkSpan(start, end, manifest.chunkSize);
			let index = span.first;
			// The next READ_AHEAD chunks are read and decrypted while one is sent:
			// storage, WebCrypto and the consumer overlap, and memory stays at a
			// few chunks whatever the file's size.
			const ahead: Promise<Uint8Array>[] = [];
			let scheduled = span.first;
			// Chunks handed to the response, newest last (see pull).
			const sent: Uint8Array[] = [];
			const body = new ReadableStream<Uint8Array>(
				{
					async pull(controller) {
						// The browser reads a body chunk only once it has copied out the one
						// before, so when it asks for chunk k (this pull) it has finished with
						// chunk k − 2. Its buffer is freed now instead of waiting for the
						// collector, which lets ~64 MiB of spent chunks pile up first.
						if (options.releaseSpent && sent.length === 2) release(sent.shift()!);
						while (scheduled <= span.last && ahead.length < READ_AHEAD) {
							const next = chunk(manifest, scheduled++);
							// Awaited in turn below; a failure past one that ends the body is no one's to report.
							next.catch(() => undefined);
							ahead.push(next);
						}
						const plain = await (ahead.shift() as Promise<Uint8Array>);
						const from = index === span.first ? span.offset : 0;
						const to = index === span.last ? end - index * manifest.chunkSize + 1 : plain.length;
						if (options.releaseSpent) sent.push(plain);
						controller.enqueue(plain.subarray(from, to));
						if (index++ === span.last) controller.close();
					},
					cancel() {
						ahead.length = 0;
					}
				},
				{ highWaterMark: 1 }
			);
			return new Response(body, { status: range.kind === 'partial' ? 206 : 200, headers });
		}

		scope.addEventListener('fetch', (event) => {
			const request = event.request;
			if (request.method !== 'GET' && request.method !== 'HEAD') return;
			const url = new URL(request.url);
			if (url.origin !== scope.location.origin || !url.pathname.startsWith(MEDIA_PATH)) return;
			const id = url.pathname.slice(MEDIA_PATH.length);
			if (!isFileId(id)) return;
			event.respondWith(
				respond(request, id).catch(
					(error: unknown) =>
						new Response(`The file could not be read: ${(error as Error).message}\n`, {
							status: 502,
							headers: { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' }
						})
				)
			);
		});
	};
}
