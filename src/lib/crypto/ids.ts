/**
 * Branded identifiers: a room id can never be passed where a device id is
 * expected, and secrets are typed apart from ids (they never reach a log,
 * a URL or the relay).
 */
import { randomBytes, toBase64Url } from './bytes';

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** base64url of 16 random bytes; names one generation of a conversation doc. */
export type RoomId = Brand<string, 'RoomId'>;
/** base64url of a device's Ed25519 signing public key. */
export type DeviceId = Brand<string, 'DeviceId'>;
/** base64url of an account's master Ed25519 public key. */
export type UserId = Brand<string, 'UserId'>;
/** base64url of SHA-256 of an envelope's bytes: its key in the conversation doc. */
export type EnvelopeId = Brand<string, 'EnvelopeId'>;
/** A stable conversation id (the room id of its first generation). */
export type ConversationId = Brand<string, 'ConversationId'>;

/** 32 bytes of symmetric key material. Never serialised outside the keyring. */
export type SecretKey = Brand<Uint8Array, 'SecretKey'>;

export function newRoomId(): RoomId {
	return toBase64Url(randomBytes(16)) as RoomId;
}

export function newSecretKey(): SecretKey {
	return randomBytes(32) as SecretKey;
}

export function asSecretKey(bytes: Uint8Array): SecretKey {
	if (bytes.length !== 32) throw new RangeError('a secret key is 32 bytes');
	return bytes as SecretKey;
}

const B64URL = /^[A-Za-z0-9_-]+$/;

export function isRoomId(value: unknown): value is RoomId {
	return typeof value === 'string' && value.length === 22 && B64URL.test(value);
}
