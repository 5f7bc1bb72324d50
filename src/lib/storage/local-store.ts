/**
 * A small key-value store for device-local records that are not Yjs docs:
 * the wrapped keyring, encrypted view snapshots, settings of this device.
 *
 * On disk: database `kith-local` (version 1), one object store `kv` with
 * out-of-line string keys. Values are stored by structured clone, so a
 * non-extractable WebCrypto CryptoKey can be stored as is (it stays
 * non-extractable, and is useless outside this origin's storage).
 * Callers namespace keys with a prefix (`keyring/…`, `view/<room>`), which
 * `keys(prefix)` lists.
 *
 * Values come back as whatever was stored: the type parameter of `get` is a
 * claim, not a check. Parse what you read (a schema at the storage boundary)
 * unless the value is something only this device wrote, like a CryptoKey.
 */
import { StorageReadError } from './errors';
import { openDatabase, transact } from './idb';

export const LOCAL_DB_NAME = 'kith-local';
const KV_STORE = 'kv';

export class LocalStore {
	readonly dbName: string;
	#db: IDBDatabase | null = null;
	#opening: Promise<IDBDatabase> | null = null;

	/** `dbName` is for tests; the app uses the default. */
	constructor(dbName: string = LOCAL_DB_NAME) {
		this.dbName = dbName;
	}

	/** The stored value, or undefined if there is none. Rejects with StorageReadError. */
	async get<T = unknown>(key: string): Promise<T | undefined> {
		const db = await this.#open();
		let value: unknown;
		await transact(db, [KV_STORE], 'readonly', (tx, step) =>
			step(tx.objectStore(KV_STORE).get(key), (v) => (value = v))
		);
		return value as T | undefined;
	}

	/**
	 * Store `value` under `key`, replacing any previous value. Resolves after
	 * the transaction committed with durability 'strict' (on disk). Rejects
	 * with StorageQuotaError or StorageWriteError; the old value is then intact.
	 */
	async put(key: string, value: unknown): Promise<void> {
		const db = await this.#open();
		await transact(db, [KV_STORE], 'readwrite', (tx) => {
			tx.objectStore(KV_STORE).put(value, key);
		});
	}

	/** Remove `key` (no error if absent). Resolves after commit. */
	async delete(key: string): Promise<void> {
		const db = await this.#open();
		await transact(db, [KV_STORE], 'readwrite', (tx) => {
			tx.objectStore(KV_STORE).delete(key);
		});
	}

	/** Every key that starts with `prefix` (all keys for ''), in sorted order. */
	async keys(prefix = ''): Promise<string[]> {
		const db = await this.#open();
		let keys: IDBValidKey[] = [];
		await transact(db, [KV_STORE], 'readonly', (tx, step) =>
			step(tx.objectStore(KV_STORE).getAllKeys(prefixRange(prefix)), (k) => (keys = k))
		);
		return keys.filter((k): k is string => typeof k === 'string');
	}

	/** Close the connection; a later call reopens it. */
	close(): void {
		this.#db?.close();
		this.#db = null;
	}

	#open(): Promise<IDBDatabase> {
		if (this.#db) return Promise.resolve(this.#db);
		this.#opening ??= openDatabase(
			this.dbName,
			(db) => {
				if (!db.objectStoreNames.contains(KV_STORE)) db.createObjectStore(KV_STORE);
			},
			() => {
				this.#db = null;
			}
		).then(
			(db) => {
				this.#opening = null;
				if (!db.objectStoreNames.contains(KV_STORE)) {
					db.close();
					throw new StorageReadError(`database ${this.dbName} has no "${KV_STORE}" store`);
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
}

/**
 * The string keys starting with `prefix`. IndexedDB compares strings by
 * UTF-16 code unit, so the exclusive upper bound is the prefix with its last
 * code unit incremented (carrying past U+FFFF), which is exact, unlike the
 * common `prefix + '\uffff'`.
 */
export function prefixRange(prefix: string): IDBKeyRange {
	let end = prefix;
	while (end.length > 0 && end.charCodeAt(end.length - 1) === 0xffff) end = end.slice(0, -1);
	if (end.length === 0) return IDBKeyRange.lowerBound(prefix);
	const upper = end.slice(0, -1) + String.fromCharCode(end.charCodeAt(end.length - 1) + 1);
	return IDBKeyRange.bound(prefix, upper, false, true);
}
