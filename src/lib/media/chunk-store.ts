/**
 * Encrypted chunks at rest in IndexedDB, by chunk id (the SHA-256 of the
 * blob): database `kith-media`, object store `chunks`, value = the blob as a
 * Uint8Array. Shared by the page and the service worker. It holds ciphertext
 * only; manifests (with their keys) live in conversation docs, which are
 * encrypted at rest, and in memory. A chunk is stored only after its hash was
 * checked, so what is here is always what its id names.
 */
export const MEDIA_DB = 'kith-media';
const STORE = 'chunks';

export interface ChunkStore {
	/** The chunk as a fresh copy the caller owns (it may detach its buffer). */
	get(id: string): Promise<Uint8Array | undefined>;
	put(id: string, blob: Uint8Array): Promise<void>;
	/** Which of `ids` are held. */
	held(ids: readonly string[]): Promise<Set<string>>;
}

function request<T>(req: IDBRequest<T>): Promise<T> {
	return new Promise((resolve, reject) => {
		req.onsuccess = () => resolve(req.result);
		req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
	});
}

export class IdbChunkStore implements ChunkStore {
	#db: Promise<IDBDatabase> | null = null;

	constructor(
		readonly name: string = MEDIA_DB,
		private readonly factory: IDBFactory = indexedDB
	) {}

	#open(): Promise<IDBDatabase> {
		this.#db ??= new Promise((resolve, reject) => {
			const req = this.factory.open(this.name, 1);
			req.onupgradeneeded = () => {
				if (!req.result.objectStoreNames.contains(STORE)) req.result.createObjectStore(STORE);
			};
			req.onsuccess = () => {
				const db = req.result;
				// Another context upgrading (a new version of the app) must not wait on us.
				db.onversionchange = () => {
					db.close();
					this.#db = null;
				};
				resolve(db);
			};
			req.onerror = () => reject(req.error ?? new Error('cannot open the media store'));
			req.onblocked = () => reject(new Error('the media store is blocked by another tab'));
		});
		return this.#db;
	}

	async get(id: string): Promise<Uint8Array | undefined> {
		const db = await this.#open();
		const value = await request(db.transaction(STORE, 'readonly').objectStore(STORE).get(id));
		return value instanceof Uint8Array ? value : undefined;
	}

	/**
	 * Group commit: puts made while a write transaction is open wait for it,
	 * then go together in the next one. Chunks in flight (see encryptFile's
	 * concurrency) thus share transactions, whose commits dominate the cost of
	 * small writes. Durability is relaxed: a chunk lost to a power cut is
	 * fetched again from the relay (or re-made from the file), never trusted
	 * as present while missing, since presence is read from the store itself.
	 */
	put(id: string, blob: Uint8Array): Promise<void> {
		return new Promise((resolve, reject) => {
			this.#pending.push({ id, blob, resolve, reject });
			if (!this.#writing) void this.#flush();
		});
	}

	#pending: Array<{
		id: string;
		blob: Uint8Array;
		resolve: () => void;
		reject: (error: unknown) => void;
	}> = [];
	#writing = false;

	async #flush(): Promise<void> {
		this.#writing = true;
		try {
			while (this.#pending.length > 0) {
				const batch = this.#pending;
				this.#pending = [];
				try {
					const db = await this.#open();
					const tx = db.transaction(STORE, 'readwrite', { durability: 'relaxed' });
					const store = tx.objectStore(STORE);
					for (const { id, blob } of batch) store.put(blob, id);
					await new Promise<void>((resolve, reject) => {
						tx.oncomplete = () => resolve();
						tx.onerror = () => reject(tx.error ?? new Error('cannot store a media chunk'));
						tx.onabort = () => reject(tx.error ?? new Error('storing a media chunk was aborted'));
					});
					for (const put of batch) put.resolve();
				} catch (error) {
					for (const put of batch) put.reject(error);
				}
			}
		} finally {
			this.#writing = false;
		}
	}

	async held(ids: readonly string[]): Promise<Set<string>> {
		const db = await this.#open();
		const store = db.transaction(STORE, 'readonly').objectStore(STORE);
		const counts = await Promise.all(ids.map((id) => request(store.count(id))));
		return new Set(ids.filter((_, i) => (counts[i] ?? 0) > 0));
	}
}

/** In memory, for tests and benchmarks. */
export class MemoryChunkStore implements ChunkStore {
	readonly chunks = new Map<string, Uint8Array>();
	async get(id: string) {
		const blob = this.chunks.get(id);
		// A copy, as IndexedDB gives: callers may detach what they get.
		return blob && new Uint8Array(blob);
	}
	async put(id: string, blob: Uint8Array) {
		this.chunks.set(id, blob);
	}
	async held(ids: readonly string[]) {
		return new Set(ids.filter((id) => this.chunks.has(id)));
	}
}
