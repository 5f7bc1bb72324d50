/**
 * Ed25519 signatures. WebCrypto's Ed25519 (~17k signatures/s here) is used
 * where the runtime has it; @noble/curves (~1.9k/s, audited) otherwise. Both
 * produce identical RFC 8032 signatures, so the choice is invisible on the wire.
 *
 * A private key is a 32-byte seed. On the WebCrypto path it is imported once as
 * a non-extractable CryptoKey, so after unlock the seed need not stay around.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { asBufferSource, concatBytes } from './bytes';

export interface Signer {
	readonly publicKey: Uint8Array;
	sign(message: Uint8Array): Promise<Uint8Array>;
}

// PKCS#8 wrapper of an Ed25519 seed (RFC 8410): fixed 16-byte prefix.
const PKCS8_ED25519_PREFIX = new Uint8Array([
	0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20
]);

let webCryptoEd25519: Promise<boolean> | undefined;
/** The answer of `hasWebCryptoEd25519` once known. */
let webCryptoEd25519Known: boolean | undefined;

/** Whether this runtime's WebCrypto can do Ed25519 (checked once). */
export function hasWebCryptoEd25519(): Promise<boolean> {
	webCryptoEd25519 ??= (async () => {
		try {
			const seed = new Uint8Array(32);
			const key = await crypto.subtle.importKey(
				'pkcs8',
				asBufferSource(concatBytes(PKCS8_ED25519_PREFIX, seed)),
				{ name: 'Ed25519' },
				false,
				['sign']
			);
			await crypto.subtle.sign({ name: 'Ed25519' }, key, new Uint8Array(1));
			return (webCryptoEd25519Known = true);
		} catch {
			return (webCryptoEd25519Known = false);
		}
	})();
	return webCryptoEd25519;
}

export function ed25519PublicKey(seed: Uint8Array): Uint8Array {
	return ed25519.getPublicKey(seed);
}

export function newSigningSeed(): Uint8Array {
	return ed25519.utils.randomSecretKey();
}

/** A Signer over a seed; the seed is not retained on the WebCrypto path. */
export async function createSigner(seed: Uint8Array, forceNoble = false): Promise<Signer> {
	const publicKey = ed25519PublicKey(seed);
	if (!forceNoble && (await hasWebCryptoEd25519())) {
		const key = await crypto.subtle.importKey(
			'pkcs8',
			asBufferSource(concatBytes(PKCS8_ED25519_PREFIX, seed)),
			{ name: 'Ed25519' },
			false,
			['sign']
		);
		return {
			publicKey,
			async sign(message) {
				const sig = await crypto.subtle.sign({ name: 'Ed25519' }, key, asBufferSource(message));
				return new Uint8Array(sig);
			}
		};
	}
	const kept = seed.slice();
	return {
		publicKey,
		async sign(message) {
			return ed25519.sign(message, kept);
		}
	};
}

/**
 * A public key must be a canonical encoding of a point that is not of small
 * order. Both WebCrypto and noble's default (ZIP-215) accept a small-order key
 * such as the identity point, for which `R = identity, S = 0` "verifies" any
 * message: a signature nobody needed a secret for.
 */
function isAcceptablePublicKey(publicKey: Uint8Array): boolean {
	try {
		return !ed25519.Point.fromBytes(publicKey).isSmallOrder();
	} catch {
		return false;
	}
}

/** A cache key for a 32-byte public key: its bytes as a one-byte string (cheaper than base64). */
export function publicKeyCacheKey(publicKey: Uint8Array): string {
	return String.fromCharCode.apply(null, publicKey as unknown as number[]);
}

const verifyKeys = new Map<string, Promise<CryptoKey | null>>();
/** The same keys once imported (null: not acceptable), so a verification needs no extra wait. */
const verifyKeysReady = new Map<string, CryptoKey | null>();
const VERIFY_KEY_CACHE = 4096;

function verifyKey(publicKey: Uint8Array): CryptoKey | null | Promise<CryptoKey | null> {
	const id = publicKeyCacheKey(publicKey);
	const ready = verifyKeysReady.get(id);
	if (ready !== undefined) return ready;
	let key = verifyKeys.get(id);
	if (!key) {
		key = isAcceptablePublicKey(publicKey)
			? crypto.subtle
					.importKey('raw', asBufferSource(publicKey), { name: 'Ed25519' }, false, ['verify'])
					.catch(() => null)
			: Promise.resolve(null);
		if (verifyKeys.size >= VERIFY_KEY_CACHE) {
			verifyKeys.clear();
			verifyKeysReady.clear();
		}
		verifyKeys.set(id, key);
		void key.then((done) => {
			if (verifyKeys.get(id) === key) verifyKeysReady.set(id, done);
		});
	}
	return key;
}

/**
 * A synchronous Ed25519 verifier of the platform (Node's `crypto.verify`),
 * used instead of WebCrypto's asynchronous one when installed: on a server
 * checking every update, WebCrypto's trip through the thread pool costs more
 * than the verification itself. It must be RFC 8032-strict like WebCrypto
 * (Node's is: both are OpenSSL's); small-order keys are refused here first.
 */
export type SyncEd25519Verifier = (
	publicKey: Uint8Array,
	message: Uint8Array,
	signature: Uint8Array
) => boolean;

let syncVerifier: SyncEd25519Verifier | undefined;
const acceptableKeys = new Map<string, boolean>();

/** Installs (or, with undefined, removes) the platform's synchronous verifier. */
export function useSyncEd25519Verifier(verifier: SyncEd25519Verifier | undefined): void {
	syncVerifier = verifier;
}

function acceptableKey(publicKey: Uint8Array): boolean {
	const id = publicKeyCacheKey(publicKey);
	let ok = acceptableKeys.get(id);
	if (ok === undefined) {
		ok = isAcceptablePublicKey(publicKey);
		if (acceptableKeys.size >= VERIFY_KEY_CACHE) acceptableKeys.clear();
		acceptableKeys.set(id, ok);
	}
	return ok;
}

/** True only for a valid signature; malformed keys or signatures are simply false. */
export async function verifySignature(
	publicKey: Uint8Array,
	message: Uint8Array,
	signature: Uint8Array
): Promise<boolean> {
	if (publicKey.length !== 32 || signature.length !== 64) return false;
	if (syncVerifier) return verifyWithPlatform(syncVerifier, publicKey, message, signature);
	if (webCryptoEd25519Known ?? (await hasWebCryptoEd25519())) {
		const pending = verifyKey(publicKey);
		const key = pending instanceof Promise ? await pending : pending;
		if (!key) return false;
		try {
			return await crypto.subtle.verify(
				{ name: 'Ed25519' },
				key,
				asBufferSource(signature),
				asBufferSource(message)
			);
		} catch {
			return false;
		}
	}
	return verifySignatureSync(publicKey, message, signature);
}

function verifyWithPlatform(
	verifier: SyncEd25519Verifier,
	publicKey: Uint8Array,
	message: Uint8Array,
	signature: Uint8Array
): boolean {
	if (!acceptableKey(publicKey)) return false;
	try {
		return verifier(publicKey, message, signature);
	} catch {
		return false;
	}
}

/**
 * Synchronous verification by the platform's verifier when one is installed
 * (`useSyncEd25519Verifier`: the relay), else by noble (`verifySignatureSync`,
 * much slower). Same answers as `verifySignature`.
 */
export function verifySignatureNow(
	publicKey: Uint8Array,
	message: Uint8Array,
	signature: Uint8Array
): boolean {
	if (publicKey.length !== 32 || signature.length !== 64) return false;
	if (syncVerifier) return verifyWithPlatform(syncVerifier, publicKey, message, signature);
	return verifySignatureSync(publicKey, message, signature);
}

/** Synchronous verification (noble), for code paths that cannot await. */
export function verifySignatureSync(
	publicKey: Uint8Array,
	message: Uint8Array,
	signature: Uint8Array
): boolean {
	if (publicKey.length !== 32 || signature.length !== 64) return false;
	try {
		// Strict RFC 8032 decoding, small-order keys refused: as close to WebCrypto as noble goes.
		return ed25519.verify(signature, message, publicKey, { zip215: false });
	} catch {
		return false;
	}
}
