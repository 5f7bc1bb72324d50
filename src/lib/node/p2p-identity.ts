/**
 * The Node peer's libp2p identity and its WebRTC-Direct certificate, kept in
 * the data dir so that the address a browser saved (`/ip4/…/udp/…/
 * webrtc-direct/certhash/<cert>/p2p/<peer id>`) still reaches this peer after
 * `kith serve` restarts (docs/decisions.md, "A stable WebRTC-Direct address").
 *
 * File `p2p.json` (owner-only, like `device.key`): a 32-byte Ed25519 seed
 * (the peer id) and a self-signed ECDSA P-256 certificate with its private
 * key in PEM, for DTLS. Neither is a conversation secret: the peer id only
 * names this peer, and every room stream is still gated by the room
 * capability (docs/protocol.md, "P2P sync").
 *
 * The certificate is made here (with @peculiar/x509, as @libp2p/webrtc makes
 * its own) because @libp2p/webrtc keeps its own only through a libp2p
 * keychain and datastore, which the Node peer does not run.
 */
import 'reflect-metadata'; // @peculiar/x509 needs it loaded first
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { BasicConstraintsExtension, X509CertificateGenerator } from '@peculiar/x509';
import type { PrivateKey } from '@libp2p/interface';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromBase64Url, randomBytes, toBase64Url } from '../crypto';

export const P2P_IDENTITY_FILE = 'p2p.json';

/** What @libp2p/webrtc's `webRTCDirect({ certificate })` takes. */
export interface DirectCertificate {
	/** PKCS#8 private key, PEM. */
	privateKey: string;
	/** The certificate, PEM. */
	pem: string;
	/** Multibase base64url of the SHA-256 multihash of the certificate's DER (the multiaddr's certhash). */
	certhash: string;
}

export interface P2PIdentity {
	privateKey: PrivateKey;
	certificate: DirectCertificate;
	/** The UDP port the last `kith serve` listened on for browsers, if any. */
	port: number | null;
}

interface StoredIdentity {
	v: 1;
	seed: string;
	certificate: DirectCertificate & { notAfter: number };
	port?: number;
}

/** How long a new certificate is valid. */
export const CERTIFICATE_LIFETIME_MS = 365 * 24 * 3600_000;
/** A certificate with less than this left is replaced at start (its certhash changes). */
const RENEW_BEFORE_MS = 7 * 24 * 3600_000;

/** Read the identity from `dir`, or make (and store) one; a damaged or stale part is replaced. */
export async function loadOrCreateP2PIdentity(dir: string, now = Date.now()): Promise<P2PIdentity> {
	const file = join(dir, P2P_IDENTITY_FILE);
	const stored = existsSync(file) ? parseStored(readFileSync(file, 'utf8')) : null;
	let seed = stored?.seed ? fromBase64Url(stored.seed) : null;
	if (seed?.length !== 32) seed = null;
	let certificate = stored?.certificate ?? null;
	let changed = false;
	if (!seed) {
		seed = randomBytes(32);
		changed = true;
	}
	if (!certificate || certificate.notAfter - RENEW_BEFORE_MS < now) {
		certificate = await createDirectCertificate(now);
		changed = true;
	}
	if (changed) {
		const record: StoredIdentity = {
			v: 1,
			seed: toBase64Url(seed),
			certificate,
			...(stored?.port === undefined ? {} : { port: stored.port })
		};
		writeIdentity(file, record);
	}
	const { privateKey, pem, certhash } = certificate;
	return {
		privateKey: await generateKeyPairFromSeed('Ed25519', seed),
		certificate: { privateKey, pem, certhash },
		port: stored?.port ?? null
	};
}

/** Note the UDP port `kith serve` listens on for browsers, to listen there again next time. */
export function rememberWebrtcPort(dir: string, port: number): void {
	const file = join(dir, P2P_IDENTITY_FILE);
	const record = existsSync(file) ? parseStored(readFileSync(file, 'utf8')) : null;
	if (!record?.seed || !record.certificate || record.port === port) return;
	writeIdentity(file, { v: 1, seed: record.seed, certificate: record.certificate, port });
}

function writeIdentity(file: string, record: StoredIdentity): void {
	writeFileSync(file, JSON.stringify(record), { mode: 0o600 });
	chmodSync(file, 0o600);
}

function parseStored(text: string): Partial<StoredIdentity> | null {
	try {
		const value = JSON.parse(text) as Partial<StoredIdentity>;
		if (typeof value !== 'object' || value === null || value.v !== 1) return null;
		const cert = value.certificate;
		const certOk =
			typeof cert === 'object' &&
			cert !== null &&
			typeof cert.privateKey === 'string' &&
			typeof cert.pem === 'string' &&
			typeof cert.certhash === 'string' &&
			typeof cert.notAfter === 'number';
		const port = value.port;
		const portOk = typeof port === 'number' && Number.isInteger(port) && port > 0 && port < 65536;
		return {
			...(typeof value.seed === 'string' ? { seed: value.seed } : {}),
			...(certOk ? { certificate: cert } : {}),
			...(portOk ? { port } : {})
		};
	} catch {
		return null;
	}
}

// ---- a self-signed certificate -------------------------------------------------------

/** A new ECDSA P-256 key and a self-signed certificate for it, valid from `now` for a year. */
export async function createDirectCertificate(
	now = Date.now()
): Promise<DirectCertificate & { notAfter: number }> {
	const keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
		'sign',
		'verify'
	])) as CryptoKeyPair;
	// Whole seconds (X.509 times have none), an hour back for clocks that lag.
	const notBefore = new Date(Math.floor(now / 1000) * 1000 - 3600_000);
	const notAfter = new Date(notBefore.getTime() + CERTIFICATE_LIFETIME_MS);
	const serial = randomBytes(16);
	serial[0] = (serial[0] ?? 0) & 0x7f; // positive
	const cert = await X509CertificateGenerator.createSelfSigned(
		{
			serialNumber: Buffer.from(serial).toString('hex'),
			name: 'CN=kith',
			notBefore,
			notAfter,
			keys,
			signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
			extensions: [new BasicConstraintsExtension(false, undefined, true)]
		},
		crypto
	);
	const pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', keys.privateKey));
	const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', cert.rawData));
	const lines =
		Buffer.from(pkcs8)
			.toString('base64')
			.match(/.{1,64}/g) ?? [];
	return {
		privateKey: ['-----BEGIN PRIVATE KEY-----', ...lines, '-----END PRIVATE KEY-----'].join('\n'),
		pem: cert.toString('pem'),
		// Multihash (sha2-256 = 0x12, 32 bytes) in multibase base64url ('u').
		certhash: `u${toBase64Url(new Uint8Array([0x12, 0x20, ...digest]))}`,
		notAfter: notAfter.getTime()
	};
}
