/**
 * Compaction: what a new generation's snapshot carries.
 *
 * Every generation after the first is seeded by its opener with the
 * operations of the generations before that still matter, each with the
 * device that signed it (generation.ts). Readers replay them as if those
 * devices had just delivered them, so the view is the same, and the old
 * generations can be retired: their envelopes — a deleted message's text
 * among them — leave every store.
 *
 * What survives, as a function of the counted items held:
 *   - membership (member.add / .remove / .role): all of it (the replay needs
 *     every step) — small;
 *   - a message (send) not deleted: as sent, with every edit of it (the
 *     author's edit history) and, per (reactor, emoji), the latest reaction
 *     if it is "on";
 *   - a deleted message: a tombstone — the send with its text emptied and its
 *     attachment, reply and mentions dropped — and the delete, so the
 *     placeholder stays and nothing of the text does;
 *   - receipts: of each kind per author, the one that marks the furthest;
 *   - invitations not expired;
 *   - nothing else (epoch and seed ops belong to their generation).
 */
import { compareHlc } from './hlc';
import type { Operation, SeededOp } from './operations';

/** One counted op with its signing device and author (ReducerItem's shape). */
export interface HeldOp {
	op: Operation;
	device: string;
	author: string;
}

function stampOrder(a: Operation, b: Operation): number {
	return (
		compareHlc({ wall: a.hlc[0], counter: a.hlc[1] }, { wall: b.hlc[0], counter: b.hlc[1] }) ||
		(a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
	);
}

function markOrder(a: Operation, b: Operation): number {
	if (a.type !== 'receipt' || b.type !== 'receipt') return 0;
	return (
		compareHlc({ wall: a.upTo[0], counter: a.upTo[1] }, { wall: b.upTo[0], counter: b.upTo[1] }) ||
		(a.upToId < b.upToId ? -1 : a.upToId > b.upToId ? 1 : 0) ||
		stampOrder(a, b)
	);
}

/**
 * The ops a snapshot carries, in stamp order (membership first, so a reader
 * knows every device before their messages). `now`: for invitations.
 */
export function survivingOps(items: Iterable<HeldOp>, now = Date.now()): SeededOp[] {
	const membership: HeldOp[] = [];
	const sends = new Map<string, HeldOp>();
	const edits: HeldOp[] = [];
	const deletes: HeldOp[] = [];
	const reactions = new Map<string, HeldOp>();
	const receipts = new Map<string, HeldOp>();
	const invites: HeldOp[] = [];
	const seen = new Set<string>();
	for (const item of items) {
		const { op, author } = item;
		const identity = `${author} ${op.id}`;
		if (seen.has(identity)) continue;
		seen.add(identity);
		switch (op.type) {
			case 'member.add':
			case 'member.remove':
			case 'member.role':
				membership.push(item);
				break;
			case 'send':
				sends.set(identity, item);
				break;
			case 'edit':
				edits.push(item);
				break;
			case 'delete':
				deletes.push(item);
				break;
			case 'react': {
				const key = `${op.target} ${author} ${op.emoji}`;
				const current = reactions.get(key);
				if (!current || stampOrder(current.op, op) < 0) reactions.set(key, item);
				break;
			}
			case 'receipt': {
				// The mark is the greatest position read up to (reducer rule 7), not the latest op.
				const key = `${author} ${op.kind}`;
				const current = receipts.get(key);
				if (!current || markOrder(current.op, op) < 0) receipts.set(key, item);
				break;
			}
			case 'invite':
				if (op.expires > now) invites.push(item);
				break;
			default:
				break; // epoch, seed
		}
	}
	// Only an author deletes their own message (reducer rule 4).
	const deleted = new Set<string>();
	const deletedIds = new Set<string>();
	const keptDeletes: HeldOp[] = [];
	for (const item of deletes) {
		if (item.op.type !== 'delete') continue;
		const identity = `${item.author} ${item.op.target}`;
		if (!sends.has(identity)) continue;
		deleted.add(identity);
		deletedIds.add(item.op.target);
		keptDeletes.push(item);
	}
	const out: HeldOp[] = [...membership, ...invites];
	for (const [identity, item] of sends) {
		if (item.op.type !== 'send') continue;
		if (!deleted.has(identity)) {
			out.push(item);
			continue;
		}
		const { v, id, hlc } = item.op;
		out.push({ ...item, op: { v, id, hlc, type: 'send', text: '' } });
	}
	for (const item of edits) {
		if (item.op.type !== 'edit') continue;
		const identity = `${item.author} ${item.op.target}`;
		if (sends.has(identity) && !deleted.has(identity)) out.push(item);
	}
	out.push(...keptDeletes);
	for (const item of reactions.values()) {
		if (item.op.type !== 'react' || !item.op.on) continue;
		// A reaction to a deleted message is dropped (its author may be anyone).
		if (!deletedIds.has(item.op.target)) out.push(item);
	}
	for (const item of receipts.values()) {
		if (item.op.type !== 'receipt') continue;
		// A state vector names clocks of its own generation's doc: meaningless in the next.
		const { v, id, hlc, kind, upTo, upToId } = item.op;
		out.push({ ...item, op: { v, id, hlc, type: 'receipt', kind, upTo, upToId } });
	}
	const rank = (op: Operation) =>
		op.type === 'member.add' || op.type === 'member.remove' || op.type === 'member.role' ? 0 : 1;
	out.sort((a, b) => rank(a.op) - rank(b.op) || stampOrder(a.op, b.op));
	// Only the kinds a seed carries reach `out` (epoch and seed ops are skipped above).
	return out.map(({ device, op }) => ({ device, op }) as SeededOp);
}
