/**
 * Conversation operations: what an envelope's plaintext says.
 *
 * An envelope decrypts to one batch, UTF-8 JSON (no BOM):
 *
 *   { "ops": [ op, ... ] }                  at least one op
 *
 * and every op is an object with a version, an id, an HLC and a type:
 *
 *   { "v": 1, "id": "<22 chars>", "hlc": [wall, counter], "type": "...", ...fields }
 *
 *   id     16 random bytes, base64url without padding (22 chars; the last one
 *          is one of A Q g w, as canonical encoding requires).
 *   hlc    [wall, counter]: integers, 0 <= wall <= 9999999999999 (ms since
 *          the Unix epoch), 0 <= counter <= 999999. See hlc.ts.
 *
 *   type          fields
 *   send          text, replyTo?: id, attachment?: file manifest (../media/manifest.ts;
 *                 old readers ignore it and show the text, which may be empty),
 *                 mentions?: [user, ...] (distinct, at most 64: who the text names
 *                 with @; old readers ignore it and show the text)
 *   edit          target: id, text, mentions?: as in send (an edit's own list
 *                 replaces the message's)
 *   delete        target: id
 *   react         target: id, emoji, on: boolean
 *   receipt       kind: "delivered" | "read", upTo: [wall, counter], upToId: id,
 *                 sv?: [[client, clock], ...] (the sender's Yjs state vector: what
 *                 it held when it made the receipt; at most 1024 pairs)
 *   member.add    user, devices: [device, ...], role: "owner" | "admin" | "member",
 *                 name?: display name (1..64 chars), ssk?: certificate,
 *                 certs?: [certificate, ...] (one per device; see roster.ts),
 *                 invite?: id of the invitation that admitted the user
 *   invite        invite: id, secret: 32 bytes base64url, expires: ms since the epoch
 *   member.remove user
 *   member.role   user, role
 *   epoch         epoch: integer >= 1, boxes: { device: lockbox (base64url) } — the
 *                 next generation (generation.ts): its room id and key sealed to
 *                 each remaining member device, 1..1024 of them
 *   seed          epoch: integer >= 1, part, parts: integers (0 <= part < parts),
 *                 ops: [{ device, op }, ...] (1..1024): the surviving ops of the
 *                 generations before (compaction.ts), as their devices signed them;
 *                 counts only from the device that opened this generation (its opener)
 *
 *   text   a string of at most 65536 bytes in UTF-8, well-formed (no lone
 *          surrogates). May be empty.
 *   emoji  a non-empty well-formed string of at most 64 bytes in UTF-8. Any
 *          short string is allowed: the reaction set is not fixed.
 *   user, device   base64url (no padding) of a 32-byte public key: 43 chars.
 *
 * Reading rules (a second implementation must follow them to converge):
 *   - An op whose `v` is an integer greater than 1 is from a newer version of
 *     the protocol. It is skipped and counted, never an error: the envelope is
 *     kept and read again after an update. A new op type, or a new meaning for
 *     a field, needs a new `v` for this reason.
 *   - An op with `v: 1` must match its schema exactly in the fields above;
 *     otherwise the whole batch is malformed (MalformedOperationError). An
 *     unknown `type` under `v: 1` is malformed too.
 *   - Fields not listed above are ignored (and dropped when re-encoding).
 *
 * The schemas double as types (a zod schema and its type share a name) and
 * are the trust boundary: nothing reaches the reducer without passing them.
 */
import { base64urlnopad } from '@scure/base';
import { z } from 'zod';
import { Certificate } from '../identity/certificates';
import { FileManifest } from '../media/manifest';
import { HLC_MAX_COUNTER, HLC_MAX_WALL, type Hlc, type HlcClock } from './hlc';

/** The op format this code writes and fully understands. */
export const OPERATION_VERSION = 1;
/** Largest message text, in UTF-8 bytes (64 KiB). Longer text belongs in a file. */
export const MAX_TEXT_BYTES = 65_536;
/** Largest reaction, in UTF-8 bytes. Room for any emoji ZWJ sequence. */
export const MAX_EMOJI_BYTES = 64;
/** Most users one message may mention. */
export const MAX_MENTIONS = 64;

// ---------------------------------------------------------------------------
// Errors. Callers compare `error.name`, not `instanceof`.

/** A batch or one of its v1 ops does not match the format. Nothing of the batch is applied. */
export class MalformedOperationError extends Error {
	static readonly NAME = 'MalformedOperationError';
	override name = MalformedOperationError.NAME;
	constructor(
		message: string,
		/** Position of the bad op in the batch, or null when the batch itself is bad. */
		readonly index: number | null = null,
		/** `path: problem` lines. They never quote the input (it may be someone's message). */
		readonly issues: readonly string[] = [],
		options?: ErrorOptions
	) {
		super(message, options);
	}
}

/** The text of a message or edit is over MAX_TEXT_BYTES. The message says what to do. */
export class MessageTooLongError extends Error {
	static readonly NAME = 'MessageTooLongError';
	override name = MessageTooLongError.NAME;
	constructor(
		readonly bytes: number,
		readonly limit: number = MAX_TEXT_BYTES
	) {
		super(
			`This message is too long to send: it is ${bytes} bytes and a message can hold at most ` +
				`${limit} bytes (64 KB) of text. Shorten it, split it into several messages, ` +
				`or send it as a file.`
		);
	}
}

// ---------------------------------------------------------------------------
// Primitives

/** Bytes `text` takes in UTF-8, counted without encoding it. Lone surrogates count as U+FFFD (3). */
export function utf8ByteLength(text: string): number {
	let bytes = 0;
	for (let i = 0; i < text.length; i++) {
		const unit = text.charCodeAt(i);
		if (unit < 0x80) bytes += 1;
		else if (unit < 0x800) bytes += 2;
		else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
			const next = text.charCodeAt(i + 1);
			if (next >= 0xdc00 && next <= 0xdfff) {
				bytes += 4;
				i++;
			} else bytes += 3;
		} else bytes += 3;
	}
	return bytes;
}

/**
 * UTF-8 is never shorter than UTF-16 code units, so `length` above the limit
 * rejects without counting: a 1 MiB string costs nothing to refuse.
 */
function fitsBytes(text: string, limit: number): boolean {
	return text.length <= limit && utf8ByteLength(text) <= limit;
}

/** 16 bytes, base64url, canonical (the 2 spare bits of the last char are zero). */
const OP_ID_PATTERN = /^[A-Za-z0-9_-]{21}[AQgw]$/;
/** 32 bytes (an Ed25519 / X25519 public key), base64url without padding. */
const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** Id of an operation. Branded so it cannot be mixed up with a user, device or envelope id. */
export const OpId = z.string().regex(OP_ID_PATTERN, 'not an operation id').brand<'OpId'>();
export type OpId = z.infer<typeof OpId>;

export function isOpId(value: unknown): value is OpId {
	return typeof value === 'string' && OP_ID_PATTERN.test(value);
}

/** A fresh random op id (16 bytes from the platform CSPRNG). */
export function newOpId(): OpId {
	const bytes = new Uint8Array(16);
	crypto.getRandomValues(bytes);
	return base64urlnopad.encode(bytes) as OpId;
}

/** An Hlc on the wire: [wall, counter]. */
export const HlcTuple = z.tuple([
	z.int().min(0).max(HLC_MAX_WALL),
	z.int().min(0).max(HLC_MAX_COUNTER)
]);
export type HlcTuple = z.infer<typeof HlcTuple>;

export function hlcFromTuple(tuple: HlcTuple): Hlc {
	return { wall: tuple[0], counter: tuple[1] };
}

export function hlcToTuple(hlc: Hlc): HlcTuple {
	return [hlc.wall, hlc.counter];
}

/** The Hlc of an op, as an object. */
export function opHlc(op: { hlc: HlcTuple }): Hlc {
	return hlcFromTuple(op.hlc);
}

const wellFormed = (text: string) => text.isWellFormed();

export const MessageText = z
	.string()
	.refine(wellFormed, 'text is not well-formed Unicode')
	.refine(
		(text) => fitsBytes(text, MAX_TEXT_BYTES),
		`text is longer than ${MAX_TEXT_BYTES} UTF-8 bytes`
	);

export const Emoji = z
	.string()
	.min(1, 'emoji is empty')
	.refine(wellFormed, 'emoji is not well-formed Unicode')
	.refine(
		(text) => fitsBytes(text, MAX_EMOJI_BYTES),
		`emoji is longer than ${MAX_EMOJI_BYTES} UTF-8 bytes`
	);

const KeyId = z.string().regex(KEY_ID_PATTERN, 'not a public key id');

/** Users a message names with @: distinct user ids. */
export const Mentions = z
	.array(KeyId)
	.min(1)
	.max(MAX_MENTIONS)
	.refine((users) => new Set(users).size === users.length, 'mentions are not distinct');

export const Role = z.enum(['owner', 'admin', 'member']);
export type Role = z.infer<typeof Role>;

export const ReceiptKind = z.enum(['delivered', 'read']);
export type ReceiptKind = z.infer<typeof ReceiptKind>;

// ---------------------------------------------------------------------------
// Operations

const base = { v: z.literal(OPERATION_VERSION), id: OpId, hlc: HlcTuple };

export const SendOp = z.object({
	...base,
	type: z.literal('send'),
	text: MessageText,
	replyTo: OpId.optional(),
	attachment: FileManifest.optional(),
	mentions: Mentions.optional()
});
export type SendOp = z.infer<typeof SendOp>;

export const EditOp = z.object({
	...base,
	type: z.literal('edit'),
	target: OpId,
	text: MessageText,
	mentions: Mentions.optional()
});
export type EditOp = z.infer<typeof EditOp>;

export const DeleteOp = z.object({ ...base, type: z.literal('delete'), target: OpId });
export type DeleteOp = z.infer<typeof DeleteOp>;

export const ReactOp = z.object({
	...base,
	type: z.literal('react'),
	target: OpId,
	emoji: Emoji,
	on: z.boolean()
});
export type ReactOp = z.infer<typeof ReactOp>;

export const ReceiptOp = z.object({
	...base,
	type: z.literal('receipt'),
	kind: ReceiptKind,
	upTo: HlcTuple,
	upToId: OpId,
	sv: z
		.array(z.tuple([z.int().min(0).max(0xffffffff), z.int().min(0).max(0xffffffff)]))
		.max(1024)
		.optional()
});
export type ReceiptOp = z.infer<typeof ReceiptOp>;

export const MemberAddOp = z.object({
	...base,
	type: z.literal('member.add'),
	user: KeyId,
	devices: z.array(KeyId),
	role: Role,
	name: z.string().min(1).max(64).optional(),
	ssk: Certificate.optional(),
	certs: z.array(Certificate).max(64).optional(),
	invite: OpId.optional()
});
export type MemberAddOp = z.infer<typeof MemberAddOp>;

/** An invitation members may admit joiners for; its secret opens the invite room. */
export const InviteOp = z.object({
	...base,
	type: z.literal('invite'),
	invite: OpId,
	secret: z.string().regex(KEY_ID_PATTERN, 'not a 32-byte secret'),
	expires: z.int().min(0).max(HLC_MAX_WALL)
});
export type InviteOp = z.infer<typeof InviteOp>;

export const MemberRemoveOp = z.object({ ...base, type: z.literal('member.remove'), user: KeyId });
export type MemberRemoveOp = z.infer<typeof MemberRemoveOp>;

export const MemberRoleOp = z.object({
	...base,
	type: z.literal('member.role'),
	user: KeyId,
	role: Role
});
export type MemberRoleOp = z.infer<typeof MemberRoleOp>;

/** A lockbox in base64url: 61 bytes and more (invite/lockbox.ts). */
const BoxText = z.string().regex(/^[A-Za-z0-9_-]{82,8192}$/, 'not a lockbox');

export const EpochOp = z.object({
	...base,
	type: z.literal('epoch'),
	epoch: z.int().min(1).max(1_000_000),
	boxes: z.record(KeyId, BoxText).refine((boxes) => {
		const n = Object.keys(boxes).length;
		return n >= 1 && n <= 1024;
	}, '1 to 1024 lockboxes')
});
export type EpochOp = z.infer<typeof EpochOp>;

/** The ops a seed may carry. */
const SeedableOp = z.discriminatedUnion('type', [
	SendOp,
	EditOp,
	DeleteOp,
	ReactOp,
	ReceiptOp,
	MemberAddOp,
	MemberRemoveOp,
	MemberRoleOp,
	InviteOp
]);

/** One op of an earlier generation (compaction.ts), with the device that signed it. */
export interface SeededOp {
	device: string;
	op: z.infer<typeof SeedableOp>;
}

/**
 * A seed part on the wire: the signing devices once (`devices`), and each op
 * with the index of its device (`d`) — a device id per op was a quarter of a
 * compacted generation's bytes.
 */
export const SeedOp = z
	.object({
		...base,
		type: z.literal('seed'),
		epoch: z.int().min(1).max(1_000_000),
		/** This part's number, from 0, of `parts`: a reader knows when it holds the whole seed. */
		part: z.int().min(0).max(999_999),
		parts: z.int().min(1).max(1_000_000),
		devices: z.array(KeyId).min(1).max(1024),
		ops: z
			.array(z.object({ d: z.int().min(0).max(1023), op: SeedableOp }))
			.min(1)
			.max(1024)
	})
	.refine(
		(seed) => seed.ops.every(({ d }) => d < seed.devices.length),
		'a device index out of range'
	);
export type SeedOp = z.infer<typeof SeedOp>;

/** Every op: what a seed may carry, and the generation ops themselves. */
export const Operation = z.discriminatedUnion('type', [...SeedableOp.options, EpochOp, SeedOp]);
export type Operation = z.infer<typeof Operation>;
export type OperationType = Operation['type'];

/**
 * Each op type's own schema. Validating an op of a known type with it gives
 * what the union gives, several times faster (the union's dispatch costs more
 * than checking a send op): this is on the path of every message.
 */
const SCHEMA_OF: Record<OperationType, z.ZodType> = {
	send: SendOp,
	edit: EditOp,
	delete: DeleteOp,
	react: ReactOp,
	receipt: ReceiptOp,
	'member.add': MemberAddOp,
	'member.remove': MemberRemoveOp,
	'member.role': MemberRoleOp,
	epoch: EpochOp,
	seed: SeedOp,
	invite: InviteOp
};

function parseOp(raw: unknown): z.ZodSafeParseResult<Operation> {
	const type = (raw as { type?: unknown } | null)?.type;
	const schema =
		typeof type === 'string' && Object.hasOwn(SCHEMA_OF, type)
			? SCHEMA_OF[type as OperationType]
			: Operation;
	return schema.safeParse(raw) as z.ZodSafeParseResult<Operation>;
}

export const OperationBatch = z.object({ ops: z.array(Operation).min(1) });
export type OperationBatch = z.infer<typeof OperationBatch>;

/** A decoded batch: the ops this version understands, and how many newer ones it skipped. */
export interface ParsedBatch extends OperationBatch {
	/** Ops with `v` > OPERATION_VERSION. Non-zero means: keep the envelope, read it after an update. */
	unknown: number;
}

// ---------------------------------------------------------------------------
// Parsing and encoding

function describeIssues(issues: readonly z.core.$ZodIssue[]): string[] {
	return issues.map((issue) => {
		const path = issue.path.map(String).join('.');
		return `${path || '(op)'}: ${issue.message}`;
	});
}

const BatchShape = z.object({ ops: z.array(z.unknown()).min(1, 'a batch holds at least one op') });
const VersionProbe = z.looseObject({ v: z.int().min(1) });

/**
 * Validate a decoded batch at the trust boundary. Newer-version ops are
 * counted and skipped; any malformed v1 op (or a malformed batch) throws
 * MalformedOperationError and nothing of the batch is returned.
 */
export function parseOperationBatch(json: unknown): ParsedBatch {
	const shape = BatchShape.safeParse(json);
	if (!shape.success) {
		const issues = describeIssues(shape.error.issues);
		throw new MalformedOperationError(
			`operation batch is malformed (${issues.join('; ')})`,
			null,
			issues
		);
	}
	const ops: Operation[] = [];
	let unknown = 0;
	shape.data.ops.forEach((raw, index) => {
		const probe = VersionProbe.safeParse(raw);
		if (!probe.success) {
			const issues = describeIssues(probe.error.issues);
			throw new MalformedOperationError(
				`operation ${index} of the batch has no valid version (${issues.join('; ')})`,
				index,
				issues
			);
		}
		if (probe.data.v > OPERATION_VERSION) {
			unknown++;
			return;
		}
		const op = parseOp(raw);
		if (!op.success) {
			const issues = describeIssues(op.error.issues);
			throw new MalformedOperationError(
				`operation ${index} of the batch is malformed (${issues.join('; ')})`,
				index,
				issues
			);
		}
		ops.push(op.data);
	});
	return { ops, unknown };
}

const encoder = new TextEncoder();
// fatal: invalid UTF-8 is an error, not U+FFFD. ignoreBOM: a BOM is kept, so
// JSON.parse refuses it, as a strict reader in another language would.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Batch to UTF-8 JSON, ready to be padded and encrypted. Validates first: an
 * op other devices would refuse must never leave this one. Fields outside the
 * schema are dropped.
 */
export function encodeBatch(batch: OperationBatch): Uint8Array {
	// Ops from the builders below were validated when made, and are frozen:
	// validating them again would double the cost of every send.
	if (batch.ops.length > 0 && batch.ops.every((op) => builtOps.has(op))) {
		return encoder.encode(JSON.stringify({ ops: batch.ops }));
	}
	const checked = OperationBatch.safeParse(batch);
	if (!checked.success) {
		const issues = describeIssues(checked.error.issues);
		throw new MalformedOperationError(
			`refusing to encode a malformed batch (${issues.join('; ')})`,
			null,
			issues
		);
	}
	return encoder.encode(JSON.stringify(checked.data));
}

/** Inverse of encodeBatch, for plaintext from an envelope. Throws MalformedOperationError. */
export function decodeBatch(bytes: Uint8Array): ParsedBatch {
	let json: unknown;
	try {
		json = JSON.parse(decoder.decode(bytes));
	} catch (cause) {
		throw new MalformedOperationError('operation batch is not UTF-8 JSON', null, [], { cause });
	}
	return parseOperationBatch(json);
}

// ---------------------------------------------------------------------------
// Builders for local operations. Each one stamps a fresh id and Hlc and
// validates the result, so the UI gets a clear error before anything is sent.

/** What the builders need from a clock (an HlcClock, or a fake in tests). */
export type OpClock = Pick<HlcClock, 'now'>;

function header(clock: OpClock) {
	return { v: OPERATION_VERSION, id: newOpId(), hlc: hlcToTuple(clock.now()) } as const;
}

/** Ops made (and validated) by the builders; frozen, so they stay valid. */
const builtOps = new WeakSet<object>();

function deepFreeze<T>(value: T): T {
	if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
		for (const inner of Object.values(value)) deepFreeze(inner);
		Object.freeze(value);
	}
	return value;
}

function checked<T extends Operation>(op: T): T {
	const result = parseOp(op);
	if (!result.success) {
		const issues = describeIssues(result.error.issues);
		throw new MalformedOperationError(
			`cannot build this ${op.type} operation (${issues.join('; ')})`,
			null,
			issues
		);
	}
	const built = deepFreeze(result.data as T);
	builtOps.add(built);
	return built;
}

/**
 * User text as it will be sent: lone surrogates (from a bad paste) become
 * U+FFFD rather than failing, so nothing the user typed is refused for it.
 */
function userText(text: string): string {
	const fixed = text.toWellFormed();
	const bytes = utf8ByteLength(fixed);
	if (bytes > MAX_TEXT_BYTES) throw new MessageTooLongError(bytes);
	return fixed;
}

/** A new message. Throws MessageTooLongError when the text is over 64 KiB in UTF-8. */
export function makeSend(
	clock: OpClock,
	text: string,
	replyTo?: OpId,
	attachment?: FileManifest,
	mentions?: readonly string[]
): SendOp {
	const body = userText(text);
	const named = mentionList(mentions);
	return checked<SendOp>({
		...header(clock),
		type: 'send',
		text: body,
		...(replyTo === undefined ? {} : { replyTo }),
		...(attachment === undefined ? {} : { attachment }),
		...(named === undefined ? {} : { mentions: named })
	});
}

/** Replace the text of one's own message. Throws MessageTooLongError like makeSend. */
export function makeEdit(
	clock: OpClock,
	target: OpId,
	text: string,
	mentions?: readonly string[]
): EditOp {
	const body = userText(text);
	const named = mentionList(mentions);
	return checked<EditOp>({
		...header(clock),
		type: 'edit',
		target,
		text: body,
		...(named === undefined ? {} : { mentions: named })
	});
}

/** Mentions as sent: distinct, at most MAX_MENTIONS (the first ones), omitted when none. */
function mentionList(mentions: readonly string[] | undefined): string[] | undefined {
	if (!mentions || mentions.length === 0) return undefined;
	return [...new Set(mentions)].slice(0, MAX_MENTIONS);
}

export function makeDelete(clock: OpClock, target: OpId): DeleteOp {
	return checked<DeleteOp>({ ...header(clock), type: 'delete', target });
}

/** Add (`on: true`) or withdraw (`on: false`) one's reaction `emoji` on a message. */
export function makeReact(clock: OpClock, target: OpId, emoji: string, on: boolean): ReactOp {
	return checked<ReactOp>({ ...header(clock), type: 'react', target, emoji, on });
}

/** Mark everything up to and including the message at `upTo` as delivered or read. */
export function makeReceipt(
	clock: OpClock,
	kind: ReceiptKind,
	upTo: { hlc: Hlc; id: OpId },
	stateVector?: ReadonlyMap<number, number>
): ReceiptOp {
	return checked<ReceiptOp>({
		...header(clock),
		type: 'receipt',
		kind,
		upTo: hlcToTuple(upTo.hlc),
		upToId: upTo.id,
		...(stateVector ? { sv: [...stateVector].slice(0, 1024) } : {})
	});
}

/** Add a user (with their certified devices) to the conversation. */
export function makeMemberAdd(
	clock: OpClock,
	member: Omit<MemberAddOp, 'v' | 'id' | 'hlc' | 'type'>
): MemberAddOp {
	return checked<MemberAddOp>({ ...header(clock), type: 'member.add', ...member });
}

/** Change a member's role (membership.ts says who may). */
export function makeMemberRole(clock: OpClock, user: string, role: Role): MemberRoleOp {
	return checked<MemberRoleOp>({ ...header(clock), type: 'member.role', user, role });
}

/** Record an invitation whose joiners any admin device may admit. */
export function makeInvite(
	clock: OpClock,
	invite: { invite: OpId; secret: string; expires: number }
): InviteOp {
	return checked<InviteOp>({ ...header(clock), type: 'invite', ...invite });
}

/** Remove a user (or leave: remove oneself). membership.ts says who may. */
export function makeMemberRemove(clock: OpClock, user: string): MemberRemoveOp {
	return checked<MemberRemoveOp>({ ...header(clock), type: 'member.remove', user });
}

/** Open generation `epoch`: its room and key sealed to each member device (generation.ts). */
export function makeEpoch(clock: OpClock, epoch: number, boxes: Record<string, string>): EpochOp {
	return checked<EpochOp>({ ...header(clock), type: 'epoch', epoch, boxes });
}

/** Part `part` of `parts` of a new generation's seed: the surviving ops before it. */
export function makeSeed(
	clock: OpClock,
	epoch: number,
	part: number,
	parts: number,
	ops: SeededOp[]
): SeedOp {
	const devices: string[] = [];
	const index = new Map<string, number>();
	const entries = ops.map(({ device, op }) => {
		let d = index.get(device);
		if (d === undefined) {
			d = devices.length;
			index.set(device, d);
			devices.push(device);
		}
		return { d, op };
	});
	return checked<SeedOp>({
		...header(clock),
		type: 'seed',
		epoch,
		part,
		parts,
		devices,
		ops: entries
	});
}

/** A seed part's ops, each with the device that signed it. */
export function seededOps(seed: SeedOp): SeededOp[] {
	return seed.ops.map(({ d, op }) => ({ device: seed.devices[d] as string, op }));
}

/** Most plaintext bytes sealed into one envelope when batching a burst. */
export const BATCH_BYTES = 192 * 1024;

/**
 * Group ops into envelope batches of about `limit` plaintext bytes (sizes
 * estimated without serialising the common case, a text message): a burst
 * goes out in few envelopes, one signature and one AES-GCM call each.
 */
export function splitBatches(ops: Operation[], limit = BATCH_BYTES): Operation[][] {
	const batches: Operation[][] = [];
	let current: Operation[] = [];
	let bytes = 0;
	for (const op of ops) {
		const size =
			op.type === 'send'
				? op.text.length * 3 + 128 + (op.attachment ? attachmentBytes(op.attachment) : 0)
				: op.type === 'seed' || op.type === 'epoch' || op.type === 'member.add'
					? JSON.stringify(op).length
					: 256;
		if (current.length > 0 && bytes + size > limit) {
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

/**
 * `ops` encoded as envelope plaintexts of at most `limit` bytes each (an op
 * larger than that on its own goes alone): grouped by splitBatches'
 * estimates, and a group whose encoding came out over `limit` (an estimate
 * is not a bound: a long edit, a text of escaped characters) split again.
 */
export function encodeBatches(
	ops: Operation[],
	limit = BATCH_BYTES
): Array<{ ops: Operation[]; plaintext: Uint8Array }> {
	const out: Array<{ ops: Operation[]; plaintext: Uint8Array }> = [];
	const add = (batch: Operation[]): void => {
		const plaintext = encodeBatch({ ops: batch });
		if (plaintext.length <= limit || batch.length === 1) {
			out.push({ ops: batch, plaintext });
			return;
		}
		const half = Math.ceil(batch.length / 2);
		add(batch.slice(0, half));
		add(batch.slice(half));
	};
	for (const batch of splitBatches(ops, limit)) add(batch);
	return out;
}

/** An upper bound of a manifest's JSON size, without serialising it. */
function attachmentBytes(manifest: FileManifest): number {
	return (
		1024 + manifest.chunks.length * 46 + (manifest.preview?.length ?? 0) + manifest.name.length * 3
	);
}
