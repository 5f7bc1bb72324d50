/**
 * Room retirement over HTTP (docs/protocol.md, "Room retirement"): the
 * request bodies, their limits and the JSON answers. The behaviour — proofs,
 * the plan, the deletion — is in relay.ts, next to the rooms it closes.
 *
 *   POST /sync/retire?room=R   {cap, nonce, sig, devices: [tag…], retainUntil}
 *   POST /sync/moved?room=R    {cap, nonce, sig, tag}
 *
 * A device tag is opaque to the relay: 32 bytes (43 base64url characters)
 * the client derives from the room and its device id, so the relay can count
 * devices without learning who they are or linking them across rooms.
 *
 * The body schemas (zod) are in retire-bodies.ts, loaded with the first
 * request: a relay that never retires a room does not carry the validator.
 */
import type { ServerResponse } from 'node:http';
import type { AuthFailure } from './wire.ts';

export const RETIRE_PATH = '/sync/retire';
export const MOVED_PATH = '/sync/moved';
/** Largest request body: 1,024 tags of 46 bytes of JSON each fit with room to spare. */
export const MAX_RETIRE_BODY_BYTES = 64 * 1024;
/** Most device tags one plan may list. */
export const MAX_RETIRE_DEVICES = 1024;
/** Most moved tags a room keeps; a new one beyond is refused (`too-many-tags`). */
export const MAX_MOVED_TAGS = 4 * MAX_RETIRE_DEVICES;
/** How often the relay looks for plans whose deadline passed. */
export const RETIRE_CHECK_MS = 60_000;
export const DAY_MS = 86_400_000;

export { BadRequest, parseBody, readJsonBody } from '../http-body.ts';
export type { MovedBody, RetireBody } from './retire-bodies.ts';

/** A JSON answer in the style of `GET /sync/challenge`: never cached, open to any origin. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
	const text = JSON.stringify(body);
	res.writeHead(status, {
		'Content-Type': 'application/json; charset=utf-8',
		'Content-Length': Buffer.byteLength(text),
		'Cache-Control': 'no-store',
		// Authorised by the capability signature, not by origin: the app may use
		// a relay on another origin.
		'Access-Control-Allow-Origin': '*'
	});
	res.end(text);
}

/** The CORS preflight of a cross-origin POST with a JSON body. */
export function sendPreflight(res: ServerResponse): void {
	res.writeHead(204, {
		'Access-Control-Allow-Origin': '*',
		'Access-Control-Allow-Methods': 'POST',
		'Access-Control-Allow-Headers': 'Content-Type',
		'Access-Control-Max-Age': '600',
		'Cache-Control': 'no-store'
	});
	res.end();
}

/** A sentence for each refusal of these requests. */
export function retireDenial(reason: AuthFailure | 'unknown-room' | 'too-many-tags'): string {
	switch (reason) {
		case 'wrong-capability':
			return 'this room is registered at the relay with another capability';
		case 'unknown-room':
			return 'the relay holds no such room';
		case 'room-retired':
			return 'this room was retired: its data is gone';
		case 'expired-challenge':
			return 'the challenge expired; fetch a fresh one';
		case 'replayed-challenge':
			return 'the challenge was used before; fetch a fresh one for each request';
		case 'bad-challenge':
			return 'the nonce is not a challenge this relay issued for this room';
		case 'bad-room':
			return 'room must be a 22-character base64url room id';
		case 'too-many-tags':
			return `the relay keeps at most ${MAX_MOVED_TAGS} moved device tags per room`;
		default:
			return 'the signature does not prove access to this room';
	}
}
