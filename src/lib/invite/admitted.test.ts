import { describe, expect, it } from 'vitest';
import {
	newRoomId,
	newSecretKey,
	toBase64Url,
	type ConversationId,
	type RoomId,
	type SecretKey
} from '../crypto';
import { createAccount } from '../identity';
import type { ConversationEntry } from '../vault';
import {
	admissionSecret,
	admitJoinRequest,
	admittedEntry,
	joinRequest,
	joinRequestWatcher
} from './admitted';
import {
	decodeInviteMessage,
	encodeInviteMessage,
	openAdmission,
	sealAdmission,
	verifyJoinRequest,
	type Admission,
	type InviteMessage,
	type JoinRequest
} from './messages';
import { makeInvite, NOW } from './test-support';

function entry(overrides: Partial<ConversationEntry> = {}): ConversationEntry {
	const roomId = newRoomId();
	return {
		id: roomId as string as ConversationId,
		name: 'Book club',
		kind: 'group',
		roomId,
		epoch: 2,
		keys: new Map<number, SecretKey>([[2, newSecretKey()]]),
		createdAt: NOW - 1000,
		...overrides
	};
}

describe('the steps of a join', async () => {
	const { invitation } = await makeInvite();
	const joiner = (await createAccount({ now: NOW })).keyring;
	const other = (await createAccount({ now: NOW })).keyring;
	const member = (await createAccount({ now: NOW })).keyring;

	describe('joinRequest', () => {
		it('is a request every member accepts, and survives the invite room', async () => {
			const request = joinRequest(joiner.identity, invitation.id, 'Grace');
			await expect(verifyJoinRequest(request)).resolves.toMatchObject({ type: 'device' });
			expect(decodeInviteMessage(encodeInviteMessage(request))).toEqual(request);
			expect(request).toMatchObject({
				invite: invitation.id,
				user: joiner.identity.userId,
				device: joiner.identity.deviceId,
				name: 'Grace'
			});
		});

		it('names a joiner without a name "Someone", and cuts a long name to 64 characters', () => {
			expect(joinRequest(joiner.identity, invitation.id, '').name).toBe('Someone');
			expect(joinRequest(joiner.identity, invitation.id, 'x'.repeat(80)).name).toBe('x'.repeat(64));
		});
	});

	describe('joinRequestWatcher', () => {
		const requestOf = (keyring: typeof joiner): JoinRequest =>
			joinRequest(keyring.identity, invitation.id, 'Grace');
		const admissionTo = (device: string): Admission => ({
			type: 'admit',
			v: 1,
			invite: invitation.id,
			to: device as Admission['to'],
			box: 'AAAA'
		});

		function watch() {
			const asked: string[] = [];
			const hear = joinRequestWatcher(invitation.id, (request, admitted) => {
				asked.push(request.device);
				admitted.add(request.device);
			});
			return { asked, hear: (message: InviteMessage, signer: string) => hear(message, signer) };
		}

		it('hands over a request once per device', () => {
			const { asked, hear } = watch();
			const request = requestOf(joiner);
			hear(request, request.device);
			hear(request, request.device);
			const second = requestOf(other);
			hear(second, second.device);
			expect(asked).toEqual([joiner.identity.deviceId, other.identity.deviceId]);
		});

		it('ignores requests for another invitation, or signed by another device than they name', () => {
			const { asked, hear } = watch();
			const request = requestOf(joiner);
			hear({ ...request, invite: 'another-invitation' as JoinRequest['invite'] }, request.device);
			hear(request, other.identity.deviceId);
			expect(asked).toEqual([]);
		});

		it('leaves alone a device some member already admitted', () => {
			const { asked, hear } = watch();
			hear(admissionTo(joiner.identity.deviceId), member.identity.deviceId);
			const request = requestOf(joiner);
			hear(request, request.device);
			expect(asked).toEqual([]);
		});
	});

	describe('admitJoinRequest', () => {
		function admitter(live: boolean) {
			const members: string[] = [];
			const posted: Uint8Array[] = [];
			const held = entry({ creator: member.identity.userId });
			return {
				members,
				posted,
				held,
				admitter: {
					entry: held,
					creator: member.identity.userId,
					stillInvited: (invite: string) => live && invite === invitation.id,
					addMember: async (m: { user: string; devices: string[] }) => {
						members.push(`${m.user}/${m.devices.join(',')}`);
					},
					post: async (plaintext: Uint8Array) => {
						posted.push(plaintext);
					}
				}
			};
		}

		it('records the joiner as a member, then posts an admission only their device opens, once', async () => {
			const request = joinRequest(joiner.identity, invitation.id, 'Grace');
			const { members, posted, held, admitter: a } = admitter(true);
			const admitted = new Set<string>();
			await admitJoinRequest(request, admitted, a);
			await admitJoinRequest(request, admitted, a);
			expect(members).toEqual([`${joiner.identity.userId}/${joiner.identity.deviceId}`]);
			expect(posted).toHaveLength(1);
			const admission = decodeInviteMessage(posted[0]!);
			expect(admission.type).toBe('admit');
			const opened = await openAdmission(admission as Admission, joiner.dhSecret, invitation.id);
			expect(opened.conversation.roomId).toBe(held.roomId);
		});

		it('does nothing for a revoked invitation', async () => {
			const { members, posted, admitter: a } = admitter(false);
			await admitJoinRequest(joinRequest(joiner.identity, invitation.id, 'G'), new Set(), a);
			expect(members).toEqual([]);
			expect(posted).toEqual([]);
		});

		it('refuses a request whose certificates do not hold, admitting nobody', async () => {
			const request = joinRequest(joiner.identity, invitation.id, 'Grace');
			// Another account's device certificate: not a device of the user the request names.
			const forged = { ...request, deviceCert: other.identity.deviceCert };
			const { members, posted, admitter: a } = admitter(true);
			await expect(admitJoinRequest(forged, new Set(), a)).rejects.toThrow();
			expect(members).toEqual([]);
			expect(posted).toEqual([]);
		});
	});

	describe('admissionSecret', () => {
		it('gives the current generation and its key, which the joiner turns into the same entry', async () => {
			const held = entry({
				creator: member.identity.userId,
				generations: new Map([
					[2, { room: newRoomId() as RoomId, opener: member.identity.deviceId }]
				])
			});
			const secret = admissionSecret(held, 'unused');
			expect(secret?.conversation).toMatchObject({
				id: held.id,
				roomId: held.roomId,
				epoch: 2,
				key: toBase64Url(held.keys.get(2) as SecretKey),
				creator: member.identity.userId,
				opener: member.identity.deviceId
			});
			const request = joinRequest(joiner.identity, invitation.id, 'Grace');
			const admission = await sealAdmission(request, secret!);
			const opened = await openAdmission(admission, joiner.dhSecret, invitation.id);
			const joined = admittedEntry(opened, invitation, invitation.inviter.device);
			expect(joined).toMatchObject({ id: held.id, roomId: held.roomId, epoch: 2 });
			expect(joined.keys.get(2)).toEqual(held.keys.get(2));
		});

		it('names the stand-in creator for an entry from before creators were kept, and no opener for a first generation', () => {
			const secret = admissionSecret(entry({ name: 'n'.repeat(150) }), member.identity.userId);
			expect(secret?.conversation.creator).toBe(member.identity.userId);
			expect(secret?.conversation.name).toBe('n'.repeat(100));
			expect(secret?.conversation).not.toHaveProperty('opener');
		});

		it('is null when this device does not hold the current key', () => {
			expect(admissionSecret(entry({ keys: new Map() }), member.identity.userId)).toBeNull();
		});
	});
});
