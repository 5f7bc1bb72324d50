/**
 * Linking a device (docs/protocol.md, "Linking a device (v1)"). A device of
 * the account (the existing device) makes a one-time link; the new device
 * opens it; both show a short code; once the user confirmed the code on
 * both, the existing device hands the new one the account's keys, sealed to
 * it, and the new device certifies itself under the account's
 * self-signing key. Both meet in a pairing room derived from the link's
 * secret, through the relay, which sees only envelopes it cannot open.
 *
 *   link      /link#v1.<secret>.<existing device>.<expires>
 *             secret: 32 random bytes (base64url); expires: ms since the epoch
 *             (10 minutes after it was made); existing device: its id
 *   room      roomId = base64url(HKDF(secret, info "kith/link-room/id", 16))
 *             key    = HKDF(secret, info "kith/link-room/key", 32)
 *   code      6 digits from SHA-256("kith/link-code\0" || secret || existing
 *             device || new device), shown "123 456": the same on both
 *             screens only if the new device's request is the one the
 *             existing device answers (someone else holding the link gets
 *             another code)
 *   request   new → room: { type: 'link-request', v: 1, device, dh, name, at }
 *             in an envelope signed by `device`
 *   grant     existing → room: { type: 'link-grant', v: 1, to, box } in an
 *             envelope signed by the existing device; `box` is a lockbox
 *             sealed to the request's `dh` under context "kith/link\0" ||
 *             room id || "\0" || to, holding { user, ssk, account,
 *             displayName, sskCert, deviceCert, vouches?, history? }
 *             (deviceCert: the existing device's, so the new one checks who
 *             answered; vouches: its word for the rooms it holds, see
 *             GrantVouch; history: the manifest of its conversations' views,
 *             see ./history.ts). The master key
 *             is not sent: it stays on the device that made the account
 *             (and in the recovery key), so a linked device can be removed
 *             by rotating the self-signing key it cannot re-certify.
 *
 * Everything read from the room is a stranger's input (anyone holding the
 * link can write there): decode, check and drop what fails.
 */
import { z } from 'zod';
import { FileManifest } from '../media/manifest';
import {
	asSecretKey,
	concatBytes,
	deriveKey,
	ed25519PublicKey,
	fromBase64Url,
	isRoomId,
	randomBytes,
	sha256,
	toBase64Url,
	utf8Decode,
	utf8Encode,
	type RoomId,
	type SecretKey
} from '../crypto';
import { Certificate, verifyDeviceChain } from '../identity/certificates';
import { openLockbox, sealLockbox } from '../invite/lockbox';

/** How long a link can be used. */
export const LINK_TTL_MS = 10 * 60 * 1000;
/** Largest message of the pairing room, in bytes. */
export const MAX_LINK_MESSAGE_BYTES = 16 * 1024;

export class PairingError extends Error {
	static readonly NAME = 'PairingError';
	override name = PairingError.NAME;
}

const B64Key = z.string().regex(/^[A-Za-z0-9_-]{43}$/);

export interface Pairing {
	secret: Uint8Array;
	/** The existing device's id. */
	device: string;
	expires: number;
}

/** A new pairing for this (existing) device: its link's fragment and what the room needs. */
export function createPairing(device: string, now = Date.now()): Pairing {
	return { secret: randomBytes(32), device, expires: now + LINK_TTL_MS };
}

export function pairingFragment(pairing: Pairing): string {
	return `v1.${toBase64Url(pairing.secret)}.${pairing.device}.${pairing.expires}`;
}

/** Read a link's fragment (with or without '#'). Throws PairingError with a message for a person. */
export function parsePairingFragment(fragment: string, now = Date.now()): Pairing {
	const parts = fragment.replace(/^#/, '').split('.');
	const [version, secretText, device, expiresText] = parts;
	let secret: Uint8Array | null = null;
	try {
		secret = secretText === undefined ? null : fromBase64Url(secretText);
	} catch {
		secret = null;
	}
	const expires = Number(expiresText);
	if (
		parts.length !== 4 ||
		version !== 'v1' ||
		secret?.length !== 32 ||
		!B64Key.safeParse(device).success ||
		!Number.isSafeInteger(expires)
	) {
		throw new PairingError('This is not a Kith device link. Copy the whole link again.');
	}
	if (expires <= now) {
		throw new PairingError('This link has expired. Make a new one on your other device.');
	}
	return { secret, device: device as string, expires };
}

/** The pairing room of a link's secret. */
export function pairingRoom(secret: Uint8Array): { roomId: RoomId; key: SecretKey } {
	const roomId = toBase64Url(deriveKey(secret, 'kith/link-room/id', 16));
	if (!isRoomId(roomId)) throw new PairingError('This link does not make a room.');
	return { roomId, key: asSecretKey(deriveKey(secret, 'kith/link-room/key', 32)) };
}

/** The code both screens show: "123 456". */
export function linkCode(secret: Uint8Array, existing: string, added: string): string {
	const digest = sha256(
		concatBytes(utf8Encode('kith/link-code\0'), secret, utf8Encode(existing), utf8Encode(added))
	);
	const value =
		((digest[0] as number) * 65536 + (digest[1] as number) * 256 + (digest[2] as number)) % 1e6;
	const digits = String(value).padStart(6, '0');
	return `${digits.slice(0, 3)} ${digits.slice(3)}`;
}

export const LinkRequest = z.strictObject({
	type: z.literal('link-request'),
	v: z.literal(1),
	device: B64Key,
	dh: B64Key,
	/** What the new device calls itself ("Chromium on Linux"), for the Devices list. */
	name: z.string().min(1).max(64),
	at: z.number().int().nonnegative()
});
export type LinkRequest = z.infer<typeof LinkRequest>;

export const LinkGrant = z.strictObject({
	type: z.literal('link-grant'),
	v: z.literal(1),
	to: B64Key,
	box: z.string().regex(/^[A-Za-z0-9_-]+$/)
});
export type LinkGrant = z.infer<typeof LinkGrant>;

const StrictCertificate = z.strictObject(Certificate.shape);

/** Rooms a grant vouches for, at most (see GrantVouch). */
export const MAX_GRANT_VOUCHES = 48;
/** Bytes of JSON the vouches of a grant may take, so the grant stays under MAX_LINK_MESSAGE_BYTES. */
export const MAX_GRANT_VOUCH_BYTES = 8 * 1024;

/**
 * The existing device's word for one room it holds: its state vector
 * (base64url of the encoded Yjs state vector) and the digest of the envelope
 * ids below it (`vouchDigest`). The new device then skips the signature
 * checks of exactly those envelopes when it first fetches the room
 * (conversation/doc-rules.ts, `checkVouchedUpdate`).
 */
const GrantVouch = z.strictObject({
	room: z.string().refine(isRoomId),
	sv: z.string().regex(/^[A-Za-z0-9_-]{1,8192}$/),
	digest: B64Key
});
export type GrantVouch = z.infer<typeof GrantVouch>;

/** Of `vouches` (the caller's order: most worth vouching first), those that fit in a grant. */
export function fitVouches(vouches: Iterable<GrantVouch>): GrantVouch[] {
	const out: GrantVouch[] = [];
	let bytes = 0;
	for (const vouch of vouches) {
		if (out.length >= MAX_GRANT_VOUCHES) break;
		const size = JSON.stringify(vouch).length + 1;
		if (bytes + size > MAX_GRANT_VOUCH_BYTES) continue; // a smaller one may still fit
		bytes += size;
		out.push(vouch);
	}
	return out;
}

const GrantSecrets = z.strictObject({
	user: B64Key,
	ssk: B64Key,
	account: B64Key,
	displayName: z.string().max(64),
	sskCert: StrictCertificate,
	deviceCert: StrictCertificate,
	vouches: z.array(GrantVouch).max(MAX_GRANT_VOUCHES).optional(),
	// The existing device's conversations as it sees them (./history.ts): the
	// manifest of that encrypted document on the relay, its key included.
	history: FileManifest.optional()
});
export type GrantSecrets = z.infer<typeof GrantSecrets>;

export type LinkMessage = LinkRequest | LinkGrant;

export function encodeLinkMessage(message: LinkMessage): Uint8Array {
	return utf8Encode(JSON.stringify(message));
}

/** Decode a pairing-room message; throws PairingError on anything else. */
export function decodeLinkMessage(bytes: Uint8Array): LinkMessage {
	if (bytes.length > MAX_LINK_MESSAGE_BYTES) throw new PairingError('A link message is too long.');
	let value: unknown;
	try {
		value = JSON.parse(utf8Decode(bytes));
	} catch {
		throw new PairingError('A link message is not JSON.');
	}
	const type = (value as { type?: unknown } | null)?.type;
	const parsed =
		type === 'link-request' ? LinkRequest.safeParse(value) : LinkGrant.safeParse(value);
	if (!parsed.success) throw new PairingError('A link message is malformed.');
	return parsed.data;
}

function grantContext(roomId: RoomId, to: string): Uint8Array {
	return utf8Encode(`kith/link\0${roomId}\0${to}`);
}

/** The existing device's answer to a confirmed request: the account's keys, sealed to it. */
export async function sealGrant(
	roomId: RoomId,
	request: LinkRequest,
	secrets: GrantSecrets
): Promise<LinkGrant> {
	const box = await sealLockbox(
		fromBase64Url(request.dh),
		utf8Encode(JSON.stringify(GrantSecrets.parse(secrets))),
		grantContext(roomId, request.device)
	);
	return { type: 'link-grant', v: 1, to: request.device, box: toBase64Url(box) };
}

/**
 * Open a grant sealed to this new device, read in an envelope signed by
 * `signer`: it must come from the device the link named, certified by the
 * account it claims, and its keys must be that account's.
 */
export async function openGrant(
	roomId: RoomId,
	grant: LinkGrant,
	me: { device: string; dhSecret: Uint8Array },
	signer: string,
	expectedDevice: string
): Promise<GrantSecrets> {
	if (grant.to !== me.device) throw new PairingError('This answer is for another device.');
	if (signer !== expectedDevice) {
		throw new PairingError('This answer does not come from the device that made the link.');
	}
	let secrets: GrantSecrets;
	try {
		const plaintext = await openLockbox(
			me.dhSecret,
			fromBase64Url(grant.box),
			grantContext(roomId, me.device)
		);
		secrets = GrantSecrets.parse(JSON.parse(utf8Decode(plaintext)));
	} catch {
		throw new PairingError('The answer from your other device could not be opened.');
	}
	const chain = await verifyDeviceChain(secrets.user, secrets.sskCert, secrets.deviceCert).catch(
		() => null
	);
	if (!chain || chain.device !== signer) {
		throw new PairingError('The device that answered is not certified by the account.');
	}
	const sskKey = (JSON.parse(secrets.sskCert.body) as { key?: unknown }).key;
	if (toBase64Url(ed25519PublicKey(fromBase64Url(secrets.ssk))) !== sskKey) {
		throw new PairingError('The keys from your other device do not belong to its account.');
	}
	return secrets;
}
