/**
 * Which envelopes count: an envelope's operations count once the roster
 * knows its signing device (roster.ts); member.role ops go to the roster,
 * whose replay decides what they change. Envelopes from unknown devices are
 * held, and member.add operations not yet authorised wait, until the roster
 * grows; member.role and member.remove ops go to the roster's replay. The
 * roster is grown to its fixpoint, so the order envelopes arrive
 * in does not matter (DESIGN, invariant 1). Genesis: the creator's first
 * device brings itself in.
 *
 * Pure (no I/O, no view state): the app's conversation session and the Node
 * peer both run it.
 */
import type { MemberAddOp, MemberRemoveOp, MemberRoleOp, Operation } from './operations';
import type { ConversationReducer, ReducerItem } from './reducer';
import type { Roster } from './roster';

/** One opened envelope: its id, the device that signed it and its operations. */
export interface SignedOps {
	entryId: string;
	device: string;
	ops: Operation[];
}

export class RosterGate<T extends SignedOps = SignedOps> {
	readonly roster: Roster;
	readonly #authorOf: (device: string) => string | undefined;
	readonly #held = new Map<string, T>();
	#pendingAdds: Array<{ op: MemberAddOp; signer: string }> = [];

	/** `authorOf`: the user a device signs for (normally the roster's owner of it). */
	constructor(roster: Roster, authorOf: (device: string) => string | undefined) {
		this.roster = roster;
		this.#authorOf = authorOf;
	}

	/** Whether the reducer was last told that someone's items do not count. */
	#excluding = false;

	/**
	 * Tell `reducer` which items count under the membership as it stands
	 * (Roster.counts: nothing from a user every add of whom was refused, or
	 * from a member after removal; Roster.deviceCounts: nothing from a
	 * removed device after its user's new self-signing key). Call after the roster changed. Costs
	 * nothing while nobody is excluded; otherwise the reducer recomputes.
	 */
	recount(reducer: ConversationReducer): void {
		const excluding = this.roster.excludesAnyone;
		if (!excluding && !this.#excluding) return;
		this.#excluding = excluding;
		const roster = this.roster;
		reducer.setCounts(
			excluding
				? (item: ReducerItem) => {
						const hlc = { wall: item.op.hlc[0], counter: item.op.hlc[1] };
						return (
							roster.counts(item.author, hlc, item.op.id) &&
							roster.deviceCounts(item.device, hlc, item.op.id)
						);
					}
				: null
		);
	}

	/** Envelopes held because their device is not (yet) a member's. */
	get heldCount(): number {
		return this.#held.size;
	}

	/**
	 * A role change or removal is recorded once the roster knows its signing
	 * device (the replay then judges it); until then it waits. An envelope may
	 * be admitted before its device is in the roster (a device's own ops are
	 * attributed to its user at once), so its membership ops must not be lost.
	 */
	#applyChangeOrWait(op: MemberRoleOp | MemberRemoveOp, signer: string): void {
		if (this.roster.ownerOf(signer) === undefined) this.#pendingRoles.push({ op, signer });
		else this.roster.applyChange(op, signer);
	}

	#pendingRoles: Array<{ op: MemberRoleOp | MemberRemoveOp; signer: string }> = [];

	/** Apply a member.add now if it is authorised, or keep it until the roster grows. */
	async applyOrWait(op: MemberAddOp, signer: string): Promise<void> {
		if (this.roster.authorised(op, signer)) await this.roster.apply(op, signer);
		else {
			await this.roster.supersede(op, signer);
			this.#pendingAdds.push({ op, signer });
		}
	}

	/** A member.add known not to be authorised yet (e.g. restored from a snapshot). */
	wait(op: MemberAddOp, signer: string): void {
		this.#pendingAdds.push({ op, signer });
	}

	/**
	 * Admit envelopes: `each` sees every operation of every envelope whose
	 * device the roster knows (its member.add already applied or waiting),
	 * with the author, in order; `envelope` sees each admitted envelope first.
	 * Held envelopes come back through here when the roster grows.
	 */
	async admit(
		decoded: readonly T[],
		each: (envelope: T, author: string, op: Operation) => void,
		envelope?: (envelope: T, author: string) => void
	): Promise<void> {
		let queue = decoded;
		for (;;) {
			const versionBefore = this.roster.version;
			for (const d of queue) {
				if (this.#authorOf(d.device) === undefined) {
					// The genesis, and a new device of a member adding itself (roster rule 6).
					for (const op of d.ops) {
						if (
							op.type === 'member.add' &&
							(op.user === this.roster.creator || op.devices.includes(d.device))
						) {
							await this.roster.apply(op, d.device);
						}
					}
				}
				const author = this.#authorOf(d.device);
				if (author === undefined) {
					this.#held.set(d.entryId, d);
					continue;
				}
				this.#held.delete(d.entryId);
				envelope?.(d, author);
				for (const op of d.ops) {
					if (op.type === 'member.add') await this.applyOrWait(op, d.device);
					else if (op.type === 'member.role' || op.type === 'member.remove') {
						this.#applyChangeOrWait(op, d.device);
					}
					each(d, author, op);
				}
			}
			if (this.roster.version !== versionBefore && this.#pendingAdds.length > 0) {
				const pending = this.#pendingAdds;
				this.#pendingAdds = [];
				for (const { op, signer } of pending) await this.applyOrWait(op, signer);
			}
			if (this.roster.version !== versionBefore && this.#pendingRoles.length > 0) {
				const pending = this.#pendingRoles;
				this.#pendingRoles = [];
				for (const { op, signer } of pending) this.#applyChangeOrWait(op, signer);
			}
			if (this.roster.version === versionBefore || this.#held.size === 0) break;
			queue = [...this.#held.values()];
		}
	}
}

/** An invitation as recorded in a conversation: one `invite` op and the user who signed it. */
export interface RecordedInvite {
	op: Extract<Operation, { type: 'invite' }>;
	author: string;
}

/**
 * The invitations that let people in now: recorded by an owner or admin,
 * with the earliest expiry any of them recorded for the id (revoking is
 * recording it again, expiring now) still ahead. `records`: per invite id.
 */
export function liveInvites(
	records: Iterable<readonly RecordedInvite[]>,
	roster: Roster,
	now = Date.now()
): Array<{ invite: string; secret: string; expires: number }> {
	const out: Array<{ invite: string; secret: string; expires: number }> = [];
	for (const list of records) {
		const valid = list.filter(({ author }) => {
			const role = roster.roleOf(author);
			return role === 'owner' || role === 'admin';
		});
		const first = valid[0];
		if (!first) continue;
		const expires = Math.min(...valid.map(({ op }) => op.expires));
		if (expires <= now) continue;
		out.push({ invite: first.op.invite, secret: first.op.secret, expires });
	}
	return out;
}
