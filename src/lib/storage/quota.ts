/**
 * Storage quota helpers. Kith asks for persistent storage so the browser does
 * not evict conversations under pressure, and recognises "storage full" in
 * every spelling browsers use so the UI can say so plainly.
 */

/**
 * Ask the browser to keep this site's storage (no eviction under pressure).
 * Resolves true if storage is (now) persistent. Never throws: an unsupported
 * API, a denied prompt or an insecure context all mean "not persistent".
 */
export async function requestPersistentStorage(): Promise<boolean> {
	try {
		const storage = globalThis.navigator?.storage;
		if (!storage || typeof storage.persist !== 'function') return false;
		// Asking when already granted can show a prompt again in some browsers.
		if (typeof storage.persisted === 'function' && (await storage.persisted())) return true;
		return await storage.persist();
	} catch {
		return false;
	}
}

/** Bytes used and available to this origin, or null where the browser does not say. Never throws. */
export async function storageEstimate(): Promise<{ usage: number; quota: number } | null> {
	try {
		const storage = globalThis.navigator?.storage;
		if (!storage || typeof storage.estimate !== 'function') return null;
		const { usage, quota } = await storage.estimate();
		if (typeof usage !== 'number' || typeof quota !== 'number') return null;
		return { usage, quota };
	} catch {
		return null;
	}
}

const QUOTA_NAMES = new Set([
	'QuotaExceededError', // spec; Chromium, WebKit, Firefox ≥ 67
	'NS_ERROR_DOM_QUOTA_REACHED', // older Firefox
	'StorageQuotaError' // ours, so the check is idempotent
]);

/** True if `e` means "storage is full", however the browser spelled it. */
export function isQuotaError(e: unknown, depth = 0): boolean {
	if (typeof e !== 'object' || e === null || depth > 4) return false;
	const { name, code, message, cause } = e as {
		name?: unknown;
		code?: unknown;
		message?: unknown;
		cause?: unknown;
	};
	if (typeof name === 'string' && QUOTA_NAMES.has(name)) return true;
	// Legacy DOMException code QUOTA_EXCEEDED_ERR; only trusted on a DOMException
	// because arbitrary errors (e.g. Node's) use numeric codes for other things.
	if (code === 22 && typeof DOMException !== 'undefined' && e instanceof DOMException) return true;
	// lib0's IndexedDB helpers (used by stock y-indexeddb) wrap the DOMException
	// as `new Error(String(domException))`, keeping only its text.
	if (typeof message === 'string' && /QuotaExceededError|NS_ERROR_DOM_QUOTA_REACHED/.test(message))
		return true;
	return isQuotaError(cause, depth + 1);
}
