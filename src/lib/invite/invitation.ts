/**
 * Invite links (docs/protocol.md, "Invitations (v1)").
 *
 *   link     = <appUrl>/join#<fragment>
 *   fragment = base64url(invitation JSON) "." base64url(signature) "." base64url(secret)
 *   signature = Ed25519(inviter device, "kith/invite\0" || invitation JSON bytes)
 *
 * The fragment never leaves the browser (it is not sent in HTTP requests), so
 * neither the app's host nor the relay learns the secret. The invitation is
 * signed by the inviting device and says when it expires; the secret is the
 * one-time key of the invite room, whose id the invitation carries, so a link
 * whose secret was swapped or altered is refused like a forged one.
 *
 * The link does not carry the conversation key: a member device that is
 * online admits the joiner through the invite room (messages.ts).
 *
 * What the signature proves is only that the holder of `inviter.device`
 * made this invitation. That the device belongs to `inviter.user` (and the
 * names) cannot be checked from the link alone: the UI must present them as
 * claims until the admission and the conversation confirm them.
 */
import { z } from 'zod';
import {
	concatBytes,
	fromBase64Url,
	randomBytes,
	toBase64Url,
	utf8Decode,
	utf8Encode,
	verifySignature,
	type DeviceId,
	type Signer,
	type UserId
} from '../crypto';
import { InvalidInviteError, InviteExpiredError } from './errors';
import { deriveInviteRoom, INVITE_SECRET_LENGTH } from './invite-room';
import {
	DeviceIdSchema,
	DisplayName,
	InviteIdSchema,
	isBase64UrlOf,
	RoomIdSchema,
	Timestamp,
	UserIdSchema,
	type InviteId
} from './schemas';

/** Context string of the invitation signature. */
export const INVITE_CONTEXT = utf8Encode('kith/invite\0');
/** Longest fragment (and so longest link body) a parser looks at. */
export const MAX_INVITE_FRAGMENT_LENGTH = 4096;
/** Longest input (URL with fragment) a parser looks at. */
export const MAX_INVITE_LINK_LENGTH = 8192;
export const DEFAULT_INVITE_TTL_MS = 7 * 24 * 60 * 60 * 1000;
/** Upper bound for `ttlMs`: an invite link that never expires is a standing key to the room. */
export const MAX_INVITE_TTL_MS = 30 * 24 * 60 * 60 * 1000;
export const MAX_CONVERSATION_NAME_LENGTH = 100;
export const MAX_MEMBER_NAME_LENGTH = 64;

const SIGNATURE_LENGTH = 64;

/**
 * An invitation, v1. Keys in this order, no others: the creator signs
 * `JSON.stringify` of exactly this shape, the parser verifies the bytes it got.
 */
export const Invitation = z.strictObject({
	v: z.literal(1),
	id: InviteIdSchema,
	conversation: z.strictObject({ name: DisplayName(MAX_CONVERSATION_NAME_LENGTH) }),
	inviter: z.strictObject({
		user: UserIdSchema,
		device: DeviceIdSchema,
		name: DisplayName(MAX_MEMBER_NAME_LENGTH)
	}),
	expires: Timestamp,
	room: RoomIdSchema
});
export type Invitation = z.infer<typeof Invitation>;

export interface CreateInvitationOptions {
	/** The inviting device's signer; its public key becomes `inviter.device`. */
	signer: Signer;
	/** The inviter's user id (base64url master public key). */
	inviterUser: string;
	/** Shown to the joiner; trimmed, and cut to 64 characters. */
	inviterName: string;
	/** Shown to the joiner before admission; trimmed, and cut to 100 characters. */
	conversationName: string;
	/** The app's absolute http(s) URL; the link is `<appUrl>/join#…`. */
	appUrl: string;
	/** Lifetime in ms: default 7 days, at most 30 days. */
	ttlMs?: number;
	/** Current time (ms since the epoch); tests set it. */
	now?: number;
}

export interface CreatedInvitation {
	/** The link to share. Its fragment holds the secret: show it only to the inviter. */
	link: string;
	invitation: Invitation;
	/** The invite room's secret: the inviter's devices keep it until the invite expires or is revoked. */
	secret: Uint8Array;
}

export interface ParsedInvitation {
	invitation: Invitation;
	secret: Uint8Array;
}

/** Trim, then cut to at most `max` UTF-16 code units without splitting a character. */
function clip(text: string, max: number): string {
	let out = '';
	for (const char of text.trim()) {
		if (out.length + char.length > max) break;
		out += char;
	}
	return out;
}

function joinUrl(appUrl: string): string {
	let url: URL;
	try {
		url = new URL(appUrl);
	} catch (cause) {
		throw new RangeError('appUrl must be an absolute http(s) URL', { cause });
	}
	if (url.protocol !== 'https:' && url.protocol !== 'http:') {
		throw new RangeError('appUrl must be an absolute http(s) URL');
	}
	return `${url.origin}${url.pathname.replace(/\/+$/, '')}/join`;
}

/** Make a signed invitation and its link. Throws RangeError on unusable options. */
export async function createInvitation(
	options: CreateInvitationOptions
): Promise<CreatedInvitation> {
	const now = options.now ?? Date.now();
	const ttlMs = options.ttlMs ?? DEFAULT_INVITE_TTL_MS;
	if (!Number.isSafeInteger(now) || now < 0) throw new RangeError('now must be ms since the epoch');
	if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0 || ttlMs > MAX_INVITE_TTL_MS) {
		throw new RangeError('ttlMs must be a whole number of ms, more than 0 and at most 30 days');
	}
	if (!isBase64UrlOf(options.inviterUser, 32)) {
		throw new RangeError('inviterUser must be a user id (base64url of 32 bytes)');
	}
	if (options.signer.publicKey.length !== 32) {
		throw new RangeError('the signer must hold an Ed25519 key');
	}
	const conversationName = clip(options.conversationName, MAX_CONVERSATION_NAME_LENGTH);
	const inviterName = clip(options.inviterName, MAX_MEMBER_NAME_LENGTH);
	if (!conversationName) throw new RangeError('the conversation name must not be empty');
	if (!inviterName) throw new RangeError("the inviter's name must not be empty");
	const base = joinUrl(options.appUrl);

	const secret = randomBytes(INVITE_SECRET_LENGTH);
	const { roomId } = await deriveInviteRoom(secret);
	// Parsing also puts the keys in the schema's order: the canonical JSON.
	const invitation = Invitation.parse({
		v: 1,
		id: toBase64Url(randomBytes(16)) as InviteId,
		conversation: { name: conversationName },
		inviter: {
			user: options.inviterUser as UserId,
			device: toBase64Url(options.signer.publicKey) as DeviceId,
			name: inviterName
		},
		expires: now + ttlMs,
		room: roomId
	});
	const json = utf8Encode(JSON.stringify(invitation));
	const signature = await options.signer.sign(concatBytes(INVITE_CONTEXT, json));
	const fragment = [json, signature, secret].map(toBase64Url).join('.');
	if (fragment.length > MAX_INVITE_FRAGMENT_LENGTH) {
		// Unreachable with the name limits above; a parser would refuse such a link.
		throw new RangeError('the invitation is too long for a link');
	}
	return { link: `${base}#${fragment}`, invitation, secret };
}

const B64URL = /^[A-Za-z0-9_-]+$/;

function decodePart(part: string | undefined): Uint8Array {
	if (part === undefined || !B64URL.test(part)) throw new InvalidInviteError('malformed');
	try {
		return fromBase64Url(part);
	} catch (cause) {
		throw new InvalidInviteError('malformed', { cause });
	}
}

async function parse(linkOrFragment: string, now: number): Promise<ParsedInvitation> {
	if (typeof linkOrFragment !== 'string') throw new InvalidInviteError('malformed');
	if (linkOrFragment.length > MAX_INVITE_LINK_LENGTH) throw new InvalidInviteError('too-long');
	const text = linkOrFragment.trim();
	const hash = text.indexOf('#');
	const fragment = hash >= 0 ? text.slice(hash + 1) : text;
	if (fragment.length > MAX_INVITE_FRAGMENT_LENGTH) throw new InvalidInviteError('too-long');

	const parts = fragment.split('.');
	if (parts.length !== 3) throw new InvalidInviteError('malformed');
	const json = decodePart(parts[0]);
	const signature = decodePart(parts[1]);
	const secret = decodePart(parts[2]);
	if (signature.length !== SIGNATURE_LENGTH || secret.length !== INVITE_SECRET_LENGTH) {
		throw new InvalidInviteError('malformed');
	}

	let body: unknown;
	try {
		body = JSON.parse(utf8Decode(json));
	} catch (cause) {
		throw new InvalidInviteError('bad-invitation', { cause });
	}
	const parsed = Invitation.safeParse(body);
	if (!parsed.success) throw new InvalidInviteError('bad-invitation', { cause: parsed.error });
	const invitation = parsed.data;

	// The signature covers the bytes as received; nothing is re-serialised.
	const signed = await verifySignature(
		fromBase64Url(invitation.inviter.device),
		concatBytes(INVITE_CONTEXT, json),
		signature
	);
	if (!signed) throw new InvalidInviteError('bad-signature');
	const { roomId } = await deriveInviteRoom(secret);
	if (roomId !== invitation.room) throw new InvalidInviteError('wrong-secret');
	// Only a genuine invitation is reported as expired.
	if (now >= invitation.expires) throw new InviteExpiredError(invitation.expires);
	return { invitation, secret };
}

/**
 * Read an invite link: a full URL, or its fragment with or without '#'.
 * Surrounding whitespace is ignored. Throws InvalidInviteError (malformed,
 * forged, altered) or InviteExpiredError, and nothing else, whatever the input.
 */
export async function parseInviteLink(
	linkOrFragment: string,
	now: number = Date.now()
): Promise<ParsedInvitation> {
	if (!Number.isFinite(now)) throw new RangeError('now must be ms since the epoch');
	try {
		return await parse(linkOrFragment, now);
	} catch (error) {
		const name = (error as { name?: unknown } | null)?.name;
		if (name === InvalidInviteError.NAME || name === InviteExpiredError.NAME) throw error;
		throw new InvalidInviteError('malformed', { cause: error });
	}
}
