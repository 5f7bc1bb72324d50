/**
 * The relay's VAPID key pair (RFC 8292): made on first start with web-push's
 * `generateVAPIDKeys` and kept in `KITH_DATA/vapid.json` (mode 0600), because
 * every browser subscription is bound to the public key it was made with —
 * new keys would silently orphan them all. A file that does not hold a usable
 * key pair stops the server with a message saying what to do; it is never
 * replaced behind the operator's back.
 */
import { createECDH } from 'node:crypto';
import { join } from 'node:path';
import webpush from 'web-push';
import { fromBase64Url } from '../../../src/lib/crypto/bytes.ts';
import { readOrCreateSecretFile } from '../secret-file.ts';

export const VAPID_FILE = 'vapid.json';

/** base64url, as web-push and the Push API's `applicationServerKey` take them. */
export interface VapidKeys {
	/** Uncompressed P-256 point, 65 bytes. */
	publicKey: string;
	/** P-256 private scalar, 32 bytes. */
	privateKey: string;
}

export class VapidKeysError extends Error {
	static readonly NAME = 'VapidKeysError';
	override name = VapidKeysError.NAME;
}

/** Reads `dataDir/vapid.json`, creating it on first start. Throws VapidKeysError if it is damaged. */
export function loadVapidKeys(dataDir: string): VapidKeys {
	const path = join(dataDir, VAPID_FILE);
	const text = readOrCreateSecretFile(
		path,
		() => JSON.stringify(webpush.generateVAPIDKeys()) + '\n'
	).toString('utf8');
	const problem = check(text);
	if (typeof problem === 'string') {
		throw new VapidKeysError(
			`${path} is damaged (${problem}). Restore it from a backup, or delete it to make new ` +
				'keys — then every device must turn notifications off and on again.'
		);
	}
	return problem;
}

function check(text: string): VapidKeys | string {
	let json: unknown;
	try {
		json = JSON.parse(text);
	} catch {
		return 'not JSON';
	}
	// Exactly two string fields: checked by hand, so starting the relay does
	// not load a schema library for one small file.
	const fields = typeof json === 'object' && json !== null ? Object.entries(json) : [];
	const { publicKey, privateKey } = Object.fromEntries(fields) as Record<string, unknown>;
	if (fields.length !== 2 || typeof publicKey !== 'string' || typeof privateKey !== 'string') {
		return 'expected {"publicKey": …, "privateKey": …}';
	}
	let pub: Uint8Array;
	let priv: Uint8Array;
	try {
		pub = fromBase64Url(publicKey);
		priv = fromBase64Url(privateKey);
	} catch {
		return 'the keys are not base64url';
	}
	if (pub.length !== 65 || pub[0] !== 4) return 'the public key is not an uncompressed P-256 point';
	if (priv.length !== 32) return 'the private key is not 32 bytes';
	try {
		const ecdh = createECDH('prime256v1');
		ecdh.setPrivateKey(priv);
		if (!Buffer.from(pub).equals(ecdh.getPublicKey())) return 'the keys do not belong together';
	} catch {
		return 'the private key is not a P-256 key';
	}
	return { publicKey, privateKey };
}
