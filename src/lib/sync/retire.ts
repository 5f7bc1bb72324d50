/**
 * Room retirement, the client's half (docs/protocol.md, "Room retirement").
 * When a conversation moves to a new generation, the old generation's room
 * is dropped by the relay once every member device has moved or the
 * retention limit passed, so deleted messages' envelopes leave its database.
 *
 *   movedTag(room, device)   an opaque 32-byte tag naming a device in one room:
 *                            base64url(SHA-256("kith/moved\0" || room || "\0" || device))
 *   retireRoom(...)          POST <relay>/sync/retire?room=  {cap, nonce, sig, devices, retainUntil}
 *   reportMoved(...)         POST <relay>/sync/moved?room=   {cap, nonce, sig, tag}
 *
 * Each request is signed with the room's access capability (./capability.ts)
 * over a fresh relay challenge:
 *
 *   retire: "kith/room-retire\0" || utf8(roomId) || utf8(nonce)
 *   moved:  "kith/room-moved\0"  || utf8(roomId) || utf8(nonce) || utf8(tag)
 *
 * Browser and Node alike: WebCrypto for the hash, `fetch` (injectable) for
 * the requests. An answer 410 (the room is already retired) counts as done.
 */
import {
	asBufferSource,
	BASE64URL_32,
	concatBytes,
	isRoomId,
	toBase64Url,
	utf8Encode
} from '../crypto';
import { deriveRoomCapability, type RoomCapability } from './capability';
import { relayEndpoint } from './endpoint';

const MOVED_TAG_CONTEXT = utf8Encode('kith/moved\0');
const RETIRE_CONTEXT = utf8Encode('kith/room-retire\0');
const MOVED_CONTEXT = utf8Encode('kith/room-moved\0');
const SEPARATOR = utf8Encode('\0');

/** Most device tags one plan may list (the relay refuses more). */
export const MAX_RETIRE_DEVICES = 1024;
/** A device tag: 32 bytes as unpadded base64url. */
const TAG = BASE64URL_32;
const NONCE = /^[A-Za-z0-9_-]{1,512}$/;
/** Refusals a fresh challenge can cure: the request is made once more. */
const RETRYABLE = new Set(['bad-challenge', 'expired-challenge', 'replayed-challenge']);

/** A retirement request failed: the relay refused it, or could not be reached. */
export class RetireError extends Error {
	static readonly NAME = 'RetireError';
	/** HTTP status when the relay answered, else undefined. */
	readonly status: number | undefined;
	/** The relay's error code (`wrong-capability`, `unknown-room`, …) when it gave one. */
	readonly code: string | undefined;
	constructor(message: string, options?: ErrorOptions & { status?: number; code?: string }) {
		super(message, options);
		this.name = RetireError.NAME;
		this.status = options?.status;
		this.code = options?.code;
	}
}

/** What the relay answered to an accepted request. */
export interface RetireOutcome {
	/** The room is retired now (also: it already was, answer 410). */
	retired: boolean;
	/** While not retired: the plan's deadline after the relay's clamp, null without a plan. */
	retainUntil?: number | null;
	/** While not retired: tags in the plan, null without a plan. */
	devices?: number | null;
	/** While not retired: planned tags not reported as moved yet, null without a plan. */
	pending?: number | null;
}

/** The tag under which `deviceId` reports having moved out of `roomId`. */
export async function movedTag(roomId: string, deviceId: string): Promise<string> {
	const input = concatBytes(MOVED_TAG_CONTEXT, utf8Encode(roomId), SEPARATOR, utf8Encode(deviceId));
	const digest = await crypto.subtle.digest('SHA-256', asBufferSource(input));
	return toBase64Url(new Uint8Array(digest));
}

/** The bytes signed by `retireRoom`. */
export function retireMessage(roomId: string, nonce: string): Uint8Array {
	return concatBytes(RETIRE_CONTEXT, utf8Encode(roomId), utf8Encode(nonce));
}

/** The bytes signed by `reportMoved`. */
export function movedMessage(roomId: string, nonce: string, tag: string): Uint8Array {
	return concatBytes(MOVED_CONTEXT, utf8Encode(roomId), utf8Encode(nonce), utf8Encode(tag));
}

/**
 * Asks the relay to retire `roomId` once every device in `tags` reported
 * having moved (`reportMoved`), or at `retainUntil` (ms since the epoch;
 * the relay clamps it to its own maximum) at the latest. Replaces any plan
 * the room had. `epochKey` is the room's epoch key: the capability is
 * derived from it.
 */
export async function retireRoom(
	relayUrl: string,
	roomId: string,
	epochKey: Uint8Array,
	tags: readonly string[],
	retainUntil: number,
	fetchImpl?: typeof fetch
): Promise<RetireOutcome> {
	if (tags.length === 0 || tags.length > MAX_RETIRE_DEVICES) {
		throw new RetireError(`a retirement plan lists 1 to ${MAX_RETIRE_DEVICES} device tags`);
	}
	if (new Set(tags).size !== tags.length) {
		throw new RetireError('a retirement plan lists each device tag once');
	}
	if (!tags.every((tag) => TAG.test(tag))) {
		throw new RetireError('a device tag is 32 bytes as 43 base64url characters (movedTag)');
	}
	if (!Number.isSafeInteger(retainUntil) || retainUntil < 0) {
		throw new RetireError('retainUntil is a whole number of milliseconds since the epoch');
	}
	return signedPost({
		relayUrl,
		roomId,
		epochKey,
		path: 'sync/retire',
		what: 'retire the room',
		message: (nonce) => retireMessage(roomId, nonce),
		fields: { devices: [...tags], retainUntil },
		fetchImpl
	});
}

/** Tells the relay that the device behind `tag` (`movedTag`) has moved out of `roomId`. */
export async function reportMoved(
	relayUrl: string,
	roomId: string,
	epochKey: Uint8Array,
	tag: string,
	fetchImpl?: typeof fetch
): Promise<RetireOutcome> {
	if (!TAG.test(tag)) {
		throw new RetireError('a device tag is 32 bytes as 43 base64url characters (movedTag)');
	}
	return signedPost({
		relayUrl,
		roomId,
		epochKey,
		path: 'sync/moved',
		what: 'record the move',
		message: (nonce) => movedMessage(roomId, nonce, tag),
		fields: { tag },
		fetchImpl
	});
}

interface SignedPost {
	relayUrl: string;
	roomId: string;
	epochKey: Uint8Array;
	path: string;
	/** For error messages: "the relay refused to <what>". */
	what: string;
	message: (nonce: string) => Uint8Array;
	fields: Record<string, unknown>;
	fetchImpl: typeof fetch | undefined;
}

async function signedPost(request: SignedPost): Promise<RetireOutcome> {
	const { relayUrl, roomId, what } = request;
	if (!isRoomId(roomId)) throw new RetireError('not a room id');
	// Bound: a detached `fetch` throws "Illegal invocation" in browsers.
	const fetchFn = request.fetchImpl ?? globalThis.fetch.bind(globalThis);
	const capability: RoomCapability = await deriveRoomCapability(request.epochKey, roomId);
	const cap = toBase64Url(capability.publicKey);
	for (let attempt = 1; ; attempt++) {
		const nonce = await challenge(fetchFn, relayUrl, roomId);
		const sig = toBase64Url(await capability.sign(request.message(nonce)));
		const url = relayEndpoint(relayUrl, request.path);
		url.searchParams.set('room', roomId);
		let response: Response;
		try {
			response = await fetchFn(url.toString(), {
				method: 'POST',
				headers: { 'Content-Type': 'application/json' },
				body: JSON.stringify({ cap, nonce, sig, ...request.fields })
			});
		} catch (cause) {
			throw new RetireError(`the relay cannot be reached to ${what}`, { cause });
		}
		const body = await response.json().then(
			(json: unknown) => (typeof json === 'object' && json !== null ? json : {}),
			() => ({})
		);
		if (response.status === 410) return { retired: true };
		if (response.ok) return outcome(body);
		const code = stringField(body, 'error');
		if (attempt === 1 && code !== undefined && RETRYABLE.has(code)) continue;
		const detail = stringField(body, 'message');
		throw new RetireError(
			`the relay refused to ${what}: ${response.status}` +
				(code ? ` ${code}` : '') +
				(detail ? ` (${detail})` : ''),
			{ status: response.status, ...(code ? { code } : {}) }
		);
	}
}

/** A fresh nonce from `GET <relay>/sync/challenge?room=`. */
async function challenge(fetchFn: typeof fetch, relayUrl: string, roomId: string): Promise<string> {
	const url = relayEndpoint(relayUrl, 'sync/challenge');
	url.searchParams.set('room', roomId);
	let response: Response;
	try {
		response = await fetchFn(url.toString());
	} catch (cause) {
		throw new RetireError('the relay cannot be reached for a challenge', { cause });
	}
	if (!response.ok) {
		throw new RetireError(`the relay answered the challenge with ${response.status}`, {
			status: response.status
		});
	}
	let body: unknown;
	try {
		body = await response.json();
	} catch (cause) {
		throw new RetireError('the relay’s challenge is not JSON', { cause });
	}
	const nonce = stringField(body, 'nonce');
	if (nonce === undefined || !NONCE.test(nonce)) {
		throw new RetireError('the relay’s challenge has no usable nonce');
	}
	return nonce;
}

function outcome(body: object): RetireOutcome {
	const retired = (body as { retired?: unknown }).retired === true;
	if (retired) return { retired };
	return {
		retired,
		retainUntil: numberField(body, 'retainUntil'),
		devices: numberField(body, 'devices'),
		pending: numberField(body, 'pending')
	};
}

function stringField(body: unknown, name: string): string | undefined {
	const value =
		typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;
	return typeof value === 'string' ? value : undefined;
}

function numberField(body: object, name: string): number | null {
	const value = (body as Record<string, unknown>)[name];
	return typeof value === 'number' ? value : null;
}
