import { describe, expect, it } from 'vitest';
import {
	DEFAULT_PASSPHRASE_PARAMS,
	deriveKeyFromPassphrase,
	equalBytes,
	fromBase64Url,
	newPassphraseParams
} from '.';

const CHEAP = { memoryKiB: 1024, iterations: 1, parallelism: 1 };

describe('passphrase keys (Argon2id)', () => {
	it('makes params with a fresh 16-byte salt and the default cost', () => {
		const a = newPassphraseParams();
		const b = newPassphraseParams();
		expect(a).toMatchObject({ alg: 'argon2id', ...DEFAULT_PASSPHRASE_PARAMS });
		expect(DEFAULT_PASSPHRASE_PARAMS).toEqual({ memoryKiB: 65536, iterations: 3, parallelism: 1 });
		expect(fromBase64Url(a.salt)).toHaveLength(16);
		expect(a.salt).not.toBe(b.salt);
	});

	it('is Argon2id v1.3 (reference vector from the phc-winner-argon2 suite)', async () => {
		// argon2id, t=2, m=65536 KiB, p=1, password "password", salt "somesalt", 32 bytes:
		// $argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc
		const key = await deriveKeyFromPassphrase('password', {
			alg: 'argon2id',
			salt: 'c29tZXNhbHQ',
			memoryKiB: 65536,
			iterations: 2,
			parallelism: 1
		});
		expect(Buffer.from(key).toString('base64').replace(/=+$/, '')).toBe(
			'CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc'
		);
	});

	it('is deterministic for one salt and differs across salts and passphrases', async () => {
		const params = newPassphraseParams(CHEAP);
		const a = await deriveKeyFromPassphrase('correct horse', params);
		expect(a).toHaveLength(32);
		expect(equalBytes(a, await deriveKeyFromPassphrase('correct horse', params))).toBe(true);
		expect(equalBytes(a, await deriveKeyFromPassphrase('correct horsf', params))).toBe(false);
		const other = newPassphraseParams(CHEAP);
		expect(equalBytes(a, await deriveKeyFromPassphrase('correct horse', other))).toBe(false);
	});

	it('normalises to NFKC, so one passphrase typed two ways opens the same keyring', async () => {
		const params = newPassphraseParams(CHEAP);
		const composed = await deriveKeyFromPassphrase('caf\u00e9', params);
		const decomposed = await deriveKeyFromPassphrase('cafe\u0301', params);
		expect(equalBytes(composed, decomposed)).toBe(true);
	});
});
