import { afterEach, describe, expect, it, vi } from 'vitest';
import {
	clearDrafts,
	DRAFTS_STASH_KEY,
	getDraft,
	restoreDrafts,
	setDraft,
	stashDrafts,
	type DraftStorage
} from './drafts';

/** sessionStorage's behaviour, in memory. */
function memoryStorage(): DraftStorage & { items: Map<string, string> } {
	const items = new Map<string, string>();
	return {
		items,
		getItem: (key) => items.get(key) ?? null,
		setItem: (key, value) => void items.set(key, value),
		removeItem: (key) => void items.delete(key)
	};
}

afterEach(() => {
	clearDrafts();
	vi.restoreAllMocks();
});

describe('drafts', () => {
	it('keeps one draft per key and forgets an emptied one', () => {
		setDraft('a', 'hello');
		setDraft('b', 'other');
		setDraft('b', '');
		expect(getDraft('a')).toBe('hello');
		expect(getDraft('b')).toBe('');
	});

	it('survive a stash, a fresh start and a restore, and the stash is then gone', () => {
		const storage = memoryStorage();
		setDraft('conv-1', 'half a thought');
		setDraft('conv-2', 'two\nlines');
		expect(stashDrafts(storage)).toBe(2);
		expect(storage.items.has(DRAFTS_STASH_KEY)).toBe(true);

		clearDrafts(); // the reload
		expect(restoreDrafts(storage)).toBe(2);
		expect(getDraft('conv-1')).toBe('half a thought');
		expect(getDraft('conv-2')).toBe('two\nlines');
		expect(storage.items.size).toBe(0);
		expect(restoreDrafts(storage)).toBe(0);
	});

	it('stashing nothing clears an old stash instead of writing an empty one', () => {
		const storage = memoryStorage();
		storage.setItem(DRAFTS_STASH_KEY, '{"old":"text"}');
		expect(stashDrafts(storage)).toBe(0);
		expect(storage.items.size).toBe(0);
	});

	it('a draft typed after start-up wins over a stashed one', () => {
		const storage = memoryStorage();
		storage.setItem(DRAFTS_STASH_KEY, JSON.stringify({ c: 'stashed', d: 'kept' }));
		setDraft('c', 'newer');
		expect(restoreDrafts(storage)).toBe(1);
		expect(getDraft('c')).toBe('newer');
		expect(getDraft('d')).toBe('kept');
	});

	it.each(['not json', '[1,2]', '{"a":5}', 'null'])(
		'an unreadable stash (%s) is dropped, not thrown',
		(raw) => {
			vi.spyOn(console, 'warn').mockImplementation(() => {});
			const storage = memoryStorage();
			storage.setItem(DRAFTS_STASH_KEY, raw);
			expect(restoreDrafts(storage)).toBe(0);
			expect(storage.items.size).toBe(0);
			expect(console.warn).toHaveBeenCalledOnce();
		}
	);

	it('a storage that refuses the stash makes stashDrafts throw (the caller must not reload)', () => {
		setDraft('a', 'text');
		const full: DraftStorage = {
			getItem: () => null,
			removeItem: () => {},
			setItem: () => {
				throw new DOMException('full', 'QuotaExceededError');
			}
		};
		expect(() => stashDrafts(full)).toThrow('full');
	});
});
