/**
 * Minimal promise helpers over raw IndexedDB, shared by the stores in this
 * folder (internal; not exported from the storage index).
 *
 * Why not lib0/indexeddb (which y-indexeddb uses): its request wrapper
 * rejects with `new Error(String(domException))`, losing the DOMException's
 * name that tells a full quota apart from other failures, and it offers no
 * promise for a transaction's `complete` event — the only honest signal that
 * data is on disk. Here every write resolves on `complete` and rejects on
 * `abort` with a named StorageError.
 *
 * Rule for callers: a transaction commits as soon as no request is pending,
 * so the body must issue its requests synchronously or from a request's
 * success callback (use `step`), never after an `await`.
 */
import { StorageError, StorageQuotaError, StorageReadError, StorageWriteError } from './errors';
import { isQuotaError } from './quota';

export type Access = 'read' | 'write';

/** Map any failure to a named StorageError that keeps the original as `cause`. */
export function toStorageError(e: unknown, access: Access): StorageError {
	if (e instanceof StorageError) return e;
	if (isQuotaError(e)) return new StorageQuotaError({ cause: e });
	const detail = describe(e);
	return access === 'write'
		? new StorageWriteError(detail, { cause: e })
		: new StorageReadError(detail, { cause: e });
}

function describe(e: unknown): string {
	if (e instanceof Error || (typeof DOMException !== 'undefined' && e instanceof DOMException)) {
		return e.message ? `${e.name}: ${e.message}` : e.name;
	}
	return String(e);
}

function factory(): IDBFactory {
	const idb = globalThis.indexedDB;
	if (!idb) throw new StorageReadError('IndexedDB is not available in this browser');
	return idb;
}

/**
 * Open (creating if new) database `name` at its current version. `upgrade`
 * runs only when the database is created. The connection closes itself when
 * another connection wants to delete or upgrade the database, and then calls
 * `onClose` so the owner can reopen lazily instead of using a dead handle.
 */
export function openDatabase(
	name: string,
	upgrade: (db: IDBDatabase) => void,
	/**
	 * The connection closed: 'versionchange' when another connection deletes
	 * (or upgrades) the database, 'closed' when the browser closed it.
	 */
	onClose?: (why: 'versionchange' | 'closed') => void
): Promise<IDBDatabase> {
	return new Promise((resolve, reject) => {
		let request: IDBOpenDBRequest;
		try {
			request = factory().open(name);
		} catch (e) {
			reject(toStorageError(e, 'read'));
			return;
		}
		request.onupgradeneeded = () => {
			try {
				upgrade(request.result);
			} catch (e) {
				request.transaction?.abort();
				reject(toStorageError(e, 'write'));
			}
		};
		request.onerror = () => reject(toStorageError(request.error, 'read'));
		request.onsuccess = () => {
			const db = request.result;
			db.onversionchange = () => {
				db.close();
				onClose?.('versionchange');
			};
			// Fired when the browser closes the connection abnormally (storage cleared, disk gone).
			db.onclose = () => onClose?.('closed');
			resolve(db);
		};
	});
}

/**
 * Open database `name` only if it exists; resolves null otherwise and
 * leaves no empty database behind (the creating upgrade is aborted).
 */
export function openExistingDatabase(name: string): Promise<IDBDatabase | null> {
	return new Promise((resolve, reject) => {
		let request: IDBOpenDBRequest;
		let creating = false;
		try {
			request = factory().open(name);
		} catch (e) {
			reject(toStorageError(e, 'read'));
			return;
		}
		request.onupgradeneeded = () => {
			creating = true;
			request.transaction?.abort();
		};
		request.onerror = (event) => {
			if (creating) {
				// Our own abort; not an error worth reporting to the window.
				event.preventDefault();
				resolve(null);
			} else reject(toStorageError(request.error, 'read'));
		};
		request.onsuccess = () => {
			const db = request.result;
			db.onversionchange = () => db.close();
			resolve(db);
		};
	});
}

/** Delete database `name`. Waits while other connections close (they close themselves on versionchange). */
export function deleteDatabase(name: string): Promise<void> {
	return new Promise((resolve, reject) => {
		let request: IDBOpenDBRequest;
		try {
			request = factory().deleteDatabase(name);
		} catch (e) {
			reject(toStorageError(e, 'write'));
			return;
		}
		request.onerror = () => reject(toStorageError(request.error, 'write'));
		request.onsuccess = () => resolve();
	});
}

/** Run `then` when `request` succeeds, inside the transaction (so more requests may be issued). */
export type Step = <T>(request: IDBRequest<T>, then?: (result: T) => void) => void;

/**
 * Run one transaction. Resolves after `complete` (for readwrite with
 * durability 'strict': after the data was flushed to disk), rejects with a
 * named StorageError after `abort`. If `body` or a `step` callback throws,
 * the transaction is aborted, so a half-done batch never commits.
 */
export function transact(
	db: IDBDatabase,
	stores: string[],
	mode: IDBTransactionMode,
	body: (tx: IDBTransaction, step: Step) => void
): Promise<void> {
	const access: Access = mode === 'readonly' ? 'read' : 'write';
	return new Promise((resolve, reject) => {
		let tx: IDBTransaction;
		try {
			// Chromium defaults to 'relaxed' (complete may fire before the OS flush);
			// 'strict' makes `complete` mean on disk. Browsers without the option ignore it.
			tx = db.transaction(
				stores,
				mode,
				mode === 'readwrite' ? { durability: 'strict' } : undefined
			);
		} catch (e) {
			reject(toStorageError(e, access));
			return;
		}
		let thrown: unknown = null;
		const fail = (e: unknown): void => {
			thrown ??= e;
			try {
				tx.abort();
			} catch {
				// Already aborted (e.g. by the browser for quota) or finishing: the
				// abort/complete event still arrives and settles the promise.
			}
		};
		tx.oncomplete = () => {
			if (thrown !== null) reject(toStorageError(thrown, access));
			else resolve();
		};
		tx.onabort = () =>
			reject(
				toStorageError(
					tx.error ?? thrown ?? new DOMException('The transaction was aborted.', 'AbortError'),
					access
				)
			);
		const step: Step = (request, then) => {
			if (!then) return;
			request.onsuccess = () => {
				try {
					then(request.result);
				} catch (e) {
					fail(e);
				}
			};
		};
		try {
			body(tx, step);
		} catch (e) {
			fail(e);
		}
	});
}
