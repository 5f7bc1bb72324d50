/**
 * The visible conversation as a deterministic function of the SET of
 * operations held. Every replica that holds the same set shows the same
 * conversation, whatever order, duplication or chunking the operations
 * arrived in. Nothing here reads a clock, a key or the network.
 *
 * Input: items { op, author, device, envelopeId }. `author` (user id) and
 * `device` come from the envelope's verified signer, never from the op, so
 * an op cannot claim to be someone else's.
 *
 * Rules (all string comparisons are by UTF-16 code unit, i.e. `<` in JS; ids
 * are ASCII, so this is also byte order):
 *
 *  1. Identity. An op is identified by (author, id). When several items share
 *     one identity (the same op delivered twice, perhaps in two envelopes),
 *     exactly one counts: the least by (envelopeId, device, canonical JSON of
 *     the op — keys sorted, no whitespace). Only that item is used below.
 *  2. Messages. Every `send` is a message, ordered by (hlc, id, author).
 *  3. Edits. An `edit` by A targeting id T applies to A's own message (A, T)
 *     only; edits to anyone else's message count for nothing. The greatest
 *     edit by (hlc, id) gives the text and the mentions (its own list, or
 *     none); `edited` is true when any edit applies.
 *  4. Deletes. A `delete` by D targeting T deletes every message (A, T) for
 *     which canDelete(D, A) — today D = A. Delete beats every edit, earlier,
 *     concurrent or later. A deleted message keeps id, author, device, hlc and
 *     envelopeId; its text is '', edited false, reactions {}, no replyTo,
 *     attachment or mentions: a tombstone reveals nothing of what it said.
 *  5. Reactions. For each (target id T, author R, emoji E) the greatest
 *     `react` by (hlc, id) decides: on → R is listed under E, off → not. They
 *     apply to every message whose id is T. Emojis with nobody listed are
 *     omitted; author lists are sorted.
 *  6. Held effects. Edits, deletes and reactions whose target is not (yet)
 *     held are kept and apply when it arrives: the outcome never depends on
 *     arrival order.
 *  7. Receipts. For each author and kind ('delivered', 'read') the mark is the
 *     greatest (upTo, upToId) over that author's receipt ops, so it only moves
 *     forward. The kinds are independent (a reader may take read as implying
 *     delivered).
 *  8. lastActivity is the greatest hlc over all `send` ops, deleted or not;
 *     null without any. Receipts and reactions do not count as activity.
 *  9. member.* and epoch ops are held (they count in `size` and survive
 *     snapshots) but do not change the view yet.
 *
 * ConversationReducer applies these rules incrementally: new messages are
 * sorted among themselves and appended (the common case: they are the
 * newest) or merged into the tail; an effect on an existing message replaces
 * that one message, found by binary search. Objects that did not change keep
 * their identity, so the UI can skip them.
 *
 * Reading the view: `state` is an immutable snapshot (its message array is a
 * copy, made when `state` is read after a change: O(n)). A caller that
 * refreshes on every change can avoid that copy and any scan: `messages` is
 * the live list (updated in place), `version` counts its changes and
 * `changedSince(v)` says from which index it differs from the list at
 * version v. Appending a message costs O(1) that way, at any size.
 */
import { z } from 'zod';
import { compareHlc, type Hlc } from './hlc';
import type { FileManifest } from '../media/manifest';
import { hlcFromTuple, Operation, type HlcTuple, type OpId, type SendOp } from './operations';

/** One decrypted operation with who signed it. The reducer never mutates items. */
export interface ReducerItem {
	op: Operation;
	/** User id of the signing device, resolved by the caller from verified keys. */
	author: string;
	/** Device id of the signer. */
	device: string;
	/** Id of the envelope that carried the op. */
	envelopeId: string;
}

/** A point in the message order; marks (receipts, read positions) are positions. */
export interface Position {
	readonly hlc: Hlc;
	readonly id: OpId;
}

export interface Message {
	readonly id: OpId;
	readonly author: string;
	readonly device: string;
	readonly hlc: Hlc;
	readonly text: string;
	readonly replyTo?: OpId;
	/** The file a message carries (its manifest); gone when the message is deleted. */
	readonly attachment?: FileManifest;
	/** Users the text names with @ (the latest edit's list when edited); none when deleted. */
	readonly mentions?: readonly string[];
	readonly edited: boolean;
	readonly deleted: boolean;
	/** emoji → sorted authors who currently react with it. */
	readonly reactions: Readonly<Record<string, readonly string[]>>;
	readonly envelopeId: string;
}

export interface ReceiptMarks {
	readonly delivered?: Position;
	readonly read?: Position;
}

export interface ConversationState {
	readonly messages: readonly Message[];
	/** author → greatest receipt of each kind. */
	readonly receipts: Readonly<Record<string, ReceiptMarks>>;
	readonly lastActivity: Hlc | null;
}

/**
 * May `author` delete a message written by `targetAuthor`? The single place
 * where the delete rule lives. Later, admins may delete any message: this
 * will then consult the membership state reduced from member.* ops.
 */
export function canDelete(author: string, targetAuthor: string): boolean {
	return author === targetAuthor;
}

// ---------------------------------------------------------------------------
// Orders

function compareStrings(a: string, b: string): -1 | 0 | 1 {
	return a < b ? -1 : a > b ? 1 : 0;
}

function compareTuples(a: HlcTuple, b: HlcTuple): number {
	return a[0] - b[0] || a[1] - b[1];
}

/**
 * The newest message written by someone other than `me`, or null: what a
 * delivered or read receipt points at (the app's and the `kith` peer's).
 */
export function newestFromOthers(messages: readonly Message[], me: string): Message | null {
	for (let i = messages.length - 1; i >= 0; i--) {
		const message = messages[i] as Message;
		if (message.author !== me) return message;
	}
	return null;
}

/** (hlc, id) order of positions. */
export function comparePositions(a: Position, b: Position): number {
	return compareHlc(a.hlc, b.hlc) || compareStrings(a.id, b.id);
}

/** The display order of messages: (hlc, id, author). Total, since (author, id) is unique. */
export function compareMessages(a: Message, b: Message): number {
	return (
		compareHlc(a.hlc, b.hlc) || compareStrings(a.id, b.id) || compareStrings(a.author, b.author)
	);
}

/** Latest-wins order for edits and reactions: (hlc, id). */
interface Stamp {
	hlc: HlcTuple;
	id: OpId;
}

function compareStamps(a: Stamp, b: Stamp): number {
	return compareTuples(a.hlc, b.hlc) || compareStrings(a.id, b.id);
}

/** JSON with keys sorted at every level; `undefined` members are omitted as JSON.stringify does. */
export function canonicalJson(value: unknown): string {
	if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
	if (typeof value === 'object' && value !== null) {
		const record = value as Record<string, unknown>;
		const members = Object.keys(record)
			.sort()
			.filter((key) => record[key] !== undefined)
			.map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`);
		return `{${members.join(',')}}`;
	}
	return JSON.stringify(value) ?? 'null';
}

/** Structural equality of JSON values, cheaper than comparing canonical strings. */
function sameJson(a: unknown, b: unknown): boolean {
	if (a === b) return true;
	if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
	if (Array.isArray(a) !== Array.isArray(b)) return false;
	const ra = a as Record<string, unknown>;
	const rb = b as Record<string, unknown>;
	const ka = Object.keys(ra).filter((key) => ra[key] !== undefined);
	const kb = Object.keys(rb).filter((key) => rb[key] !== undefined);
	if (ka.length !== kb.length) return false;
	return ka.every((key) => Object.hasOwn(rb, key) && sameJson(ra[key], rb[key]));
}

/** Rule 1: which of two items with the same (author, id) counts. Negative: `a`. */
function compareDuplicates(a: ReducerItem, b: ReducerItem): number {
	const order = compareStrings(a.envelopeId, b.envelopeId) || compareStrings(a.device, b.device);
	if (order !== 0 || sameJson(a.op, b.op)) return order;
	return compareStrings(canonicalJson(a.op), canonicalJson(b.op));
}

/** Records keyed by remote input: '__proto__' must become an own key, not the prototype. */
function setOwn<T>(record: Record<string, T>, key: string, value: T): void {
	Object.defineProperty(record, key, {
		value,
		enumerable: true,
		writable: true,
		configurable: true
	});
}

/** An op id is exactly 22 chars, so id + author is an unambiguous key without escaping. */
function keyOf(id: string, author: string): string {
	return id + author;
}

// ---------------------------------------------------------------------------
// Snapshots

export const SNAPSHOT_FORMAT = 1;

/** [author, device, envelopeId, op] */
export const SnapshotItem = z.tuple([z.string(), z.string(), z.string(), Operation]);
export type SnapshotItem = z.infer<typeof SnapshotItem>;

export const ReducerSnapshot = z.object({
	format: z.literal(SNAPSHOT_FORMAT),
	items: z.array(SnapshotItem)
});
export type ReducerSnapshot = z.infer<typeof ReducerSnapshot>;

/** A stored snapshot cannot be used; rebuild the view from the envelopes instead. */
export class InvalidSnapshotError extends Error {
	static readonly NAME = 'InvalidSnapshotError';
	override name = InvalidSnapshotError.NAME;
}

// ---------------------------------------------------------------------------
// The reducer

interface EditRecord extends Stamp {
	text: string;
	mentions: readonly string[] | undefined;
}

interface ReactRecord extends Stamp {
	on: boolean;
}

/** What one `add` call changed, gathered before the view is patched. */
interface Pending {
	/** Keys of sends that are new in this call, in arrival order. */
	sends: Set<string>;
	/** Keys of messages whose derived fields may have changed. */
	touched: Set<string>;
	receipts: Map<string, ReceiptMarks>;
	/** Greatest hlc of the new sends. Applied at commit: a rebuild must see the old value. */
	activity: Hlc | null;
	/** An item replaced a held one with different content: recompute everything. */
	rebuild: boolean;
}

function pending(): Pending {
	return {
		sends: new Set(),
		touched: new Set(),
		receipts: new Map(),
		activity: null,
		rebuild: false
	};
}

/** How many changes `changedSince` remembers; older versions get 0 (everything may differ). */
const CHANGE_LOG = 256;

const EMPTY_STATE: ConversationState = Object.freeze({
	messages: Object.freeze([]) as readonly Message[],
	receipts: Object.freeze({}),
	lastActivity: null
});

export class ConversationReducer {
	/** The item that counts for each (author, id) — rule 1. */
	#items = new Map<string, ReducerItem>();
	/** Messages in display order. Mutated in place; `state` hands out copies. */
	#messages: Message[] = [];
	/** Current message object per send key. */
	#byKey = new Map<string, Message>();
	/** Op id → authors who have a send with that id (normally one). */
	#authorsById = new Map<string, string[]>();
	/** keyOf(target, editor) → greatest edit. */
	#edits = new Map<string, EditRecord>();
	/** Every edit of each message by its author (not only the greatest), for its history. */
	#editLog = new Map<string, EditRecord[]>();
	/** Target id → authors of deletes aimed at it. */
	#deleters = new Map<string, Set<string>>();
	/** Target id → emoji → reacting author → greatest react. */
	#reactions = new Map<string, Map<string, Map<string, ReactRecord>>>();
	#receipts: Readonly<Record<string, ReceiptMarks>> = EMPTY_STATE.receipts;
	#lastActivity: Hlc | null = null;

	#state: ConversationState = EMPTY_STATE;
	/** Parts of `#state` that are out of date. */
	#staleMessages = false;
	#staleOther = false;
	/** Number of changes of the message list so far. */
	#version = 0;
	/** The recent changes: at `version`, the list changed from index `from` on. Oldest first. */
	#changes: { version: number; from: number }[] = [];

	/** Number of distinct operations held (of every type). */
	get size(): number {
		return this.#items.size;
	}

	/**
	 * The live message list, in display order: always the same array, updated
	 * in place by `add`. Read it, never keep it across an `add` (use `state`
	 * for a snapshot) and never mutate it. Its elements are the same objects as
	 * in `state.messages`.
	 */
	get messages(): readonly Message[] {
		return this.#messages;
	}

	/** Counts the changes of the message list: it changes exactly when `state.messages` does. */
	get version(): number {
		return this.#version;
	}

	/**
	 * The index from which the message list may differ from what it was at
	 * `version` (a value `version` had): every message before it is the same
	 * object at the same index. `messages.length` when nothing changed since;
	 * 0 for a version too old to remember.
	 */
	changedSince(version: number): number {
		if (version >= this.#version) return this.#messages.length;
		const changes = this.#changes;
		if (changes.length === 0 || (changes[0] as { version: number }).version > version + 1) return 0;
		let from = this.#messages.length;
		for (let i = changes.length - 1; i >= 0; i--) {
			const change = changes[i] as { version: number; from: number };
			if (change.version <= version) break;
			if (change.from < from) from = change.from;
		}
		return from;
	}

	/**
	 * The view. Always equal to reduce(every item added so far). The same
	 * object (and the same arrays inside it) is returned until something
	 * visible changes.
	 */
	get state(): ConversationState {
		if (this.#staleMessages || this.#staleOther) {
			this.#state = {
				messages: this.#staleMessages ? this.#messages.slice() : this.#state.messages,
				receipts: this.#receipts,
				lastActivity: this.#lastActivity
			};
			this.#staleMessages = false;
			this.#staleOther = false;
		}
		return this.#state;
	}

	/** Which held items count (membership: see membership.ts `countsAt`); null: all. */
	#counts: ((item: ReducerItem) => boolean) | null = null;

	/**
	 * Decide which items count: an item that does not is held (and kept in
	 * snapshots) but has no effect, as if it had not arrived. Call again
	 * whenever the answer may have changed (membership changed); it
	 * recomputes the view. Returns whether `state` changed.
	 */
	setCounts(counts: ((item: ReducerItem) => boolean) | null): { changed: boolean } {
		this.#counts = counts;
		return { changed: this.#rebuild() };
	}

	/** Whether every held item counts under the current rule (nothing to recompute). */
	countsAll(counts: (item: ReducerItem) => boolean): boolean {
		for (const item of this.#items.values()) if (!counts(item)) return false;
		return true;
	}

	/** Add items (any order, duplicates allowed). `changed`: whether `state` changed. */
	add(items: Iterable<ReducerItem>): { changed: boolean } {
		const work = pending();
		for (const item of items) this.#ingest(item, work);
		if (work.rebuild) return { changed: this.#rebuild() };
		return { changed: this.#commit(work) };
	}

	/**
	 * A plain, JSON-able snapshot of every operation held. Sends come
	 * first, in display order, so that loading it sorts in linear time. It
	 * holds plaintext: store it only encrypted. Do not mutate its ops.
	 */
	/** The items held (counted or not) that `keep` selects, e.g. one device's ops after a point. */
	itemsWhere(keep: (item: ReducerItem) => boolean): ReducerItem[] {
		const out: ReducerItem[] = [];
		for (const item of this.#items.values()) if (keep(item)) out.push(item);
		return out;
	}

	serialize(): ReducerSnapshot {
		const items: SnapshotItem[] = [];
		const entry = (item: ReducerItem): SnapshotItem => [
			item.author,
			item.device,
			item.envelopeId,
			item.op
		];
		for (const message of this.#messages) {
			const item = this.#items.get(keyOf(message.id, message.author));
			if (item) items.push(entry(item));
		}
		for (const [key, item] of this.#items) {
			// Sends that do not count (now) are kept too: membership may change.
			if (item.op.type !== 'send' || !this.#byKey.has(key)) items.push(entry(item));
		}
		return { format: SNAPSHOT_FORMAT, items };
	}

	/**
	 * Rebuild a reducer from `serialize()` output (after a JSON or structured
	 * clone round trip). Validated like any stored input: throws
	 * InvalidSnapshotError, and the caller then rebuilds from envelopes.
	 */
	static deserialize(data: unknown): ConversationReducer {
		const parsed = ReducerSnapshot.safeParse(data);
		if (!parsed.success) {
			throw new InvalidSnapshotError(
				`conversation snapshot is invalid (${parsed.error.issues.length} problems, first at ${
					parsed.error.issues[0]?.path.map(String).join('.') ?? '?'
				})`
			);
		}
		const reducer = new ConversationReducer();
		reducer.add(
			parsed.data.items.map(([author, device, envelopeId, op]) => ({
				op,
				author,
				device,
				envelopeId
			}))
		);
		return reducer;
	}

	/**
	 * The versions of the author's message `id`, oldest first: the text it was
	 * sent with, then each edit by (hlc, id). Empty when the message is not
	 * held or was deleted (a deleted message keeps no history).
	 */
	editHistory(author: string, id: OpId): { text: string; hlc: Hlc; edited: boolean }[] {
		const key = keyOf(id, author);
		const item = this.#items.get(key);
		if (item === undefined || item.op.type !== 'send' || this.#isDeleted(id, author)) return [];
		const versions = [{ text: item.op.text, hlc: hlcFromTuple(item.op.hlc), edited: false }];
		const edits = [...(this.#editLog.get(key) ?? [])].sort(compareStamps);
		for (const edit of edits) {
			versions.push({ text: edit.text, hlc: hlcFromTuple(edit.hlc), edited: true });
		}
		return versions;
	}

	#ingest(item: ReducerItem, work: Pending): void {
		const key = keyOf(item.op.id, item.author);
		const held = this.#items.get(key);
		if (held === undefined) {
			this.#items.set(key, item);
			if (!work.rebuild && (this.#counts === null || this.#counts(item))) {
				this.#apply(item, key, work);
			}
			return;
		}
		if (held === item || compareDuplicates(item, held) >= 0) return;
		this.#items.set(key, item);
		if (work.rebuild) return;
		if (this.#counts !== null && !this.#counts(item)) {
			// The item that counted (and whose effects are applied) is replaced by
			// one that does not: its effects must go.
			if (this.#counts(held)) work.rebuild = true;
			return;
		}
		if (this.#counts !== null && !this.#counts(held)) {
			// The replaced item did not count; this one does: apply it afresh.
			work.rebuild = true;
			return;
		}
		if (!sameJson(item.op, held.op)) {
			// Same identity, different content: only a misbehaving author does
			// this. Retracting the old op's effects piecemeal is error-prone;
			// recomputing is rare and obviously right.
			work.rebuild = true;
		} else if (item.op.type === 'send') {
			// Same op from a smaller envelope: the message shows that envelope.
			work.touched.add(key);
		}
	}

	#apply(item: ReducerItem, key: string, work: Pending): void {
		const { op, author } = item;
		switch (op.type) {
			case 'send': {
				work.sends.add(key);
				const authors = this.#authorsById.get(op.id);
				if (authors) authors.push(author);
				else this.#authorsById.set(op.id, [author]);
				const hlc = hlcFromTuple(op.hlc);
				if (work.activity === null || compareHlc(hlc, work.activity) > 0) work.activity = hlc;
				return;
			}
			case 'edit': {
				const target = keyOf(op.target, author);
				const record = { hlc: op.hlc, id: op.id, text: op.text, mentions: op.mentions };
				const log = this.#editLog.get(target);
				if (!log) this.#editLog.set(target, [record]);
				else if (!log.some((r) => r.id === op.id)) log.push(record);
				const current = this.#edits.get(target);
				if (current === undefined || compareStamps(op, current) > 0) {
					this.#edits.set(target, record);
					work.touched.add(target);
				}
				return;
			}
			case 'delete': {
				let deleters = this.#deleters.get(op.target);
				if (!deleters) this.#deleters.set(op.target, (deleters = new Set()));
				if (deleters.has(author)) return;
				deleters.add(author);
				for (const targetAuthor of this.#authorsById.get(op.target) ?? []) {
					if (canDelete(author, targetAuthor)) work.touched.add(keyOf(op.target, targetAuthor));
				}
				return;
			}
			case 'react': {
				let byEmoji = this.#reactions.get(op.target);
				if (!byEmoji) this.#reactions.set(op.target, (byEmoji = new Map()));
				let byAuthor = byEmoji.get(op.emoji);
				if (!byAuthor) byEmoji.set(op.emoji, (byAuthor = new Map()));
				const current = byAuthor.get(author);
				if (current !== undefined && compareStamps(op, current) <= 0) return;
				byAuthor.set(author, { hlc: op.hlc, id: op.id, on: op.on });
				if (current?.on !== op.on) {
					for (const targetAuthor of this.#authorsById.get(op.target) ?? []) {
						work.touched.add(keyOf(op.target, targetAuthor));
					}
				}
				return;
			}
			case 'receipt': {
				const marks = work.receipts.get(author) ?? this.#ownReceipt(author);
				const mark: Position = { hlc: hlcFromTuple(op.upTo), id: op.upToId };
				const current = marks?.[op.kind];
				if (current === undefined || comparePositions(mark, current) > 0) {
					work.receipts.set(author, { ...marks, [op.kind]: mark });
				}
				return;
			}
			default:
				// member.*, epoch: held for later rules (rule 9).
				return;
		}
	}

	#ownReceipt(author: string): ReceiptMarks | undefined {
		return Object.hasOwn(this.#receipts, author) ? this.#receipts[author] : undefined;
	}

	/**
	 * Patch the view with what `work` gathered. Returns whether anything
	 * visible changed. `log`: count the change in `version` (not when rebuilding).
	 */
	#commit(work: Pending, log = true): boolean {
		let messagesChanged = false;
		/** First index of the list that changed. */
		let from = Infinity;
		if (work.sends.size > 0) {
			const fresh: Message[] = [];
			for (const key of work.sends) {
				const message = this.#materialize(key);
				this.#byKey.set(key, message);
				fresh.push(message);
			}
			// Array#sort is a merge sort (TimSort): arrivals already in order,
			// as from a snapshot or a live stream, cost one pass.
			fresh.sort(compareMessages);
			from = this.#insertSorted(fresh);
			messagesChanged = true;
		}
		for (const key of work.touched) {
			if (work.sends.has(key)) continue;
			const old = this.#byKey.get(key);
			if (old === undefined) continue; // an effect held for a message not here yet
			const next = this.#materialize(key);
			if (sameMessage(old, next)) continue;
			const index = this.#indexOf(old);
			this.#messages[index] = next;
			this.#byKey.set(key, next);
			if (index < from) from = index;
			messagesChanged = true;
		}
		if (messagesChanged && log) this.#changed(from);
		if (work.receipts.size > 0) {
			const receipts: Record<string, ReceiptMarks> = { ...this.#receipts };
			for (const [author, marks] of work.receipts) setOwn(receipts, author, marks);
			this.#receipts = receipts;
		}
		let activityChanged = false;
		if (
			work.activity !== null &&
			(this.#lastActivity === null || compareHlc(work.activity, this.#lastActivity) > 0)
		) {
			this.#lastActivity = work.activity;
			activityChanged = true;
		}
		const otherChanged = work.receipts.size > 0 || activityChanged;
		this.#staleMessages ||= messagesChanged;
		this.#staleOther ||= otherChanged;
		return messagesChanged || otherChanged;
	}

	/**
	 * Recompute from the held items alone (rule 1 already applied to them).
	 * Whatever comes out equal keeps its old object, so a rebuild is as quiet
	 * as a patch. Returns whether anything visible changed.
	 */
	#rebuild(): boolean {
		const items = [...this.#items.values()];
		const before = {
			messages: this.#messages,
			byKey: this.#byKey,
			receipts: this.#receipts,
			lastActivity: this.#lastActivity,
			staleMessages: this.#staleMessages,
			staleOther: this.#staleOther
		};
		this.#items = new Map();
		this.#messages = [];
		this.#byKey = new Map();
		this.#authorsById.clear();
		this.#edits.clear();
		this.#editLog.clear();
		this.#deleters.clear();
		this.#reactions.clear();
		this.#receipts = EMPTY_STATE.receipts;
		this.#lastActivity = null;
		const work = pending();
		for (const item of items) this.#ingest(item, work);
		// This commit builds the list from nothing; what changed is found below.
		this.#commit(work, false);

		/** First index that differs from the list before. */
		let from = Infinity;
		this.#messages.forEach((message, index) => {
			const key = keyOf(message.id, message.author);
			const old = before.byKey.get(key);
			if (old !== undefined && sameMessage(old, message)) {
				this.#messages[index] = old;
				this.#byKey.set(key, old);
			}
			if (this.#messages[index] !== before.messages[index] && index < from) from = index;
		});
		if (this.#messages.length < before.messages.length) {
			from = Math.min(from, this.#messages.length);
		}
		const messagesChanged = from !== Infinity;
		// `messages` is always the same array: put the result into it.
		const rebuilt = this.#messages;
		this.#messages = before.messages;
		this.#messages.length = rebuilt.length;
		for (let i = from; i < rebuilt.length; i++) this.#messages[i] = rebuilt[i] as Message;
		if (messagesChanged) this.#changed(from);
		if (sameJson(this.#receipts, before.receipts)) this.#receipts = before.receipts;
		const activityAt = this.#lastActivity;
		if (
			before.lastActivity === activityAt ||
			(before.lastActivity !== null &&
				activityAt !== null &&
				compareHlc(before.lastActivity, activityAt) === 0)
		) {
			this.#lastActivity = before.lastActivity;
		}
		const otherChanged =
			this.#receipts !== before.receipts || this.#lastActivity !== before.lastActivity;
		this.#staleMessages = before.staleMessages || messagesChanged;
		this.#staleOther = before.staleOther || otherChanged;
		return messagesChanged || otherChanged;
	}

	/**
	 * Merge sorted `fresh` into the list, touching only the part after its
	 * first element. Returns the first index that changed.
	 */
	#insertSorted(fresh: Message[]): number {
		const list = this.#messages;
		const first = fresh[0];
		if (first === undefined) return list.length;
		const last = list[list.length - 1];
		if (last === undefined || compareMessages(last, first) < 0) {
			const from = list.length;
			for (const message of fresh) list.push(message);
			return from;
		}
		let lo = 0;
		let hi = list.length;
		while (lo < hi) {
			const mid = (lo + hi) >>> 1;
			if (compareMessages(list[mid] as Message, first) < 0) lo = mid + 1;
			else hi = mid;
		}
		const tail = list.splice(lo);
		let i = 0;
		let j = 0;
		while (i < tail.length && j < fresh.length) {
			const a = tail[i] as Message;
			const b = fresh[j] as Message;
			if (compareMessages(a, b) < 0) {
				list.push(a);
				i++;
			} else {
				list.push(b);
				j++;
			}
		}
		while (i < tail.length) list.push(tail[i++] as Message);
		while (j < fresh.length) list.push(fresh[j++] as Message);
		return lo;
	}

	/** The message list changed from index `from` on. */
	#changed(from: number): void {
		this.#version++;
		this.#changes.push({ version: this.#version, from });
		if (this.#changes.length > 2 * CHANGE_LOG) this.#changes.splice(0, CHANGE_LOG);
	}

	#indexOf(message: Message): number {
		let lo = 0;
		let hi = this.#messages.length - 1;
		while (lo <= hi) {
			const mid = (lo + hi) >>> 1;
			const order = compareMessages(this.#messages[mid] as Message, message);
			if (order === 0) return mid;
			if (order < 0) lo = mid + 1;
			else hi = mid - 1;
		}
		throw new Error('reducer invariant broken: a held message is missing from the order');
	}

	/** The message for a held send, with every effect that applies to it (rules 3–5). */
	#materialize(key: string): Message {
		const item = this.#items.get(key);
		if (item === undefined || item.op.type !== 'send') {
			throw new Error('reducer invariant broken: materializing something that is not a send');
		}
		const op: SendOp = item.op;
		// Literal objects of one fixed shape: spreads here made building 100k
		// messages several times slower (dictionary-mode objects, more GC).
		if (this.#isDeleted(op.id, item.author)) {
			return {
				id: op.id,
				author: item.author,
				device: item.device,
				hlc: hlcFromTuple(op.hlc),
				text: '',
				edited: false,
				deleted: true,
				reactions: {},
				envelopeId: item.envelopeId
			};
		}
		const edit = this.#edits.get(key);
		const message: { -readonly [K in keyof Message]: Message[K] } = {
			id: op.id,
			author: item.author,
			device: item.device,
			hlc: hlcFromTuple(op.hlc),
			text: edit ? edit.text : op.text,
			edited: edit !== undefined,
			deleted: false,
			reactions: this.#reactionsOf(op.id),
			envelopeId: item.envelopeId
		};
		if (op.replyTo !== undefined) message.replyTo = op.replyTo;
		if (op.attachment !== undefined) message.attachment = op.attachment;
		const mentions = edit ? edit.mentions : op.mentions;
		if (mentions !== undefined) message.mentions = mentions;
		return message;
	}

	#isDeleted(id: string, author: string): boolean {
		const deleters = this.#deleters.get(id);
		if (!deleters) return false;
		for (const deleter of deleters) if (canDelete(deleter, author)) return true;
		return false;
	}

	#reactionsOf(id: string): Record<string, string[]> {
		const reactions: Record<string, string[]> = {};
		const byEmoji = this.#reactions.get(id);
		if (!byEmoji) return reactions;
		for (const emoji of [...byEmoji.keys()].sort()) {
			const authors: string[] = [];
			for (const [author, record] of byEmoji.get(emoji) ?? []) if (record.on) authors.push(author);
			if (authors.length > 0) setOwn(reactions, emoji, authors.sort());
		}
		return reactions;
	}
}

function sameMessage(a: Message, b: Message): boolean {
	return (
		a.id === b.id &&
		a.author === b.author &&
		a.device === b.device &&
		compareHlc(a.hlc, b.hlc) === 0 &&
		a.text === b.text &&
		a.replyTo === b.replyTo &&
		(a.attachment === b.attachment || sameJson(a.attachment ?? null, b.attachment ?? null)) &&
		(a.mentions === b.mentions || sameJson(a.mentions ?? null, b.mentions ?? null)) &&
		a.edited === b.edited &&
		a.deleted === b.deleted &&
		a.envelopeId === b.envelopeId &&
		sameJson(a.reactions, b.reactions)
	);
}

/** The view of a set of items, computed from scratch. */
export function reduce(items: Iterable<ReducerItem>): ConversationState {
	const reducer = new ConversationReducer();
	reducer.add(items);
	return reducer.state;
}

/**
 * Messages after `readUpTo` (by (hlc, id)) that are neither by `me` nor
 * deleted. With no mark, every such message is unread. `state` may be any
 * object with the messages, e.g. `{ messages: reducer.messages }` (no copy).
 */
const NO_AUTHORS: ReadonlySet<string> = new Set();

export function unreadCount(
	state: Pick<ConversationState, 'messages'>,
	me: string,
	readUpTo: Position | null,
	/** Authors whose messages never count (people the user blocked). */
	hidden: { has(author: string): boolean } = NO_AUTHORS
): number {
	const messages = state.messages;
	let lo = 0;
	if (readUpTo !== null) {
		let hi = messages.length;
		while (lo < hi) {
			const mid = (lo + hi) >>> 1;
			if (comparePositions(messages[mid] as Message, readUpTo) <= 0) lo = mid + 1;
			else hi = mid;
		}
	}
	let count = 0;
	for (let i = lo; i < messages.length; i++) {
		const message = messages[i] as Message;
		if (message.author !== me && !message.deleted && !hidden.has(message.author)) count++;
	}
	return count;
}
