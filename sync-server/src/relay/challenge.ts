/**
 * The signed challenge that admits a client to a room (docs/protocol.md,
 * "Access capability and the signed challenge").
 *
 * A nonce is stateless until it is used:
 *
 *   base64url( u64be issuedAt (ms) || 16 random bytes
 *              || HMAC-SHA256(relaySecret, utf8(roomId) || issuedAt || random)[0..16] )
 *
 * so the relay keeps nothing per challenge it hands out, only the nonces
 * that were redeemed, until they expire. A nonce issued before this relay
 * process started counts as expired: the set of redeemed nonces does not
 * survive a restart, and single use must.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import {
	concatBytes,
	fromBase64Url,
	toBase64Url,
	utf8Encode
} from '../../../src/lib/crypto/bytes.ts';
import { verifySignature } from '../../../src/lib/crypto/sign.ts';
import { readOrCreateSecretFile } from '../secret-file.ts';
import type { AuthFailure } from './wire.ts';

export const CHALLENGE_TTL_MS = 60_000;
export const RELAY_SECRET_FILE = 'relay-secret';
const SECRET_LENGTH = 32;
const RANDOM_LENGTH = 16;
const TAG_LENGTH = 16;
const NONCE_LENGTH = 8 + RANDOM_LENGTH + TAG_LENGTH;
const ACCESS_CONTEXT = utf8Encode('kith/room-access\0');
const RETIRE_CONTEXT = utf8Encode('kith/room-retire\0');
const MOVED_CONTEXT = utf8Encode('kith/room-moved\0');

export class RelaySecretError extends Error {
	static readonly NAME = 'RelaySecretError';
	override name = RelaySecretError.NAME;
}

/** Reads `dataDir/relay-secret`, creating it (32 random bytes, mode 0600) on first start. */
export function loadRelaySecret(dataDir: string): Uint8Array {
	const path = join(dataDir, RELAY_SECRET_FILE);
	const secret = new Uint8Array(
		readOrCreateSecretFile(path, () => new Uint8Array(randomBytes(SECRET_LENGTH)))
	);
	if (secret.length !== SECRET_LENGTH) {
		throw new RelaySecretError(
			`${path} holds ${secret.length} bytes, not ${SECRET_LENGTH}. ` +
				'Delete it to make a new one (outstanding challenges become invalid).'
		);
	}
	return secret;
}

/** The bytes a client signs with the room's capability key. */
export function accessMessage(roomId: string, nonce: string): Uint8Array {
	return concatBytes(ACCESS_CONTEXT, utf8Encode(roomId), utf8Encode(nonce));
}

/** The bytes a client signs to record a retirement plan (docs/protocol.md, "Room retirement"). */
export function retireMessage(roomId: string, nonce: string): Uint8Array {
	return concatBytes(RETIRE_CONTEXT, utf8Encode(roomId), utf8Encode(nonce));
}

/** The bytes a client signs to report that the device behind `tag` has moved on. */
export function movedMessage(roomId: string, nonce: string, tag: string): Uint8Array {
	return concatBytes(MOVED_CONTEXT, utf8Encode(roomId), utf8Encode(nonce), utf8Encode(tag));
}

export interface Challenge {
	nonce: string;
	expiresAt: number;
}

export type NonceCheck = { ok: true; expiresAt: number } | { ok: false; reason: AuthFailure };

export class Challenges {
	readonly #secret: Uint8Array;
	readonly #now: () => number;
	readonly #notBefore: number;
	/** Redeemed nonces and when they expire. */
	readonly #used = new Map<string, number>();
	#lastSweep = 0;

	constructor(secret: Uint8Array, now: () => number = Date.now) {
		this.#secret = secret;
		this.#now = now;
		this.#notBefore = now();
	}

	issue(roomId: string): Challenge {
		const issuedAt = this.#now();
		const head = new Uint8Array(8 + RANDOM_LENGTH);
		new DataView(head.buffer).setBigUint64(0, BigInt(issuedAt));
		head.set(randomBytes(RANDOM_LENGTH), 8);
		return {
			nonce: toBase64Url(concatBytes(head, this.#tag(roomId, head))),
			expiresAt: issuedAt + CHALLENGE_TTL_MS
		};
	}

	/** Authentic, for this room, unexpired and not yet redeemed? Does not redeem it. */
	check(roomId: string, nonce: string): NonceCheck {
		let bytes: Uint8Array;
		try {
			bytes = fromBase64Url(nonce);
		} catch {
			return { ok: false, reason: 'bad-challenge' };
		}
		if (bytes.length !== NONCE_LENGTH) return { ok: false, reason: 'bad-challenge' };
		const head = bytes.subarray(0, 8 + RANDOM_LENGTH);
		if (!timingSafeEqual(this.#tag(roomId, head), bytes.subarray(8 + RANDOM_LENGTH))) {
			return { ok: false, reason: 'bad-challenge' };
		}
		const issuedAt = Number(new DataView(head.buffer, head.byteOffset).getBigUint64(0));
		const expiresAt = issuedAt + CHALLENGE_TTL_MS;
		if (this.#now() > expiresAt || issuedAt < this.#notBefore) {
			return { ok: false, reason: 'expired-challenge' };
		}
		if (this.#used.has(nonce)) return { ok: false, reason: 'replayed-challenge' };
		return { ok: true, expiresAt };
	}

	/** Marks a checked nonce as used; false if it already was (a concurrent replay). */
	redeem(nonce: string, expiresAt: number): boolean {
		this.#sweep();
		if (this.#used.has(nonce)) return false;
		this.#used.set(nonce, expiresAt);
		return true;
	}

	get redeemedCount(): number {
		return this.#used.size;
	}

	#tag(roomId: string, head: Uint8Array): Uint8Array {
		const mac = createHmac('sha256', this.#secret);
		mac.update(utf8Encode(roomId));
		mac.update(head);
		return new Uint8Array(mac.digest().subarray(0, TAG_LENGTH));
	}

	#sweep(): void {
		const now = this.#now();
		if (now - this.#lastSweep < 10_000) return;
		this.#lastSweep = now;
		for (const [nonce, expiresAt] of this.#used) {
			if (expiresAt < now) this.#used.delete(nonce);
		}
	}
}

/** Parses `cap` and `sig` and checks the signature over the access message. */
export function verifyAccess(
	roomId: string,
	nonce: string,
	cap: string,
	sig: string
): Promise<Uint8Array | undefined> {
	return verifyProof(accessMessage(roomId, nonce), cap, sig);
}

/** Parses `cap` and `sig` and checks the signature over `message`; the key when it holds. */
export async function verifyProof(
	message: Uint8Array,
	cap: string,
	sig: string
): Promise<Uint8Array | undefined> {
	let publicKey: Uint8Array;
	let signature: Uint8Array;
	try {
		publicKey = fromBase64Url(cap);
		signature = fromBase64Url(sig);
	} catch {
		return undefined;
	}
	// verifySignature refuses wrong lengths and small-order keys.
	const ok = await verifySignature(publicKey, message, signature);
	return ok ? publicKey : undefined;
}
