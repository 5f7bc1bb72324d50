/**
 * Field schemas shared by invitations and invite-room messages. Binary values
 * are base64url without padding and must be canonical: they decode to exactly
 * the expected length and re-encode to the same text, so one value has one
 * spelling (ids are compared as text).
 */
import { z } from 'zod';
import {
	fromBase64Url,
	isRoomId,
	toBase64Url,
	type ConversationId,
	type DeviceId,
	type RoomId,
	type UserId
} from '../crypto';

/** base64url of an invitation's 16 random bytes (22 characters). */
export type InviteId = string & { readonly __inviteId: true };

const B64URL = /^[A-Za-z0-9_-]*$/;

/** Whether `value` is the canonical base64url encoding of exactly `length` bytes. */
export function isBase64UrlOf(value: unknown, length: number): value is string {
	if (typeof value !== 'string' || !B64URL.test(value)) return false;
	if (value.length !== Math.ceil((length * 4) / 3)) return false;
	try {
		const bytes = fromBase64Url(value);
		return bytes.length === length && toBase64Url(bytes) === value;
	} catch {
		return false;
	}
}

export const b64Bytes = (length: number) =>
	z.string().refine((value) => isBase64UrlOf(value, length), {
		message: `expected base64url of ${length} bytes`
	});

export const InviteIdSchema = z.custom<InviteId>((value) => isBase64UrlOf(value, 16), {
	message: 'expected an invite id'
});
export const UserIdSchema = z.custom<UserId>((value) => isBase64UrlOf(value, 32), {
	message: 'expected a user id'
});
export const DeviceIdSchema = z.custom<DeviceId>((value) => isBase64UrlOf(value, 32), {
	message: 'expected a device id'
});
export const RoomIdSchema = z.custom<RoomId>((value) => isRoomId(value), {
	message: 'expected a room id'
});
export const ConversationIdSchema = z.custom<ConversationId>((value) => isRoomId(value), {
	message: 'expected a conversation id'
});
/** ms since the epoch. */
export const Timestamp = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/** A display name of 1..max UTF-16 code units (what `string.length` counts). */
export const DisplayName = (max: number) => z.string().min(1).max(max);
