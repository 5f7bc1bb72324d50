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
 * The certificate is made here (a minimal X.509 v1 certificate in DER,
 * signed with WebCrypto) because @libp2p/webrtc keeps its own only through a
 * libp2p keychain and datastore, which the Node peer does not run.
 */
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
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
}

interface StoredIdentity {
	v: 1;
	seed: string;
	certificate: DirectCertificate & { notAfter: number };
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
		const record: StoredIdentity = { v: 1, seed: toBase64Url(seed), certificate };
		writeFileSync(file, JSON.stringify(record), { mode: 0o600 });
		chmodSync(file, 0o600);
	}
	const { privateKey, pem, certhash } = certificate;
	return {
		privateKey: await generateKeyPairFromSeed('Ed25519', seed),
		certificate: { privateKey, pem, certhash }
	};
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
		return {
			...(typeof value.seed === 'string' ? { seed: value.seed } : {}),
			...(certOk ? { certificate: cert } : {})
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
	const spki = new Uint8Array(await crypto.subtle.exportKey('spki', keys.publicKey));
	const pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', keys.privateKey));
	// Whole seconds: UTCTime has no fractions.
	const notBefore = Math.floor(now / 1000) * 1000 - 3600_000;
	const notAfter = notBefore + CERTIFICATE_LIFETIME_MS;
	const serial = randomBytes(16);
	serial[0] = (serial[0] ?? 0) & 0x7f; // positive
	const name = seq(set(seq(oid(OID_COMMON_NAME), der(0x0c, new TextEncoder().encode('kith')))));
	const tbs = seq(
		der(0x02, serial),
		seq(oid(OID_ECDSA_SHA256)),
		name,
		seq(utcTime(notBefore), utcTime(notAfter)),
		name,
		spki
	);
	const raw = new Uint8Array(
		await crypto.subtle.sign(
			{ name: 'ECDSA', hash: 'SHA-256' },
			keys.privateKey,
			tbs as BufferSource
		)
	);
	const signature = seq(integer(raw.subarray(0, 32)), integer(raw.subarray(32)));
	const cert = seq(
		tbs,
		seq(oid(OID_ECDSA_SHA256)),
		der(0x03, concat(new Uint8Array([0]), signature))
	);
	const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', cert as BufferSource));
	// Multihash (sha2-256 = 0x12, 32 bytes) in multibase base64url ('u').
	const certhash = `u${toBase64Url(concat(new Uint8Array([0x12, 0x20]), digest))}`;
	return {
		privateKey: pem('PRIVATE KEY', pkcs8),
		pem: pem('CERTIFICATE', cert),
		certhash,
		notAfter
	};
}

/** ecdsa-with-SHA256, 1.2.840.10045.4.3.2 */
const OID_ECDSA_SHA256 = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
/** commonName, 2.5.4.3 */
const OID_COMMON_NAME = [0x55, 0x04, 0x03];

function concat(...parts: Uint8Array[]): Uint8Array {
	const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
	let at = 0;
	for (const part of parts) {
		out.set(part, at);
		at += part.length;
	}
	return out;
}

function der(tag: number, body: Uint8Array): Uint8Array {
	const n = body.length;
	const length =
		n < 0x80
			? [n]
			: n < 0x100
				? [0x81, n]
				: n < 0x10000
					? [0x82, n >> 8, n & 0xff]
					: [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
	return concat(new Uint8Array([tag, ...length]), body);
}

const seq = (...parts: Uint8Array[]) => der(0x30, concat(...parts));
const set = (...parts: Uint8Array[]) => der(0x31, concat(...parts));
const oid = (bytes: number[]) => der(0x06, new Uint8Array(bytes));

/** A non-negative DER INTEGER from big-endian bytes. */
function integer(bytes: Uint8Array): Uint8Array {
	let start = 0;
	while (start < bytes.length - 1 && bytes[start] === 0) start++;
	const trimmed = bytes.subarray(start);
	const body = (trimmed[0] ?? 0) & 0x80 ? concat(new Uint8Array([0]), trimmed) : trimmed;
	return der(0x02, body);
}

function utcTime(ms: number): Uint8Array {
	const d = new Date(ms);
	const two = (n: number) => String(n).padStart(2, '0');
	const text =
		two(d.getUTCFullYear() % 100) +
		two(d.getUTCMonth() + 1) +
		two(d.getUTCDate()) +
		two(d.getUTCHours()) +
		two(d.getUTCMinutes()) +
		two(d.getUTCSeconds()) +
		'Z';
	return der(0x17, new TextEncoder().encode(text));
}

function pem(label: string, bytes: Uint8Array): string {
	const base64 = Buffer.from(bytes).toString('base64');
	const lines = base64.match(/.{1,64}/g) ?? [];
	return [`-----BEGIN ${label}-----`, ...lines, `-----END ${label}-----`].join('\n');
}
