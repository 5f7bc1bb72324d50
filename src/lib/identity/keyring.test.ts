import { describe, expect, it } from 'vitest';
import {
	asBufferSource,
	createSigner,
	ed25519PublicKey,
	fromBase64Url,
	toBase64Url,
	utf8Encode,
	verifySignature,
	WrongPassphraseError
} from '../crypto';
import { x25519 } from '@noble/curves/ed25519.js';
import {
	createAccount,
	decodeRecoveryKey,
	needsPassphrase,
	newDeviceKeys,
	restoreAccount,
	unlockKeyring,
	verifyDeviceChain,
	type StoredKeyring,
	type UnlockedKeyring
} from '.';
import { nameOf } from '../crypto/test-support';

const CHEAP = { memoryKiB: 1024, iterations: 1, parallelism: 1 };

/** A deep copy of everything storage would hold (the wrap key by identity: it cannot be read). */
function snapshot(stored: StoredKeyring) {
	return {
		...structuredClone({ ...stored, wrapKey: null }),
		wrapKey: stored.wrapKey
	};
}

async function expectSameAccount(a: UnlockedKeyring, b: UnlockedKeyring) {
	expect(b.identity).toEqual(a.identity);
	expect(b.accountKey).toEqual(a.accountKey);
	expect(b.localKey).toEqual(a.localKey);
	expect(b.dhSecret).toEqual(a.dhSecret);
	expect(b.masterSeed).toEqual(a.masterSeed);
	expect(b.sskSeed).toEqual(a.sskSeed);
	expect(b.deviceSigner.publicKey).toEqual(a.deviceSigner.publicKey);
	// Ed25519 is deterministic: the unlocked signer signs exactly as the original.
	const message = utf8Encode('after unlock');
	const signature = await b.deviceSigner.sign(message);
	expect(signature).toEqual(await a.deviceSigner.sign(message));
	expect(await verifySignature(fromBase64Url(a.identity.deviceId), message, signature)).toBe(true);
}

describe('createAccount', () => {
	it('makes consistent keys: ids are the public keys of the held seeds', async () => {
		const { keyring, stored, recoveryKey } = await createAccount({ now: 1_700_000_000_000 });
		const { identity } = keyring;
		expect(identity.userId).toBe(toBase64Url(ed25519PublicKey(keyring.masterSeed as Uint8Array)));
		expect(identity.sskPublic).toBe(toBase64Url(ed25519PublicKey(keyring.sskSeed)));
		expect(identity.deviceId).toBe(toBase64Url(keyring.deviceSigner.publicKey));
		expect(identity.dhPublic).toBe(toBase64Url(x25519.getPublicKey(keyring.dhSecret)));
		expect(keyring.accountKey).toHaveLength(32);
		expect(keyring.localKey).toHaveLength(32);
		expect(keyring.accountKey).not.toEqual(keyring.localKey);
		expect(decodeRecoveryKey(recoveryKey)).toEqual(keyring.masterSeed);
		expect(stored.createdAt).toBe(1_700_000_000_000);
		expect(stored.identity).toEqual(identity);
		const device = await verifyDeviceChain(identity.userId, identity.sskCert, identity.deviceCert);
		expect(device).toMatchObject({ device: identity.deviceId, dh: identity.dhPublic });
	});

	it('stores no readable key material', async () => {
		const { keyring, stored } = await createAccount();
		expect(stored.wrapKey.extractable).toBe(false);
		expect(stored.wrapKey.algorithm).toMatchObject({ name: 'AES-GCM', length: 256 });
		const visible = JSON.stringify({ ...stored, wrapKey: null });
		const ciphertext = Buffer.from(stored.ciphertext);
		for (const secret of [
			keyring.masterSeed as Uint8Array,
			keyring.sskSeed,
			keyring.dhSecret,
			keyring.accountKey,
			keyring.localKey
		]) {
			expect(visible.includes(toBase64Url(secret))).toBe(false);
			expect(ciphertext.includes(Buffer.from(toBase64Url(secret)))).toBe(false);
			expect(ciphertext.includes(Buffer.from(secret))).toBe(false);
		}
	});

	it('makes a new account each time', async () => {
		const [a, b] = await Promise.all([createAccount(), createAccount()]);
		expect(a.keyring.identity.userId).not.toBe(b.keyring.identity.userId);
		expect(a.keyring.identity.deviceId).not.toBe(b.keyring.identity.deviceId);
	});
});

describe('without a passphrase', () => {
	it('unlocks with no passphrase to the same keys', async () => {
		const created = await createAccount();
		expect(created.stored.passphrase).toBeNull();
		expect(needsPassphrase(created.stored)).toBe(false);
		await expectSameAccount(created.keyring, await unlockKeyring(created.stored));
	});

	it('treats an empty passphrase as none', async () => {
		const created = await createAccount({ passphrase: '' });
		expect(needsPassphrase(created.stored)).toBe(false);
		await expectSameAccount(created.keyring, await unlockKeyring(created.stored));
	});
});

describe('with a passphrase', () => {
	it('unlocks with the right passphrase to the same ids and a working signer', async () => {
		const created = await createAccount({ passphrase: 'correct horse', passphraseCost: CHEAP });
		expect(needsPassphrase(created.stored)).toBe(true);
		expect(created.stored.passphrase).toMatchObject({ alg: 'argon2id', ...CHEAP });
		const unlocked = await unlockKeyring(created.stored, 'correct horse');
		await expectSameAccount(created.keyring, unlocked);
		// The signer is a real, fresh one, not the object from creation.
		expect(unlocked.deviceSigner).not.toBe(created.keyring.deviceSigner);
	});

	it('accepts the passphrase in another Unicode normalisation form', async () => {
		const created = await createAccount({ passphrase: 'caf\u00e9', passphraseCost: CHEAP });
		await expectSameAccount(created.keyring, await unlockKeyring(created.stored, 'cafe\u0301'));
	});

	it('refuses a wrong, empty or missing passphrase with WrongPassphraseError, changing nothing', async () => {
		const created = await createAccount({ passphrase: 'correct horse', passphraseCost: CHEAP });
		const before = snapshot(created.stored);
		for (const attempt of ['correct hors', 'Correct horse', 'correct horse ', '', undefined]) {
			expect(await nameOf(unlockKeyring(created.stored, attempt))).toBe(WrongPassphraseError.NAME);
			expect(snapshot(created.stored)).toEqual(before);
		}
		expect(created.stored.wrapKey).toBe(before.wrapKey);
		// And retrying with the right one still works.
		await expectSameAccount(created.keyring, await unlockKeyring(created.stored, 'correct horse'));
	});

	it('works at the default Argon2id cost (64 MiB, t = 3)', async () => {
		const created = await createAccount({ passphrase: 'default cost' });
		expect(created.stored.passphrase).toMatchObject({
			alg: 'argon2id',
			memoryKiB: 65536,
			iterations: 3,
			parallelism: 1
		});
		await expectSameAccount(created.keyring, await unlockKeyring(created.stored, 'default cost'));
		expect(await nameOf(unlockKeyring(created.stored, 'Default cost'))).toBe(
			'WrongPassphraseError'
		);
	});
});

describe('a damaged store', () => {
	for (const passphrase of [undefined, 'pw']) {
		const label = passphrase ? 'with a passphrase' : 'without a passphrase';

		it(`${label}: a flipped ciphertext or nonce byte, or a foreign wrap key, is refused`, async () => {
			const created = await createAccount({ passphrase, passphraseCost: CHEAP });
			const { stored } = created;
			const other = await createAccount({ passphrase, passphraseCost: CHEAP });
			const damaged: StoredKeyring[] = [];
			for (const position of [0, 12, 40, stored.ciphertext.length - 1]) {
				const ciphertext = stored.ciphertext.slice();
				ciphertext[position] = (ciphertext[position] as number) ^ 0x01;
				damaged.push({ ...stored, ciphertext });
			}
			const nonce = stored.nonce.slice();
			nonce[0] = (nonce[0] as number) ^ 0x01;
			damaged.push({ ...stored, nonce });
			damaged.push({ ...stored, ciphertext: stored.ciphertext.subarray(0, 20) });
			damaged.push({ ...stored, wrapKey: other.stored.wrapKey });
			for (const copy of damaged) {
				// The outer layer fails first, before the passphrase is even tried.
				expect(await nameOf(unlockKeyring(copy, passphrase))).toBe('DecryptionError');
			}
		});
	}

	it('the passphrase layer is really there: the outer layer alone yields no secrets', async () => {
		const created = await createAccount({ passphrase: 'pw', passphraseCost: CHEAP });
		const outer = new Uint8Array(
			await crypto.subtle.decrypt(
				{
					name: 'AES-GCM',
					iv: asBufferSource(created.stored.nonce),
					additionalData: asBufferSource(utf8Encode('kith/keyring/device\0'))
				},
				created.stored.wrapKey,
				asBufferSource(created.stored.ciphertext)
			)
		);
		expect(
			Buffer.from(outer).includes(
				Buffer.from(toBase64Url(created.keyring.masterSeed as Uint8Array))
			)
		).toBe(false);
		expect(() => JSON.parse(Buffer.from(outer).toString('utf8'))).toThrow();
	});

	it('a swapped passphrase salt makes the right passphrase fail, changing nothing', async () => {
		const created = await createAccount({ passphrase: 'pw', passphraseCost: CHEAP });
		const other = await createAccount({ passphrase: 'pw', passphraseCost: CHEAP });
		const copy = { ...created.stored, passphrase: other.stored.passphrase };
		expect(await nameOf(unlockKeyring(copy, 'pw'))).toBe('WrongPassphraseError');
	});
});

describe('the unlocked signer', () => {
	it('is interchangeable with a signer made from the same seed', async () => {
		const { keyring } = await createAccount();
		const master = await createSigner(keyring.masterSeed as Uint8Array, true);
		expect(toBase64Url(master.publicKey)).toBe(keyring.identity.userId);
	});
});

describe('a new device of an existing account', () => {
	it('restored with the recovery key holds the master key and the same self-signing key', async () => {
		const { keyring: first } = await createAccount();
		const { keyring, stored } = await restoreAccount({
			masterSeed: first.masterSeed as Uint8Array,
			sskSeed: first.sskSeed,
			accountKey: first.accountKey
		});
		expect(keyring.identity.userId).toBe(first.identity.userId);
		expect(keyring.identity.sskPublic).toBe(first.identity.sskPublic);
		expect(keyring.identity.deviceId).not.toBe(first.identity.deviceId);
		const chain = await verifyDeviceChain(
			keyring.identity.userId,
			keyring.identity.sskCert,
			keyring.identity.deviceCert
		);
		expect(chain.device).toBe(keyring.identity.deviceId);
		expect((await unlockKeyring(stored)).masterSeed).toEqual(first.masterSeed);
	});

	it('linked holds no master key, only the certificate it signed, and the chain still holds', async () => {
		const { keyring: first } = await createAccount();
		const device = newDeviceKeys();
		const { keyring, stored } = await restoreAccount(
			{
				masterSeed: null,
				userId: first.identity.userId,
				sskCert: first.identity.sskCert,
				sskSeed: first.sskSeed,
				accountKey: first.accountKey
			},
			{ device }
		);
		expect(keyring.masterSeed).toBeNull();
		expect(keyring.identity.sskCert).toEqual(first.identity.sskCert);
		expect(keyring.dhSecret).toEqual(device.dhSecret);
		const chain = await verifyDeviceChain(
			first.identity.userId,
			keyring.identity.sskCert,
			keyring.identity.deviceCert
		);
		expect(chain.device).toBe(keyring.identity.deviceId);
		const reopened = await unlockKeyring(stored);
		expect(reopened.masterSeed).toBeNull();
		expect(reopened.sskSeed).toEqual(first.sskSeed);
	});
});
