/**
 * The relay's wire format: y-websocket framing (a lib0 varUint message type,
 * then its payload) plus three Kith messages. Pure `write*` / `read*`
 * functions; the prose is docs/protocol.md, "Relay protocol".
 *
 * Reading is strict about framing — every length prefix must fit, and nothing
 * may follow the payload — because a frame that does not parse is a broken
 * client (or an attacker), and the connection is closed. What a well-framed
 * payload *contains* is judged elsewhere: updates by the doc rules, awareness
 * not at all (it is opaque and forwarded as it came).
 */
import * as decoding from 'lib0/decoding';
import * as Y from 'yjs';
import type { RuleViolation } from '../../../src/lib/conversation/doc-rules.ts';
import {
	MESSAGE_AWARENESS,
	MESSAGE_NOTIFY,
	MESSAGE_QUERY_AWARENESS,
	MESSAGE_SYNC,
	SYNC_STEP1,
	SYNC_STEP2,
	SYNC_UPDATE,
	writeAwareness,
	writeQueryAwareness
} from '../../../src/lib/sync/messages.ts';

// The frame writers and message numbers are shared with the client, so the
// two sides cannot drift apart; this module adds what only the relay needs:
// strict reading of client frames and the relay's fixed frames.
export {
	AUTH_PERMISSION_DENIED,
	MAX_NOTIFY_BYTES,
	MESSAGE_AUTH,
	MESSAGE_AWARENESS,
	MESSAGE_NOTIFY,
	MESSAGE_QUERY_AWARENESS,
	MESSAGE_REFUSED,
	MESSAGE_STORED,
	MESSAGE_SYNC,
	SYNC_STEP1,
	SYNC_STEP2,
	SYNC_UPDATE,
	writePermissionDenied,
	writeRefused,
	writeStored,
	writeSyncStep1,
	writeSyncStep2,
	writeSyncUpdate
} from '../../../src/lib/sync/messages.ts';

/** Why a client was not admitted to a room (sent in the auth message, then close 4403). */
export type AuthFailure =
	| 'unauthorized'
	| 'bad-challenge'
	| 'expired-challenge'
	| 'replayed-challenge'
	| 'wrong-capability'
	| 'bad-room'
	/** The room was retired (docs/protocol.md, "Room retirement"): its data is gone for good. */
	| 'room-retired';

/** Why a frame or update was refused (sent in `kith-refused`). */
export type RefusalReason =
	| 'frame-too-large'
	| 'rate-limited'
	| 'room-quota'
	| 'malformed-frame'
	| 'unsupported-message'
	| 'server-error'
	| 'notify-too-large'
	| 'notify-empty'
	| `doc-rules:${RuleViolation}`;

/** A frame from a client, as far as the relay needs to understand it. */
export type ClientFrame =
	| { kind: 'sync-step1'; stateVector: Uint8Array }
	| { kind: 'sync-step2'; update: Uint8Array }
	| { kind: 'sync-update'; update: Uint8Array }
	| { kind: 'awareness' }
	| { kind: 'query-awareness' }
	/** kith-notify: a notification envelope to push to the room's offline devices (opaque). */
	| { kind: 'notify'; envelope: Uint8Array }
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
		case MESSAGE_NOTIFY:
			// Opaque too: its size is judged by the relay, its content by nobody.
			parsed = {
				kind: 'notify',
				envelope: read(decoder, decoding.readVarUint8Array, 'notification envelope')
			};
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

/** Asks the other connections of a room to send their awareness states. */
export const QUERY_AWARENESS_FRAME: Uint8Array = writeQueryAwareness();

/**
 * An awareness update naming no client: a no-op for any y-protocols client.
 * Sent to a connection that has heard nothing for a while, because stock
 * y-websocket clients reconnect after 30 s of silence.
 */
export const KEEPALIVE_FRAME: Uint8Array = writeAwareness(new Uint8Array([0]));
