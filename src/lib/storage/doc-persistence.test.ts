import 'fake-indexeddb/auto';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import * as Y from 'yjs';
import { IndexeddbPersistence } from 'y-indexeddb';
import { DocPersistence, type RefusedUpdate } from './doc-persistence';
import type { StorageError } from './errors';

let counter = 0;
const freshName = (): string => `doc-test-${++counter}`;

const open: DocPersistence[] = [];
function persist(
	name: string,
	doc: Y.Doc,
	options?: ConstructorParameters<typeof DocPersistence>[2]
): DocPersistence {
	const p = new DocPersistence(name, doc, options);
	open.push(p);
	return p;
}

afterEach(async () => {
	vi.restoreAllMocks();
	await Promise.all(open.splice(0).map((p) => p.destroy().catch(() => {})));
});

const enc = new TextEncoder();

/** Conversation-doc shaped content: a Y.Map of opaque byte entries. */
function setEntry(doc: Y.Doc, key: string, text = key): void {
	doc.getMap<Uint8Array>('ops').set(key, enc.encode(text));
}

function entries(doc: Y.Doc): Record<string, string> {
	const out: Record<string, string> = {};
	doc.getMap<Uint8Array>('ops').forEach((v, k) => (out[k] = new TextDecoder().decode(v)));
	return out;
}

/** Load `name` into a new doc with a new DocPersistence, as a fresh tab would. */
async function loadFresh(
	name: string,
	options?: ConstructorParameters<typeof DocPersistence>[2]
): Promise<{ doc: Y.Doc; p: DocPersistence }> {
	const doc = new Y.Doc();
	const p = persist(name, doc, options);
	await p.whenLoaded;
	return { doc, p };
}

/** Raw records of the `updates` store, read without our code. */
function rawUpdates(name: string): Promise<{ key: IDBValidKey; value: Uint8Array }[]> {
	return new Promise((resolve, reject) => {
		const req = indexedDB.open(name);
		req.onerror = () => reject(req.error);
		req.onsuccess = () => {
			const db = req.result;
			const tx = db.transaction(['updates'], 'readonly');
			const store = tx.objectStore('updates');
			const keys = store.getAllKeys();
			const values = store.getAll();
			tx.oncomplete = () => {
				db.close();
				resolve(keys.result.map((key, i) => ({ key, value: values.result[i] as Uint8Array })));
			};
			tx.onerror = () => reject(tx.error);
		};
	});
}

const latin1 = (b: Uint8Array): string => String.fromCharCode(...b);

/** Count readwrite transactions opened from now on. */
function countWriteTransactions(): { readonly count: number } {
	const original = IDBDatabase.prototype.transaction;
	const counter = { count: 0 };
	vi.spyOn(IDBDatabase.prototype, 'transaction').mockImplementation(function (
		this: IDBDatabase,
		...args: Parameters<IDBDatabase['transaction']>
	) {
		if (args[1] === 'readwrite') counter.count++;
		return original.apply(this, args);
	});
	return counter;
}

type CompactedEvent = { before: number; after: number; bytes: number; full: boolean };

/** Every `compacted` event of `p` from now on. */
function compactions(p: DocPersistence): CompactedEvent[] {
	const seen: CompactedEvent[] = [];
	p.on('compacted', (event) => seen.push(event));
	return seen;
}

/** Abort the next readwrite transaction that adds a record, as a tab dying before commit would leave it. */
function abortNextWrite(): { readonly aborted: boolean; stop(): void } {
	const original = IDBObjectStore.prototype.add;
	let aborted = false;
	const spy = vi.spyOn(IDBObjectStore.prototype, 'add').mockImplementation(function (
		this: IDBObjectStore,
		...args: Parameters<IDBObjectStore['add']>
	) {
		const request = original.apply(this, args);
		if (!aborted) {
			aborted = true;
			this.transaction.abort();
		}
		return request;
	});
	return {
		get aborted() {
			return aborted;
		},
		stop: () => spy.mockRestore()
	};
}

const nextEvent = <K extends 'saved' | 'write-failed' | 'write-recovered' | 'compacted'>(
	p: DocPersistence,
	type: K
): Promise<void> =>
	new Promise((resolve) => {
		const off = p.on(type, () => {
			off();
			resolve();
		});
	});

describe('DocPersistence: batching', () => {
	it('lands a burst of 5,000 updates in a few transactions and reloads them identically', async () => {
		const name = freshName();
		const doc = new Y.Doc();
		const p = persist(name, doc);
		await p.whenLoaded;
		const writes = countWriteTransactions();
		let saved = 0;
		p.on('saved', ({ count }) => (saved += count));

		for (let i = 0; i < 5000; i++) setEntry(doc, `k${i}`, `envelope-${i}`);
		expect(p.pendingCount).toBe(5000);
		await p.flush();

		expect(p.pendingCount).toBe(0);
		expect(saved).toBe(5000);
		expect(writes.count).toBeLessThanOrEqual(2);
		const stats = await DocPersistence.storedStats(name);
		expect(stats.count).toBeLessThanOrEqual(10);
		expect(stats.bytes).toBeGreaterThan(0);

		const { doc: reloaded } = await loadFresh(name);
		expect(entries(reloaded)).toEqual(entries(doc));
		expect(Object.keys(entries(reloaded))).toHaveLength(5000);
		expect(Y.encodeStateVector(reloaded)).toEqual(Y.encodeStateVector(doc));
	});

	it('batches updates that arrive while a transaction is in flight (group commit)', async () => {
		const name = freshName();
		const doc = new Y.Doc();
		const p = persist(name, doc);
		await p.whenLoaded;
		const writes = countWriteTransactions();
		// Updates separated by awaits, as the app produces them after async crypto.
		for (let i = 0; i < 300; i++) {
			setEntry(doc, `k${i}`);
			await Promise.resolve();
			if (i % 50 === 0) await new Promise((r) => setTimeout(r, 0));
		}
		await p.flush();
		expect(writes.count).toBeLessThan(30);
		const { doc: reloaded } = await loadFresh(name);
		expect(Object.keys(entries(reloaded))).toHaveLength(300);
	});

	it('saves what the doc held before persistence was attached', async () => {
		const name = freshName();
		const doc = new Y.Doc();
		setEntry(doc, 'early');
		const p = persist(name, doc);
		await p.whenLoaded;
		await p.flush();
		const { doc: reloaded } = await loadFresh(name);
		expect(entries(reloaded)).toEqual({ early: 'early' });
	});
});

describe('DocPersistence: flush()', () => {
	it('resolves only after the transaction holding the updates completed', async () => {
		const name = freshName();
		const doc = new Y.Doc();
		const p = persist(name, doc);
		await p.whenLoaded;
		const log: string[] = [];
		const original = IDBDatabase.prototype.transaction;
		vi.spyOn(IDBDatabase.prototype, 'transaction').mockImplementation(function (
			this: IDBDatabase,
			...args: Parameters<IDBDatabase['transaction']>
		) {
			const tx = original.apply(this, args);
			if (args[1] === 'readwrite') tx.addEventListener('complete', () => log.push('complete'));
			return tx;
		});

		setEntry(doc, 'a');
		const flushed = p.flush().then(() => log.push('flushed'));
		expect(log).toEqual([]);
		await flushed;
		expect(log).toEqual(['complete', 'flushed']);

		// After it resolves, another connection sees the data.
		const { doc: reloaded } = await loadFresh(name);
		expect(entries(reloaded)).toEqual({ a: 'a' });
	});

	it('lets concurrent callers share one transaction', async () => {
		const name = freshName();
		const doc = new Y.Doc();
		const p = persist(name, doc);
		await p.whenLoaded;
		const writes = countWriteTransactions();
		setEntry(doc, 'a');
		setEntry(doc, 'b');
		await Promise.all([p.flush(), p.flush(), p.flush()]);
		expect(writes.count).toBe(1);
	});

	it('covers updates received while an earlier flush was in flight', async () => {
		const name = freshName();
		const doc = new Y.Doc();
		const p = persist(name, doc);
		await p.whenLoaded;
		setEntry(doc, 'a');
		const first = p.flush();
		setEntry(doc, 'b');
		const second = p.flush();
		await Promise.all([first, second]);
		expect(p.pendingCount).toBe(0);
		const { doc: reloaded } = await loadFresh(name);
		expect(entries(reloaded)).toEqual({ a: 'a', b: 'b' });
	});

	it('resolves at once when nothing is pending', async () => {
		const p = persist(freshName(), new Y.Doc());
		await p.whenLoaded;
		const writes = countWriteTransactions();
		await p.flush();
		expect(writes.count).toBe(0);
	});

	it('does not write back updates it loaded', async () => {
		const name = freshName();
		const doc = new Y.Doc();
		const p = persist(name, doc);
		setEntry(doc, 'a');
		await p.flush();
		const before = await DocPersistence.storedStats(name);
		const { p: p2 } = await loadFresh(name);
		await new Promise((r) => setTimeout(r, 10));
		expect(p2.pendingCount).toBe(0);
		expect(await DocPersistence.storedStats(name)).toEqual(before);
	});
});

/**
 * Store three entries as three separate records, each by its own author
 * (Yjs client), as envelopes from different devices arrive; the one named
 * 'bad' is marked BAD-ENTRY. With `sameAuthor`, one client writes all three,
 * so 'good2' causally follows 'bad'.
 */
async function storeWithBadEntry(name: string, sameAuthor = false): Promise<void> {
	const doc = new Y.Doc();
	const p = persist(name, doc);
	const author = new Y.Doc();
	for (const key of ['good1', 'bad', 'good2']) {
		const source = sameAuthor ? author : new Y.Doc();
		const before = Y.encodeStateVector(doc);
		setEntry(source, key, key === 'bad' ? 'BAD-ENTRY' : key);
		Y.applyUpdate(doc, Y.encodeStateAsUpdate(source, before), 'network');
		await p.flush();
	}
	await p.destroy();
}

const refuseBad = (updates: Uint8Array[]): Promise<boolean[]> =>
	Promise.resolve(updates.map((u) => !latin1(u).includes('BAD-ENTRY')));

describe('DocPersistence: deletion', () => {
	it('does not make a deleted database again: later writes fail instead', async () => {
		const name = freshName();
		const doc = new Y.Doc();
		const p = persist(name, doc);
		await p.whenLoaded;
		setEntry(doc, 'a');
		await p.flush();
		await new Promise<void>((resolve, reject) => {
			const request = indexedDB.deleteDatabase(name);
			request.onsuccess = () => resolve();
			request.onerror = () => reject(request.error ?? new Error('deleteDatabase failed'));
		});
		setEntry(doc, 'b');
		await expect(p.flush()).rejects.toMatchObject({ name: 'StorageWriteError' });
		const names = (await indexedDB.databases()).map((db) => db.name);
		expect(names).not.toContain(name);
	});
});

describe('DocPersistence: validation on load', () => {
	it('applies accepted updates in one transaction whose origin is the persistence', async () => {
		const name = freshName();
		await storeWithBadEntry(name);
		const doc = new Y.Doc();
		const origins: unknown[] = [];
		doc.on('afterTransaction', (tr: Y.Transaction) => origins.push(tr.origin));
		const p = persist(name, doc);
		await p.whenLoaded;
		expect(origins).toEqual([p]);
		expect(entries(doc)).toEqual({ good1: 'good1', bad: 'BAD-ENTRY', good2: 'good2' });
	});

	it('validates all stored updates in one batch; refused ones are not applied, are reported, and stay on disk through compaction', async () => {
		const name = freshName();
		await storeWithBadEntry(name);

		const batches: number[] = [];
		const refused: RefusedUpdate[] = [];
		const { doc, p } = await loadFresh(name, {
			validate: (updates) => {
				batches.push(updates.length);
				return refuseBad(updates);
			},
			onRefused: (info) => refused.push(info),
			compactThreshold: 5
		});
		expect(batches).toEqual([3]);
		expect(entries(doc)).toEqual({ good1: 'good1', good2: 'good2' });
		expect(refused).toHaveLength(1);
		expect(refused[0]?.reason).toMatch(/refused/);
		expect(p.refusedCount).toBe(1);
		const badKey = refused[0]?.key;

		for (let i = 0; i < 20; i++) {
			setEntry(doc, `more${i}`);
			await p.flush();
		}
		await p.compact();

		const raw = await rawUpdates(name);
		expect(raw.length).toBe(2); // the compacted state + the refused record
		const kept = raw.find((r) => r.key === badKey);
		expect(kept && latin1(kept.value)).toContain('BAD-ENTRY');
		expect(raw.filter((r) => latin1(r.value).includes('BAD-ENTRY'))).toHaveLength(1);

		// Nothing was destroyed: a reader that accepts it still finds it.
		const { doc: all } = await loadFresh(name);
		expect(Object.keys(entries(all)).sort()).toEqual(
			['bad', 'good1', 'good2', ...Array.from({ length: 20 }, (_, i) => `more${i}`)].sort()
		);
	});

	it('holds an update that follows a refused one (same author) as pending, and compaction keeps it', async () => {
		const name = freshName();
		await storeWithBadEntry(name, true);
		const { doc, p } = await loadFresh(name, { validate: refuseBad, compactThreshold: 1 });
		// Yjs cannot integrate 'good2' without its predecessor; it waits in the doc.
		expect(entries(doc)).toEqual({ good1: 'good1' });
		expect(doc.store.pendingStructs).not.toBeNull();
		setEntry(doc, 'local');
		await p.flush();
		await p.compact();
		// Once the predecessor is accepted (e.g. a newer version can read it), both appear.
		const { doc: all } = await loadFresh(name);
		expect(entries(all)).toEqual({
			good1: 'good1',
			bad: 'BAD-ENTRY',
			good2: 'good2',
			local: 'local'
		});
	});

	it('refuses stored values that are not updates, without deleting them', async () => {
		const name = freshName();
		const doc = new Y.Doc();
		const p = persist(name, doc);
		setEntry(doc, 'a');
		await p.flush();
		await p.destroy();
		await new Promise<void>((resolve, reject) => {
			const req = indexedDB.open(name);
			req.onsuccess = () => {
				const tx = req.result.transaction(['updates'], 'readwrite');
				tx.objectStore('updates').add('not bytes');
				tx.objectStore('updates').add(new Uint8Array([1, 2, 3, 250, 251]));
				tx.oncomplete = () => {
					req.result.close();
					resolve();
				};
				tx.onerror = () => reject(tx.error);
			};
		});
		const refused: RefusedUpdate[] = [];
		const { doc: reloaded } = await loadFresh(name, { onRefused: (i) => refused.push(i) });
		expect(entries(reloaded)).toEqual({ a: 'a' });
		expect(refused.map((r) => r.reason)).toEqual([
			expect.stringMatching(/not a Yjs update/),
			expect.stringMatching(/could not be applied/)
		]);
		expect((await rawUpdates(name)).length).toBe(3);
	});

	it('rejects whenLoaded with a StorageReadError when validation itself fails, and deletes nothing', async () => {
		const name = freshName();
		await storeWithBadEntry(name);
		const doc = new Y.Doc();
		const p = persist(name, doc, { validate: () => Promise.reject(new Error('verifier crashed')) });
		await expect(p.whenLoaded).rejects.toMatchObject({ name: 'StorageReadError' });
		expect(entries(doc)).toEqual({});
		expect((await rawUpdates(name)).length).toBe(3);
	});
});

describe('DocPersistence: a large first load', () => {
	/** A stored doc of `count` entries of 1 KiB each, in one record. */
	async function storeLarge(name: string, count: number): Promise<Y.Doc> {
		const source = new Y.Doc();
		const p = persist(name, source);
		await p.whenLoaded;
		source.transact(() => {
			for (let i = 0; i < count; i++) setEntry(source, `e${i}`, `${i}:`.padEnd(1024, 'x'));
		});
		await p.flush();
		await p.destroy();
		return source;
	}

	it('checks and applies it in pieces, in separate transactions, and holds exactly the doc', async () => {
		const name = freshName();
		const source = await storeLarge(name, 3000);
		const doc = new Y.Doc();
		let transactions = 0;
		doc.on('afterTransaction', () => transactions++);
		const checked: number[] = [];
		const p = persist(name, doc, {
			validate: async (updates) => {
				checked.push(updates.length);
				return updates.map(() => true);
			}
		});
		await p.whenLoaded;
		expect(entries(doc)).toEqual(entries(source));
		// About 3 MiB in pieces of half a MiB: several checks and transactions.
		expect(checked.length).toBeGreaterThan(3);
		expect(transactions).toBeGreaterThan(3);
	});

	it('refuses the whole record when one piece of it is refused', async () => {
		const name = freshName();
		await storeLarge(name, 3000);
		const doc = new Y.Doc();
		const refused: RefusedUpdate[] = [];
		const bad = enc.encode('2999:');
		const p = persist(name, doc, {
			validate: async (updates) =>
				updates.map((update) => !Buffer.from(update).includes(Buffer.from(bad))),
			onRefused: (info) => refused.push(info)
		});
		await p.whenLoaded;
		expect(entries(doc)).toEqual({});
		expect(refused).toHaveLength(1);
		expect((await rawUpdates(name)).length).toBe(1);
	});
});

describe('DocPersistence: compaction', () => {
	it('compacts automatically past the threshold, keeps everything, reduces the count', async () => {
		const name = freshName();
		const doc = new Y.Doc();
		const p = persist(name, doc, { compactThreshold: 20 });
		await p.whenLoaded;
		const compacted = nextEvent(p, 'compacted');
		for (let i = 0; i < 30; i++) {
			setEntry(doc, `k${i}`);
			await p.flush();
		}
		await compacted;
		const stats = await DocPersistence.storedStats(name);
		expect(stats.count).toBeLessThanOrEqual(2);
		const { doc: reloaded } = await loadFresh(name);
		expect(entries(reloaded)).toEqual(entries(doc));
		expect(Object.keys(entries(reloaded))).toHaveLength(30);
	});

	it('never loses an update that arrives while compacting', async () => {
		const name = freshName();
		const doc = new Y.Doc();
		const p = persist(name, doc, { compactThreshold: 1000 });
		await p.whenLoaded;
		for (let i = 0; i < 10; i++) {
			setEntry(doc, `k${i}`);
			await p.flush();
		}
		// Inject a doc update inside the compaction transaction, after the state was encoded.
		const original = IDBObjectStore.prototype.getAllKeys;
		let injected = false;
		vi.spyOn(IDBObjectStore.prototype, 'getAllKeys').mockImplementation(function (
			this: IDBObjectStore,
			...args: Parameters<IDBObjectStore['getAllKeys']>
		) {
			if (this.transaction.mode === 'readwrite' && !injected) {
				injected = true;
				setEntry(doc, 'late');
			}
			return original.apply(this, args);
		});
		await p.compact();
		expect(injected).toBe(true);
		expect(p.pendingCount).toBe(1);
		await p.flush();
		const { doc: reloaded } = await loadFresh(name);
		expect(Object.keys(entries(reloaded))).toHaveLength(11);
		expect(entries(reloaded).late).toBe('late');
	});

	it('keeps records written by another connection that it has not checked', async () => {
		const name = freshName();
		const doc = new Y.Doc();
		const p = persist(name, doc, { validate: refuseBad, compactThreshold: 1000 });
		await p.whenLoaded;
		setEntry(doc, 'mine');
		await p.flush();
		// Another writer (should not happen with one writer tab, but must be safe).
		const other = new Y.Doc();
		const q = persist(name, other);
		await q.whenLoaded;
		setEntry(other, 'theirs', 'BAD-ENTRY theirs');
		await q.flush();
		await p.compact();
		const raw = await rawUpdates(name);
		expect(raw.some((r) => latin1(r.value).includes('BAD-ENTRY theirs'))).toBe(true);
	});
});

describe('DocPersistence: incremental compaction', () => {
	/** `count` entries of `size` bytes each, one flush (one stored record) per entry. */
	async function writeEntries(
		doc: Y.Doc,
		p: DocPersistence,
		from: number,
		count: number,
		size = 100
	): Promise<void> {
		for (let i = from; i < from + count; i++) {
			setEntry(doc, `k${i}`, `${i}:`.padEnd(size, 'x'));
			await p.flush();
		}
	}

	it('merges only what was written since, plus tiers no larger: the work of one compaction does not grow with the doc', async () => {
		const name = freshName();
		const doc = new Y.Doc();
		const freezeBytes = 8_000;
		const p = persist(name, doc, { compactThreshold: 1_000_000, freezeBytes });
		await p.whenLoaded;
		const seen = compactions(p);
		for (let round = 0; round < 40; round++) {
			await writeEntries(doc, p, round * 10, 10);
			await p.compact();
		}
		expect(seen).toHaveLength(40);
		expect(seen.every((c) => !c.full)).toBe(true);
		// Ten entries are about 1.1 kB; no compaction rewrote more than twice the freeze size.
		expect(Math.max(...seen.map((c) => c.bytes))).toBeLessThan(2 * freezeBytes + 2_000);
		const stats = await DocPersistence.storedStats(name);
		// Frozen records (≥ 8 kB each) plus a few tiers, not one per compaction.
		expect(stats.count).toBeLessThanOrEqual(Math.ceil(stats.bytes / freezeBytes) + 5);
		const { doc: reloaded } = await loadFresh(name);
		expect(entries(reloaded)).toEqual(entries(doc));
		expect(Object.keys(entries(reloaded))).toHaveLength(400);
	});

	it('keeps every entry across reloads, and does not rewrite the whole doc after one', async () => {
		const name = freshName();
		let doc = new Y.Doc();
		const options = { compactThreshold: 1_000_000, freezeBytes: 4_000 };
		let p = persist(name, doc, options);
		await p.whenLoaded;
		let next = 0;
		for (let session = 0; session < 5; session++) {
			const seen = compactions(p);
			for (let round = 0; round < 4; round++) {
				await writeEntries(doc, p, next, 7);
				next += 7;
				await p.compact();
			}
			// Some records left uncompacted when the tab closes.
			await writeEntries(doc, p, next, 3);
			next += 3;
			expect(seen.every((c) => !c.full)).toBe(true);
			const before = entries(doc);
			await p.destroy();
			doc = new Y.Doc();
			p = persist(name, doc, options);
			await p.whenLoaded;
			expect(entries(doc)).toEqual(before);
		}
		expect(Object.keys(entries(doc))).toHaveLength(next);
		const seen = compactions(p);
		await p.compact();
		expect(seen).toEqual([expect.objectContaining({ full: false })]);
		expect(entries((await loadFresh(name)).doc)).toEqual(entries(doc));
	});

	it('loses nothing when the tab dies during a compaction', async () => {
		const name = freshName();
		const doc = new Y.Doc();
		const p = persist(name, doc, {
			compactThreshold: 1_000_000,
			freezeBytes: 2_000,
			retryDelayMs: 60_000
		});
		await p.whenLoaded;
		for (let round = 0; round < 6; round++) {
			await writeEntries(doc, p, round * 10, 10);
			await p.compact();
		}
		await writeEntries(doc, p, 60, 10);
		const before = await rawUpdates(name);
		const abort = abortNextWrite();
		await expect(p.compact()).rejects.toMatchObject({ name: 'StorageWriteError' });
		abort.stop();
		expect(abort.aborted).toBe(true);
		// The aborted transaction changed nothing on disk: a fresh tab loads it all.
		expect(await rawUpdates(name)).toEqual(before);
		expect(Object.keys(entries((await loadFresh(name)).doc))).toHaveLength(70);
		// And this one carries on.
		await writeEntries(doc, p, 70, 5);
		await p.compact();
		const { doc: reloaded } = await loadFresh(name);
		expect(entries(reloaded)).toEqual(entries(doc));
		expect(Object.keys(entries(reloaded))).toHaveLength(75);
	});

	it('rewrites the whole doc when another connection deleted records it kept', async () => {
		const name = freshName();
		const doc = new Y.Doc();
		const p = persist(name, doc, { compactThreshold: 1_000_000, freezeBytes: 2_000 });
		await p.whenLoaded;
		for (let round = 0; round < 5; round++) {
			await writeEntries(doc, p, round * 10, 10);
			await p.compact();
		}
		// Another writer compacts everything it holds into one record of its own.
		const { p: other } = await loadFresh(name);
		await other.compact({ full: true });
		await other.destroy();
		await writeEntries(doc, p, 50, 10);
		const seen = compactions(p);
		await p.compact();
		expect(seen).toEqual([expect.objectContaining({ full: true })]);
		const { doc: reloaded } = await loadFresh(name);
		expect(entries(reloaded)).toEqual(entries(doc));
		expect(Object.keys(entries(reloaded))).toHaveLength(60);
	});

	it('compact({ full: true }) leaves one record holding the whole doc', async () => {
		const name = freshName();
		const doc = new Y.Doc();
		const p = persist(name, doc, { compactThreshold: 1_000_000, freezeBytes: 1_000 });
		await p.whenLoaded;
		for (let round = 0; round < 5; round++) {
			await writeEntries(doc, p, round * 10, 10);
			await p.compact();
		}
		expect((await DocPersistence.storedStats(name)).count).toBeGreaterThan(1);
		await p.compact({ full: true });
		const raw = await rawUpdates(name);
		expect(raw).toHaveLength(1);
		const single = new Y.Doc();
		Y.applyUpdate(single, raw[0]?.value as Uint8Array);
		expect(entries(single)).toEqual(entries(doc));
	});

	type Step =
		| { kind: 'local'; keys: number[] }
		| { kind: 'remote'; who: number; keys: number[] }
		| { kind: 'deliver'; who: number; pick: number }
		| { kind: 'flush' | 'compact' | 'full' | 'reload' | 'crash' | 'foreign' };

	const key = fc.integer({ min: 0, max: 40 });
	const step: fc.Arbitrary<Step> = fc.oneof(
		{
			weight: 4,
			arbitrary: fc.record({
				kind: fc.constant('local' as const),
				keys: fc.array(key, { minLength: 1, maxLength: 4 })
			})
		},
		{
			weight: 3,
			arbitrary: fc.record({
				kind: fc.constant('remote' as const),
				who: fc.integer({ min: 0, max: 2 }),
				keys: fc.array(key, { minLength: 1, maxLength: 3 })
			})
		},
		{
			weight: 3,
			arbitrary: fc.record({
				kind: fc.constant('deliver' as const),
				who: fc.integer({ min: 0, max: 2 }),
				pick: fc.nat()
			})
		},
		{
			weight: 6,
			arbitrary: fc
				.constantFrom(
					...(['flush', 'compact', 'compact', 'full', 'reload', 'crash', 'foreign'] as const)
				)
				.map((kind) => ({ kind }))
		}
	);

	it('property: whatever the order of writes, remote updates (out of order too), compactions, crashes and reloads, a reload holds exactly the doc', async () => {
		let run = 0;
		await fc.assert(
			fc.asyncProperty(
				fc.array(step, { minLength: 1, maxLength: 40 }),
				fc.integer({ min: 150, max: 3_000 }),
				async (steps, freezeBytes) => {
					const name = `doc-property-${++run}-${freshName()}`;
					const options = { compactThreshold: 1_000_000, freezeBytes, retryDelayMs: 60_000 };
					let doc = new Y.Doc();
					let p = persist(name, doc, options);
					await p.whenLoaded;
					const remotes = [0, 1, 2].map(() => new Y.Doc());
					// Updates each remote made that this doc has not been given yet.
					const withheld: Uint8Array[][] = remotes.map(() => []);
					let version = 0;
					const check = async (): Promise<void> => {
						const { doc: loaded, p: reader } = await loadFresh(name);
						expect(entries(loaded)).toEqual(entries(doc));
						expect(Y.encodeStateVector(loaded)).toEqual(Y.encodeStateVector(doc));
						await reader.destroy();
					};
					for (const s of steps) {
						switch (s.kind) {
							case 'local':
								for (const k of s.keys) setEntry(doc, `k${k}`, `local-${version++}`);
								break;
							case 'remote': {
								const remote = remotes[s.who] as Y.Doc;
								const updates = withheld[s.who] as Uint8Array[];
								const capture = (update: Uint8Array): void => void updates.push(update);
								remote.on('update', capture);
								for (const k of s.keys) setEntry(remote, `r${s.who}-${k}`, `remote-${version++}`);
								remote.off('update', capture);
								break;
							}
							case 'deliver': {
								const updates = withheld[s.who] as Uint8Array[];
								if (updates.length === 0) break;
								const [update] = updates.splice(s.pick % updates.length, 1);
								Y.applyUpdate(doc, update as Uint8Array, 'network');
								break;
							}
							case 'flush':
								await p.flush();
								await check();
								break;
							case 'compact':
								await p.flush();
								await p.compact();
								await check();
								break;
							case 'full':
								await p.compact({ full: true });
								await p.flush();
								await check();
								break;
							case 'crash': {
								await p.flush();
								const abort = abortNextWrite();
								await p.compact().catch(() => undefined);
								abort.stop();
								await p.flush();
								await check();
								break;
							}
							case 'foreign': {
								await p.flush();
								const { p: other } = await loadFresh(name, options);
								await other.compact({ full: true });
								await other.destroy();
								await check();
								break;
							}
							case 'reload': {
								await p.destroy();
								const before = entries(doc);
								const vector = Y.encodeStateVector(doc);
								doc = new Y.Doc();
								p = persist(name, doc, options);
								await p.whenLoaded;
								expect(entries(doc)).toEqual(before);
								expect(Y.encodeStateVector(doc)).toEqual(vector);
								break;
							}
						}
					}
					await p.flush();
					await p.compact();
					await check();
					// Updates held back as pending (out of order) were stored too: once the
					// rest arrives, a reloaded doc holds everything every remote wrote.
					await p.destroy();
					const { doc: last } = await loadFresh(name);
					remotes.forEach((remote) => Y.applyUpdate(last, Y.encodeStateAsUpdate(remote)));
					const everything = new Y.Doc();
					Y.applyUpdate(everything, Y.encodeStateAsUpdate(doc));
					remotes.forEach((remote) => Y.applyUpdate(everything, Y.encodeStateAsUpdate(remote)));
					expect(entries(last)).toEqual(entries(everything));
				}
			),
			{ numRuns: 60 }
		);
	}, 120_000);
});

describe('DocPersistence: write failures', () => {
	/** Make `add` fail the way browsers report a full disk: the transaction aborts with QuotaExceededError. */
	function failAddsWithQuota(mode: 'abort' | 'throw'): { stop(): void } {
		const original = IDBObjectStore.prototype.add;
		let active = true;
		vi.spyOn(IDBObjectStore.prototype, 'add').mockImplementation(function (
			this: IDBObjectStore,
			...args: Parameters<IDBObjectStore['add']>
		) {
			if (!active) return original.apply(this, args);
			if (mode === 'throw')
				throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
			const request = original.apply(this, args);
			// fake-indexeddb's internal abort-with-error, the path a real quota failure takes.
			const tx = this.transaction as unknown as { _abort?: (name: string) => void };
			if (typeof tx._abort !== 'function') throw new Error('fake-indexeddb changed: no _abort');
			tx._abort('QuotaExceededError');
			return request;
		});
		return { stop: () => (active = false) };
	}

	for (const mode of ['abort', 'throw'] as const) {
		it(`rejects flush() with StorageQuotaError, keeps the updates queued, and a later flush saves them (${mode})`, async () => {
			const name = freshName();
			const doc = new Y.Doc();
			const p = persist(name, doc, { retryDelayMs: 60_000 });
			await p.whenLoaded;
			setEntry(doc, 'saved-before');
			await p.flush();

			const failures: { error: StorageError; pending: number }[] = [];
			p.on('write-failed', (e) => failures.push(e));
			let recovered = 0;
			p.on('write-recovered', () => recovered++);

			const quota = failAddsWithQuota(mode);
			for (let i = 0; i < 50; i++) setEntry(doc, `k${i}`);
			const error = await p.flush().then(
				() => null,
				(e: unknown) => e
			);
			expect(error).toMatchObject({ name: 'StorageQuotaError' });
			expect((error as Error).message).toMatch(/full/);
			expect((error as Error).message).toMatch(/Nothing already saved was lost/);
			expect(p.pendingCount).toBe(50);
			expect(p.lastError?.name).toBe('StorageQuotaError');
			expect(failures.length).toBeGreaterThanOrEqual(1);
			expect(failures[0]?.pending).toBe(50);
			// Nothing committed, nothing lost.
			expect(entries((await loadFresh(name)).doc)).toEqual({ 'saved-before': 'saved-before' });

			// More updates while failing still queue.
			setEntry(doc, 'during');
			await expect(p.flush()).rejects.toMatchObject({ name: 'StorageQuotaError' });
			expect(p.pendingCount).toBe(51);

			quota.stop();
			await p.flush();
			expect(p.pendingCount).toBe(0);
			expect(p.lastError).toBeNull();
			expect(recovered).toBe(1);
			const { doc: reloaded } = await loadFresh(name);
			expect(entries(reloaded)).toEqual(entries(doc));
			expect(Object.keys(entries(reloaded))).toHaveLength(52);
		});
	}

	it('reports other failures as StorageWriteError', async () => {
		const name = freshName();
		const doc = new Y.Doc();
		const p = persist(name, doc, { retryDelayMs: 60_000 });
		await p.whenLoaded;
		const original = IDBObjectStore.prototype.add;
		const spy = vi.spyOn(IDBObjectStore.prototype, 'add').mockImplementation(function (
			this: IDBObjectStore
		) {
			throw new DOMException('disk went away', 'UnknownError');
		});
		setEntry(doc, 'x');
		await expect(p.flush()).rejects.toMatchObject({ name: 'StorageWriteError' });
		spy.mockImplementation(function (this: IDBObjectStore, ...args) {
			return original.apply(this, args);
		});
		await p.flush();
		expect(entries((await loadFresh(name)).doc)).toEqual({ x: 'x' });
	});

	it('retries by itself after a failure and reports recovery', async () => {
		const name = freshName();
		const doc = new Y.Doc();
		const p = persist(name, doc, { retryDelayMs: 20 });
		await p.whenLoaded;
		const quota = failAddsWithQuota('abort');
		const failed = nextEvent(p, 'write-failed');
		setEntry(doc, 'x'); // flushed automatically, not by us
		await failed;
		quota.stop();
		await nextEvent(p, 'write-recovered');
		expect(p.pendingCount).toBe(0);
		expect(entries((await loadFresh(name)).doc)).toEqual({ x: 'x' });
	});
});

describe('DocPersistence: read-only followers', () => {
	it('loads but never writes nor compacts', async () => {
		const name = freshName();
		const writerDoc = new Y.Doc();
		const writer = persist(name, writerDoc);
		for (let i = 0; i < 10; i++) {
			setEntry(writerDoc, `k${i}`);
			await writer.flush();
		}
		await writer.destroy();
		const before = await DocPersistence.storedStats(name);

		const writes = countWriteTransactions();
		const doc = new Y.Doc();
		setEntry(doc, 'in-memory-before-load');
		const follower = persist(name, doc, { readOnly: true, compactThreshold: 2 });
		await follower.whenLoaded;
		expect(Object.keys(entries(doc))).toHaveLength(11);
		setEntry(doc, 'in-memory');
		await follower.flush();
		await follower.compact();
		await new Promise((r) => setTimeout(r, 300)); // past any idle compaction
		expect(follower.pendingCount).toBe(0);
		expect(writes.count).toBe(0);
		expect(await DocPersistence.storedStats(name)).toEqual(before);
	});

	it('becomeWriter() saves the in-memory state, catches up with disk, then writes', async () => {
		const name = freshName();
		const leaderDoc = new Y.Doc();
		const leader = persist(name, leaderDoc);
		setEntry(leaderDoc, 'from-leader');
		await leader.flush();

		const doc = new Y.Doc();
		const follower = persist(name, doc, { readOnly: true });
		await follower.whenLoaded;
		// Learned over the tab channel, never saved by the follower.
		const remote = new Y.Doc();
		setEntry(remote, 'from-broadcast');
		Y.applyUpdate(doc, Y.encodeStateAsUpdate(remote), 'broadcast');
		// The leader saved something the follower missed, then went away.
		setEntry(leaderDoc, 'missed');
		await leader.flush();
		await leader.destroy();

		const countBefore = (await DocPersistence.storedStats(name)).count;
		await follower.becomeWriter();
		expect(follower.readOnly).toBe(false);
		expect((await DocPersistence.storedStats(name)).count).toBe(countBefore + 1);
		expect(entries(doc)).toEqual({
			'from-leader': 'from-leader',
			'from-broadcast': 'from-broadcast',
			missed: 'missed'
		});

		setEntry(doc, 'after');
		await follower.flush();
		const { doc: reloaded } = await loadFresh(name);
		expect(entries(reloaded)).toEqual(entries(doc));
	});
});

describe('DocPersistence: followers, continued', () => {
	it('becomeWriter() keeps the state queued when its write fails, and saves it later', async () => {
		const name = freshName();
		const doc = new Y.Doc();
		const follower = persist(name, doc, { readOnly: true, retryDelayMs: 60_000 });
		await follower.whenLoaded;
		setEntry(doc, 'learned');
		const original = IDBObjectStore.prototype.add;
		const spy = vi.spyOn(IDBObjectStore.prototype, 'add').mockImplementation(function () {
			throw new DOMException('full', 'QuotaExceededError');
		});
		await expect(follower.becomeWriter()).rejects.toMatchObject({ name: 'StorageQuotaError' });
		expect(follower.readOnly).toBe(false);
		expect(follower.pendingCount).toBe(1);
		spy.mockImplementation(function (this: IDBObjectStore, ...args) {
			return original.apply(this, args);
		});
		await follower.flush();
		expect(entries((await loadFresh(name)).doc)).toEqual({ learned: 'learned' });
	});

	it('reload() lets a follower catch up with what the writer stored', async () => {
		const name = freshName();
		const writerDoc = new Y.Doc();
		const writer = persist(name, writerDoc);
		await writer.whenLoaded;
		const doc = new Y.Doc();
		const follower = persist(name, doc, { readOnly: true });
		await follower.whenLoaded;
		setEntry(writerDoc, 'new');
		await writer.flush();
		expect(entries(doc)).toEqual({});
		await follower.reload();
		expect(entries(doc)).toEqual({ new: 'new' });
	});
});

describe('DocPersistence: lifecycle and compatibility', () => {
	it('saves and closes when the doc is destroyed', async () => {
		const name = freshName();
		const doc = new Y.Doc();
		const p = persist(name, doc);
		await p.whenLoaded;
		setEntry(doc, 'a');
		doc.destroy();
		await p.destroy(); // the same promise the doc's destroy started
		expect(entries((await loadFresh(name)).doc)).toEqual({ a: 'a' });
	});

	it('destroy() saves what is queued', async () => {
		const name = freshName();
		const doc = new Y.Doc();
		const p = persist(name, doc);
		setEntry(doc, 'a');
		await p.destroy();
		setEntry(doc, 'after-destroy');
		expect(entries((await loadFresh(name)).doc)).toEqual({ a: 'a' });
	});

	it('clearData() deletes the database', async () => {
		const name = freshName();
		const doc = new Y.Doc();
		const p = persist(name, doc);
		setEntry(doc, 'a');
		await p.flush();
		await p.clearData();
		const names = (await indexedDB.databases()).map((d) => d.name);
		expect(names).not.toContain(name);
		expect(await DocPersistence.storedStats(name)).toEqual({ count: 0, bytes: 0 });
		// storedStats did not create it either.
		expect((await indexedDB.databases()).map((d) => d.name)).not.toContain(name);
	});

	it('reads what y-indexeddb stored, and y-indexeddb reads what it stored', async () => {
		const a = freshName();
		const theirs = new Y.Doc();
		const yidb = new IndexeddbPersistence(a, theirs);
		await yidb.whenSynced;
		setEntry(theirs, 'by-y-indexeddb');
		// y-indexeddb has no commit signal: wait until its record is visible.
		for (let i = 0; i < 100 && (await rawUpdates(a)).length < 2; i++) {
			await new Promise((r) => setTimeout(r, 10));
		}
		await yidb.destroy();
		expect(entries((await loadFresh(a)).doc)).toEqual({ 'by-y-indexeddb': 'by-y-indexeddb' });

		const b = freshName();
		const ours = new Y.Doc();
		const p = persist(b, ours);
		setEntry(ours, 'by-kith');
		await p.destroy();
		const reader = new Y.Doc();
		const yidb2 = new IndexeddbPersistence(b, reader);
		await yidb2.whenSynced;
		expect(entries(reader)).toEqual({ 'by-kith': 'by-kith' });
		await yidb2.destroy();
	});
});
