import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
	concatBytes,
	fromBase64Url,
	isRoomId,
	randomBytes,
	toBase64Url,
	utf8Decode,
	utf8Encode,
	verifySignature
} from '../crypto';
import { nameOf } from '../crypto/test-support';
import { InvalidInviteError, InviteExpiredError } from './errors';
import { deriveInviteRoom } from './invite-room';
import {
	DEFAULT_INVITE_TTL_MS,
	Invitation,
	MAX_INVITE_FRAGMENT_LENGTH,
	MAX_INVITE_TTL_MS,
	parseInviteLink
} from './invitation';
import { APP_URL, fragmentParts, makeInvite, newSigner, NOW, signedFragment } from './test-support';

const LINK_ERRORS = [InvalidInviteError.NAME, InviteExpiredError.NAME];

/** The `reason` of the InvalidInviteError a parse fails with, or the error's name otherwise. */
async function refusal(promise: Promise<unknown>): Promise<string> {
	try {
		await promise;
	} catch (error) {
		const { name, reason } = error as { name: string; reason?: string };
		return name === InvalidInviteError.NAME ? `${name}:${reason}` : name;
	}
	return 'resolved';
}

describe('createInvitation', () => {
	it('makes <appUrl>/join#json.signature.secret, signed by the device over "kith/invite\\0" || json', async () => {
		const signer = await newSigner();
		const { link, invitation, secret } = await makeInvite({ signer });
		expect(link.startsWith(`${APP_URL}/join#`)).toBe(true);
		const [json, signature, secretPart] = fragmentParts(link);
		const jsonBytes = fromBase64Url(json);
		expect(JSON.parse(utf8Decode(jsonBytes))).toEqual(invitation);
		// Canonical: the schema's key order, no whitespace.
		expect(utf8Decode(jsonBytes)).toBe(JSON.stringify(Invitation.parse(invitation)));
		expect(Object.keys(invitation)).toEqual([
			'v',
			'id',
			'conversation',
			'inviter',
			'expires',
			'room'
		]);
		expect(fromBase64Url(secretPart)).toEqual(secret);
		expect(secret.length).toBe(32);
		expect(
			await verifySignature(
				signer.publicKey,
				concatBytes(utf8Encode('kith/invite'), new Uint8Array([0]), jsonBytes),
				fromBase64Url(signature)
			)
		).toBe(true);
	});

	it('fills the invitation: random id, inviter device, expiry after 7 days, the invite room', async () => {
		const signer = await newSigner();
		const { invitation, secret } = await makeInvite({ signer });
		expect(invitation.v).toBe(1);
		expect(invitation.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
		expect(invitation.inviter.device).toBe(toBase64Url(signer.publicKey));
		expect(invitation.inviter.name).toBe('Ada');
		expect(invitation.conversation.name).toBe('Book club');
		expect(invitation.expires).toBe(NOW + DEFAULT_INVITE_TTL_MS);
		expect(DEFAULT_INVITE_TTL_MS).toBe(7 * 24 * 3600 * 1000);
		expect(isRoomId(invitation.room)).toBe(true);
		expect(invitation.room).toBe((await deriveInviteRoom(secret)).roomId);
		const other = await makeInvite({ signer });
		expect(other.invitation.id).not.toBe(invitation.id);
		expect(other.secret).not.toEqual(secret);
	});

	it('keeps the app path, drops a trailing slash, query and fragment of appUrl', async () => {
		expect((await makeInvite({ appUrl: 'https://kith.example/' })).link).toMatch(
			/^https:\/\/kith\.example\/join#[^#]+$/
		);
		expect((await makeInvite({ appUrl: 'http://localhost:5173/app/?x=1#y' })).link).toMatch(
			/^http:\/\/localhost:5173\/app\/join#[^#]+$/
		);
	});

	it('trims names and cuts them to 100 / 64 characters without splitting a character', async () => {
		const { invitation } = await makeInvite({
			conversationName: `  ${'x'.repeat(99)}😀 tail`,
			inviterName: '😀'.repeat(40)
		});
		expect(invitation.conversation.name).toBe('x'.repeat(99));
		expect(invitation.inviter.name).toBe('😀'.repeat(32));
	});

	it('refuses unusable options with RangeError', async () => {
		for (const options of [
			{ ttlMs: 0 },
			{ ttlMs: -1 },
			{ ttlMs: 1.5 },
			{ ttlMs: MAX_INVITE_TTL_MS + 1 },
			{ ttlMs: Number.NaN },
			{ appUrl: 'kith.example' },
			{ appUrl: 'javascript:alert(1)' },
			{ inviterUser: 'not-a-user' },
			{ conversationName: '   ' },
			{ inviterName: '' },
			{ now: Number.NaN }
		]) {
			expect(await nameOf(makeInvite(options))).toBe('RangeError');
		}
	});
});

describe('parseInviteLink', () => {
	it('reads back the invitation and secret from the link, the fragment, or "#fragment"', async () => {
		const { link, invitation, secret } = await makeInvite();
		const fragment = link.slice(link.indexOf('#') + 1);
		for (const input of [link, fragment, `#${fragment}`, `  ${link}\n`]) {
			const parsed = await parseInviteLink(input, NOW);
			expect(parsed.invitation).toEqual(invitation);
			expect(parsed.secret).toEqual(secret);
		}
	});

	it('accepts the link until its expiry, then throws InviteExpiredError', async () => {
		const { link, invitation } = await makeInvite({ ttlMs: 60_000 });
		await expect(parseInviteLink(link, invitation.expires - 1)).resolves.toBeTruthy();
		const error = await parseInviteLink(link, invitation.expires).catch((e) => e);
		expect(error).toMatchObject({
			name: InviteExpiredError.NAME,
			message: 'This invite link has expired. Ask for a new one.',
			expires: invitation.expires
		});
	});

	it('refuses an invitation whose JSON was altered (the signature no longer matches)', async () => {
		const { link } = await makeInvite();
		const [json, signature, secret] = fragmentParts(link);
		const altered = utf8Decode(fromBase64Url(json)).replace('Book club', 'Book clob');
		const fragment = `${toBase64Url(utf8Encode(altered))}.${signature}.${secret}`;
		expect(await refusal(parseInviteLink(fragment, NOW))).toBe('InvalidInviteError:bad-signature');
	});

	it('refuses an invitation re-signed by another device than the one it names', async () => {
		const { link } = await makeInvite();
		const [json, , secret] = fragmentParts(link);
		const forged = await signedFragment(utf8Decode(fromBase64Url(json)), await newSigner(), secret);
		expect(await refusal(parseInviteLink(forged, NOW))).toBe('InvalidInviteError:bad-signature');
	});

	it('refuses a forged invitation as forged, not as expired, even after its expiry', async () => {
		const { link, invitation } = await makeInvite();
		const [json, , secret] = fragmentParts(link);
		const forged = await signedFragment(utf8Decode(fromBase64Url(json)), await newSigner(), secret);
		expect(await refusal(parseInviteLink(forged, invitation.expires + 1))).toBe(
			'InvalidInviteError:bad-signature'
		);
	});

	it('refuses a link whose secret was replaced', async () => {
		const { link } = await makeInvite();
		const [json, signature] = fragmentParts(link);
		const fragment = `${json}.${signature}.${toBase64Url(randomBytes(32))}`;
		expect(await refusal(parseInviteLink(fragment, NOW))).toBe('InvalidInviteError:wrong-secret');
	});

	it('refuses a validly signed invitation that does not fit the schema', async () => {
		const signer = await newSigner();
		const { invitation, link } = await makeInvite({ signer });
		const [, , secret] = fragmentParts(link);
		for (const body of [
			{ ...invitation, extra: true },
			{ ...invitation, v: 2 },
			{ ...invitation, expires: 1.5 },
			{ ...invitation, conversation: { name: '' } },
			{ ...invitation, inviter: { ...invitation.inviter, name: 'x'.repeat(65) } },
			{ ...invitation, id: invitation.id + 'A' },
			{ ...invitation, room: 'short' }
		]) {
			const fragment = await signedFragment(JSON.stringify(body), signer, secret);
			expect(await refusal(parseInviteLink(fragment, NOW))).toBe(
				'InvalidInviteError:bad-invitation'
			);
		}
	});

	it('refuses overlong input before parsing it', async () => {
		const { link } = await makeInvite();
		const padded = `${link}${'A'.repeat(MAX_INVITE_FRAGMENT_LENGTH)}`;
		expect(await refusal(parseInviteLink(padded, NOW))).toBe('InvalidInviteError:too-long');
		expect(await refusal(parseInviteLink('x'.repeat(100_000), NOW))).toBe(
			'InvalidInviteError:too-long'
		);
	});

	it('gives the user a message they can act on', async () => {
		const error = await parseInviteLink('https://kith.example/join#nope', NOW).catch((e) => e);
		expect(error).toMatchObject({
			name: InvalidInviteError.NAME,
			message: 'This invite link is damaged or was not made by Kith.'
		});
	});

	it('refuses malformed fragments', async () => {
		const { link } = await makeInvite();
		const [json, signature, secret] = fragmentParts(link);
		for (const input of [
			'',
			'#',
			'https://kith.example/join',
			`${json}.${signature}`,
			`${json}.${signature}.${secret}.`,
			`${json}.${signature}.${secret}=`,
			`${json}.${signature}.${secret.slice(0, -1)}`,
			`${json}.${signature.slice(0, -2)}.${secret}`,
			`${json}.${signature}.${toBase64Url(randomBytes(31))}`,
			`${json}..${secret}`,
			`${toBase64Url(utf8Encode('not json'))}.${signature}.${secret}`,
			`${toBase64Url(new Uint8Array([0xff, 0xfe]))}.${signature}.${secret}`,
			`${json}.${signature.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'))}.${secret}`
		]) {
			expect(await nameOf(parseInviteLink(input, NOW))).toBe(InvalidInviteError.NAME);
		}
	});

	it('throws only InvalidInviteError or InviteExpiredError on random strings', async () => {
		const alphabet = fc.constantFrom(
			...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.#=/: '.split('')
		);
		await fc.assert(
			fc.asyncProperty(
				fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: alphabet })),
				async (input) => {
					expect(await nameOf(parseInviteLink(input, NOW))).toBe(InvalidInviteError.NAME);
				}
			),
			{ numRuns: 300 }
		);
	});

	it('throws only InvalidInviteError or InviteExpiredError on random dotted base64url triples', async () => {
		const part = fc.uint8Array({ maxLength: 120 }).map(toBase64Url);
		await fc.assert(
			fc.asyncProperty(part, part, part, async (a, b, c) => {
				expect(await nameOf(parseInviteLink(`${a}.${b}.${c}`, NOW))).toBe(InvalidInviteError.NAME);
			}),
			{ numRuns: 200 }
		);
	});

	it('refuses every one-character change inside the fragment', async () => {
		const { link } = await makeInvite();
		const start = link.indexOf('#') + 1;
		const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ';
		await fc.assert(
			fc.asyncProperty(
				fc.integer({ min: start, max: link.length - 1 }),
				fc.constantFrom(...chars.split('')),
				async (index, char) => {
					fc.pre(link[index] !== char);
					const mutated = link.slice(0, index) + char + link.slice(index + 1);
					const outcome = await nameOf(parseInviteLink(mutated, NOW));
					expect(outcome).toBe(InvalidInviteError.NAME);
				}
			),
			{ numRuns: 300 }
		);
	});

	it('throws only its two errors on mutated valid links (insert, delete, replace, cut)', async () => {
		const { link } = await makeInvite();
		const edit = fc.oneof(
			fc.record({ kind: fc.constant('insert'), at: fc.nat(), text: fc.string({ maxLength: 8 }) }),
			fc.record({
				kind: fc.constant('delete'),
				at: fc.nat(),
				length: fc.integer({ min: 1, max: 8 })
			}),
			fc.record({ kind: fc.constant('cut'), at: fc.nat(), length: fc.constant(0) })
		);
		await fc.assert(
			fc.asyncProperty(
				fc.array(edit, { minLength: 1, maxLength: 4 }),
				fc.nat(),
				async (edits, when) => {
					let mutated = link;
					for (const e of edits) {
						const at = e.at % (mutated.length + 1);
						if (e.kind === 'insert') mutated = mutated.slice(0, at) + e.text + mutated.slice(at);
						else if (e.kind === 'delete')
							mutated = mutated.slice(0, at) + mutated.slice(at + e.length);
						else mutated = mutated.slice(0, at);
					}
					const outcome = await nameOf(
						parseInviteLink(mutated, NOW + (when % (2 * DEFAULT_INVITE_TTL_MS)))
					);
					expect(['resolved', ...LINK_ERRORS]).toContain(outcome);
				}
			),
			{ numRuns: 300 }
		);
	});
});
