/**
 * The frames of `/kith/sync/1.0.0` (docs/protocol.md, "P2P sync"), as pure
 * read/write functions. Each frame travels length-prefixed (an unsigned
 * varint byte count, as every libp2p protocol does; ./frame-stream.ts) and
 * its body is y-websocket framing: a varUint message type, then the payload.
 *
 *   0   sync       both              as the relay: step1 (0 + state vector),
 *                                    step2 (1 + update), update (2 + update)
 *   1   awareness  both              y-protocols awareness update (varUint8Array),
 *                                    every state `{ e: <ciphertext> }` or null
 *   16  hello      dialer→listener   varUint version, varString room id,
 *                                    varUint8Array dialer nonce (32 bytes)
 *   17  challenge  listener→dialer   varUint8Array listener nonce (32 bytes)
 *   18  proof      both              varUint8Array Ed25519 signature (64 bytes)
 *   19  chunk-want both              varUint request id, varString chunk id,
 *                                    varUint hops (how far it may be passed on: 0 or 1)
 *   20  chunk      both              varUint request id, varUint8Array blob (not empty)
 *   21  chunk-none both              varUint request id (not held, or busy)
 *   101 refused    both              varString reason + varString message
 *                                    (the relay's kith-refused layout)
 *
 * Types 0, 1 and 101 are the relay protocol's own (../sync/messages.ts writes
 * them), so an update or awareness frame means the same bytes on both paths.
 *
 * Reading is strict: a body that does not decode, has an unknown type or has
 * bytes left over is a P2PFrameError.
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { isRoomId, type RoomId } from '../crypto';
import { isChunkIdText } from '../media/chunks';
import type { ChunkId } from '../media/manifest';
import {
	MESSAGE_REFUSED,
	readSyncOrAwareness,
	readWholeFrame,
	type SyncOrAwarenessMessage
} from '../sync/messages';
import { P2PFrameError } from './errors';

export const PROTOCOL_VERSION = 1;

export const MESSAGE_HELLO = 16;
export const MESSAGE_CHALLENGE = 17;
export const MESSAGE_PROOF = 18;
export const MESSAGE_CHUNK_WANT = 19;
export const MESSAGE_CHUNK = 20;
export const MESSAGE_CHUNK_NONE = 21;

/** Bytes of each side's nonce. */
export const NONCE_BYTES = 32;
/** Bytes of an Ed25519 signature. */
export const SIGNATURE_BYTES = 64;
/** Longest reason code and human message of a refusal. */
export const MAX_REASON_CHARS = 64;
export const MAX_REFUSAL_MESSAGE = 200;
/** Most hops a chunk request may travel past the peer asked (a `kith serve` between two browsers). */
export const MAX_CHUNK_HOPS = 1;
/** Request ids are unsigned 32-bit. */
const MAX_REQUEST_ID = 0xffff_ffff;

export type P2PMessage =
	| SyncOrAwarenessMessage
	| { type: 'hello'; version: number; roomId: RoomId; nonce: Uint8Array }
	| { type: 'challenge'; nonce: Uint8Array }
	| { type: 'proof'; signature: Uint8Array }
	| { type: 'chunk-want'; request: number; id: ChunkId; hops: number }
	| { type: 'chunk'; request: number; blob: Uint8Array }
	| { type: 'chunk-none'; request: number }
	| { type: 'refused'; reason: string; message: string };

/** Decode one frame body. Throws P2PFrameError. */
export function readP2PMessage(bytes: Uint8Array): P2PMessage {
	if (bytes.length === 0) throw new P2PFrameError('empty frame');
	return readWholeFrame(
		bytes,
		readBody,
		(error) => error instanceof P2PFrameError,
		(message, cause) => new P2PFrameError(message, cause === undefined ? undefined : { cause })
	);
}

function readBody(decoder: decoding.Decoder): P2PMessage {
	const type = decoding.readVarUint(decoder);
	const shared = readSyncOrAwareness(type, decoder);
	if (shared) return shared;
	switch (type) {
		case MESSAGE_HELLO: {
			const version = decoding.readVarUint(decoder);
			const roomId = decoding.readVarString(decoder);
			const nonce = decoding.readVarUint8Array(decoder);
			if (!isRoomId(roomId)) throw new P2PFrameError('hello names no room id');
			if (nonce.length !== NONCE_BYTES) throw new P2PFrameError('hello nonce is not 32 bytes');
			return { type: 'hello', version, roomId, nonce };
		}
		case MESSAGE_CHALLENGE: {
			const nonce = decoding.readVarUint8Array(decoder);
			if (nonce.length !== NONCE_BYTES) throw new P2PFrameError('challenge is not 32 bytes');
			return { type: 'challenge', nonce };
		}
		case MESSAGE_PROOF: {
			const signature = decoding.readVarUint8Array(decoder);
			if (signature.length !== SIGNATURE_BYTES) throw new P2PFrameError('proof is not 64 bytes');
			return { type: 'proof', signature };
		}
		case MESSAGE_CHUNK_WANT: {
			const request = readRequestId(decoder);
			const id = decoding.readVarString(decoder);
			const hops = decoding.readVarUint(decoder);
			if (!isChunkIdText(id)) throw new P2PFrameError('chunk-want names no chunk id');
			if (hops > MAX_CHUNK_HOPS) throw new P2PFrameError('chunk-want travels too far');
			return { type: 'chunk-want', request, id, hops };
		}
		case MESSAGE_CHUNK: {
			const request = readRequestId(decoder);
			const blob = decoding.readVarUint8Array(decoder);
			if (blob.length === 0) throw new P2PFrameError('an empty chunk');
			return { type: 'chunk', request, blob };
		}
		case MESSAGE_CHUNK_NONE:
			return { type: 'chunk-none', request: readRequestId(decoder) };
		case MESSAGE_REFUSED: {
			const reason = decoding.readVarString(decoder);
			const message = decoding.readVarString(decoder);
			if (reason.length > MAX_REASON_CHARS || message.length > MAX_REFUSAL_MESSAGE) {
				throw new P2PFrameError('refusal is too long');
			}
			return { type: 'refused', reason, message };
		}
		default:
			throw new P2PFrameError(`unknown message type ${type}`);
	}
}

function readRequestId(decoder: decoding.Decoder): number {
	const request = decoding.readVarUint(decoder);
	if (request > MAX_REQUEST_ID) throw new P2PFrameError('a request id over 32 bits');
	return request;
}

// ---- writers ---------------------------------------------------------------

function frame(write: (encoder: encoding.Encoder) => void): Uint8Array {
	const encoder = encoding.createEncoder();
	write(encoder);
	return encoding.toUint8Array(encoder);
}

export function writeHello(roomId: RoomId, nonce: Uint8Array): Uint8Array {
	return frame((e) => {
		encoding.writeVarUint(e, MESSAGE_HELLO);
		encoding.writeVarUint(e, PROTOCOL_VERSION);
		encoding.writeVarString(e, roomId);
		encoding.writeVarUint8Array(e, nonce);
	});
}

export function writeChallenge(nonce: Uint8Array): Uint8Array {
	return frame((e) => {
		encoding.writeVarUint(e, MESSAGE_CHALLENGE);
		encoding.writeVarUint8Array(e, nonce);
	});
}

export function writeProof(signature: Uint8Array): Uint8Array {
	return frame((e) => {
		encoding.writeVarUint(e, MESSAGE_PROOF);
		encoding.writeVarUint8Array(e, signature);
	});
}

export function writeChunkWant(request: number, id: ChunkId | string, hops: number): Uint8Array {
	return frame((e) => {
		encoding.writeVarUint(e, MESSAGE_CHUNK_WANT);
		encoding.writeVarUint(e, request);
		encoding.writeVarString(e, id);
		encoding.writeVarUint(e, hops);
	});
}

export function writeChunk(request: number, blob: Uint8Array): Uint8Array {
	return frame((e) => {
		encoding.writeVarUint(e, MESSAGE_CHUNK);
		encoding.writeVarUint(e, request);
		encoding.writeVarUint8Array(e, blob);
	});
}

export function writeChunkNone(request: number): Uint8Array {
	return frame((e) => {
		encoding.writeVarUint(e, MESSAGE_CHUNK_NONE);
		encoding.writeVarUint(e, request);
	});
}

export function writeP2PRefused(reason: string, message: string): Uint8Array {
	return frame((e) => {
		encoding.writeVarUint(e, MESSAGE_REFUSED);
		encoding.writeVarString(e, reason.slice(0, MAX_REASON_CHARS));
		encoding.writeVarString(e, message.slice(0, MAX_REFUSAL_MESSAGE));
	});
}

export { writeAwareness, writeSyncStep1, writeSyncStep2, writeSyncUpdate } from '../sync/messages';
