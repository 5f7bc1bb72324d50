/**
 * The relay's wire format: y-websocket framing (a lib0 varUint message type,
 * then its payload) plus two Kith messages. Pure `write*` / `read*`
 * functions; the prose is docs/protocol.md, "Relay protocol".
 *
 * Reading is strict about framing — every length prefix must fit, and nothing
 * may follow the payload — because a frame that does not parse is a broken
 * client (or an attacker), and the connection is closed. What a well-framed
 * payload *contains* is judged elsewhere: updates by the doc rules, awareness
 * not at all (it is opaque and forwarded as it came).
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import * as Y from 'yjs';
import type { RuleViolation } from '../../../src/lib/conversation/doc-rules.ts';

export const MESSAGE_SYNC = 0;
export const MESSAGE_AWARENESS = 1;
export const MESSAGE_AUTH = 2;
export const MESSAGE_QUERY_AWARENESS = 3;
export const MESSAGE_KITH_STORED = 100;
export const MESSAGE_KITH_REFUSED = 101;

export const SYNC_STEP1 = 0;
export const SYNC_STEP2 = 1;
export const SYNC_UPDATE = 2;

/** y-protocols auth: the only auth message there is. */
export const AUTH_PERMISSION_DENIED = 0;

/** Why a client was not admitted to a room (sent in the auth message, then close 4403). */
export type AuthFailure =
	| 'unauthorized'
	| 'bad-challenge'
	| 'expired-challenge'
	| 'replayed-challenge'
	| 'wrong-capability'
	| 'bad-room';

/** Why a frame or update was refused (sent in `kith-refused`). */
export type RefusalReason =
	| 'frame-too-large'
	| 'rate-limited'
	| 'room-quota'
	| 'malformed-frame'
	| 'unsupported-message'
	| 'server-error'
	| `doc-rules:${RuleViolation}`;

/** A frame from a client, as far as the relay needs to understand it. */
export type ClientFrame =
	| { kind: 'sync-step1'; stateVector: Uint8Array }
	| { kind: 'sync-step2'; update: Uint8Array }
	| { kind: 'sync-update'; update: Uint8Array }
	| { kind: 'awareness' }
	| { kind: 'query-awareness' }
	| { kind: 'unsupported'; messageType: number };

/** The framing of a client frame is broken; the connection cannot continue. */
export class FrameError extends Error {
	static readonly NAME = 'FrameError';
	override name = FrameError.NAME;
}

/** Parses a binary frame from a client. Throws FrameError when the framing is broken. */
export function readClientFrame(frame: Uint8Array): ClientFrame {
	if (frame.length === 0) throw new FrameError('empty frame');
	const decoder = decoding.createDecoder(frame);
	const messageType = read(decoder, decoding.readVarUint, 'message type');
	let parsed: ClientFrame;
	switch (messageType) {
		case MESSAGE_SYNC: {
			const syncType = read(decoder, decoding.readVarUint, 'sync message type');
			const payload = read(decoder, decoding.readVarUint8Array, 'sync payload');
			if (syncType === SYNC_STEP1) {
				try {
					Y.decodeStateVector(payload);
				} catch {
					throw new FrameError('sync step 1 carries no valid state vector');
				}
				parsed = { kind: 'sync-step1', stateVector: payload };
			} else if (syncType === SYNC_STEP2) {
				parsed = { kind: 'sync-step2', update: payload };
			} else if (syncType === SYNC_UPDATE) {
				parsed = { kind: 'sync-update', update: payload };
			} else {
				throw new FrameError(`unknown sync message type ${syncType}`);
			}
			break;
		}
		case MESSAGE_AWARENESS:
			// Opaque: only the length prefix is checked, never the states.
			read(decoder, decoding.readVarUint8Array, 'awareness payload');
			parsed = { kind: 'awareness' };
			break;
		case MESSAGE_QUERY_AWARENESS:
			parsed = { kind: 'query-awareness' };
			break;
		default:
			// Well framed as far as we can tell, but nothing this relay handles.
			return { kind: 'unsupported', messageType };
	}
	if (decoding.hasContent(decoder)) throw new FrameError('trailing bytes after the payload');
	return parsed;
}

function read<T>(decoder: decoding.Decoder, reader: (d: decoding.Decoder) => T, what: string): T {
	try {
		return reader(decoder);
	} catch {
		throw new FrameError(`truncated or malformed ${what}`);
	}
}

function frame(write: (encoder: encoding.Encoder) => void): Uint8Array {
	const encoder = encoding.createEncoder();
	write(encoder);
	return encoding.toUint8Array(encoder);
}

export function writeSyncStep1(stateVector: Uint8Array): Uint8Array {
	return frame((e) => {
		encoding.writeVarUint(e, MESSAGE_SYNC);
		encoding.writeVarUint(e, SYNC_STEP1);
		encoding.writeVarUint8Array(e, stateVector);
	});
}

export function writeSyncStep2(update: Uint8Array): Uint8Array {
	return frame((e) => {
		encoding.writeVarUint(e, MESSAGE_SYNC);
		encoding.writeVarUint(e, SYNC_STEP2);
		encoding.writeVarUint8Array(e, update);
	});
}

export function writeSyncUpdate(update: Uint8Array): Uint8Array {
	return frame((e) => {
		encoding.writeVarUint(e, MESSAGE_SYNC);
		encoding.writeVarUint(e, SYNC_UPDATE);
		encoding.writeVarUint8Array(e, update);
	});
}

export function writePermissionDenied(reason: AuthFailure): Uint8Array {
	return frame((e) => {
		encoding.writeVarUint(e, MESSAGE_AUTH);
		encoding.writeVarUint(e, AUTH_PERMISSION_DENIED);
		encoding.writeVarString(e, reason);
	});
}

/** `kith-stored`: the room's state vector right after an update of this connection was stored. */
export function writeStored(stateVector: Uint8Array): Uint8Array {
	return frame((e) => {
		encoding.writeVarUint(e, MESSAGE_KITH_STORED);
		encoding.writeVarUint8Array(e, stateVector);
	});
}

const MAX_REFUSAL_MESSAGE = 200;

/** `kith-refused`: a reason code and a short message for a person. */
export function writeRefused(reason: RefusalReason, message: string): Uint8Array {
	return frame((e) => {
		encoding.writeVarUint(e, MESSAGE_KITH_REFUSED);
		encoding.writeVarString(e, reason);
		encoding.writeVarString(e, message.slice(0, MAX_REFUSAL_MESSAGE));
	});
}

/** Asks the other connections of a room to send their awareness states. */
export const QUERY_AWARENESS_FRAME: Uint8Array = frame((e) =>
	encoding.writeVarUint(e, MESSAGE_QUERY_AWARENESS)
);

/**
 * An awareness update naming no client: a no-op for any y-protocols client.
 * Sent to a connection that has heard nothing for a while, because stock
 * y-websocket clients reconnect after 30 s of silence.
 */
export const KEEPALIVE_FRAME: Uint8Array = frame((e) => {
	encoding.writeVarUint(e, MESSAGE_AWARENESS);
	encoding.writeVarUint8Array(e, new Uint8Array([0]));
});

/** Reads a relay→client frame (for tests and clients written against this module). */
export type RelayFrame =
	| { kind: 'sync-step1'; stateVector: Uint8Array }
	| { kind: 'sync-step2' | 'sync-update'; update: Uint8Array }
	| { kind: 'awareness'; update: Uint8Array }
	| { kind: 'query-awareness' }
	| { kind: 'permission-denied'; reason: string }
	| { kind: 'stored'; stateVector: Uint8Array }
	| { kind: 'refused'; reason: string; message: string }
	| { kind: 'other'; messageType: number };

export function readRelayFrame(bytes: Uint8Array): RelayFrame {
	const d = decoding.createDecoder(bytes);
	const messageType = decoding.readVarUint(d);
	switch (messageType) {
		case MESSAGE_SYNC: {
			const syncType = decoding.readVarUint(d);
			const payload = decoding.readVarUint8Array(d);
			if (syncType === SYNC_STEP1) return { kind: 'sync-step1', stateVector: payload };
			return { kind: syncType === SYNC_STEP2 ? 'sync-step2' : 'sync-update', update: payload };
		}
		case MESSAGE_AWARENESS:
			return { kind: 'awareness', update: decoding.readVarUint8Array(d) };
		case MESSAGE_QUERY_AWARENESS:
			return { kind: 'query-awareness' };
		case MESSAGE_AUTH:
			decoding.readVarUint(d);
			return { kind: 'permission-denied', reason: decoding.readVarString(d) };
		case MESSAGE_KITH_STORED:
			return { kind: 'stored', stateVector: decoding.readVarUint8Array(d) };
		case MESSAGE_KITH_REFUSED:
			return {
				kind: 'refused',
				reason: decoding.readVarString(d),
				message: decoding.readVarString(d)
			};
		default:
			return { kind: 'other', messageType };
	}
}
