/**
 * The request bodies of the push routes (push.ts). A module of its own so
 * the relay loads zod only when the first registration arrives.
 */
import { z } from 'zod';
import { isRoomId } from '../../../src/lib/crypto/ids.ts';
import { MAX_ENDPOINT_CHARS, MAX_ROOMS } from './push.ts';

const base64url = (max: number) =>
	z
		.string()
		.max(max)
		.regex(/^[A-Za-z0-9_-]*=*$/, 'must be base64url');

export const PushSubscriptionJson = z.object({
	endpoint: z.string().max(MAX_ENDPOINT_CHARS),
	keys: z.object({ p256dh: base64url(100), auth: base64url(40) })
});

export const RoomProof = z.strictObject({
	room: z.string().refine(isRoomId, 'must be a 22-character base64url room id'),
	cap: base64url(100),
	nonce: base64url(100),
	sig: base64url(200),
	muted: z.boolean().default(false)
});

export const PutSubscriptionBody = z.object({
	subscription: PushSubscriptionJson,
	device: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1 to 64 of A-Z a-z 0-9 _ -'),
	rooms: z.array(RoomProof).max(MAX_ROOMS, `at most ${MAX_ROOMS} rooms`)
});
export type PutSubscriptionBody = z.infer<typeof PutSubscriptionBody>;

export const DeleteSubscriptionBody = z.object({ endpoint: z.string().max(MAX_ENDPOINT_CHARS) });
export type DeleteSubscriptionBody = z.infer<typeof DeleteSubscriptionBody>;
