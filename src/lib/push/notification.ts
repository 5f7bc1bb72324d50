/**
 * Notification envelopes (docs/protocol.md, "Push (v1)").
 *
 * With each message the sender's device makes a small envelope for the
 * relay to push to members' devices that are offline: the sender's name, a
 * preview and the conversation. It is an ordinary v1 envelope (padded,
 * AES-GCM, signed by the device) of the conversation's room and epoch, but
 * under the room's *notification key*, a subkey of the epoch key:
 *
 *   notifyKey = HKDF-SHA256(ikm = epoch key, info = "kith/notify/" || roomId, 32)
 *
 * so the service worker, which holds only notification keys, can show a
 * notification without holding anything that opens the conversation's
 * messages, and a notification envelope can never be taken for a message
 * (it does not decrypt under the epoch key).
 */
import { z } from 'zod';
import { deriveKey, type RoomId, type SecretKey, type Signer } from '../crypto';
import { openEnvelope, parseEnvelope, sealEnvelope } from '../envelope';

export const NOTIFY_INFO = 'kith/notify/';
/** The envelope's clock: notification envelopes never sit in a doc. */
const NOTIFY_CLOCK = 0xffffffff;
/** Largest notification envelope (the relay refuses larger). */
export const MAX_NOTIFICATION_BYTES = 3072;
export const MAX_PREVIEW_LENGTH = 140;

export const NotificationBody = z.strictObject({
	v: z.literal(1),
	/** The conversation id (where a click leads). */
	c: z.string().min(1).max(64),
	/** The conversation's name. */
	t: z.string().max(100),
	/** The sender's display name. */
	n: z.string().max(64),
	/** A preview of the message. */
	p: z.string().max(MAX_PREVIEW_LENGTH + 1)
});
export type NotificationBody = z.infer<typeof NotificationBody>;

export class NotificationError extends Error {
	static readonly NAME = 'NotificationError';
	override name = NotificationError.NAME;
}

export function notifyKeyFor(epochKey: Uint8Array, roomId: RoomId): SecretKey {
	return deriveKey(epochKey, NOTIFY_INFO + roomId, 32) as SecretKey;
}

/** One line of at most MAX_PREVIEW_LENGTH characters (an ellipsis marks a cut). */
export function previewOf(text: string): string {
	const line = text.replace(/\s+/g, ' ').trim();
	const chars = Array.from(line);
	return chars.length <= MAX_PREVIEW_LENGTH
		? line
		: chars.slice(0, MAX_PREVIEW_LENGTH - 1).join('') + '…';
}

export interface SealNotificationInput {
	roomId: RoomId;
	epoch: number;
	/** The room's notification key for `epoch` (notifyKeyFor). */
	key: SecretKey;
	signer: Signer;
	body: Omit<NotificationBody, 'v'>;
}

export async function sealNotification(input: SealNotificationInput): Promise<Uint8Array> {
	const body = NotificationBody.parse({ v: 1, ...input.body });
	const sealed = await sealEnvelope({
		clock: NOTIFY_CLOCK,
		roomId: input.roomId,
		epoch: input.epoch,
		key: input.key,
		signer: input.signer,
		plaintext: new TextEncoder().encode(JSON.stringify(body))
	});
	if (sealed.bytes.length > MAX_NOTIFICATION_BYTES) {
		throw new NotificationError('notification envelope too large');
	}
	return sealed.bytes;
}

/** The room a notification envelope names (readable without a key). */
export function notificationRoom(bytes: Uint8Array): RoomId {
	try {
		return parseEnvelope(bytes).roomId;
	} catch (cause) {
		throw new NotificationError('not a notification envelope', { cause });
	}
}

/**
 * Verify and open a notification envelope. `keyFor(roomId, epoch)` gives the
 * room's notification key, or undefined. Throws NotificationError for
 * anything that is not a valid notification this device can read.
 */
export async function openNotification(
	bytes: Uint8Array,
	keyFor: (roomId: RoomId, epoch: number) => SecretKey | undefined
): Promise<NotificationBody & { roomId: RoomId }> {
	if (bytes.length > MAX_NOTIFICATION_BYTES) throw new NotificationError('too large');
	const roomId = notificationRoom(bytes);
	let plaintext: Uint8Array;
	try {
		({ plaintext } = await openEnvelope(bytes, {
			roomId,
			keyForEpoch: (epoch) => keyFor(roomId, epoch)
		}));
	} catch (cause) {
		throw new NotificationError('the notification does not open', { cause });
	}
	let json: unknown;
	try {
		json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plaintext));
	} catch (cause) {
		throw new NotificationError('the notification is not JSON', { cause });
	}
	const body = NotificationBody.safeParse(json);
	if (!body.success) throw new NotificationError('the notification is malformed');
	return { ...body.data, roomId };
}
