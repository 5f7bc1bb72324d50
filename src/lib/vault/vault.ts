/**
 * The account vault: one Automerge document per account, shared by the
 * account's own devices only (a later change syncs it between them). It holds
 * the profile, the conversation index with each conversation's keys, settings
 * and read positions.
 *
 * Persistence: each Automerge change travels as the plaintext of an envelope
 * in the vault's own envelope doc (room id derived from the account key), so
 * the vault is stored and synced exactly like a conversation, encrypted under
 * the account key. Plaintext format: {"vault":1,"changes":[base64url...]}.
 *
 * Fields nobody co-edits (names, ids, keys) are ImmutableString: a plain
 * string would become collaborative text, heavier and with merge semantics
 * nobody wants for a key.
 */
import { z } from 'zod';
import {
	deriveKey,
	fromBase64Url,
	newRoomId,
	newSecretKey,
	randomBytes,
	toBase64Url,
	utf8Decode,
	utf8Encode,
	type ConversationId,
	type RoomId,
	type SecretKey
} from '../crypto';
import { loadAutomerge, type AutomergeModule } from './automerge';
import type { Doc, ImmutableString } from '@automerge/automerge/slim';

export type ConversationKind = 'notes' | 'group';

interface VaultConversation {
	name: ImmutableString;
	kind: ImmutableString;
	roomId: ImmutableString;
	epoch: number;
	keys: { [epoch: string]: ImmutableString };
	createdAt: number;
	/** The user who created it (its first owner); absent for the account's own early ones. */
	creator?: ImmutableString;
	/** Set when someone other than the inviter admitted this account: see ConversationEntry. */
	invite?: { id: ImmutableString; device: ImmutableString; inviter: ImmutableString };
	/** Muted: no push notifications (the last writer wins). */
	muted?: boolean;
	/** Pinned to the top of the list (the last writer wins). */
	pinned?: boolean;
	/** Archived: out of the main list, under "Archived" (the last writer wins). */
	archived?: boolean;
	/**
	 * Every generation held, by epoch: its room and the device that opened it
	 * (absent for the first). Absent before the first rotation: then the one
	 * generation is `roomId` at `epoch`.
	 */
	rooms?: { [epoch: string]: { room: ImmutableString; opener?: ImmutableString } };
	/**
	 * Rooms of the current epoch this account followed before it learnt of
	 * the generation every replica follows (two admins opened one at once):
	 * room → its key, kept until what was written there is re-published.
	 */
	abandoned?: { [room: string]: ImmutableString };
}

interface VaultShape {
	profile: { displayName: ImmutableString };
	conversations: { [id: string]: VaultConversation };
	/** Per device, per conversation: "hlcString opId" of the last message seen. */
	read: { [deviceId: string]: { [conversationId: string]: ImmutableString } };
	/**
	 * Contacts the user verified: user id → that contact's half of the safety
	 * number when it was verified (identity/safety-number.ts).
	 */
	verified?: { [userId: string]: ImmutableString };
	/** People the user blocked: user id → their name when blocked. */
	blocked?: { [userId: string]: ImmutableString };
	/**
	 * The account's devices: device id → its name (set once, by the device
	 * itself or the device that linked it), when it was added and when it
	 * was last seen (each device moves its own, at most once an hour).
	 */
	devices?: {
		[deviceId: string]: {
			name: ImmutableString;
			added: number;
			seen: number;
			/** Its X25519 key (base64url): what a device removal seals the new keys to. */
			dh?: ImmutableString;
		};
	};
}

/** A device of the account, as Settings → Devices lists it. */
export interface AccountDevice {
	id: string;
	name: string;
	added: number;
	/** When the device last opened the app (ms since the epoch). */
	seen: number;
	/** Its X25519 key (base64url), when known. */
	dh?: string;
}

/** Up to this many changes, Vault.applyChanges hands Automerge one a call (see there). */
export const ONE_A_CALL_MAX = 32;

/** A device's "last seen" moves at most this often (each move is a vault change). */
export const DEVICE_SEEN_STEP_MS = 60 * 60 * 1000;

/** A conversation as the rest of the app sees it (plain values). */
export interface ConversationEntry {
	id: ConversationId;
	name: string;
	kind: ConversationKind;
	roomId: RoomId;
	epoch: number;
	keys: Map<number, SecretKey>;
	createdAt: number;
	/** The creator's user id; absent means this account. */
	creator?: string;
	/**
	 * The invitation this account joined by, kept when the admission came from a
	 * device other than the inviter's: until the conversation shows that
	 * invitation recorded by the inviter's device (`device`), nothing proves it is
	 * the conversation the inviter (`inviter`, a display name) shared.
	 */
	invite?: { id: string; device: string; inviter: string };
	/** The user muted it: the relay pushes nothing for it. */
	muted?: boolean;
	/** The user pinned it to the top of the list. */
	pinned?: boolean;
	/** The user archived it: it leaves the main list for "Archived". */
	archived?: boolean;
	/**
	 * Every generation this account holds, by epoch (the current one included):
	 * its room and the device that opened it (null for the first).
	 */
	generations?: Map<number, { room: RoomId; opener: string | null }>;
	/** Abandoned rooms of the current epoch and their keys (see VaultConversation). */
	abandoned?: Map<RoomId, SecretKey>;
}

/**
 * A new conversation's entry: its first generation (epoch 0) in a fresh room
 * under a fresh key. `creator`: the user id of the account making it (absent
 * reads as this account).
 */
export function newConversationEntry(
	name: string,
	kind: ConversationKind,
	creator?: string
): ConversationEntry {
	const roomId = newRoomId();
	return {
		id: roomId as string as ConversationId,
		name,
		kind,
		roomId,
		epoch: 0,
		keys: new Map([[0, newSecretKey()]]),
		createdAt: Date.now(),
		...(creator === undefined ? {} : { creator })
	};
}

export interface ReadPosition {
	hlc: string;
	id: string;
}

/** A read position as the vault stores it: "hlc id", which sorts as the positions do. */
function positionText(position: ReadPosition): string {
	return `${position.hlc} ${position.id}`;
}

/** The further of two read positions (`b` when `a` is none). */
export function furthestPosition(
	a: ReadPosition | null | undefined,
	b: ReadPosition
): ReadPosition {
	return a && positionText(a) >= positionText(b) ? a : b;
}

const VaultPlaintext = z.object({
	vault: z.literal(1),
	changes: z.array(z.string().regex(/^[A-Za-z0-9_-]*$/))
});

export function encodeVaultChanges(changes: Uint8Array[]): Uint8Array {
	return utf8Encode(JSON.stringify({ vault: 1, changes: changes.map(toBase64Url) }));
}

export function decodeVaultChanges(plaintext: Uint8Array): Uint8Array[] {
	const parsed = VaultPlaintext.parse(JSON.parse(utf8Decode(plaintext)));
	return parsed.changes.map(fromBase64Url);
}

/** The vault's envelope doc has a room id derived from the account key. */
export function vaultRoomId(accountKey: SecretKey): RoomId {
	return toBase64Url(deriveKey(accountKey, 'kith/vault-room', 16)) as RoomId;
}

function str(value: ImmutableString | string | undefined): string {
	return value === undefined ? '' : value.toString();
}

export class Vault {
	#doc: Doc<VaultShape>;
	readonly #A: AutomergeModule;

	private constructor(A: AutomergeModule, doc: Doc<VaultShape>) {
		this.#A = A;
		this.#doc = doc;
	}

	/** An empty vault. Each tab uses its own random actor, so tabs never reuse a sequence number. */
	static async open(): Promise<Vault> {
		const A = await loadAutomerge();
		const actor = toBase64Hex(randomBytes(16));
		return new Vault(A, A.init<VaultShape>({ actor }));
	}

	/**
	 * Apply changes from storage or another tab/device. Unknown dependencies
	 * wait inside Automerge.
	 *
	 * Automerge 3.5.0, given in one call the delete of a key's winning value
	 * and a concurrent losing put on that key, leaves the deleted value on
	 * show in the document's view (what it saves is right), so a device would
	 * show what a fresh one does not. So: a vault holding nothing yet takes a
	 * batch at once (nothing is on show to go stale); a few changes go one a
	 * call (a call costs about a quarter of a millisecond); a larger batch
	 * goes at once and the document is then loaded again from what it saves
	 * (about 16 ms for 3,000 changes, against 0.7 s one a call).
	 */
	applyChanges(changes: Uint8Array[]): boolean {
		if (changes.length === 0) return false;
		const A = this.#A;
		const heads = A.getHeads(this.#doc);
		if (heads.length === 0) {
			[this.#doc] = A.applyChanges(this.#doc, changes);
		} else if (changes.length <= ONE_A_CALL_MAX) {
			for (const change of changes) [this.#doc] = A.applyChanges(this.#doc, [change]);
		} else {
			[this.#doc] = A.applyChanges(this.#doc, changes);
			// What it saves keeps the changes still waiting for a dependency.
			this.#doc = A.load<VaultShape>(A.save(this.#doc), { actor: A.getActorId(this.#doc) });
		}
		return A.getHeads(this.#doc).join() !== heads.join();
	}

	#change(fn: (doc: VaultShape) => void): Uint8Array[] {
		const before = this.#A.getHeads(this.#doc);
		this.#doc = this.#A.change(this.#doc, fn);
		return this.#A.getChanges(this.#A.view(this.#doc, before), this.#doc);
	}

	/** The first change of a new account: profile and the Notes to self conversation. */
	initialise(displayName: string, notes: ConversationEntry): Uint8Array[] {
		const A = this.#A;
		return this.#change((doc) => {
			doc.profile = { displayName: new A.ImmutableString(displayName) };
			doc.conversations = {};
			// Every map two devices may write to is made here, once: a map made
			// concurrently on two devices is a conflict Automerge settles by
			// keeping one of them whole, losing the other's entries.
			doc.read = {};
			doc.verified = {};
			doc.blocked = {};
			doc.devices = {};
			doc.conversations[notes.id] = toVaultConversation(A, notes);
		});
	}

	addConversation(entry: ConversationEntry): Uint8Array[] {
		const A = this.#A;
		return this.#change((doc) => {
			doc.conversations ??= {};
			doc.conversations[entry.id] = toVaultConversation(A, entry);
		});
	}

	/**
	 * Move a conversation to its next generation (its key, room and opener):
	 * the older generations stay listed for reading. Moving back or twice
	 * changes nothing. Moving to another room of the current epoch (another
	 * opener's generation won) replaces it, and keeps the room left as
	 * `abandoned` until `forgetAbandoned`.
	 */
	moveConversation(
		id: ConversationId,
		next: { room: RoomId; epoch: number; key: SecretKey; opener: string }
	): Uint8Array[] {
		const held = this.#held(id);
		if (!held) return [];
		const current = currentGeneration(held.c);
		if (current.epoch > next.epoch) return [];
		const refollow = current.epoch === next.epoch;
		if (refollow && current.roomId === next.room) return [];
		const A = this.#A;
		return this.#change((doc) => {
			const c = this.#writable(doc, id, held);
			if (!c) return;
			if (refollow) {
				const key = c.keys[String(current.epoch)];
				if (key !== undefined) {
					c.abandoned ??= {};
					c.abandoned[current.roomId] = new A.ImmutableString(str(key));
				}
			}
			c.rooms ??= { [String(c.epoch)]: { room: new A.ImmutableString(str(c.roomId)) } };
			c.rooms[String(next.epoch)] = {
				room: new A.ImmutableString(next.room),
				opener: new A.ImmutableString(next.opener)
			};
			c.keys[String(next.epoch)] = new A.ImmutableString(toBase64Url(next.key));
			c.roomId = new A.ImmutableString(next.room);
			c.epoch = next.epoch;
		});
	}

	/** Forget a conversation's abandoned rooms (what was written there is re-published). */
	forgetAbandoned(id: ConversationId): Uint8Array[] {
		const held = this.#held(id);
		if (!held) return [];
		const { c } = held;
		const rooms = Object.keys(c.abandoned ?? {});
		const { epochs } = this.#rivalRooms(c);
		if (rooms.length === 0 && epochs.length === 0 && !held.rivals) return [];
		const A = this.#A;
		// Each epoch with rivals, as it shows here: writing it again settles the conflict.
		const settled = epochs.flatMap((epoch) => {
			const generation = c.rooms?.[epoch];
			const key = c.keys?.[epoch];
			return generation && key !== undefined
				? [{ epoch, room: str(generation.room), opener: generation.opener, key: str(key) }]
				: [];
		});
		return this.#change((doc) => {
			const target = this.#writable(doc, id, held);
			if (!target) return;
			// The rooms known here, not the map: one another device abandons meanwhile stays.
			if (target.abandoned) for (const room of rooms) delete target.abandoned[room];
			for (const { epoch, room, opener, key } of settled) {
				if (!target.rooms) continue;
				target.rooms[epoch] = {
					room: new A.ImmutableString(room),
					...(opener === undefined ? {} : { opener: new A.ImmutableString(str(opener)) })
				};
				target.keys[epoch] = new A.ImmutableString(key);
			}
		});
	}

	/** Forget the generations before `epoch` (retired): their rooms and keys leave the vault. */
	retireGenerations(id: ConversationId, epoch: number): Uint8Array[] {
		const held = this.#held(id);
		if (!held) return [];
		const old = Object.keys(held.c.keys).filter((e) => Number(e) < epoch);
		if (old.length === 0) return [];
		return this.#change((doc) => {
			const c = this.#writable(doc, id, held);
			if (!c) return;
			for (const e of old) {
				delete c.keys[e];
				if (c.rooms) delete c.rooms[e];
			}
		});
	}

	setMuted(id: ConversationId, muted: boolean): Uint8Array[] {
		return this.#setFlag(id, 'muted', muted);
	}

	setPinned(id: ConversationId, pinned: boolean): Uint8Array[] {
		return this.#setFlag(id, 'pinned', pinned);
	}

	setArchived(id: ConversationId, archived: boolean): Uint8Array[] {
		return this.#setFlag(id, 'archived', archived);
	}

	/** A per-conversation setting (a boolean; the last writer wins). Nothing when it is so already. */
	#setFlag(id: ConversationId, flag: 'muted' | 'pinned' | 'archived', on: boolean): Uint8Array[] {
		const held = this.#held(id);
		if (!held || ((held.c[flag] === true) === on && !held.rivals)) return [];
		return this.#change((doc) => {
			const c = this.#writable(doc, id, held);
			if (c) c[flag] = on;
		});
	}

	setReadPosition(
		deviceId: string,
		conversation: ConversationId,
		position: ReadPosition
	): Uint8Array[] {
		const current = this.readPosition(deviceId, conversation);
		if (current && furthestPosition(current, position) === current) return [];
		const A = this.#A;
		return this.#change((doc) => {
			doc.read ??= {};
			doc.read[deviceId] ??= {};
			(doc.read[deviceId] as VaultShape['read'][string])[conversation] = new A.ImmutableString(
				positionText(position)
			);
		});
	}

	/** Marks a contact as verified at their current safety-number half, or (null) clears it. */
	setVerified(user: string, half: string | null): Uint8Array[] {
		const current = this.#doc.verified?.[user];
		if (half === null ? current === undefined : str(current) === half) return [];
		const A = this.#A;
		return this.#change((doc) => {
			if (half === null) {
				if (doc.verified) delete doc.verified[user];
				return;
			}
			doc.verified ??= {};
			doc.verified[user] = new A.ImmutableString(half);
		});
	}

	/**
	 * Record a device of the account (a new one, linked or restored) or that
	 * it was seen now. The name stays the first one given (numbered when
	 * another device has it: "Chrome on Linux (2)"); "seen" only moves
	 * forward, and by at least DEVICE_SEEN_STEP_MS. Its X25519 key, once given,
	 * stays.
	 */
	noteDevice(deviceId: string, name: string, now: number, dh?: string): Uint8Array[] {
		const current = this.#doc.devices?.[deviceId];
		const needsDh = dh !== undefined && current !== undefined && current.dh === undefined;
		if (current && now - current.seen < DEVICE_SEEN_STEP_MS && !needsDh) return [];
		const A = this.#A;
		return this.#change((doc) => {
			doc.devices ??= {};
			const held = doc.devices[deviceId];
			if (held) {
				if (held.seen < now) held.seen = now;
				if (held.dh === undefined && dh !== undefined) held.dh = new A.ImmutableString(dh);
			} else {
				// Two browsers of one kind get one name ("Chrome on Linux"): number the
				// later ones, so the list (and "Remove NAME") tells them apart.
				const taken = new Set(Object.values(doc.devices).map((d) => str(d.name)));
				let unique = name;
				for (let n = 2; taken.has(unique); n++) unique = `${name} (${n})`;
				doc.devices[deviceId] = { name: new A.ImmutableString(unique), added: now, seen: now };
				if (dh !== undefined) doc.devices[deviceId].dh = new A.ImmutableString(dh);
			}
		});
	}

	/**
	 * Drop removed devices from the list. (Their read positions stay: what
	 * the user read there stays read.)
	 */
	forgetDevices(ids: readonly string[]): Uint8Array[] {
		if (!ids.some((id) => this.#doc.devices?.[id])) return [];
		return this.#change((doc) => {
			for (const id of ids) if (doc.devices?.[id]) delete doc.devices[id];
		});
	}

	/** The account's devices, the most recently seen first. */
	devices(): AccountDevice[] {
		return Object.entries(this.#doc.devices ?? {})
			.map(([id, d]) => ({
				id,
				name: str(d.name),
				added: d.added,
				seen: d.seen,
				...(d.dh === undefined ? {} : { dh: str(d.dh) })
			}))
			.sort((a, b) => b.seen - a.seen || a.id.localeCompare(b.id));
	}

	/** Every change of the vault so far: what seeds it in a new room (a device removal). */
	allChanges(): Uint8Array[] {
		return this.#A.getAllChanges(this.#doc);
	}

	/** Block someone (their messages are hidden on every device of the account), or (null) unblock. */
	setBlocked(user: string, name: string | null): Uint8Array[] {
		const current = this.#doc.blocked?.[user];
		if (name === null ? current === undefined : current !== undefined) return [];
		const A = this.#A;
		return this.#change((doc) => {
			if (name === null) {
				if (doc.blocked) delete doc.blocked[user];
				return;
			}
			doc.blocked ??= {};
			doc.blocked[user] = new A.ImmutableString(name);
		});
	}

	/** Blocked people: user id → their name when blocked. */
	blockedUsers(): Map<string, string> {
		const out = new Map<string, string>();
		for (const [user, name] of Object.entries(this.#doc.blocked ?? {})) out.set(user, str(name));
		return out;
	}

	verifiedContacts(): Map<string, string> {
		const out = new Map<string, string>();
		for (const [user, half] of Object.entries(this.#doc.verified ?? {})) out.set(user, str(half));
		return out;
	}

	get displayName(): string {
		return str(this.#doc.profile?.displayName);
	}

	get isInitialised(): boolean {
		return this.#doc.profile !== undefined;
	}

	conversations(): ConversationEntry[] {
		const out: ConversationEntry[] = [];
		for (const id of Object.keys(this.#doc.conversations ?? {})) {
			const c = (this.#held(id) as { c: VaultConversation }).c;
			const keys = new Map<number, SecretKey>();
			for (const [epoch, key] of Object.entries(c.keys ?? {})) {
				keys.set(Number(epoch), fromBase64Url(str(key)) as SecretKey);
			}
			const kind = str(c.kind) === 'notes' ? 'notes' : 'group';
			const generations = new Map<number, { room: RoomId; opener: string | null }>();
			for (const [epoch, g] of Object.entries(c.rooms ?? {})) {
				generations.set(Number(epoch), {
					room: str(g.room) as RoomId,
					opener: g.opener === undefined ? null : str(g.opener)
				});
			}
			const current = currentGeneration(c);
			if (!generations.has(current.epoch)) {
				generations.set(current.epoch, { room: current.roomId as RoomId, opener: null });
			}
			const abandoned = new Map<RoomId, SecretKey>();
			for (const [room, key] of Object.entries(c.abandoned ?? {})) {
				abandoned.set(room as RoomId, fromBase64Url(str(key)) as SecretKey);
			}
			for (const [room, key] of this.#rivalRooms(c).rooms) {
				if (!abandoned.has(room) && room !== current.roomId) abandoned.set(room, key);
			}
			out.push({
				generations,
				...(abandoned.size > 0 ? { abandoned } : {}),
				id: id as ConversationId,
				name: str(c.name),
				kind,
				roomId: current.roomId as RoomId,
				epoch: current.epoch,
				keys,
				createdAt: c.createdAt,
				...(c.creator === undefined ? {} : { creator: str(c.creator) }),
				...(c.muted === true ? { muted: true } : {}),
				...(c.pinned === true ? { pinned: true } : {}),
				...(c.archived === true ? { archived: true } : {}),
				...(c.invite === undefined
					? {}
					: {
							invite: {
								id: str(c.invite.id),
								device: str(c.invite.device),
								inviter: str(c.invite.inviter)
							}
						})
			});
		}
		return out;
	}

	/**
	 * A conversation as held: the one object at its key or, when two devices
	 * added it at once (both accepted one invitation: two objects put at one
	 * key, and Automerge shows one whole), both merged (`mergeRivals`): what
	 * either device set or moved stays. `rivals` says whether they were merged.
	 */
	#held(id: string): { c: VaultConversation; rivals: boolean } | undefined {
		const all = this.#doc.conversations;
		const shown = all?.[id];
		if (!all || !shown) return undefined;
		const conflicts = this.#A.getConflicts(all, id);
		if (!conflicts || Object.keys(conflicts).length < 2) return { c: shown, rivals: false };
		return {
			c: mergeRivals(this.#A, this.#doc, shown, Object.keys(conflicts)),
			rivals: true
		};
	}

	/** Inside a change: the conversation to write to, one object again if it had rivals. */
	#writable(doc: VaultShape, id: string, held: { c: VaultConversation; rivals: boolean }) {
		if (held.rivals) doc.conversations[id] = copyConversation(this.#A, held.c);
		return doc.conversations[id];
	}

	/**
	 * Rooms that lost to another device's move to the same epoch made at the
	 * same time (both wrote `rooms[epoch]` and `keys[epoch]`; Automerge keeps
	 * one of each and the others as conflicts), each with the key the same
	 * device wrote. A device may have followed one of them and written there:
	 * like a room left by a refollow, it is abandoned, and stays listed until
	 * `forgetAbandoned`. Also returns the epochs that have such rivals.
	 */
	#rivalRooms(c: VaultConversation): { rooms: Map<RoomId, SecretKey>; epochs: string[] } {
		// A merged conversation (#held) lists its rivals' as abandoned already.
		if (!isDocObject(c)) return { rooms: new Map(), epochs: [] };
		return rivalRoomsOf(this.#A, c);
	}

	/** The furthest read position of this account over all its devices. */
	readPosition(deviceId: string | null, conversation: ConversationId): ReadPosition | null {
		let best: string | null = null;
		for (const [device, positions] of Object.entries(this.#doc.read ?? {})) {
			if (deviceId !== null && device !== deviceId) continue;
			if (positions?.[conversation] === undefined) continue;
			// Two tabs of a device marking at once put two values: Automerge keeps
			// one as the value and the other as a conflict. A read mark only moves
			// forward, so the furthest of them counts, on every replica alike.
			const conflicts = this.#A.getConflicts(positions, conversation);
			const values = conflicts ? Object.values(conflicts) : [positions[conversation]];
			for (const value of values) {
				const text = str(value as ImmutableString | string);
				if (best === null || text > best) best = text;
			}
		}
		if (best === null) return null;
		const [hlc, id] = best.split(' ');
		return hlc && id ? { hlc, id } : null;
	}
}

/**
 * A conversation's current generation: the furthest one listed with its key.
 * The `epoch` and `roomId` fields are single values, so two devices moving
 * at once can merge them from different moves (a lower epoch, or a room of
 * another epoch); `rooms` and `keys` merge per epoch, so the furthest epoch
 * listed in both, with its room, is the same on every device. Vaults from
 * before `rooms` fall back to the fields.
 */
function currentGeneration(c: VaultConversation): { epoch: number; roomId: string } {
	let best: { epoch: number; roomId: string } = { epoch: c.epoch, roomId: str(c.roomId) };
	for (const [epoch, generation] of Object.entries(c.rooms ?? {})) {
		const e = Number(epoch);
		if (c.keys?.[epoch] === undefined) continue;
		if (e > best.epoch || (e === best.epoch && Object.hasOwn(c.rooms ?? {}, String(best.epoch)))) {
			best = { epoch: e, roomId: str(generation.room) };
		}
	}
	return best;
}

function toVaultConversation(A: AutomergeModule, entry: ConversationEntry): VaultConversation {
	const keys: VaultConversation['keys'] = {};
	for (const [epoch, key] of entry.keys)
		keys[String(epoch)] = new A.ImmutableString(toBase64Url(key));
	return {
		name: new A.ImmutableString(entry.name),
		kind: new A.ImmutableString(entry.kind),
		roomId: new A.ImmutableString(entry.roomId),
		epoch: entry.epoch,
		keys,
		createdAt: entry.createdAt,
		...(entry.creator === undefined ? {} : { creator: new A.ImmutableString(entry.creator) }),
		// Made with the conversation (see initialise): never concurrently later.
		rooms: Object.fromEntries(
			[
				...(entry.generations ?? new Map([[entry.epoch, { room: entry.roomId, opener: null }]]))
			].map(([epoch, g]) => [
				String(epoch),
				{
					room: new A.ImmutableString(g.room),
					...(g.opener === null ? {} : { opener: new A.ImmutableString(g.opener) })
				}
			])
		),
		abandoned: {},
		...(entry.invite === undefined
			? {}
			: {
					invite: {
						id: new A.ImmutableString(entry.invite.id),
						device: new A.ImmutableString(entry.invite.device),
						inviter: new A.ImmutableString(entry.invite.inviter)
					}
				})
	};
}

/** See Vault#rivalRooms: `c` must be an object of the Automerge document. */
function rivalRoomsOf(
	A: AutomergeModule,
	c: VaultConversation
): { rooms: Map<RoomId, SecretKey>; epochs: string[] } {
	const rooms = new Map<RoomId, SecretKey>();
	const epochs: string[] = [];
	const actorOf = (opId: string) => opId.slice(opId.indexOf('@') + 1);
	for (const epoch of Object.keys(c.rooms ?? {})) {
		const rivals = A.getConflicts(c.rooms as object, epoch);
		const keys = c.keys ? A.getConflicts(c.keys, epoch) : undefined;
		if (!rivals || Object.keys(rivals).length < 2) continue;
		epochs.push(epoch);
		const winner = str(c.rooms?.[epoch]?.room);
		for (const [opId, generation] of Object.entries(rivals)) {
			const room = str((generation as { room?: ImmutableString } | undefined)?.room);
			if (!room || room === winner) continue;
			const key = Object.entries(keys ?? {}).find(([k]) => actorOf(k) === actorOf(opId))?.[1];
			if (key === undefined) continue;
			rooms.set(room as RoomId, fromBase64Url(str(key as ImmutableString)) as SecretKey);
		}
	}
	return { rooms, epochs };
}

/** Whether `value` is an object of the Automerge document (not a merged copy). */
const merged = new WeakSet<object>();
function isDocObject(value: object): boolean {
	return !merged.has(value);
}

/** Automerge op ids ("counter@actor"): which was written later (Automerge's own order). */
function opAfter(a: string, b: string): boolean {
	const at = a.indexOf('@');
	const bt = b.indexOf('@');
	const ca = Number(a.slice(0, at));
	const cb = Number(b.slice(0, bt));
	return ca !== cb ? ca > cb : a.slice(at + 1) > b.slice(bt + 1);
}

/**
 * Two (or more) objects put at one conversation's key at once (`rivals`:
 * their object ids), as one: the shown one's name, kind and creator; each
 * setting as last written in any of them; every key and abandoned room of
 * any of them (the last written for each); per epoch, the generation last
 * written in any of them, and every other room moved to at that epoch, as
 * abandoned with the key the same device wrote (a device followed it). Read
 * through Automerge's backend, which gives every value with its op id (a
 * losing object's values have no proxy). The same on every replica: it
 * depends only on the ops.
 */
function mergeRivals(
	A: AutomergeModule,
	root: unknown,
	shown: VaultConversation,
	rivals: string[]
): VaultConversation {
	const backend = A.getBackend(root as Parameters<typeof A.getBackend>[0]);
	type Value = { kind: string; value: unknown; op: string };
	const all = (obj: string, prop: string): Value[] =>
		backend.getAll(obj, prop).map((v) => ({
			kind: v[0],
			value: v[1],
			op: v.length === 3 ? v[2] : String(v[1])
		}));
	const latest = (values: Value[]): Value | undefined =>
		values.reduce<Value | undefined>(
			(best, v) => (!best || opAfter(v.op, best.op) ? v : best),
			undefined
		);
	const maps = (objects: string[], prop: string): string[] =>
		objects.flatMap((o) =>
			all(o, prop)
				.filter((v) => v.kind === 'map')
				.map((v) => v.value as string)
		);
	const text = (v: Value | undefined) => (v && typeof v.value === 'string' ? v.value : undefined);
	const actorOf = (op: string) => op.slice(op.indexOf('@') + 1);

	const out: VaultConversation = { ...shown, keys: {}, rooms: {}, abandoned: {} };
	for (const flag of ['muted', 'pinned', 'archived'] as const) {
		const value = latest(rivals.flatMap((o) => all(o, flag)))?.value;
		if (typeof value === 'boolean') out[flag] = value;
		else delete out[flag];
	}
	const keyMaps = maps(rivals, 'keys');
	const keyValues = (epoch: string) => keyMaps.flatMap((m) => all(m, epoch));
	for (const epoch of new Set(keyMaps.flatMap((m) => backend.keys(m)))) {
		const key = text(latest(keyValues(epoch)));
		if (key !== undefined) out.keys[epoch] = key as unknown as ImmutableString;
	}
	const abandoned = out.abandoned as NonNullable<VaultConversation['abandoned']>;
	const abandonedMaps = maps(rivals, 'abandoned');
	for (const room of new Set(abandonedMaps.flatMap((m) => backend.keys(m)))) {
		const key = text(latest(abandonedMaps.flatMap((m) => all(m, room))));
		if (key !== undefined) abandoned[room] = key as unknown as ImmutableString;
	}
	const keep = (room: string | undefined, key: string | undefined) => {
		if (room !== undefined && key !== undefined && abandoned[room] === undefined) {
			abandoned[room] = key as unknown as ImmutableString;
		}
	};
	// Per epoch, every generation written in any of them: the last one counts.
	const rooms = out.rooms as NonNullable<VaultConversation['rooms']>;
	const generations = new Map<string, Array<{ op: string; room?: string; opener?: string }>>();
	const roomMaps = maps(rivals, 'rooms');
	for (const m of roomMaps) {
		for (const epoch of backend.keys(m)) {
			for (const g of all(m, epoch).filter((v) => v.kind === 'map')) {
				const id = g.value as string;
				const opener = text(latest(all(id, 'opener')));
				generations.set(epoch, [
					...(generations.get(epoch) ?? []),
					{ op: g.op, room: text(latest(all(id, 'room'))), ...(opener ? { opener } : {}) }
				]);
			}
		}
	}
	// An object from before `rooms`: its one generation is its roomId at its epoch.
	for (const o of rivals) {
		if (maps([o], 'rooms').length > 0) continue;
		const epoch = latest(all(o, 'epoch'))?.value;
		const room = latest(all(o, 'roomId'));
		if (typeof epoch !== 'number' || !room) continue;
		generations.set(String(epoch), [
			...(generations.get(String(epoch)) ?? []),
			{ op: room.op, room: text(room) }
		]);
	}
	for (const [epoch, written] of generations) {
		const won = written.reduce((best, g) => (opAfter(g.op, best.op) ? g : best));
		if (won.room === undefined) continue;
		rooms[epoch] = {
			room: won.room as unknown as ImmutableString,
			...(won.opener ? { opener: won.opener as unknown as ImmutableString } : {})
		};
		for (const g of written) {
			if (g.room === won.room) continue;
			const key = keyValues(epoch).find((k) => actorOf(k.op) === actorOf(g.op));
			keep(g.room, text(key));
		}
	}
	const epochs = rivals.map((o) => latest(all(o, 'epoch'))?.value);
	out.epoch = Math.max(shown.epoch, ...epochs.filter((e): e is number => typeof e === 'number'));
	merged.add(out);
	return out;
}

/** A fresh Automerge value holding what `c` holds (a merged conversation made one object again). */
function copyConversation(A: AutomergeModule, c: VaultConversation): VaultConversation {
	const text = (value: ImmutableString | string) => new A.ImmutableString(str(value));
	const map = <T>(m: { [k: string]: T } | undefined, f: (v: T) => unknown) =>
		Object.fromEntries(Object.entries(m ?? {}).map(([k, v]) => [k, f(v)]));
	const current = currentGeneration(c);
	return {
		name: text(c.name),
		kind: text(c.kind),
		roomId: new A.ImmutableString(current.roomId),
		epoch: current.epoch,
		keys: map(c.keys, text) as VaultConversation['keys'],
		createdAt: c.createdAt,
		...(c.creator === undefined ? {} : { creator: text(c.creator) }),
		...(c.invite === undefined
			? {}
			: {
					invite: {
						id: text(c.invite.id),
						device: text(c.invite.device),
						inviter: text(c.invite.inviter)
					}
				}),
		...(c.muted === undefined ? {} : { muted: c.muted }),
		...(c.pinned === undefined ? {} : { pinned: c.pinned }),
		...(c.archived === undefined ? {} : { archived: c.archived }),
		rooms: map(c.rooms, (g) => ({
			room: text(g.room),
			...(g.opener === undefined ? {} : { opener: text(g.opener) })
		})) as VaultConversation['rooms'],
		abandoned: map(c.abandoned, text) as VaultConversation['abandoned']
	};
}

function toBase64Hex(bytes: Uint8Array): string {
	return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
