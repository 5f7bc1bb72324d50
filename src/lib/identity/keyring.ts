/**
 * The keyring: every private key of this device and account, wrapped at rest.
 *
 * Layers, outermost first:
 *   - a non-extractable AES-GCM CryptoKey made on this device and kept in
 *     IndexedDB (structured clone keeps it non-extractable): key material never
 *     sits in storage in a form script could read and carry elsewhere;
 *   - when the user set a passphrase, an AES-GCM key derived from it with
 *     Argon2id: the keyring then opens only with the passphrase.
 * A wrong passphrase fails the inner tag check: WrongPassphraseError, nothing
 * is written, so retrying is always safe.
 */
import { x25519 } from '@noble/curves/ed25519.js';
import {
	aeadDecrypt,
	aeadEncrypt,
	asSecretKey,
	createSigner,
	deriveKeyFromPassphrase,
	ed25519PublicKey,
	fromBase64Url,
	newPassphraseParams,
	newSecretKey,
	newSigningSeed,
	toBase64Url,
	utf8Decode,
	utf8Encode,
	WrongPassphraseError,
	DecryptionError,
	type DeviceId,
	type PassphraseParams,
	type SecretKey,
	type Signer,
	type UserId
} from '../crypto';
import { certify, verifyMasters, type Certificate } from './certificates';
import { encodeRecoveryKey } from './recovery-key';
import { z } from 'zod';

const SecretsSchema = z.object({
	v: z.literal(1),
	/** Absent on a linked device: the master key stays where the account was made (and in the recovery key). */
	master: z.string().optional(),
	ssk: z.string(),
	device: z.string(),
	dh: z.string(),
	account: z.string(),
	local: z.string()
});
type Secrets = z.infer<typeof SecretsSchema>;

export interface PublicIdentity {
	userId: UserId;
	deviceId: DeviceId;
	sskPublic: string;
	dhPublic: string;
	sskCert: Certificate;
	deviceCert: Certificate;
}

/** What is written to storage. Holds no readable key material. */
export interface StoredKeyring {
	v: 1;
	identity: PublicIdentity;
	wrapKey: CryptoKey;
	passphrase: PassphraseParams | null;
	nonce: Uint8Array;
	ciphertext: Uint8Array;
	createdAt: number;
}

/** The keyring in memory after unlock. */
export interface UnlockedKeyring {
	identity: PublicIdentity;
	deviceSigner: Signer;
	/** Account key: encrypts the vault (shared by the account's own devices). */
	accountKey: SecretKey;
	/** Device-local key: encrypts caches such as view snapshots; never leaves the device. */
	localKey: SecretKey;
	/** X25519 secret for lockboxes sealed to this device. */
	dhSecret: Uint8Array;
	/**
	 * The master key: on the device that made the account and on one
	 * restored with the recovery key; null on a linked device (it is what
	 * certifies self-signing keys, so a removed device must not hold it).
	 */
	masterSeed: Uint8Array | null;
	sskSeed: Uint8Array;
}

const OUTER_AAD = utf8Encode('kith/keyring/device\0');
const INNER_AAD = utf8Encode('kith/keyring/passphrase\0');

export interface CreateAccountOptions {
	passphrase?: string;
	/** Argon2id cost; tests lower it. */
	passphraseCost?: Pick<PassphraseParams, 'memoryKiB' | 'iterations' | 'parallelism'>;
	now?: number;
	/**
	 * The outer wrapping key. Browsers omit it (a new non-extractable key kept in
	 * IndexedDB); the Node peer passes one it keeps in an owner-only file.
	 */
	wrapKey?: CryptoKey;
}

export interface CreatedAccount {
	stored: StoredKeyring;
	keyring: UnlockedKeyring;
	/** The master key's backup form: show once, never store. */
	recoveryKey: string;
}

async function newWrapKey(): Promise<CryptoKey> {
	return crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
}

/**
 * The passphrase layer's key of each unlocked keyring that has one (kept in
 * memory with the other secrets, so new keys can be stored again without
 * asking for the passphrase; never written anywhere).
 */
const passphraseKeys = new WeakMap<UnlockedKeyring, SecretKey>();

async function wrap(
	secrets: Secrets,
	wrapKey: CryptoKey,
	innerKey: SecretKey | null
): Promise<{ nonce: Uint8Array; ciphertext: Uint8Array }> {
	let payload = utf8Encode(JSON.stringify(secrets));
	if (innerKey) {
		const inner = await aeadEncrypt(innerKey, payload, INNER_AAD);
		payload = new Uint8Array(inner.nonce.length + inner.ciphertext.length);
		payload.set(inner.nonce, 0);
		payload.set(inner.ciphertext, inner.nonce.length);
	}
	return aeadEncrypt(wrapKey, payload, OUTER_AAD);
}

async function toUnlocked(identity: PublicIdentity, secrets: Secrets): Promise<UnlockedKeyring> {
	const deviceSeed = fromBase64Url(secrets.device);
	return {
		identity,
		deviceSigner: await createSigner(deviceSeed),
		accountKey: asSecretKey(fromBase64Url(secrets.account)),
		localKey: asSecretKey(fromBase64Url(secrets.local)),
		dhSecret: fromBase64Url(secrets.dh),
		masterSeed: secrets.master === undefined ? null : fromBase64Url(secrets.master),
		sskSeed: fromBase64Url(secrets.ssk)
	};
}

/** Make every key of a new account and this, its first device. */
export async function createAccount(options: CreateAccountOptions = {}): Promise<CreatedAccount> {
	const masterSeed = newSigningSeed();
	const made = await makeDevice(
		{ masterSeed, sskSeed: newSigningSeed(), accountKey: newSecretKey() },
		options
	);
	return { ...made, recoveryKey: encodeRecoveryKey(masterSeed) };
}

/**
 * What a new device of an existing account starts from: the master key
 * (restored from the recovery key) or, for a linked device, the account's
 * id and its self-signing key's certificate, which the master key signed.
 */
export type AccountSecrets = { sskSeed: Uint8Array; accountKey: SecretKey } & (
	| {
			masterSeed: Uint8Array;
			/**
			 * When the master key was replaced since the account was made: the
			 * user id (the first master key) and the chain of master
			 * certificates to `masterSeed`'s key (certificates.ts).
			 */
			replaced?: { userId: UserId; chain: Certificate[] };
	  }
	| { masterSeed: null; userId: UserId; sskCert: Certificate }
);

/**
 * A new device of an existing account (restored from its recovery key and a
 * backup): fresh device, key-agreement and local keys, certified by the
 * account's self-signing key, whose certificate the master key signs again.
 */
export async function restoreAccount(
	account: AccountSecrets,
	options: CreateAccountOptions & {
		/** This device's keys when it made them already (a device being linked). */
		device?: { seed: Uint8Array; dhSecret: Uint8Array };
	} = {}
): Promise<{ stored: StoredKeyring; keyring: UnlockedKeyring }> {
	return makeDevice(account, options);
}

/** A device's keys, made before it has an account (a device being linked shows its id). */
export function newDeviceKeys(): { seed: Uint8Array; dhSecret: Uint8Array } {
	return { seed: newSigningSeed(), dhSecret: x25519.utils.randomSecretKey() };
}

/** The X25519 public key of a device's secret. */
export function dhPublicKey(dhSecret: Uint8Array): Uint8Array {
	return x25519.getPublicKey(dhSecret);
}

async function makeDevice(
	account: AccountSecrets,
	options: CreateAccountOptions & { device?: { seed: Uint8Array; dhSecret: Uint8Array } }
): Promise<{ stored: StoredKeyring; keyring: UnlockedKeyring }> {
	const now = options.now ?? Date.now();
	const { masterSeed, sskSeed } = account;
	const { seed: deviceSeed, dhSecret } = options.device ?? newDeviceKeys();
	const masterKey = masterSeed && toBase64Url(ed25519PublicKey(masterSeed));
	const replaced = masterSeed === null ? undefined : account.replaced;
	const userId = masterSeed === null ? account.userId : ((replaced?.userId ?? masterKey) as UserId);
	if (replaced && (await verifyMasters(userId, replaced.chain)) !== masterKey) {
		throw new Error('This recovery key was replaced by a newer one.');
	}
	const sskPublic = toBase64Url(ed25519PublicKey(sskSeed));
	const deviceId = toBase64Url(ed25519PublicKey(deviceSeed)) as DeviceId;
	const dhPublic = toBase64Url(x25519.getPublicKey(dhSecret));
	const sskSigner = await createSigner(sskSeed);
	const sskCert =
		masterSeed === null
			? account.sskCert
			: await certify(
					{
						v: 1,
						type: 'ssk',
						user: userId,
						key: sskPublic,
						issued: now,
						...(replaced?.chain.length ? { masters: replaced.chain } : {})
					},
					await createSigner(masterSeed)
				);
	const deviceCert = await certify(
		{ v: 1, type: 'device', user: userId, device: deviceId, dh: dhPublic, issued: now },
		sskSigner
	);
	const identity: PublicIdentity = { userId, deviceId, sskPublic, dhPublic, sskCert, deviceCert };
	const secrets: Secrets = {
		v: 1,
		...(masterSeed === null ? {} : { master: toBase64Url(masterSeed) }),
		ssk: toBase64Url(sskSeed),
		device: toBase64Url(deviceSeed),
		dh: toBase64Url(dhSecret),
		account: toBase64Url(account.accountKey),
		local: toBase64Url(newSecretKey())
	};
	const passphrase = options.passphrase ? options.passphrase : undefined;
	const params = passphrase ? newPassphraseParams(options.passphraseCost) : null;
	const innerKey = passphrase && params ? await deriveKeyFromPassphrase(passphrase, params) : null;
	const wrapKey = options.wrapKey ?? (await newWrapKey());
	const { nonce, ciphertext } = await wrap(secrets, wrapKey, innerKey);
	const stored: StoredKeyring = {
		v: 1,
		identity,
		wrapKey,
		passphrase: params,
		nonce,
		ciphertext,
		createdAt: now
	};
	const keyring = await toUnlocked(identity, secrets);
	if (innerKey) passphraseKeys.set(keyring, innerKey);
	return { stored, keyring };
}

export function needsPassphrase(stored: StoredKeyring): boolean {
	return stored.passphrase !== null;
}

/** Open a stored keyring. Throws WrongPassphraseError (and changes nothing) on a bad passphrase. */
export async function unlockKeyring(
	stored: StoredKeyring,
	passphrase?: string
): Promise<UnlockedKeyring> {
	let payload: Uint8Array;
	try {
		payload = await aeadDecrypt(stored.wrapKey, stored.nonce, stored.ciphertext, OUTER_AAD);
	} catch (cause) {
		throw new DecryptionError('This device’s key store is damaged and cannot be opened.', {
			cause
		});
	}
	let innerKey: SecretKey | null = null;
	if (stored.passphrase) {
		if (passphrase === undefined || passphrase === '') throw new WrongPassphraseError();
		innerKey = await deriveKeyFromPassphrase(passphrase, stored.passphrase);
		try {
			payload = await aeadDecrypt(
				innerKey,
				payload.subarray(0, 12),
				payload.subarray(12),
				INNER_AAD
			);
		} catch {
			throw new WrongPassphraseError();
		}
	}
	const secrets = SecretsSchema.parse(JSON.parse(utf8Decode(payload)));
	const keyring = await toUnlocked(stored.identity, secrets);
	if (innerKey) passphraseKeys.set(keyring, innerKey);
	return keyring;
}

/** What a device removal or a new recovery key hands each remaining device (vault/move.ts). */
export interface SelfSigningUpdate {
	sskSeed: Uint8Array;
	sskCert: Certificate;
	accountKey: SecretKey;
	/**
	 * The new master key, on the device that replaced it (and showed its
	 * recovery key) when that device held the old one. Every other device
	 * drops a master key that no longer signs the account's SSK.
	 */
	masterSeed?: Uint8Array;
}

/**
 * Take on a new self-signing key and account key (another of the account's
 * devices was removed, or the master key was replaced): this device
 * certifies itself under the new key, keeps the master key only if it still
 * signs the account's SSK (or takes the new one it made), and
 * the keyring is stored again under the same wrapping (and passphrase) as
 * before. The caller stores `stored`; until it does, the old keyring stays.
 */
export async function adoptSelfSigning(
	stored: StoredKeyring,
	keyring: UnlockedKeyring,
	update: SelfSigningUpdate,
	now = Date.now()
): Promise<{ stored: StoredKeyring; keyring: UnlockedKeyring }> {
	const innerKey = passphraseKeys.get(keyring) ?? null;
	if (stored.passphrase && !innerKey) {
		throw new Error('The keyring must be unlocked with its passphrase to take new keys.');
	}
	const payload = await aeadDecrypt(stored.wrapKey, stored.nonce, stored.ciphertext, OUTER_AAD);
	const old = SecretsSchema.parse(
		JSON.parse(
			utf8Decode(
				innerKey
					? await aeadDecrypt(innerKey, payload.subarray(0, 12), payload.subarray(12), INNER_AAD)
					: payload
			)
		)
	);
	const { userId, deviceId, dhPublic } = keyring.identity;
	const sskPublic = toBase64Url(ed25519PublicKey(update.sskSeed));
	const deviceCert = await certify(
		{ v: 1, type: 'device', user: userId, device: deviceId, dh: dhPublic, issued: now },
		await createSigner(update.sskSeed)
	);
	const identity: PublicIdentity = {
		...keyring.identity,
		sskPublic,
		sskCert: update.sskCert,
		deviceCert
	};
	const signs = (seed: Uint8Array) => toBase64Url(ed25519PublicKey(seed)) === update.sskCert.signer;
	const { master: oldMaster, ...rest } = old;
	const master =
		update.masterSeed && signs(update.masterSeed)
			? toBase64Url(update.masterSeed)
			: oldMaster !== undefined && signs(fromBase64Url(oldMaster))
				? oldMaster
				: undefined;
	const secrets: Secrets = {
		...rest,
		...(master === undefined ? {} : { master }),
		ssk: toBase64Url(update.sskSeed),
		account: toBase64Url(update.accountKey)
	};
	const { nonce, ciphertext } = await wrap(secrets, stored.wrapKey, innerKey);
	const next = await toUnlocked(identity, secrets);
	if (innerKey) passphraseKeys.set(next, innerKey);
	return { stored: { ...stored, identity, nonce, ciphertext }, keyring: next };
}
