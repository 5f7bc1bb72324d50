import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
	concatBytes,
	fromBase64Url,
	newRoomId,
	newSecretKey,
	toBase64Url,
	utf8Decode,
	utf8Encode,
	type ConversationId,
	type UserId
} from '../crypto';
import { createAccount, type UnlockedKeyring } from '../identity';
import { InviteMessageError } from './errors';
import { openLockbox, sealLockbox } from './lockbox';
import {
	ADMISSION_CONTEXT,
	decodeInviteMessage,
	encodeInviteMessage,
	MAX_INVITE_MESSAGE_BYTES,
	openAdmission,
	sealAdmission,
	verifyJoinRequest,
	type AdmissionSecret,
	type JoinRequest
} from './messages';
import type { InviteId } from './schemas';
import { makeInvite, NOW } from './test-support';

/** The `reason` of the InviteMessageError `promise` fails with, or what happened instead. */
async function reasonOf(promise: Promise<unknown> | (() => unknown)): Promise<string> {
	try {
		await (typeof promise === 'function' ? promise() : promise);
	} catch (error) {
		const { name, reason } = error as { name: string; reason?: string };
		return name === InviteMessageError.NAME ? (reason ?? 'no reason') : `other: ${name}`;
	}
	return 'resolved';
}

function joinRequest(joiner: UnlockedKeyring, invite: InviteId): JoinRequest {
	const { identity } = joiner;
	return {
		type: 'join',
		v: 1,
		invite,
		user: identity.userId,
		device: identity.deviceId,
		dh: identity.dhPublic,
		name: 'Grace',
		ssk: identity.sskCert,
		deviceCert: identity.deviceCert,
		at: NOW
	};
}

function admissionSecret(creator: UserId): AdmissionSecret {
	const roomId = newRoomId();
	return {
		conversation: {
			id: roomId as string as ConversationId,
			name: 'Book club',
			kind: 'group',
			roomId,
			epoch: 3,
			key: toBase64Url(newSecretKey()),
			creator,
			createdAt: NOW - 1000
		}
	};
}

describe('invite-room messages', async () => {
	const { invitation } = await makeInvite();
	const joiner = (await createAccount({ now: NOW })).keyring;
	const member = (await createAccount({ now: NOW })).keyring;
	const request = joinRequest(joiner, invitation.id);
	const secret = admissionSecret(member.identity.userId);

	describe('encode / decode', () => {
		it('round-trips a join request and an admission as UTF-8 JSON', async () => {
			const admission = await sealAdmission(request, secret);
			for (const message of [request, admission]) {
				const bytes = encodeInviteMessage(message);
				expect(JSON.parse(utf8Decode(bytes))).toEqual(message);
				expect(decodeInviteMessage(bytes)).toEqual(message);
			}
		});

		it('refuses unknown keys, wrong types, versions and shapes', async () => {
			const admission = await sealAdmission(request, secret);
			for (const bad of [
				{ ...request, extra: 1 },
				{ ...request, v: 2 },
				{ ...request, type: 'joinx' },
				{ ...request, name: '' },
				{ ...request, name: 'x'.repeat(65) },
				{ ...request, dh: request.dh.slice(1) },
				{ ...request, at: -1 },
				{ ...request, ssk: { ...request.ssk, extra: 'x' } },
				{ ...admission, to: 'x' },
				{ ...admission, box: `${admission.box}=` },
				{ ...admission, box: '' },
				{ ...admission, invite: request.device },
				null,
				[],
				'join'
			]) {
				expect(await reasonOf(() => decodeInviteMessage(utf8Encode(JSON.stringify(bad))))).toBe(
					'malformed'
				);
				expect(await reasonOf(() => encodeInviteMessage(bad as JoinRequest))).toBe('malformed');
			}
		});

		it('refuses bytes that are not UTF-8 JSON, and oversized messages', async () => {
			expect(await reasonOf(() => decodeInviteMessage(new Uint8Array([0xff])))).toBe('malformed');
			expect(await reasonOf(() => decodeInviteMessage(utf8Encode('{"type":')))).toBe('malformed');
			expect(
				await reasonOf(() => decodeInviteMessage(new Uint8Array(MAX_INVITE_MESSAGE_BYTES + 1)))
			).toBe('too-large');
			const huge = {
				...request,
				ssk: { ...request.ssk, body: 'x'.repeat(MAX_INVITE_MESSAGE_BYTES) }
			};
			expect(await reasonOf(() => encodeInviteMessage(huge))).toBe('too-large');
		});

		it('throws only InviteMessageError on random bytes and random JSON', async () => {
			await fc.assert(
				fc.asyncProperty(
					fc.oneof(
						fc.uint8Array({ maxLength: 300 }),
						fc.json().map(utf8Encode),
						fc
							.record({ type: fc.constantFrom('join', 'admit'), v: fc.constant(1) })
							.chain((head) =>
								fc.dictionary(fc.string(), fc.jsonValue()).map((rest) => ({ ...rest, ...head }))
							)
							.map((value) => utf8Encode(JSON.stringify(value)))
					),
					async (bytes) => {
						expect(await reasonOf(() => decodeInviteMessage(bytes))).not.toMatch(/^other|resolved/);
					}
				),
				{ numRuns: 300 }
			);
		});

		it('throws only InviteMessageError on mutated valid messages', async () => {
			const admission = await sealAdmission(request, secret);
			const valid = [encodeInviteMessage(request), encodeInviteMessage(admission)];
			await fc.assert(
				fc.asyncProperty(
					fc.constantFrom(...valid),
					fc.nat(),
					fc.integer({ min: 0, max: 255 }),
					async (bytes, at, value) => {
						const mutated = bytes.slice();
						mutated[at % mutated.length] = value;
						const outcome = await reasonOf(() => decodeInviteMessage(mutated));
						expect(outcome).not.toMatch(/^other/);
					}
				),
				{ numRuns: 300 }
			);
		});
	});

	describe('verifyJoinRequest', () => {
		it('accepts a request whose certificates chain to its user and certify its keys', async () => {
			const body = await verifyJoinRequest(request);
			expect(body).toMatchObject({ user: request.user, device: request.device, dh: request.dh });
		});

		it("refuses certificates of another user's account", async () => {
			const other = (await createAccount({ now: NOW })).keyring.identity;
			expect(await reasonOf(verifyJoinRequest({ ...request, ssk: other.sskCert }))).toBe(
				'bad-certificate'
			);
			expect(await reasonOf(verifyJoinRequest({ ...request, deviceCert: other.deviceCert }))).toBe(
				'bad-certificate'
			);
			expect(await reasonOf(verifyJoinRequest({ ...request, user: other.userId }))).toBe(
				'bad-certificate'
			);
		});

		it('refuses a certificate with an altered body or signature', async () => {
			const body = request.deviceCert.body.replace('"issued":', '"issued":1');
			expect(
				await reasonOf(
					verifyJoinRequest({ ...request, deviceCert: { ...request.deviceCert, body } })
				)
			).toBe('bad-certificate');
			const signature = toBase64Url(
				fromBase64Url(request.ssk.signature).map((b, i) => (i ? b : b ^ 1))
			);
			expect(
				await reasonOf(verifyJoinRequest({ ...request, ssk: { ...request.ssk, signature } }))
			).toBe('bad-certificate');
		});

		it('refuses keys other than the certified ones', async () => {
			const other = (await createAccount({ now: NOW })).keyring.identity;
			expect(await reasonOf(verifyJoinRequest({ ...request, dh: other.dhPublic }))).toBe(
				'key-mismatch'
			);
			expect(await reasonOf(verifyJoinRequest({ ...request, device: other.deviceId }))).toBe(
				'key-mismatch'
			);
		});
	});

	describe('sealAdmission / openAdmission', () => {
		it('hands the joiner the admission secret, to its device, for its invitation', async () => {
			const admission = await sealAdmission(request, secret);
			expect(admission).toMatchObject({
				type: 'admit',
				v: 1,
				invite: invitation.id,
				to: joiner.identity.deviceId
			});
			expect(await openAdmission(admission, joiner.dhSecret, invitation.id)).toEqual(secret);
		});

		it('seals with context "kith/admission\\0" || invite id', async () => {
			const admission = await sealAdmission(request, secret);
			const context = concatBytes(
				utf8Encode('kith/admission'),
				new Uint8Array([0]),
				utf8Encode(invitation.id)
			);
			expect(ADMISSION_CONTEXT).toEqual(utf8Encode('kith/admission\0'));
			const plaintext = await openLockbox(joiner.dhSecret, fromBase64Url(admission.box), context);
			expect(JSON.parse(utf8Decode(plaintext))).toEqual(secret);
		});

		it('does not open on another device', async () => {
			const admission = await sealAdmission(request, secret);
			expect(await reasonOf(openAdmission(admission, member.dhSecret, invitation.id))).toBe(
				'cannot-open'
			);
		});

		it('does not open for another invitation, even when relabelled', async () => {
			const admission = await sealAdmission(request, secret);
			const { invitation: other } = await makeInvite();
			expect(await reasonOf(openAdmission(admission, joiner.dhSecret, other.id))).toBe(
				'wrong-invite'
			);
			expect(
				await reasonOf(openAdmission({ ...admission, invite: other.id }, joiner.dhSecret, other.id))
			).toBe('cannot-open');
		});

		it('does not open an altered box', async () => {
			const admission = await sealAdmission(request, secret);
			const box = fromBase64Url(admission.box);
			box[box.length - 1] = (box[box.length - 1] as number) ^ 1;
			expect(
				await reasonOf(
					openAdmission({ ...admission, box: toBase64Url(box) }, joiner.dhSecret, invitation.id)
				)
			).toBe('cannot-open');
		});

		it('refuses a box whose content is not an admission secret', async () => {
			const context = concatBytes(ADMISSION_CONTEXT, utf8Encode(invitation.id));
			const dh = fromBase64Url(joiner.identity.dhPublic);
			for (const content of [
				'not json',
				'{"conversation":{}}',
				JSON.stringify({ ...secret, x: 1 })
			]) {
				const box = await sealLockbox(dh, utf8Encode(content), context);
				const admission = {
					type: 'admit' as const,
					v: 1 as const,
					invite: invitation.id,
					to: joiner.identity.deviceId,
					box: toBase64Url(box)
				};
				expect(await reasonOf(openAdmission(admission, joiner.dhSecret, invitation.id))).toBe(
					'malformed'
				);
			}
		});

		it('refuses to seal to an unverified request or an invalid secret', async () => {
			const other = (await createAccount({ now: NOW })).keyring.identity;
			expect(await reasonOf(sealAdmission({ ...request, dh: other.dhPublic }, secret))).toBe(
				'key-mismatch'
			);
			expect(await reasonOf(sealAdmission({ ...request, ssk: other.sskCert }, secret))).toBe(
				'bad-certificate'
			);
			const bad = { conversation: { ...secret.conversation, epoch: -1 } };
			expect(await reasonOf(sealAdmission(request, bad))).toBe('malformed');
			const badKey = { conversation: { ...secret.conversation, key: 'AAAA' } };
			expect(await reasonOf(sealAdmission(request, badKey))).toBe('malformed');
		});
	});
});
