/**
 * Local persistence of one Yjs document in IndexedDB, batched and with an
 * honest "saved" signal.
 *
 * On-disk format (identical to y-indexeddb 9, so either can open the other's
 * data): one database per document, named by the document name, version 1,
 * with two object stores:
 *   - `updates`: auto-increment integer keys; each value is a Yjs update (V1
 *     encoding) as a Uint8Array. The document is the merge of all values, in
 *     any order (Yjs updates commute). A value may be a single update, a merge
 *     of many (what a batch writes), or a full state (what compaction writes).
 *   - `custom`: unused here; created for y-indexeddb compatibility.
 * For Kith the values are updates of a conversation doc whose entries are
 * already signed, encrypted envelopes: nothing here is plaintext.
 *
 * Why not extend y-indexeddb's `IndexeddbPersistence`: its constructor opens
 * the database, writes the doc's state, applies every stored update without
 * any check and attaches its own one-transaction-per-update listener; each of
 * those is exactly what must change (validation before apply, read-only
 * followers, batching, a commit signal, quota errors). Overriding them all
 * would leave a subclass that fights its parent. Its helpers (`fetchUpdates`,
 * `storeState`) are bound to that class's private fields, and lib0's IndexedDB
 * helpers lose error names (see ./idb.ts). So this is a small reimplementation
 * of the same layout; its trim logic is kept in spirit: what compaction
 * writes is encoded from the live doc, and only keys known to be in that doc
 * are deleted, in the same transaction that adds the new record.
 *
 * Compaction is incremental, so its cost per stored update does not grow with
 * the document. The records it writes are kept as a stack of "tiers" above
 * "frozen" ones:
 *   - A compaction merges the records written since the last one (the
 *     "small" records) into one, together with the newest tiers as long as
 *     each is no larger than what is being merged (a binary counter: every
 *     byte is rewritten about log2(freezeBytes / bytes per compaction) times).
 *   - Its record is encoded from the live doc: `Y.encodeStateAsUpdate(doc, below)`,
 *     where `below` is a state vector such that the records kept (frozen ones
 *     and older tiers) hold every struct under it; the diff holds everything
 *     else the doc has, pending structs and the whole delete set included. So
 *     the records kept plus the new one always hold the whole doc, and every
 *     record replaced may be deleted, in the same transaction.
 *   - A record of at least `freezeBytes` is frozen: never rewritten again. So
 *     no compaction rewrites more than about 2 × freezeBytes, whatever the
 *     size of the doc.
 *   - A full compaction (`Y.encodeStateAsUpdate(doc)` replacing every record
 *     in the doc) runs only when the bookkeeping is unknown: a follower that
 *     became the writer, or kept records that another connection deleted.
 * Nothing of this is stored: on load, records of at least `freezeBytes` count
 * as frozen and the others as small, and the state vector under which every
 * struct is in a frozen record is computed from the small ones (their lowest
 * clock per client).
 *
 * Guarantees:
 *   - Every doc update not caused by this object is queued in memory, and
 *     batches are written in one readwrite transaction (durability 'strict').
 *     `flush()` resolves only after a `complete` event covering every update
 *     received before the call: that is when the UI may say "Saved".
 *   - A failed write (quota, I/O) rejects `flush()` with a named error, keeps
 *     the updates queued, emits `write-failed`, and retries with back-off;
 *     the first success afterwards emits `write-recovered`.
 *   - Stored updates refused by `validate` (or that fail to decode) are never
 *     applied and never deleted: stored data is not destroyed because one
 *     entry is bad, and a later version may read it.
 */
import * as Y from 'yjs';
import { splitUpdate } from '../sync/split-update';
import { StorageError, StorageQuotaError, StorageReadError, StorageWriteError } from './errors';
import {
	deleteDatabase,
	openDatabase,
	openExistingDatabase,
	toStorageError,
	transact
} from './idb';

const UPDATES_STORE = 'updates';
const CUSTOM_STORE = 'custom';

/** A first load bigger than this is checked and applied in pieces of about this size. */
const SLICE_BYTES = 512 * 1024;
/** Pieces checked per task while slicing. */
const CHECK_BATCH = 1;

/** Yield to the event loop (a macrotask: rendering and input get their turn). */
function nextTask(): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Stored-update count above which the store is compacted (y-indexeddb uses the same). */
export const DEFAULT_COMPACT_THRESHOLD = 500;

/**
 * Compacted records of at least this many bytes are never rewritten again
 * (but by a full compaction). Bounds the work of one compaction to about twice
 * this, and the records of a doc to its size / this (+ about log2(this / bytes
 * per compaction) tiers).
 */
export const DEFAULT_FREEZE_BYTES = 2 * 1024 * 1024;

/**
 * Most updates merged by one `Y.mergeUpdates` call. Merging is superlinear:
 * measured in Node here, 5,000 small map updates took 536 ms at once and
 * 195 ms in chunks of 1,000; DESIGN records 14–19 s for 20k at once.
 */
export const DEFAULT_MERGE_CHUNK = 1000;

const MAX_RETRY_MS = 30_000;

export interface RefusedUpdate {
	/** Key of the stored update in the `updates` store (stays on disk). */
	key: IDBValidKey;
	reason: string;
}

export interface DocPersistenceOptions {
	/**
	 * Checks stored updates against the document rules before they are
	 * applied; one verdict per update, in order. Called once per load with
	 * every stored update not seen before. Default: accept all.
	 */
	validate?: (updates: Uint8Array[]) => Promise<boolean[]>;
	/** Load but never write (a follower tab). See `becomeWriter()`. */
	readOnly?: boolean;
	/** Told about each stored update that was not applied. Called once per key. */
	onRefused?: (info: RefusedUpdate) => void;
	/** Compact when more than this many applied updates are stored (besides compacted records). Default 500. */
	compactThreshold?: number;
	/** Compacted records of at least this many bytes are never rewritten. Default 2 MiB. */
	freezeBytes?: number;
	/** Most updates per `Y.mergeUpdates` call. Default 1000. */
	mergeChunk?: number;
	/** First retry delay after a failed write, doubling up to 30 s. Default 1000 ms. */
	retryDelayMs?: number;
}

export interface DocPersistenceEvents {
	/** A transaction committed `count` updates; `pending` are still only in memory. */
	saved: { count: number; pending: number };
	/** A write failed; the updates stay queued and will be retried. */
	'write-failed': { error: StorageError; pending: number };
	/** A write succeeded after one or more failures. */
	'write-recovered': { pending: number };
	/**
	 * Stored updates were replaced by one update: `before` and `after` count the
	 * stored records, `bytes` is the size of the one written, `full` whether it
	 * holds the whole doc (else it holds what the records it replaced held).
	 */
	compacted: { before: number; after: number; bytes: number; full: boolean };
}

export interface StoredStats {
	/** Number of records in the `updates` store. */
	count: number;
	/** Sum of their byte lengths. */
	bytes: number;
}

/** A compacted record that a later compaction may merge. */
interface Tier {
	key: IDBValidKey;
	bytes: number;
	/** State vector: the records kept below this one (frozen, older tiers) hold every struct under it. */
	below: Map<number, number>;
}

export interface CompactOptions {
	/** Rewrite the whole doc as one record, replacing every record in it (as before tiers existed). */
	full?: boolean;
}

interface QueueEntry {
	update: Uint8Array;
	/** How many doc updates this entry holds (more than 1 once merged). */
	count: number;
}

type Listener<K extends keyof DocPersistenceEvents> = (payload: DocPersistenceEvents[K]) => void;

const acceptAll = (updates: Uint8Array[]): Promise<boolean[]> =>
	Promise.resolve(updates.map(() => true));

/** Let the event loop run (input, rendering) between expensive chunks. */
const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

const runWhenIdle = (fn: () => void): void => {
	if (typeof globalThis.requestIdleCallback === 'function') {
		globalThis.requestIdleCallback(fn, { timeout: 5_000 });
	} else {
		setTimeout(fn, 200);
	}
};

/** Rethrow outside our control flow: a broken listener must not break saving, nor be hidden. */
const reportAsync = (e: unknown): void =>
	queueMicrotask(() => {
		throw e;
	});

export class DocPersistence {
	readonly name: string;
	readonly doc: Y.Doc;
	/** Resolves once stored updates were read, checked and applied; rejects with a StorageError. */
	readonly whenLoaded: Promise<void>;

	#readOnly: boolean;
	readonly #validate: (updates: Uint8Array[]) => Promise<boolean[]>;
	readonly #onRefused: ((info: RefusedUpdate) => void) | undefined;
	readonly #compactThreshold: number;
	readonly #freezeBytes: number;
	readonly #mergeChunk: number;
	readonly #retryBaseMs: number;

	#db: IDBDatabase | null = null;
	#opening: Promise<IDBDatabase> | null = null;
	/** Resolves when the first read finished (either way); writes wait for it so the read sees only older data. */
	readonly #firstRead: Promise<void>;
	#loaded = false;
	/** No new work is accepted (destroy/clearData started). */
	#stopping = false;
	/** The connection is closed for good. */
	#closed = false;

	/** Updates received but not yet committed, oldest first; batches are taken from the front. */
	#queue: QueueEntry[] = [];
	#received = 0;
	#persisted = 0;

	/**
	 * Stored keys whose content is in `doc` (applied at load, or written by
	 * us from doc updates): compaction may delete exactly these. Keys are the
	 * store's auto-increment numbers, so Set identity is value identity.
	 */
	#applied = new Set<IDBValidKey>();
	/** Stored keys that were refused; kept on disk, never retried in this session. */
	#refused = new Set<IDBValidKey>();
	#storedCount = 0;
	/** Byte length of each record in `#applied` (for planning compactions). */
	#bytes = new Map<IDBValidKey, number>();
	/** Compacted records that are never rewritten (but by a full compaction). */
	#frozen = new Set<IDBValidKey>();
	/** Compacted records a later compaction may merge, oldest first. */
	#tiers: Tier[] = [];
	/**
	 * Every struct of the doc under this state vector is in a frozen record
	 * (or held by `#tiers`' records, each above its own `below`); null when
	 * unknown: the next compaction is then a full one.
	 */
	#mark: Map<number, number> | null = null;

	/** Serialises our write transactions and compaction so their bookkeeping never interleaves. */
	#lock: Promise<unknown> = Promise.resolve();
	#draining: Promise<void> | null = null;
	#flushTimer: ReturnType<typeof setTimeout> | null = null;
	#retryTimer: ReturnType<typeof setTimeout> | null = null;
	#retryDelay: number;
	#compactScheduled = false;
	#failure: StorageError | null = null;
	#destroying: Promise<void> | null = null;
	#listeners = new Map<keyof DocPersistenceEvents, Set<(payload: never) => void>>();

	constructor(name: string, doc: Y.Doc, options: DocPersistenceOptions = {}) {
		this.name = name;
		this.doc = doc;
		this.#readOnly = options.readOnly ?? false;
		this.#validate = options.validate ?? acceptAll;
		this.#onRefused = options.onRefused;
		this.#compactThreshold = options.compactThreshold ?? DEFAULT_COMPACT_THRESHOLD;
		this.#freezeBytes = options.freezeBytes ?? DEFAULT_FREEZE_BYTES;
		this.#mergeChunk = Math.max(2, options.mergeChunk ?? DEFAULT_MERGE_CHUNK);
		this.#retryBaseMs = options.retryDelayMs ?? 1000;
		this.#retryDelay = this.#retryBaseMs;

		// Whatever the doc already holds arrived before we listened; save it
		// too (as y-indexeddb does), or it would exist only in memory.
		if (!this.#readOnly && hasContent(doc)) {
			this.#enqueue(Y.encodeStateAsUpdate(doc));
			this.#scheduleFlush();
		}
		doc.on('update', this.#onUpdate);
		doc.on('destroy', this.#onDocDestroy);

		let firstReadDone: () => void = () => {};
		this.#firstRead = new Promise<void>((resolve) => (firstReadDone = resolve));
		this.whenLoaded = this.#absorb(firstReadDone).then(
			(applied) => {
				this.#mark = this.#readOnly ? null : this.#markAfterLoad(applied);
				this.#loaded = true;
				if (this.#overThreshold()) this.#scheduleCompaction();
			},
			(e: unknown) => {
				firstReadDone();
				throw toStorageError(e, 'read');
			}
		);
		// The failure stays observable through `whenLoaded` for whoever awaits
		// it; this only keeps it from being reported as unhandled when nobody does.
		this.whenLoaded.catch(() => {});
	}

	/** Number of doc updates received but not yet committed to disk. */
	get pendingCount(): number {
		return this.#received - this.#persisted;
	}

	get readOnly(): boolean {
		return this.#readOnly;
	}

	/** True once stored updates were applied to the doc. */
	get loaded(): boolean {
		return this.#loaded;
	}

	/** The last write error, until a write succeeds again. */
	get lastError(): StorageError | null {
		return this.#failure;
	}

	/** Stored updates that were refused (and kept on disk). */
	get refusedCount(): number {
		return this.#refused.size;
	}

	/** Subscribe to an event; returns the unsubscribe function. */
	on<K extends keyof DocPersistenceEvents>(type: K, listener: Listener<K>): () => void {
		let set = this.#listeners.get(type);
		if (!set) this.#listeners.set(type, (set = new Set()));
		set.add(listener);
		return () => set.delete(listener);
	}

	/**
	 * Resolves after every update received before this call is committed to
	 * disk. Concurrent calls share transactions. Rejects with StorageQuotaError
	 * or StorageWriteError; the updates then stay queued for the next attempt.
	 * In read-only mode nothing is ever queued, so this resolves at once.
	 */
	async flush(): Promise<void> {
		const target = this.#received;
		while (this.#persisted < target) {
			if (this.#closed) throw new StorageWriteError('the storage of this conversation was closed');
			await this.#drain();
		}
	}

	/**
	 * Replace stored updates that are in the doc by one update, in one
	 * transaction: the records written since the last compaction, and the
	 * newest compacted ones no larger than those (see the top of this file);
	 * with `full`, every record in the doc, by the doc's whole state. Refused
	 * updates, and any written by another connection that could not be checked,
	 * stay. Runs by itself when the store grows past the threshold; a no-op in
	 * read-only mode.
	 */
	async compact(options: CompactOptions = {}): Promise<void> {
		if (this.#readOnly || this.#stopping) return;
		await this.whenLoaded;
		await this.#exclusive(async () => {
			// Learn anything another connection stored since we loaded, so its
			// keys can be compacted too (and the doc is complete).
			await this.#absorb();
			try {
				await this.#compactStored(options.full === true);
			} catch (e) {
				if (!(e instanceof StaleCompaction)) throw e;
				// Records we kept were deleted by another connection: what they held
				// may now be only in records we took for small ones. Rewrite the doc.
				await this.#compactStored(true);
			}
		});
	}

	/**
	 * Switch a read-only follower to writing: first saves the doc's full
	 * current state (whatever this tab learned in memory), then reads what the
	 * previous writer stored that this tab had not seen. Resolves once the
	 * state is on disk.
	 */
	async becomeWriter(): Promise<void> {
		if (!this.#readOnly) return;
		if (this.#stopping) throw new StorageWriteError('the storage of this conversation was closed');
		// From here every doc update is queued, and the state queued first
		// covers everything before, so there is no gap. Queued (not written
		// directly) so that if the write fails it is retried like any update.
		this.#readOnly = false;
		this.#enqueue(Y.encodeStateAsUpdate(this.doc));
		await this.flush();
		// Let the initial read finish first, so the two reads don't apply and
		// report the same keys twice.
		await this.whenLoaded.catch(() => {});
		await this.#exclusive(() => this.#absorb());
		if (this.#overThreshold()) this.#scheduleCompaction();
	}

	/**
	 * Read stored updates not seen yet and apply the accepted ones. Followers
	 * call this to catch up with what the writer tab stored.
	 */
	async reload(): Promise<void> {
		await this.whenLoaded;
		await this.#exclusive(() => this.#absorb());
	}

	/**
	 * Stop listening, save what is queued, close the database. Rejects if the
	 * final save failed (the connection is closed anyway; the doc still holds
	 * the updates in memory).
	 */
	destroy(): Promise<void> {
		this.#destroying ??= this.#destroy();
		return this.#destroying;
	}

	async #destroy(): Promise<void> {
		this.doc.off('update', this.#onUpdate);
		this.doc.off('destroy', this.#onDocDestroy);
		this.#clearTimers();
		let error: unknown = null;
		if (!this.#readOnly) {
			try {
				await this.flush();
			} catch (e) {
				error = e;
			}
		}
		this.#stopping = true;
		await this.#lock;
		await this.whenLoaded.catch(() => {});
		this.#close();
		if (error !== null) throw error;
	}

	/** Stop, drop anything queued and delete this document's database. */
	async clearData(): Promise<void> {
		this.doc.off('update', this.#onUpdate);
		this.doc.off('destroy', this.#onDocDestroy);
		this.#clearTimers();
		this.#stopping = true;
		// Let a write in flight finish its bookkeeping before the queue goes.
		await this.#lock;
		await this.whenLoaded.catch(() => {});
		this.#queue = [];
		this.#persisted = this.#received;
		this.#close();
		await deleteDatabase(this.name);
	}

	/** Count and total bytes of the stored updates of document `name` (0/0 if none). Does not create the database. */
	static async storedStats(name: string): Promise<StoredStats> {
		const db = await openExistingDatabase(name);
		if (!db) return { count: 0, bytes: 0 };
		try {
			if (!db.objectStoreNames.contains(UPDATES_STORE)) return { count: 0, bytes: 0 };
			const stats: StoredStats = { count: 0, bytes: 0 };
			await transact(db, [UPDATES_STORE], 'readonly', (tx, step) => {
				step(tx.objectStore(UPDATES_STORE).getAll(), (values: unknown[]) => {
					stats.count = values.length;
					for (const v of values) if (v instanceof Uint8Array) stats.bytes += v.byteLength;
				});
			});
			return stats;
		} finally {
			db.close();
		}
	}

	// ---- receiving updates ------------------------------------------------

	readonly #onUpdate = (update: Uint8Array, origin: unknown): void => {
		// Our own origin marks updates that came from disk: writing them back would echo.
		if (origin === this || this.#readOnly || this.#stopping) return;
		this.#enqueue(update);
		// While failing, the back-off timer retries; don't hammer a full disk per keystroke.
		if (this.#failure === null) this.#scheduleFlush();
	};

	readonly #onDocDestroy = (): void => {
		// A failure here was already reported through `write-failed`.
		this.destroy().catch(() => {});
	};

	#enqueue(update: Uint8Array): void {
		this.#queue.push({ update, count: 1 });
		this.#received += 1;
	}

	#scheduleFlush(): void {
		if (this.#flushTimer !== null) return;
		// A macrotask, not a microtask: a burst made of many synchronous
		// transactions (or a loop with awaits on microtasks) all lands in one batch.
		this.#flushTimer = setTimeout(() => {
			this.#flushTimer = null;
			// Failures are reported through `write-failed` and retried.
			this.flush().catch(() => {});
		}, 0);
	}

	// ---- writing ----------------------------------------------------------

	#exclusive<T>(fn: () => Promise<T>): Promise<T> {
		const run = this.#lock.then(fn);
		this.#lock = run.catch(() => {});
		return run;
	}

	#drain(): Promise<void> {
		this.#draining ??= this.#exclusive(() => this.#drainQueue()).finally(() => {
			this.#draining = null;
		});
		return this.#draining;
	}

	async #drainQueue(): Promise<void> {
		await this.#firstRead;
		while (this.#queue.length > 0) {
			// Entries queued during the merge's yields wait for the next round.
			const batch = this.#queue.slice(0, await this.#mergeQueued());
			const keys: IDBValidKey[] = [];
			try {
				const db = await this.#open();
				await transact(db, [UPDATES_STORE], 'readwrite', (tx, step) => {
					const store = tx.objectStore(UPDATES_STORE);
					for (const entry of batch) step(store.add(entry.update), (key) => keys.push(key));
				});
			} catch (e) {
				throw this.#failed(e);
			}
			// Bookkeeping only after `complete`: an aborted transaction's keys never existed.
			keys.forEach((key, i) => this.#bytes.set(key, batch[i]?.update.byteLength ?? 0));
			this.#queue.splice(0, batch.length);
			const count = batch.reduce((n, entry) => n + entry.count, 0);
			this.#committed(count, keys.length, keys);
		}
	}

	/**
	 * Merge the queued entries in chunks so one batch is a few records, not
	 * thousands, without one huge `mergeUpdates` call. Merged entries replace
	 * their parts in the queue, so a retry after a failure does not merge again.
	 */
	async #mergeQueued(): Promise<number> {
		const end = this.#queue.length;
		const merged: QueueEntry[] = [];
		for (let start = 0; start < end; start += this.#mergeChunk) {
			const chunk = this.#queue.slice(start, Math.min(end, start + this.#mergeChunk));
			if (chunk.length === 1 && chunk[0]) merged.push(chunk[0]);
			else
				merged.push({
					update: Y.mergeUpdates(chunk.map((entry) => entry.update)),
					count: chunk.reduce((n, entry) => n + entry.count, 0)
				});
			if (start + this.#mergeChunk < end) await yieldToEventLoop();
		}
		// Only this method and the (serialised) writers touch the queue's front;
		// new updates are appended behind `end`.
		this.#queue.splice(0, end, ...merged);
		return merged.length;
	}

	/**
	 * Write one record and, in the same transaction, delete the records it
	 * replaces (so a crash leaves either the old records or the new one, never
	 * neither). Full: the doc's whole state, replacing every stored key known
	 * to be in the doc. Otherwise: the doc's content above `below`, replacing
	 * every such key but the frozen records and the tiers kept — which must
	 * still be stored, or this throws StaleCompaction and nothing changes.
	 * Either way the records kept and the new one hold the whole doc, so every
	 * queued update counts as saved.
	 */
	async #compactStored(full: boolean): Promise<void> {
		await this.#firstRead;
		const plan = full ? null : this.#plan();
		// Nothing stored since the last compaction: nothing to merge.
		if (plan !== null && plan.small === 0) return;
		// All taken synchronously with the encoding: exactly these queued updates
		// are inside the new record (or below it), and the mark is the state it
		// was encoded at. Later updates stay queued.
		const covered = this.#queue.length;
		const coveredCount = this.#queue.reduce((n, entry) => n + entry.count, 0);
		const update =
			plan === null
				? Y.encodeStateAsUpdate(this.doc)
				: Y.encodeStateAsUpdate(this.doc, Y.encodeStateVector(plan.below));
		const markAfter = stateVectorOf(this.doc);
		const kept = new Set<IDBValidKey>(
			plan === null ? [] : [...this.#frozen, ...this.#tiers.slice(0, plan.tiers).map((t) => t.key)]
		);
		const deleted: IDBValidKey[] = [];
		let before = 0;
		let newKey: IDBValidKey | null = null;
		let stale = false;
		try {
			const db = await this.#open();
			await transact(db, [UPDATES_STORE], 'readwrite', (tx, step) => {
				const store = tx.objectStore(UPDATES_STORE);
				step(store.getAllKeys(), (keys) => {
					before = keys.length;
					if (kept.size > 0) {
						let present = 0;
						for (const key of keys) if (kept.has(key)) present++;
						if (present !== kept.size) {
							stale = true;
							throw new StaleCompaction();
						}
					}
					// Delete runs of consecutive deletable keys as one range each.
					let runStart: IDBValidKey | null = null;
					let runEnd: IDBValidKey | null = null;
					const endRun = (): void => {
						if (runStart !== null && runEnd !== null)
							store.delete(IDBKeyRange.bound(runStart, runEnd));
						runStart = runEnd = null;
					};
					for (const key of keys) {
						if (this.#applied.has(key) && !kept.has(key)) {
							runStart ??= key;
							runEnd = key;
							deleted.push(key);
						} else endRun();
					}
					endRun();
					// After the deletes, which helps when the disk is nearly full.
					step(store.add(update), (key) => (newKey = key));
				});
			});
		} catch (e) {
			if (stale) {
				this.#frozen.clear();
				this.#tiers = [];
				this.#mark = null;
				throw new StaleCompaction();
			}
			throw this.#failed(e);
		}
		for (const key of deleted) {
			this.#applied.delete(key);
			this.#bytes.delete(key);
			this.#frozen.delete(key);
		}
		this.#tiers = plan === null ? [] : this.#tiers.slice(0, plan.tiers);
		if (newKey !== null) {
			const key: IDBValidKey = newKey;
			this.#bytes.set(key, update.byteLength);
			if (update.byteLength >= this.#freezeBytes) this.#frozen.add(key);
			else this.#tiers.push({ key, bytes: update.byteLength, below: plan?.below ?? new Map() });
		}
		this.#mark = markAfter;
		this.#queue.splice(0, covered);
		this.#storedCount = before - deleted.length;
		this.#committed(coveredCount, 1, newKey === null ? [] : [newKey]);
		this.#emit('compacted', {
			before,
			after: this.#storedCount,
			bytes: update.byteLength,
			full: plan === null
		});
	}

	/**
	 * What the next compaction merges: the small records (`small` of them), and
	 * the newest tiers while each is no larger than all merged so far. `tiers`:
	 * how many tiers stay; `below`: the state vector the new record is encoded
	 * above. Null when the bookkeeping is unknown (a full compaction is needed).
	 */
	#plan(): { small: number; tiers: number; below: Map<number, number> } | null {
		if (this.#mark === null) return null;
		const tierKeys = new Set(this.#tiers.map((t) => t.key));
		let small = 0;
		let bytes = 0;
		for (const key of this.#applied) {
			if (this.#frozen.has(key) || tierKeys.has(key)) continue;
			small++;
			bytes += this.#bytes.get(key) ?? 0;
		}
		let tiers = this.#tiers.length;
		for (
			let top = this.#tiers[tiers - 1];
			top && top.bytes <= bytes;
			top = this.#tiers[tiers - 1]
		) {
			bytes += top.bytes;
			tiers--;
		}
		return { small, tiers, below: this.#tiers[tiers]?.below ?? this.#mark };
	}

	/**
	 * After the first load: records of at least `freezeBytes` count as frozen,
	 * the others as small. The mark is the doc's state vector lowered to the
	 * lowest clock, per client, of every small record and queued update (e.g.
	 * content the doc held before loading): every struct under it is then in a
	 * frozen record. Null (a full compaction next) if one cannot be read.
	 */
	#markAfterLoad(applied: { key: IDBValidKey; update: Uint8Array }[]): Map<number, number> | null {
		const mark = stateVectorOf(this.doc);
		try {
			for (const { key, update } of applied) {
				if (update.byteLength >= this.#freezeBytes) this.#frozen.add(key);
				else lowerToFloors(mark, update);
			}
			for (const entry of this.#queue) lowerToFloors(mark, entry.update);
		} catch {
			this.#frozen.clear();
			return null;
		}
		return mark;
	}

	/** Bookkeeping after a committed write of `records` new records holding `count` queued updates. */
	#committed(count: number, records: number, keys: IDBValidKey[]): void {
		for (const key of keys) this.#applied.add(key);
		this.#storedCount += records;
		this.#persisted += count;
		if (this.#failure !== null) {
			this.#failure = null;
			this.#retryDelay = this.#retryBaseMs;
			if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
			this.#retryTimer = null;
			this.#emit('write-recovered', { pending: this.pendingCount });
		}
		if (count > 0) this.#emit('saved', { count, pending: this.pendingCount });
		if (this.#overThreshold()) this.#scheduleCompaction();
	}

	#failed(e: unknown): StorageError {
		// Callers of flush() get one of the two write errors, whatever failed underneath.
		let error = toStorageError(e, 'write');
		if (error.name !== StorageQuotaError.NAME && error.name !== StorageWriteError.NAME) {
			error = new StorageWriteError(undefined, { cause: error });
		}
		this.#failure = error;
		this.#emit('write-failed', { error, pending: this.pendingCount });
		this.#scheduleRetry();
		return error;
	}

	#scheduleRetry(): void {
		if (this.#retryTimer !== null || this.#stopping) return;
		const delay = this.#retryDelay;
		this.#retryDelay = Math.min(MAX_RETRY_MS, this.#retryDelay * 2);
		this.#retryTimer = setTimeout(() => {
			this.#retryTimer = null;
			// A failure schedules the next retry and is reported via `write-failed`.
			this.#retry().catch(() => {});
		}, delay);
	}

	async #retry(): Promise<void> {
		await this.flush();
		if (this.#overThreshold()) await this.compact();
		if (this.#failure !== null && this.pendingCount === 0) {
			// Nothing is left unsaved (e.g. only a compaction had failed and is
			// no longer needed): the alert can go.
			this.#failure = null;
			this.#retryDelay = this.#retryBaseMs;
			this.#emit('write-recovered', { pending: 0 });
		}
	}

	#overThreshold(): boolean {
		const compacted = this.#frozen.size + this.#tiers.length;
		return (
			!this.#readOnly &&
			this.#loaded &&
			this.#storedCount - this.#refused.size - compacted > this.#compactThreshold
		);
	}

	#scheduleCompaction(): void {
		if (this.#compactScheduled || this.#stopping) return;
		this.#compactScheduled = true;
		runWhenIdle(() => {
			this.#compactScheduled = false;
			if (!this.#overThreshold() || this.#stopping) return;
			// A failure is reported through `write-failed` and retried.
			this.compact().catch(() => {});
		});
	}

	// ---- reading ----------------------------------------------------------

	/**
	 * Read every stored update whose key we have not seen, check them with
	 * `validate` in one batch, apply the accepted ones in one transaction
	 * whose origin is this object, and report the rest.
	 */
	async #absorb(afterRead?: () => void): Promise<{ key: IDBValidKey; update: Uint8Array }[]> {
		const fresh: { key: IDBValidKey; value: unknown }[] = [];
		const applied: { key: IDBValidKey; update: Uint8Array }[] = [];
		try {
			const db = await this.#open();
			await transact(db, [UPDATES_STORE], 'readonly', (tx, step) => {
				const store = tx.objectStore(UPDATES_STORE);
				step(store.getAllKeys(), (keys) => {
					this.#storedCount = keys.length;
					this.#forgetDeletedKept(keys);
					const unseen = keys.filter((k) => !this.#applied.has(k) && !this.#refused.has(k));
					if (unseen.length === keys.length) {
						// Same transaction, so keys and values describe the same snapshot.
						step(store.getAll(), (values: unknown[]) =>
							values.forEach((value, i) => fresh.push({ key: unseen[i] as IDBValidKey, value }))
						);
					} else {
						for (const key of unseen) step(store.get(key), (value) => fresh.push({ key, value }));
					}
				});
			});
		} finally {
			afterRead?.();
		}
		if (fresh.length === 0 || this.#stopping) return applied;

		const refused: RefusedUpdate[] = [];
		const candidates: { key: IDBValidKey; update: Uint8Array }[] = [];
		for (const { key, value } of fresh) {
			if (value instanceof Uint8Array) candidates.push({ key, update: value });
			else refused.push({ key, reason: 'stored value is not a Yjs update (not a Uint8Array)' });
		}
		// The first load of a large doc goes in slices with a task boundary
		// between them, so a page stays responsive (scrolling the first screen)
		// while tens of megabytes are checked and applied. Later reads (what
		// other tabs wrote) are small and go whole.
		const slicing =
			afterRead !== undefined && candidates.reduce((n, c) => n + c.update.length, 0) > SLICE_BYTES;
		const pieces = candidates.map(({ update }) =>
			slicing ? splitUpdate(update, SLICE_BYTES) : [update]
		);
		let verdicts: boolean[] = [];
		if (candidates.length > 0) {
			try {
				verdicts = await this.#check(pieces, slicing);
			} catch (e) {
				if (e instanceof StorageReadError) throw e;
				throw new StorageReadError('the stored updates could not be checked', { cause: e });
			}
		}
		if (this.#stopping) return applied;
		if (slicing) return this.#applySliced(candidates, pieces, verdicts, refused, applied);

		// If the doc held updates waiting for missing parts, applying stored
		// updates may complete them; that happens in a transaction with our
		// origin, which the update listener skips, so save the state afterwards.
		const hadPending = this.doc.store.pendingStructs !== null || this.doc.store.pendingDs !== null;
		// Our update listener would ignore this transaction (our origin), but while
		// it is attached Yjs encodes the whole loaded content as an update event:
		// for a large doc that is a large share of the load. Detach it meanwhile.
		this.doc.off('update', this.#onUpdate);
		try {
			Y.transact(
				this.doc,
				() => {
					candidates.forEach(({ key, update }, i) => {
						if (verdicts[i] !== true) {
							refused.push({ key, reason: 'refused by validation' });
							return;
						}
						try {
							Y.applyUpdate(this.doc, update, this);
							this.#applied.add(key);
							this.#bytes.set(key, update.byteLength);
							applied.push({ key, update });
						} catch (e) {
							refused.push({ key, reason: `could not be applied: ${String(e)}` });
						}
					});
				},
				this,
				false
			);
		} finally {
			this.doc.on('update', this.#onUpdate);
		}
		if (hadPending && !this.#readOnly) {
			this.#enqueue(Y.encodeStateAsUpdate(this.doc));
			this.#scheduleFlush();
		}

		this.#reportRefused(refused);
		return applied;
	}

	/**
	 * `validate` every piece; a record is accepted only when all its pieces
	 * are (a bad update is refused whole). Sliced: a batch at a time.
	 */
	async #check(pieces: Uint8Array[][], slicing: boolean): Promise<boolean[]> {
		const flat = pieces.flat();
		const verdicts: boolean[] = [];
		const batch = slicing ? CHECK_BATCH : flat.length;
		for (let i = 0; i < flat.length; i += batch) {
			if (i > 0) await nextTask();
			const part = flat.slice(i, i + batch);
			const got = await this.#validate(part);
			if (!Array.isArray(got) || got.length !== part.length) {
				throw new StorageReadError('the check of stored updates gave no verdict for some of them');
			}
			verdicts.push(...got);
		}
		let at = 0;
		return pieces.map((list) => {
			const ok = list.every((_, j) => verdicts[at + j] === true);
			at += list.length;
			return ok;
		});
	}

	/** Apply accepted records piece by piece, one Yjs transaction and one task each. */
	async #applySliced(
		candidates: { key: IDBValidKey; update: Uint8Array }[],
		pieces: Uint8Array[][],
		verdicts: boolean[],
		refused: RefusedUpdate[],
		applied: { key: IDBValidKey; update: Uint8Array }[]
	): Promise<{ key: IDBValidKey; update: Uint8Array }[]> {
		const hadPending = this.doc.store.pendingStructs !== null || this.doc.store.pendingDs !== null;
		for (let i = 0; i < candidates.length; i++) {
			const { key, update } = candidates[i] as { key: IDBValidKey; update: Uint8Array };
			if (verdicts[i] !== true) {
				refused.push({ key, reason: 'refused by validation' });
				continue;
			}
			try {
				for (const piece of pieces[i] ?? []) {
					if (this.#stopping) return applied;
					// See #absorb: detached, or Yjs encodes each piece again as an event.
					this.doc.off('update', this.#onUpdate);
					try {
						Y.transact(this.doc, () => Y.applyUpdate(this.doc, piece, this), this, false);
					} finally {
						this.doc.on('update', this.#onUpdate);
					}
					await nextTask();
				}
				this.#applied.add(key);
				this.#bytes.set(key, update.byteLength);
				applied.push({ key, update });
			} catch (e) {
				refused.push({ key, reason: `could not be applied: ${String(e)}` });
			}
		}
		if (hadPending && !this.#readOnly) {
			this.#enqueue(Y.encodeStateAsUpdate(this.doc));
			this.#scheduleFlush();
		}
		this.#reportRefused(refused);
		return applied;
	}

	#reportRefused(refused: RefusedUpdate[]): void {
		for (const info of refused) {
			this.#refused.add(info.key);
			if (this.#onRefused) {
				try {
					this.#onRefused(info);
				} catch (e) {
					reportAsync(e);
				}
			}
		}
	}

	/**
	 * Another connection deleted a record we keep as compacted (it compacted
	 * the store itself): what that record held may now be only in records we
	 * would take for small ones, so the next compaction must be a full one.
	 */
	#forgetDeletedKept(keys: IDBValidKey[]): void {
		if (this.#frozen.size + this.#tiers.length === 0) return;
		const stored = new Set(keys);
		const lost =
			[...this.#frozen].some((key) => !stored.has(key)) ||
			this.#tiers.some((tier) => !stored.has(tier.key));
		if (!lost) return;
		this.#frozen.clear();
		this.#tiers = [];
		this.#mark = null;
	}

	// ---- connection -------------------------------------------------------

	async #open(): Promise<IDBDatabase> {
		if (this.#closed) throw new StorageWriteError('the storage of this conversation was closed');
		if (this.#db) return this.#db;
		this.#opening ??= openDatabase(
			this.name,
			(db) => {
				if (!db.objectStoreNames.contains(UPDATES_STORE))
					db.createObjectStore(UPDATES_STORE, { autoIncrement: true });
				if (!db.objectStoreNames.contains(CUSTOM_STORE)) db.createObjectStore(CUSTOM_STORE);
			},
			// Closed by the browser: forget the handle and reopen on next use.
			// Closed because another connection deletes (or upgrades) the
			// database: closed for good, or the next write would make the
			// database again (after a sign-out, or a generation's retirement).
			(why) => {
				this.#db = null;
				if (why === 'versionchange') {
					this.#closed = true;
					this.#clearTimers();
				}
			}
		).then(
			(db) => {
				this.#opening = null;
				if (this.#closed) {
					db.close();
					throw new StorageWriteError('the storage of this conversation was closed');
				}
				this.#db = db;
				return db;
			},
			(e: unknown) => {
				this.#opening = null;
				throw e;
			}
		);
		return this.#opening;
	}

	#close(): void {
		this.#closed = true;
		this.#clearTimers();
		this.#db?.close();
		this.#db = null;
	}

	#clearTimers(): void {
		if (this.#flushTimer !== null) clearTimeout(this.#flushTimer);
		if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
		this.#flushTimer = this.#retryTimer = null;
	}

	#emit<K extends keyof DocPersistenceEvents>(type: K, payload: DocPersistenceEvents[K]): void {
		const set = this.#listeners.get(type) as Set<Listener<K>> | undefined;
		if (!set) return;
		for (const listener of [...set]) {
			try {
				listener(payload);
			} catch (e) {
				reportAsync(e);
			}
		}
	}
}

/** Thrown (inside the compaction transaction, which then aborts) when a kept record is gone. */
class StaleCompaction extends Error {}

/** The doc's state vector: client → number of its structs integrated, from clock 0. */
function stateVectorOf(doc: Y.Doc): Map<number, number> {
	return Y.decodeStateVector(Y.encodeStateVector(doc));
}

/**
 * Lower `mark` to the lowest clock of each client's structs in `update`.
 * A client absent from `mark` counts as 0 already (state vectors mean "from 0").
 */
function lowerToFloors(mark: Map<number, number>, update: Uint8Array): void {
	for (const struct of Y.decodeUpdate(update).structs) {
		const { client, clock } = struct.id;
		const current = mark.get(client);
		if (current !== undefined && clock < current) mark.set(client, clock);
	}
}

function hasContent(doc: Y.Doc): boolean {
	return (
		doc.store.clients.size > 0 || doc.store.pendingStructs !== null || doc.store.pendingDs !== null
	);
}
