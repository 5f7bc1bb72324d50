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

export interface ReadPosition {
	hlc: string;
	id: string;
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
		const held = this.#doc.conversations?.[id];
		if (!held) return [];
		const current = currentGeneration(held);
		if (current.epoch > next.epoch) return [];
		const refollow = current.epoch === next.epoch;
		if (refollow && current.roomId === next.room) return [];
		const A = this.#A;
		return this.#change((doc) => {
			const c = doc.conversations[id];
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
		const c = this.#doc.conversations?.[id];
		if (!c) return [];
		const rooms = Object.keys(c.abandoned ?? {});
		const { epochs } = this.#rivalRooms(c);
		if (rooms.length === 0 && epochs.length === 0) return [];
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
			const held = doc.conversations[id];
			if (!held) return;
			// The rooms known here, not the map: one another device abandons meanwhile stays.
			if (held.abandoned) for (const room of rooms) delete held.abandoned[room];
			for (const { epoch, room, opener, key } of settled) {
				if (!held.rooms) continue;
				held.rooms[epoch] = {
					room: new A.ImmutableString(room),
					...(opener === undefined ? {} : { opener: new A.ImmutableString(str(opener)) })
				};
				held.keys[epoch] = new A.ImmutableString(key);
			}
		});
	}

	/** Forget the generations before `epoch` (retired): their rooms and keys leave the vault. */
	retireGenerations(id: ConversationId, epoch: number): Uint8Array[] {
		const current = this.#doc.conversations?.[id];
		if (!current) return [];
		const old = Object.keys(current.keys).filter((e) => Number(e) < epoch);
		if (old.length === 0) return [];
		return this.#change((doc) => {
			const c = doc.conversations[id];
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
		const current = this.#doc.conversations?.[id];
		if (!current || (current[flag] === true) === on) return [];
		return this.#change((doc) => {
			const c = doc.conversations[id];
			if (c) c[flag] = on;
		});
	}

	setReadPosition(
		deviceId: string,
		conversation: ConversationId,
		position: ReadPosition
	): Uint8Array[] {
		const current = this.readPosition(deviceId, conversation);
		if (current && current.hlc + ' ' + current.id >= position.hlc + ' ' + position.id) return [];
		const A = this.#A;
		return this.#change((doc) => {
			doc.read ??= {};
			doc.read[deviceId] ??= {};
			(doc.read[deviceId] as VaultShape['read'][string])[conversation] = new A.ImmutableString(
				position.hlc + ' ' + position.id
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
		for (const [id, c] of Object.entries(this.#doc.conversations ?? {})) {
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
	 * Rooms that lost to another device's move to the same epoch made at the
	 * same time (both wrote `rooms[epoch]` and `keys[epoch]`; Automerge keeps
	 * one of each and the others as conflicts), each with the key the same
	 * device wrote. A device may have followed one of them and written there:
	 * like a room left by a refollow, it is abandoned, and stays listed until
	 * `forgetAbandoned`. Also returns the epochs that have such rivals.
	 */
	#rivalRooms(c: VaultConversation): { rooms: Map<RoomId, SecretKey>; epochs: string[] } {
		const A = this.#A;
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

function toBase64Hex(bytes: Uint8Array): string {
	return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
