/**
 * Erasing this device (sign-out): every IndexedDB database of the origin
 * (the keyring and local store, each conversation's and the vault's
 * envelopes, media chunks, the service worker's push keys), Cache Storage
 * except the app shell's precache, and web storage.
 *
 * A database is deleted once every connection to it closed: the app's own
 * connections close themselves on `versionchange`, and other tabs were told
 * to stop first. One that stays blocked (a tab of an older version) fails the
 * erase with a clear error after `blockedMs` rather than hanging.
 */
/** Something of this device could not be erased; the message says what to do. */
export class EraseError extends Error {
	static readonly NAME = 'EraseError';
	override name = EraseError.NAME;
}

/** Databases the app creates under fixed names (the rest are found by listing). */
export const FIXED_DATABASES = ['kith-local', 'kith-media', 'kith-push'] as const;

export async function eraseLocalData(options: { blockedMs?: number } = {}): Promise<void> {
	const blockedMs = options.blockedMs ?? 10_000;
	const names = new Set<string>(FIXED_DATABASES);
	if (typeof indexedDB.databases === 'function') {
		for (const db of await indexedDB.databases()) if (db.name) names.add(db.name);
	}
	await Promise.all([...names].map((name) => deleteDatabase(name, blockedMs)));
	if (typeof caches !== 'undefined') {
		for (const key of await caches.keys()) {
			if (!key.startsWith('workbox-precache')) await caches.delete(key);
		}
	}
	try {
		localStorage.clear();
		sessionStorage.clear();
	} catch {
		// Storage disabled: nothing is kept there then.
	}
}

/**
 * Delete one database. Rejects with EraseError when it stays blocked (a tab
 * keeps it open) for `blockedMs`; the deletion itself stays queued and
 * happens once that tab closes it.
 */
export function deleteDatabase(name: string, blockedMs: number): Promise<void> {
	return new Promise((resolve, reject) => {
		const request = indexedDB.deleteDatabase(name);
		let timer: ReturnType<typeof setTimeout> | undefined;
		request.onblocked = () => {
			timer ??= setTimeout(
				() =>
					reject(
						new EraseError(
							`Could not erase ${name}: another Kith tab still uses it. Close other Kith tabs and try again.`
						)
					),
				blockedMs
			);
		};
		request.onsuccess = () => {
			clearTimeout(timer);
			resolve();
		};
		request.onerror = () => {
			clearTimeout(timer);
			reject(
				new EraseError(`Could not erase ${name}: ${request.error?.message ?? 'unknown error'}`)
			);
		};
	});
}
