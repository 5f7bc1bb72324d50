/**
 * Dump every record of every IndexedDB database of this origin, as text that
 * a test can search for plaintext markers ("nothing at rest is plaintext").
 * Harmless in production: it only reads what this origin can already read.
 *
 * Values become strings: bytes (Uint8Array, ArrayBuffer, other views, Blob)
 * are decoded both as Latin-1 (every byte a character, so an ASCII marker
 * inside binary is found) and as UTF-8 (for non-ASCII markers), joined by a
 * newline; objects, arrays, Maps and Sets are rendered JSON-like with their
 * members converted the same way; a CryptoKey shows its type and algorithm.
 * The result is plain data, so it crosses `page.evaluate` unchanged.
 */
import { openExistingDatabase, toStorageError, transact } from './idb';

export interface DumpedRecord {
	db: string;
	store: string;
	/** Strings and numbers as is; other keys converted like values. */
	key: string | number;
	/** Searchable text of the value. */
	value: string;
}

export async function dumpAllIndexedDb(): Promise<DumpedRecord[]> {
	const idb = globalThis.indexedDB;
	if (!idb || typeof idb.databases !== 'function') {
		throw toStorageError(new Error('indexedDB.databases() is not available here'), 'read');
	}
	const out: DumpedRecord[] = [];
	for (const info of await idb.databases()) {
		if (!info.name) continue;
		const db = await openExistingDatabase(info.name);
		if (!db) continue; // deleted since it was listed
		try {
			const stores = Array.from(db.objectStoreNames);
			if (stores.length === 0) continue;
			const raw: { store: string; key: IDBValidKey; value: unknown }[] = [];
			await transact(db, stores, 'readonly', (tx, step) => {
				for (const store of stores) {
					const os = tx.objectStore(store);
					step(os.getAllKeys(), (keys) =>
						step(os.getAll(), (values: unknown[]) =>
							keys.forEach((key, i) => raw.push({ store, key, value: values[i] }))
						)
					);
				}
			});
			for (const r of raw) {
				out.push({
					db: info.name,
					store: r.store,
					key:
						typeof r.key === 'string' || typeof r.key === 'number'
							? r.key
							: await searchable(r.key),
					value: await searchable(r.value)
				});
			}
		} finally {
			db.close();
		}
	}
	return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** True ISO-8859-1 (byte n → U+00nn); TextDecoder's 'latin1' label is windows-1252. */
function latin1(bytes: Uint8Array): string {
	let out = '';
	for (let i = 0; i < bytes.length; i += 0x8000) {
		out += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
	}
	return out;
}

function bytesText(bytes: Uint8Array): string {
	return `${latin1(bytes)}\n${utf8.decode(bytes)}`;
}

/** Render any structured-cloneable value as searchable text. */
export async function searchable(value: unknown, seen = new Set<object>()): Promise<string> {
	if (value === null || value === undefined) return String(value);
	switch (typeof value) {
		case 'string':
			return value;
		case 'number':
		case 'boolean':
		case 'bigint':
			return String(value);
		case 'object':
			break;
		default:
			return typeof value;
	}
	const obj = value as object;
	if (seen.has(obj)) return '[Circular]';
	seen.add(obj);
	try {
		return await searchableObject(obj, seen);
	} finally {
		// Only ancestors count as cycles; an object shared by two members is rendered twice.
		seen.delete(obj);
	}
}

async function searchableObject(obj: object, seen: Set<object>): Promise<string> {
	if (obj instanceof Uint8Array) return bytesText(obj);
	if (ArrayBuffer.isView(obj))
		return bytesText(new Uint8Array(obj.buffer, obj.byteOffset, obj.byteLength));
	if (obj instanceof ArrayBuffer) return bytesText(new Uint8Array(obj));
	if (typeof Blob !== 'undefined' && obj instanceof Blob) {
		return bytesText(new Uint8Array(await obj.arrayBuffer()));
	}
	if (obj instanceof Date) return obj.toISOString();
	if (typeof CryptoKey !== 'undefined' && obj instanceof CryptoKey) {
		return `[CryptoKey ${obj.type} ${obj.algorithm.name} extractable=${obj.extractable}]`;
	}
	if (Array.isArray(obj)) {
		const parts: string[] = [];
		for (const item of obj) parts.push(await searchable(item, seen));
		return `[${parts.join(', ')}]`;
	}
	if (obj instanceof Map) {
		const parts: string[] = [];
		for (const [k, v] of obj)
			parts.push(`${await searchable(k, seen)} => ${await searchable(v, seen)}`);
		return `Map{${parts.join(', ')}}`;
	}
	if (obj instanceof Set) {
		const parts: string[] = [];
		for (const v of obj) parts.push(await searchable(v, seen));
		return `Set{${parts.join(', ')}}`;
	}
	const parts: string[] = [];
	for (const [k, v] of Object.entries(obj)) {
		parts.push(`${JSON.stringify(k)}: ${await searchable(v, seen)}`);
	}
	return `{${parts.join(', ')}}`;
}
