import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LocalStore, LOCAL_DB_NAME, prefixRange } from './local-store';

let counter = 0;
const stores: LocalStore[] = [];
function store(): LocalStore {
	const s = new LocalStore(`local-test-${++counter}`);
	stores.push(s);
	return s;
}

afterEach(() => {
	vi.restoreAllMocks();
	for (const s of stores.splice(0)) s.close();
});

describe('LocalStore', () => {
	it('uses the kith-local database by default', () => {
		expect(new LocalStore().dbName).toBe(LOCAL_DB_NAME);
		expect(LOCAL_DB_NAME).toBe('kith-local');
	});

	it('puts, gets and deletes structured-cloned values', async () => {
		const s = store();
		expect(await s.get('missing')).toBeUndefined();
		const value = { wrapped: new Uint8Array([1, 2, 3]), at: 5, nested: { ok: true } };
		await s.put('keyring/wrapped', value);
		expect(await s.get('keyring/wrapped')).toEqual(value);
		await s.put('keyring/wrapped', 'replaced');
		expect(await s.get<string>('keyring/wrapped')).toBe('replaced');
		await s.delete('keyring/wrapped');
		expect(await s.get('keyring/wrapped')).toBeUndefined();
		await s.delete('never-there');
	});

	it('stores a non-extractable CryptoKey that still works after reading back', async () => {
		const s = store();
		const key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, [
			'encrypt',
			'decrypt'
		]);
		await s.put('keyring/wrapping-key', key);
		s.close(); // force a fresh read from the database
		const back = await s.get<CryptoKey>('keyring/wrapping-key');
		expect(back).toBeInstanceOf(CryptoKey);
		expect(back?.extractable).toBe(false);
		const iv = new Uint8Array(12);
		const ct = await crypto.subtle.encrypt(
			{ name: 'AES-GCM', iv },
			back as CryptoKey,
			new Uint8Array([7])
		);
		expect(new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv }, key, ct))).toEqual(
			new Uint8Array([7])
		);
	});

	it('lists keys by prefix, exactly', async () => {
		const s = store();
		for (const k of ['view/a', 'view/b', 'view0', 'viev/z', 'keyring/x', 'view/\uffff', 'view']) {
			await s.put(k, 1);
		}
		expect(await s.keys('view/')).toEqual(['view/a', 'view/b', 'view/\uffff']);
		expect(await s.keys('view')).toEqual(['view', 'view/a', 'view/b', 'view/\uffff', 'view0']);
		expect(await s.keys('nothing/')).toEqual([]);
		expect((await s.keys()).length).toBe(7);
	});

	it('computes exact prefix ranges, carrying past U+FFFF', () => {
		const r = prefixRange('a\uffff');
		expect(r.includes('a\uffff')).toBe(true);
		expect(r.includes('a\uffff\uffff')).toBe(true);
		expect(r.includes('b')).toBe(false);
		expect(prefixRange('\uffff').includes('\uffffzzz')).toBe(true);
	});

	it('rejects put with StorageQuotaError when the disk is full, keeping the old value', async () => {
		const s = store();
		await s.put('k', 'old');
		const original = IDBObjectStore.prototype.put;
		vi.spyOn(IDBObjectStore.prototype, 'put').mockImplementation(function (
			this: IDBObjectStore,
			...args: Parameters<IDBObjectStore['put']>
		) {
			const request = original.apply(this, args);
			(this.transaction as unknown as { _abort(name: string): void })._abort('QuotaExceededError');
			return request;
		});
		await expect(s.put('k', 'new')).rejects.toMatchObject({
			name: 'StorageQuotaError',
			message: expect.stringMatching(/full/)
		});
		vi.restoreAllMocks();
		expect(await s.get('k')).toBe('old');
	});

	it('rejects a value that cannot be stored with StorageWriteError', async () => {
		const s = store();
		await expect(s.put('k', { f: () => 1 })).rejects.toMatchObject({ name: 'StorageWriteError' });
		expect(await s.get('k')).toBeUndefined();
	});
});
