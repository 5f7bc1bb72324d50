/**
 * Cross-signing, as in Matrix: the master key certifies a self-signing key
 * (SSK), which certifies each device's signing key (Ed25519) and key-agreement
 * key (X25519). Removing a device later rotates the SSK, so a removed device
 * can certify nothing. A certificate is canonical JSON (fixed key order) plus
 * an Ed25519 signature over "kith/cert\0" || that JSON.
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

export const SskCertBody = z.object({
	v: z.literal(1),
	type: z.literal('ssk'),
	user: b64,
	key: b64,
	issued: z.number().int().nonnegative()
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

export const Certificate = z.object({
	body: z.string(),
	signer: b64,
	signature: b64
});
export type Certificate = z.infer<typeof Certificate>;

export async function certify(
	body: SskCertBody | DeviceCertBody,
	signer: Signer
): Promise<Certificate> {
	// Canonical: the schema's key order, no whitespace.
	const json =
		body.type === 'ssk'
			? JSON.stringify(SskCertBody.parse(body))
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

/** Verify a self-signing key's certificate: signed by the master key (= user id), for that user. */
export async function verifySskCert(userId: string, ssk: Certificate): Promise<SskCertBody> {
	const sskBody = SskCertBody.parse(await checkSignature(ssk, userId));
	if (sskBody.user !== userId) throw new CertificateError('SSK certificate is for another user');
	return sskBody;
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

/** When a self-signing certificate was issued (0 when it cannot be read; not a verification). */
export function sskIssued(cert: Certificate): number {
	try {
		return SskCertBody.parse(JSON.parse(cert.body)).issued;
	} catch {
		return 0;
	}
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
