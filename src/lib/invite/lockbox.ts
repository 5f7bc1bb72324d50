/**
 * Lockboxes: a secret sealed to one device's X25519 key (ECIES), so that only
 * that device can open it. Used to hand a joiner the conversation key, and
 * later to hand each member the next epoch's key.
 *
 *   e, E      = fresh X25519 key pair (never reused, forgotten after sealing)
 *   shared    = X25519(e, R)                     R = recipient's public key
 *   key       = HKDF-SHA256(ikm = shared, salt = E || R,
 *                           info = "kith/lockbox/v1\0" || context, 32 bytes)
 *   nonce, ct = AES-256-GCM(key, plaintext, aad = context)   (ct ends with the 16-byte tag)
 *   box       = 0x01 || E (32) || nonce (12) || ct (plaintext length + 16)
 *
 * `context` names the purpose and binds the box to it (an admission for one
 * invite cannot be replayed as one for another): it is both in the key
 * derivation and the associated data. Both public keys are in the salt, so a
 * box is bound to the recipient it was sealed to.
 *
 * An all-zero shared secret (the recipient or ephemeral key is a small-order
 * point) is refused on both sides: with it the "secret" would be public.
 * Every failure throws LockboxError; no partial plaintext is ever returned.
 */
import { x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import {
	aeadDecrypt,
	aeadEncrypt,
	asSecretKey,
	concatBytes,
	NONCE_LENGTH,
	utf8Encode
} from '../crypto';
import { LockboxError } from './errors';

/** The first byte of every lockbox of this format. */
export const LOCKBOX_VERSION = 1;
/** HKDF info prefix; the caller's context follows it. */
export const LOCKBOX_INFO = utf8Encode('kith/lockbox/v1\0');

const KEY_LENGTH = 32;
const TAG_LENGTH = 16;
const HEADER_LENGTH = 1 + KEY_LENGTH + NONCE_LENGTH;
/** Smallest possible box: header and the tag of an empty plaintext. */
export const LOCKBOX_OVERHEAD = HEADER_LENGTH + TAG_LENGTH;

function isAllZero(bytes: Uint8Array): boolean {
	let acc = 0;
	for (const byte of bytes) acc |= byte;
	return acc === 0;
}

function checkBytes(value: unknown, what: string): asserts value is Uint8Array {
	if (!(value instanceof Uint8Array)) throw new LockboxError(`The lockbox ${what} must be bytes.`);
}

/** X25519, with every failure (bad length, small-order point) as a LockboxError. */
function agree(secret: Uint8Array, publicKey: Uint8Array): Uint8Array {
	let shared: Uint8Array;
	try {
		shared = x25519.getSharedSecret(secret, publicKey);
	} catch (cause) {
		throw new LockboxError('The key agreement failed: the public key is not usable.', { cause });
	}
	if (isAllZero(shared)) {
		throw new LockboxError('The key agreement failed: the public key is not usable.');
	}
	return shared;
}

function boxKey(
	shared: Uint8Array,
	ephemeralPublic: Uint8Array,
	recipientPublic: Uint8Array,
	context: Uint8Array
): Uint8Array {
	return hkdf(
		sha256,
		shared,
		concatBytes(ephemeralPublic, recipientPublic),
		concatBytes(LOCKBOX_INFO, context),
		KEY_LENGTH
	);
}

/** Seal `plaintext` to the holder of the X25519 secret behind `recipientDhPublic`. */
export async function sealLockbox(
	recipientDhPublic: Uint8Array,
	plaintext: Uint8Array,
	context: Uint8Array
): Promise<Uint8Array> {
	if (!(recipientDhPublic instanceof Uint8Array) || recipientDhPublic.length !== KEY_LENGTH) {
		throw new LockboxError('A lockbox can only be sealed to a 32-byte X25519 public key.');
	}
	checkBytes(plaintext, 'plaintext');
	checkBytes(context, 'context');
	const ephemeralSecret = x25519.utils.randomSecretKey();
	const ephemeralPublic = x25519.getPublicKey(ephemeralSecret);
	const shared = agree(ephemeralSecret, recipientDhPublic);
	const key = boxKey(shared, ephemeralPublic, recipientDhPublic, context);
	try {
		const { nonce, ciphertext } = await aeadEncrypt(asSecretKey(key), plaintext, context);
		return concatBytes(Uint8Array.of(LOCKBOX_VERSION), ephemeralPublic, nonce, ciphertext);
	} finally {
		ephemeralSecret.fill(0);
		shared.fill(0);
		key.fill(0);
	}
}

/** Open a lockbox sealed to this device's X25519 key under `context`. */
export async function openLockbox(
	recipientDhSecret: Uint8Array,
	box: Uint8Array,
	context: Uint8Array
): Promise<Uint8Array> {
	if (!(recipientDhSecret instanceof Uint8Array) || recipientDhSecret.length !== KEY_LENGTH) {
		throw new LockboxError('A lockbox can only be opened with a 32-byte X25519 secret key.');
	}
	checkBytes(box, 'box');
	checkBytes(context, 'context');
	if (box.length < LOCKBOX_OVERHEAD) {
		throw new LockboxError('This lockbox is too short to be one.');
	}
	if (box[0] !== LOCKBOX_VERSION) {
		throw new LockboxError(`This lockbox has version ${box[0]}; only version 1 can be opened.`);
	}
	const ephemeralPublic = box.subarray(1, 1 + KEY_LENGTH);
	const nonce = box.subarray(1 + KEY_LENGTH, HEADER_LENGTH);
	const ciphertext = box.subarray(HEADER_LENGTH);
	const recipientPublic = x25519.getPublicKey(recipientDhSecret);
	const shared = agree(recipientDhSecret, ephemeralPublic);
	const key = boxKey(shared, ephemeralPublic, recipientPublic, context);
	try {
		return await aeadDecrypt(asSecretKey(key), nonce, ciphertext, context);
	} catch (cause) {
		throw new LockboxError(
			'This lockbox could not be opened: it is for another key or context, or it was altered.',
			{ cause }
		);
	} finally {
		shared.fill(0);
		key.fill(0);
	}
}
