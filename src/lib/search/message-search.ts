/**
 * Full-text search over the decrypted messages of every conversation, with
 * MiniSearch.
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
import MiniSearch from 'minisearch';

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
	version: number;
	/** key → indexed text. */
	texts: Map<string, string>;
}

/** The longest query searched; longer input is cut, not refused. */
export const MAX_QUERY_CHARS = 200;

export class MessageSearch {
	readonly #mini = new MiniSearch<Doc>({
		idField: 'key',
		fields: ['text'],
		searchOptions: {
			combineWith: 'AND',
			// Words being typed match as prefixes; longer words forgive a typo.
			prefix: true,
			fuzzy: (term) => (term.length >= 5 ? 0.2 : false)
		}
	});
	readonly #indexed = new Map<string, Indexed>();
	/** The indexed documents by key (kept here, not as MiniSearch stored fields: faster results). */
	readonly #docs = new Map<string, Doc>();

	/** Messages in the index. */
	get size(): number {
		return this.#mini.documentCount;
	}

	/** Brings the index up to date with `source`. */
	update(source: SearchSource): void {
		let state = this.#indexed.get(source.id);
		const first = state ? source.changedSince(state.version) : 0;
		if (!state) {
			state = { version: source.version, texts: new Map() };
			this.#indexed.set(source.id, state);
		} else if (state.version === source.version) {
			return;
		}
		for (let i = first; i < source.length; i++) {
			const message = source.at(i);
			const key = `${source.id} ${message.author} ${message.id}`;
			const text = message.deleted ? '' : message.text;
			const before = state.texts.get(key);
			if (before === text) continue;
			if (before !== undefined) {
				this.#mini.discard(key);
				this.#docs.delete(key);
				state.texts.delete(key);
			}
			if (text.trim() === '') continue;
			const doc: Doc = {
				key,
				conversation: source.id,
				message: message.id,
				author: message.author,
				text,
				time: message.time
			};
			this.#mini.add(doc);
			this.#docs.set(key, doc);
			state.texts.set(key, text);
		}
		state.version = source.version;
	}

	/** Forgets a conversation (left, or gone from the vault). */
	remove(conversation: string): void {
		const state = this.#indexed.get(conversation);
		if (!state) return;
		for (const key of state.texts.keys()) {
			this.#mini.discard(key);
			this.#docs.delete(key);
		}
		this.#indexed.delete(conversation);
	}

	/** Conversations the index holds. */
	conversations(): string[] {
		return [...this.#indexed.keys()];
	}

	/**
	 * Messages matching every word of `query` (prefixes count; words of five
	 * letters or more forgive one typo), best first, then newest first.
	 */
	search(query: string, limit = 50): MessageHit[] {
		const q = query.slice(0, MAX_QUERY_CHARS).trim();
		if (q === '') return [];
		const scored: Array<{ doc: Doc; score: number; terms: string[] }> = [];
		for (const r of this.#mini.search(q)) {
			const doc = this.#docs.get(r.id as string);
			if (doc) scored.push({ doc, score: r.score, terms: r.terms });
		}
		scored.sort((a, b) => b.score - a.score || b.doc.time - a.doc.time);
		return scored.slice(0, limit).map(({ doc, terms }) => ({
			conversation: doc.conversation,
			message: doc.message,
			author: doc.author,
			text: doc.text,
			time: doc.time,
			terms
		}));
	}
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
