/**
 * Who is a member, with which role, and since when: the membership of a
 * conversation as a deterministic function of the SET of membership
 * operations (member.add, member.remove, member.role) held, with the
 * authority rules every replica applies.
 *
 * Adds alone only ever grow the roster, so their order never mattered.
 * Removals, leaving and role changes do not commute (A removes B while B
 * removes A): their outcome depends on who had which right when. So the
 * operations are replayed in one total order every replica agrees on, their
 * stamp (hlc, then id, then signer), and each one is checked against the
 * membership as it stands at that point of the replay:
 *
 *  1. Genesis. The creator's own add (user = signer = creator, role owner) is
 *     valid once, while the creator has never been a member.
 *  2. Add. The signer must be a member with role admin or owner; an owner
 *     role needs an owner. Adding a current member raises their role to the
 *     add's role when that is higher (as before removals existed), never
 *     lowers it. Adding a former member brings them back.
 *  3. Remove. Anyone may remove themselves (leave). Otherwise the signer
 *     must be an admin or owner, and removing an owner needs an owner.
 *  4. Role. The signer must be an admin or owner, the target a member.
 *     Making or unmaking an owner needs an owner. Admins promote members to
 *     admin and demote admins to member.
 *  5. Succession. When the last owner leaves, is removed or steps down and
 *     members remain, the member with the highest role who joined first (by
 *     the stamp of the add that last brought them in) becomes owner; not the
 *     one who stepped down, unless nobody else is left.
 *  6. An operation that breaks a rule counts for nothing, now and later: a
 *     forged "promote me" from a plain member changes nothing anywhere.
 *
 * Concurrent conflicting changes resolve by the stamp: of "A removes B" and
 * "B removes A", the one with the lesser stamp applies, and the other then
 * comes from someone who is no longer a member. docs/protocol.md states the
 * same rules.
 *
 * Besides the current members, the replay gives each user's spans of
 * membership, so the reducer can tell whether an operation came from its
 * author while they were a member (`countsAt`): what a removed member writes
 * after the removal counts for nothing.
 */
import { compareHlc, type Hlc } from './hlc';
import type { Role } from './operations';

const RANK: Record<Role, number> = { member: 0, admin: 1, owner: 2 };

/** A point in the replay order. */
export interface Stamp {
	readonly hlc: Hlc;
	readonly id: string;
	/** User id of the signer. */
	readonly signer: string;
}

export function compareStamps(a: Stamp, b: Stamp): number {
	return (
		compareHlc(a.hlc, b.hlc) ||
		(a.id < b.id ? -1 : a.id > b.id ? 1 : 0) ||
		(a.signer < b.signer ? -1 : a.signer > b.signer ? 1 : 0)
	);
}

/** One membership operation, reduced to what authority needs. */
export type MembershipOp = Stamp &
	(
		| { readonly kind: 'add'; readonly user: string; readonly role: Role }
		| { readonly kind: 'remove'; readonly user: string }
		| { readonly kind: 'role'; readonly user: string; readonly role: Role }
	);

/** What happened, for the timeline's system lines ("Ada removed Bob"). */
export type MembershipEvent =
	| { kind: 'joined'; user: string; by: string; role: Role; at: Stamp }
	| { kind: 'removed'; user: string; by: string; at: Stamp }
	| { kind: 'left'; user: string; at: Stamp }
	| { kind: 'role'; user: string; by: string; role: Role; at: Stamp }
	| { kind: 'owner'; user: string; at: Stamp };

export interface MemberState {
	readonly role: Role;
	/** Stamp of the add that (last) brought the user in. */
	readonly since: Stamp;
}

/** A stretch of membership: from an add up to (not including) a removal, or open. */
export interface Span {
	readonly from: Stamp;
	readonly to: Stamp | null;
}

export interface MembershipState {
	readonly members: ReadonlyMap<string, MemberState>;
	/** Every user who was ever a member → their spans, oldest first. */
	readonly spans: ReadonlyMap<string, readonly Span[]>;
	/** Applied changes in order. */
	readonly events: readonly MembershipEvent[];
	/** Keys (`membershipKey`) of the operations that broke a rule (rule 6). */
	readonly refused: ReadonlySet<string>;
}

/** Identity of a membership op: its signer and id. */
export function membershipKey(op: MembershipOp): string {
	return `${op.signer} ${op.id}`;
}

/** Replays `ops` (any order, duplicates allowed) under the rules above. */
export function replayMembership(
	creator: string | null,
	ops: Iterable<MembershipOp>
): MembershipState {
	const log = new MembershipLog(creator);
	log.addAll(ops);
	return log.state;
}

/** Same identity twice: the lesser by content counts, deterministically. */
function preferred(a: MembershipOp, b: MembershipOp): MembershipOp {
	return JSON.stringify(a) < JSON.stringify(b) ? a : b;
}

interface Replay {
	members: Map<string, MemberState>;
	spans: Map<string, Span[]>;
	events: MembershipEvent[];
	refused: Set<string>;
}

function emptyReplay(): Replay {
	return { members: new Map(), spans: new Map(), events: [], refused: new Set() };
}

/** Whether `op` may apply to the membership `r` as it stands (rules 1–4). */
function allowed(r: Replay, creator: string | null, op: MembershipOp): boolean {
	const signerRole = r.members.get(op.signer)?.role;
	const admin = signerRole === 'admin' || signerRole === 'owner';
	const target = r.members.get(op.user);
	switch (op.kind) {
		case 'add': {
			const genesis =
				op.user === creator &&
				op.signer === creator &&
				op.role === 'owner' &&
				!r.spans.has(creator);
			return genesis || (admin && (op.role !== 'owner' || signerRole === 'owner'));
		}
		case 'remove':
			return (
				target !== undefined &&
				(op.signer === op.user || (admin && (target.role !== 'owner' || signerRole === 'owner')))
			);
		case 'role':
			return (
				target !== undefined &&
				admin &&
				((op.role !== 'owner' && target.role !== 'owner') || signerRole === 'owner')
			);
	}
}

/** Applies `op` to `r` in replay order (rules 1–6). */
function step(r: Replay, creator: string | null, op: MembershipOp): void {
	if (!allowed(r, creator, op)) {
		r.refused.add(membershipKey(op));
		return;
	}
	const { members, spans, events } = r;
	const target = members.get(op.user);
	switch (op.kind) {
		case 'add': {
			if (target) {
				if (RANK[op.role] > RANK[target.role]) {
					members.set(op.user, { role: op.role, since: target.since });
					events.push({ kind: 'role', user: op.user, by: op.signer, role: op.role, at: op });
				}
			} else {
				members.set(op.user, { role: op.role, since: op });
				const list = spans.get(op.user);
				if (list) list.push({ from: op, to: null });
				else spans.set(op.user, [{ from: op, to: null }]);
				events.push({ kind: 'joined', user: op.user, by: op.signer, role: op.role, at: op });
			}
			return;
		}
		case 'remove': {
			members.delete(op.user);
			const list = spans.get(op.user) as Span[];
			const last = list[list.length - 1] as Span;
			list[list.length - 1] = { from: last.from, to: op };
			events.push(
				op.signer === op.user
					? { kind: 'left', user: op.user, at: op }
					: { kind: 'removed', user: op.user, by: op.signer, at: op }
			);
			succeed(members, events, op);
			return;
		}
		case 'role': {
			if (!target || target.role === op.role) return;
			members.set(op.user, { role: op.role, since: target.since });
			events.push({ kind: 'role', user: op.user, by: op.signer, role: op.role, at: op });
			succeed(members, events, op);
			return;
		}
	}
}

/**
 * The membership ops held, and their replay, kept up to date as ops arrive.
 * An op stamped after every other (the usual case: ops arrive roughly in
 * order) is applied in O(members); one that lands earlier replays the log
 * from the start. So a flood of ops from one member costs linear time, not
 * quadratic.
 */
export class MembershipLog {
	readonly creator: string | null;
	/** Ops held, sorted by stamp; one per identity. */
	#ops: MembershipOp[] = [];
	readonly #byKey = new Map<string, MembershipOp>();
	#replay: Replay = emptyReplay();
	#revision = 0;

	constructor(creator: string | null) {
		this.creator = creator;
	}

	get size(): number {
		return this.#ops.length;
	}

	/** The replayed membership. It is updated in place: compare `revision` to see a change. */
	get state(): MembershipState {
		return this.#replay;
	}

	/** Grows whenever the members, roles or events may have changed. */
	get revision(): number {
		return this.#revision;
	}

	/** Adds ops (any order, duplicates allowed), replaying once at the end. */
	addAll(ops: Iterable<MembershipOp>): void {
		for (const op of ops) this.#hold(op);
		this.#ops.sort(compareStamps);
		this.#rebuild();
	}

	/** Adds one op; returns whether the replayed membership may have changed. */
	add(op: MembershipOp): boolean {
		const key = membershipKey(op);
		const held = this.#byKey.get(key);
		if (held !== undefined) {
			if (preferred(op, held) === held) return false;
			this.#byKey.set(key, op);
			this.#ops[this.#ops.indexOf(held)] = op;
			this.#ops.sort(compareStamps);
			this.#rebuild();
			return true;
		}
		this.#byKey.set(key, op);
		const last = this.#ops[this.#ops.length - 1];
		this.#ops.push(op);
		if (last === undefined || compareStamps(op, last) > 0) {
			const events = this.#replay.events.length;
			step(this.#replay, this.creator, op);
			if (this.#replay.events.length !== events) this.#revision++;
		} else {
			this.#ops.sort(compareStamps);
			this.#rebuild();
		}
		return true;
	}

	/**
	 * Whether the replay would accept `op` among the ops held. When an op of
	 * the same identity is held, the answer is for the one `preferred` keeps:
	 * the held op when `op` loses to it, else `op` in its place (an
	 * equivocated variant held first must not judge the original).
	 */
	wouldAccept(op: MembershipOp): boolean {
		const key = membershipKey(op);
		const held = this.#byKey.get(key);
		if (held !== undefined) {
			if (preferred(op, held) === held) return !this.#replay.refused.has(key);
			const trial = new MembershipLog(this.creator);
			trial.addAll(this.#ops.map((o) => (o === held ? op : o)));
			return !trial.state.refused.has(key);
		}
		const last = this.#ops[this.#ops.length - 1];
		if (last === undefined || compareStamps(op, last) > 0) {
			return allowed(this.#replay, this.creator, op);
		}
		const trial = new MembershipLog(this.creator);
		trial.addAll([...this.#ops, op]);
		return !trial.state.refused.has(key);
	}

	/** Whether `op` is a variant of a held op's identity that the replay would keep instead. */
	supersedes(op: MembershipOp): boolean {
		const held = this.#byKey.get(membershipKey(op));
		return held !== undefined && preferred(op, held) !== held;
	}

	#hold(op: MembershipOp): void {
		const key = membershipKey(op);
		const held = this.#byKey.get(key);
		if (held === undefined) {
			this.#byKey.set(key, op);
			this.#ops.push(op);
		} else if (preferred(op, held) !== held) {
			this.#byKey.set(key, op);
			this.#ops[this.#ops.indexOf(held)] = op;
		}
	}

	#rebuild(): void {
		const r = emptyReplay();
		for (const op of this.#ops) step(r, this.creator, op);
		this.#replay = r;
		this.#revision++;
	}
}

/** Rule 5: without an owner, the senior member of the highest role becomes one. */
function succeed(members: Map<string, MemberState>, events: MembershipEvent[], at: Stamp): void {
	if (members.size === 0) return;
	let heir: [string, MemberState] | null = null;
	for (const entry of members) {
		const [user, state] = entry;
		if (state.role === 'owner') return;
		// An owner who steps down hands over to someone else when there is anyone.
		if (user === at.signer && members.size > 1) continue;
		if (
			heir === null ||
			RANK[state.role] > RANK[heir[1].role] ||
			(RANK[state.role] === RANK[heir[1].role] && compareStamps(state.since, heir[1].since) < 0)
		) {
			heir = entry;
		}
	}
	if (heir === null) return;
	members.set(heir[0], { role: 'owner', since: heir[1].since });
	events.push({ kind: 'owner', user: heir[0], at });
}

/**
 * Whether an operation by `user` stamped `at` counts: the user was a member
 * then, or had not been removed yet. Operations from before a user's first
 * add count (a clock running behind must not hide a new member's first
 * messages); operations from after a removal, until a later add, do not;
 * nothing counts from a user no valid add brought in.
 */
export function countsAt(state: MembershipState, user: string, at: Stamp): boolean {
	const list = state.spans.get(user);
	// Nobody brought this user in: nothing they sign counts.
	if (!list || list.length === 0) return false;
	for (let i = list.length - 1; i >= 0; i--) {
		const span = list[i] as Span;
		if (compareStamps(at, span.from) >= 0) {
			return span.to === null || compareStamps(at, span.to) < 0;
		}
	}
	return true;
}

/**
 * A user's role at a point of the replay (undefined when not a member then):
 * who may open a new generation is decided by the role its opener had when
 * it signed the epoch op, not by what happened after.
 */
export function roleAt(state: MembershipState, user: string, at: Stamp): Role | undefined {
	let role: Role | undefined;
	for (const event of state.events) {
		if (compareStamps(event.at, at) > 0) break;
		if (event.user !== user) continue;
		switch (event.kind) {
			case 'joined':
			case 'role':
				role = event.role;
				break;
			case 'owner':
				role = 'owner';
				break;
			case 'removed':
			case 'left':
				role = undefined;
				break;
		}
	}
	return role;
}
