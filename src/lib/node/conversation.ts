/**
 * A conversation as the Node peer runs it: its envelope doc (NodeDoc), its
 * keys, the roster and the reducer — the same operations, roster rules and
 * reducer as the app (../conversation), with no view state. Envelopes are
 * opened, and their operations admitted by the shared RosterGate: a device's
 * operations count once the roster knows the device, whatever the order
 * envelopes arrive in.
 */
import {
	comparePositions,
	ConversationReducer,
	decodeBatch,
	decodeStateVector,
	encodeStateVector,
	encodeBatch,
	liveInvites,
	makeInvite,
	makeMemberAdd,
	makeReceipt,
	makeSend,
	newestFromOthers,
	Roster,
	RosterGate,
	type EnvelopeEntry,
	type HlcClock,
	type MemberAddOp,
	type Message,
	type OpId,
	type Operation,
	type ReducerItem,
	type SignedOps
} from '../conversation';
import { MissingKeyError, toBase64Url, type EnvelopeId, type Signer } from '../crypto';
import { openEnvelope } from '../envelope';
import {
	CARRIED_TYPES,
	expandSeeds,
	openGeneration,
	followedEpoch,
	type GenerationKey,
	type HeldEpoch
} from '../conversation/generation';
import type { ConversationEntry } from '../vault';
import type { NodeDoc, NodeEntrySource } from './doc';

/**
 * A delivered receipt goes this long after the last message from someone
 * else arrived (one receipt for a burst), as the app's does.
 */
export const NODE_DELIVERED_DELAY_MS = 800;

interface Decoded extends SignedOps {
	entryId: EnvelopeId;
	device: string;
	ops: Operation[];
	/** From the current generation's doc (not an older one, not a seed). */
	current: boolean;
}

export type MemberInput = Omit<MemberAddOp, 'v' | 'id' | 'hlc' | 'type' | 'role'>;

export interface NodeConversationOptions {
	entry: ConversationEntry;
	doc: NodeDoc;
	signer: Signer;
	clock: HlcClock;
	myUserId: string;
	/** Called with messages (sends) that became visible, in conversation order. */
	onMessages?: (messages: Message[], source: NodeEntrySource) => void;
	onWarning?: (message: string) => void;
	/** Older generations, oldest first, with the device that opened each (null: the first). */
	history?: ReadonlyArray<{ doc: NodeDoc; opener: string | null }>;
	/** This device's X25519 secret: opens its lockbox of the next generation. */
	dhSecret?: Uint8Array;
	/** This device holds a lockbox of the next generation (docs/protocol.md, Generations). */
	onGeneration?: (next: GenerationKey) => void;
	/** The seed covers what this device wrote before: the older generations may go. */
	onRetire?: () => void;
}

export class NodeConversation {
	readonly entry: ConversationEntry;
	readonly doc: NodeDoc;
	readonly roster: Roster;
	readonly #reducer = new ConversationReducer();
	/** Messages already reported through onMessages (author and op id). */
	readonly #shown = new Set<string>();
	readonly #options: NodeConversationOptions;
	readonly #myDevice: string;
	readonly #seen = new Set<string>();
	readonly #gate: RosterGate<Decoded>;
	/** Invite ops by invitation id (a later one with an earlier expiry revokes it). */
	readonly #invites = new Map<
		string,
		Array<{ op: Extract<Operation, { type: 'invite' }>; author: string }>
	>();
	#ingesting: Promise<void> = Promise.resolve();
	/** Envelopes that could not be opened (wrong key, damaged, newer format). */
	unreadable = 0;

	constructor(options: NodeConversationOptions) {
		this.#options = options;
		this.entry = options.entry;
		this.doc = options.doc;
		this.#myDevice = toBase64Url(options.signer.publicKey);
		this.roster = new Roster(options.entry.creator ?? options.myUserId);
		this.#gate = new RosterGate(
			this.roster,
			(device) =>
				this.roster.ownerOf(device) ?? (device === this.#myDevice ? options.myUserId : undefined)
		);
		const opener = options.entry.generations?.get(options.entry.epoch)?.opener ?? null;
		for (const old of options.history ?? []) {
			this.#unsubscribe.push(
				old.doc.onEntries((entries, source) => {
					this.#ingesting = this.#ingesting.then(() =>
						this.#ingest(entries, source, old.doc, old.opener)
					);
				})
			);
			const loaded = old.doc.entries();
			this.#ingesting = this.#ingesting.then(() =>
				this.#ingest(loaded, 'load', old.doc, old.opener)
			);
		}
		this.#unsubscribe.push(
			options.doc.onEntries((entries, source) => {
				this.#ingesting = this.#ingesting.then(() =>
					this.#ingest(entries, source, options.doc, opener)
				);
			})
		);
		const loaded = options.doc.entries();
		this.#ingesting = this.#ingesting.then(() => this.#ingest(loaded, 'load', options.doc, opener));
	}

	readonly #unsubscribe: Array<() => void> = [];
	readonly #epochs: HeldEpoch[] = [];
	#moved = false;
	readonly #seedParts = new Set<number>();
	#seedTotal = 0;
	readonly #mineHere = new Set<string>();
	readonly #historyOwn: Operation[] = [];
	#retireAsked = false;

	#deliveredTimer: ReturnType<typeof setTimeout> | null = null;
	/** The state vector the last delivered receipt carried (JSON), to skip repeats. */
	#lastDeliveredSv = '';

	/** Stop (the conversation moved on; a new NodeConversation takes over its docs). */
	close(): void {
		this.#moved = true;
		if (this.#deliveredTimer) clearTimeout(this.#deliveredTimer);
		this.#deliveredTimer = null;
		for (const off of this.#unsubscribe.splice(0)) off();
	}

	get id(): string {
		return this.entry.id;
	}

	get name(): string {
		return this.entry.name;
	}

	/** Resolves when every entry seen so far is reduced. */
	settled(): Promise<void> {
		return this.#ingesting;
	}

	/** Visible messages in the conversation's order (HLC, id). */
	messages(): Message[] {
		return this.#reducer.messages.filter((m) => !m.deleted);
	}

	authorName(user: string): string {
		return this.roster.member(user)?.name || (user === this.#options.myUserId ? 'me' : 'Unknown');
	}

	/** Members other than this account (somebody to deliver to). */
	othersPresent(): boolean {
		return this.roster.members().some((m) => m.user !== this.#options.myUserId);
	}

	get canAdmit(): boolean {
		return this.roster.canAdd(this.#myDevice);
	}

	/** Seal, store and reduce one operation batch. Returns the envelope ids. */
	async commit(ops: Operation[]): Promise<EnvelopeId[]> {
		const ids = await this.#seal(ops);
		await this.settled();
		return ids;
	}

	/** Seal and store one batch; it is reduced when the ingest queue gets to it. */
	async #seal(ops: Operation[]): Promise<EnvelopeId[]> {
		const { entry, signer } = this.#options;
		const key = entry.keys.get(entry.epoch);
		if (!key) throw new MissingKeyError('No key for this conversation: refusing to send.');
		const ids = await this.doc.commit(
			{ epoch: entry.epoch, key, plaintexts: [encodeBatch({ ops })] },
			signer
		);
		for (const op of ops) this.#mineHere.add(op.id);
		return ids;
	}

	async send(text: string): Promise<{ ids: EnvelopeId[]; op: Operation }> {
		const op = makeSend(this.#options.clock, text); // throws MessageTooLongError
		return { ids: await this.commit([op]), op };
	}

	/** The creator's first device enters the roster (roster.ts rule 1); a no-op once done. */
	async ensureGenesis(me: MemberInput): Promise<void> {
		await this.settled();
		if (this.roster.creator !== this.#options.myUserId) return;
		if (this.roster.ownerOf(this.#myDevice)) return;
		await this.commit([makeMemberAdd(this.#options.clock, { ...me, role: 'owner' })]);
	}

	async addMember(member: MemberInput): Promise<void> {
		await this.settled();
		const existing = this.roster.member(member.user);
		if (existing && member.devices.every((device) => existing.devices.has(device))) return;
		await this.commit([makeMemberAdd(this.#options.clock, { ...member, role: 'member' })]);
	}

	async recordInvite(invite: { invite: OpId; secret: string; expires: number }): Promise<void> {
		await this.commit([makeInvite(this.#options.clock, invite)]);
	}

	/**
	 * Invitations recorded by owners and admins that have not expired nor
	 * been revoked (the earliest expiry an owner or admin recorded counts).
	 */
	invites(now = Date.now()): Array<{ invite: string; secret: string; expires: number }> {
		return liveInvites(this.#invites.values(), this.roster, now);
	}

	async #ingest(
		entries: EnvelopeEntry[],
		source: NodeEntrySource,
		doc: NodeDoc,
		opener: string | null
	): Promise<void> {
		const fresh = entries.filter((entry) => !this.#seen.has(entry.id));
		if (fresh.length === 0) return;
		for (const entry of fresh) this.#seen.add(entry.id);
		const { entry: conversation } = this.#options;
		const current = doc === this.doc;
		// Opened concurrently (WebCrypto works off the event loop), kept in order.
		const opened = await Promise.allSettled(
			fresh.map(async (entry): Promise<Decoded> => {
				const envelope = await openEnvelope(entry.bytes, {
					roomId: doc.roomId,
					keyForEpoch: (epoch) => conversation.keys.get(epoch),
					// Every entry in the doc passed the doc rules (signature included).
					verified: true
				});
				const parsed = decodeBatch(envelope.plaintext);
				return {
					entryId: entry.id,
					device: toBase64Url(envelope.signer),
					ops: parsed.ops,
					current
				};
			})
		);
		const decoded: Decoded[] = [];
		for (const result of opened) {
			if (result.status === 'fulfilled') {
				const d = result.value;
				const { own, seeded, seeds } = expandSeeds(d, opener);
				for (const seed of seeds) if (current) this.#noteSeedPart(seed.part, seed.parts);
				for (const s of seeded) {
					if (current && s.device === this.#myDevice)
						for (const op of s.ops) this.#mineHere.add(op.id);
					decoded.push({ ...s, entryId: s.entryId as EnvelopeId, current: false });
				}
				if (d.device === this.#myDevice) {
					if (current) for (const op of own) this.#mineHere.add(op.id);
					else for (const op of own) if (CARRIED_TYPES.has(op.type)) this.#historyOwn.push(op);
				}
				if (own.length > 0) decoded.push({ ...d, ops: own });
				continue;
			}
			const error: unknown = result.reason;
			this.unreadable += 1;
			this.#options.onWarning?.(
				`an envelope could not be read: ${error instanceof Error ? error.message : String(error)}`
			);
		}
		const rosterBefore = this.roster.version;
		const items = await this.#admit(decoded);
		if (this.roster.version !== rosterBefore) this.#gate.recount(this.#reducer);
		if (items.length === 0) return;
		const version = this.#reducer.version;
		this.#reducer.add(items);
		// Only the part of the list that changed can hold new messages.
		const added: Message[] = [];
		const list = this.#reducer.messages;
		for (let i = this.#reducer.changedSince(version); i < list.length; i++) {
			const m = list[i] as Message;
			const key = `${m.author} ${m.id}`;
			if (this.#shown.has(key)) continue;
			this.#shown.add(key);
			if (!m.deleted) added.push(m);
		}
		if (added.length > 0) this.#options.onMessages?.(added, source);
		const me = this.#options.myUserId;
		if (current && source === 'remote' && added.some((m) => m.author !== me)) {
			this.#scheduleDelivered();
		}
	}

	/**
	 * Tells the others this device holds what arrived: a `delivered` receipt
	 * with the doc's state vector, as the app writes one, so their messages
	 * read "Delivered" (and not only "Sent", or "Saved" on a LAN without a
	 * relay) once a `kith` peer has them.
	 */
	#scheduleDelivered(): void {
		if (this.#deliveredTimer || this.#moved) return;
		this.#deliveredTimer = setTimeout(() => {
			this.#deliveredTimer = null;
			this.#ingesting = this.#ingesting.then(async () => {
				try {
					await this.#receipt('delivered');
				} catch (error) {
					this.#options.onWarning?.(
						`a delivery receipt could not be written: ${error instanceof Error ? error.message : String(error)}`
					);
				}
			});
		}, NODE_DELIVERED_DELAY_MS);
		this.#deliveredTimer.unref?.();
	}

	/**
	 * The person read the conversation (`kith read`): a `read` receipt up to
	 * the newest message from someone else, as the app writes when a
	 * conversation is on screen. Returns the receipt's envelope ids ([] when
	 * there was nothing new to mark).
	 */
	async markRead(): Promise<EnvelopeId[]> {
		await this.settled();
		return this.#receipt('read');
	}

	async #receipt(kind: 'delivered' | 'read'): Promise<EnvelopeId[]> {
		const { entry } = this.#options;
		if (this.#moved || this.roster.size < 2 || !entry.keys.has(entry.epoch)) return [];
		const me = this.#options.myUserId;
		const newest = newestFromOthers(this.#reducer.messages, me);
		if (!newest) return [];
		const sv = decodeStateVector(encodeStateVector(this.doc.cdoc));
		if (kind === 'delivered') {
			const held = JSON.stringify([...sv]);
			if (held === this.#lastDeliveredSv) return [];
			this.#lastDeliveredSv = held;
		} else {
			// Read there already (by this device, or another of this account's).
			const read = this.#reducer.state.receipts[me]?.read;
			if (read && comparePositions(read, newest) >= 0) return [];
		}
		const op = makeReceipt(
			this.#options.clock,
			kind,
			{ hlc: newest.hlc, id: newest.id as OpId },
			sv
		);
		// Not through commit(): that waits for the ingest queue a delivered receipt runs on.
		return this.#seal([op]);
	}

	#noteSeedPart(part: number, parts: number): void {
		this.#seedParts.add(part);
		this.#seedTotal = parts;
		if (this.#seedParts.size >= this.#seedTotal) {
			this.#ingesting = this.#ingesting.then(() => this.#afterSeed());
		}
	}

	/** The whole seed is here: re-publish what it does not carry, then let the old generations go. */
	async #afterSeed(): Promise<void> {
		if (this.#retireAsked || (this.#options.history ?? []).length === 0) return;
		this.#retireAsked = true;
		const missing = this.#historyOwn.filter((op) => !this.#mineHere.has(op.id));
		if (missing.length > 0) await this.commit(missing);
		this.#options.onRetire?.();
	}

	/** Follow the winning epoch op of this generation when it holds a lockbox for this device. */
	async #considerMove(): Promise<void> {
		const { dhSecret, onGeneration, entry } = this.#options;
		if (this.#moved || !dhSecret || !onGeneration) return;
		const winner = followedEpoch(this.#epochs, entry.epoch + 1, this.roster.membership);
		if (!winner) return;
		let next: GenerationKey | null;
		try {
			next = await openGeneration(entry.id, winner.op, this.#myDevice, dhSecret);
		} catch (error) {
			this.#options.onWarning?.(
				`the next generation's lockbox could not be opened: ${error instanceof Error ? error.message : String(error)}`
			);
			return;
		}
		if (!next || this.#moved) return;
		this.#moved = true;
		onGeneration(next);
	}

	/** Operations of the envelopes whose devices the roster admits (RosterGate). */
	async #admit(decoded: Decoded[]): Promise<ReducerItem[]> {
		const items: ReducerItem[] = [];
		await this.#gate.admit(decoded, (d, author, op) => {
			this.#options.clock.observe({ wall: op.hlc[0], counter: op.hlc[1] });
			if (op.type === 'epoch' && d.current) {
				this.#epochs.push({ op, device: d.device, user: author });
				this.#ingesting = this.#ingesting.then(() => this.#considerMove());
			}
			if (op.type === 'invite') {
				const list = this.#invites.get(op.invite);
				if (list) list.push({ op, author });
				else this.#invites.set(op.invite, [{ op, author }]);
			}
			items.push({ op, author, device: d.device, envelopeId: d.entryId });
		});
		return items;
	}
}
