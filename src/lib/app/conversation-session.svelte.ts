/* eslint-disable svelte/prefer-svelte-reactivity -- bookkeeping collections, deliberately not
   reactive: the UI reads the $state fields derived from them. */
/**
 * A conversation as the app runs it: its envelope doc (DocSession), its keys,
 * and the view reduced from its operations. Implements the UI's
 * ConversationHandle with reactive fields.
 *
 * Sending: operations made in one tick are sealed together (one envelope may
 * carry several operations of a burst: one signature and one AES-GCM call for
 * the lot), shown at once as "Saving", and become "Saved" only when the
 * IndexedDB transaction holding their envelope has completed.
 */
import {
	ConversationReducer,
	decodeBatch,
	encodeBatch,
	compareHlc,
	hlcToString,
	liveInvites,
	encodeBatches,
	BATCH_BYTES,
	makeDelete,
	makeEdit,
	makeInvite,
	makeEpoch,
	makeMemberAdd,
	makeMemberRemove,
	makeMemberRole,
	makeSeed,
	seededOps,
	makeReact,
	makeReceipt,
	makeSend,
	newestFromOthers,
	parseHlc,
	Roster,
	RosterGate,
	unreadCount,
	type EpochOp,
	type MemberAddOp,
	type EnvelopeEntry,
	type Hlc,
	type HlcClock,
	type Message,
	type OpId,
	type Operation,
	type ReducerItem
} from '../conversation';
import {
	MissingKeyError,
	toBase64Url,
	type ConversationId,
	type EnvelopeId,
	type SecretKey,
	type Signer
} from '../crypto';
import { clientIdFor, EnvelopeError, openEnvelope, parseFrame, sealEnvelope } from '../envelope';
import { decodeStateVector } from '../conversation';
import { equalBytes, fromBase64Url, utf8Decode, utf8Encode } from '../crypto';
import type {
	ConnectionState,
	ConversationKind,
	ConversationHandle,
	MemberView,
	MessageStatus,
	MessageView,
	SystemLine
} from './types';
import type { DocSession, EntrySource } from './doc-session';
import { ownStatus, ReceiptBook } from './receipts';
import type { MediaManager, MediaRoom } from '../media/media.svelte';
import type { FileManifest } from '../media/manifest';
import { deriveRoomCapability } from '../sync/capability';
import { TooLargeForRelayError } from '../sync/limits';
import { notifyKeyFor, previewOf, sealNotification } from '../push/notification';
import type { SearchSource } from '../search/message-search';
import { joinHalves, safetyHalf } from '../identity/safety-number';
import { sskCertKey } from '../identity/certificates';
import { findMentions, mentionSegments, type Mentionable } from '../conversation/mentions';
import {
	openGeneration,
	sealGeneration,
	seedParts,
	CARRIED_TYPES,
	expandSeeds,
	followedEpoch,
	type GenerationKey,
	type HeldEpoch
} from '../conversation/generation';
import { survivingOps } from '../conversation/compaction';
import { newRoomId, newSecretKey } from '../crypto/ids';

/** An envelope decrypted and decoded, before the roster says whose it is. */
interface Decoded {
	entryId: EnvelopeId;
	device: string;
	ops: Operation[];
	/** From the current generation (epoch ops elsewhere are history). */
	current?: boolean;
	/** Carried by the opener's seed, not delivered by its device. */
	seeded?: boolean;
}

/** What an encrypted view snapshot holds: reducer state and the ops the roster needs. */
interface RestoredSession {
	r: unknown;
	m: Array<[string, string, Operation]>;
}

/** Typing state (awareness), sealed as an envelope at this clock, which no doc item can have. */
const AWARENESS_CLOCK = 0xffffffff;
/** A remote "typing" state counts for this long after it arrived, unless refreshed. */
const TYPING_SHOW_MS = 6000;
/** Delivered receipts are batched over this long. */
const DELIVERED_DELAY_MS = 800;
/** How long after a delete for everyone the first owner or admin compacts. */
const COMPACT_DELAY_MS = 5000;
/** A generation this many envelopes past its seed, and a day old, is compacted at the next open. */
const PERIODIC_COMPACT_ENVELOPES = 10_000;
const PERIODIC_COMPACT_AGE_MS = 24 * 60 * 60 * 1000;
/** Generations up to this many envelopes are compacted after a delete. */
const AUTO_COMPACT_MAX_ENVELOPES = 20_000;
/** How long an owner or admin device waits after seeing someone leave before it rotates the key. */
const ROTATION_DELAY_MS = 3000;
/** How long connected without the inviter's invitation before an admission counts as unconfirmed. */
const UNCONFIRMED_AFTER_MS = 15_000;

export interface ConversationSessionOptions {
	/**
	 * The largest encoded batch one envelope may carry for the relay to take
	 * its frame (sync/limits.ts), or null when the relay's limit is not known:
	 * a message over it is refused before it is sealed, and bursts are batched
	 * within it.
	 */
	maxPlaintextBytes?: () => number | null;
	id: ConversationId;
	name: string;
	kind: ConversationKind;
	createdAt: number;
	epoch: number;
	keys: Map<number, SecretKey>;
	session: DocSession;
	signer: Signer;
	clock: HlcClock;
	/** The user who created the conversation (its genesis owner), or null when unknown. */
	creator: string | null;
	myUserId: string;
	/** This device's display name, as the user set it in the vault. */
	myName(): string;
	/** Whether this tab holds the network connections (sends delivered receipts). */
	isLeader(): boolean;
	/** Publish this device's encrypted awareness state (null clears it). */
	publishAwareness?(state: Uint8Array | null): void;
	/** Hand the relay a notification envelope of a message just sent (push to offline members). */
	publishNotification?(envelope: Uint8Array): void;
	/**
	 * The invitation this account joined by, when a device other than the
	 * inviter's admitted it: the conversation is confirmed once it holds that
	 * invitation recorded by the inviter's device (envelopes are bound to their
	 * room, so no one else can put it there).
	 */
	expectInvite?: { id: string; device: string; inviter: string };
	/** Files: sending, fetching, showing (absent without a relay). */
	media?: MediaManager | null;
	/** Restored reducer state from an encrypted snapshot. */
	restored?: unknown;
	onChange?: () => void;
	/** Another device of this account sent a read receipt here. */
	onReadElsewhere?: () => void;
	/** Contacts the user verified: user id → their safety-number half then (from the vault). */
	verifiedContacts?(): ReadonlyMap<string, string>;
	/** People the user blocked (user id → name), from the vault. */
	blockedUsers?(): ReadonlyMap<string, string>;
	/** The user has seen the newest message; the app moves the read position in the vault. */
	onMarkRead?: (session: ConversationSession) => void;
	onReport?: (error: Error) => void;
	/**
	 * Older generations of this conversation, oldest first, with the device
	 * that opened each (null for the first): read, never written nor synced.
	 */
	history?: ReadonlyArray<{ session: DocSession; opener: string | null }>;
	/** The device that opened the current generation (only its seed counts); null for the first. */
	opener?: string | null;
	/** This device's X25519 secret: opens its lockbox of the next generation. */
	dhSecret?: Uint8Array;
	/**
	 * This device holds a lockbox of the next generation: the app moves the
	 * conversation there. Also called with this generation's own epoch when
	 * another opener's generation of that epoch wins (two admins opened one
	 * at once): the app follows that one instead, keeping this room as
	 * `abandoned` until what this device wrote in it is re-published there.
	 */
	onGeneration?(next: GenerationKey): void;
	/**
	 * Generations of the current epoch this device followed before it learnt
	 * of the one every replica follows: what this device wrote there is
	 * re-published here (with what it wrote in `history`) before `onRetire`.
	 */
	abandoned?: ReadonlyArray<{ session: DocSession; key: SecretKey }>;
	/**
	 * The current generation holds its whole seed, and what this device wrote
	 * in the generations before is covered (re-published where it was not):
	 * the app may retire them. `expected`: when this device opened the
	 * generation, every member device sealed to (the relay may drop the old
	 * room once they all moved).
	 */
	onRetire?(expected: string[] | null): void;
}

/** Where the user stands in a conversation, for what the view offers. */
export type Standing = 'member' | 'removed' | 'left';

const NO_ONE: ReadonlyMap<string, string> = new Map();

export class ConversationSession implements ConversationHandle {
	readonly id: ConversationId;
	readonly kind: ConversationKind;
	readonly createdAt: number;
	name = $state('');
	/**
	 * The views, in order. One array, updated in place by #refresh (copying
	 * 100k views per change cost O(n)); `#viewVersion` counts its changes, and
	 * reading `messages` depends on it, so the UI re-runs as with a new array.
	 */
	get messages(): readonly MessageView[] {
		void this.#viewVersion;
		return this.#viewList;
	}
	#viewVersion = $state(0);
	problems = $state.raw<readonly string[]>([]);
	loading = $state(true);
	unread = $state(0);
	lastActivity = $state(0);
	preview = $state('');
	members = $state.raw<readonly MemberView[]>([]);
	/** Membership changes, oldest first, as the timeline shows them. */
	systemLines = $state.raw<readonly SystemLine[]>([]);
	/** Names of verified members whose safety number changed since (for role=alert). */
	keyChanged = $state.raw<readonly string[]>([]);
	/** Names of the members typing now. */
	typing = $state.raw<readonly string[]>([]);
	connection = $state<ConnectionState>('Connecting');
	/** A warning for the user when this conversation could not be confirmed (see expectInvite). */
	unconfirmed = $state<string | null>(null);
	/** Whether the user is still a member ('removed', 'left': the view is read-only). */
	standing = $state<Standing>('member');
	readonly roster: Roster;

	readonly #options: ConversationSessionOptions;
	readonly #reducer: ConversationReducer;
	/** Envelope ids this tab sealed that are not yet committed to storage. */
	readonly #unsaved = new Set<string>();
	/** Envelopes already reduced (or refused), so none is decrypted twice. */
	readonly #seen = new Set<string>();
	/** Views by message; made afresh when members change (names, mentions). */
	#views = new WeakMap<Message, MessageView>();
	#outbox: Operation[] = [];
	#outboxWaiters: Waiter[] = [];
	#flushScheduled = false;
	#readMark: { hlc: string; id: string } | null = null;
	#unknownVersion = 0;
	#unreadable = new Map<string, string>();
	/** Holds envelopes from devices not (yet) in the roster, and member.adds not yet authorised. */
	readonly #gate: RosterGate<Decoded>;
	readonly #myDevice: string;
	readonly #myClient: number;
	/** Own envelopes → their Yjs clock (for "Sent", "Delivered", "Read"). */
	readonly #ownClock = new Map<string, number>();
	/** Own envelopes whose status may still change → their ops' positions. */
	readonly #unfinished = new Map<string, Array<{ hlc: Hlc; id: string }>>();
	#relayAck = 0;
	readonly #receipts = new Map<string, ReceiptBook>();
	#deliveredTimer: ReturnType<typeof setTimeout> | null = null;
	#lastDeliveredSv = '';
	#lastReadSent: string | null = null;
	readonly #typingSeen = new Map<number, { name: string; until: number }>();
	#typingTimer: ReturnType<typeof setTimeout> | null = null;
	#ingesting: Promise<void> = Promise.resolve();
	/** Invite ops by invitation id: the first records it, a later one with an earlier expiry revokes it. */
	readonly #invites = new Map<
		string,
		Array<{ op: Extract<Operation, { type: 'invite' }>; author: string; device: string }>
	>();

	#noteInvite(op: Extract<Operation, { type: 'invite' }>, author: string, device: string): void {
		const list = this.#invites.get(op.invite);
		if (!list) this.#invites.set(op.invite, [{ op, author, device }]);
		else if (!list.some((x) => x.op.id === op.id && x.author === author)) {
			list.push({ op, author, device });
		}
	}
	/** Membership, receipt and invite ops with their signer and author, kept in snapshots. */
	#meta: Array<[string, string, Operation]> = [];

	constructor(options: ConversationSessionOptions) {
		this.#options = options;
		this.id = options.id;
		this.kind = options.kind;
		this.createdAt = options.createdAt;
		this.name = options.name;
		this.#myDevice = toBase64Url(options.signer.publicKey);
		this.#myClient = clientIdFor(options.signer.publicKey);
		this.roster = new Roster(options.creator);
		this.#gate = new RosterGate(this.roster, (device) => this.#authorOf(device));
		const restored = options.restored as RestoredSession | undefined;
		this.#reducer = restored
			? ConversationReducer.deserialize(restored.r as never)
			: new ConversationReducer();
		if (restored) this.#ingesting = this.#restoreMeta(restored.m);
		this.lastActivity = options.createdAt;
		if (options.restored) {
			// The clock must never issue below what this conversation already holds.
			const last = this.#reducer.state.lastActivity;
			if (last) options.clock.observe(last);
			this.#refresh();
			this.loading = false;
		}
		// Older generations first: their membership is what the current one's seed repeats.
		for (const old of options.history ?? []) {
			const off = old.session.onEntries((entries, source) => {
				this.#ingesting = this.#ingesting.then(() =>
					this.#ingest(entries, source, old.session, old.opener)
				);
			});
			this.#unsubscribe.push(off);
			this.#catchUp(old.session, old.opener);
		}
		const off = options.session.onEntries((entries, source) => {
			// Serialised: roster decisions depend on what came before.
			this.#ingesting = this.#ingesting.then(() =>
				this.#ingest(entries, source, options.session, options.opener ?? null)
			);
		});
		this.#unsubscribe.push(off);
		this.#catchUp(options.session, options.opener ?? null);
		this.#allLoaded = Promise.all([
			options.session.loaded,
			...(options.history ?? []).map((old) => old.session.loaded),
			...(options.abandoned ?? []).map((old) => this.#readAbandoned(old.session, old.key))
		]).then(() => undefined);
		void this.#allLoaded.then(
			() => {
				this.loading = false;
				if (restored) this.#ingesting = this.#ingesting.then(() => this.#rescanOwn());
			},
			(error: unknown) => this.#report(error)
		);
	}

	get roomId() {
		return this.#options.session.roomId;
	}

	readonly #unsubscribe: Array<() => void> = [];
	/** Every doc of this session (the current generation and the history) is loaded. */
	#allLoaded: Promise<void> = Promise.resolve();

	/** A doc loaded before this session began (it reopened after a move): read what it holds. */
	#catchUp(session: DocSession, opener: string | null): void {
		if (!session.isLoaded) return;
		const entries = session.entries();
		if (entries.length === 0) return;
		this.#ingesting = this.#ingesting.then(() => this.#ingest(entries, 'load', session, opener));
	}

	/**
	 * Stop: the conversation moved to a new generation and a new session
	 * takes over (the docs stay open, shared with it).
	 */
	close(): void {
		for (const off of this.#unsubscribe.splice(0)) off();
		this.#moved = true;
		for (const timer of [
			this.#deliveredTimer,
			this.#typingTimer,
			this.#inviteTimer,
			this.#rotationTimer,
			this.#compactionTimer
		]) {
			if (timer) clearTimeout(timer);
		}
	}

	get session(): DocSession {
		return this.#options.session;
	}

	/** Whether every entry held is reduced and nothing is unsaved: a snapshot is safe now. */
	get settled(): boolean {
		return (
			this.#unsaved.size === 0 &&
			this.#outbox.length === 0 &&
			this.#gate.heldCount === 0 &&
			this.#options.session.isLoaded
		);
	}

	snapshotData(): unknown {
		return { r: this.#reducer.serialize(), m: this.#meta } satisfies RestoredSession;
	}

	/**
	 * The reduced view with the doc's state vector it covers, taken together
	 * once every entry the doc holds is reduced (nothing queued to ingest, and
	 * `settled` and `complete`); null when that does not come about.
	 */
	async settledView(): Promise<{ stateVector: Uint8Array; data: unknown } | null> {
		for (let attempt = 0; attempt < 8; attempt++) {
			const queued = this.#ingesting;
			await queued;
			if (queued !== this.#ingesting) continue; // more arrived meanwhile
			if (!this.settled || !this.complete) return null;
			return { stateVector: this.#options.session.stateVector(), data: this.snapshotData() };
		}
		return null;
	}

	/**
	 * Whether a snapshot of this session may be written: nothing is held back
	 * waiting for membership (a snapshot must not skip it), and it reads one
	 * doc only. A snapshot covers one doc; with older generations it would
	 * also keep what they held (a deleted message's text among it) after they
	 * are retired.
	 */
	get complete(): boolean {
		return (
			this.#gate.heldCount === 0 &&
			(this.#options.history ?? []).length === 0 &&
			(this.#options.abandoned ?? []).length === 0
		);
	}

	async #restoreMeta(meta: Array<[string, string, Operation]>): Promise<void> {
		this.#meta = meta.slice();
		let pending = meta;
		for (;;) {
			const next: typeof meta = [];
			const before = this.roster.version;
			for (const [device, author, op] of pending) {
				if (op.type === 'member.add') {
					if (this.roster.authorised(op, device)) await this.roster.apply(op, device);
					else next.push([device, author, op]);
				} else if (op.type === 'member.role' || op.type === 'member.remove') {
					// Recorded once its signer's device is known; the replay decides.
					if (this.roster.ownerOf(device) !== undefined) this.roster.applyChange(op, device);
					else next.push([device, author, op]);
				} else if (op.type === 'receipt') this.#noteReceipt(author, op);
				else if (op.type === 'invite') this.#noteInvite(op, author, device);
			}
			pending = next;
			if (this.roster.version === before || pending.length === 0) break;
		}
		for (const [device, , op] of pending) {
			if (op.type === 'member.add') this.#gate.wait(op, device);
		}
		this.#rosterChanged();
		this.#refresh();
	}

	/**
	 * After a restore: find the clocks of own messages so their statuses can
	 * move on. A long history takes a while, so it goes in slices of a few
	 * milliseconds between other work (scrolling stays smooth).
	 */
	async #rescanOwn(): Promise<void> {
		const me = this.#options.myUserId;
		const messages = this.#reducer.messages;
		let deadline = performance.now() + RESCAN_SLICE_MS;
		const found: string[] = [];
		// Oldest first: own clocks then arrive in order (#ownByClock appends).
		for (let i = 0; i < messages.length; i++) {
			if ((i & 1023) === 1023 && performance.now() > deadline) {
				this.#learnOwnClocks(found.splice(0));
				this.#refresh();
				await new Promise((resolve) => setTimeout(resolve, 0));
				deadline = performance.now() + RESCAN_SLICE_MS;
			}
			const message = messages[i];
			if (!message || message.author !== me || message.device !== this.#myDevice) continue;
			const id = message.envelopeId;
			const ops = this.#unfinished.get(id) ?? [];
			if (ops.some((op) => op.id === message.id)) continue;
			ops.push({ hlc: message.hlc, id: message.id });
			this.#unfinished.set(id, ops);
			found.push(id);
		}
		this.#learnOwnClocks(found);
		this.#refresh();
	}

	#learnOwnClocks(ids: readonly string[]): void {
		for (const id of ids) {
			const bytes = this.#options.session.doc.get(id as EnvelopeId);
			if (bytes) this.#learnOwnClock({ id, bytes });
		}
	}

	setReadMark(mark: { hlc: string; id: string } | null): void {
		const held = this.#readMark;
		if (held === mark || (held && mark && held.hlc === mark.hlc && held.id === mark.id)) return;
		this.#readMark = mark;
		this.#refresh();
	}

	/** The position of the newest message, for read marks. */
	newestPosition(): { hlc: string; id: string } | null {
		const last = this.#reducer.messages.at(-1);
		return last ? { hlc: hlcToString(last.hlc), id: last.id } : null;
	}

	markRead(): void {
		this.#options.onMarkRead?.(this);
		void this.#sendReceipt('read');
	}

	/**
	 * Send a message. Resolves once it is accepted — sealed and shown as
	 * "Saving" — so the composer can take the next one; rejects (and nothing
	 * is shown) when the text is refused, e.g. MessageTooLongError. Storage is
	 * then retried until the message is "Saved"; a full disk shows an alert.
	 */
	send(text: string, replyTo?: string): Promise<void> {
		return this.#enqueue(text, replyTo).accepted;
	}

	/** The members a message may mention (everyone but the user), for `@` completion. */
	get mentionable(): readonly Mentionable[] {
		return this.members.filter((m) => !m.you);
	}

	/** Send and wait until the message is committed to storage ("Saved"). */
	sendSaved(text: string): Promise<void> {
		return this.#enqueue(text).saved;
	}

	/** Replace the text of one of this user's messages. Rejects with MessageTooLongError. */
	edit(id: string, text: string): Promise<void> {
		return this.#enqueueBuilt(() =>
			makeEdit(this.#options.clock, id as OpId, text, findMentions(text, this.mentionable))
		);
	}

	/** The versions of one of the user's own messages, oldest first (empty for others'). */
	editHistory(id: string): { text: string; time: number; edited: boolean }[] {
		return this.#reducer
			.editHistory(this.#options.myUserId, id as OpId)
			.map((v) => ({ text: v.text, time: v.hlc.wall, edited: v.edited }));
	}

	/** Delete one of this user's messages for everyone (the reducer keeps a tombstone). */
	remove(id: string): Promise<void> {
		return this.#enqueueBuilt(() => makeDelete(this.#options.clock, id as OpId));
	}

	/** Add or withdraw this user's reaction `emoji` to the message with op id `id`. */
	react(id: string, emoji: string, on: boolean): Promise<void> {
		return this.#enqueueBuilt(() => makeReact(this.#options.clock, id as OpId, emoji, on));
	}

	/** Builds an op (a refusal rejects, nothing is queued) and queues it; resolves once accepted. */
	#enqueueBuilt(build: () => Operation): Promise<void> {
		let op: Operation;
		try {
			op = build();
			this.#checkFitsRelay(op);
		} catch (error) {
			return Promise.reject(error);
		}
		return this.#enqueueOp(op).accepted;
	}

	/** Send many messages as one burst; resolves when all are "Saved". */
	async sendMany(texts: string[]): Promise<void> {
		await Promise.all(texts.map((text) => this.#enqueue(text).saved));
	}

	/** The files service, for the view (uploads in progress, downloads, URLs). */
	get media(): MediaManager | null {
		return this.#options.media ?? null;
	}

	/**
	 * Send a file: refused at once (FileTooLargeError) when it is over the
	 * relay's limit; otherwise uploaded, and sent as a message carrying its
	 * manifest once every chunk is on the relay (or, with the relay out of
	 * reach, stored here for the conversation's direct peers to fetch).
	 */
	async attach(file: File): Promise<void> {
		const media = this.#options.media;
		if (!media) throw new Error('Sending files needs the Kith relay.');
		await media.sendFile(this.id, this.mediaRoom(), file);
	}

	/** This conversation's room for files: its upload capability, and sending a manifest. */
	mediaRoom(): MediaRoom {
		const { session, keys, epoch } = this.#options;
		return {
			roomId: session.roomId,
			capability: () => {
				const key = keys.get(epoch);
				if (!key) throw new MissingKeyError('No key for this conversation: refusing to send.');
				return deriveRoomCapability(key, session.roomId);
			},
			send: (manifest) =>
				this.#enqueueOp(makeSend(this.#options.clock, '', undefined, manifest)).accepted
		};
	}

	#enqueue(text: string, replyTo?: string): { accepted: Promise<void>; saved: Promise<void> } {
		let op: Operation;
		try {
			// throws MessageTooLongError
			op = makeSend(
				this.#options.clock,
				text,
				replyTo as OpId | undefined,
				undefined,
				findMentions(text, this.mentionable)
			);
			this.#checkFitsRelay(op);
		} catch (error) {
			const rejected = Promise.reject(error);
			rejected.catch(() => undefined);
			return { accepted: rejected, saved: rejected };
		}
		this.setTyping(false);
		const queued = this.#enqueueOp(op);
		queued.accepted.then(
			() => this.#notify(text),
			() => undefined
		);
		return queued;
	}

	/** A notification envelope for members' offline devices (not in notes to self). */
	#notify(text: string): void {
		const publish = this.#options.publishNotification;
		if (!publish || this.kind === 'notes') return;
		const { epoch } = this.#options;
		const epochKey = this.#options.keys.get(epoch);
		if (!epochKey) return;
		const roomId = this.roomId;
		void sealNotification({
			roomId,
			epoch,
			key: notifyKeyFor(epochKey, roomId),
			signer: this.#options.signer,
			body: {
				c: this.id,
				t: this.name.slice(0, 100),
				n: this.#options.myName().slice(0, 64),
				p: previewOf(text)
			}
		}).then(publish, (error: unknown) =>
			console.warn('kith:push could not seal a notification', error)
		);
	}

	/**
	 * Throws TooLargeForRelayError when `op` alone would make an envelope whose
	 * frame the relay refuses: sealed, it could never be stored there, and it
	 * would hold back everything this device writes in the room after it.
	 */
	#checkFitsRelay(op: Operation): void {
		const most = this.#options.maxPlaintextBytes?.() ?? null;
		if (most === null) return;
		const bytes = encodeBatch({ ops: [op] }).length;
		if (bytes > most) throw new TooLargeForRelayError(bytes);
	}

	#enqueueOp(op: Operation): { accepted: Promise<void>; saved: Promise<void> } {
		const waiter = deferredPair();
		this.#outbox.push(op);
		this.#outboxWaiters.push(waiter);
		if (!this.#flushScheduled) {
			this.#flushScheduled = true;
			queueMicrotask(() => void this.#flushOutbox());
		}
		return waiter;
	}

	async #flushOutbox(): Promise<void> {
		this.#flushScheduled = false;
		const ops = this.#outbox;
		const waiters = this.#outboxWaiters;
		this.#outbox = [];
		this.#outboxWaiters = [];
		if (ops.length === 0) return;
		const { signer, epoch, keys, session } = this.#options;
		const key = keys.get(epoch);
		let sealed: EnvelopeId[] | null = null;
		try {
			if (!key) throw new MissingKeyError('No key for this conversation: refusing to send.');
			const most = this.#options.maxPlaintextBytes?.() ?? BATCH_BYTES;
			const encoded = encodeBatches(ops, Math.min(BATCH_BYTES, most));
			const batches = encoded.map((batch) => batch.ops);
			const device = toBase64Url(signer.publicKey);
			const request = { epoch, key, plaintexts: encoded.map((batch) => batch.plaintext) };
			await session.commit(request, (ids) => {
				// Shown at once as "Saving": the envelopes exist, their commit is pending.
				sealed = ids;
				const items: ReducerItem[] = [];
				batches.forEach((batch, i) => {
					const envelopeId = ids[i] as EnvelopeId;
					this.#seen.add(envelopeId);
					this.#unsaved.add(envelopeId);
					this.#trackOwn(envelopeId, batch);
					const bytes = session.doc.get(envelopeId);
					if (bytes) this.#learnOwnClock({ id: envelopeId, bytes });
					for (const op of batch) {
						if (op.type === 'receipt') this.#noteReceipt(this.#options.myUserId, op);
						items.push({ op, author: this.#options.myUserId, device, envelopeId });
						this.#mineHere.add(op.id);
					}
					if (batch.some((op) => op.type !== 'send')) {
						this.#ingesting = this.#ingesting.then(() => this.#ownMeta(batch, device));
					}
				});
				this.#reducer.add(items);
				this.#refresh();
				for (const waiter of waiters) waiter.accept();
			});
			this.#markSaved(sealed ?? []);
			for (const waiter of waiters) waiter.save();
		} catch (error) {
			const err = error instanceof Error ? error : new Error(String(error));
			this.#report(err);
			const ids: EnvelopeId[] = sealed ?? [];
			if (ids.length === 0) {
				// Never sealed: nothing is shown; the caller keeps the text.
				for (const waiter of waiters) waiter.fail(err);
				return;
			}
			// Sealed and shown, not yet committed: storage keeps it queued and
			// retries; keep it "Saving" until a commit confirms it.
			void this.#confirmLater(ids, key as SecretKey).then(() => {
				for (const waiter of waiters) waiter.save();
			});
		}
	}

	#markSaved(ids: readonly EnvelopeId[]): void {
		for (const id of ids) {
			this.#unsaved.delete(id);
			this.#statusChanged.add(id);
		}
		this.#refresh();
	}

	/**
	 * Storage writes are ordered: once any later commit succeeds, everything
	 * queued before it is on disk. Ask for an empty commit with back-off.
	 */
	async #confirmLater(ids: EnvelopeId[], key: SecretKey): Promise<void> {
		for (let delay = 1000; ; delay = Math.min(delay * 2, 30_000)) {
			await new Promise((resolve) => setTimeout(resolve, delay));
			try {
				await this.#options.session.commit({ epoch: this.#options.epoch, key, plaintexts: [] });
				this.#markSaved(ids);
				return;
			} catch {
				// still failing; the alert stays up
			}
		}
	}

	async #ingest(
		entries: EnvelopeEntry[],
		source: EntrySource,
		session: DocSession,
		opener: string | null
	): Promise<void> {
		const { keys } = this.#options;
		const current = session === this.#options.session;
		if (current) for (const entry of entries) this.#learnOwnClock(entry);
		const fresh = entries.filter((entry) => !this.#seen.has(entry.id));
		if (fresh.length === 0) return; // own inserts coming back: already reduced
		for (const entry of fresh) this.#seen.add(entry.id);
		const decoded: Decoded[] = [];
		// Bounded concurrency keeps memory flat when a 100k-entry doc loads cold.
		const CHUNK = 256;
		for (let i = 0; i < fresh.length; i += CHUNK) {
			const opened = await Promise.all(
				fresh.slice(i, i + CHUNK).map(async (entry) => {
					try {
						const envelope = await openEnvelope(entry.bytes, {
							roomId: session.roomId,
							keyForEpoch: (epoch) => keys.get(epoch),
							// Every entry in the doc passed the doc rules (signature included).
							verified: true
						});
						return { entry, envelope };
					} catch (error) {
						this.#refuse(entry.id, error);
						return null;
					}
				})
			);
			for (const result of opened) {
				if (!result) continue;
				let parsed: { ops: Operation[]; unknown: number };
				try {
					parsed = decodeBatch(result.envelope.plaintext);
				} catch (error) {
					this.#refuse(result.entry.id, error);
					continue;
				}
				this.#unknownVersion += parsed.unknown;
				const device = toBase64Url(result.envelope.signer);
				// A generation's seed (only its opener's counts): the surviving ops of
				// the generations before, each as an envelope of the device that signed it.
				const { own, seeded, seeds } = expandSeeds(
					{ entryId: result.entry.id, device, ops: parsed.ops },
					opener
				);
				if (current) {
					if (device === this.#myDevice && seeds.length > 0) this.#seeded = true;
					for (const seed of seeds) this.#noteSeedPart(seed);
				}
				for (const s of seeded) {
					decoded.push({ ...s, entryId: s.entryId as EnvelopeId, current, seeded: true });
				}
				if (own.length === 0) continue;
				if (current && device === this.#myDevice) for (const op of own) this.#mineHere.add(op.id);
				decoded.push({ entryId: result.entry.id, device, ops: own, current });
			}
		}
		const items = await this.#admit(decoded);
		if (items.length > 0) {
			this.#reducer.add(items);
			if (source === 'remote' && items.some((item) => item.op.type === 'send')) {
				this.#scheduleDelivered();
			}
		}
		this.#refresh();
	}

	/** The user a device signs for here: a roster member, or this device itself. */
	#authorOf(device: string): string | undefined {
		return (
			this.roster.ownerOf(device) ??
			(device === this.#myDevice ? this.#options.myUserId : undefined)
		);
	}

	/**
	 * Turn decoded envelopes into reducer items for the devices the roster
	 * admits; the gate holds the others until the roster grows (RosterGate),
	 * so arrival order does not matter.
	 */
	async #admit(decoded: Decoded[]): Promise<ReducerItem[]> {
		const items: ReducerItem[] = [];
		const rosterBefore = this.roster.version;
		await this.#gate.admit(
			decoded,
			(d, author, op) => {
				this.#options.clock.observe({ wall: op.hlc[0], counter: op.hlc[1] });
				if (op.type === 'receipt') {
					// A state vector names clocks of its own generation's doc: elsewhere
					// only the position counts.
					this.#noteReceipt(author, d.current === false ? { ...op, sv: [] } : op);
					// Read on another of this account's devices: its notifications here can go.
					if (
						op.kind === 'read' &&
						author === this.#options.myUserId &&
						d.device !== this.#myDevice
					) {
						this.#options.onReadElsewhere?.();
					}
				} else if (op.type === 'invite') {
					this.#noteInvite(op, author, d.device);
					if (op.invite === this.#options.expectInvite?.id) this.#checkInvite();
				} else if (op.type === 'epoch' && d.current) {
					this.#epochs.push({ op, device: d.device, user: author });
					this.#moveSoon();
				} else if (op.type === 'epoch' && op.epoch === this.#options.epoch) {
					this.#noteStart(op.hlc);
					this.#startEpochs.push({ op, device: d.device, user: author });
					if (this.#startEpochs.length > 1) this.#moveSoon();
				} else if (op.type === 'delete' && d.current && !d.seeded) {
					this.#scheduleCompaction();
				}
				if (
					op.type === 'member.add' ||
					op.type === 'member.role' ||
					op.type === 'member.remove' ||
					op.type === 'receipt' ||
					op.type === 'invite'
				) {
					this.#meta.push([d.device, author, op]);
				}
				items.push({ op, author, device: d.device, envelopeId: d.entryId });
			},
			(d) => {
				if (d.device !== this.#myDevice) return;
				if (d.current === false) {
					this.#closedOwn.add(d.entryId);
					for (const op of d.ops) if (CARRIED_TYPES.has(op.type)) this.#historyOwn.push(op);
				} else this.#trackOwn(d.entryId, d.ops);
			}
		);
		if (this.roster.version !== rosterBefore) this.#rosterChanged();
		return items;
	}

	/** Membership and invite ops this tab made itself (they never come back through #ingest). */
	async #ownMeta(ops: readonly Operation[], device: string): Promise<void> {
		const before = this.roster.version;
		const me = this.#options.myUserId;
		for (const op of ops) {
			if (op.type === 'member.add') {
				await this.#gate.applyOrWait(op, device);
				this.#meta.push([device, me, op]);
			} else if (op.type === 'member.role' || op.type === 'member.remove') {
				this.roster.applyChange(op, device);
				this.#meta.push([device, me, op]);
			} else if (op.type === 'epoch') {
				this.#epochs.push({ op, device, user: me });
				this.#moveSoon();
			} else if (op.type === 'delete') {
				this.#scheduleCompaction();
			} else if (op.type === 'seed') {
				this.#seeded = true;
				for (const seeded of seededOps(op)) {
					if (seeded.device === this.#myDevice) this.#mineHere.add(seeded.op.id);
				}
				this.#noteSeedPart(op);
			} else if (op.type === 'invite') {
				this.#noteInvite(op, me, device);
				this.#meta.push([device, me, op]);
			} else if (op.type === 'receipt') {
				this.#meta.push([device, me, op]);
			}
		}
		if (this.roster.version !== before) {
			this.#rosterChanged();
			this.#refresh();
		}
	}

	#rosterChanged(): void {
		this.#gate.recount(this.#reducer);
		const me = this.#options.myUserId;
		const verified = this.#options.verifiedContacts?.() ?? new Map<string, string>();
		this.members = this.roster.members().map((member) => {
			const name =
				member.user === me ? this.#options.myName() || member.name : member.name || 'Unknown';
			const half = verified.get(member.user);
			return {
				user: member.user,
				name,
				role: member.role,
				you: member.user === me,
				verified:
					member.user === me || half === undefined
						? ('no' as const)
						: half === this.safetyHalf(member.user)
							? ('yes' as const)
							: ('changed' as const)
			};
		});
		this.keyChanged = this.members.filter((m) => m.verified === 'changed').map((m) => m.name);
		this.standing = this.#standing();
		// Who may open a generation can change the one every replica follows.
		if (this.#epochs.length > 0 || this.#startEpochs.length > 1) this.#moveSoon();
		if (this.#epochs.length === 0 && this.#options.isLeader() && this.canAdmit) {
			this.#scheduleRotation();
		}
		this.systemLines = this.#systemLines();
		// Names shown on messages (authors, quotes, mentions) may have changed.
		this.#views = new WeakMap();
		// Statuses depend on who else is here: look at every own message again.
		for (const id of this.#ownClock.keys()) this.#statusChanged.add(id);
	}

	#refuse(id: string, error: unknown): void {
		if (error instanceof EnvelopeError && error.code === 'unsupported-version') {
			this.#unknownVersion += 1;
		} else {
			const reason = error instanceof Error ? error.message : String(error);
			this.#unreadable.set(id, reason);
			console.warn(`kith:conversation refused envelope ${id}: ${reason}`);
		}
	}

	/** The reducer's `version` the current views were made from. */
	#mappedVersion = 0;
	#viewList: MessageView[] = [];
	/** Messages whose status changed since the last refresh (by their envelope). */
	readonly #statusChanged = new Set<string>();

	/**
	 * Rebuild the views incrementally: the reducer keeps the identity of every
	 * message that did not change, so only the tail after the first change, and
	 * messages whose status changed, are mapped again. A send into a 100k
	 * conversation then costs O(changed), not O(history).
	 */
	#refresh(): void {
		const reducer = this.#reducer;
		const me = this.#options.myUserId;
		// The live list: no copy. Views before `changedSince` are still right.
		const messages = reducer.messages;
		const next = this.#viewList;
		let changed = false;
		if (reducer.version !== this.#mappedVersion) {
			const first = reducer.changedSince(this.#mappedVersion);
			next.length = Math.min(next.length, first);
			for (let i = first; i < messages.length; i++) {
				const message = messages[i] as Message;
				this.#byOpId.set(message.id, message);
				next.push(this.#view(message, me));
			}
			this.#mappedVersion = reducer.version;
			changed = true;
		}
		if (this.#statusChanged.size > 0) {
			changed = true;
			for (const envelopeId of this.#statusChanged) {
				const ops = this.#unfinished.get(envelopeId);
				if (!ops) continue;
				let done = true;
				for (const op of ops) {
					const index = findMessage(messages, op.hlc, op.id, me);
					if (index < 0) continue;
					const view = this.#view(messages[index] as Message, me);
					next[index] = view;
					if (view.status !== 'Read') done = false;
				}
				// "Read" is final: nothing about this envelope changes any more.
				if (done && ops.length > 0 && this.#ownClock.has(envelopeId)) {
					this.#unfinished.delete(envelopeId);
				}
			}
			this.#statusChanged.clear();
		}
		if (changed) this.#viewVersion++;
		const blocked = this.#options.blockedUsers?.() ?? NO_ONE;
		// The last message not from someone the user blocked (no copy of the list).
		let last: Message | undefined;
		for (let i = messages.length - 1; i >= 0 && !last; i--) {
			const message = messages[i] as Message;
			if (!blocked.has(message.author)) last = message;
		}
		this.lastActivity = last ? Math.max(last.hlc.wall, this.createdAt) : this.createdAt;
		this.preview = last
			? last.deleted
				? 'Message deleted'
				: last.text || !last.attachment
					? last.text.slice(0, 120)
					: `File: ${last.attachment.name.slice(0, 110)}`
			: '';
		this.unread = unreadCount(
			{ messages },
			me,
			this.#readMark ? { hlc: parseHlc(this.#readMark.hlc), id: this.#readMark.id as OpId } : null,
			blocked
		);
		const problems: string[] = [];
		if (this.#unreadable.size > 0) {
			problems.push(
				this.#unreadable.size === 1
					? '1 message could not be read: it was altered or cannot be decrypted. It was not shown.'
					: `${this.#unreadable.size} messages could not be read: they were altered or cannot be decrypted. They were not shown.`
			);
		}
		if (this.#unknownVersion > 0) {
			problems.push(
				`${this.#unknownVersion} item(s) need a newer version of Kith. They are kept and will show after an update.`
			);
		}
		if (problems.join() !== this.problems.join()) this.problems = problems;
		this.#options.onChange?.();
	}

	/** The user blocked or unblocked someone: every message is looked at again. */
	blockedChanged(): void {
		this.#views = new WeakMap();
		this.#mentions = null;
		const me = this.#options.myUserId;
		this.#viewList.length = 0;
		for (const message of this.#reducer.messages) this.#viewList.push(this.#view(message, me));
		this.#mappedVersion = this.#reducer.version;
		this.#viewVersion++;
		this.#refresh();
	}

	#view(message: Message, me: string): MessageView {
		const cached = this.#views.get(message);
		const mine = message.author === me;
		if (!mine && this.#options.blockedUsers?.().has(message.author)) {
			// Nothing of what they wrote: not the text, the file, the quote or the reactions.
			const view: MessageView = {
				key: `${message.author}:${message.id}`,
				id: message.id,
				authorName: this.#nameOf(message.author),
				mine,
				text: '',
				time: message.hlc.wall,
				status: null,
				readBy: NOBODY,
				edited: false,
				deleted: message.deleted,
				reactions: [],
				blocked: true
			};
			this.#views.set(message, view);
			return view;
		}
		let status: MessageStatus | null = null;
		let readBy: readonly string[] = NOBODY;
		if (mine) {
			const computed = this.#statusOf(message);
			status = computed.status;
			readBy = computed.readBy;
		}
		const quote = message.replyTo ? this.#quote(message.replyTo) : undefined;
		if (
			cached &&
			cached.status === status &&
			sameList(cached.readBy, readBy) &&
			sameQuote(cached.replyTo, quote)
		)
			return cached;
		const view: MessageView = {
			key: `${message.author}:${message.id}`,
			id: message.id,
			authorName: this.#nameOf(message.author),
			mine,
			text: message.text,
			...(message.attachment ? { attachment: message.attachment } : {}),
			time: message.hlc.wall,
			status,
			readBy,
			edited: message.edited,
			deleted: message.deleted,
			reactions: this.#reactionViews(message, me),
			...(quote !== undefined ? { replyTo: quote } : {}),
			...(message.mentions ? this.#mentionView(message.text, message.mentions, me) : {})
		};
		this.#views.set(message, view);
		return view;
	}

	/** How a message's mentions show: its text cut at each `@Name`, and whether it names the user. */
	#mentionView(
		text: string,
		users: readonly string[],
		me: string
	): Pick<MessageView, 'segments' | 'mentionsMe'> {
		const named: Mentionable[] = [];
		for (const user of users) {
			const name = this.roster.member(user)?.name;
			if (name) named.push({ user, name });
			if (user === me && this.#options.myName()) named.push({ user, name: this.#options.myName() });
		}
		const segments = mentionSegments(text, named).map((segment) =>
			segment.user === undefined ? segment : { ...segment, me: segment.user === me }
		);
		return { segments, mentionsMe: users.includes(me) };
	}

	/** Messages by op id (the latest of each), for quoting replies. */
	readonly #byOpId = new Map<string, Message>();

	/** How a reply shows the message it answers; null when that message is not held here. */
	#quote(id: string): MessageView['replyTo'] {
		const target = this.#byOpId.get(id);
		if (!target) return null;
		return {
			id,
			authorName: this.#nameOf(target.author),
			text: target.deleted
				? 'This message was deleted'
				: target.text || (target.attachment ? `File: ${target.attachment.name}` : '')
		};
	}

	#reactionViews(message: Message, me: string): MessageView['reactions'] {
		const blocked = this.#options.blockedUsers?.() ?? NO_ONE;
		const entries =
			blocked.size === 0
				? Object.entries(message.reactions)
				: Object.entries(message.reactions)
						.map(([emoji, users]) => [emoji, users.filter((user) => !blocked.has(user))] as const)
						.filter(([, users]) => users.length > 0);
		if (entries.length === 0) return NOBODY_REACTED;
		return entries.map(([emoji, users]) => ({
			emoji,
			names: users.map((user) => this.#nameOf(user)).sort((a, b) => a.localeCompare(b)),
			mine: users.includes(me)
		}));
	}

	#nameOf(user: string): string {
		if (user === this.#options.myUserId) return this.#options.myName() || 'You';
		return this.roster.member(user)?.name || 'Unknown';
	}

	/**
	 * An own message's status, from real acknowledgements only: "Saved" once
	 * on disk, "Sent" once the relay stored it (or someone else has it),
	 * "Delivered" once every other member's devices hold it, "Read" once every
	 * other member read up to it while holding it.
	 */
	#statusOf(message: Message): { status: MessageStatus; readBy: readonly string[] } {
		if (this.#unsaved.has(message.envelopeId)) return { status: 'Saving', readBy: NOBODY };
		// Of a closed generation: it went out before the change (or again after it, carried).
		if (this.#closedOwn.has(message.envelopeId)) return { status: 'Sent', readBy: NOBODY };
		// Written on another device of this account: it reached this one, so it went out.
		if (message.device !== this.#myDevice) return { status: 'Sent', readBy: NOBODY };
		const clock = this.#ownClock.get(message.envelopeId);
		if (clock === undefined) return { status: 'Saved', readBy: NOBODY };
		const me = this.#options.myUserId;
		const others = this.roster
			.members()
			.filter((member) => member.user !== me)
			.map((member) => ({ name: member.name || 'Unknown', book: this.#receipts.get(member.user) }));
		const client = this.#clientIdOf(message.device);
		const result = ownStatus(
			{ hlc: message.hlc, id: message.id, client, clock },
			others,
			this.#relayAck
		);
		return result.readBy.length === 0 ? { status: result.status, readBy: NOBODY } : result;
	}

	/** Yjs client ids of devices (a SHA-256 each), by device id. */
	readonly #clientIds = new Map<string, number>();

	#clientIdOf(device: string): number {
		let id = this.#clientIds.get(device);
		if (id === undefined) {
			id = clientIdFor(fromBase64Url(device));
			this.#clientIds.set(device, id);
		}
		return id;
	}

	/** Note the Yjs clock of an own envelope (its signed frame names it). */
	#learnOwnClock(entry: { id: string; bytes: Uint8Array }): void {
		if (this.#ownClock.has(entry.id) || !this.#unfinished.has(entry.id)) return;
		try {
			const frame = parseFrame(entry.bytes);
			// The signer is this device exactly when its key is this device's.
			if (!equalBytes(frame.signer, this.#options.signer.publicKey)) return;
			this.#ownClock.set(entry.id, frame.clock);
			insertSorted(this.#ownByClock, [frame.clock, entry.id]);
			this.#statusChanged.add(entry.id);
		} catch {
			// not an envelope: the doc rules would not have let it in
		}
	}

	/** Own envelopes in older generations (their receipts name other docs' clocks). */
	readonly #closedOwn = new Set<string>();

	/** Own envelopes by clock, to find those a relay acknowledgement covers. */
	readonly #ownByClock: Array<[number, string]> = [];

	#trackOwn(envelopeId: string, ops: readonly Operation[]): void {
		const sends = ops
			.filter((op) => op.type === 'send')
			.map((op) => ({ hlc: { wall: op.hlc[0], counter: op.hlc[1] }, id: op.id }));
		if (sends.length === 0) return;
		this.#unfinished.set(envelopeId, sends);
		const bytes = this.#options.session.doc.get(envelopeId as EnvelopeId);
		if (bytes) this.#learnOwnClock({ id: envelopeId, bytes });
	}

	#noteReceipt(author: string, op: Extract<Operation, { type: 'receipt' }>): void {
		let book = this.#receipts.get(author);
		if (!book) {
			book = new ReceiptBook();
			this.#receipts.set(author, book);
		}
		book.note(
			op.kind,
			{ hlc: { wall: op.upTo[0], counter: op.upTo[1] }, id: op.upToId },
			op.sv ?? []
		);
		if (author !== this.#options.myUserId) {
			for (const id of this.#unfinished.keys()) this.#statusChanged.add(id);
		}
	}

	/** The leader's relay connection changed status or acknowledged more. */
	setNet(
		status: 'connecting' | 'connected' | 'offline',
		relayState: ReadonlyMap<number, number>
	): void {
		this.connection =
			status === 'connected' ? 'Connected' : status === 'connecting' ? 'Connecting' : 'Offline';
		this.#watchInvite(status);
		const ack = relayState.get(this.#myClient) ?? 0;
		if (ack <= this.#relayAck) return;
		const before = this.#relayAck;
		this.#relayAck = ack;
		// Envelopes with before <= clock < ack are newly on the relay.
		let i = lowerBound(this.#ownByClock, before);
		for (; i < this.#ownByClock.length; i++) {
			const [clock, id] = this.#ownByClock[i] as [number, string];
			if (clock >= ack) break;
			this.#statusChanged.add(id);
		}
		this.#refresh();
	}

	// ---- confirming an admission ---------------------------------------------

	#inviteTimer: ReturnType<typeof setTimeout> | null = null;

	#inviteConfirmed(): boolean {
		const expect = this.#options.expectInvite;
		return !expect || (this.#invites.get(expect.id) ?? []).some((x) => x.device === expect.device);
	}

	/**
	 * Once connected, a room syncs within a second or two; if the inviter's
	 * invitation has still not shown up after UNCONFIRMED_AFTER_MS connected,
	 * the user is warned (and the warning goes as soon as it shows up).
	 */
	#watchInvite(status: 'connecting' | 'connected' | 'offline'): void {
		const expect = this.#options.expectInvite;
		if (!expect || this.#inviteConfirmed()) return this.#checkInvite();
		if (status !== 'connected') {
			if (this.#inviteTimer) clearTimeout(this.#inviteTimer);
			this.#inviteTimer = null;
			return;
		}
		this.#inviteTimer ??= setTimeout(() => {
			this.#inviteTimer = null;
			if (this.#inviteConfirmed()) return;
			this.unconfirmed =
				`Kith cannot confirm this conversation: ${expect.inviter}'s invitation is not in it. ` +
				`It may not be the conversation ${expect.inviter} shared.`;
		}, UNCONFIRMED_AFTER_MS);
	}

	#checkInvite(): void {
		if (!this.#inviteConfirmed()) return;
		if (this.#inviteTimer) clearTimeout(this.#inviteTimer);
		this.#inviteTimer = null;
		this.unconfirmed = null;
	}

	// ---- receipts --------------------------------------------------------------

	#scheduleDelivered(): void {
		if (!this.#options.isLeader() || this.#deliveredTimer) return;
		this.#deliveredTimer = setTimeout(() => {
			this.#deliveredTimer = null;
			void this.#sendReceipt('delivered');
		}, DELIVERED_DELAY_MS);
	}

	async #sendReceipt(kind: 'delivered' | 'read'): Promise<void> {
		if (this.roster.size < 2) return;
		const newest = newestFromOthers(this.#reducer.messages, this.#options.myUserId);
		if (!newest) return;
		const sv = decodeStateVector(this.#options.session.stateVector());
		if (kind === 'delivered') {
			const key = JSON.stringify([...sv]);
			if (key === this.#lastDeliveredSv) return;
			this.#lastDeliveredSv = key;
		} else {
			const key = `${hlcToString(newest.hlc)} ${newest.id}`;
			const mine = this.#receipts.get(this.#options.myUserId)?.read;
			if (key === this.#lastReadSent) return;
			if (mine && compareHlc(mine.hlc, newest.hlc) > 0) return;
			this.#lastReadSent = key;
		}
		const op = makeReceipt(
			this.#options.clock,
			kind,
			{ hlc: newest.hlc, id: newest.id as OpId },
			sv
		);
		await this.#enqueueOp(op).saved.catch(() => undefined);
	}

	// ---- membership and invitations ---------------------------------------

	/**
	 * This device enters the roster: the creator's first device by the
	 * genesis (roster.ts rule 1); a later device of a member (restored from a
	 * backup, or linked) by adding itself (rule 6). Safe to call again: an
	 * add that changes nothing is not written.
	 */
	async ensureInRoster(me: Omit<MemberAddOp, 'v' | 'id' | 'hlc' | 'type' | 'role'>): Promise<void> {
		await this.#ingesting;
		await this.#allLoaded;
		await this.#ingesting;
		// In, and certified under this user's newest self-signing key (after a
		// device removal each remaining device certifies itself again: rule 7).
		const record = this.roster.member(this.#options.myUserId);
		const mine = sskCertKey(me.ssk);
		// Whether this roster knows this device's self-signing key already (else
		// it is newer: this device took it in a device removal, rule 7).
		const known = mine !== null && record?.sskKeys.has(mine) === true;
		if (record?.devices.has(this.#myDevice) && known) return;
		// Revoked under a key older than the newest this roster knows: a newer
		// one removed this device, or this device has not taken it yet.
		const current = this.roster.currentSsk(this.#options.myUserId);
		if (record?.revoked.has(this.#myDevice) && known && current !== mine) return;
		const role = this.roster.membership.spans.has(this.#options.myUserId)
			? 'member' // rule 6: the role named is ignored
			: this.roster.creator === this.#options.myUserId
				? 'owner'
				: null;
		if (role === null) return;
		await this.#enqueueOp(makeMemberAdd(this.#options.clock, { ...me, role })).saved;
		await this.#ingesting;
	}

	/** Add an admitted joiner. */
	async addMember(member: Omit<MemberAddOp, 'v' | 'id' | 'hlc' | 'type' | 'role'>): Promise<void> {
		await this.#ingesting;
		const existing = this.roster.member(member.user);
		if (existing && member.devices.every((device) => existing.devices.has(device))) return;
		await this.#enqueueOp(makeMemberAdd(this.#options.clock, { ...member, role: 'member' })).saved;
		await this.#ingesting;
	}

	/** Record a new invitation in the conversation, so every admin device can admit. */
	async recordInvite(invite: { invite: OpId; secret: string; expires: number }): Promise<void> {
		await this.#enqueueOp(makeInvite(this.#options.clock, invite)).saved;
		await this.#ingesting;
	}

	/**
	 * Invitations recorded here by owners and admins that have not expired
	 * nor been revoked: an invitation's expiry is the earliest any owner or
	 * admin recorded for it, so revoking is recording it again expiring now.
	 */
	invites(now = Date.now()): Array<{ invite: string; secret: string; expires: number }> {
		return liveInvites(this.#invites.values(), this.roster, now);
	}

	/** Revoke an invitation (owners and admins): nobody is let in with its link from now on. */
	async revokeInvite(invite: string): Promise<void> {
		await this.#ingesting;
		if (!this.canAdmit) throw new Error('Only the owner and admins can revoke invite links.');
		const recorded = this.#invites.get(invite)?.[0];
		if (!recorded) throw new Error('This invitation is not recorded in the conversation.');
		const { secret } = recorded.op;
		await this.#enqueueOp(
			makeInvite(this.#options.clock, { invite: invite as OpId, secret, expires: Date.now() })
		).saved;
		await this.#ingesting;
	}

	#systemLines(): SystemLine[] {
		if (this.kind === 'notes') return [];
		const me = this.#options.myUserId;
		const subject = (user: string) => (user === me ? 'You' : this.#nameOf(user));
		const object = (user: string) => (user === me ? 'you' : this.#nameOf(user));
		return this.roster.membership.events.map((event) => {
			const { at } = event;
			let text: string;
			switch (event.kind) {
				case 'joined':
					text =
						event.by === event.user
							? `${subject(event.user)} created this conversation`
							: `${subject(event.by)} added ${object(event.user)}`;
					break;
				case 'role':
					text =
						event.role === 'admin'
							? `${subject(event.by)} made ${object(event.user)} an admin`
							: event.role === 'owner'
								? `${subject(event.by)} made ${object(event.user)} an owner`
								: `${subject(event.by)} dismissed ${object(event.user)} as admin`;
					break;
				case 'owner':
					text = `${subject(event.user)} ${event.user === me ? 'are' : 'is'} now the owner`;
					break;
				case 'removed':
					text = `${subject(event.by)} removed ${object(event.user)}`;
					break;
				case 'left':
					text = `${subject(event.user)} left`;
					break;
			}
			return {
				key: `sys:${at.signer}:${at.id}:${event.kind}:${event.user}`,
				time: at.hlc.wall,
				text
			};
		});
	}

	// ---- removal, leaving and generations ------------------------------------

	/** Epoch ops of the current generation (for the next one), with their signers. */
	readonly #epochs: HeldEpoch[] = [];
	/** This device wrote its seed into the current generation (it opened it). */
	#seeded = false;
	#moveScheduled = false;
	#moved = false;

	#standing(): Standing {
		const me = this.#options.myUserId;
		const membership = this.roster.membership;
		if (membership.members.has(me) || !membership.spans.has(me)) return 'member';
		for (let i = membership.events.length - 1; i >= 0; i--) {
			const event = membership.events[i];
			if (event?.user !== me) continue;
			if (event.kind === 'left') return 'left';
			if (event.kind === 'removed') return 'removed';
		}
		return 'removed';
	}

	#moveSoon(): void {
		if (this.#moveScheduled || this.#moved) return;
		this.#moveScheduled = true;
		this.#ingesting = this.#ingesting.then(async () => {
			this.#moveScheduled = false;
			try {
				await this.#considerMove();
			} catch (error) {
				this.#report(error);
			}
		});
	}

	/**
	 * Follow the next generation once this generation holds its epoch op: the
	 * least by stamp among those its opener could sign (an owner or admin then),
	 * so every replica follows the same one (generation.ts).
	 */
	async #considerMove(): Promise<void> {
		const { dhSecret, onGeneration, epoch } = this.#options;
		if (this.#moved || !dhSecret || !onGeneration) return;
		// Another opener's generation of this epoch wins: follow it instead.
		const started = await this.#startedBy();
		if (started?.next && started.next.room !== this.roomId) {
			this.#moved = true;
			onGeneration(started.next);
			return;
		}
		const winner = followedEpoch(this.#epochs, epoch + 1, this.roster.membership);
		if (!winner) return;
		const next = await openGeneration(this.id, winner.op, this.#myDevice, dhSecret);
		if (!next) {
			if (this.standing === 'member') {
				console.warn(
					`kith:conversation ${this.id}: the next generation has no lockbox for this device`
				);
			}
			return;
		}
		if (this.#moved) return;
		this.#moved = true;
		onGeneration(next);
	}

	/**
	 * Remove a member (owners and admins; membership.ts says whom), then open
	 * a new generation without them: they keep what they had and read nothing
	 * after. Rejects with why when the rules would refuse it everywhere.
	 */
	async removeMember(user: string): Promise<void> {
		await this.#ingesting;
		const me = this.#options.myUserId;
		const mine = this.roster.roleOf(me);
		const theirs = this.roster.roleOf(user);
		if (theirs === undefined) throw new Error('They are not a member of this conversation.');
		if (user === me) return this.leave();
		if (mine !== 'owner' && mine !== 'admin') {
			throw new Error('Only owners and admins can remove members.');
		}
		if (theirs === 'owner' && mine !== 'owner') {
			throw new Error('Only an owner can remove an owner.');
		}
		// The removal and the next generation travel in one envelope: whoever
		// sees one sees the other, so nobody opens a second generation for it.
		await this.#openGeneration(user, makeMemberRemove(this.#options.clock, user));
	}

	/**
	 * Once what arrived so far is taken in: whether this session is still the
	 * conversation's (it did not decide to follow another generation).
	 */
	async stillCurrent(): Promise<boolean> {
		await this.#ingesting;
		return !this.#moved;
	}

	/** Leave: the user is removed by their own hand; an owner or admin then rotates the key. */
	async leave(): Promise<void> {
		await this.#ingesting;
		const me = this.#options.myUserId;
		if (this.roster.roleOf(me) === undefined) return;
		await this.#enqueueOp(makeMemberRemove(this.#options.clock, me)).saved;
		await this.#ingesting;
	}

	/**
	 * Leader, owner or admin device: when someone left or was removed and no
	 * new generation followed yet, open one (the user who left cannot).
	 */
	async rotateIfNeeded(): Promise<void> {
		await this.#ingesting;
		if (this.#moved || this.#epochs.length > 0 || !this.canAdmit) return;
		if (!this.#removedSinceStart() && !this.#revokedSinceStart()) return;
		if (!this.#firstAdmin()) return;
		await this.#openGeneration();
	}

	/**
	 * Someone left or was removed after this generation began (a removal the
	 * seed repeats is done). Two admins removing two people at once: the
	 * generation every replica follows is the one of the lesser epoch op, so
	 * the other removal is stamped after it began, and it rotates again.
	 */
	#removedSinceStart(): boolean {
		const { events } = this.roster.membership;
		const last = events.findLast((e) => e.kind === 'removed' || e.kind === 'left');
		if (!last) return false;
		const since = this.#startHlc;
		return since === null ? this.#options.epoch === 0 : compareHlc(last.at.hlc, since) > 0;
	}

	/**
	 * A member took a new self-signing key (they removed one of their devices:
	 * roster.ts rule 7) after this generation began: the removed device holds
	 * this generation's key, so a new one must follow.
	 */
	#revokedSinceStart(): boolean {
		const at = this.roster.sskChangedAt();
		if (!at) return false;
		const since = this.#startHlc;
		return since === null ? this.#options.epoch === 0 : compareHlc(at.hlc, since) > 0;
	}

	/** Epoch ops, in the generations before, that opened one with this generation's epoch. */
	readonly #startEpochs: HeldEpoch[] = [];

	/**
	 * The epoch op every replica follows into this epoch (generation.ts
	 * `followedEpoch`), and this device's lockbox in it (null: none, or it
	 * does not open). Null for the first generation, or before it is held.
	 */
	async #startedBy(): Promise<{ op: EpochOp; next: GenerationKey | null } | null> {
		const { dhSecret, epoch } = this.#options;
		if (epoch === 0 || !dhSecret) return null;
		const winner = followedEpoch(this.#startEpochs, epoch, this.roster.membership);
		if (!winner) return null;
		try {
			return {
				op: winner.op,
				next: await openGeneration(this.id, winner.op, this.#myDevice, dhSecret)
			};
		} catch (error) {
			console.warn(
				`kith:conversation ${this.id}: a lockbox of this generation does not open`,
				error
			);
			return { op: winner.op, next: null };
		}
	}

	/** Whether this user is the owner or admin who joined first: the one who rotates and compacts. */
	#firstAdmin(): boolean {
		// The first owner or admin by join order does it, so several do not race.
		const first = this.roster
			.members()
			.filter((m) => m.role === 'owner' || m.role === 'admin')
			.sort((a, b) => {
				const sa = this.roster.membership.members.get(a.user)?.since;
				const sb = this.roster.membership.members.get(b.user)?.since;
				return sa && sb ? compareHlc(sa.hlc, sb.hlc) : 0;
			})[0];
		return first?.user === this.#options.myUserId;
	}

	#compactionTimer: ReturnType<typeof setTimeout> | null = null;

	/**
	 * A message was deleted for everyone: its envelope (and its text) stays in
	 * this generation's stores until the next one. The first owner or admin
	 * compacts a little later — a new generation seeded with what survives —
	 * so the old one can be retired everywhere. Large generations are left
	 * alone here (re-sealing them costs too much to do per delete).
	 */
	#scheduleCompaction(): void {
		if (this.#compactionTimer || this.#moved) return;
		if (!this.#options.isLeader() || !this.canAdmit) return;
		this.#compactionTimer = setTimeout(() => {
			this.#compactionTimer = null;
			void this.compact().catch((error: unknown) => this.#report(error));
		}, COMPACT_DELAY_MS);
	}

	/** Open a new generation seeded with the surviving ops (see #scheduleCompaction). */
	async compact(): Promise<void> {
		await this.#ingesting;
		if (this.#moved || this.#epochs.length > 0 || !this.canAdmit || !this.#firstAdmin()) return;
		if (this.#options.session.doc.size > AUTO_COMPACT_MAX_ENVELOPES) return;
		await this.#openGeneration();
	}

	/**
	 * The periodic part of compaction (leader, first owner or admin, at open):
	 * a generation that grew by many envelopes since it began (receipts,
	 * edits, reactions pile up) and is at least a day old is compacted, large
	 * or not: storage stays bounded by what the conversation shows.
	 */
	async compactIfDue(now = Date.now()): Promise<void> {
		await this.#allLoaded;
		await this.#ingesting;
		if (this.#moved || this.#epochs.length > 0 || !this.canAdmit || !this.#firstAdmin()) return;
		const began = this.#startHlc?.wall ?? this.createdAt;
		if (now - began < PERIODIC_COMPACT_AGE_MS) return;
		const grown = this.#options.session.doc.size - this.#seedParts.size;
		if (grown < PERIODIC_COMPACT_ENVELOPES) return;
		await this.#openGeneration();
	}

	/**
	 * When this generation began, as far as this replica knows: the least of
	 * its epoch op (held in the generation before) and its opener's seed.
	 * Removals stamped before it are done (they are why it exists).
	 */
	#startHlc: Hlc | null = null;

	#noteStart(tuple: readonly [number, number]): void {
		const hlc = { wall: tuple[0], counter: tuple[1] };
		if (this.#startHlc === null || compareHlc(hlc, this.#startHlc) < 0) this.#startHlc = hlc;
	}

	#opening: Promise<void> | null = null;
	#rotationTimer: ReturnType<typeof setTimeout> | null = null;

	/**
	 * Someone left: the first owner or admin rotates the key, after a pause in
	 * which an epoch op already written elsewhere has time to arrive.
	 */
	#scheduleRotation(): void {
		if (this.#rotationTimer || this.#moved) return;
		this.#rotationTimer = setTimeout(() => {
			this.#rotationTimer = null;
			void this.rotateIfNeeded().catch((error: unknown) => this.#report(error));
		}, ROTATION_DELAY_MS);
	}

	/**
	 * Write the epoch op of the next generation: room and key sealed to every
	 * member device (but `without`'s), after `first` (a removal) in the same
	 * envelope. One at a time.
	 */
	#openGeneration(without?: string, first?: Operation): Promise<void> {
		const run = async () => {
			const epoch = this.#options.epoch + 1;
			if (this.#moved || this.#epochs.some((e) => e.op.epoch === epoch)) return;
			const devices = new Map<string, string>();
			for (const member of this.roster.members()) {
				if (member.user === without) continue;
				for (const [device, dh] of member.devices) devices.set(device, dh);
			}
			if (!devices.has(this.#myDevice)) return;
			const boxes = await sealGeneration(
				this.id,
				{ room: newRoomId(), epoch, key: newSecretKey(), opener: this.#myDevice },
				devices
			);
			const ops = first ? [first] : [];
			ops.push(makeEpoch(this.#options.clock, epoch, boxes));
			await Promise.all(ops.map((op) => this.#enqueueOp(op).saved));
			await this.#ingesting;
		};
		const next = (this.#opening ?? Promise.resolve()).then(run);
		this.#opening = next.catch(() => undefined);
		return next;
	}

	/**
	 * The device that opened this generation writes its seed: the surviving
	 * operations of the generations before (compaction.ts), so the view stays
	 * the same, members admitted later get the same membership, and the old
	 * generations can be retired. Safe to call again.
	 */
	async ensureSeed(): Promise<void> {
		const { opener, epoch } = this.#options;
		if (!opener || opener !== this.#myDevice) return;
		await this.#allLoaded;
		await this.#ingesting;
		if (this.#seeded) return;
		const roster = this.roster;
		// Membership ops go whole (the replay judges them again; a leave is stamped
		// at the end of its author's span); others only when they count.
		const held = this.#reducer.itemsWhere((item) => {
			if (item.op.type.startsWith('member.')) return true;
			const hlc = { wall: item.op.hlc[0], counter: item.op.hlc[1] };
			return (
				roster.counts(item.author, hlc, item.op.id) &&
				roster.deviceCounts(item.device, hlc, item.op.id)
			);
		});
		const parts = seedParts(survivingOps(held));
		if (parts.length === 0) return;
		this.#seeded = true;
		await Promise.all(
			parts.map(
				(part, i) =>
					this.#enqueueOp(makeSeed(this.#options.clock, epoch, i, parts.length, part)).saved
			)
		);
	}

	/** Parts of the opener's seed held, of how many. */
	readonly #seedParts = new Set<number>();
	#seedTotal = 0;
	/** Op ids this device's ops have in the current generation (sealed here or seeded). */
	readonly #mineHere = new Set<string>();
	/** This device's ops read from older generations (what the seed must cover). */
	readonly #historyOwn: Operation[] = [];
	#retireAsked = false;
	/** This device's ops in abandoned generations of this epoch (see `abandoned`). */
	readonly #abandonedOwn: Operation[] = [];

	/** Read what this device wrote in an abandoned generation (its seed aside). */
	async #readAbandoned(session: DocSession, key: SecretKey): Promise<void> {
		await session.loaded;
		for (const entry of session.entries()) {
			try {
				const envelope = await openEnvelope(entry.bytes, {
					roomId: session.roomId,
					keyForEpoch: () => key,
					verified: true
				});
				if (toBase64Url(envelope.signer) !== this.#myDevice) continue;
				const { ops } = decodeBatch(envelope.plaintext);
				for (const op of ops) if (CARRIED_TYPES.has(op.type)) this.#abandonedOwn.push(op);
			} catch (error) {
				console.warn(`kith:conversation ${this.id}: an abandoned envelope does not open`, error);
			}
		}
	}

	#noteSeedPart(op: Extract<Operation, { type: 'seed' }>): void {
		this.#noteStart(op.hlc);
		this.#seedParts.add(op.part);
		this.#seedTotal = op.parts;
		if (this.#seedParts.size >= this.#seedTotal) {
			this.#ingesting = this.#ingesting.then(() => this.#afterSeed());
		}
	}

	/**
	 * The whole seed is here: re-publish what this device wrote before that it
	 * does not cover (written offline, or after the opener moved), then let
	 * the app retire the old generations.
	 */
	async #afterSeed(): Promise<void> {
		if (this.#retireAsked || (this.#options.history ?? []).length === 0) return;
		await this.#allLoaded;
		this.#retireAsked = true;
		const missing = [...this.#historyOwn, ...this.#abandonedOwn].filter(
			(op) => !this.#mineHere.has(op.id)
		);
		if (missing.length > 0) {
			try {
				await this.#republish(missing);
			} catch (error) {
				this.#retireAsked = false;
				this.#report(error);
				return;
			}
		}
		const opened = this.#options.opener === this.#myDevice;
		const expected = opened
			? this.roster.members().flatMap((member) => [...member.devices.keys()])
			: null;
		this.#options.onRetire?.(expected);
	}

	/** Re-publish ops this device wrote in a generation before (same ids and clocks). */
	async #republish(ops: readonly Operation[]): Promise<void> {
		if (ops.length === 0) return;
		await Promise.all(ops.map((op) => this.#enqueueOp(op).saved));
	}

	/**
	 * Make a member an admin, or an admin a member again (membership.ts:
	 * owners and admins may). Refused here, with a message, when the rules
	 * would refuse it everywhere.
	 */
	async setRole(user: string, role: 'admin' | 'member'): Promise<void> {
		await this.#ingesting;
		const mine = this.roster.roleOf(this.#options.myUserId);
		const theirs = this.roster.roleOf(user);
		if (theirs === undefined) throw new Error('They are not a member of this conversation.');
		if (mine !== 'owner' && mine !== 'admin') {
			throw new Error('Only owners and admins can change roles.');
		}
		if (theirs === 'owner') throw new Error('The owner’s role cannot be changed.');
		if (theirs === role) return;
		await this.#enqueueOp(makeMemberRole(this.#options.clock, user, role)).saved;
		await this.#ingesting;
	}

	/** Whether this device may admit joiners (it is an owner's or admin's). */
	get canAdmit(): boolean {
		return this.roster.canAdd(this.#myDevice);
	}

	/** The files of the messages shown (a deleted message has none): what a backup may include. */
	attachments(): FileManifest[] {
		return this.#reducer.messages.flatMap((message) =>
			message.attachment ? [message.attachment] : []
		);
	}

	// ---- safety numbers -------------------------------------------------------

	readonly #safetyHalves = new Map<string, string>();

	/** A member's half of safety numbers (cached), or '' for a non-member. */
	safetyHalf(user: string): string {
		if (!this.roster.member(user)) return '';
		let half = this.#safetyHalves.get(user);
		if (half === undefined) {
			half = safetyHalf({ user });
			this.#safetyHalves.set(user, half);
		}
		return half;
	}

	/** The safety number of this account and `user`, as both see it ('' for a non-member). */
	safetyNumberWith(user: string): string {
		const me = this.#options.myUserId;
		const mine = this.safetyHalf(me);
		const theirs = this.safetyHalf(user);
		if (!mine || !theirs) return '';
		return joinHalves({ user: me, half: mine }, { user, half: theirs });
	}

	/** The vault's verified contacts changed: recompute every member's verification. */
	verificationChanged(): void {
		this.#rosterChanged();
	}

	// ---- search -----------------------------------------------------------

	/** The messages as the search index reads them (lib/search): in memory, never stored. */
	get searchSource(): SearchSource {
		const reducer = this.#reducer;
		return {
			id: this.id,
			version: reducer.version,
			length: reducer.messages.length,
			at(index) {
				const m = reducer.messages[index] as Message;
				return { id: m.id, author: m.author, text: m.text, deleted: m.deleted, time: m.hlc.wall };
			},
			changedSince: (version) => reducer.changedSince(version)
		};
	}

	#mentions: { version: number; messages: Message[] } | null = null;

	/** Messages by others that mention the user (not deleted), oldest first. */
	mentionsOfMe(): readonly Message[] {
		const reducer = this.#reducer;
		if (this.#mentions?.version === reducer.version) return this.#mentions.messages;
		const me = this.#options.myUserId;
		const blocked = this.#options.blockedUsers?.() ?? NO_ONE;
		const messages: Message[] = [];
		for (const m of reducer.messages) {
			if (m.mentions === undefined || m.author === me || !m.mentions.includes(me)) continue;
			if (!blocked.has(m.author)) messages.push(m);
		}
		this.#mentions = { version: reducer.version, messages };
		return messages;
	}

	/** A member's name as this conversation shows it. */
	authorName(user: string): string {
		return this.#nameOf(user);
	}

	// ---- typing (awareness) -----------------------------------------------

	#typingSent = false;
	#typingRefresh: ReturnType<typeof setTimeout> | null = null;

	/** The user is (or stopped) writing in the composer. */
	setTyping(active: boolean): void {
		if (!this.#options.publishAwareness) return;
		if (active === this.#typingSent && !active) return;
		if (active && this.#typingSent) return; // refreshed by the timer
		this.#typingSent = active;
		if (this.#typingRefresh) clearTimeout(this.#typingRefresh);
		this.#typingRefresh = null;
		void this.#publishTyping(active);
		if (active) {
			// Stops by itself: a closed laptop must not type forever.
			this.#typingRefresh = setTimeout(() => this.setTyping(false), TYPING_SHOW_MS - 1500);
		}
	}

	async #publishTyping(active: boolean): Promise<void> {
		const { epoch, keys, signer, session } = this.#options;
		const key = keys.get(epoch);
		if (!active || !key) {
			this.#options.publishAwareness?.(null);
			return;
		}
		const sealed = await sealEnvelope({
			clock: AWARENESS_CLOCK,
			roomId: session.roomId,
			epoch,
			key,
			signer,
			plaintext: utf8Encode(JSON.stringify({ typing: true }))
		});
		if (this.#typingSent) this.#options.publishAwareness?.(sealed.bytes);
	}

	/** Remote awareness states arrived (remote client id → encrypted state). */
	async setAwareness(states: ReadonlyMap<number, Uint8Array>): Promise<void> {
		const { session, keys } = this.#options;
		const now = Date.now();
		const seen = new Set<number>();
		for (const [client, bytes] of states) {
			try {
				const opened = await openEnvelope(bytes, {
					roomId: session.roomId,
					keyForEpoch: (epoch) => keys.get(epoch)
				});
				const device = toBase64Url(opened.signer);
				const user = this.roster.ownerOf(device);
				if (!user || user === this.#options.myUserId || clientIdFor(opened.signer) !== client)
					continue;
				if (this.#options.blockedUsers?.().has(user)) continue;
				const state = JSON.parse(utf8Decode(opened.plaintext)) as { typing?: unknown };
				if (state.typing !== true) continue;
				seen.add(client);
				this.#typingSeen.set(client, { name: this.#nameOf(user), until: now + TYPING_SHOW_MS });
			} catch {
				// an unreadable state is ignored: it shows nothing
			}
		}
		for (const client of [...this.#typingSeen.keys()]) {
			if (!seen.has(client)) this.#typingSeen.delete(client);
		}
		this.#updateTyping();
	}

	#updateTyping(): void {
		const now = Date.now();
		const names = new Set<string>();
		let next = Infinity;
		for (const [client, seen] of this.#typingSeen) {
			if (seen.until <= now) this.#typingSeen.delete(client);
			else {
				names.add(seen.name);
				next = Math.min(next, seen.until);
			}
		}
		const list = [...names].sort();
		if (list.join('\n') !== this.typing.join('\n')) this.typing = list;
		if (this.#typingTimer) clearTimeout(this.#typingTimer);
		this.#typingTimer = Number.isFinite(next)
			? setTimeout(() => this.#updateTyping(), next - now + 50)
			: null;
	}

	#report(error: unknown): void {
		const err = error instanceof Error ? error : new Error(String(error));
		this.#options.onReport?.(err);
	}
}

interface Waiter {
	accepted: Promise<void>;
	saved: Promise<void>;
	accept(): void;
	save(): void;
	fail(error: Error): void;
}

function deferredPair(): Waiter {
	let accept!: () => void;
	let save!: () => void;
	let rejectAccepted!: (e: Error) => void;
	let rejectSaved!: (e: Error) => void;
	const accepted = new Promise<void>((resolve, reject) => {
		accept = resolve;
		rejectAccepted = reject;
	});
	const saved = new Promise<void>((resolve, reject) => {
		save = resolve;
		rejectSaved = reject;
	});
	// A caller may await only one of the two; the other must not be an unhandled rejection.
	saved.catch(() => undefined);
	accepted.catch(() => undefined);
	return {
		accepted,
		saved,
		accept,
		save: () => {
			accept();
			save();
		},
		fail: (error) => {
			rejectAccepted(error);
			rejectSaved(error);
		}
	};
}

/** Index of the message (hlc, id, author) in display order, or -1. */
function findMessage(messages: readonly Message[], hlc: Hlc, id: string, author: string): number {
	let lo = 0;
	let hi = messages.length;
	while (lo < hi) {
		const mid = (lo + hi) >>> 1;
		const m = messages[mid] as Message;
		const order =
			compareHlc(m.hlc, hlc) ||
			(m.id < id ? -1 : m.id > id ? 1 : 0) ||
			(m.author < author ? -1 : m.author > author ? 1 : 0);
		if (order === 0) return mid;
		if (order < 0) lo = mid + 1;
		else hi = mid;
	}
	return -1;
}

/** Longest a slice of the after-restore rescan of own messages runs. */
const RESCAN_SLICE_MS = 8;
const NOBODY: readonly string[] = Object.freeze([]);
const NOBODY_REACTED: MessageView['reactions'] = Object.freeze([]);

/** Whether a reply's quote is unchanged (its target was edited or deleted since, or arrived). */
function sameQuote(a: MessageView['replyTo'], b: MessageView['replyTo']): boolean {
	if (!a || !b) return a === b;
	return a.id === b.id && a.authorName === b.authorName && a.text === b.text;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
	return a === b || (a.length === b.length && a.every((x, i) => x === b[i]));
}

/** First index whose clock is >= `clock`. */
function lowerBound(list: ReadonlyArray<[number, string]>, clock: number): number {
	let lo = 0;
	let hi = list.length;
	while (lo < hi) {
		const mid = (lo + hi) >>> 1;
		if ((list[mid] as [number, string])[0] < clock) lo = mid + 1;
		else hi = mid;
	}
	return lo;
}

function insertSorted(list: Array<[number, string]>, item: [number, string]): void {
	const last = list.at(-1);
	if (!last || last[0] <= item[0]) list.push(item);
	else list.splice(lowerBound(list, item[0]), 0, item);
}

export type { EnvelopeId };
