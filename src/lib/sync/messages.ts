/**
 * The relay protocol's frames (docs/protocol.md, "Relay protocol"), as pure
 * read/write functions. y-websocket framing: a varUint message type, then its
 * payload.
 *
 *   0   sync            both          y-protocols sync: step1 (0 + state vector),
 *                                     step2 (1 + update), update (2 + update)
 *   1   awareness       both          y-protocols awareness update (varUint8Array)
 *   2   auth            relay→client  0 (permission denied) + varString reason
 *   3   queryAwareness  client→relay
 *   100 kith-stored     relay→client  varUint8Array: the relay's state vector after
 *                                     it durably stored an update of this connection
 *   101 kith-refused    relay→client  varString reason + varString human message
 *
 * Both sides use this module: the client (RelayConnection) and the relay
 * (sync-server/src/relay/wire.ts re-exports the writers), so the two cannot
 * drift apart.
 *
 * Reading is strict: a frame that does not decode, carries an unknown type or
 * has bytes left over is a RelayFrameError, and the caller drops it. Updates
 * are only decoded as byte strings here; the doc rules judge their content.
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { fromBase64Url, toBase64Url } from '../crypto/bytes';
import { RelayFrameError } from './errors';

export const MESSAGE_SYNC = 0;
export const MESSAGE_AWARENESS = 1;
export const MESSAGE_AUTH = 2;
export const MESSAGE_QUERY_AWARENESS = 3;
export const MESSAGE_STORED = 100;
export const MESSAGE_REFUSED = 101;
/** Client → relay: a notification envelope to push to the room's offline devices (docs/protocol.md, Push). */
export const MESSAGE_NOTIFY = 102;
/** Largest notification envelope a client sends. */
export const MAX_NOTIFY_BYTES = 3072;

export const SYNC_STEP1 = 0;
export const SYNC_STEP2 = 1;
export const SYNC_UPDATE = 2;

/** The only auth message the relay sends. */
export const AUTH_PERMISSION_DENIED = 0;

/** Largest encrypted awareness state accepted (base64url characters). */
export const MAX_AWARENESS_STATE_CHARS = 64 * 1024;

export type RelayMessage =
	| { type: 'sync-step1'; stateVector: Uint8Array; state: Map<number, number> }
	| { type: 'sync-step2'; update: Uint8Array }
	| { type: 'sync-update'; update: Uint8Array }
	| { type: 'awareness'; update: Uint8Array; entries: AwarenessEntry[] }
	| { type: 'permission-denied'; reason: string }
	| { type: 'query-awareness' }
	| { type: 'stored'; stateVector: Uint8Array; state: Map<number, number> }
	| { type: 'refused'; reason: string; message: string };

/**
 * One client's entry in an awareness update. Kith awareness states are
 * `{ "e": "<base64url ciphertext>" }` or null (the client left); the
 * ciphertext is opened by the caller, never here.
 */
export interface AwarenessEntry {
	client: number;
	clock: number;
	/** The encrypted state, or null when the client left. */
	state: Uint8Array | null;
}

/** Decode one frame from the relay. Throws RelayFrameError. */
export function readRelayMessage(bytes: Uint8Array): RelayMessage {
	return readWholeFrame(
		bytes,
		readBody,
		(error) => error instanceof RelayFrameError,
		(message, cause) => new RelayFrameError(message, cause === undefined ? undefined : { cause })
	);
}

/**
 * Decode one whole frame with `read`, strictly: an error `read` throws that
 * `isFrameError` does not recognise becomes "truncated or malformed", and
 * bytes left over are an error too. Shared by the relay and P2P protocols.
 */
export function readWholeFrame<T extends { type: string }>(
	bytes: Uint8Array,
	read: (decoder: decoding.Decoder) => T,
	isFrameError: (error: unknown) => boolean,
	fail: (message: string, cause?: unknown) => Error
): T {
	const decoder = decoding.createDecoder(bytes);
	let message: T;
	try {
		message = read(decoder);
	} catch (error) {
		if (isFrameError(error)) throw error;
		throw fail('truncated or malformed frame', error);
	}
	if (decoding.hasContent(decoder)) throw fail(`${message.type} frame has trailing bytes`);
	return message;
}

/** The frames the relay and P2P protocols share: sync steps and awareness. */
export type SyncOrAwarenessMessage = Extract<
	RelayMessage,
	{ type: 'sync-step1' | 'sync-step2' | 'sync-update' | 'awareness' }
>;

/**
 * The body of a sync (type 0) or awareness (type 1) frame, its type already
 * read; null for any other type. Throws RelayFrameError.
 */
export function readSyncOrAwareness(
	type: number,
	decoder: decoding.Decoder
): SyncOrAwarenessMessage | null {
	switch (type) {
		case MESSAGE_SYNC: {
			const step = decoding.readVarUint(decoder);
			const payload = decoding.readVarUint8Array(decoder);
			if (step === SYNC_STEP1) {
				return { type: 'sync-step1', stateVector: payload, state: readStateVector(payload) };
			}
			if (step === SYNC_STEP2) return { type: 'sync-step2', update: payload };
			if (step === SYNC_UPDATE) return { type: 'sync-update', update: payload };
			throw new RelayFrameError(`unknown sync message ${step}`);
		}
		case MESSAGE_AWARENESS: {
			const update = decoding.readVarUint8Array(decoder);
			return { type: 'awareness', update, entries: readAwarenessUpdate(update) };
		}
		default:
			return null;
	}
}

function readBody(decoder: decoding.Decoder): RelayMessage {
	const type = decoding.readVarUint(decoder);
	const shared = readSyncOrAwareness(type, decoder);
	if (shared) return shared;
	switch (type) {
		case MESSAGE_AUTH: {
			const kind = decoding.readVarUint(decoder);
			if (kind !== AUTH_PERMISSION_DENIED)
				throw new RelayFrameError(`unknown auth message ${kind}`);
			return { type: 'permission-denied', reason: decoding.readVarString(decoder) };
		}
		case MESSAGE_QUERY_AWARENESS:
			return { type: 'query-awareness' };
		case MESSAGE_STORED: {
			const stateVector = decoding.readVarUint8Array(decoder);
			return { type: 'stored', stateVector, state: readStateVector(stateVector) };
		}
		case MESSAGE_REFUSED: {
			const reason = decoding.readVarString(decoder);
			return { type: 'refused', reason, message: decoding.readVarString(decoder) };
		}
		default:
			throw new RelayFrameError(`unknown message type ${type}`);
	}
}

/**
 * A Yjs state vector: varUint count, then (client, clock) pairs. Decoded here
 * rather than by Yjs so that a bad one is an error, with no partial result.
 */
export function readStateVector(bytes: Uint8Array): Map<number, number> {
	const decoder = decoding.createDecoder(bytes);
	const state = new Map<number, number>();
	try {
		const count = decoding.readVarUint(decoder);
		for (let i = 0; i < count; i++) {
			const client = decoding.readVarUint(decoder);
			const clock = decoding.readVarUint(decoder);
			if (client > 0xffffffff) throw new RelayFrameError(`client id ${client} is out of range`);
			state.set(client, clock);
		}
	} catch (error) {
		if (error instanceof RelayFrameError) throw error;
		throw new RelayFrameError('malformed state vector', { cause: error });
	}
	if (decoding.hasContent(decoder)) throw new RelayFrameError('state vector has trailing bytes');
	return state;
}

/** Encode a state vector (the inverse of readStateVector; Yjs's own layout). */
export function writeStateVector(state: ReadonlyMap<number, number>): Uint8Array {
	return frame((e) => {
		encoding.writeVarUint(e, state.size);
		for (const [client, clock] of state) {
			encoding.writeVarUint(e, client);
			encoding.writeVarUint(e, clock);
		}
	});
}

/**
 * Decode and check an awareness update before y-protocols applies it: its
 * decoder parses JSON mid-loop, so a bad entry would leave the states half
 * applied with no event. Every state must be null or `{ e: base64url }`.
 */
export function readAwarenessUpdate(update: Uint8Array): AwarenessEntry[] {
	const decoder = decoding.createDecoder(update);
	const entries: AwarenessEntry[] = [];
	try {
		const count = decoding.readVarUint(decoder);
		for (let i = 0; i < count; i++) {
			const client = decoding.readVarUint(decoder);
			const clock = decoding.readVarUint(decoder);
			const json = decoding.readVarString(decoder);
			entries.push({ client, clock, state: parseAwarenessState(json) });
		}
	} catch (error) {
		if (error instanceof RelayFrameError) throw error;
		throw new RelayFrameError('malformed awareness update', { cause: error });
	}
	if (decoding.hasContent(decoder))
		throw new RelayFrameError('awareness update has trailing bytes');
	return entries;
}

function parseAwarenessState(json: string): Uint8Array | null {
	if (json.length > MAX_AWARENESS_STATE_CHARS + 16) {
		throw new RelayFrameError('awareness state is too large');
	}
	let value: unknown;
	try {
		value = JSON.parse(json);
	} catch (error) {
		throw new RelayFrameError('awareness state is not JSON', { cause: error });
	}
	if (value === null) return null;
	const e =
		typeof value === 'object' && !Array.isArray(value) ? (value as { e?: unknown }).e : null;
	if (typeof e !== 'string' || Object.keys(value as object).length !== 1) {
		throw new RelayFrameError('awareness state is not { e: <ciphertext> }');
	}
	try {
		return fromBase64Url(e);
	} catch (error) {
		throw new RelayFrameError('awareness state is not base64url', { cause: error });
	}
}

/** The awareness state object for an encrypted state. */
export function awarenessStateOf(encrypted: Uint8Array): { e: string } {
	return { e: toBase64Url(encrypted) };
}

// ---- writers ---------------------------------------------------------------

function frame(write: (encoder: encoding.Encoder) => void): Uint8Array {
	const encoder = encoding.createEncoder();
	write(encoder);
	return encoding.toUint8Array(encoder);
}

function varUintLength(n: number): number {
	let length = 1;
	while (n > 0x7f) {
		n = Math.floor(n / 128);
		length++;
	}
	return length;
}

function putVarUint(into: Uint8Array, at: number, n: number): number {
	while (n > 0x7f) {
		into[at++] = 0x80 | (n & 0x7f);
		n = Math.floor(n / 128);
	}
	into[at++] = n;
	return at;
}

/**
 * `head` (small var-uints) then `payload` as a var-uint8-array, the bytes
 * lib0's encoder would write, in one allocation of the exact size: an
 * encoder starts at 100 bytes and doubles, so a large update (the relay's
 * merged batches, a sync step 2) left about twice its size in garbage.
 */
function payloadFrame(head: readonly number[], payload: Uint8Array): Uint8Array {
	let size = varUintLength(payload.length) + payload.length;
	for (const n of head) size += varUintLength(n);
	const out = new Uint8Array(size);
	let at = 0;
	for (const n of head) at = putVarUint(out, at, n);
	at = putVarUint(out, at, payload.length);
	out.set(payload, at);
	return out;
}

export function writeSyncStep1(stateVector: Uint8Array): Uint8Array {
	return payloadFrame([MESSAGE_SYNC, SYNC_STEP1], stateVector);
}

export function writeSyncStep2(update: Uint8Array): Uint8Array {
	return payloadFrame([MESSAGE_SYNC, SYNC_STEP2], update);
}

export function writeSyncUpdate(update: Uint8Array): Uint8Array {
	return payloadFrame([MESSAGE_SYNC, SYNC_UPDATE], update);
}

export function writeAwareness(update: Uint8Array): Uint8Array {
	return payloadFrame([MESSAGE_AWARENESS], update);
}

/** Client side: a notification envelope (kith-notify). */
export function writeNotify(envelope: Uint8Array): Uint8Array {
	return payloadFrame([MESSAGE_NOTIFY], envelope);
}

export function writeQueryAwareness(): Uint8Array {
	return frame((e) => encoding.writeVarUint(e, MESSAGE_QUERY_AWARENESS));
}

/** Relay side (and test doubles): admission refused. */
export function writePermissionDenied(reason: string): Uint8Array {
	return frame((e) => {
		encoding.writeVarUint(e, MESSAGE_AUTH);
		encoding.writeVarUint(e, AUTH_PERMISSION_DENIED);
		encoding.writeVarString(e, reason);
	});
}

/** Relay side (and test doubles): acknowledgement with the room's state vector. */
export function writeStored(stateVector: Uint8Array): Uint8Array {
	return payloadFrame([MESSAGE_STORED], stateVector);
}

/** Longest human message a `kith-refused` frame carries. */
export const MAX_REFUSAL_MESSAGE = 200;

/** Relay side (and test doubles): a frame or update was refused. */
export function writeRefused(reason: string, message: string): Uint8Array {
	return frame((e) => {
		encoding.writeVarUint(e, MESSAGE_REFUSED);
		encoding.writeVarString(e, reason);
		encoding.writeVarString(e, message.slice(0, MAX_REFUSAL_MESSAGE));
	});
}
