/**
 * What the service worker needs to show a notification, and where it keeps
 * it (docs/protocol.md, "Push (v1)"; docs/threat-model.md).
 *
 * The page hands the worker a PushState: per room, its notification keys
 * (subkeys that open notification envelopes only, never messages) and the
 * conversation's id and name, plus the "Private notifications" choice.
 *
 * - A profile with a passphrase is locked whenever no page has unlocked it:
 *   the worker holds its keys in memory only, so once the browser stops the
 *   idle worker, notifications carry no content until Kith is unlocked again.
 * - A profile without a passphrase opens without one anyway: the worker also
 *   keeps the state in IndexedDB, encrypted under a non-extractable AES-GCM
 *   key stored beside it (the same protection as the keyring at rest).
 */
import { z } from 'zod';

export const PushRoom = z.strictObject({
	room: z.string().min(1).max(64),
	/** Epoch → base64url notification key. */
	keys: z.record(z.string().regex(/^\d{1,9}$/), z.string().regex(/^[A-Za-z0-9_-]{43}$/)),
	conversation: z.string().min(1).max(64),
	name: z.string().max(100)
});
export type PushRoom = z.infer<typeof PushRoom>;

export const PushState = z.strictObject({
	private: z.boolean(),
	rooms: z.array(PushRoom).max(10_000)
});
export type PushState = z.infer<typeof PushState>;

/** Page → worker. */
export const PushMessage = z.discriminatedUnion('type', [
	z.strictObject({
		type: z.literal('kith-push-state'),
		state: PushState,
		/** Keep it across worker restarts (profiles without a passphrase). */
		persist: z.boolean()
	}),
	/** Forget everything: notifications turned off, or the profile is gone. */
	z.strictObject({ type: z.literal('kith-push-forget') })
]);
export type PushMessage = z.infer<typeof PushMessage>;

export function parsePushMessage(data: unknown): PushMessage | null {
	const parsed = PushMessage.safeParse(data);
	return parsed.success ? parsed.data : null;
}

const DB_NAME = 'kith-push';
const STORE = 'state';
const RECORD = 'current';

interface StoredState {
	wrapKey: CryptoKey;
	iv: Uint8Array;
	ciphertext: Uint8Array;
}

function openDb(): Promise<IDBDatabase> {
	return new Promise((resolve, reject) => {
		const request = indexedDB.open(DB_NAME, 1);
		request.onupgradeneeded = () => request.result.createObjectStore(STORE);
		request.onsuccess = () => resolve(request.result);
		request.onerror = () => reject(request.error ?? new Error('indexedDB.open failed'));
	});
}

async function withStore<T>(
	mode: IDBTransactionMode,
	work: (store: IDBObjectStore) => IDBRequest<T>
): Promise<T> {
	const db = await openDb();
	try {
		return await new Promise<T>((resolve, reject) => {
			const tx = db.transaction(STORE, mode);
			const request = work(tx.objectStore(STORE));
			tx.oncomplete = () => resolve(request.result);
			tx.onerror = () => reject(tx.error ?? new Error('push state transaction failed'));
			tx.onabort = () => reject(tx.error ?? new Error('push state transaction aborted'));
		});
	} finally {
		db.close();
	}
}

/** Write the state, encrypted under a fresh non-extractable key kept beside it. */
export async function persistState(state: PushState): Promise<void> {
	const wrapKey = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, [
		'encrypt',
		'decrypt'
	]);
	const iv = crypto.getRandomValues(new Uint8Array(12));
	const plaintext = new TextEncoder().encode(JSON.stringify(state));
	const ciphertext = new Uint8Array(
		await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, wrapKey, plaintext)
	);
	const record: StoredState = { wrapKey, iv, ciphertext };
	await withStore('readwrite', (store) => store.put(record, RECORD));
}

/** The persisted state, or null (none, or unreadable: then it is as if locked). */
export async function loadState(): Promise<PushState | null> {
	try {
		const record = (await withStore('readonly', (store) => store.get(RECORD))) as
			StoredState | undefined;
		if (!record) return null;
		const plaintext = await crypto.subtle.decrypt(
			{ name: 'AES-GCM', iv: record.iv as Uint8Array<ArrayBuffer> },
			record.wrapKey,
			record.ciphertext as Uint8Array<ArrayBuffer>
		);
		const parsed = PushState.safeParse(JSON.parse(new TextDecoder().decode(plaintext)));
		return parsed.success ? parsed.data : null;
	} catch (error) {
		console.warn('kith:push the stored notification keys could not be read', error);
		return null;
	}
}

export async function forgetState(): Promise<void> {
	try {
		await withStore('readwrite', (store) => store.delete(RECORD));
	} catch (error) {
		console.warn('kith:push could not delete the stored notification keys', error);
	}
}
