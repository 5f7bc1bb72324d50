/**
 * Named crypto errors. Callers compare `error.name`, not `instanceof`, so the
 * check survives bundling twice and crossing a worker boundary.
 */
export class CryptoError extends Error {
	static readonly NAME: string = 'CryptoError';
	constructor(message: string, options?: ErrorOptions) {
		super(message, options);
		this.name = (new.target as typeof CryptoError).NAME;
	}
}

/** Authenticated decryption failed: wrong key, or the bytes were altered. */
export class DecryptionError extends CryptoError {
	static override readonly NAME = 'DecryptionError';
}

/** A key that the operation needs is not held. Never a reason to fall back to plaintext. */
export class MissingKeyError extends CryptoError {
	static override readonly NAME = 'MissingKeyError';
}

/** A passphrase did not unlock the keyring. */
export class WrongPassphraseError extends CryptoError {
	static override readonly NAME = 'WrongPassphraseError';
	constructor() {
		super('That passphrase is not correct. Nothing was changed; try again.');
	}
}
