import { expect, test, type Page } from '@playwright/test';
import {
	conversationLink,
	conversationList,
	createAccount,
	createConversation,
	expectMessages,
	expectNoAlert,
	openConversation,
	send,
	unique
} from './helpers';

test('a passphrase locks the account until it is entered', async ({ page }) => {
	// Three Argon2id runs (create, wrong, right) at the app's real cost: slow by design.
	test.setTimeout(60_000);
	const passphrase = 'correct horse battery staple';
	await createAccount(page, 'Ada', passphrase);
	await openConversation(page, 'Notes to self');
	const texts = ['Locked away', 'Also locked away'];
	for (const text of texts) await send(page, text);

	await page.reload();
	const unlock = page.getByRole('button', { name: 'Unlock' });
	const field = page.getByRole('textbox', { name: 'Passphrase' });
	await expect(unlock).toBeVisible();
	await expect(field).toBeVisible();
	await expect(conversationList(page)).toHaveCount(0);
	await expect(page.getByText('Locked away')).toHaveCount(0);
	// Not even the display name shows while locked.
	await expect(page).toHaveTitle('Kith');
	await expect(page.getByText('Ada')).toHaveCount(0);

	await field.fill('wrong horse battery staple');
	await unlock.click();
	await expect(page.getByRole('alert')).toContainText(/not correct/i, { timeout: 20_000 });
	await expect(unlock).toBeVisible();
	await expect(conversationList(page)).toHaveCount(0);

	await field.fill(passphrase);
	await unlock.click();
	await expect(conversationLink(page, 'Notes to self')).toBeVisible({ timeout: 20_000 });
	await expect(unlock).toHaveCount(0);
	await openConversation(page, 'Notes to self');
	await expectMessages(page, texts);
	await expectNoAlert(page);
});

test('nothing the user wrote is stored in plaintext', async ({ page }) => {
	const nameMarker = unique('NameMarker');
	const conversationMarker = unique('RoomMarker');
	const messageMarker = unique('MessageMarker');
	const markers = [nameMarker, conversationMarker, messageMarker];

	await createAccount(page, nameMarker);
	await openConversation(page, 'Notes to self');
	await send(page, `${messageMarker} in my notes`);
	await createConversation(page, conversationMarker);
	await send(page, `A message: ${messageMarker}`);
	const conversationId = /\/c\/([^/?#]+)/.exec(page.url())?.[1];
	expect(conversationId, 'a conversation has its own URL').toBeTruthy();

	// Searching builds the search index: it must stay in memory, never on disk.
	await page.getByRole('textbox', { name: 'Search' }).fill(messageMarker);
	await expect(page.getByRole('list', { name: 'Search results' }).getByRole('link')).toHaveCount(2);

	// A self-check of the scanner: a value this test stores (bytes nested in an
	// object) must be found, or the scan proves nothing.
	const canary = unique('CanaryMarker');
	await storeCanary(page, canary);

	// The app caches an encrypted view of each conversation a moment after it
	// changes; wait for it, so the scan covers that cache too.
	await expect
		.poll(
			async () =>
				(await dumpIndexedDb(page)).records.some(
					(record) =>
						!record.database.includes(conversationId as string) &&
						record.key.includes(conversationId as string)
				),
			{ message: 'a local snapshot of the conversation is written', timeout: 15_000 }
		)
		.toBe(true);

	const dump = await dumpIndexedDb(page);
	expect(dump.strings.some((text) => text.includes(canary))).toBe(true);

	// The conversation's envelopes are there (as ciphertext).
	const docBytes = dump.records
		.filter((record) => record.database.includes(conversationId as string))
		.reduce((sum, record) => sum + record.bytes, 0);
	expect(docBytes, 'the conversation document holds envelope bytes').toBeGreaterThan(0);

	for (const marker of markers) {
		const found = dump.strings.filter((text) => encodings(marker).some((e) => text.includes(e)));
		expect(found, `"${marker}" must not be stored in plaintext`).toEqual([]);
	}

	const webStorage = await page.evaluate(() => {
		const all: string[] = [];
		for (const storage of [localStorage, sessionStorage]) {
			for (let i = 0; i < storage.length; i++) {
				const key = storage.key(i) ?? '';
				all.push(key, storage.getItem(key) ?? '');
			}
		}
		return all;
	});
	for (const marker of markers) {
		const found = webStorage.filter((text) => encodings(marker).some((e) => text.includes(e)));
		expect(found, `"${marker}" must not be in localStorage or sessionStorage`).toEqual([]);
	}
});

/** The marker as text, and in base64 / base64url at each of the three byte alignments. */
function encodings(marker: string): string[] {
	const out = [marker];
	const bytes = Buffer.from(marker, 'utf8');
	for (let shift = 0; shift < 3; shift++) {
		const padded = Buffer.concat([Buffer.alloc(shift), bytes]);
		for (const encoding of ['base64', 'base64url'] as const) {
			const text = padded.toString(encoding).replace(/=+$/, '');
			// Drop the characters that depend on bytes around the marker.
			out.push(text.slice(shift === 0 ? 0 : Math.ceil((shift * 4) / 3), -2));
		}
	}
	return out;
}

async function storeCanary(page: Page, canary: string): Promise<void> {
	await page.evaluate(async (text) => {
		const db = await new Promise<IDBDatabase>((resolve, reject) => {
			const request = indexedDB.open('e2e-canary', 1);
			request.onupgradeneeded = () => request.result.createObjectStore('values');
			request.onsuccess = () => resolve(request.result);
			request.onerror = () => reject(request.error);
		});
		await new Promise<void>((resolve, reject) => {
			const tx = db.transaction('values', 'readwrite');
			tx.objectStore('values').put({ nested: [{ bytes: new TextEncoder().encode(text) }] }, 1);
			tx.oncomplete = () => resolve();
			tx.onerror = () => reject(tx.error);
		});
		db.close();
	}, canary);
}

interface Dump {
	records: { database: string; store: string; key: string; bytes: number }[];
	/** Every string found, and every byte array decoded as UTF-8 and as Latin-1. */
	strings: string[];
}

/** Read every record of every IndexedDB database of the page's origin. */
async function dumpIndexedDb(page: Page): Promise<Dump> {
	return page.evaluate(async () => {
		const strings: string[] = [];
		const records: Dump['records'] = [];
		const utf8 = new TextDecoder('utf-8');
		const request = <T>(req: IDBRequest<T>) =>
			new Promise<T>((resolve, reject) => {
				req.onsuccess = () => resolve(req.result);
				req.onerror = () => reject(req.error);
			});

		/** Collect the strings in a value; returns the number of raw bytes it holds. */
		const walk = async (value: unknown, depth = 0): Promise<number> => {
			if (depth > 64 || value === null || value === undefined) return 0;
			if (typeof value === 'string') {
				strings.push(value);
				return 0;
			}
			if (typeof value !== 'object') {
				strings.push(String(value));
				return 0;
			}
			let bytes: Uint8Array | null = null;
			if (value instanceof ArrayBuffer) bytes = new Uint8Array(value);
			else if (ArrayBuffer.isView(value))
				bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
			else if (value instanceof Blob) bytes = new Uint8Array(await value.arrayBuffer());
			if (bytes) {
				strings.push(utf8.decode(bytes));
				let latin1 = '';
				for (let i = 0; i < bytes.length; i += 8192) {
					latin1 += String.fromCharCode(...bytes.subarray(i, i + 8192));
				}
				strings.push(latin1);
				return bytes.length;
			}
			if (value instanceof CryptoKey) {
				strings.push(`[CryptoKey ${value.algorithm.name}]`);
				return 0;
			}
			if (value instanceof Date) {
				strings.push(value.toISOString());
				return 0;
			}
			let total = 0;
			if (value instanceof Map) {
				for (const [k, v] of value)
					total += (await walk(k, depth + 1)) + (await walk(v, depth + 1));
			} else if (value instanceof Set || Array.isArray(value)) {
				for (const v of value) total += await walk(v, depth + 1);
			} else {
				for (const [k, v] of Object.entries(value)) {
					strings.push(k);
					total += await walk(v, depth + 1);
				}
			}
			return total;
		};

		for (const info of await indexedDB.databases()) {
			if (!info.name) continue;
			const db = await request(indexedDB.open(info.name));
			try {
				for (const store of Array.from(db.objectStoreNames)) {
					const tx = db.transaction(store, 'readonly');
					const [keys, values] = await Promise.all([
						request(tx.objectStore(store).getAllKeys()),
						request(tx.objectStore(store).getAll())
					]);
					for (const [i, key] of keys.entries()) {
						const keyStart = strings.length;
						await walk(key);
						const keyText = strings.slice(keyStart).join(' ');
						const bytes = await walk(values[i]);
						records.push({ database: db.name, store, key: keyText, bytes });
					}
				}
			} finally {
				db.close();
			}
		}
		return { records, strings };
	});
}
