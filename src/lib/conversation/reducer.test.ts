import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareHlc, type Hlc } from './hlc';
import { newOpId, Operation, type OpId } from './operations';
import {
	canDelete,
	canonicalJson,
	compareMessages,
	ConversationReducer,
	InvalidSnapshotError,
	newestFromOthers,
	reduce,
	unreadCount,
	type ConversationState,
	type Message,
	type Position,
	type ReducerItem
} from './reducer';

// ---------------------------------------------------------------------------
// Helpers: readable, valid ops. Ids made of digits sort like their numbers.

function id(n: number): OpId {
	return (String(n).padStart(21, '0') + 'A') as OpId;
}

type Hlcish = number | [number, number];
const hlc = (h: Hlcish): [number, number] => (typeof h === 'number' ? [h, 0] : h);

function op(fields: Record<string, unknown>): Operation {
	return Operation.parse({ v: 1, ...fields });
}

const send = (n: number, at: Hlcish, text = `m${n}`, replyTo?: number) =>
	op({
		id: id(n),
		hlc: hlc(at),
		type: 'send',
		text,
		...(replyTo === undefined ? {} : { replyTo: id(replyTo) })
	});
const edit = (n: number, at: Hlcish, target: number, text: string) =>
	op({ id: id(n), hlc: hlc(at), type: 'edit', target: id(target), text });
const del = (n: number, at: Hlcish, target: number) =>
	op({ id: id(n), hlc: hlc(at), type: 'delete', target: id(target) });
const react = (n: number, at: Hlcish, target: number, emoji: string, on = true) =>
	op({ id: id(n), hlc: hlc(at), type: 'react', target: id(target), emoji, on });
const receipt = (n: number, at: Hlcish, kind: 'delivered' | 'read', upTo: Hlcish, upToId: number) =>
	op({ id: id(n), hlc: hlc(at), type: 'receipt', kind, upTo: hlc(upTo), upToId: id(upToId) });

function item(author: string, o: Operation, envelopeId = `env-${o.id}`, device = `${author}#1`) {
	return { op: o, author, device, envelopeId } satisfies ReducerItem;
}

const texts = (state: ConversationState) => state.messages.map((m) => m.text);
const pos = (at: Hlcish, n: number): Position => {
	const [wall, counter] = hlc(at);
	return { hlc: { wall, counter }, id: id(n) };
};

// ---------------------------------------------------------------------------

describe('newestFromOthers', () => {
	it('is the last message in order not written by `me`, whatever order they came in', () => {
		const state = reduce([
			item('bob', send(3, 30)),
			item('ada', send(1, 10)),
			item('ada', send(4, 40)),
			item('bob', send(2, 20))
		]);
		expect(newestFromOthers(state.messages, 'ada')?.id).toBe(id(3));
		expect(newestFromOthers(state.messages, 'bob')?.id).toBe(id(4));
		expect(newestFromOthers(state.messages, 'carol')?.id).toBe(id(4));
		expect(newestFromOthers(reduce([item('ada', send(1, 10))]).messages, 'ada')).toBeNull();
	});
});

describe('reduce: ordering and identity', () => {
	it('orders messages by (hlc, id, author) whatever the input order', () => {
		const items = [
			item('bob', send(5, 20)),
			item('alice', send(9, [10, 1])),
			item('alice', send(3, [10, 1])), // same hlc: id decides
			item('carol', send(3, [10, 1])), // same hlc and id: author decides
			item('alice', send(1, 30))
		];
		const state = reduce(items);
		expect(state.messages.map((m) => [m.author, m.id])).toEqual([
			['alice', id(3)],
			['carol', id(3)],
			['alice', id(9)],
			['bob', id(5)],
			['alice', id(1)]
		]);
		expect(reduce([...items].reverse())).toStrictEqual(state);
		expect(state.lastActivity).toEqual({ wall: 30, counter: 0 });
	});

	it('builds the message from the send and its envelope', () => {
		const state = reduce([item('alice', send(1, 10, 'hi', 7), 'E1', 'alice#phone')]);
		expect(state.messages).toStrictEqual([
			{
				id: id(1),
				author: 'alice',
				device: 'alice#phone',
				hlc: { wall: 10, counter: 0 },
				text: 'hi',
				replyTo: id(7),
				edited: false,
				deleted: false,
				reactions: {},
				envelopeId: 'E1'
			}
		]);
	});

	it('counts an op delivered twice once, from the smallest envelope id', () => {
		const twice = [item('alice', send(1, 10), 'e2'), item('alice', send(1, 10), 'e1')];
		const state = reduce(twice);
		expect(state.messages).toHaveLength(1);
		expect(state.messages[0]?.envelopeId).toBe('e1');
		expect(reduce([...twice].reverse())).toStrictEqual(state);

		const reducer = new ConversationReducer();
		reducer.add([twice[0] as ReducerItem]);
		expect(reducer.add([twice[0] as ReducerItem])).toEqual({ changed: false });
		expect(reducer.add([twice[1] as ReducerItem])).toEqual({ changed: true });
		expect(reducer.size).toBe(1);
		expect(reducer.state).toStrictEqual(state);
	});

	it('keeps same-id ops of different authors apart', () => {
		const state = reduce([item('alice', send(1, 10, 'a')), item('bob', send(1, 10, 'b'))]);
		expect(texts(state)).toEqual(['a', 'b']);
	});

	it('picks one deterministic winner when an author reuses an id for different content', () => {
		const items = [
			item('mallory', send(1, 10, 'first'), 'e1'),
			item('mallory', send(1, 99, 'second'), 'e1'),
			item('mallory', react(1, 5, 1, '👍'), 'e0')
		];
		const expected = reduce(items);
		expect(expected.messages).toHaveLength(0); // the react in e0 wins identity (author, id 1)
		fc.assert(
			fc.property(fc.shuffledSubarray(items, { minLength: 3, maxLength: 3 }), (order) => {
				expect(reduce(order)).toStrictEqual(expected);
				const r = new ConversationReducer();
				for (const it of order) r.add([it]);
				expect(r.state).toStrictEqual(expected);
			})
		);
		expect(texts(reduce(items.slice(0, 2)))).toEqual([
			canonicalJson(items[0]?.op) < canonicalJson(items[1]?.op) ? 'first' : 'second'
		]);
	});

	it('holds member and epoch ops without changing the view', () => {
		const r = new ConversationReducer();
		r.add([item('alice', send(1, 10))]);
		const before = r.state;
		const add = op({
			id: id(2),
			hlc: [11, 0],
			type: 'member.add',
			user: 'u'.repeat(43),
			devices: [],
			role: 'member'
		});
		expect(r.add([item('alice', add)])).toEqual({ changed: false });
		expect(r.size).toBe(2);
		expect(r.state).toBe(before);
	});
});

describe('reduce: edits and deletes', () => {
	it('applies the latest edit by (hlc, id)', () => {
		const state = reduce([
			item('alice', edit(4, 30, 1, 'third')),
			item('alice', send(1, 10, 'original')),
			item('alice', edit(2, 20, 1, 'second')),
			item('alice', edit(3, 30, 1, 'third, lower id')) // same hlc as op 4: id 4 wins
		]);
		expect(state.messages[0]).toMatchObject({ text: 'third', edited: true, hlc: { wall: 10 } });
	});

	it('ignores an edit by anyone but the author', () => {
		const state = reduce([
			item('alice', send(1, 10, 'mine')),
			item('bob', edit(2, 20, 1, 'pwned'))
		]);
		expect(state.messages[0]).toMatchObject({ text: 'mine', edited: false, author: 'alice' });
	});

	it('lets delete win over earlier, concurrent and later edits', () => {
		const base = [item('alice', send(1, 10, 'secret', 9)), item('alice', react(8, 11, 1, '👍'))];
		for (const editAt of [12, 15, 99]) {
			const state = reduce([
				...base,
				item('alice', edit(2, editAt, 1, 'edited')),
				item('alice', del(3, 15, 1))
			]);
			expect(state.messages).toStrictEqual([
				{
					id: id(1),
					author: 'alice',
					device: 'alice#1',
					hlc: { wall: 10, counter: 0 },
					text: '',
					edited: false,
					deleted: true,
					reactions: {},
					envelopeId: `env-${id(1)}`
				}
			]);
		}
	});

	it('ignores a delete by anyone but the author (canDelete hook)', () => {
		expect(canDelete('alice', 'alice')).toBe(true);
		expect(canDelete('bob', 'alice')).toBe(false);
		const state = reduce([item('alice', send(1, 10, 'stays')), item('bob', del(2, 20, 1))]);
		expect(state.messages[0]).toMatchObject({ text: 'stays', deleted: false });
	});

	it('lets each author delete their own message when two share an id', () => {
		const items = [
			item('alice', send(1, 10, 'a')),
			item('bob', send(1, 10, 'b')),
			item('alice', del(2, 20, 1)),
			item('bob', del(3, 21, 1))
		];
		expect(reduce(items).messages.map((m) => m.deleted)).toEqual([true, true]);
		expect(reduce(items.slice(0, 3)).messages.map((m) => m.deleted)).toEqual([true, false]);
		const r = new ConversationReducer();
		for (const it of [...items].reverse()) r.add([it]);
		expect(r.state).toStrictEqual(reduce(items));
	});

	it('holds edits and deletes whose target arrives later', () => {
		const r = new ConversationReducer();
		expect(r.add([item('alice', edit(2, 20, 1, 'new')), item('bob', del(4, 20, 3))])).toEqual({
			changed: false
		});
		r.add([item('alice', send(1, 10, 'old'))]);
		r.add([item('bob', send(3, 11, 'gone'))]);
		expect(r.state.messages.map((m) => [m.text, m.edited, m.deleted])).toEqual([
			['new', true, false],
			['', false, true]
		]);
	});

	it('takes mentions from the latest edit, and drops them on delete', () => {
		const bobKey = 'B'.repeat(43);
		const carolKey = 'C'.repeat(43);
		const mentioning = (n: number, at: number, text: string, users: string[]) =>
			op({ id: id(n), hlc: hlc(at), type: 'send', text, mentions: users });
		const editMentioning = (
			n: number,
			at: number,
			target: number,
			text: string,
			users?: string[]
		) =>
			op({
				id: id(n),
				hlc: hlc(at),
				type: 'edit',
				target: id(target),
				text,
				...(users ? { mentions: users } : {})
			});
		const sent = reduce([item('alice', mentioning(1, 10, '@Bob hi', [bobKey]))]);
		expect(sent.messages[0]?.mentions).toEqual([bobKey]);
		const edited = reduce([
			item('alice', mentioning(1, 10, '@Bob hi', [bobKey])),
			item('alice', editMentioning(2, 20, 1, '@Carol hi', [carolKey])),
			item('alice', editMentioning(3, 15, 1, 'older edit'))
		]);
		expect(edited.messages[0]?.mentions).toEqual([carolKey]);
		const unmentioned = reduce([
			item('alice', mentioning(1, 10, '@Bob hi', [bobKey])),
			item('alice', editMentioning(2, 20, 1, 'hi all'))
		]);
		expect(unmentioned.messages[0]?.mentions).toBeUndefined();
		const deleted = reduce([
			item('alice', mentioning(1, 10, '@Bob hi', [bobKey])),
			item('alice', del(2, 20, 1))
		]);
		expect(deleted.messages[0]).not.toHaveProperty('mentions');
	});

	it('keeps every version of an edited message for its history, and none once it is deleted', () => {
		const r = new ConversationReducer();
		r.add([
			item('alice', edit(3, 30, 1, 'third')),
			item('alice', send(1, 10, 'first')),
			item('alice', edit(2, 20, 1, 'second')),
			item('bob', edit(4, 40, 1, 'not yours'))
		]);
		expect(r.editHistory('alice', id(1)).map((v) => [v.text, v.edited, v.hlc.wall])).toEqual([
			['first', false, 10],
			['second', true, 20],
			['third', true, 30]
		]);
		expect(r.editHistory('bob', id(1))).toEqual([]);
		r.add([item('alice', del(5, 50, 1))]);
		expect(r.editHistory('alice', id(1))).toEqual([]);
	});

	it('holds items that do not count (membership) without effect, and recounts on demand', () => {
		const r = new ConversationReducer();
		r.setCounts((it) => it.author !== 'mallory');
		r.add([
			item('alice', send(1, 10, 'hello')),
			item('mallory', send(2, 11, 'spam')),
			item('mallory', react(3, 12, 1, '💩'))
		]);
		expect(texts(r.state)).toEqual(['hello']);
		expect(r.state.messages[0]?.reactions).toEqual({});
		// Kept in snapshots: membership may change what counts.
		const copy = ConversationReducer.deserialize(JSON.parse(JSON.stringify(r.serialize())));
		expect(copy.size).toBe(3);
		expect(r.setCounts(null)).toEqual({ changed: true });
		expect(texts(r.state)).toEqual(['hello', 'spam']);
		expect(r.state.messages[0]?.reactions).toEqual({ '💩': ['mallory'] });
	});

	it('refuses mentions that repeat a user or are not user ids', () => {
		const bobKey = 'B'.repeat(43);
		expect(() =>
			op({ id: id(1), hlc: hlc(1), type: 'send', text: 'x', mentions: [bobKey, bobKey] })
		).toThrow();
		expect(() =>
			op({ id: id(1), hlc: hlc(1), type: 'send', text: 'x', mentions: ['bob'] })
		).toThrow();
	});
});

describe('reduce: reactions', () => {
	it('toggles per (author, emoji): the latest react decides', () => {
		const r = new ConversationReducer();
		r.add([item('alice', send(1, 10))]);
		r.add([item('bob', react(2, 20, 1, '👍'))]);
		expect(r.state.messages[0]?.reactions).toStrictEqual({ '👍': ['bob'] });
		r.add([item('bob', react(3, 30, 1, '👍', false))]);
		expect(r.state.messages[0]?.reactions).toStrictEqual({});
		// An older "on" arriving late changes nothing.
		expect(r.add([item('bob', react(4, 25, 1, '👍', true))])).toEqual({ changed: false });
		expect(r.state.messages[0]?.reactions).toStrictEqual({});
	});

	it('lists sorted authors per emoji, and any string is a key (even __proto__)', () => {
		const state = reduce([
			item('alice', send(1, 10)),
			item('carol', react(2, 20, 1, '❤️')),
			item('alice', react(3, 21, 1, '❤️')),
			item('bob', react(4, 22, 1, '__proto__')),
			item('bob', react(5, 23, 1, '👍', false))
		]);
		const reactions = state.messages[0]?.reactions ?? {};
		expect(Object.keys(reactions).sort()).toEqual(['__proto__', '❤️']);
		expect(reactions['❤️']).toEqual(['alice', 'carol']);
		expect(Object.getOwnPropertyDescriptor(reactions, '__proto__')?.value).toEqual(['bob']);
		expect(Object.getPrototypeOf(reactions)).toBe(Object.prototype);
	});

	it('applies a reaction that arrived before its message', () => {
		const r = new ConversationReducer();
		r.add([item('bob', react(2, 20, 1, '👍'))]);
		r.add([item('alice', send(1, 10))]);
		expect(r.state.messages[0]?.reactions).toStrictEqual({ '👍': ['bob'] });
	});
});

describe('reduce: receipts', () => {
	it('only ever moves a receipt forward', () => {
		const r = new ConversationReducer();
		r.add([item('bob', receipt(1, 50, 'read', 30, 7))]);
		const at30 = r.state;
		expect(at30.receipts).toStrictEqual({ bob: { read: pos(30, 7) } });
		expect(r.add([item('bob', receipt(2, 60, 'read', 20, 9))])).toEqual({ changed: false });
		expect(r.add([item('bob', receipt(3, 61, 'read', 30, 6))])).toEqual({ changed: false });
		expect(r.state).toBe(at30);
		r.add([item('bob', receipt(4, 62, 'read', 30, 8))]); // same hlc, greater id
		expect(r.state.receipts['bob']?.read).toEqual(pos(30, 8));
		r.add([item('bob', receipt(5, 63, 'delivered', 40, 1))]);
		expect(r.state.receipts).toStrictEqual({
			bob: { read: pos(30, 8), delivered: pos(40, 1) }
		});
	});

	it('takes the maximum whatever the order', () => {
		const items = [
			item('bob', receipt(1, 50, 'read', 30, 7)),
			item('bob', receipt(2, 40, 'read', 35, 1)), // older op, further mark: it still counts
			item('carol', receipt(3, 40, 'delivered', 10, 1))
		];
		const expected = {
			bob: { read: pos(35, 1) },
			carol: { delivered: pos(10, 1) }
		};
		expect(reduce(items).receipts).toStrictEqual(expected);
		expect(reduce([...items].reverse()).receipts).toStrictEqual(expected);
	});
});

describe('unreadCount', () => {
	const state = reduce([
		item('alice', send(1, 10)),
		item('bob', send(2, 20)),
		item('me', send(3, 30)),
		item('bob', send(4, [30, 0])),
		item('carol', send(5, 40)),
		item('carol', del(6, 41, 5)),
		item('bob', send(7, 50))
	]);

	it('counts messages by others, not deleted, after the mark', () => {
		expect(unreadCount(state, 'me', null)).toBe(4); // 1, 2, 4, 7
		expect(unreadCount(state, 'me', pos(10, 1))).toBe(3);
		expect(unreadCount(state, 'me', pos(30, 3))).toBe(2); // 4 is after (30, id 3)
		expect(unreadCount(state, 'me', pos(30, 4))).toBe(1);
		expect(unreadCount(state, 'me', pos(45, 0))).toBe(1);
		expect(unreadCount(state, 'me', pos(50, 7))).toBe(0);
		expect(unreadCount(state, 'bob', pos(0, 0))).toBe(2); // 1 and 3
	});

	it('does not count the messages of hidden (blocked) authors', () => {
		expect(unreadCount(state, 'me', null, new Set(['bob']))).toBe(1); // 1
		expect(unreadCount(state, 'me', pos(10, 1), new Map([['alice', 'Alice']]))).toBe(3);
	});
});

describe('ConversationReducer: identity and stability', () => {
	it('returns the same state while nothing visible changes', () => {
		const r = new ConversationReducer();
		const empty = r.state;
		expect(r.add([])).toEqual({ changed: false });
		expect(r.state).toBe(empty);
		r.add([item('alice', send(1, 10)), item('bob', send(2, 20))]);
		const s1 = r.state;
		expect(r.state).toBe(s1);
		expect(r.add([item('alice', send(1, 10))])).toEqual({ changed: false });
		expect(r.add([item('bob', react(3, 30, 1, '👍', false))])).toEqual({ changed: false });
		expect(r.state).toBe(s1);

		r.add([item('bob', react(4, 31, 2, '👍'))]);
		const s2 = r.state;
		expect(s2).not.toBe(s1);
		expect(s2.messages).not.toBe(s1.messages);
		expect(s2.messages[0]).toBe(s1.messages[0]); // untouched message keeps its identity
		expect(s2.messages[1]).not.toBe(s1.messages[1]);
		expect(s2.receipts).toBe(s1.receipts);

		r.add([item('carol', receipt(5, 32, 'read', 20, 2))]);
		expect(r.state.messages).toBe(s2.messages); // only receipts changed
	});

	it('merges late arrivals into the middle', () => {
		const r = new ConversationReducer();
		r.add([10, 20, 30, 40].map((t) => item('alice', send(t, t))));
		r.add([item('bob', send(25, 25)), item('bob', send(5, 5)), item('bob', send(45, 45))]);
		expect(r.state.messages.map((m) => m.hlc.wall)).toEqual([5, 10, 20, 25, 30, 40, 45]);
	});
});

describe('ConversationReducer: snapshots', () => {
	it('round-trips through JSON and keeps accepting items', () => {
		const r = new ConversationReducer();
		r.add([
			item('alice', send(1, 10)),
			item('alice', edit(2, 20, 1, 'edited')),
			item('bob', react(3, 21, 9, '👍')), // held: target not here yet
			item('bob', receipt(4, 22, 'read', 10, 1)),
			item('bob', del(5, 23, 9))
		]);
		const snapshot = JSON.parse(JSON.stringify(r.serialize())) as unknown;
		const restored = ConversationReducer.deserialize(snapshot);
		expect(restored.state).toStrictEqual(r.state);
		expect(restored.size).toBe(r.size);

		const more = [item('bob', send(9, 30, 'late')), item('alice', send(1, 10))];
		r.add(more);
		restored.add(more);
		expect(restored.state).toStrictEqual(r.state);
		expect(restored.state.messages[1]).toMatchObject({ deleted: true, reactions: {} });
	});

	it.each([
		['null', null],
		['a wrong format', { format: 2, items: [] }],
		['a bad op', { format: 1, items: [['a', 'd', 'e', { v: 1, type: 'send' }]] }],
		['a newer op (never stored)', { format: 1, items: [['a', 'd', 'e', { v: 2 }]] }]
	])('refuses %s with InvalidSnapshotError', (_label, data) => {
		expect(() => ConversationReducer.deserialize(data)).toThrow(InvalidSnapshotError);
	});
});

// ---------------------------------------------------------------------------
// Properties. A naive reference model, written straight from the rules in the
// reducer's header, checks the real one; then order, duplication, chunking and
// snapshots must not matter.

function naiveReduce(items: readonly ReducerItem[]): ConversationState {
	const str = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
	const stamp = (a: Operation, b: Operation) =>
		a.hlc[0] - b.hlc[0] || a.hlc[1] - b.hlc[1] || str(a.id, b.id);
	const winners = new Map<string, ReducerItem>();
	for (const it of items) {
		const key = JSON.stringify([it.author, it.op.id]);
		const held = winners.get(key);
		const better =
			held === undefined ||
			(str(it.envelopeId, held.envelopeId) ||
				str(it.device, held.device) ||
				str(canonicalJson(it.op), canonicalJson(held.op))) < 0;
		if (better) winners.set(key, it);
	}
	const ops = [...winners.values()];
	const of = <T extends Operation['type']>(type: T) =>
		ops.filter(
			(it): it is ReducerItem & { op: Extract<Operation, { type: T }> } => it.op.type === type
		);

	const messages: Message[] = of('send').map((s) => {
		const base = {
			id: s.op.id,
			author: s.author,
			device: s.device,
			hlc: { wall: s.op.hlc[0], counter: s.op.hlc[1] }
		};
		const deleted = of('delete').some(
			(d) => d.op.target === s.op.id && canDelete(d.author, s.author)
		);
		if (deleted) {
			return {
				...base,
				text: '',
				edited: false,
				deleted: true,
				reactions: {},
				envelopeId: s.envelopeId
			};
		}
		const edits = of('edit')
			.filter((e) => e.author === s.author && e.op.target === s.op.id)
			.sort((a, b) => stamp(a.op, b.op));
		const latest = new Map<string, (typeof reacts)[number]>();
		const reacts = of('react').filter((r) => r.op.target === s.op.id);
		for (const r of reacts) {
			const key = JSON.stringify([r.author, r.op.emoji]);
			const held = latest.get(key);
			if (!held || stamp(r.op, held.op) > 0) latest.set(key, r);
		}
		const byEmoji = new Map<string, string[]>();
		for (const r of latest.values()) {
			if (r.op.on) byEmoji.set(r.op.emoji, [...(byEmoji.get(r.op.emoji) ?? []), r.author]);
		}
		const reactions: Record<string, string[]> = {};
		for (const [emoji, authors] of byEmoji) {
			Object.defineProperty(reactions, emoji, {
				value: authors.sort(),
				enumerable: true,
				writable: true,
				configurable: true
			});
		}
		return {
			...base,
			text: edits.at(-1)?.op.text ?? s.op.text,
			...(s.op.replyTo ? { replyTo: s.op.replyTo } : {}),
			edited: edits.length > 0,
			deleted: false,
			reactions,
			envelopeId: s.envelopeId
		};
	});
	messages.sort((a, b) => compareHlc(a.hlc, b.hlc) || str(a.id, b.id) || str(a.author, b.author));

	const receipts: Record<string, { delivered?: Position; read?: Position }> = {};
	for (const r of of('receipt')) {
		const mark: Position = { hlc: { wall: r.op.upTo[0], counter: r.op.upTo[1] }, id: r.op.upToId };
		const marks = (receipts[r.author] ??= {});
		const held = marks[r.op.kind];
		if (
			!held ||
			compareHlc(mark.hlc, held.hlc) > 0 ||
			(compareHlc(mark.hlc, held.hlc) === 0 && mark.id > held.id)
		) {
			marks[r.op.kind] = mark;
		}
	}
	let lastActivity: Hlc | null = null;
	for (const m of messages)
		if (!lastActivity || compareHlc(m.hlc, lastActivity) > 0) lastActivity = m.hlc;
	return { messages, receipts, lastActivity };
}

/** Deterministic shuffle and chunking from a seed, so fast-check can shrink and replay. */
function rng(seed: number) {
	let s = seed >>> 0;
	return () => {
		s = (s + 0x6d2b79f5) >>> 0;
		let t = s;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

function shuffle<T>(list: readonly T[], seed: number): T[] {
	const out = [...list];
	const random = rng(seed);
	for (let i = out.length - 1; i > 0; i--) {
		const j = Math.floor(random() * (i + 1));
		[out[i], out[j]] = [out[j] as T, out[i] as T];
	}
	return out;
}

function chunks<T>(list: readonly T[], seed: number): T[][] {
	const random = rng(seed ^ 0x5bd1e995);
	const out: T[][] = [];
	for (let i = 0; i < list.length;) {
		const size = Math.floor(random() * 6); // empty chunks included
		out.push(list.slice(i, i + size));
		i += size;
	}
	return out;
}

const AUTHORS = ['alice', 'bob', 'carol', 'dave', 'erin'];

/**
 * A random set of items from 3–5 authors. With `idPool` small, ids collide
 * across authors and even within one author (a misbehaving author); targets
 * always come from the same pool so edits, deletes, reactions and receipts hit.
 */
function itemsArb(idPool: number) {
	const ids = fc.integer({ min: 0, max: idPool - 1 });
	const at = fc.tuple(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 2 }));
	const opArb = fc.oneof(
		{
			weight: 4,
			arbitrary: fc.record({
				type: fc.constant('send'),
				text: fc.constantFrom('a', 'b', 'c'),
				replyTo: fc.option(ids, { nil: undefined })
			})
		},
		{
			weight: 2,
			arbitrary: fc.record({
				type: fc.constant('edit'),
				target: ids,
				text: fc.constantFrom('x', 'y')
			})
		},
		{ weight: 1, arbitrary: fc.record({ type: fc.constant('delete'), target: ids }) },
		{
			weight: 3,
			arbitrary: fc.record({
				type: fc.constant('react'),
				target: ids,
				emoji: fc.constantFrom('👍', '❤️', '__proto__'),
				on: fc.boolean()
			})
		},
		{
			weight: 2,
			arbitrary: fc.record({
				type: fc.constant('receipt'),
				kind: fc.constantFrom('delivered', 'read'),
				upTo: at,
				upToId: ids
			})
		},
		{
			weight: 1,
			arbitrary: fc.record({
				type: fc.constant('member.remove'),
				user: fc.constant('u'.repeat(43))
			})
		}
	);
	return fc
		.shuffledSubarray(AUTHORS, { minLength: 3, maxLength: 5 })
		.chain((authors) =>
			fc.array(
				fc.record({
					author: fc.constantFrom(...authors),
					device: fc.integer({ min: 0, max: 1 }),
					envelope: fc.integer({ min: 0, max: 5 }),
					id: ids,
					hlc: at,
					body: opArb
				}),
				{ maxLength: 40 }
			)
		)
		.map((specs) =>
			specs.map((s): ReducerItem => {
				const body: Record<string, unknown> = { ...s.body };
				for (const key of ['target', 'replyTo', 'upToId'] as const) {
					if (typeof body[key] === 'number') body[key] = id(body[key]);
				}
				if (body['replyTo'] === undefined) delete body['replyTo'];
				return {
					op: Operation.parse({ v: 1, id: id(s.id), hlc: s.hlc, ...body }),
					author: s.author,
					device: `${s.author}#${s.device}`,
					envelopeId: `e${s.envelope}`
				};
			})
		);
}

/**
 * Items plus re-deliveries of some of them (a fresh copy of the same op): in
 * the same envelope, or, unless `sameEnvelope`, possibly in another one.
 */
function withDuplicates(items: ReducerItem[], seed: number, sameEnvelope = false): ReducerItem[] {
	const random = rng(seed);
	const extra = items
		.filter(() => random() < 0.4)
		.map((it) => ({
			...it,
			op: structuredClone(it.op),
			envelopeId: sameEnvelope || random() < 0.5 ? it.envelopeId : `e${Math.floor(random() * 6)}`
		}));
	return [...items, ...extra];
}

describe('reducer properties', () => {
	for (const [label, idPool] of [
		['mostly distinct ids', 64],
		['some colliding ids', 16],
		['many colliding ids', 6]
	] as const) {
		describe(label, () => {
			const arb = fc.tuple(itemsArb(idPool), fc.integer(), fc.integer());

			it('matches the naive reference model', () => {
				fc.assert(
					fc.property(arb, ([items, seed]) => {
						const all = withDuplicates(items, seed);
						expect(reduce(all)).toStrictEqual(naiveReduce(all));
					}),
					{ numRuns: 300 }
				);
			});

			it('is independent of order and duplication', () => {
				fc.assert(
					fc.property(arb, ([items, seed, seed2]) => {
						// Re-delivery of the same envelopes changes nothing at all.
						const redelivered = shuffle(withDuplicates(items, seed, true), seed2);
						expect(reduce(redelivered)).toStrictEqual(reduce(items));
						// Copies in other envelopes may change which envelope a message
						// cites (the smallest id), but never depending on the order.
						const copies = withDuplicates(items, seed);
						const expected = reduce(copies);
						expect(reduce(shuffle(copies, seed2))).toStrictEqual(expected);
						expect(reduce(shuffle(copies, seed2 + 1))).toStrictEqual(expected);
					}),
					{ numRuns: 300 }
				);
			});

			it('gives the same state incrementally, in random chunks', () => {
				fc.assert(
					fc.property(arb, ([items, seed, seed2]) => {
						const all = shuffle(withDuplicates(items, seed), seed2);
						const expected = reduce(all);
						const r = new ConversationReducer();
						let previous = r.state;
						for (const chunk of chunks(all, seed2)) {
							const { changed } = r.add(chunk);
							// `changed` is truthful, and an unchanged state keeps its identity.
							if (!changed) expect(r.state).toBe(previous);
							else expect(r.state).not.toStrictEqual(previous);
							previous = r.state;
						}
						expect(r.state).toStrictEqual(expected);
						expect(r.add(all)).toEqual({ changed: false });
						expect(r.state).toBe(previous);
					}),
					{ numRuns: 300 }
				);
			});

			it('survives a snapshot round trip at any point', () => {
				fc.assert(
					fc.property(arb, fc.nat(), ([items, seed, seed2], cut) => {
						const all = shuffle(withDuplicates(items, seed), seed2);
						const at = all.length === 0 ? 0 : cut % (all.length + 1);
						let r = new ConversationReducer();
						for (const chunk of chunks(all.slice(0, at), seed)) r.add(chunk);
						const snapshot = JSON.parse(JSON.stringify(r.serialize())) as unknown;
						r = ConversationReducer.deserialize(snapshot);
						expect(r.state).toStrictEqual(reduce(all.slice(0, at)));
						for (const chunk of chunks(all.slice(at), seed2)) r.add(chunk);
						expect(r.state).toStrictEqual(reduce(all));
					}),
					{ numRuns: 300 }
				);
			});

			it('tells truthfully from which index the live list changed since any version', () => {
				fc.assert(
					fc.property(arb, ([items, seed, seed2]) => {
						const all = shuffle(withDuplicates(items, seed), seed2);
						const r = new ConversationReducer();
						const live = r.messages;
						// Snapshot of the list at each version seen.
						const seen = new Map<number, readonly Message[]>([[r.version, r.state.messages]]);
						for (const chunk of chunks(all, seed2)) {
							const before = r.version;
							const previous = r.state.messages;
							r.add(chunk);
							// The version moves exactly when state.messages does.
							expect(r.version !== before).toBe(r.state.messages !== previous);
							expect(r.messages).toBe(live);
							expect([...r.messages]).toEqual(r.state.messages);
							seen.set(r.version, r.state.messages);
							for (const [version, old] of seen) {
								const from = r.changedSince(version);
								expect(from).toBeLessThanOrEqual(r.messages.length);
								for (let i = 0; i < from; i++) expect(r.messages[i]).toBe(old[i]);
								if (version === r.version) expect(from).toBe(r.messages.length);
							}
						}
					}),
					{ numRuns: 300 }
				);
			});
		});
	}
});

describe('ConversationReducer: the live list and its changes', () => {
	it('says an append changed the list from the old end, an effect from its target', () => {
		const r = new ConversationReducer();
		r.add([item('alice', send(1, 10)), item('alice', send(2, 20)), item('bob', send(3, 30))]);
		const v1 = r.version;
		expect(r.changedSince(v1)).toBe(3);
		r.add([item('bob', send(4, 40))]);
		expect(r.changedSince(v1)).toBe(3);
		const v2 = r.version;
		r.add([item('bob', react(5, 50, 2, '👍'))]);
		expect(r.changedSince(v2)).toBe(1);
		expect(r.changedSince(v1)).toBe(1);
		const v3 = r.version;
		// Nothing visible: no new version.
		r.add([item('bob', receipt(6, 60, 'read', 40, 4))]);
		expect(r.version).toBe(v3);
		// A late send lands in the middle.
		r.add([item('carol', send(7, 15))]);
		expect(r.changedSince(v3)).toBe(1);
		expect(texts(r.state)).toEqual(['m1', 'm7', 'm2', 'm3', 'm4']);
	});

	it('keeps the same live array through a rebuild, and reports where it changed', () => {
		const r = new ConversationReducer();
		r.add([item('alice', send(1, 10)), item('alice', send(2, 20)), item('alice', send(3, 30))]);
		const live = r.messages;
		const first = r.messages[0];
		const v = r.version;
		// Same identity (alice, 2), other content, from a smaller envelope: a rebuild.
		r.add([item('alice', send(2, 20, 'other'), 'a-smaller-envelope')]);
		expect(r.messages).toBe(live);
		expect(r.messages[0]).toBe(first);
		expect(r.changedSince(v)).toBe(1);
		expect(texts(r.state)).toEqual(['m1', 'other', 'm3']);
	});

	it('answers 0 for a version older than it remembers', () => {
		const r = new ConversationReducer();
		r.add([item('alice', send(1, 10))]);
		const old = r.version;
		for (let i = 2; i < 1_000; i++) r.add([item('alice', send(i, 10 + i))]);
		expect(r.changedSince(old)).toBe(0);
		expect(r.changedSince(r.version - 1)).toBe(r.messages.length - 1);
	});
});

// ---------------------------------------------------------------------------

describe('scale', () => {
	it('at 100k messages, keeps every untouched message and merges late ones in order', () => {
		const authors = ['alice', 'bob', 'carol'];
		const T0 = 1_732_000_000_000;
		const make = (i: number, type: 'send' | 'react' = 'send', target?: OpId): ReducerItem => {
			const author = authors[i % 3] as string;
			const base = { v: 1, id: newOpId(), hlc: [T0 + i * 10, 0] };
			const op = (
				type === 'send'
					? { ...base, type, text: `message ${i}` }
					: { ...base, type, target, emoji: '👍', on: true }
			) as Operation;
			return { op, author, device: `${author}#1`, envelopeId: `env${i}` };
		};

		const history = Array.from({ length: 100_000 }, (_, i) => make(i));
		const r = new ConversationReducer();
		r.add(history);
		const before = r.state.messages;

		// Newest sends are appended: every earlier message keeps its identity
		// (the UI relies on it to skip work), so nothing was rebuilt.
		r.add(Array.from({ length: 1_000 }, (_, i) => make(100_000 + i)));
		const afterAppend = r.state.messages;
		expect(afterAppend).toHaveLength(101_000);
		for (let i = 0; i < before.length; i += 997) expect(afterAppend[i]).toBe(before[i]);
		expect(afterAppend.at(-1)?.text).toBe('message 100999');

		// Without copying: the live list and the index the change starts from.
		const version = r.version;
		r.add([make(100_000 + 1_000)]);
		expect(r.changedSince(version)).toBe(101_000);
		expect(r.messages).toHaveLength(101_001);

		// Reactions replace only their targets.
		const targets = new Set<number>();
		const reactions = Array.from({ length: 1_000 }, (_, i) => {
			const index = (i * 97) % history.length;
			targets.add(index);
			return make(200_000 + i, 'react', history[index]?.op.id);
		});
		r.add(reactions);
		const afterReact = r.state.messages;
		for (let i = 0; i < 100_000; i += 991) {
			if (targets.has(i)) expect(afterReact[i]?.reactions['👍']).toBeDefined();
			else expect(afterReact[i]).toBe(afterAppend[i]);
		}

		// Late, older sends land in the middle, in order.
		const older = Array.from({ length: 1_000 }, (_, i) => {
			const it = make(300_000 + i);
			return { ...it, op: { ...it.op, hlc: [T0 + i * 500 + 5, 0] } as Operation };
		});
		r.add(older);
		const final = r.state.messages;
		expect(final).toHaveLength(102_001);
		for (let i = 1; i < final.length; i++) {
			if (compareMessages(final[i - 1] as Message, final[i] as Message) >= 0) {
				throw new Error(`messages ${i - 1} and ${i} are out of order`);
			}
		}

		// And a snapshot of it all restores to the same state.
		const restored = ConversationReducer.deserialize(JSON.parse(JSON.stringify(r.serialize())));
		expect(restored.state).toStrictEqual(r.state);
	}, 120_000);
});
