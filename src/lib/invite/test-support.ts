/** Helpers shared by the invite tests. Test-only; nothing in the app imports it. */
import {
	concatBytes,
	createSigner,
	ed25519PublicKey,
	newSigningSeed,
	toBase64Url,
	utf8Encode,
	type Signer
} from '../crypto';
import { createInvitation, INVITE_CONTEXT, type CreateInvitationOptions } from './invitation';

export const NOW = 1_800_000_000_000;
export const APP_URL = 'https://kith.example';

export async function newSigner(): Promise<Signer> {
	return createSigner(newSigningSeed());
}

export function newUserId(): string {
	return toBase64Url(ed25519PublicKey(newSigningSeed()));
}

export async function makeInvite(options: Partial<CreateInvitationOptions> = {}) {
	return createInvitation({
		signer: await newSigner(),
		inviterUser: newUserId(),
		inviterName: 'Ada',
		conversationName: 'Book club',
		appUrl: APP_URL,
		now: NOW,
		...options
	});
}

/** The three dot-separated parts of a link's fragment. */
export function fragmentParts(link: string): [string, string, string] {
	const parts = link.slice(link.indexOf('#') + 1).split('.');
	if (parts.length !== 3) throw new Error('not an invite link');
	return parts as [string, string, string];
}

/** A fragment from parts, signing `json` with `signer` (a forger's, or the real one). */
export async function signedFragment(
	json: string,
	signer: Signer,
	secretPart: string
): Promise<string> {
	const bytes = utf8Encode(json);
	const signature = await signer.sign(concatBytes(INVITE_CONTEXT, bytes));
	return `${toBase64Url(bytes)}.${toBase64Url(signature)}.${secretPart}`;
}
