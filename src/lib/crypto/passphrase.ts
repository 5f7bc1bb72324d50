/**
 * Passphrase-derived keys: Argon2id (RFC 9106) from hash-wasm, a maintained
 * WebAssembly build, because WebCrypto has no memory-hard KDF and a pure-JS
 * Argon2 is too slow at useful memory sizes.
 */
import { argon2id } from 'hash-wasm';
import { fromBase64Url, randomBytes, toBase64Url } from './bytes';
import { asSecretKey, type SecretKey } from './ids';

export interface PassphraseParams {
	alg: 'argon2id';
	salt: string;
	memoryKiB: number;
	iterations: number;
	parallelism: number;
}

/** OWASP's first Argon2id profile (m = 19 MiB, t = 2, p = 1) raised to 64 MiB, t = 3. */
export const DEFAULT_PASSPHRASE_PARAMS = { memoryKiB: 64 * 1024, iterations: 3, parallelism: 1 };

export function newPassphraseParams(
	cost: Pick<
		PassphraseParams,
		'memoryKiB' | 'iterations' | 'parallelism'
	> = DEFAULT_PASSPHRASE_PARAMS
): PassphraseParams {
	return { alg: 'argon2id', salt: toBase64Url(randomBytes(16)), ...cost };
}

export async function deriveKeyFromPassphrase(
	passphrase: string,
	params: PassphraseParams
): Promise<SecretKey> {
	const hash = await argon2id({
		password: passphrase.normalize('NFKC'),
		salt: fromBase64Url(params.salt),
		memorySize: params.memoryKiB,
		iterations: params.iterations,
		parallelism: params.parallelism,
		hashLength: 32,
		outputType: 'binary'
	});
	return asSecretKey(hash);
}
