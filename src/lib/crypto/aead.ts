/**
 * AES-256-GCM from WebCrypto (every runtime Kith supports has it). There is
 * no fallback to anything weaker and none to plaintext: a missing key throws
 * MissingKeyError, a failed tag check throws DecryptionError.
 */
import { asBufferSource, randomBytes } from './bytes';
import { DecryptionError, MissingKeyError } from './errors';
import type { SecretKey } from './ids';

export const NONCE_LENGTH = 12;

const imported = new WeakMap<Uint8Array, Promise<CryptoKey>>();
/** The same keys once imported: a message sealed or opened needs no extra wait for its key. */
const ready = new WeakMap<Uint8Array, CryptoKey>();

/** Import (once per key object) as a non-extractable AES-GCM key. */
export function aesKey(key: SecretKey | undefined | null): Promise<CryptoKey> {
	if (!key) return Promise.reject(new MissingKeyError('No key is held for this data.'));
	let cryptoKey = imported.get(key);
	if (!cryptoKey) {
		cryptoKey = crypto.subtle.importKey('raw', asBufferSource(key), { name: 'AES-GCM' }, false, [
			'encrypt',
			'decrypt'
		]);
		imported.set(key, cryptoKey);
		cryptoKey.then(
			(done) => ready.set(key, done),
			() => undefined // the caller of the first import hears of it
		);
	}
	return cryptoKey;
}

export type AeadKey = SecretKey | CryptoKey;

/** The CryptoKey at once when it is one or already imported, else a promise of it. */
function resolveKey(key: AeadKey | undefined | null): CryptoKey | Promise<CryptoKey> {
	if (key && !(key instanceof Uint8Array)) return key;
	return (key && ready.get(key)) ?? aesKey(key);
}

export async function aeadEncrypt(
	key: AeadKey | undefined | null,
	plaintext: Uint8Array,
	aad: Uint8Array,
	nonce: Uint8Array = randomBytes(NONCE_LENGTH)
): Promise<{ nonce: Uint8Array; ciphertext: Uint8Array }> {
	const resolved = resolveKey(key);
	const cryptoKey = resolved instanceof Promise ? await resolved : resolved;
	const ciphertext = await crypto.subtle.encrypt(
		{ name: 'AES-GCM', iv: asBufferSource(nonce), additionalData: asBufferSource(aad) },
		cryptoKey,
		asBufferSource(plaintext)
	);
	return { nonce, ciphertext: new Uint8Array(ciphertext) };
}

export async function aeadDecrypt(
	key: AeadKey | undefined | null,
	nonce: Uint8Array,
	ciphertext: Uint8Array,
	aad: Uint8Array
): Promise<Uint8Array> {
	const resolved = resolveKey(key);
	const cryptoKey = resolved instanceof Promise ? await resolved : resolved;
	try {
		const plaintext = await crypto.subtle.decrypt(
			{ name: 'AES-GCM', iv: asBufferSource(nonce), additionalData: asBufferSource(aad) },
			cryptoKey,
			asBufferSource(ciphertext)
		);
		return new Uint8Array(plaintext);
	} catch (cause) {
		throw new DecryptionError('The data could not be decrypted: wrong key or altered bytes.', {
			cause
		});
	}
}
