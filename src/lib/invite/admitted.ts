/**
 * The steps of a join that the app and the `kith` peer share: the request a
 * joiner posts, reading the invite room, what a member's admission tells
 * the joiner, and the vault entry an opened admission becomes.
 */
import {
	fromBase64Url,
	toBase64Url,
	type ConversationId,
	type RoomId,
	type SecretKey
} from '../crypto';
import { openEnvelope } from '../envelope';
import type { PublicIdentity } from '../identity/keyring';
import type { ConversationEntry } from '../vault';
import {
	MAX_CONVERSATION_NAME_LENGTH,
	MAX_MEMBER_NAME_LENGTH,
	type Invitation
} from './invitation';
import type { MemberAddOp, OpId } from '../conversation';
import {
	decodeInviteMessage,
	encodeInviteMessage,
	sealAdmission,
	verifyJoinRequest,
	type AdmissionSecret,
	type InviteMessage,
	type JoinRequest
} from './messages';

/** The request a joining device posts in the invite room (`name`: the name it gives). */
export function joinRequest(identity: PublicIdentity, invite: string, name: string): JoinRequest {
	return {
		type: 'join',
		v: 1,
		invite: invite as JoinRequest['invite'],
		user: identity.userId,
		device: identity.deviceId,
		dh: identity.dhPublic,
		name: (name || 'Someone').slice(0, MAX_MEMBER_NAME_LENGTH),
		ssk: identity.sskCert,
		deviceCert: identity.deviceCert,
		at: Date.now()
	};
}

/**
 * One entry of an invite room, opened with the room's key and decoded.
 * Throws on an entry that does not open or does not decode.
 */
export async function openInviteEntry(
	bytes: Uint8Array,
	roomId: RoomId,
	key: Uint8Array
): Promise<{ message: InviteMessage; signer: string }> {
	const opened = await openEnvelope(bytes, {
		roomId,
		keyForEpoch: (epoch) => (epoch === 0 ? (key as SecretKey) : undefined),
		// Every entry in the doc passed the doc rules (signature included).
		verified: true
	});
	return { message: decodeInviteMessage(opened.plaintext), signer: toBase64Url(opened.signer) };
}

/**
 * Member side, one invitation's room: hands `admit` each join request for
 * `invite` posted by the device it names, once per device, and none for a
 * device some member's admission already answered. `admit` adds the device
 * to `admitted` once it decides to admit it.
 */
export function joinRequestWatcher(
	invite: string,
	admit: (request: JoinRequest, admitted: Set<string>) => void
): (message: InviteMessage, signer: string) => void {
	const admitted = new Set<string>();
	return (message, signer) => {
		if (message.type === 'admit') {
			admitted.add(message.to);
			return;
		}
		if (message.invite !== invite || signer !== message.device) return;
		if (admitted.has(message.device)) return;
		admit(message, admitted);
	};
}

/** What a member device needs to admit a joiner to one conversation. */
export interface Admitter {
	/** The conversation's vault entry (its current generation and key). */
	entry: ConversationEntry;
	/** Stands in for an entry's creator where it was not recorded. */
	creator: string;
	/** Whether the invitation is still live in the conversation (asked again now). */
	stillInvited(invite: string): boolean;
	/** Records the joiner as a member of the conversation. */
	addMember(member: Omit<MemberAddOp, 'v' | 'id' | 'hlc' | 'type' | 'role'>): Promise<void>;
	/** Posts a message in the invite room. */
	post(plaintext: Uint8Array): Promise<void>;
}

/**
 * Member side: admits the joiner of `request` (see joinRequestWatcher): if
 * the invitation is still live and the request checks out (a certified
 * device of the user it names, not expired), records them as a member, then
 * posts the admission sealed to their device. Throws what verifyJoinRequest
 * throws; does nothing for a device in `admitted` (added here).
 */
export async function admitJoinRequest(
	request: JoinRequest,
	admitted: Set<string>,
	admitter: Admitter
): Promise<void> {
	if (!admitter.stillInvited(request.invite)) return;
	await verifyJoinRequest(request);
	if (admitted.has(request.device)) return;
	admitted.add(request.device);
	await admitter.addMember({
		user: request.user,
		devices: [request.device],
		name: request.name,
		ssk: request.ssk,
		certs: [request.deviceCert],
		invite: request.invite as string as OpId
	});
	const secret = admissionSecret(admitter.entry, admitter.creator);
	if (!secret) return;
	await admitter.post(encodeInviteMessage(await sealAdmission(request, secret)));
}

/**
 * What an admission to `entry` gives the joiner: its current generation and
 * key (null when this device does not hold that key). `creator` stands in
 * for entries from before the creator was recorded.
 */
export function admissionSecret(entry: ConversationEntry, creator: string): AdmissionSecret | null {
	const key = entry.keys.get(entry.epoch);
	if (!key) return null;
	const opener = entry.generations?.get(entry.epoch)?.opener;
	return {
		conversation: {
			id: entry.id,
			name: entry.name.slice(0, MAX_CONVERSATION_NAME_LENGTH),
			kind: entry.kind,
			roomId: entry.roomId,
			epoch: entry.epoch,
			key: toBase64Url(key),
			creator: (entry.creator ?? creator) as AdmissionSecret['conversation']['creator'],
			createdAt: entry.createdAt,
			...(opener ? { opener: opener as AdmissionSecret['conversation']['creator'] } : {})
		}
	};
}

/**
 * `signer` is the device that signed the admission. One from another device
 * than the inviter's keeps the invitation with the entry: until the
 * conversation shows it recorded by the inviter's device, nothing proves it is
 * the conversation the inviter shared.
 */
export function admittedEntry(
	secret: AdmissionSecret,
	invitation: Pick<Invitation, 'id' | 'inviter'>,
	signer: string
): ConversationEntry {
	const c = secret.conversation;
	return {
		id: c.id as ConversationId,
		name: c.name,
		kind: c.kind,
		roomId: c.roomId,
		epoch: c.epoch,
		keys: new Map([[c.epoch, fromBase64Url(c.key) as SecretKey]]),
		createdAt: c.createdAt,
		generations: new Map([[c.epoch, { room: c.roomId, opener: c.opener ?? null }]]),
		creator: c.creator,
		...(signer === invitation.inviter.device
			? {}
			: {
					invite: {
						id: invitation.id as string,
						device: invitation.inviter.device,
						inviter: invitation.inviter.name
					}
				})
	};
}
