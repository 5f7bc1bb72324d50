/**
 * The vault entry of a conversation an opened admission lets this account
 * into (the app's and the `kith` peer's joins alike).
 */
import { fromBase64Url, type ConversationId, type SecretKey } from '../crypto';
import type { ConversationEntry } from '../vault';
import type { Invitation } from './invitation';
import type { AdmissionSecret } from './messages';

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
