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
	makeSend,
	parseHlc,
	unreadCount,
	type ConversationState,
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
import { EnvelopeError, openEnvelope } from '../envelope';
import type { ConversationKind, ConversationHandle, MessageStatus, MessageView } from './types';
import type { DocSession, EntrySource } from './doc-session';

/** Most plaintext bytes sealed into one envelope when batching a burst. */
const BATCH_BYTES = 192 * 1024;

export interface Author {
	userId: string;
	name: string;
	mine: boolean;
}

export interface ConversationSessionOptions {
	id: ConversationId;
	name: string;
	kind: ConversationKind;
	createdAt: number;
	epoch: number;
	keys: Map<number, SecretKey>;
	session: DocSession;
	signer: Signer;
	clock: HlcClock;
	/** The signing device → its author, or null for a device this conversation does not admit. */
	resolveAuthor(deviceId: string): Author | null;
	myUserId: string;
	/** Restored reducer state from an encrypted snapshot. */
	restored?: unknown;
	onChange?: () => void;
	/** The user has seen the newest message; the app moves the read position in the vault. */
	onMarkRead?: (session: ConversationSession) => void;
	onReport?: (error: Error) => void;
}

export class ConversationSession implements ConversationHandle {
	readonly id: ConversationId;
	readonly kind: ConversationKind;
	readonly createdAt: number;
	name = $state('');
	messages = $state.raw<readonly MessageView[]>([]);
	problems = $state.raw<readonly string[]>([]);
	loading = $state(true);
	unread = $state(0);
	lastActivity = $state(0);
	preview = $state('');

	readonly #options: ConversationSessionOptions;
	readonly #reducer: ConversationReducer;
	/** Envelope ids this tab sealed that are not yet committed to storage. */
	readonly #unsaved = new Set<string>();
	/** Envelopes already reduced (or refused), so none is decrypted twice. */
	readonly #seen = new Set<string>();
	readonly #views = new WeakMap<Message, MessageView>();
	#outbox: Operation[] = [];
	#outboxWaiters: Waiter[] = [];
	#flushScheduled = false;
	#readMark: { hlc: string; id: string } | null = null;
	#unknownVersion = 0;
	#unreadable = new Map<string, string>();

	constructor(options: ConversationSessionOptions) {
		this.#options = options;
		this.id = options.id;
		this.kind = options.kind;
		this.createdAt = options.createdAt;
		this.name = options.name;
		this.#reducer = options.restored
			? ConversationReducer.deserialize(options.restored as never)
			: new ConversationReducer();
		this.lastActivity = options.createdAt;
		if (options.restored) {
			// The clock must never issue below what this conversation already holds.
			const last = this.#reducer.state.lastActivity;
			if (last) options.clock.observe(last);
			this.#refresh();
			this.loading = false;
		}
		options.session.onEntries((entries, source) => void this.#ingest(entries, source));
		void options.session.loaded.then(
			() => {
				this.loading = false;
			},
			(error: unknown) => this.#report(error)
		);
	}

	get roomId() {
		return this.#options.session.roomId;
	}

	get session(): DocSession {
		return this.#options.session;
	}

	/** Whether every entry held is reduced and nothing is unsaved: a snapshot is safe now. */
	get settled(): boolean {
		return this.#unsaved.size === 0 && this.#outbox.length === 0 && this.#options.session.isLoaded;
	}

	snapshotData(): unknown {
		return this.#reducer.serialize();
	}

	setReadMark(mark: { hlc: string; id: string } | null): void {
		this.#readMark = mark;
		this.#refresh();
	}

	/** The position of the newest message, for read marks. */
	newestPosition(): { hlc: string; id: string } | null {
		const last = this.#reducer.state.messages.at(-1);
		return last ? { hlc: hlcToString(last.hlc), id: last.id } : null;
	}

	markRead(): void {
		this.#options.onMarkRead?.(this);
	}

	/**
	 * Send a message. Resolves once it is accepted — sealed and shown as
	 * "Saving" — so the composer can take the next one; rejects (and nothing
	 * is shown) when the text is refused, e.g. MessageTooLongError. Storage is
	 * then retried until the message is "Saved"; a full disk shows an alert.
	 */
	send(text: string): Promise<void> {
		return this.#enqueue(text).accepted;
	}

	/** Send and wait until the message is committed to storage ("Saved"). */
	sendSaved(text: string): Promise<void> {
		return this.#enqueue(text).saved;
	}

	/** Send many messages as one burst; resolves when all are "Saved". */
	async sendMany(texts: string[]): Promise<void> {
		await Promise.all(texts.map((text) => this.#enqueue(text).saved));
	}

	#enqueue(text: string): { accepted: Promise<void>; saved: Promise<void> } {
		let op: Operation;
		try {
			op = makeSend(this.#options.clock, text); // throws MessageTooLongError
		} catch (error) {
			const rejected = Promise.reject(error);
			rejected.catch(() => undefined);
			return { accepted: rejected, saved: rejected };
		}
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
			const batches = splitBatches(ops);
			const device = toBase64Url(signer.publicKey);
			const request = {
				epoch,
				key,
				plaintexts: batches.map((batch) => encodeBatch({ ops: batch }))
			};
			await session.commit(request, (ids) => {
				// Shown at once as "Saving": the envelopes exist, their commit is pending.
				sealed = ids;
				const items: ReducerItem[] = [];
				batches.forEach((batch, i) => {
					const envelopeId = ids[i] as EnvelopeId;
					this.#seen.add(envelopeId);
					this.#unsaved.add(envelopeId);
					this.#pendingOps.set(
						envelopeId,
						batch.map((op) => ({ hlc: { wall: op.hlc[0], counter: op.hlc[1] }, id: op.id }))
					);
					for (const op of batch) {
						items.push({ op, author: this.#options.myUserId, device, envelopeId });
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

	async #ingest(entries: EnvelopeEntry[], _source: EntrySource): Promise<void> {
		const { session, keys, resolveAuthor } = this.#options;
		const fresh = entries.filter((entry) => !this.#seen.has(entry.id));
		if (fresh.length === 0) return; // own inserts coming back: already reduced
		for (const entry of fresh) this.#seen.add(entry.id);
		const items: ReducerItem[] = [];
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
				const device = toBase64Url(result.envelope.signer);
				const author = resolveAuthor(device);
				if (!author) {
					this.#refuse(result.entry.id, new Error('signed by a device that is not a member'));
					continue;
				}
				let parsed: { ops: Operation[]; unknown: number };
				try {
					parsed = decodeBatch(result.envelope.plaintext);
				} catch (error) {
					this.#refuse(result.entry.id, error);
					continue;
				}
				this.#unknownVersion += parsed.unknown;
				for (const op of parsed.ops) {
					this.#options.clock.observe({ wall: op.hlc[0], counter: op.hlc[1] });
					items.push({ op, author: author.userId, device, envelopeId: result.entry.id });
				}
			}
		}
		if (items.length > 0) this.#reducer.add(items);
		this.#refresh();
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

	/** The reducer's message array the current views were made from. */
	#mapped: readonly Message[] = [];
	#viewList: MessageView[] = [];
	/** Messages whose status changed since the last refresh (by their envelope). */
	readonly #statusChanged = new Set<string>();
	/** Ops of this tab's own envelopes not yet saved, to find their messages fast. */
	readonly #pendingOps = new Map<string, Array<{ hlc: Hlc; id: string }>>();

	/**
	 * Rebuild the views incrementally: the reducer keeps the identity of every
	 * message that did not change, so only the tail after the first change, and
	 * messages whose status changed, are mapped again. A send into a 100k
	 * conversation then costs O(changed), not O(history).
	 */
	#refresh(): void {
		const state: ConversationState = this.#reducer.state;
		const me = this.#options.myUserId;
		const messages = state.messages;
		let next = this.#viewList;
		if (messages !== this.#mapped) {
			const old = this.#mapped;
			const shared = Math.min(old.length, messages.length);
			let first = 0;
			while (first < shared && old[first] === messages[first]) first++;
			next = this.#viewList.slice(0, first);
			for (let i = first; i < messages.length; i++) {
				next.push(this.#view(messages[i] as Message, me));
			}
			this.#mapped = messages;
		}
		if (this.#statusChanged.size > 0) {
			if (next === this.#viewList) next = next.slice();
			for (const envelopeId of this.#statusChanged) {
				for (const op of this.#pendingOps.get(envelopeId) ?? []) {
					const index = findMessage(messages, op.hlc, op.id, me);
					if (index >= 0) next[index] = this.#view(messages[index] as Message, me);
				}
				this.#pendingOps.delete(envelopeId);
			}
			this.#statusChanged.clear();
		}
		this.#viewList = next;
		if (this.messages !== next) this.messages = next;
		const last = state.messages.at(-1);
		this.lastActivity = last ? Math.max(last.hlc.wall, this.createdAt) : this.createdAt;
		this.preview = last ? (last.deleted ? 'Message deleted' : last.text.slice(0, 120)) : '';
		this.unread = unreadCount(
			state,
			me,
			this.#readMark ? { hlc: parseHlc(this.#readMark.hlc), id: this.#readMark.id as OpId } : null
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

	#view(message: Message, me: string): MessageView {
		const cached = this.#views.get(message);
		const mine = message.author === me;
		const status: MessageStatus | null = mine
			? this.#unsaved.has(message.envelopeId)
				? 'Saving'
				: 'Saved'
			: null;
		if (cached && cached.status === status) return cached;
		const author = this.#options.resolveAuthor(message.device);
		const view: MessageView = {
			key: `${message.author}:${message.id}`,
			id: message.id,
			authorName: author?.name ?? 'Unknown',
			mine,
			text: message.text,
			time: message.hlc.wall,
			status,
			edited: message.edited,
			deleted: message.deleted
		};
		this.#views.set(message, view);
		return view;
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

function splitBatches(ops: Operation[]): Operation[][] {
	const batches: Operation[][] = [];
	let current: Operation[] = [];
	let bytes = 0;
	for (const op of ops) {
		const size = op.type === 'send' ? op.text.length * 3 + 128 : 256;
		if (current.length > 0 && bytes + size > BATCH_BYTES) {
			batches.push(current);
			current = [];
			bytes = 0;
		}
		current.push(op);
		bytes += size;
	}
	if (current.length > 0) batches.push(current);
	return batches;
}

export type { EnvelopeId };
