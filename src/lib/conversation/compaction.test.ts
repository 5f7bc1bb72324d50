import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { survivingOps, type HeldOp } from './compaction';
import { Operation, type OpId } from './operations';
import { reduce, type ConversationState, type ReducerItem } from './reducer';

function id(n: number): OpId {
	return (String(n).padStart(21, '0') + 'A') as OpId;
}

function op(fields: Record<string, unknown>): Operation {
	return Operation.parse({ v: 1, ...fields });
}

const AUTHORS = ['ada', 'bob', 'cy'] as const;
const deviceOf = (author: string) => `${author}`.padEnd(43, 'd');

/** What a user sees of a message (not which envelope carried it). */
function visible(state: ConversationState) {
	return state.messages.map((m) => ({
		id: m.id,
		author: m.author,
		text: m.text,
		edited: m.edited,
		deleted: m.deleted,
		replyTo: m.replyTo,
		reactions: m.reactions
	}));
}

const asItems = (held: readonly HeldOp[], prefix: string): ReducerItem[] =>
	held.map((h, i) => ({ ...h, envelopeId: `${prefix}${i}` }));

/** A random history: sends, edits, deletes (by the author) and reactions among three people. */
const arbHistory = fc
	.array(
		fc.record({
			kind: fc.constantFrom('send', 'send', 'edit', 'delete', 'react', 'unreact', 'receipt'),
			author: fc.constantFrom(...AUTHORS),
			target: fc.nat(40),
			emoji: fc.constantFrom('👍', '🎉'),
			reply: fc.boolean()
		}),
		{ maxLength: 80 }
	)
	.map((steps) => {
		const held: HeldOp[] = [];
		const sent: Array<{ n: number; author: string }> = [];
		steps.forEach((step, n) => {
			const at = [1_000 + n, 0];
			const base = { id: id(n), hlc: at };
			const target = sent.length > 0 ? sent[step.target % sent.length] : undefined;
			let o: Operation | null = null;
			let author: string = step.author;
			switch (step.kind) {
				case 'send':
					o = op({
						...base,
						type: 'send',
						text: `secret ${n}`,
						...(step.reply && target ? { replyTo: id(target.n) } : {})
					});
					sent.push({ n, author });
					break;
				case 'edit':
					if (!target) break;
					author = target.author;
					o = op({ ...base, type: 'edit', target: id(target.n), text: `secret ${n} edited` });
					break;
				case 'delete':
					if (!target) break;
					author = target.author;
					o = op({ ...base, type: 'delete', target: id(target.n) });
					break;
				case 'react':
				case 'unreact':
					if (!target) break;
					o = op({
						...base,
						type: 'react',
						target: id(target.n),
						emoji: step.emoji,
						on: step.kind === 'react'
					});
					break;
				case 'receipt':
					if (!target) break;
					o = op({
						...base,
						type: 'receipt',
						kind: 'read',
						upTo: [1_000 + target.n, 0],
						upToId: id(target.n)
					});
					break;
			}
			if (o) held.push({ op: o, author, device: deviceOf(author) });
		});
		return held;
	});

describe('survivingOps', () => {
	it('gives the same view as everything held, without any deleted text', () => {
		fc.assert(
			fc.property(arbHistory, (held) => {
				const before = reduce(asItems(held, 'old-'));
				const snapshot = survivingOps(held);
				const after = reduce(
					asItems(
						snapshot.map((s) => ({
							op: s.op,
							device: s.device,
							author: held.find((h) => h.device === s.device)?.author ?? '?'
						})),
						'new-'
					)
				);
				expect(visible(after)).toEqual(visible(before));
				expect(after.receipts).toEqual(before.receipts);
				const deletedIds = new Set(before.messages.filter((m) => m.deleted).map((m) => m.id));
				const carried = JSON.stringify(snapshot);
				for (const m of held) {
					if (m.op.type === 'send' && deletedIds.has(m.op.id)) {
						expect(carried).not.toContain(`"${m.op.text}"`);
					}
					if (m.op.type === 'edit' && deletedIds.has(m.op.target)) {
						expect(carried).not.toContain(`"${m.op.text}"`);
					}
				}
			}),
			{ numRuns: 300 }
		);
	});

	it('keeps membership and live invitations, drops expired ones, and puts membership first', () => {
		const add = op({
			id: id(1),
			hlc: [2_000, 0],
			type: 'member.add',
			user: 'u'.repeat(43),
			devices: ['d'.repeat(43)],
			role: 'member'
		});
		const hello = op({ id: id(2), hlc: [1_000, 0], type: 'send', text: 'hello' });
		const live = op({
			id: id(3),
			hlc: [3_000, 0],
			type: 'invite',
			invite: id(9),
			secret: 's'.repeat(43),
			expires: 10_000
		});
		const expired = op({ ...live, id: id(4), expires: 100 });
		const out = survivingOps(
			[hello, add, live, expired].map((o) => ({ op: o, author: 'ada', device: deviceOf('ada') })),
			5_000
		);
		expect(out.map((s) => s.op.id)).toEqual([id(1), id(2), id(3)]);
	});
});
