import { describe, expect, it } from 'vitest';
import {
	adoptSelfSigning,
	createAccount,
	decodeRecoveryKey,
	encodeRecoveryKey,
	masterChain,
	restoreAccount,
	unlockKeyring,
	verifySskCert,
	verifyDeviceChain,
	type UnlockedKeyring
} from '../identity';
import { toBase64Url, utf8Encode } from '../crypto';
import {
	decodeVaultMove,
	encodeVaultMove,
	makeVaultMove,
	readVaultMove,
	VaultMoveError,
	type MovedKeys,
	type VaultMove
} from './move';
import { vaultRoomId } from './vault';

const CHEAP = { memoryKiB: 1024, iterations: 1, parallelism: 1 };

/** An account with its first device (holding the master key) and two linked devices. */
async function threeDevices(passphrase?: string) {
	const first = await createAccount({ now: 1_000, passphrase, passphraseCost: CHEAP });
	const linked = async () =>
		restoreAccount(
			{
				masterSeed: null,
				userId: first.keyring.identity.userId,
				sskCert: first.keyring.identity.sskCert,
				sskSeed: first.keyring.sskSeed,
				accountKey: first.keyring.accountKey
			},
			{ now: 2_000, passphrase, passphraseCost: CHEAP }
		);
	return { first, second: await linked(), third: await linked() };
}

function me(keyring: UnlockedKeyring) {
	return {
		user: keyring.identity.userId,
		device: keyring.identity.deviceId,
		dhSecret: keyring.dhSecret,
		current: keyring.identity.sskCert
	};
}

/** The account's current master key, as a move's signer. */
function signer(keyring: UnlockedKeyring, masterSeed = keyring.masterSeed as Uint8Array) {
	return {
		user: keyring.identity.userId,
		masterSeed,
		chain: masterChain(keyring.identity.sskCert)
	};
}

function remainingOf(...keyrings: UnlockedKeyring[]): Map<string, string> {
	return new Map(keyrings.map((k) => [k.identity.deviceId, k.identity.dhPublic]));
}

type Devices = Awaited<ReturnType<typeof threeDevices>>;

/** The first device (it holds the master key) removes the third; the second remains. */
function removeThird({ first, second, third }: Devices) {
	return makeVaultMove(
		signer(first.keyring),
		remainingOf(first.keyring, second.keyring),
		[third.keyring.identity.deviceId],
		5_000
	);
}

describe('vault move (removing a device)', () => {
	it('hands the remaining devices one new self-signing key and account key; the removed one learns it was removed', async () => {
		const { first, second, third } = await threeDevices();
		const removedId = third.keyring.identity.deviceId;
		const { move, keys } = await makeVaultMove(
			signer(first.keyring),
			remainingOf(first.keyring, second.keyring),
			[removedId],
			5_000
		);
		const roundTrip = decodeVaultMove(encodeVaultMove(move)) as VaultMove;
		for (const device of [first, second]) {
			const outcome = await readVaultMove(roundTrip, me(device.keyring));
			expect(outcome.kind).toBe('adopt');
			if (outcome.kind !== 'adopt') continue;
			expect(outcome.removed).toEqual([removedId]);
			expect(outcome.keys.sskSeed).toEqual(keys.sskSeed);
			expect(outcome.keys.accountKey).toEqual(keys.accountKey);
			expect(outcome.keys.accountKey).not.toEqual(first.keyring.accountKey);
			expect(vaultRoomId(outcome.keys.accountKey)).not.toBe(vaultRoomId(first.keyring.accountKey));
		}
		expect(await readVaultMove(roundTrip, me(third.keyring))).toEqual({
			kind: 'removed',
			issued: 5_000
		});
	});

	it('is not taken twice: a device already on the new key reads it as nothing', async () => {
		const { first, second } = await threeDevices();
		const { move } = await makeVaultMove(
			signer(first.keyring),
			remainingOf(first.keyring),
			[second.keyring.identity.deviceId],
			5_000
		);
		const outcome = await readVaultMove(move, me(first.keyring));
		if (outcome.kind !== 'adopt') throw new Error('expected adopt');
		const next = await adoptSelfSigning(first.stored, first.keyring, outcome.keys, 6_000);
		expect((await readVaultMove(move, me(next.keyring))).kind).toBe('none');
	});

	it('refuses a move the master key did not sign (a removed device cannot forge one, nor strip a lockbox)', async () => {
		const { first, second, third } = await threeDevices();
		const { move } = await removeThird({ first, second, third });
		// Drop the second device's lockbox and claim it removed, keeping the signature.
		const body = JSON.parse(move.body) as { boxes: Record<string, string>; removed: string[] };
		delete body.boxes[second.keyring.identity.deviceId];
		body.removed.push(second.keyring.identity.deviceId);
		const stripped = { body: JSON.stringify(body), sig: move.sig };
		await expect(readVaultMove(stripped, me(second.keyring))).rejects.toThrow(VaultMoveError);
		// Signed by another account's master key.
		const other = await createAccount();
		const { move: foreign } = await makeVaultMove(
			{ ...signer(other.keyring), user: first.keyring.identity.userId },
			remainingOf(first.keyring),
			[second.keyring.identity.deviceId],
			5_000
		);
		await expect(readVaultMove(foreign, me(second.keyring))).rejects.toThrow(
			'not signed by the account'
		);
	});

	it('refuses a lockbox that does not open for this device', async () => {
		const { first, second, third } = await threeDevices();
		const { move } = await removeThird({ first, second, third });
		// The second device's id with the first device's key-agreement secret.
		await expect(
			readVaultMove(move, { ...me(second.keyring), dhSecret: first.keyring.dhSecret })
		).rejects.toThrow('does not open');
	});

	it('tells vault changes from moves, and malformed moves from both', () => {
		const changes = utf8Encode(JSON.stringify({ vault: 1, changes: [] }));
		expect(decodeVaultMove(changes)).toBeNull();
		expect(decodeVaultMove(utf8Encode('not json'))).toBeNull();
		expect(() => decodeVaultMove(utf8Encode(JSON.stringify({ vaultMove: 2 })))).toThrow(
			VaultMoveError
		);
		expect(() =>
			decodeVaultMove(utf8Encode(JSON.stringify({ vaultMove: 1, body: 'x', sig: '!' })))
		).toThrow('malformed');
	});
});

describe('vault move that replaces the master key (a new recovery key)', () => {
	it('hands every device keys under the new master key; the user id stays and the old key is replaced', async () => {
		const { first, second, third } = await threeDevices();
		const successor = decodeRecoveryKey(encodeRecoveryKey(new Uint8Array(32).fill(7)));
		const { move } = await makeVaultMove(
			{ ...signer(first.keyring), successor },
			remainingOf(first.keyring, second.keyring, third.keyring),
			[],
			5_000
		);
		const user = first.keyring.identity.userId;
		const adopted = [];
		for (const device of [first, second, third]) {
			const outcome = await readVaultMove(move, me(device.keyring));
			if (outcome.kind !== 'adopt') throw new Error('expected adopt');
			expect(outcome.removed).toEqual([]);
			// Signed by the new master key, with the chain from the user id.
			const body = await verifySskCert(user, outcome.keys.sskCert);
			expect(body.user).toBe(user);
			expect(outcome.keys.sskCert.signer).not.toBe(user);
			expect(masterChain(outcome.keys.sskCert)).toHaveLength(1);
			adopted.push(
				await adoptSelfSigning(device.stored, device.keyring, {
					...outcome.keys,
					...(device === first ? { masterSeed: successor } : {})
				})
			);
		}
		const [one, two] = adopted as [(typeof adopted)[0], (typeof adopted)[0]];
		// Only the device that made it keeps the master key, the new one.
		expect(one.keyring.masterSeed).toEqual(successor);
		// A device restored with the old key held it too: it drops it.
		const restored = await restoreAccount(
			{
				masterSeed: first.keyring.masterSeed as Uint8Array,
				sskSeed: first.keyring.sskSeed,
				accountKey: first.keyring.accountKey
			},
			{ now: 3_000 }
		);
		const forRestored = await readVaultMove(move, me(restored.keyring));
		expect(forRestored.kind).toBe('none'); // it had no lockbox: not in `remaining`
		const handed = (await readVaultMove(move, me(first.keyring))) as { keys: MovedKeys };
		const dropped = await adoptSelfSigning(restored.stored, restored.keyring, handed.keys);
		expect(dropped.keyring.masterSeed).toBeNull();
		expect((await unlockKeyring(dropped.stored)).masterSeed).toBeNull();
		expect((await unlockKeyring(one.stored)).masterSeed).toEqual(successor);
		expect(two.keyring.masterSeed).toBeNull();
		expect(one.keyring.identity.userId).toBe(user);
		const chain = await verifyDeviceChain(
			user,
			two.keyring.identity.sskCert,
			two.keyring.identity.deviceCert
		);
		expect(chain.device).toBe(second.keyring.identity.deviceId);
		// A later removal is signed by the new master key and carries the chain.
		const { move: removal } = await makeVaultMove(
			signer(one.keyring),
			remainingOf(one.keyring),
			[two.keyring.identity.deviceId],
			6_000
		);
		expect((await readVaultMove(removal, me(two.keyring))).kind).toBe('removed');
		const next = await readVaultMove(removal, me(one.keyring));
		if (next.kind !== 'adopt') throw new Error('expected adopt');
		expect(masterChain(next.keys.sskCert)).toHaveLength(1);
	});

	it('refuses a move signed with the replaced master key', async () => {
		const { first, second } = await threeDevices();
		const successor = new Uint8Array(32).fill(9);
		const { move } = await makeVaultMove(
			{ ...signer(first.keyring), successor },
			remainingOf(first.keyring, second.keyring),
			[],
			5_000
		);
		const outcome = await readVaultMove(move, me(second.keyring));
		if (outcome.kind !== 'adopt') throw new Error('expected adopt');
		const moved = await adoptSelfSigning(second.stored, second.keyring, outcome.keys);
		// Whoever still has the old recovery key writes a removal of the second device.
		const { move: stale } = await makeVaultMove(
			signer(first.keyring),
			remainingOf(first.keyring),
			[second.keyring.identity.deviceId],
			7_000
		);
		await expect(readVaultMove(stale, me(moved.keyring))).rejects.toThrow(
			'not signed by the account'
		);
	});
});

describe('adoptSelfSigning', () => {
	it('certifies the device under the new key and stores it again, passphrase and all', async () => {
		const { first, second, third } = await threeDevices('correct horse');
		const { move } = await removeThird({ first, second, third });
		const outcome = await readVaultMove(move, me(second.keyring));
		if (outcome.kind !== 'adopt') throw new Error('expected adopt');
		const next = await adoptSelfSigning(second.stored, second.keyring, outcome.keys, 6_000);
		const { identity } = next.keyring;
		expect(identity.deviceId).toBe(second.keyring.identity.deviceId);
		expect(identity.sskPublic).toBe((JSON.parse(outcome.keys.sskCert.body) as { key: string }).key);
		const chain = await verifyDeviceChain(identity.userId, identity.sskCert, identity.deviceCert);
		expect(chain.device).toBe(identity.deviceId);
		expect(chain.dh).toBe(second.keyring.identity.dhPublic);
		// Stored again: it opens with the same passphrase, with the new keys and the old device keys.
		const reopened = await unlockKeyring(next.stored, 'correct horse');
		expect(reopened.accountKey).toEqual(outcome.keys.accountKey);
		expect(reopened.sskSeed).toEqual(outcome.keys.sskSeed);
		expect(reopened.dhSecret).toEqual(second.keyring.dhSecret);
		expect(reopened.localKey).toEqual(second.keyring.localKey);
		expect(reopened.masterSeed).toBeNull();
		expect(toBase64Url(reopened.deviceSigner.publicKey)).toBe(identity.deviceId);
		await expect(unlockKeyring(next.stored, 'wrong')).rejects.toThrow();
		expect(identity.deviceCert.signer).toBe(identity.sskPublic);
		expect(identity.sskPublic).not.toBe(second.keyring.identity.sskPublic);
	});
});
