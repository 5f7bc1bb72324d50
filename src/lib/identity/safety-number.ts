/**
 * Safety numbers: what two people compare (read aloud, or scan as a QR code)
 * to know that the keys their apps use for each other are the real ones.
 *
 * Like Signal's, a safety number is 60 digits, two halves of 30: one per
 * person, each derived from that person's keys alone, so both see the same
 * number (the halves in a fixed order: by user id). A half is 6 blocks of 5
 * digits from an iterated SHA-512 (5,200 rounds, so that finding other keys
 * with the same digits costs as much as it does in Signal) over:
 *
 *   "kith/safety-number\0" || version (2) || user id
 *
 * The user id is the account's master public key, the root of the
 * cross-signing chain (master → self-signing key → devices): every key a
 * device of that person uses is certified from it. So the number covers the
 * identity, and it does not change when the person links a device or
 * removes one (which gives them a new self-signing key, certified by the same
 * master key), as Matrix's cross-signing verification does not. Version 1
 * also hashed the self-signing keys: every device removal then warned every
 * contact who had verified the person, for nothing they could act on.
 *
 * The QR code carries "kith-safety:1:" and the 60 digits; scanning it is the
 * same comparison as reading them.
 */
import { sha512 } from '@noble/hashes/sha2.js';
import { concatBytes, utf8Encode } from '../crypto';

export const SAFETY_NUMBER_VERSION = 2;
const ROUNDS = 5200;
const CONTEXT = utf8Encode('kith/safety-number\0');

/** Whose keys: a user id (the master public key, base64url). */
export interface SafetyKeys {
	user: string;
}

/** The 30 digits of one person's keys. */
export function safetyHalf(keys: SafetyKeys): string {
	const input = concatBytes(
		CONTEXT,
		new Uint8Array([SAFETY_NUMBER_VERSION]),
		utf8Encode(keys.user)
	);
	let hash = sha512(input);
	for (let i = 1; i < ROUNDS; i++) hash = sha512(concatBytes(hash, input));
	let digits = '';
	for (let block = 0; block < 6; block++) {
		let n = 0;
		for (let i = 0; i < 5; i++) n = n * 256 + hash[block * 5 + i]!;
		digits += String(n % 100_000).padStart(5, '0');
	}
	return digits;
}

/** The 60-digit safety number of two people, the same from both sides. */
export function safetyNumber(a: SafetyKeys, b: SafetyKeys): string {
	return joinHalves({ user: a.user, half: safetyHalf(a) }, { user: b.user, half: safetyHalf(b) });
}

/** Two people's halves in the order both of them see (by user id). */
export function joinHalves(
	a: { user: string; half: string },
	b: { user: string; half: string }
): string {
	return a.user < b.user ? a.half + b.half : b.half + a.half;
}

/** "12345 67890 …": 12 blocks of 5 digits, as people read them. */
export function formatSafetyNumber(digits: string): string[] {
	return digits.match(/\d{5}/g) ?? [];
}

/** What the safety number's QR code holds. */
export function safetyQrText(digits: string): string {
	return `kith-safety:${SAFETY_NUMBER_VERSION}:${digits}`;
}
