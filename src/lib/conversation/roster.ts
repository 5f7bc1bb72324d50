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
 *     (or more devices of them). Only an owner may add an owner.
 *  3. Every device an add lists must come with a certificate chain, master
 *     (= user id) → self-signing key → device (identity/certificates.ts).
 *     Devices without a valid chain are ignored; an add with none left
 *     changes nothing.
 *  4. Several valid adds of one user merge: the union of devices, the
 *     highest role, the name of the latest add by (hlc, id).
 *  5. At most MAX_MEMBERS users.
 *
 * Validity only ever grows with the roster (adds never make an earlier add
 * invalid), so the roster is the least fixpoint of these rules: independent
 * of arrival order. Removal and demotion (member.remove, member.role) come
 * with generations and key rotation; until then they are held by the
 * reducer and change nothing here.
 */
import { compareHlc } from './hlc';
import { opHlc, type MemberAddOp, type Role } from './operations';
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
	role: Role;
	devices: Map<string, string>;
	sskKeys: Set<string>;
}

export class Roster {
	readonly creator: string | null;
	readonly #members = new Map<string, MutableMember>();
	readonly #owners = new Map<string, string>();
	/** Bumped on every change, so callers can cache what they derive. */
	version = 0;

	constructor(creator: string | null) {
		this.creator = creator;
	}

	get size(): number {
		return this.#members.size;
	}

	/** The user a device belongs to, if it is a member device. */
	ownerOf(device: string): string | undefined {
		return this.#owners.get(device);
	}

	member(user: string): RosterMember | undefined {
		return this.#members.get(user);
	}

	members(): RosterMember[] {
		return [...this.#members.values()].sort(
			(a, b) => RANK[b.role] - RANK[a.role] || a.name.localeCompare(b.name)
		);
	}

	roleOf(user: string): Role | undefined {
		return this.#members.get(user)?.role;
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
		const genesis = op.user === this.creator && op.role === 'owner' && op.devices.includes(signer);
		if (!genesis) {
			const signerUser = this.#owners.get(signer);
			const signerRole = signerUser === undefined ? undefined : this.roleOf(signerUser);
			if (signerRole !== 'owner' && signerRole !== 'admin') return false;
			if (op.role === 'owner' && signerRole !== 'owner') return false;
		}
		return this.#members.has(op.user) || this.#members.size < MAX_MEMBERS;
	}

	/**
	 * Apply an add signed by `signer`. Returns whether the roster changed.
	 * Call only when `authorised` holds; certificates are checked here.
	 */
	async apply(op: MemberAddOp, signer: string): Promise<boolean> {
		if (!this.authorised(op, signer)) return false;
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
		if (devices.size === 0) return false;
		// Another add may have filled the roster while certificates were checked.
		if (!this.authorised(op, signer)) return false;
		let member = this.#members.get(op.user);
		let changed = false;
		if (!member) {
			member = {
				user: op.user,
				name: '',
				nameAt: null,
				role: op.role,
				devices: new Map(),
				sskKeys: new Set()
			};
			this.#members.set(op.user, member);
			changed = true;
		}
		if (RANK[op.role] > RANK[member.role]) {
			member.role = op.role;
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
		if (changed) this.version++;
		return changed;
	}
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
