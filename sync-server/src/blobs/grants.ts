/**
 * Upload grants: a client proves it holds a room's access capability (the
 * same key pair that admits it to the room's relay connection) and gets a
 * short-lived bearer token allowing it to upload one file's chunks, up to
 * the file's declared size.
 *
 *   GET  /blobs/challenge?room=R  → {nonce, expiresAt}   (a nonce bound to R, single use)
 *   POST /blobs/grant  {room, cap, nonce, sig, size}     sig = Ed25519(cap key,
 *        "kith/blob-access\0" || room || nonce || decimal size)
 *        → {token, expiresAt, bytes}
 *
 * The nonce uses the relay's construction (relay/challenge.ts) under a key
 * derived from the relay secret for this purpose, so a nonce of one service
 * is worthless at the other. A token is 32 random bytes (base64url) held in
 * memory with its room and remaining byte allowance; it dies with the process
 * or after GRANT_TTL_MS.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { concatBytes, fromBase64Url, utf8Encode } from '../../../src/lib/crypto/bytes.ts';
import { verifySignature } from '../../../src/lib/crypto/sign.ts';
import { Challenges, loadRelaySecret } from '../relay/challenge.ts';

export const GRANT_TTL_MS = 60 * 60 * 1000;
const CONTEXT = utf8Encode('kith/blob-access\0');

export function grantMessage(room: string, nonce: string, size: number): Uint8Array {
	return concatBytes(CONTEXT, utf8Encode(room), utf8Encode(nonce), utf8Encode(String(size)));
}

export interface Grant {
	room: string;
	/** Bytes the token may still upload. */
	bytes: number;
	expiresAt: number;
	/** How long its chunks are kept after upload; undefined: for good. */
	keepMs?: number;
}

export type GrantFailure =
	| 'bad-challenge'
	| 'expired-challenge'
	| 'replayed-challenge'
	| 'unauthorized'
	| 'unknown-room'
	| 'wrong-capability';

export class Grants {
	readonly challenges: Challenges;
	readonly #grants = new Map<string, Grant>();
	readonly #now: () => number;

	constructor(dataDir: string, now: () => number = Date.now) {
		const secret = createHmac('sha256', loadRelaySecret(dataDir)).update('kith/blobs').digest();
		this.challenges = new Challenges(new Uint8Array(secret), now);
		this.#now = now;
	}

	/** Check a grant request; `roomCap` is the capability the room is registered with. */
	async issue(
		request: { room: string; cap: string; nonce: string; sig: string; size: number },
		roomCap: Uint8Array | undefined,
		bytes: number,
		keepMs?: number
	): Promise<{ ok: true; token: string; expiresAt: number } | { ok: false; reason: GrantFailure }> {
		const check = this.challenges.check(request.room, request.nonce);
		if (!check.ok) return { ok: false, reason: check.reason as GrantFailure };
		let cap: Uint8Array;
		let sig: Uint8Array;
		try {
			cap = fromBase64Url(request.cap);
			sig = fromBase64Url(request.sig);
		} catch {
			return { ok: false, reason: 'unauthorized' };
		}
		const message = grantMessage(request.room, request.nonce, request.size);
		if (cap.length !== 32 || !(await verifySignature(cap, message, sig))) {
			return { ok: false, reason: 'unauthorized' };
		}
		if (!this.challenges.redeem(request.nonce, check.expiresAt)) {
			return { ok: false, reason: 'replayed-challenge' };
		}
		if (!roomCap) return { ok: false, reason: 'unknown-room' };
		if (Buffer.compare(Buffer.from(roomCap), Buffer.from(cap)) !== 0) {
			return { ok: false, reason: 'wrong-capability' };
		}
		this.#sweep();
		const token = randomBytes(32).toString('base64url');
		const expiresAt = this.#now() + GRANT_TTL_MS;
		this.#grants.set(token, {
			room: request.room,
			bytes,
			expiresAt,
			...(keepMs === undefined ? {} : { keepMs })
		});
		return { ok: true, token, expiresAt };
	}

	/** The live grant of a token, or undefined. */
	get(token: string): Grant | undefined {
		const grant = this.#grants.get(token);
		if (!grant) return undefined;
		if (grant.expiresAt < this.#now()) {
			this.#grants.delete(token);
			return undefined;
		}
		return grant;
	}

	#sweep(): void {
		const now = this.#now();
		for (const [token, grant] of this.#grants)
			if (grant.expiresAt < now) this.#grants.delete(token);
	}
}
