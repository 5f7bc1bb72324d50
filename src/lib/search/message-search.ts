/**
 * Full-text search over the decrypted messages of every conversation, with
 * FlexSearch (forward tokenizer: words being typed match as prefixes; the
 * LatinBalance encoder: small misspellings and accents match too).
 *
 * The index lives in memory only, and is never written anywhere: it is made
 * from the conversations' reducers (already decrypted in memory while the
 * profile is unlocked) the first time the user searches, and brought up to
 * date incrementally before each search. Locking or reloading drops it;
 * nothing of it reaches IndexedDB, so no plaintext is at rest (see
 * docs/decisions.md, "Search").
 *
 * Incremental: each conversation is a `SearchSource` whose message list only
 * ever grows or changes in place (the reducer's live list, with a version
 * and `changedSince`). A search re-reads only the messages after the first
 * index that changed since the last search, and re-indexes only those whose
 * text differs from what is indexed: an edit replaces the document, a delete
 * (empty text) removes it.
 */
import { Charset, Index } from 'flexsearch';

/** What search needs of one message. */
export interface SearchableMessage {
	readonly id: string;
	/** User id of the author. */
	readonly author: string;
	readonly text: string;
	readonly deleted: boolean;
	/** ms since epoch (the message's HLC wall time). */
	readonly time: number;
}

/** A conversation as search reads it: a list that changes in place, with a version. */
export interface SearchSource {
	readonly id: string;
	readonly version: number;
	readonly length: number;
	/** The message at `index` (0 ≤ index < length). */
	at(index: number): SearchableMessage;
	/** The first index whose message may differ from the list at `version` (0: all may). */
	changedSince(version: number): number;
}

export interface MessageHit {
	conversation: string;
	message: string;
	author: string;
	text: string;
	time: number;
	/** The query terms that matched, as they appear in the text (for highlighting). */
	terms: string[];
}

interface Doc {
	key: string;
	conversation: string;
	message: string;
	author: string;
	text: string;
	time: number;
}

interface Indexed {
	/** The source's version that messages [0, next) are indexed as. */
	version: number;
	next: number;
	/** key → indexed text. */
	texts: Map<string, string>;
}

/** The longest query searched; longer input is cut, not refused. */
export const MAX_QUERY_CHARS = 200;

export class MessageSearch {
	// fastupdate: edits and deletes replace one entry in O(words), not O(index).
	readonly #index = new Index({
		tokenize: 'forward',
		encoder: Charset.LatinBalance,
		fastupdate: true
	});
	readonly #indexed = new Map<string, Indexed>();
	/** The indexed documents by FlexSearch id, and the ids by key. */
	readonly #docs = new Map<number, Doc>();
	readonly #ids = new Map<string, number>();
	#nextId = 1;

	/** Messages in the index. */
	get size(): number {
		return this.#docs.size;
	}

	/**
	 * Brings the index up to date with `source`, or, given a `deadline`
	 * (`performance.now()` time), as far as it gets by then (at least one
	 * message further). Returns whether it is up to date; call again to go on.
	 */
	update(source: SearchSource, deadline = Infinity): boolean {
		let state = this.#indexed.get(source.id);
		if (!state) {
			state = { version: source.version, next: 0, texts: new Map() };
			this.#indexed.set(source.id, state);
		} else if (state.version === source.version && state.next >= source.length) {
			return true;
		}
		const first =
			state.version === source.version
				? state.next
				: Math.min(state.next, source.changedSince(state.version));
		let i = first;
		for (; i < source.length; i++) {
			if (i > first && (i & 63) === 0 && performance.now() > deadline) break;
			const message = source.at(i);
			const key = `${source.id} ${message.author} ${message.id}`;
			const text = message.deleted ? '' : message.text;
			const before = state.texts.get(key);
			if (before === text) continue;
			if (before !== undefined) {
				this.#discard(key);
				state.texts.delete(key);
			}
			if (text.trim() === '') continue;
			const id = this.#nextId++;
			this.#index.add(id, text);
			this.#docs.set(id, {
				key,
				conversation: source.id,
				message: message.id,
				author: message.author,
				text,
				time: message.time
			});
			this.#ids.set(key, id);
			state.texts.set(key, text);
		}
		// Messages before `first` did not change since they were indexed, and
		// [first, i) are indexed now: [0, i) is as the source has it.
		state.version = source.version;
		state.next = i;
		return i >= source.length;
	}

	/** Messages indexed so far over all conversations, and how many there are, for progress. */
	progress(sources: Iterable<SearchSource>): { indexed: number; total: number } {
		let indexed = 0;
		let total = 0;
		for (const source of sources) {
			total += source.length;
			indexed += Math.min(this.#indexed.get(source.id)?.next ?? 0, source.length);
		}
		return { indexed, total };
	}

	#discard(key: string): void {
		const id = this.#ids.get(key);
		if (id === undefined) return;
		this.#index.remove(id);
		this.#docs.delete(id);
		this.#ids.delete(key);
	}

	/** Forgets a conversation (left, or gone from the vault). */
	remove(conversation: string): void {
		const state = this.#indexed.get(conversation);
		if (!state) return;
		for (const key of state.texts.keys()) this.#discard(key);
		this.#indexed.delete(conversation);
	}

	/** Conversations the index holds. */
	conversations(): string[] {
		return [...this.#indexed.keys()];
	}

	/**
	 * Messages matching every word of `query` (words as prefixes, spelling
	 * loosely), best first, at most `limit`.
	 */
	search(query: string, limit = 50): MessageHit[] {
		const q = query.slice(0, MAX_QUERY_CHARS).trim();
		if (q === '') return [];
		const words = q.toLowerCase().split(/\s+/);
		const hits: MessageHit[] = [];
		// FlexSearch 0.8 answers undefined, not [], for a term whose every entry was removed.
		const ids = (this.#index.search(q, { limit, suggest: false }) ?? []) as number[];
		for (const id of ids) {
			const doc = this.#docs.get(id);
			if (!doc) continue;
			hits.push({
				conversation: doc.conversation,
				message: doc.message,
				author: doc.author,
				text: doc.text,
				time: doc.time,
				terms: matchedWords(doc.text, words)
			});
		}
		return hits;
	}
}

/** The words of `text` that start with one of the query's words (what to highlight). */
function matchedWords(text: string, words: readonly string[]): string[] {
	const found = new Set<string>();
	for (const word of text.split(/[^\p{L}\p{N}]+/u)) {
		const lower = word.toLowerCase();
		if (lower && words.some((w) => lower.startsWith(w))) found.add(word);
	}
	return [...found];
}

/** One piece of a snippet: text, and whether it is a match. */
export interface SnippetPart {
	text: string;
	match: boolean;
}

/**
 * Up to `width` characters of `text` around the first match of `terms`, split
 * into parts so that matches can be shown highlighted (no HTML is built).
 */
export function snippet(text: string, terms: readonly string[], width = 120): SnippetPart[] {
	const flat = text.replace(/\s+/g, ' ');
	const lower = flat.toLowerCase();
	const words = [...new Set(terms.map((t) => t.toLowerCase()).filter((t) => t.length > 0))];
	let start = 0;
	if (flat.length > width) {
		const first = Math.min(
			...words.map((w) => lower.indexOf(w)).filter((i) => i >= 0),
			flat.length
		);
		start = first === flat.length ? 0 : Math.max(0, Math.min(first - 30, flat.length - width));
	}
	const end = Math.min(flat.length, start + width);
	const parts: SnippetPart[] = [];
	if (start > 0) parts.push({ text: '…', match: false });
	let i = start;
	while (i < end) {
		let next = end;
		let hit = '';
		for (const w of words) {
			const at = lower.indexOf(w, i);
			if (at >= 0 && at < next) {
				next = at;
				hit = w;
			}
		}
		if (next > i) parts.push({ text: flat.slice(i, next), match: false });
		if (next >= end) break;
		const stop = Math.min(end, next + hit.length);
		parts.push({ text: flat.slice(next, stop), match: true });
		i = stop;
	}
	if (end < flat.length) parts.push({ text: '…', match: false });
	return parts;
}
