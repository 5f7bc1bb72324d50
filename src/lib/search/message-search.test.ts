import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
	MessageSearch,
	snippet,
	type SearchableMessage,
	type SearchSource
} from './message-search';

/** A message list that changes in place, versioned like the reducer's live list. */
class ListSource implements SearchSource {
	readonly messages: SearchableMessage[] = [];
	version = 0;
	#changes: Array<{ version: number; from: number }> = [];

	constructor(readonly id: string) {}

	get length(): number {
		return this.messages.length;
	}

	at(index: number): SearchableMessage {
		return this.messages[index]!;
	}

	changedSince(version: number): number {
		let from = Infinity;
		for (const change of this.#changes)
			if (change.version > version) from = Math.min(from, change.from);
		return from === Infinity ? this.messages.length : from;
	}

	#changed(from: number): void {
		this.version++;
		this.#changes.push({ version: this.version, from });
	}

	append(id: string, author: string, text: string, time = Date.now()): void {
		this.messages.push({ id, author, text, time, deleted: false });
		this.#changed(this.messages.length - 1);
	}

	/** Inserts before the end (a late message ordered among the older ones). */
	insert(at: number, message: SearchableMessage): void {
		this.messages.splice(at, 0, message);
		this.#changed(at);
	}

	edit(index: number, text: string): void {
		this.messages[index] = { ...this.messages[index]!, text };
		this.#changed(index);
	}

	remove(index: number): void {
		this.messages[index] = { ...this.messages[index]!, text: '', deleted: true };
		this.#changed(index);
	}
}

const ids = (hits: { message: string }[]) => hits.map((h) => h.message).sort();

describe('message search', () => {
	it('finds a message by a word in it, a prefix of a word, and a word with a typo', () => {
		const a = new ListSource('conv-a');
		a.append('m1', 'ada', 'Lunch at the harbour tomorrow?');
		a.append('m2', 'bob', 'Sure, bring the umbrella');
		const b = new ListSource('conv-b');
		b.append('m3', 'cy', 'The harbour is closed on Sundays');
		const search = new MessageSearch();
		search.update(a);
		search.update(b);
		expect(ids(search.search('harbour'))).toEqual(['m1', 'm3']);
		expect(ids(search.search('umbr'))).toEqual(['m2']);
		expect(ids(search.search('harbor'))).toEqual(['m1', 'm3']);
		expect(ids(search.search('harbour sundays'))).toEqual(['m3']);
		expect(search.search('harbour')[0]).toMatchObject({ conversation: expect.any(String) });
		expect(search.search('   ')).toEqual([]);
	});

	it('follows edits, deletes and late messages incrementally', () => {
		const a = new ListSource('conv');
		const search = new MessageSearch();
		a.append('m1', 'ada', 'meet at noon');
		a.append('m2', 'ada', 'see you');
		search.update(a);
		a.edit(0, 'meet at three');
		a.remove(1);
		a.insert(0, { id: 'm0', author: 'bob', text: 'noon is fine', time: 1, deleted: false });
		search.update(a);
		expect(ids(search.search('noon'))).toEqual(['m0']);
		expect(ids(search.search('three'))).toEqual(['m1']);
		expect(search.search('see')).toEqual([]);
		expect(search.size).toBe(2);
		search.remove('conv');
		expect(search.search('three')).toEqual([]);
		expect(search.size).toBe(0);
	});

	it('after any sequence of changes, searches like an index built from scratch', () => {
		const words = ['apple', 'banana', 'cherry', 'delta', 'echo', 'fox'];
		const text = fc
			.array(fc.constantFrom(...words), { minLength: 1, maxLength: 4 })
			.map((w) => w.join(' '));
		const change = fc.oneof(
			fc.record({ kind: fc.constant('append' as const), text }),
			fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text }),
			fc.record({ kind: fc.constant('edit' as const), at: fc.nat(), text }),
			fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
			fc.record({ kind: fc.constant('search' as const) }),
			fc.record({ kind: fc.constant('slice' as const) })
		);
		fc.assert(
			fc.property(fc.array(change, { maxLength: 40 }), fc.constantFrom(...words), (changes, q) => {
				const source = new ListSource('c');
				const incremental = new MessageSearch();
				let n = 0;
				for (const c of changes) {
					const len = source.length;
					if (c.kind === 'append') source.append(`m${n++}`, 'u', c.text);
					else if (c.kind === 'insert')
						source.insert(c.at % (len + 1), {
							id: `m${n++}`,
							author: 'u',
							text: c.text,
							time: 0,
							deleted: false
						});
					else if (c.kind === 'edit' && len > 0) source.edit(c.at % len, c.text);
					else if (c.kind === 'delete' && len > 0) source.remove(c.at % len);
					else if (c.kind === 'search') incremental.update(source);
					// A deadline already past: at most one slice of messages, then it stops.
					else if (c.kind === 'slice') incremental.update(source, -Infinity);
				}
				while (!incremental.update(source, -Infinity));
				const fresh = new MessageSearch();
				fresh.update(source);
				expect(ids(incremental.search(q))).toEqual(ids(fresh.search(q)));
				const expected = source.messages
					.filter((m) => !m.deleted && m.text.split(' ').includes(q))
					.map((m) => m.id)
					.sort();
				expect(ids(fresh.search(q))).toEqual(expected);
			}),
			{ numRuns: 300 }
		);
	});
});

describe('indexing in slices', () => {
	it('stops at the deadline, reports progress, and finishes on later calls', () => {
		const source = new ListSource('big');
		for (let i = 0; i < 1000; i++)
			source.append(`m${i}`, 'u', `message number ${i} about harbours`);
		const search = new MessageSearch();
		expect(search.update(source, -Infinity)).toBe(false);
		const part = search.progress([source]);
		expect(part.total).toBe(1000);
		expect(part.indexed).toBeGreaterThan(0);
		expect(part.indexed).toBeLessThan(1000);
		let calls = 1;
		while (!search.update(source, -Infinity)) calls++;
		expect(calls).toBeGreaterThan(1);
		expect(search.progress([source])).toEqual({ indexed: 1000, total: 1000 });
		expect(search.size).toBe(1000);
	});
});

describe('snippet', () => {
	it('marks the matches and keeps the text whole when it is short', () => {
		expect(snippet('Lunch at the Harbour', ['harbour'])).toEqual([
			{ text: 'Lunch at the ', match: false },
			{ text: 'Harbour', match: true }
		]);
	});

	it('cuts a long text around the first match', () => {
		const long = `${'a '.repeat(100)}needle${' b'.repeat(100)}`;
		const parts = snippet(long, ['needle'], 60);
		expect(parts[0]).toEqual({ text: '…', match: false });
		expect(parts.find((p) => p.match)?.text).toBe('needle');
		expect(parts.at(-1)).toEqual({ text: '…', match: false });
		expect(parts.map((p) => p.text).join('').length).toBeLessThanOrEqual(62);
	});
});
