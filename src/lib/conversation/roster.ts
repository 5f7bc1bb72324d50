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
 *  4. Several valid adds of one user merge: the union of devices (rule 7
 *     says which are active), the name of the latest add by (hlc, id); the
 *     role is the replay's.
 *  5. At most MAX_MEMBERS users.
 *  6. Own devices. An add of user U signed by one of U's devices (known
 *     here, or unknown but listed in the add with a valid chain: a device
 *     linked or restored later) is no membership change and never enters
 *     the replay, whatever role it names. It must list its signing device
 *     with a valid chain (signing the envelope proves the device's key is
 *     held), and adds that device; besides, it re-certifies the devices
 *     known here as U's that it lists with a valid chain (rule 7). Unknown
 *     devices other than the signer do not join (nobody can claim a device
 *     of someone else's): their certificates are kept, and count once the
 *     device joins by an add of its own, so the outcome does not depend on
 *     which came first. It counts once some valid add brought U in (before
 *     that it waits). The creator's own add as owner is excluded: that
 *     shape is the genesis.
 *  7. Revocation by a newer self-signing key. Of the SSK certificates in
 *     the adds applied for a user, the one under the newest master key,
 *     then with the greatest `issued` (ties: the greater key) names the
 *     user's current SSK (certificates.ts `compareSsk`). A device of the
 *     user certified under it is active; one certified only under older
 *     SSKs is revoked: the user removed it by rotating the SSK and
 *     re-certifying the devices they kept (rule 6). A revoked device is in
 *     no device list (lockboxes, retirement tags) but keeps its owner (what
 *     it signed before stays attributed). It adds nobody: for rules 2 and 6
 *     it is as an unknown device, and only a certificate under the current
 *     SSK, which it does not hold, makes it active again. `sskChangedAt`
 *     stamps the latest SSK change, so the conversation opens a new
 *     generation: the current one's key was sealed to the revoked device.
 *
 * Devices only ever join the known ones (an add once applied keeps its
 * devices known, so what they signed can be attributed), and leave the
 * active ones only by revocation (rule 7), which depends on the set of
 * adds held, not their order; which users are members and with which role
 * is the replay's answer for the ops held. A `member.remove` (removal, or
 * leaving) ends a membership span in the replay; the removed user's devices
 * stay known (what they signed before stays attributed), and what they sign
 * after counts for nothing. Keys rotate in a new generation (generation.ts),
 * so a removed or revoked device also reads nothing new.
 */
import { compareHlc, type Hlc } from './hlc';
import { countsAt, MembershipLog, type MembershipOp, type MembershipState } from './membership';
import {
	opHlc,
	type MemberAddOp,
	type MemberRemoveOp,
	type MemberRoleOp,
	type Role
} from './operations';
import {
	compareSsk,
	SskCertBody,
	sskRank,
	verifyDeviceChain,
	type SskRank
} from '../identity/certificates';

export const MAX_MEMBERS = 256;

const RANK: Record<Role, number> = { member: 0, admin: 1, owner: 2 };

export interface RosterMember {
	user: string;
	name: string;
	role: Role;
	/**
	 * Active device id (Ed25519 public key, base64url) → its X25519 key
	 * (base64url): the devices certified under the member's current
	 * self-signing key (rule 7).
	 */
	devices: ReadonlyMap<string, string>;
	/** Devices of the member certified only under older self-signing keys (rule 7). */
	revoked: ReadonlySet<string>;
	/**
	 * Self-signing keys (base64url) that certified the member's devices here.
	 * A new one (the member rotated it, or reset the account's devices)
	 * changes their safety number.
	 */
	sskKeys: ReadonlySet<string>;
}

/** Where an op stands in the total order of ops: (hlc, id). */
export interface OpStamp {
	hlc: Hlc;
	id: string;
}

function compareOpStamps(a: OpStamp, b: OpStamp): number {
	return compareHlc(a.hlc, b.hlc) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** A device certificate, reduced to what the roster keeps. */
interface DeviceCert {
	dh: string;
	issued: number;
}

/** Of two certificates of one device under one SSK, the one kept: the later, then the greater dh. */
function laterCert(a: DeviceCert, b: DeviceCert): DeviceCert {
	if (a.issued !== b.issued) return a.issued > b.issued ? a : b;
	return a.dh >= b.dh ? a : b;
}

interface MutableMember {
	user: string;
	name: string;
	nameAt: OpStamp | null;
	/** Devices known as the user's (`#owners`), active or revoked. */
	known: Set<string>;
	/**
	 * Device → SSK key → its certificate under that SSK, from the adds
	 * applied; also of devices not (yet) known as the user's (rule 6).
	 */
	certs: Map<string, Map<string, DeviceCert>>;
	/** SSK key → its rank (the greatest `issued` seen for it), and the least stamp of the adds carrying it. */
	ssks: Map<string, { rank: SskRank; first: OpStamp }>;
	sskKeys: Set<string>;
	/** Derived (`#derive`): the current SSK, the active and the revoked devices. */
	current: string | null;
	devices: ReadonlyMap<string, string>;
	revoked: ReadonlySet<string>;
}

/** The first add of a user's current SSK, when they had more than one (rule 7). */
function sskChangeOf(member: MutableMember): OpStamp | null {
	if (member.ssks.size < 2 || member.current === null) return null;
	return member.ssks.get(member.current)?.first ?? null;
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

	/** The user a device belongs to, if it is a member device (also when revoked: rule 7). */
	ownerOf(device: string): string | undefined {
		return this.#owners.get(device);
	}

	/** Whether `device` is a known device that its user's current self-signing key does not certify (rule 7). */
	revokedDevice(device: string): boolean {
		const owner = this.#owners.get(device);
		return owner !== undefined && this.#members.get(owner)?.revoked.has(device) === true;
	}

	/** A user's current self-signing key (rule 7), null when no add of theirs applied. */
	currentSsk(user: string): string | null {
		return this.#members.get(user)?.current ?? null;
	}

	/**
	 * The latest change of self-signing key (rule 7): over the users with
	 * more than one SSK known, the greatest (hlc, id) of the least stamp of
	 * the adds carrying that user's current SSK. Null while nobody ever
	 * had more than one.
	 */
	sskChangedAt(): OpStamp | null {
		let latest: OpStamp | null = null;
		for (const member of this.#members.values()) {
			const at = sskChangeOf(member);
			if (at !== null && (latest === null || compareOpStamps(at, latest) > 0)) latest = at;
		}
		return latest && { hlc: { ...latest.hlc }, id: latest.id };
	}

	#view(record: MutableMember, role: Role): RosterMember {
		return {
			user: record.user,
			name: record.name,
			role,
			devices: record.devices,
			revoked: record.revoked,
			sskKeys: record.sskKeys
		};
	}

	/** A user's record (name, devices), also after they stopped being a member. */
	member(user: string): RosterMember | undefined {
		const listed = this.members().find((m) => m.user === user);
		if (listed) return listed;
		const record = this.#members.get(user);
		return record && this.#view(record, 'member');
	}

	#membersCache: { version: number; list: readonly RosterMember[] } | null = null;

	/** The current members, owners first, then admins, then by name (shared: do not mutate). */
	members(): readonly RosterMember[] {
		if (this.#membersCache?.version === this.version) return this.#membersCache.list;
		const list: RosterMember[] = [];
		for (const [user, state] of this.#log.state.members) {
			const record = this.#members.get(user);
			if (record) list.push(this.#view(record, state.role));
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
		for (const member of this.#members.values()) if (member.revoked.size > 0) return true;
		return false;
	}

	/**
	 * Rule 7 for what a device signs: an op of a revoked device stamped after
	 * its user's self-signing key changed (the first add carrying the new key)
	 * counts for nothing. What it signed before stays. (A removed device can
	 * stamp an op earlier than the change, as a removed member can: the new
	 * generation, which it cannot read, is what ends it.)
	 */
	deviceCounts(device: string, hlc: { wall: number; counter: number }, id: string): boolean {
		const owner = this.#owners.get(device);
		const member = owner === undefined ? undefined : this.#members.get(owner);
		if (!member?.revoked.has(device)) return true;
		const changed = sskChangeOf(member);
		return changed === null || compareOpStamps({ hlc, id }, changed) < 0;
	}

	/**
	 * Rule 6: an add of the signer's own user (by a device of theirs, or by
	 * a new device the add lists and certifies), other than the genesis shape.
	 * A revoked device (rule 7) is as an unknown one: its add counts only
	 * through the chain it lists for itself.
	 */
	#ownDeviceAdd(op: MemberAddOp, signer: string): boolean {
		if (op.user === this.creator && op.role === 'owner') return false;
		const owner = this.#owners.get(signer);
		return owner === undefined ? op.devices.includes(signer) : owner === op.user;
	}

	/**
	 * The user an add is signed by: the creator for its genesis (rule 1),
	 * else the device's owner, unless the device is revoked (rule 7).
	 */
	#addSigner(op: MemberAddOp, signer: string): string | undefined {
		const genesis = op.user === this.creator && op.role === 'owner' && op.devices.includes(signer);
		if (genesis) return op.user;
		return this.revokedDevice(signer) ? undefined : this.#owners.get(signer);
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

	/** Whether `device` may admit and add members (not when revoked: rule 7). */
	canAdd(device: string): boolean {
		if (this.revokedDevice(device)) return false;
		const user = this.#owners.get(device);
		const role = user === undefined ? undefined : this.roleOf(user);
		return role === 'owner' || role === 'admin';
	}

	/**
	 * Whether this add may apply now (rules 1, 2, 5, 7), not counting certificates.
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
		const { devices, ssk } = await certified(op);
		// Rule 6: the signer vouches for itself, then re-certifies.
		if (own && !devices.has(signer)) return false;
		if (devices.size === 0 || ssk === null) return false;
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
				known: new Set(),
				certs: new Map(),
				ssks: new Map(),
				sskKeys: new Set(),
				current: null,
				devices: new Map(),
				revoked: new Set()
			};
			this.#members.set(op.user, member);
			changed = true;
		}
		const at: OpStamp = { hlc: opHlc(op), id: op.id };
		const seen = member.ssks.get(ssk.key);
		if (seen === undefined) {
			member.ssks.set(ssk.key, { rank: ssk, first: at });
			member.sskKeys.add(ssk.key);
			changed = true;
		} else {
			if (compareSsk(ssk, seen.rank) > 0) seen.rank = ssk;
			if (compareOpStamps(at, seen.first) < 0) seen.first = at;
		}
		for (const [device, cert] of devices) {
			const owner = this.#owners.get(device);
			if (owner !== undefined && owner !== op.user) continue; // a device belongs to one user
			let bySsk = member.certs.get(device);
			if (!bySsk) member.certs.set(device, (bySsk = new Map()));
			const held = bySsk.get(ssk.key);
			bySsk.set(ssk.key, held ? laterCert(held, cert) : cert);
			// Rule 6: an unknown device other than the signer does not join.
			if (owner === undefined && (!own || device === signer)) {
				member.known.add(device);
				this.#owners.set(device, op.user);
				changed = true;
			}
		}
		if (this.#derive(member)) changed = true;
		if (
			op.name !== undefined &&
			(member.nameAt === null || compareOpStamps(at, member.nameAt) > 0)
		) {
			member.nameAt = at;
			if (member.name !== op.name) changed = true;
			member.name = op.name;
		}
		if (!own && this.#record(membershipOp(op, signerUser))) changed = true;
		if (changed) this.version++;
		return changed;
	}

	/**
	 * Rule 7: the member's current SSK, and which of their devices it
	 * certifies. Returns whether that, or the stamp of the SSK change, moved.
	 */
	#derive(member: MutableMember): boolean {
		const changeBefore = sskChangeOf(member);
		// The newest master, then the greatest `issued`, then the greater key
		// (compareSsk): whatever the order seen.
		let current: string | null = null;
		let best: SskRank | null = null;
		for (const [key, { rank }] of member.ssks) {
			if (best === null || compareSsk(rank, best) > 0) {
				current = key;
				best = rank;
			}
		}
		const devices = new Map<string, string>();
		const revoked = new Set<string>();
		for (const device of [...member.known].sort()) {
			const cert = current === null ? undefined : member.certs.get(device)?.get(current);
			if (cert) devices.set(device, cert.dh);
			else revoked.add(device);
		}
		member.current = current;
		const changeAfter = sskChangeOf(member);
		let changed =
			devices.size !== member.devices.size ||
			revoked.size !== member.revoked.size ||
			(changeBefore === null
				? changeAfter !== null
				: changeAfter === null || compareOpStamps(changeBefore, changeAfter) !== 0);
		for (const [device, dh] of devices) if (member.devices.get(device) !== dh) changed = true;
		member.devices = devices;
		member.revoked = revoked;
		return changed;
	}
}

/**
 * The devices an add lists with a valid certificate chain (rule 3), with
 * their certificates, and the self-signing key that certified them.
 */
async function certified(op: MemberAddOp): Promise<{
	devices: Map<string, DeviceCert>;
	ssk: SskRank | null;
}> {
	const devices = new Map<string, DeviceCert>();
	let ssk: SskRank | null = null;
	if (op.ssk) {
		for (const cert of op.certs ?? []) {
			try {
				const body = await verifyDeviceChain(op.user, op.ssk, cert);
				if (!op.devices.includes(body.device)) continue;
				const found = { dh: body.dh, issued: body.issued };
				const held = devices.get(body.device);
				devices.set(body.device, held ? laterCert(held, found) : found);
				ssk ??= sskOf(op.ssk.body);
			} catch {
				// rule 3: an uncertified device is ignored
			}
		}
	}
	return { devices, ssk };
}

/** The rank of a (verified) self-signing certificate: its key, when it was issued, its masters. */
function sskOf(body: string): SskRank | null {
	try {
		return sskRank(SskCertBody.parse(JSON.parse(body)));
	} catch {
		return null;
	}
}
