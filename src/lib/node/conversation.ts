/**
 * A conversation as the Node peer runs it: its envelope doc (NodeDoc), its
 * keys, the roster and the reducer — the same operations, roster rules and
 * reducer as the app (../conversation), with no view state. Envelopes are
 * opened, and their operations admitted by the shared RosterGate: a device's
 * operations count once the roster knows the device, whatever the order
 * envelopes arrive in.
 */
import {
	ConversationReducer,
	decodeBatch,
	encodeBatch,
	makeInvite,
	makeMemberAdd,
	makeSend,
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
import type { ConversationEntry } from '../vault';
import type { NodeDoc, NodeEntrySource } from './doc';

interface Decoded extends SignedOps {
	entryId: EnvelopeId;
	device: string;
	ops: Operation[];
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
		options.doc.onEntries((entries, source) => {
			this.#ingesting = this.#ingesting.then(() => this.#ingest(entries, source));
		});
		this.#ingesting = this.#ingest(options.doc.entries(), 'load');
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
		const { entry, signer } = this.#options;
		const key = entry.keys.get(entry.epoch);
		if (!key) throw new MissingKeyError('No key for this conversation: refusing to send.');
		const ids = await this.doc.commit(
			{ epoch: entry.epoch, key, plaintexts: [encodeBatch({ ops })] },
			signer
		);
		await this.settled();
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
		const out: Array<{ invite: string; secret: string; expires: number }> = [];
		for (const list of this.#invites.values()) {
			const valid = list.filter(({ author }) => {
				const role = this.roster.roleOf(author);
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

	async #ingest(entries: EnvelopeEntry[], source: NodeEntrySource): Promise<void> {
		const fresh = entries.filter((entry) => !this.#seen.has(entry.id));
		if (fresh.length === 0) return;
		for (const entry of fresh) this.#seen.add(entry.id);
		const { entry: conversation } = this.#options;
		// Opened concurrently (WebCrypto works off the event loop), kept in order.
		const opened = await Promise.allSettled(
			fresh.map(async (entry): Promise<Decoded> => {
				const envelope = await openEnvelope(entry.bytes, {
					roomId: conversation.roomId,
					keyForEpoch: (epoch) => conversation.keys.get(epoch),
					// Every entry in the doc passed the doc rules (signature included).
					verified: true
				});
				const parsed = decodeBatch(envelope.plaintext);
				return { entryId: entry.id, device: toBase64Url(envelope.signer), ops: parsed.ops };
			})
		);
		const decoded: Decoded[] = [];
		for (const result of opened) {
			if (result.status === 'fulfilled') {
				decoded.push(result.value);
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
	}

	/** Operations of the envelopes whose devices the roster admits (RosterGate). */
	async #admit(decoded: Decoded[]): Promise<ReducerItem[]> {
		const items: ReducerItem[] = [];
		await this.#gate.admit(decoded, (d, author, op) => {
			this.#options.clock.observe({ wall: op.hlc[0], counter: op.hlc[1] });
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
