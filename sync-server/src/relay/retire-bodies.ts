/**
 * The request bodies of room retirement (retire.ts, docs/protocol.md "Room
 * retirement"). A module of its own so the relay loads zod only when the
 * first retirement request arrives.
 */
import { z } from 'zod';
import { BASE64URL_32 } from '../../../src/lib/crypto/bytes.ts';
import { MAX_RETIRE_DEVICES } from './retire.ts';

const base64url = (max: number) =>
	z
		.string()
		.min(1)
		.max(max)
		.regex(/^[A-Za-z0-9_-]+$/, 'must be unpadded base64url');

const tag = z.string().regex(BASE64URL_32, 'must be 32 bytes as 43 base64url characters');

const proof = {
	cap: base64url(100),
	nonce: base64url(100),
	sig: base64url(200)
};

export const RetireBody = z.strictObject({
	...proof,
	devices: z
		.array(tag)
		.min(1, 'at least one device tag')
		.max(MAX_RETIRE_DEVICES, `at most ${MAX_RETIRE_DEVICES} device tags`)
		.refine((tags) => new Set(tags).size === tags.length, 'every device tag at most once'),
	retainUntil: z
		.number()
		.int('must be a whole number of milliseconds')
		.min(0, 'must not be negative')
		.max(Number.MAX_SAFE_INTEGER)
});
export type RetireBody = z.infer<typeof RetireBody>;

export const MovedBody = z.strictObject({ ...proof, tag });
export type MovedBody = z.infer<typeof MovedBody>;
