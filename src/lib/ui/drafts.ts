/**
 * Unsent composer text, per conversation, for as long as the tab lives.
 *
 * Drafts are plaintext, so they stay in memory: nothing a user has not sent
 * is written to disk. The one exception is a reload the app itself causes
 * (an update taking over): `stashDrafts` copies them into the tab's
 * sessionStorage right before, and `restoreDrafts` takes them back and
 * deletes the copy as the app starts again. A draft is on disk, at most,
 * for the moment of that reload.
 */
import { z } from 'zod';

/** Where the stash lives in sessionStorage (this tab only). */
export const DRAFTS_STASH_KEY = 'kith:drafts';

const Stash = z.record(z.string().min(1).max(200), z.string().max(1_000_000));

// Not reactive on purpose: a draft is read when a conversation opens and
// written as the user types; nothing renders from the map itself.
const drafts = new Map<string, string>();

export function getDraft(key: string): string {
	return drafts.get(key) ?? '';
}

/** Sets (or, with empty text, removes) the draft of `key`. */
export function setDraft(key: string, text: string): void {
	if (text) drafts.set(key, text);
	else drafts.delete(key);
}

/** The storage calls used; `sessionStorage` in the app. */
export type DraftStorage = Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;

/**
 * Copies every draft into `storage`, before a reload. Returns how many.
 * Throws if storage refuses (full, or disabled): the caller then should
 * not reload without telling the user.
 */
export function stashDrafts(storage: DraftStorage): number {
	if (drafts.size === 0) {
		storage.removeItem(DRAFTS_STASH_KEY);
		return 0;
	}
	storage.setItem(DRAFTS_STASH_KEY, JSON.stringify(Object.fromEntries(drafts)));
	return drafts.size;
}

/**
 * Takes back drafts stashed before a reload and deletes the stash. A draft
 * typed since (there is none at start-up) wins over the stashed one. A stash
 * that does not parse is dropped: it came from this app, so that is a bug,
 * not an attack, but it must not stop the app from starting.
 */
export function restoreDrafts(storage: DraftStorage): number {
	const raw = storage.getItem(DRAFTS_STASH_KEY);
	if (raw === null) return 0;
	storage.removeItem(DRAFTS_STASH_KEY);
	let parsed: z.infer<typeof Stash>;
	try {
		parsed = Stash.parse(JSON.parse(raw));
	} catch (error) {
		console.warn('kith:drafts dropped an unreadable stash', error);
		return 0;
	}
	let restored = 0;
	for (const [key, text] of Object.entries(parsed)) {
		if (text && !drafts.has(key)) {
			drafts.set(key, text);
			restored++;
		}
	}
	return restored;
}

/** Forgets every draft (tests). */
export function clearDrafts(): void {
	drafts.clear();
}
