/**
 * Benchmark: storage bytes and cold-open time of a long conversation before
 * and after compaction, against the same conversation as a plain Yjs doc
 * (the groups issue: "compacted size ≤ 1.3× the plain doc").
 *
 * Everything is built with the project's own code, in Node:
 *
 * - Before: `messages` sends by 3 authors taking turns (one Ed25519 device
 *   each, real signers from `createSigner`), edits of 20 % of the messages
 *   and deletes of 10 % (by their authors), in time order, each op in its own
 *   envelope (`encodeBatch` of one op, `sealEnvelope` under the epoch key) as
 *   people send them, inserted with `ConversationDoc.insertLocal` in each
 *   device's doc (its bound client id; 1,000 ops per step, as DocSession
 *   commits) and merged into one doc. Size: `Y.encodeStateAsUpdate`.
 * - After: what `ConversationSession.ensureSeed` writes into a new
 *   generation: `survivingOps` of every held item, `seedParts`, `makeSeed`
 *   per part, batched as `splitBatches` does (≤ 192 KiB of estimated
 *   plaintext per envelope; reproduced here, it is private), sealed under a
 *   new key into a fresh ConversationDoc under a new room id by the opener
 *   (one request, as DocSession.sealAndInsert). Size the same way.
 * - Baseline, the plain Yjs doc: the same visible conversation as a
 *   non-encrypted Yjs chat holds it, a Y.Map of message id → { author, hlc,
 *   text (final), edited, deleted } (a deleted message: a tombstone with an
 *   empty text), one Y.Doc client per author. Size the same way.
 * - Cold open: stored bytes → reduced view. Kith: a new ConversationDoc
 *   `applyRemote`s the update (doc rules, every signature verified, then
 *   Y.applyUpdate, as a load from disk or the relay does), every envelope is
 *   opened (256 at a time, as ConversationSession#ingest), its batch decoded
 *   (JSON + schema), the opener's seed ops expanded into items (a seeded op
 *   counts as signed by its `device`) and everything added to a
 *   ConversationReducer. The roster gate is left out: every device is a
 *   member. Baseline: Y.applyUpdate of the plain doc into a new Y.Doc and
 *   reading every entry. Median of `reps`, interleaved.
 * - Compaction time: from the loaded reducer's items to the new
 *   generation's doc holding its sealed seed (survivingOps, seedParts,
 *   makeSeed, encodeBatch, seal, insert). Median of `reps`.
 *
 * The view after compaction must equal the view before (every message:
 * id, author, hlc, text, edited, deleted), and both the state the generator
 * meant; the run fails otherwise.
 */
import { cpus } from 'node:os';
import * as Y from 'yjs';
import { fmt, ratio, type Row } from '../lib/report';
import { median } from '../lib/stats';
import {
	applyTrustedUpdate,
	ConversationDoc,
	ConversationReducer,
	decodeBatch,
	encodeBatch,
	makeDelete,
	makeEdit,
	makeSeed,
	seededOps,
	splitBatches,
	makeSend,
	type Hlc,
	type Message,
	type OpClock,
	type OpId,
	type Operation,
	type ReducerItem,
	type SeedOp
} from '../../src/lib/conversation';
import { survivingOps } from '../../src/lib/conversation/compaction';
import { seedParts } from '../../src/lib/conversation/generation';
import { random } from '../browser/texts';
import {
	bucketSize,
	createSigner,
	hasWebCryptoEd25519,
	newRoomId,
	newSecretKey,
	newSigningSeed,
	randomBytes,
	toBase64Url,
	type EnvelopeId,
	type RoomId,
	type SecretKey,
	type Signer
} from '../../src/lib/crypto';
import { clientIdFor, openEnvelope, sealEnvelope } from '../../src/lib/envelope';

export interface CompactionConfig {
	messages: number;
	/** Share of messages edited once each, and deleted (by their authors). */
	editShare: number;
	deleteShare: number;
	authors: number;
	/** Cold opens of each kind and compactions, interleaved. */
	reps: number;
	/** Ops sealed and inserted per step while growing the conversation. */
	growChunk: number;
}

export function compactionConfig(quick: boolean): CompactionConfig {
	return {
		messages: quick ? 10_000 : 100_000,
		editShare: 0.2,
		deleteShare: 0.1,
		authors: 3,
		reps: quick ? 5 : 3,
		growChunk: 1_000
	};
}

/** The target of the groups issue: compacted size ≤ 1.3× the plain Yjs doc. */
const TARGET_RATIO = 1.3;
/** Envelopes opened at once on load (ConversationSession#ingest's CHUNK). */
const OPEN_CHUNK = 256;
const OLD_EPOCH = 1;
const NEW_EPOCH = 2;
/** Client id of the reading device's doc (it inserts nothing). */
const READER_CLIENT = 0x6b697468;
const PLAIN_MAP = 'messages';

// ---- the conversation ---------------------------------------------------------

interface Author {
	user: string;
	device: string;
	signer: Signer;
	clientId: number;
}

interface Authored {
	author: number;
	op: Operation;
}

/** A message as the plain Yjs chat holds it (and as the reduced view must show it). */
interface PlainMessage {
	author: string;
	hlc: [number, number];
	text: string;
	edited: boolean;
	deleted: boolean;
}

interface Conversation {
	/** Every op in the order it was sent. */
	ops: Authored[];
	/** Message id → final visible state, in send order. */
	messages: Map<string, PlainMessage>;
	/** Clock after the last op (for the seed's ops). */
	clock: SimClock;
}

const WORDS = (
	'ok yes no maybe tomorrow tonight later lunch dinner coffee train late sorry thanks ' +
	'great see you soon call me when where what how about the meeting photo sent back ' +
	'home work done almost ready leaving now traffic is bad running ten minutes behind ' +
	'did you get my message sounds good let me know love it haha sure thing on my way ' +
	'I think we should probably book the table for saturday night before it fills up'
).split(' ');

/** A chat-like text of 20–120 characters, skewed towards short ones (about 45 on average). */
function chatText(seed: number): string {
	const next = random(seed);
	const target = 20 + Math.floor(next() * next() * 100);
	let text = '';
	while (text.length < target) {
		const word = WORDS[Math.floor(next() * WORDS.length)] ?? 'ok';
		text = text ? `${text} ${word}` : word.charAt(0).toUpperCase() + word.slice(1);
	}
	return text.slice(0, 120).trimEnd();
}

/** `count` distinct indices below `n`, chosen by `rand`. */
function pick(n: number, count: number, rand: () => number): Set<number> {
	const all = Array.from({ length: n }, (_, i) => i);
	for (let i = 0; i < count; i++) {
		const j = i + Math.floor(rand() * (n - i));
		[all[i], all[j]] = [all[j] as number, all[i] as number];
	}
	return new Set(all.slice(0, count));
}

/** A hybrid logical clock driven by simulated time: each op says when it was sent. */
class SimClock implements OpClock {
	wall = 0;
	#last: Hlc = { wall: 0, counter: 0 };
	now(): Hlc {
		this.#last =
			this.wall > this.#last.wall
				? { wall: this.wall, counter: 0 }
				: { wall: this.#last.wall, counter: this.#last.counter + 1 };
		return this.#last;
	}
}

async function makeAuthors(count: number): Promise<Author[]> {
	const authors: Author[] = [];
	for (let i = 0; i < count; i++) {
		const signer = await createSigner(newSigningSeed());
		authors.push({
			user: toBase64Url(randomBytes(32)),
			device: toBase64Url(signer.publicKey),
			signer,
			clientId: clientIdFor(signer.publicKey)
		});
	}
	return authors;
}

/**
 * Sends about every 5 minutes over the conversation's life (3 authors taking
 * turns); an edit 5 s–30 min after its message, a delete 10 s–2 h after it
 * (after the edit when both).
 */
function makeConversation(cfg: CompactionConfig, authors: Author[]): Conversation {
	const rand = random(0x6b17);
	const n = cfg.messages;
	const edited = pick(n, Math.round(n * cfg.editShare), rand);
	const deleted = pick(n, Math.round(n * cfg.deleteShare), rand);
	type Event = { wall: number; seq: number; kind: 'send' | 'edit' | 'delete'; message: number };
	const events: Event[] = [];
	let wall = Date.UTC(2024, 0, 1);
	for (let i = 0; i < n; i++) {
		wall += 1_000 + Math.floor(rand() * rand() * 1_200_000);
		events.push({ wall, seq: events.length, kind: 'send', message: i });
		let after = wall;
		if (edited.has(i)) {
			after += 5_000 + Math.floor(rand() * 1_795_000);
			events.push({ wall: after, seq: events.length, kind: 'edit', message: i });
		}
		if (deleted.has(i)) {
			after += 10_000 + Math.floor(rand() * 7_190_000);
			events.push({ wall: after, seq: events.length, kind: 'delete', message: i });
		}
	}
	events.sort((a, b) => a.wall - b.wall || a.seq - b.seq);
	const clock = new SimClock();
	const ids: string[] = new Array(n);
	const ops: Authored[] = [];
	const messages = new Map<string, PlainMessage>();
	for (const event of events) {
		clock.wall = event.wall;
		const author = event.message % authors.length;
		const user = (authors[author] as Author).user;
		if (event.kind === 'send') {
			const op = makeSend(clock, chatText(event.message * 2 + 1));
			ids[event.message] = op.id;
			ops.push({ author, op });
			messages.set(op.id, {
				author: user,
				hlc: op.hlc,
				text: op.text,
				edited: false,
				deleted: false
			});
		} else if (event.kind === 'edit') {
			const target = ids[event.message] as string;
			const op = makeEdit(clock, target as OpId, chatText(event.message * 2 + 2));
			ops.push({ author, op });
			const message = messages.get(target) as PlainMessage;
			messages.set(target, { ...message, text: op.text, edited: true });
		} else {
			const target = ids[event.message] as string;
			ops.push({ author, op: makeDelete(clock, target as OpId) });
			const message = messages.get(target) as PlainMessage;
			messages.set(target, { ...message, text: '', edited: false, deleted: true });
		}
	}
	clock.wall = wall + 60_000;
	return { ops, messages, clock };
}

// ---- envelopes and docs ----------------------------------------------------------

/** Where the bytes of a stored doc go. */
interface Breakdown {
	stored: number;
	envelopes: number;
	/** Sum of the envelopes' bytes. */
	envelopeBytes: number;
	/** UTF-8 JSON of the batches. */
	plaintextBytes: number;
	/** Plaintexts padded to their buckets (4-byte length included). */
	paddedBytes: number;
	/** Plaintext length of each envelope (kept only for the compacted doc). */
	plaintexts?: number[];
}

interface Stored {
	update: Uint8Array;
	breakdown: Breakdown;
}

function emptyBreakdown(): Breakdown {
	return { stored: 0, envelopes: 0, envelopeBytes: 0, plaintextBytes: 0, paddedBytes: 0 };
}

async function sealAll(
	plaintexts: Uint8Array[],
	doc: ConversationDoc,
	author: Author,
	key: SecretKey,
	epoch: number,
	tally: Breakdown
): Promise<void> {
	const base = doc.nextClock();
	const entries = await Promise.all(
		plaintexts.map((plaintext, i) =>
			sealEnvelope({
				clock: base + i,
				roomId: doc.roomId,
				epoch,
				key,
				signer: author.signer,
				plaintext
			})
		)
	);
	doc.insertLocal(entries);
	for (const [i, plaintext] of plaintexts.entries()) {
		tally.envelopes++;
		tally.plaintextBytes += plaintext.length;
		tally.paddedBytes += bucketSize(plaintext.length);
		tally.envelopeBytes += (entries[i] as { bytes: Uint8Array }).bytes.length;
		tally.plaintexts?.push(plaintext.length);
	}
}

/** The conversation as the app writes it: every op in its own envelope, each device in its doc. */
async function buildBefore(
	conversation: Conversation,
	authors: Author[],
	roomId: RoomId,
	key: SecretKey,
	chunk: number
): Promise<Stored> {
	const tally = emptyBreakdown();
	const docs = authors.map((author) => new ConversationDoc(roomId, author.clientId));
	const { ops } = conversation;
	for (let i = 0; i < ops.length; i += chunk) {
		const slice = ops.slice(i, i + chunk);
		await Promise.all(
			authors.map((author, k) =>
				sealAll(
					slice.filter((o) => o.author === k).map((o) => encodeBatch({ ops: [o.op] })),
					docs[k] as ConversationDoc,
					author,
					key,
					OLD_EPOCH,
					tally
				)
			)
		);
	}
	// What the relay (or any replica) holds: the three devices' items in one doc.
	const merged = new ConversationDoc(roomId, READER_CLIENT);
	for (const doc of docs) {
		applyTrustedUpdate(merged, doc.encodeState(), 'bench');
		doc.destroy();
	}
	const update = merged.encodeState();
	merged.destroy();
	tally.stored = update.length;
	return { update, breakdown: tally };
}

interface CompactionTimings {
	/** itemsWhere + survivingOps + seedParts. */
	surviveMs: number;
	/** makeSeed for every part (validates every seeded op). */
	seedMs: number;
	/** splitBatches + encodeBatch. */
	encodeMs: number;
	/** Seal every envelope, insert them in one transaction. */
	sealMs: number;
	totalMs: number;
}

interface Compacted extends Stored {
	timings: CompactionTimings;
	seededOps: number;
	parts: number;
	/** The seed ops, for the byte breakdown. */
	seeds: SeedOp[];
	/** The new generation's room and key (a reader needs them to open it). */
	roomId: RoomId;
	key: SecretKey;
}

/** What ensureSeed writes into a new generation, from the reducer of the old one. */
async function compact(
	reducer: ConversationReducer,
	opener: Author,
	clock: OpClock
): Promise<Compacted> {
	const roomId = newRoomId();
	const key = newSecretKey();
	const t0 = performance.now();
	const parts = seedParts(survivingOps(reducer.itemsWhere(() => true)));
	const t1 = performance.now();
	const seeds = parts.map((part, i) => makeSeed(clock, NEW_EPOCH, i, parts.length, part));
	const t2 = performance.now();
	const plaintexts = splitBatches(seeds).map((batch) => encodeBatch({ ops: batch }));
	const t3 = performance.now();
	const doc = new ConversationDoc(roomId, opener.clientId);
	const tally: Breakdown = { ...emptyBreakdown(), plaintexts: [] };
	await sealAll(plaintexts, doc, opener, key, NEW_EPOCH, tally);
	const t4 = performance.now();
	const update = doc.encodeState();
	doc.destroy();
	tally.stored = update.length;
	return {
		update,
		breakdown: tally,
		timings: {
			surviveMs: t1 - t0,
			seedMs: t2 - t1,
			encodeMs: t3 - t2,
			sealMs: t4 - t3,
			totalMs: t4 - t0
		},
		seededOps: parts.reduce((n, part) => n + part.length, 0),
		parts: parts.length,
		seeds,
		roomId,
		key
	};
}

// ---- cold open ---------------------------------------------------------------------

interface OpenTimings {
	/** applyRemote: doc rules (every signature verified) and Y.applyUpdate. */
	applyMs: number;
	/** openEnvelope of every entry (decrypt, unpad), 256 at a time. */
	openMs: number;
	/** decodeBatch (JSON + schema), seeds expanded into items. */
	decodeMs: number;
	/** ConversationReducer.add of every item. */
	reduceMs: number;
	totalMs: number;
	envelopes: number;
	items: number;
}

interface Opened {
	timings: OpenTimings;
	reducer: ConversationReducer;
}

/** Stored bytes → reduced view, as a device loading the generation does. */
async function coldOpen(
	update: Uint8Array,
	roomId: RoomId,
	epoch: number,
	key: SecretKey,
	users: ReadonlyMap<string, string>,
	opener: string | null
): Promise<Opened> {
	const userOf = (device: string): string => {
		const user = users.get(device);
		if (user === undefined) throw new Error(`compaction bench: unknown device ${device}`);
		return user;
	};
	const t0 = performance.now();
	const doc = new ConversationDoc(roomId, READER_CLIENT);
	const check = await doc.applyRemote(update, 'load');
	if (!check.ok)
		throw new Error(`compaction bench: the doc rules refused the update (${check.reason})`);
	const entries = [...doc.entries()];
	const t1 = performance.now();
	const opened: { id: EnvelopeId; device: string; plaintext: Uint8Array }[] = [];
	for (let i = 0; i < entries.length; i += OPEN_CHUNK) {
		const chunk = await Promise.all(
			entries.slice(i, i + OPEN_CHUNK).map(async (entry) => {
				const envelope = await openEnvelope(entry.bytes, {
					roomId,
					keyForEpoch: (e) => (e === epoch ? key : undefined),
					verified: true
				});
				return {
					id: entry.id,
					device: toBase64Url(envelope.signer),
					plaintext: envelope.plaintext
				};
			})
		);
		opened.push(...chunk);
	}
	const t2 = performance.now();
	const items: ReducerItem[] = [];
	for (const { id, device, plaintext } of opened) {
		const { ops } = decodeBatch(plaintext);
		for (const op of ops) {
			if (op.type !== 'seed') {
				items.push({ op, author: userOf(device), device, envelopeId: id });
				continue;
			}
			if (opener === null || device !== opener) continue;
			seededOps(op).forEach((seeded, i) => {
				items.push({
					op: seeded.op,
					author: userOf(seeded.device),
					device: seeded.device,
					envelopeId: `${id}:${op.id}:${i}`
				});
			});
		}
	}
	const t3 = performance.now();
	const reducer = new ConversationReducer();
	reducer.add(items);
	const t4 = performance.now();
	doc.destroy();
	return {
		reducer,
		timings: {
			applyMs: t1 - t0,
			openMs: t2 - t1,
			decodeMs: t3 - t2,
			reduceMs: t4 - t3,
			totalMs: t4 - t0,
			envelopes: entries.length,
			items: items.length
		}
	};
}

// ---- the plain Yjs doc -------------------------------------------------------------

/** The visible state as a plain Yjs chat holds it: one client per author, final values only. */
function buildPlain(conversation: Conversation, authors: Author[]): Uint8Array {
	const merged = new Y.Doc();
	for (const author of authors) {
		const doc = new Y.Doc();
		doc.transact(() => {
			const map = doc.getMap<PlainMessage>(PLAIN_MAP);
			for (const [id, message] of conversation.messages) {
				if (message.author === author.user) map.set(id, message);
			}
		});
		Y.applyUpdate(merged, Y.encodeStateAsUpdate(doc));
		doc.destroy();
	}
	const update = Y.encodeStateAsUpdate(merged);
	merged.destroy();
	return update;
}

/** The same chat with its history: edits and deletes overwrite the entry (gc on, as Yjs defaults). */
function buildPlainWithHistory(conversation: Conversation, authors: Author[]): Uint8Array {
	const docs = authors.map(() => new Y.Doc());
	const current = new Map<string, PlainMessage>();
	for (const { author, op } of conversation.ops) {
		const map = (docs[author] as Y.Doc).getMap<PlainMessage>(PLAIN_MAP);
		const user = (authors[author] as Author).user;
		if (op.type === 'send') {
			const message = { author: user, hlc: op.hlc, text: op.text, edited: false, deleted: false };
			current.set(op.id, message);
			map.set(op.id, message);
		} else if (op.type === 'edit' || op.type === 'delete') {
			const before = current.get(op.target) as PlainMessage;
			const message =
				op.type === 'edit'
					? { ...before, text: op.text, edited: true }
					: { ...before, text: '', edited: false, deleted: true };
			current.set(op.target, message);
			map.set(op.target, message);
		}
	}
	const doc = new Y.Doc();
	for (const d of docs) Y.applyUpdate(doc, Y.encodeStateAsUpdate(d));
	return Y.encodeStateAsUpdate(doc);
}

/** Y.applyUpdate into a new doc and read every entry. */
function plainColdOpen(update: Uint8Array): { ms: number; entries: Map<string, PlainMessage> } {
	const t0 = performance.now();
	const doc = new Y.Doc();
	Y.applyUpdate(doc, update);
	const entries = new Map<string, PlainMessage>();
	for (const [id, message] of doc.getMap<PlainMessage>(PLAIN_MAP)) entries.set(id, message);
	const ms = performance.now() - t0;
	doc.destroy();
	return { ms, entries };
}

// ---- verification --------------------------------------------------------------------

function sameMessage(a: PlainMessage, b: PlainMessage): boolean {
	return (
		a.author === b.author &&
		a.hlc[0] === b.hlc[0] &&
		a.hlc[1] === b.hlc[1] &&
		a.text === b.text &&
		a.edited === b.edited &&
		a.deleted === b.deleted
	);
}

function plainOf(message: Message): PlainMessage {
	return {
		author: message.author,
		hlc: [message.hlc.wall, message.hlc.counter],
		text: message.text,
		edited: message.edited,
		deleted: message.deleted
	};
}

/** Every message of `view` (display order) must be what `expected` says, and nothing else. */
function verifyView(
	name: string,
	view: readonly Message[],
	expected: ReadonlyMap<string, PlainMessage>
): void {
	if (view.length !== expected.size) {
		throw new Error(
			`compaction bench: the ${name} view has ${view.length} messages, expected ${expected.size}`
		);
	}
	for (const message of view) {
		const want = expected.get(message.id);
		if (!want || !sameMessage(plainOf(message), want)) {
			throw new Error(
				`compaction bench: the ${name} view differs at message ${message.id}: ` +
					`${JSON.stringify(plainOf(message))} instead of ${JSON.stringify(want ?? null)}`
			);
		}
	}
}

/** After compaction the view is the same objects' worth as before: same order, same content. */
function verifySame(before: readonly Message[], after: readonly Message[]): void {
	if (before.length !== after.length) {
		throw new Error(
			`compaction bench: ${after.length} messages after compaction, ${before.length} before`
		);
	}
	before.forEach((message, i) => {
		const other = after[i] as Message;
		if (other.id !== message.id || !sameMessage(plainOf(message), plainOf(other))) {
			throw new Error(
				`compaction bench: message ${i} differs after compaction: ` +
					`${JSON.stringify(plainOf(other))} (${other.id}) instead of ${JSON.stringify(plainOf(message))} (${message.id})`
			);
		}
	});
}

// ---- where the bytes go -------------------------------------------------------------

/** The seed's plaintext, split by what it carries (UTF-8 bytes of its JSON). */
interface SeedBytes {
	/** `{"device":"…","op":` … `}` around each seeded op. */
	deviceField: number;
	/** Object keys inside the seeded ops, with quotes and colon: `"text":`. */
	keys: number;
	/** Text values, quoted and escaped. */
	text: number;
	/** Op ids and targets, quoted (24 bytes each). */
	ids: number;
	/** `[wall,counter]` arrays. */
	hlc: number;
	/** `type` and `v` values, braces and commas inside the ops. */
	rest: number;
	/** Batch wrapper, seed op headers, commas between seeded ops. */
	framing: number;
	/** Seeded ops of each type: count and bytes (device field included). */
	byType: Record<string, { ops: number; bytes: number }>;
}

function seedBytes(seeds: readonly SeedOp[], plaintextBytes: number): SeedBytes {
	const out: SeedBytes = {
		deviceField: 0,
		keys: 0,
		text: 0,
		ids: 0,
		hlc: 0,
		rest: 0,
		framing: 0,
		byType: {}
	};
	const length = (value: unknown) => Buffer.byteLength(JSON.stringify(value));
	let seeded = 0;
	for (const seed of seeds) {
		for (const item of seed.ops) {
			const whole = length(item);
			const op = length(item.op);
			seeded += whole;
			const type = (out.byType[item.op.type] ??= { ops: 0, bytes: 0 });
			type.ops++;
			type.bytes += whole;
			out.deviceField += whole - op;
			let accounted = 0;
			for (const [k, value] of Object.entries(item.op)) {
				if (value === undefined) continue;
				const keyBytes = Buffer.byteLength(k) + 3;
				const valueBytes = length(value);
				out.keys += keyBytes;
				accounted += keyBytes;
				if (k === 'text') out.text += valueBytes;
				else if (k === 'id' || k === 'target') out.ids += valueBytes;
				else if (k === 'hlc') out.hlc += valueBytes;
				else continue;
				accounted += valueBytes;
			}
			out.rest += op - accounted;
		}
	}
	out.framing = plaintextBytes - seeded;
	return out;
}

interface Figures {
	before: Breakdown;
	after: Breakdown;
	seed: SeedBytes;
	plain: number;
	plainWithHistory: number;
	/** Bytes of the final texts (what every format must carry). */
	textBytes: number;
	/** Padding of the same seed cut into parts of other sizes: part size → bytes. */
	paddingByPart: Record<number, number>;
}

/** Padding of the same seed if seedParts cut it into parts of `size` ops (batched the same way). */
function paddingWithParts(seeds: readonly SeedOp[], size: number, clock: OpClock): number {
	const parts = seedParts(
		seeds.flatMap((seed) => seededOps(seed)),
		size
	);
	const ops = parts.map((part, i) => makeSeed(clock, NEW_EPOCH, i, parts.length, part));
	let padding = 0;
	for (const batch of splitBatches(ops)) {
		const length = encodeBatch({ ops: batch }).length;
		padding += bucketSize(length) - length;
	}
	return padding;
}

/** Plaintext sizes of the envelopes and the buckets they were padded to. */
function envelopeSizes(sizes: readonly number[]): string {
	if (sizes.length === 0) return 'none';
	const buckets = new Map<number, number>();
	for (const size of sizes) {
		const bucket = bucketSize(size);
		buckets.set(bucket, (buckets.get(bucket) ?? 0) + 1);
	}
	const list = [...buckets]
		.sort((x, y) => x[0] - y[0])
		.map(([bucket, count]) => `${count} × ${fmt(bucket / 1024)} KiB`)
		.join(', ');
	return `${fmt(Math.min(...sizes) / 1024)}–${fmt(Math.max(...sizes) / 1024)} KiB (median ${fmt(median(sizes) / 1024)}), padded to ${list}`;
}

/** Lines after the table: where the compacted doc's bytes go, and what a change would give. */
function breakdownLines(f: Figures): string[] {
	const a = f.after;
	const padding = a.paddedBytes - a.plaintextBytes;
	const envelopeOverhead = a.envelopeBytes - a.paddedBytes;
	const yjs = a.stored - a.envelopeBytes;
	const pct = (n: number) => `${fmt((n / a.stored) * 100, 1)} %`;
	const mb = (n: number) => `${fmt(n / 1e6, 2)} MB`;
	const r = (n: number) => ratio(n / f.plain);
	const s = f.seed;
	const b = f.before;
	const withoutPadding = a.stored - padding;
	const withoutDevice = withoutPadding - s.deviceField;
	const withoutKeys = withoutDevice - s.keys;
	return [
		`Where the compacted doc's ${mb(a.stored)} go (${fmt(a.envelopes)} envelopes; plain doc ${mb(f.plain)}, of which final texts ${mb(f.textBytes)}):`,
		`  padding to buckets ${mb(padding)} (${pct(padding)}); envelope header, nonce, GCM tag, signer, signature ${mb(envelopeOverhead)} (${pct(envelopeOverhead)}); Yjs items ${mb(yjs)} (${pct(yjs)});`,
		`  plaintext JSON ${mb(a.plaintextBytes)} (${pct(a.plaintextBytes)}): texts ${mb(s.text)}, per-op "device" field ${mb(s.deviceField)}, JSON keys ${mb(s.keys)}, ids and targets ${mb(s.ids)}, hlc ${mb(s.hlc)}, type/v/punctuation ${mb(s.rest)}, seed and batch framing ${mb(s.framing)};`,
		`  by op: ${Object.entries(s.byType)
			.map(([type, t]) => `${fmt(t.ops)} ${type} ${mb(t.bytes)} (${fmt(t.bytes / t.ops)} B each)`)
			.join(', ')}.`,
		`  envelope plaintexts ${envelopeSizes(a.plaintexts ?? [])}; with seed parts of ${Object.entries(
			f.paddingByPart
		)
			.map(
				([size, bytes]) =>
					`${size} ops the padding would be ${mb(bytes)} (${r(a.stored - padding + bytes)} the plain doc)`
			)
			.join(', of ')}.`,
		`  Without padding: ${mb(withoutPadding)} (${r(withoutPadding)} the plain doc); and without the per-op device field: ${mb(withoutDevice)} (${r(withoutDevice)}); and without JSON keys: ${mb(withoutKeys)} (${r(withoutKeys)}).`,
		`Before compaction, ${mb(b.stored)} in ${fmt(b.envelopes)} envelopes: plaintext ${mb(b.plaintextBytes)}, padding ${mb(b.paddedBytes - b.plaintextBytes)}, envelope overhead ${mb(b.envelopeBytes - b.paddedBytes)}, Yjs items ${mb(b.stored - b.envelopeBytes)}.`,
		`Plain doc with its history instead (edits and deletes overwrite the entry; gc on): ${mb(f.plainWithHistory)}.`
	];
}

// ---- the run -------------------------------------------------------------------------

export interface CompactionResults {
	config: CompactionConfig;
	bytes: {
		before: number;
		after: number;
		plain: number;
		plainWithHistory: number;
		ratioAfterToPlain: number;
		ratioBeforeToPlain: number;
	};
	envelopes: { before: number; after: number };
	seed: { parts: number; seededOps: number; bytes: SeedBytes };
	breakdown: { before: Breakdown; after: Breakdown };
	coldOpen: { before: OpenTimings[]; after: OpenTimings[]; plainMs: number[] };
	compaction: CompactionTimings[];
	buildMs: number;
	verified: { messages: number; deleted: number; edited: number };
	notes: string[];
}

export async function runCompaction(
	cfg: CompactionConfig,
	log: (text: string) => void
): Promise<{ rows: Row[]; results: CompactionResults; notes: string[] }> {
	const built = performance.now();
	const authors = await makeAuthors(cfg.authors);
	const users = new Map(authors.map((author) => [author.device, author.user]));
	const opener = authors[0] as Author;
	log(
		`compaction: making ${fmt(cfg.messages)} messages, ${fmt(cfg.messages * cfg.editShare)} edits, ${fmt(cfg.messages * cfg.deleteShare)} deletes (${cfg.authors} authors)`
	);
	const conversation = makeConversation(cfg, authors);
	const roomId = newRoomId();
	const key = newSecretKey();
	log(`compaction: sealing ${fmt(conversation.ops.length)} envelopes, one op each`);
	const before = await buildBefore(conversation, authors, roomId, key, cfg.growChunk);
	const plain = buildPlain(conversation, authors);
	const plainWithHistory = buildPlainWithHistory(conversation, authors);
	const buildMs = performance.now() - built;
	log(
		`compaction: before ${fmt(before.update.length / 1e6, 2)} MB, plain doc ${fmt(plain.length / 1e6, 2)} MB (built in ${fmt(buildMs / 1000, 1)} s)`
	);

	const coldBefore: OpenTimings[] = [];
	const coldAfter: OpenTimings[] = [];
	const plainMs: number[] = [];
	const compactions: CompactionTimings[] = [];
	let after: Compacted | null = null;
	let verified = false;
	for (let rep = 0; rep < cfg.reps; rep++) {
		const openedBefore = await coldOpen(before.update, roomId, OLD_EPOCH, key, users, null);
		coldBefore.push(openedBefore.timings);
		const compacted = await compact(openedBefore.reducer, opener, conversation.clock);
		compactions.push(compacted.timings);
		after = compacted;
		const openedAfter = await coldOpen(
			compacted.update,
			compacted.roomId,
			NEW_EPOCH,
			compacted.key,
			users,
			opener.device
		);
		coldAfter.push(openedAfter.timings);
		const plainOpen = plainColdOpen(plain);
		plainMs.push(plainOpen.ms);
		if (!verified) {
			// A benchmark of a broken path is worthless: check every message, once.
			verifyView('before', openedBefore.reducer.messages, conversation.messages);
			verifyView(
				'plain doc',
				[...plainOpen.entries].map(([id, m]) => asMessage(id, m)),
				conversation.messages
			);
			verifySame(openedBefore.reducer.messages, openedAfter.reducer.messages);
			verified = true;
			log(
				`compaction: views verified (${fmt(conversation.messages.size)} messages, before = after = plain)`
			);
		}
		log(
			`compaction: rep ${rep + 1}/${cfg.reps}: cold open before ${fmt(openedBefore.timings.totalMs)} ms, after ${fmt(openedAfter.timings.totalMs)} ms, plain ${fmt(plainOpen.ms)} ms; compaction ${fmt(compacted.timings.totalMs)} ms`
		);
	}
	if (!after) throw new Error('compaction bench: no repetition ran');

	const seed = seedBytes(after.seeds, after.breakdown.plaintextBytes);
	let textBytes = 0;
	let deletedCount = 0;
	let editedCount = 0;
	for (const message of conversation.messages.values()) {
		textBytes += Buffer.byteLength(message.text);
		if (message.deleted) deletedCount++;
		if (message.edited) editedCount++;
	}
	const figures: Figures = {
		before: before.breakdown,
		after: after.breakdown,
		seed,
		plain: plain.length,
		plainWithHistory: plainWithHistory.length,
		textBytes,
		paddingByPart: Object.fromEntries(
			[64, 128].map((size) => [size, paddingWithParts(after.seeds, size, conversation.clock)])
		)
	};

	const n = `${fmt(cfg.messages / 1000)}k`;
	const mbv = (bytes: number) => `${fmt(bytes / 1e6, 2)} MB`;
	const afterRatio = after.update.length / plain.length;
	const beforeRatio = before.update.length / plain.length;
	const ms = (values: number[]) => median(values);
	const split = (samples: OpenTimings[]) =>
		`apply + doc rules (verify) ${fmt(ms(samples.map((s) => s.applyMs)))} + open ${fmt(ms(samples.map((s) => s.openMs)))} + decode ${fmt(ms(samples.map((s) => s.decodeMs)))} + reduce ${fmt(ms(samples.map((s) => s.reduceMs)))} ms`;
	const openBefore = ms(coldBefore.map((s) => s.totalMs));
	const openAfter = ms(coldAfter.map((s) => s.totalMs));
	const openPlain = ms(plainMs);
	const rows: Row[] = [
		{
			name: `Compaction: stored bytes before, ${n} messages`,
			value: mbv(before.update.length),
			baseline: mbv(plain.length),
			ratio: ratio(beforeRatio),
			note: `${fmt(before.breakdown.envelopes)} envelopes, one op each (${fmt(before.update.length / cfg.messages)} B per message); ${fmt(cfg.editShare * 100)} % edited, ${fmt(cfg.deleteShare * 100)} % deleted`
		},
		{
			name: `  …after compaction`,
			value: mbv(after.update.length),
			baseline: mbv(plain.length),
			ratio: ratio(afterRatio),
			target: `≤ ${fmt(TARGET_RATIO, 2)}×`,
			result: afterRatio <= TARGET_RATIO ? 'PASS' : 'MISS',
			note: `${fmt(after.breakdown.envelopes)} envelopes carrying ${after.parts} seed parts of ${fmt(after.seededOps)} ops; ${fmt((1 - after.update.length / before.update.length) * 100)} % smaller than before`
		},
		{
			name: `  …plain Yjs doc (baseline)`,
			value: mbv(plain.length),
			note: `Y.Map id → {author, hlc, text, edited, deleted}, final state, ${fmt(conversation.messages.size)} entries (${fmt(plain.length / cfg.messages)} B each); with edit/delete history ${mbv(plainWithHistory.length)}`
		},
		{
			name: `Cold open before, ${n} messages`,
			value: `${fmt(openBefore)} ms`,
			baseline: `${fmt(openPlain, 1)} ms`,
			ratio: ratio(openBefore / openPlain),
			note: `${split(coldBefore)}; ${fmt(coldBefore[0]?.items ?? 0)} items`
		},
		{
			name: `  …after compaction`,
			value: `${fmt(openAfter)} ms`,
			baseline: `${fmt(openPlain, 1)} ms`,
			ratio: ratio(openAfter / openPlain),
			note: `${split(coldAfter)}; ${fmt(coldAfter[0]?.items ?? 0)} items; ${ratio(openAfter / openBefore)} the time before`
		},
		{
			name: `  …plain Yjs doc (baseline)`,
			value: `${fmt(openPlain, 1)} ms`,
			note: 'Y.applyUpdate into a new Y.Doc, every entry read'
		},
		{
			name: `Compaction (survivingOps + sealing)`,
			value: `${fmt(ms(compactions.map((c) => c.totalMs)))} ms`,
			note: `survivingOps + seedParts ${fmt(ms(compactions.map((c) => c.surviveMs)))} + makeSeed ${fmt(ms(compactions.map((c) => c.seedMs)))} + encode ${fmt(ms(compactions.map((c) => c.encodeMs)))} + seal & insert ${fmt(ms(compactions.map((c) => c.sealMs)))} ms; ${fmt(before.breakdown.envelopes)} → ${fmt(after.breakdown.envelopes)} envelopes`
		}
	];
	const notes = [
		...breakdownLines(figures),
		`Medians of ${cfg.reps} (cold opens and compactions interleaved); one process, ${cpus().length} cores; Ed25519 via ${(await hasWebCryptoEd25519()) ? 'WebCrypto' : '@noble/curves'}; the roster gate is left out of the cold open (every device a member).`,
		`Verified: the reduced view before and after compaction and the plain doc all hold the same ${fmt(conversation.messages.size)} messages (id, author, hlc, text, edited, deleted; ${fmt(editedCount)} edited, ${fmt(deletedCount)} deleted).`
	];
	return {
		rows,
		notes,
		results: {
			config: cfg,
			bytes: {
				before: before.update.length,
				after: after.update.length,
				plain: plain.length,
				plainWithHistory: plainWithHistory.length,
				ratioAfterToPlain: afterRatio,
				ratioBeforeToPlain: beforeRatio
			},
			envelopes: { before: before.breakdown.envelopes, after: after.breakdown.envelopes },
			seed: { parts: after.parts, seededOps: after.seededOps, bytes: seed },
			breakdown: { before: before.breakdown, after: after.breakdown },
			coldOpen: { before: coldBefore, after: coldAfter, plainMs },
			compaction: compactions,
			buildMs,
			verified: {
				messages: conversation.messages.size,
				deleted: deletedCount,
				edited: editedCount
			},
			notes
		}
	};
}

/** A plain entry as a Message, for verifyView. */
function asMessage(id: string, m: PlainMessage): Message {
	return {
		id: id as OpId,
		author: m.author,
		device: '',
		hlc: { wall: m.hlc[0], counter: m.hlc[1] },
		text: m.text,
		edited: m.edited,
		deleted: m.deleted,
		reactions: {},
		envelopeId: ''
	};
}
