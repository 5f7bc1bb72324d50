/**
 * Who is in a conversation: members, their roles and their certified
 * devices, from the `member.add` operations in the doc. The roster decides
 * whose envelopes count: an envelope signed by a device outside it is held
 * (not shown) until a valid `member.add` brings its device in.
 *
 * Rules (every replica applies the same ones, so every replica that holds
 * the same operations has the same roster, whatever the arrival order):
 *
 *  1. Genesis. The conversation's creator (known to every member: it is in
 *     the vault entry and in the admission) is owner. Its first device
 *     enters by a `member.add` of the creator, role owner, signed by that
 *     device and listing it.
 *  2. A `member.add` signed by a device of an owner or admin adds the user
 *     (or more devices of them). Only an owner may add an owner. Roles come
 *     from membership.ts, which replays adds and `member.role` changes in
 *     stamp order with its authority rules: an add counts when that replay
 *     accepts it, so an admin's add stamped before their demotion still
 *     counts, and one stamped after it does not.
 *  3. Every device an add lists must come with a certificate chain, master
 *     (= user id) → self-signing key → device (identity/certificates.ts).
 *     Devices without a valid chain are ignored; an add with none left
 *     changes nothing.
 *  4. Several valid adds of one user merge: the union of devices, the name
 *     of the latest add by (hlc, id); the role is the replay's.
 *  5. At most MAX_MEMBERS users.
 *  6. Own devices. An add of user U signed by one of U's devices (known
 *     here, or unknown but listed in the add with a valid chain: a device
 *     linked or restored later) is no membership change and never enters
 *     the replay, whatever role it names: it adds its signing device, and
 *     only that one (signing the envelope proves the device's key is held;
 *     other devices it lists are ignored, so nobody can claim a device of
 *     someone else's). It counts once some valid add brought U in (before
 *     that it waits). The creator's own add as owner is excluded: that
 *     shape is the genesis.
 *
 * Devices only ever join (an add once applied keeps its devices known, so
 * what they signed can be attributed); which users are members and with
 * which role is the replay's answer for the ops held. A `member.remove`
 * (removal, or leaving) ends a membership span in the replay; the removed
 * user's devices stay known (what they signed before stays attributed), and
 * what they sign after counts for nothing. Keys rotate in a new generation
 * (generation.ts), so a removed device also reads nothing new.
 */
import { compareHlc } from './hlc';
import { countsAt, MembershipLog, type MembershipOp, type MembershipState } from './membership';
import {
	opHlc,
	type MemberAddOp,
	type MemberRemoveOp,
	type MemberRoleOp,
	type Role
} from './operations';
import { verifyDeviceChain } from '../identity/certificates';

export const MAX_MEMBERS = 256;

const RANK: Record<Role, number> = { member: 0, admin: 1, owner: 2 };

export interface RosterMember {
	user: string;
	name: string;
	role: Role;
	/** Device id (Ed25519 public key, base64url) → its X25519 key (base64url). */
	devices: ReadonlyMap<string, string>;
	/**
	 * Self-signing keys (base64url) that certified the member's devices here.
	 * A new one (the member rotated it, or reset the account's devices)
	 * changes their safety number.
	 */
	sskKeys: ReadonlySet<string>;
}

interface MutableMember {
	user: string;
	name: string;
	nameAt: { hlc: { wall: number; counter: number }; id: string } | null;
	devices: Map<string, string>;
	sskKeys: Set<string>;
}

/** An add or role op as the membership replay sees it. */
function membershipOp(
	op: MemberAddOp | MemberRoleOp | MemberRemoveOp,
	signer: string
): MembershipOp {
	const at = { hlc: opHlc(op), id: op.id, signer };
	switch (op.type) {
		case 'member.add':
			return { ...at, kind: 'add', user: op.user, role: op.role };
		case 'member.role':
			return { ...at, kind: 'role', user: op.user, role: op.role };
		case 'member.remove':
			return { ...at, kind: 'remove', user: op.user };
	}
}

export class Roster {
	readonly creator: string | null;
	readonly #members = new Map<string, MutableMember>();
	readonly #owners = new Map<string, string>();
	/** Membership ops applied (adds with devices, role changes) and their replay. */
	readonly #log: MembershipLog;
	/** Users of the adds applied. */
	readonly #addTargets = new Set<string>();
	/** Bumped on every change, so callers can cache what they derive. */
	version = 0;

	constructor(creator: string | null) {
		this.creator = creator;
		this.#log = new MembershipLog(creator);
	}

	/** Members now, by the replay. */
	get size(): number {
		return this.#log.state.members.size;
	}

	/** The replayed membership: roles, spans and the changes in order (for system lines). */
	get membership(): MembershipState {
		return this.#log.state;
	}

	/** The user a device belongs to, if it is a member device. */
	ownerOf(device: string): string | undefined {
		return this.#owners.get(device);
	}

	/** A user's record (name, devices), also after they stopped being a member. */
	member(user: string): RosterMember | undefined {
		const listed = this.members().find((m) => m.user === user);
		if (listed) return listed;
		const record = this.#members.get(user);
		return record && { ...record, role: 'member' };
	}

	#membersCache: { version: number; list: readonly RosterMember[] } | null = null;

	/** The current members, owners first, then admins, then by name (shared: do not mutate). */
	members(): readonly RosterMember[] {
		if (this.#membersCache?.version === this.version) return this.#membersCache.list;
		const list: RosterMember[] = [];
		for (const [user, state] of this.#log.state.members) {
			const record = this.#members.get(user);
			if (record) list.push({ ...record, role: state.role });
		}
		list.sort((a, b) => RANK[b.role] - RANK[a.role] || a.name.localeCompare(b.name));
		this.#membersCache = { version: this.version, list };
		return list;
	}

	roleOf(user: string): Role | undefined {
		return this.#log.state.members.get(user)?.role;
	}

	/** Users some add names but no add brought in (every add of theirs was refused). */
	#refusedOnly: ReadonlySet<string> = new Set();

	/**
	 * Whether an op by `user` stamped (`hlc`, `id`) counts (membership.ts
	 * `countsAt`): not from a user every add of whom was refused, not from a
	 * member after their removal. Users no add names (this device before its
	 * genesis, notes to self) are not judged here: the gate admits devices.
	 */
	counts(user: string, hlc: { wall: number; counter: number }, id: string): boolean {
		if (this.#refusedOnly.has(user)) return false;
		if (!this.#log.state.spans.has(user)) return true;
		return countsAt(this.#log.state, user, { hlc, id, signer: user });
	}

	/** Whether `counts` may say no to anyone (so a reducer needs to ask it). */
	get excludesAnyone(): boolean {
		if (this.#refusedOnly.size > 0) return true;
		for (const spans of this.#log.state.spans.values()) {
			if (spans.some((span) => span.to !== null)) return true;
		}
		return false;
	}

	/**
	 * Rule 6: an add of the signer's own user (by a device of theirs, or by
	 * a new device the add lists and certifies), other than the genesis shape.
	 */
	#ownDeviceAdd(op: MemberAddOp, signer: string): boolean {
		if (op.user === this.creator && op.role === 'owner') return false;
		const owner = this.#owners.get(signer);
		return owner === undefined ? op.devices.includes(signer) : owner === op.user;
	}

	/** The user an add is signed by: the creator for its genesis (rule 1), else the device's owner. */
	#addSigner(op: MemberAddOp, signer: string): string | undefined {
		const genesis = op.user === this.creator && op.role === 'owner' && op.devices.includes(signer);
		return genesis ? op.user : this.#owners.get(signer);
	}

	#record(op: MembershipOp): boolean {
		const before = this.#log.revision;
		this.#log.add(op);
		if (op.kind === 'add') this.#addTargets.add(op.user);
		const refusedOnly = new Set<string>();
		for (const user of this.#addTargets) {
			if (!this.#log.state.spans.has(user)) refusedOnly.add(user);
		}
		this.#refusedOnly = refusedOnly;
		return this.#log.revision !== before;
	}

	/**
	 * Apply a role change or a removal (member.remove: leaving, when the user
	 * is the signer's) signed by `signer` (a device). Returns whether the
	 * membership changed; a change the rules refuse is kept (a later op may
	 * change what it meant) but changes nothing.
	 */
	applyChange(op: MemberRoleOp | MemberRemoveOp, signer: string): boolean {
		const signerUser = this.#owners.get(signer);
		if (signerUser === undefined) return false;
		const changed = this.#record(membershipOp(op, signerUser));
		if (changed) this.version++;
		return changed;
	}

	/** Whether `device` may admit and add members. */
	canAdd(device: string): boolean {
		const user = this.#owners.get(device);
		const role = user === undefined ? undefined : this.roleOf(user);
		return role === 'owner' || role === 'admin';
	}

	/**
	 * Whether this add may apply now (rules 1, 2, 5), not counting certificates.
	 * `signer` is the verified signing device of the envelope carrying it.
	 */
	authorised(op: MemberAddOp, signer: string): boolean {
		if (this.#ownDeviceAdd(op, signer)) return this.#log.state.spans.has(op.user);
		const signerUser = this.#addSigner(op, signer);
		if (signerUser === undefined) return false;
		if (!this.#log.wouldAccept(membershipOp(op, signerUser))) return false;
		return this.#members.has(op.user) || this.#members.size < MAX_MEMBERS;
	}

	/**
	 * An add `authorised` refuses, of an identity (signer, id) of which the
	 * log holds another variant (its signer equivocated): when this one is
	 * the variant the replay prefers, the replay must hold it, and refuse it,
	 * on every replica, whichever variant arrived first. Its devices are not
	 * added. Returns whether the membership changed.
	 */
	async supersede(op: MemberAddOp, signer: string): Promise<boolean> {
		if (this.#ownDeviceAdd(op, signer)) return false;
		const signerUser = this.#addSigner(op, signer);
		if (signerUser === undefined) return false;
		const variant = membershipOp(op, signerUser);
		if (!this.#log.supersedes(variant)) return false;
		if ((await certified(op)).devices.size === 0) return false;
		const changed = this.#record(variant);
		if (changed) this.version++;
		return changed;
	}

	/**
	 * Apply an add signed by `signer`. Returns whether the roster changed.
	 * Call only when `authorised` holds; certificates are checked here.
	 */
	async apply(op: MemberAddOp, signer: string): Promise<boolean> {
		if (!this.authorised(op, signer)) return false;
		const own = this.#ownDeviceAdd(op, signer);
		const { devices, sskKey } = await certified(op);
		if (own) for (const device of devices.keys()) if (device !== signer) devices.delete(device);
		if (devices.size === 0) return false;
		// Another add may have filled the roster while certificates were checked.
		if (!this.authorised(op, signer)) return false;
		const signerUser = own ? op.user : (this.#addSigner(op, signer) as string);
		let member = this.#members.get(op.user);
		let changed = false;
		if (!member) {
			member = {
				user: op.user,
				name: '',
				nameAt: null,
				devices: new Map(),
				sskKeys: new Set()
			};
			this.#members.set(op.user, member);
			changed = true;
		}
		for (const [device, dh] of devices) {
			const owner = this.#owners.get(device);
			if (owner !== undefined && owner !== op.user) continue; // a device belongs to one user
			if (!member.devices.has(device)) {
				member.devices.set(device, dh);
				this.#owners.set(device, op.user);
				changed = true;
			}
		}
		if (sskKey !== null && !member.sskKeys.has(sskKey)) {
			member.sskKeys.add(sskKey);
			changed = true;
		}
		const at = { hlc: opHlc(op), id: op.id };
		if (
			op.name !== undefined &&
			(member.nameAt === null ||
				(compareHlc(at.hlc, member.nameAt.hlc) || (at.id < member.nameAt.id ? -1 : 1)) > 0)
		) {
			member.nameAt = at;
			if (member.name !== op.name) changed = true;
			member.name = op.name;
		}
		if (!own && this.#record(membershipOp(op, signerUser))) changed = true;
		if (changed) this.version++;
		return changed;
	}
}

/** The devices an add lists with a valid certificate chain (rule 3), and the self-signing key. */
async function certified(
	op: MemberAddOp
): Promise<{ devices: Map<string, string>; sskKey: string | null }> {
	const devices = new Map<string, string>();
	let sskKey: string | null = null;
	if (op.ssk) {
		for (const cert of op.certs ?? []) {
			try {
				const body = await verifyDeviceChain(op.user, op.ssk, cert);
				if (op.devices.includes(body.device)) devices.set(body.device, body.dh);
				sskKey ??= sskKeyOf(op.ssk.body);
			} catch {
				// rule 3: an uncertified device is ignored
			}
		}
	}
	return { devices, sskKey };
}

/** The key a (verified) self-signing certificate certifies. */
function sskKeyOf(body: string): string | null {
	try {
		const key = (JSON.parse(body) as { key?: unknown }).key;
		return typeof key === 'string' ? key : null;
	} catch {
		return null;
	}
}
