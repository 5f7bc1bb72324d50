/**
 * Cross-signing, as in Matrix: the master key certifies a self-signing key
 * (SSK), which certifies each device's signing key (Ed25519) and key-agreement
 * key (X25519). Removing a device later rotates the SSK, so a removed device
 * can certify nothing. A certificate is canonical JSON (fixed key order) plus
 * an Ed25519 signature over "kith/cert\0" || that JSON.
 *
 * The master key can be replaced ("Make a new recovery key"): the old master
 * signs a master certificate naming its successor, and a self-signing
 * certificate signed by a successor carries the chain of master
 * certificates from the user id (the first master key) to its signer. The
 * user id never changes; the old recovery key certifies nothing that
 * counts from then on (`compareSsk`).
 */
import { z } from 'zod';
import {
	concatBytes,
	fromBase64Url,
	toBase64Url,
	utf8Encode,
	verifySignature,
	type Signer
} from '../crypto';

const CONTEXT = utf8Encode('kith/cert\0');
const b64 = z.string().regex(/^[A-Za-z0-9_-]+$/);

export const Certificate = z.object({
	body: z.string(),
	signer: b64,
	signature: b64
});
export type Certificate = z.infer<typeof Certificate>;

/** More master keys than an account could make: a bound on what is verified. */
export const MAX_MASTERS = 64;

/** A master key's successor, signed by the master key it replaces. */
export const MasterCertBody = z.object({
	v: z.literal(1),
	type: z.literal('master'),
	user: b64,
	key: b64,
	issued: z.number().int().nonnegative()
});
export type MasterCertBody = z.infer<typeof MasterCertBody>;

export const SskCertBody = z.object({
	v: z.literal(1),
	type: z.literal('ssk'),
	user: b64,
	key: b64,
	issued: z.number().int().nonnegative(),
	/** Master certificates from the user id to this certificate's signer; absent while the first master signs. */
	masters: z.array(Certificate).min(1).max(MAX_MASTERS).optional()
});
export type SskCertBody = z.infer<typeof SskCertBody>;

export const DeviceCertBody = z.object({
	v: z.literal(1),
	type: z.literal('device'),
	user: b64,
	device: b64,
	dh: b64,
	issued: z.number().int().nonnegative()
});
export type DeviceCertBody = z.infer<typeof DeviceCertBody>;

export async function certify(
	body: SskCertBody | DeviceCertBody | MasterCertBody,
	signer: Signer
): Promise<Certificate> {
	// Canonical: the schema's key order, no whitespace.
	const json =
		body.type === 'ssk'
			? JSON.stringify(SskCertBody.parse(body))
			: body.type === 'master'
				? JSON.stringify(MasterCertBody.parse(body))
				: JSON.stringify(DeviceCertBody.parse(body));
	const signature = await signer.sign(concatBytes(CONTEXT, utf8Encode(json)));
	return { body: json, signer: toBase64Url(signer.publicKey), signature: toBase64Url(signature) };
}

export class CertificateError extends Error {
	static readonly NAME = 'CertificateError';
	override name = CertificateError.NAME;
}

async function checkSignature(cert: Certificate, expectedSigner: string): Promise<unknown> {
	if (cert.signer !== expectedSigner)
		throw new CertificateError('certificate has the wrong signer');
	const ok = await verifySignature(
		fromBase64Url(cert.signer),
		concatBytes(CONTEXT, utf8Encode(cert.body)),
		fromBase64Url(cert.signature)
	);
	if (!ok) throw new CertificateError('certificate signature does not verify');
	return JSON.parse(cert.body);
}

/**
 * Verify a self-signing key's certificate for `userId`: signed by the first
 * master key (= user id), or by a successor that the chain of master
 * certificates it carries leads to, each signed by the master before it.
 */
export async function verifySskCert(userId: string, ssk: Certificate): Promise<SskCertBody> {
	let claimed: SskCertBody;
	try {
		claimed = SskCertBody.parse(JSON.parse(ssk.body));
	} catch {
		throw new CertificateError('SSK certificate is malformed');
	}
	const master = await verifyMasters(userId, claimed.masters ?? []);
	const sskBody = SskCertBody.parse(await checkSignature(ssk, master));
	if (sskBody.user !== userId) throw new CertificateError('SSK certificate is for another user');
	return sskBody;
}

/**
 * Verify a chain of master certificates from `userId` (the first master
 * key), each signed by the master key before it; returns the last master key.
 */
export async function verifyMasters(
	userId: string,
	chain: readonly Certificate[]
): Promise<string> {
	if (chain.length > MAX_MASTERS) throw new CertificateError('too many master certificates');
	let master = userId;
	let since = 0;
	for (const link of chain) {
		const body = MasterCertBody.parse(await checkSignature(link, master));
		if (body.user !== userId) throw new CertificateError('master certificate is for another user');
		if (body.issued < since) throw new CertificateError('master certificates are out of order');
		master = body.key;
		since = body.issued;
	}
	return master;
}

/** The master certificates a self-signing certificate carries (none while the first master signs). */
export function masterChain(cert: Certificate): Certificate[] {
	try {
		return SskCertBody.parse(JSON.parse(cert.body)).masters ?? [];
	} catch {
		return [];
	}
}

/**
 * The master keys a chain of master certificates names, the user id first.
 * Checks that each link names the user and is signed by the key before it,
 * not the signatures (verifyMasters does). Throws CertificateError.
 */
export function chainKeys(userId: string, chain: readonly Certificate[]): string[] {
	const keys = [userId];
	for (const link of chain) {
		let body: MasterCertBody;
		try {
			body = MasterCertBody.parse(JSON.parse(link.body));
		} catch {
			throw new CertificateError('master certificate is malformed');
		}
		if (link.signer !== keys.at(-1) || body.user !== userId) {
			throw new CertificateError('a broken master chain');
		}
		keys.push(body.key);
	}
	return keys;
}

/** Every master key a self-signing certificate's chain names, the user id first (just it when broken). */
export function mastersOf(userId: string, cert: Certificate): string[] {
	try {
		return chainKeys(userId, masterChain(cert));
	} catch {
		return [userId];
	}
}

/** What ranks a self-signing key among a user's (`compareSsk`). */
export interface SskRank {
	key: string;
	issued: number;
	/** Each master certificate of its chain: the successor's key and when it was issued. */
	masters: ReadonlyArray<{ key: string; issued: number }>;
}

/** A (verified) self-signing certificate body's rank. */
export function sskRank(body: SskCertBody): SskRank {
	return {
		key: body.key,
		issued: body.issued,
		masters: (body.masters ?? []).map((link) => {
			const { key, issued } = MasterCertBody.parse(JSON.parse(link.body));
			return { key, issued };
		})
	};
}

/**
 * Which of two self-signing keys of one user is current (> 0: `a`): the
 * one under the newer master key, then the later issued, then the greater
 * key. Newer master: where the chains first differ, the master certificate
 * issued first (then the lesser key) wins, so a second successor signed
 * later with a replaced key loses; a chain that extends the other wins
 * over it. So once a master key is replaced, a self-signing key it signs
 * counts for nothing, whatever time it claims. The order depends only on
 * the certificates, never on which arrived first.
 */
export function compareSsk(a: SskRank, b: SskRank): number {
	const shared = Math.min(a.masters.length, b.masters.length);
	for (let i = 0; i < shared; i++) {
		const x = a.masters[i] as { key: string; issued: number };
		const y = b.masters[i] as { key: string; issued: number };
		if (x.issued !== y.issued) return x.issued < y.issued ? 1 : -1;
		if (x.key !== y.key) return x.key < y.key ? 1 : -1;
	}
	if (a.masters.length !== b.masters.length) return a.masters.length - b.masters.length;
	if (a.issued !== b.issued) return a.issued - b.issued;
	return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** Verify a device chain: master (= user id) → SSK → device. Returns the device body. */
export async function verifyDeviceChain(
	userId: string,
	ssk: Certificate,
	device: Certificate
): Promise<DeviceCertBody> {
	const sskBody = await verifySskCert(userId, ssk);
	const deviceBody = DeviceCertBody.parse(await checkSignature(device, sskBody.key));
	if (deviceBody.user !== userId)
		throw new CertificateError('device certificate is for another user');
	return deviceBody;
}

/** The key a self-signing certificate names (null when it cannot be read; not a verification). */
export function sskCertKey(cert: Certificate | undefined): string | null {
	if (!cert) return null;
	try {
		return SskCertBody.parse(JSON.parse(cert.body)).key;
	} catch {
		return null;
	}
}
