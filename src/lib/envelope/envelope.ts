/**
 * Envelopes: the only thing Kith ever stores or sends for a conversation.
 *
 * Binary layout (see docs/protocol.md, "Envelope"):
 *
 *   u8        version                      (1)
 *   varUint   clock: the Yjs clock of the item that must carry this envelope
 *   ...       body, version specific        v1: varString roomId,
 *                                               varUint epoch,
 *                                               12 bytes nonce,
 *                                               varUint8Array ciphertext
 *   32 bytes  signer: Ed25519 public key of the device
 *   64 bytes  Ed25519 signature over "kith/envelope\0" || every byte before it
 *
 * The frame rule — version and clock first, signer and signature last — holds
 * for every version, so a relay or an older client can check a newer
 * envelope's signature and placement and keep it without understanding its body.
 *
 * Why the clock is signed: a Yjs item is named (client, clock). The client id
 * is bound to the signer; binding the clock too means nobody who has seen an
 * envelope can replant it at a clock its device has not used yet, which would
 * make every receiver skip the device's real item there (a hidden message).
 *
 * The ciphertext is AES-256-GCM over the padded plaintext, with the header
 * (version, room id, epoch, signer) as associated data: an envelope replayed
 * into another room, epoch, or re-signed by another device fails to decrypt.
 * Encrypt-then-sign lets key-less parties (the relay) check authorship.
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { aeadDecrypt, aeadEncrypt, NONCE_LENGTH, type AeadKey } from '../crypto/aead';
import { concatBytes, toBase64Url, utf8Encode } from '../crypto/bytes';
import { DecryptionError, MissingKeyError } from '../crypto/errors';
import { sha256 } from '../crypto/hash';
import { type EnvelopeId, type RoomId } from '../crypto/ids';
import { bucketSize, pad, unpad } from '../crypto/padding';
import {
	publicKeyCacheKey,
	verifySignature,
	verifySignatureNow,
	verifySignatureSync,
	type Signer
} from '../crypto/sign';

export const ENVELOPE_VERSION = 1;
const SIGNER_LENGTH = 32;
const SIGNATURE_LENGTH = 64;
const TRAILER = SIGNER_LENGTH + SIGNATURE_LENGTH;
/** Upper bound for one envelope; larger frames are refused before any work. */
export const MAX_ENVELOPE_BYTES = 1024 * 1024;
const SIGNATURE_CONTEXT = utf8Encode('kith/envelope\0');
/**
 * Bytes an envelope adds to its padded plaintext, at most: version, clock
 * (≤ 5), room id (1 + 22), epoch (≤ 5), nonce, ciphertext length (≤ 4), the
 * GCM tag (16), signer and signature.
 */
export const ENVELOPE_OVERHEAD_MAX = 1 + 5 + 23 + 5 + NONCE_LENGTH + 4 + 16 + TRAILER;

/** The most bytes an envelope sealing `plaintextLength` bytes can take. */
export function sealedLengthAtMost(plaintextLength: number): number {
	return bucketSize(plaintextLength) + ENVELOPE_OVERHEAD_MAX;
}

export type EnvelopeErrorCode =
	| 'malformed'
	| 'too-large'
	| 'bad-signature'
	| 'wrong-room'
	| 'missing-key'
	| 'decrypt-failed'
	| 'unsupported-version';

/** Why an envelope was refused. `code` is stable and documented in docs/protocol.md. */
export class EnvelopeError extends Error {
	static readonly NAME = 'EnvelopeError';
	override name = EnvelopeError.NAME;
	constructor(
		readonly code: EnvelopeErrorCode,
		message: string,
		options?: ErrorOptions
	) {
		super(message, options);
	}
}

/** The version-independent frame: enough to hash, attribute and verify. */
export interface EnvelopeFrame {
	version: number;
	/** Yjs clock (under the signer's bound client id) of the item carrying it. */
	clock: number;
	/** Offset of the version-specific body. */
	bodyStart: number;
	signer: Uint8Array;
	signature: Uint8Array;
	/** Every byte the signature covers (without the context prefix). */
	signed: Uint8Array;
	bytes: Uint8Array;
}

export interface EnvelopeV1 extends EnvelopeFrame {
	version: 1;
	roomId: RoomId;
	epoch: number;
	nonce: Uint8Array;
	ciphertext: Uint8Array;
}

export function envelopeId(bytes: Uint8Array): EnvelopeId {
	return toBase64Url(sha256(bytes)) as EnvelopeId;
}

export function parseFrame(bytes: Uint8Array): EnvelopeFrame {
	if (bytes.length > MAX_ENVELOPE_BYTES) {
		throw new EnvelopeError('too-large', `envelope of ${bytes.length} bytes exceeds the limit`);
	}
	if (bytes.length < 1 + TRAILER) throw new EnvelopeError('malformed', 'envelope is truncated');
	const version = bytes[0] as number;
	if (version === 0) throw new EnvelopeError('malformed', 'envelope version 0 does not exist');
	const end = bytes.length;
	let clock: number;
	let bodyStart: number;
	try {
		const decoder = decoding.createDecoder(bytes.subarray(1, end - TRAILER));
		clock = decoding.readVarUint(decoder);
		bodyStart = 1 + decoder.pos;
	} catch (cause) {
		throw new EnvelopeError('malformed', 'envelope clock is malformed', { cause });
	}
	if (!Number.isSafeInteger(clock) || clock > 0xffffffff) {
		throw new EnvelopeError('malformed', 'envelope clock is out of range');
	}
	return {
		version,
		clock,
		bodyStart,
		signer: bytes.subarray(end - TRAILER, end - SIGNATURE_LENGTH),
		signature: bytes.subarray(end - SIGNATURE_LENGTH),
		signed: bytes.subarray(0, end - SIGNATURE_LENGTH),
		bytes
	};
}

/** Parse a v1 envelope fully. Throws EnvelopeError('unsupported-version') for newer ones. */
export function parseEnvelope(bytes: Uint8Array): EnvelopeV1 {
	const frame = parseFrame(bytes);
	if (frame.version !== ENVELOPE_VERSION) {
		throw new EnvelopeError(
			'unsupported-version',
			`envelope version ${frame.version} is newer than this app understands; it is kept for a later update`
		);
	}
	try {
		const decoder = decoding.createDecoder(bytes.subarray(frame.bodyStart, bytes.length - TRAILER));
		const roomId = decoding.readVarString(decoder) as RoomId;
		const epoch = decoding.readVarUint(decoder);
		const nonce = decoding.readUint8Array(decoder, NONCE_LENGTH);
		const ciphertext = decoding.readVarUint8Array(decoder);
		if (decoding.hasContent(decoder)) throw new Error('trailing bytes in body');
		if (nonce.length !== NONCE_LENGTH) throw new Error('short nonce');
		return { ...frame, version: 1, roomId, epoch, nonce, ciphertext };
	} catch (cause) {
		if (cause instanceof EnvelopeError) throw cause;
		throw new EnvelopeError('malformed', 'envelope body is malformed', { cause });
	}
}

function signatureMessage(frame: EnvelopeFrame): Uint8Array {
	return concatBytes(SIGNATURE_CONTEXT, frame.signed);
}

/** Verify the signature of any version's envelope (no keys needed). */
export function verifyFrame(frame: EnvelopeFrame): Promise<boolean> {
	return verifySignature(frame.signer, signatureMessage(frame), frame.signature);
}

export function verifyFrameSync(frame: EnvelopeFrame): boolean {
	return verifySignatureSync(frame.signer, signatureMessage(frame), frame.signature);
}

/**
 * Verify synchronously with the platform's verifier where one is installed
 * (the relay: Node's), else with noble (`verifyFrameSync`). Same answers as
 * `verifyFrame`.
 */
export function verifyFrameNow(frame: EnvelopeFrame): boolean {
	return verifySignatureNow(frame.signer, signatureMessage(frame), frame.signature);
}

function header(roomId: RoomId, epoch: number): Uint8Array {
	const encoder = encoding.createEncoder();
	encoding.writeUint8(encoder, ENVELOPE_VERSION);
	encoding.writeVarString(encoder, roomId);
	encoding.writeVarUint(encoder, epoch);
	return encoding.toUint8Array(encoder);
}

function associatedData(roomId: RoomId, epoch: number, signer: Uint8Array): Uint8Array {
	return concatBytes(header(roomId, epoch), signer);
}

export interface SealInput {
	/** The Yjs clock the inserting device will give the item (see the module header). */
	clock: number;
	roomId: RoomId;
	epoch: number;
	key: AeadKey;
	signer: Signer;
	plaintext: Uint8Array;
}

/** Pad, encrypt, sign. Returns the envelope bytes and their id. */
export async function sealEnvelope(
	input: SealInput
): Promise<{ id: EnvelopeId; bytes: Uint8Array }> {
	const { roomId, epoch, key, signer } = input;
	if (!Number.isSafeInteger(input.clock) || input.clock < 0 || input.clock > 0xffffffff) {
		throw new RangeError(`an envelope clock is an integer from 0 to 2^32 - 1 (got ${input.clock})`);
	}
	if (!key) throw new MissingKeyError('No key for this conversation: refusing to send.');
	const padded = pad(input.plaintext);
	const { nonce, ciphertext } = await aeadEncrypt(
		key,
		padded,
		associatedData(roomId, epoch, signer.publicKey)
	);
	const encoder = encoding.createEncoder();
	encoding.writeUint8(encoder, ENVELOPE_VERSION);
	encoding.writeVarUint(encoder, input.clock);
	encoding.writeVarString(encoder, roomId);
	encoding.writeVarUint(encoder, epoch);
	encoding.writeUint8Array(encoder, nonce);
	encoding.writeVarUint8Array(encoder, ciphertext);
	encoding.writeUint8Array(encoder, signer.publicKey);
	const signed = encoding.toUint8Array(encoder);
	const signature = await signer.sign(concatBytes(SIGNATURE_CONTEXT, signed));
	const bytes = concatBytes(signed, signature);
	if (bytes.length > MAX_ENVELOPE_BYTES) {
		throw new EnvelopeError('too-large', 'this content is too large for one envelope');
	}
	return { id: envelopeId(bytes), bytes };
}

export interface OpenContext {
	/** The room this envelope must belong to (replays into another room fail). */
	roomId: RoomId;
	/** The key for an epoch, or undefined when this device does not hold it. */
	keyForEpoch(epoch: number): AeadKey | undefined;
	/** Skip signature verification when the caller has already verified this frame. */
	verified?: boolean;
}

export interface OpenedEnvelope {
	/** Computed when first read (most callers know the id already: the doc's key). */
	readonly id: EnvelopeId;
	signer: Uint8Array;
	epoch: number;
	plaintext: Uint8Array;
}

/** Verify, check the room, decrypt and unpad. Every failure is an EnvelopeError. */
export async function openEnvelope(bytes: Uint8Array, ctx: OpenContext): Promise<OpenedEnvelope> {
	const envelope = parseEnvelope(bytes);
	// Unverified: the signature is checked while the body is decrypted (two
	// WebCrypto calls side by side, not one after the other); the plaintext is
	// used only once the signature holds, and a bad signature is the error
	// reported whatever else is wrong.
	const verifying = ctx.verified ? null : verifyFrame(envelope);
	const signed = async (): Promise<void> => {
		if (verifying && !(await verifying)) {
			throw new EnvelopeError('bad-signature', 'envelope signature does not verify');
		}
	};
	if (envelope.roomId !== ctx.roomId) {
		await signed();
		throw new EnvelopeError('wrong-room', 'envelope belongs to another conversation');
	}
	const key = ctx.keyForEpoch(envelope.epoch);
	if (!key) {
		await signed();
		throw new EnvelopeError('missing-key', `no key is held for epoch ${envelope.epoch}`);
	}
	const decrypting = aeadDecrypt(
		key,
		envelope.nonce,
		envelope.ciphertext,
		associatedData(envelope.roomId, envelope.epoch, envelope.signer)
	);
	// Handled here, awaited below: a decryption that fails while the signature
	// is still being checked is not an unhandled rejection.
	decrypting.catch(() => undefined);
	await signed();
	let padded: Uint8Array;
	try {
		padded = await decrypting;
	} catch (cause) {
		if (cause instanceof DecryptionError) {
			throw new EnvelopeError('decrypt-failed', 'envelope does not decrypt with its key', {
				cause
			});
		}
		throw cause;
	}
	let plaintext: Uint8Array;
	try {
		plaintext = unpad(padded);
	} catch (cause) {
		throw new EnvelopeError('malformed', 'envelope plaintext padding is malformed', { cause });
	}
	let id: EnvelopeId | undefined;
	return {
		get id() {
			id ??= envelopeId(bytes);
			return id;
		},
		signer: envelope.signer,
		epoch: envelope.epoch,
		plaintext
	};
}

const CLIENT_ID_CONTEXT = utf8Encode('kith/yjs-client\0');
const CLIENT_ID_CACHE = 4096;
const clientIds = new Map<string, number>();

/**
 * The Yjs client id a device must use when it inserts into a conversation doc:
 * the first 4 bytes (big-endian, unsigned) of SHA-256(context || public key).
 * Binding it to the key lets any receiver attribute every Yjs item to a device.
 */
export function clientIdFor(signer: Uint8Array): number {
	// Every update a receiver checks asks this of each envelope's signer, and a
	// room has a handful of devices: remembered per key.
	const cacheKey = signer.length === 32 ? publicKeyCacheKey(signer) : null;
	const known = cacheKey === null ? undefined : clientIds.get(cacheKey);
	if (known !== undefined) return known;
	const digest = sha256(concatBytes(CLIENT_ID_CONTEXT, signer));
	const id =
		(((digest[0] as number) << 24) |
			((digest[1] as number) << 16) |
			((digest[2] as number) << 8) |
			(digest[3] as number)) >>>
		0;
	if (cacheKey !== null) {
		if (clientIds.size >= CLIENT_ID_CACHE) clientIds.clear();
		clientIds.set(cacheKey, id);
	}
	return id;
}
