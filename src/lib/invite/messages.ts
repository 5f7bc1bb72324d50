/**
 * Messages of the invite room (docs/protocol.md, "Invitations (v1)").
 *
 *   joiner → room:  JoinRequest { type: 'join', … }   who I am, certified by my account
 *   member → room:  Admission   { type: 'admit', … }  the conversation, sealed to the joiner
 *
 * Each message is the UTF-8 JSON of one object, at most
 * MAX_INVITE_MESSAGE_BYTES, with exactly the keys of its schema. Everyone
 * holding the link can write to the invite room, so everything read from it
 * is a stranger's input: decode and verify before use, and drop (with the
 * `reason` of the InviteMessageError) what fails.
 *
 * An admission carries the conversation's current epoch key inside a lockbox
 * sealed to the joiner's certified X25519 key, with context
 * "kith/admission\0" || invite id: only that device can open it, and only as
 * an admission for that invitation.
 */
import { z } from 'zod';
import { concatBytes, fromBase64Url, toBase64Url, utf8Decode, utf8Encode } from '../crypto';
import { Certificate, verifyDeviceChain, type DeviceCertBody } from '../identity/certificates';
import { InviteMessageError } from './errors';
import { MAX_CONVERSATION_NAME_LENGTH, MAX_MEMBER_NAME_LENGTH } from './invitation';
import { openLockbox, sealLockbox } from './lockbox';
import {
	b64Bytes,
	ConversationIdSchema,
	DeviceIdSchema,
	DisplayName,
	InviteIdSchema,
	RoomIdSchema,
	Timestamp,
	UserIdSchema,
	type InviteId
} from './schemas';

/** Largest encoded message of the invite room, in bytes. */
export const MAX_INVITE_MESSAGE_BYTES = 16 * 1024;
/** Context prefix of an admission lockbox; the invite id (UTF-8) follows it. */
export const ADMISSION_CONTEXT = utf8Encode('kith/admission\0');

/** A certificate inside an invite-room message: exactly its three keys. */
const StrictCertificate = z.strictObject(Certificate.shape);

/** Canonical base64url of any non-empty byte string. */
const B64Blob = z.string().refine(
	(value) => {
		if (!/^[A-Za-z0-9_-]+$/.test(value)) return false;
		try {
			return toBase64Url(fromBase64Url(value)) === value;
		} catch {
			return false;
		}
	},
	{ message: 'expected base64url' }
);

export const JoinRequest = z.strictObject({
	type: z.literal('join'),
	v: z.literal(1),
	/** The id of the invitation the joiner holds. */
	invite: InviteIdSchema,
	user: UserIdSchema,
	device: DeviceIdSchema,
	/** The joining device's X25519 public key: the admission is sealed to it. */
	dh: b64Bytes(32),
	/** The name the joiner gives; shown to the members who decide. */
	name: DisplayName(MAX_MEMBER_NAME_LENGTH),
	ssk: StrictCertificate,
	deviceCert: StrictCertificate,
	/** When the request was made (ms since the epoch, the joiner's clock). */
	at: Timestamp
});
export type JoinRequest = z.infer<typeof JoinRequest>;

export const Admission = z.strictObject({
	type: z.literal('admit'),
	v: z.literal(1),
	invite: InviteIdSchema,
	/** The joining device the lockbox is sealed to. */
	to: DeviceIdSchema,
	/** base64url lockbox (lockbox.ts) holding the AdmissionSecret JSON. */
	box: B64Blob
});
export type Admission = z.infer<typeof Admission>;

export const ConversationKind = z.enum(['notes', 'group']);
export type ConversationKind = z.infer<typeof ConversationKind>;

/** What an admission lockbox holds: enough to open the conversation's current generation. */
export const AdmissionSecret = z.strictObject({
	conversation: z.strictObject({
		id: ConversationIdSchema,
		name: DisplayName(MAX_CONVERSATION_NAME_LENGTH),
		kind: ConversationKind,
		/** The current generation's room. */
		roomId: RoomIdSchema,
		epoch: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
		/** The epoch key, base64url of 32 bytes. */
		key: b64Bytes(32),
		creator: UserIdSchema,
		createdAt: Timestamp,
		/** The device that opened this generation (its seed counts); absent for the first. */
		opener: UserIdSchema.optional()
	})
});
export type AdmissionSecret = z.infer<typeof AdmissionSecret>;

export const InviteMessage = z.discriminatedUnion('type', [JoinRequest, Admission]);
export type InviteMessage = z.infer<typeof InviteMessage>;

function parseWith<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
	const parsed = schema.safeParse(value);
	if (!parsed.success) {
		throw new InviteMessageError('malformed', `${what} does not have the expected shape.`, {
			cause: parsed.error
		});
	}
	return parsed.data;
}

/** The UTF-8 JSON bytes of an invite-room message (checked against its schema and size cap). */
export function encodeInviteMessage(message: InviteMessage): Uint8Array {
	const bytes = utf8Encode(JSON.stringify(parseWith(InviteMessage, message, 'The message')));
	if (bytes.length > MAX_INVITE_MESSAGE_BYTES) {
		throw new InviteMessageError('too-large', 'The message is too large for the invite room.');
	}
	return bytes;
}

/** Decode bytes read from the invite room. Throws InviteMessageError and nothing else. */
export function decodeInviteMessage(bytes: Uint8Array): InviteMessage {
	if (!(bytes instanceof Uint8Array)) {
		throw new InviteMessageError('malformed', 'An invite-room message must be bytes.');
	}
	if (bytes.length > MAX_INVITE_MESSAGE_BYTES) {
		throw new InviteMessageError('too-large', 'The message is too large for the invite room.');
	}
	let value: unknown;
	try {
		value = JSON.parse(utf8Decode(bytes));
	} catch (cause) {
		throw new InviteMessageError('malformed', 'The message is not UTF-8 JSON.', { cause });
	}
	return parseWith(InviteMessage, value, 'The message');
}

/**
 * Check that a join request speaks for a real device of `request.user`: the
 * certificate chain master → SSK → device verifies, and the certified device
 * and X25519 keys are the ones in the request. Returns the device
 * certificate's body. It does not check the invitation (known, not expired,
 * not revoked): that is the admitting member's own state.
 */
export async function verifyJoinRequest(request: JoinRequest): Promise<DeviceCertBody> {
	const checked = parseWith(JoinRequest, request, 'The join request');
	let body: DeviceCertBody;
	try {
		body = await verifyDeviceChain(checked.user, checked.ssk, checked.deviceCert);
	} catch (cause) {
		throw new InviteMessageError(
			'bad-certificate',
			"The join request's certificates do not verify for its user.",
			{ cause }
		);
	}
	if (body.device !== checked.device || body.dh !== checked.dh) {
		throw new InviteMessageError(
			'key-mismatch',
			"The join request's keys are not the ones its certificate certifies."
		);
	}
	return body;
}

function admissionContext(inviteId: string): Uint8Array {
	return concatBytes(ADMISSION_CONTEXT, utf8Encode(inviteId));
}

/**
 * Admit the joiner behind `request`: seal `secret` to its X25519 key. The
 * request is verified first (verifyJoinRequest), so a conversation key is
 * never sealed to a key the joiner's account did not certify. The caller
 * decides whether to admit at all (invitation known, not expired or revoked)
 * and adds the member to the conversation.
 */
export async function sealAdmission(
	request: JoinRequest,
	secret: AdmissionSecret
): Promise<Admission> {
	await verifyJoinRequest(request);
	const content = parseWith(AdmissionSecret, secret, 'The admission secret');
	let box: Uint8Array;
	try {
		box = await sealLockbox(
			fromBase64Url(request.dh),
			utf8Encode(JSON.stringify(content)),
			admissionContext(request.invite)
		);
	} catch (cause) {
		throw new InviteMessageError('unusable-key', "The joiner's X25519 key is not usable.", {
			cause
		});
	}
	const admission: Admission = {
		type: 'admit',
		v: 1,
		invite: request.invite,
		to: request.device,
		box: toBase64Url(box)
	};
	// Checks the size cap here, not at the receiver.
	encodeInviteMessage(admission);
	return admission;
}

/**
 * Open an admission sent to this device for invitation `inviteId`, with this
 * device's X25519 secret. Throws InviteMessageError ('wrong-invite',
 * 'cannot-open', 'malformed') and nothing else.
 */
export async function openAdmission(
	admission: Admission,
	dhSecret: Uint8Array,
	inviteId: InviteId
): Promise<AdmissionSecret> {
	const checked = parseWith(Admission, admission, 'The admission');
	if (checked.invite !== inviteId) {
		throw new InviteMessageError('wrong-invite', 'The admission is for another invitation.');
	}
	let plaintext: Uint8Array;
	try {
		plaintext = await openLockbox(dhSecret, fromBase64Url(checked.box), admissionContext(inviteId));
	} catch (cause) {
		throw new InviteMessageError(
			'cannot-open',
			'The admission could not be opened: it was sealed to another device, or altered.',
			{ cause }
		);
	}
	try {
		return parseWith(AdmissionSecret, JSON.parse(utf8Decode(plaintext)), 'The admission secret');
	} catch (cause) {
		if ((cause as Error).name === InviteMessageError.NAME) throw cause;
		throw new InviteMessageError('malformed', 'The admission secret is not UTF-8 JSON.', {
			cause
		});
	} finally {
		plaintext.fill(0);
	}
}
