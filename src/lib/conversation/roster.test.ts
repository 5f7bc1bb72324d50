import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createSigner, ed25519PublicKey, newSigningSeed, toBase64Url } from '../crypto';
import {
	certify,
	createAccount,
	restoreAccount,
	type Certificate,
	type PublicIdentity
} from '../identity';
import { HlcClock } from './hlc';
import { makeMemberAdd, makeMemberRole, opHlc, type MemberAddOp, type Role } from './operations';
import { MAX_MEMBERS, Roster } from './roster';

const clock = new HlcClock();

function add(who: PublicIdentity, role: Role, name: string): MemberAddOp {
	return makeMemberAdd(clock, {
		user: who.userId,
		devices: [who.deviceId],
		role,
		name,
		ssk: who.sskCert,
		certs: [who.deviceCert]
	});
}

/** Apply signed adds the way a session does: retry the refused ones while the roster grows. */
async function build(
	creator: string,
	adds: ReadonlyArray<{ op: MemberAddOp; signer: string }>
): Promise<Roster> {
	const roster = new Roster(creator);
	let pending = [...adds];
	for (;;) {
		const before = roster.version;
		const next: typeof pending = [];
		for (const item of pending) {
			if (roster.authorised(item.op, item.signer)) await roster.apply(item.op, item.signer);
			else next.push(item);
		}
		pending = next;
		if (roster.version === before || pending.length === 0) return roster;
	}
}

function summary(roster: Roster) {
	return roster.members().map((m) => ({
		user: m.user,
		name: m.name,
		role: m.role,
		devices: [...m.devices.keys()].sort()
	}));
}

let ada: PublicIdentity;
let bob: PublicIdentity;
let cy: PublicIdentity;
let eve: PublicIdentity;

beforeAll(async () => {
	const made = await Promise.all(
		[0, 1, 2, 3].map(async () => (await createAccount()).keyring.identity)
	);
	[ada, bob, cy, eve] = made as [PublicIdentity, PublicIdentity, PublicIdentity, PublicIdentity];
});

describe('Roster', () => {
	it("admits the creator's first device by its own genesis add", async () => {
		const roster = await build(ada.userId, [
			{ op: add(ada, 'owner', 'Ada'), signer: ada.deviceId }
		]);
		expect(roster.ownerOf(ada.deviceId)).toBe(ada.userId);
		expect(roster.roleOf(ada.userId)).toBe('owner');
		expect(roster.member(ada.userId)?.devices.get(ada.deviceId)).toBe(ada.dhPublic);
		expect(roster.canAdd(ada.deviceId)).toBe(true);
	});

	it('refuses a genesis claimed by someone who is not the creator', async () => {
		const roster = await build(ada.userId, [
			{ op: add(eve, 'owner', 'Eve'), signer: eve.deviceId }
		]);
		expect(roster.size).toBe(0);
		expect(roster.ownerOf(eve.deviceId)).toBeUndefined();
	});

	it('lets owners and admins add; a plain member or an outsider adds nobody', async () => {
		const roster = await build(ada.userId, [
			{ op: add(ada, 'owner', 'Ada'), signer: ada.deviceId },
			{ op: add(bob, 'member', 'Bob'), signer: ada.deviceId },
			{ op: add(cy, 'member', 'Cy'), signer: bob.deviceId },
			{ op: add(eve, 'admin', 'Eve'), signer: eve.deviceId }
		]);
		expect(summary(roster).map((m) => m.name)).toEqual(['Ada', 'Bob']);
		expect(roster.canAdd(bob.deviceId)).toBe(false);
	});

	it('only an owner makes an owner', async () => {
		const roster = await build(ada.userId, [
			{ op: add(ada, 'owner', 'Ada'), signer: ada.deviceId },
			{ op: add(bob, 'admin', 'Bob'), signer: ada.deviceId },
			{ op: add(cy, 'owner', 'Cy'), signer: bob.deviceId }
		]);
		expect(roster.roleOf(bob.userId)).toBe('admin');
		expect(roster.roleOf(cy.userId)).toBeUndefined();
	});

	it('ignores a device whose certificate chain is not the user’s', async () => {
		const forged = makeMemberAdd(clock, {
			user: bob.userId,
			devices: [eve.deviceId],
			role: 'member',
			name: 'Bob',
			ssk: bob.sskCert,
			certs: [eve.deviceCert]
		});
		const bare = makeMemberAdd(clock, { user: cy.userId, devices: [cy.deviceId], role: 'member' });
		const roster = await build(ada.userId, [
			{ op: add(ada, 'owner', 'Ada'), signer: ada.deviceId },
			{ op: forged, signer: ada.deviceId },
			{ op: bare, signer: ada.deviceId }
		]);
		expect(roster.ownerOf(eve.deviceId)).toBeUndefined();
		expect(roster.member(bob.userId)).toBeUndefined();
		expect(roster.member(cy.userId)).toBeUndefined();
	});

	it('merges adds of one user: highest role, latest name', async () => {
		const genesis = add(ada, 'owner', 'Ada');
		const first = add(bob, 'member', 'Bob');
		const second = add(bob, 'admin', 'Robert');
		const roster = await build(ada.userId, [
			{ op: genesis, signer: ada.deviceId },
			{ op: second, signer: ada.deviceId },
			{ op: first, signer: ada.deviceId }
		]);
		expect(roster.roleOf(bob.userId)).toBe('admin');
		expect(roster.member(bob.userId)?.name).toBe('Robert');
	});

	it('changes roles by member.role: promoted admins add, demoted ones no longer do', async () => {
		const genesis = add(ada, 'owner', 'Ada');
		const addBob = add(bob, 'member', 'Bob');
		const forgedPromote = makeMemberRole(clock, bob.userId, 'admin');
		const promote = makeMemberRole(clock, bob.userId, 'admin');
		const addCy = add(cy, 'member', 'Cy');
		const demote = makeMemberRole(clock, bob.userId, 'member');
		const addEve = add(eve, 'member', 'Eve');
		const roster = await build(ada.userId, [
			{ op: genesis, signer: ada.deviceId },
			{ op: addBob, signer: ada.deviceId }
		]);
		// Bob promoting himself changes nothing.
		expect(roster.applyChange(forgedPromote, bob.deviceId)).toBe(false);
		expect(roster.roleOf(bob.userId)).toBe('member');
		expect(roster.canAdd(bob.deviceId)).toBe(false);
		expect(roster.applyChange(promote, ada.deviceId)).toBe(true);
		expect(roster.roleOf(bob.userId)).toBe('admin');
		expect(roster.canAdd(bob.deviceId)).toBe(true);
		// The demotion arrives before Bob's adds: the one he made while an
		// admin still counts, the one after does not.
		expect(roster.applyChange(demote, ada.deviceId)).toBe(true);
		expect(roster.authorised(addCy, bob.deviceId)).toBe(true);
		await roster.apply(addCy, bob.deviceId);
		expect(roster.authorised(addEve, bob.deviceId)).toBe(false);
		expect(roster.members().map((m) => [m.name, m.role])).toEqual([
			['Ada', 'owner'],
			['Bob', 'member'],
			['Cy', 'member']
		]);
	});

	it("lets a member's new device add itself, and nothing more (rule 6)", async () => {
		const bobAccount = await createAccount();
		const bob1 = bobAccount.keyring.identity;
		// A linked device: no master key, the account's self-signing key and its certificate.
		const bob2 = (
			await restoreAccount({
				masterSeed: null,
				userId: bob1.userId,
				sskCert: bob1.sskCert,
				sskSeed: bobAccount.keyring.sskSeed,
				accountKey: bobAccount.keyring.accountKey
			})
		).keyring.identity;
		expect(bob2.userId).toBe(bob1.userId);
		const genesis = { op: add(ada, 'owner', 'Ada'), signer: ada.deviceId };
		const addBob = { op: add(bob1, 'member', 'Bob'), signer: ada.deviceId };
		// Bob's second device adds itself, naming a role it does not have.
		const own = add(bob2, 'admin', 'Bob');
		const roster = await build(ada.userId, [genesis]);
		expect(roster.authorised(own, bob2.deviceId)).toBe(false); // Bob is not a member yet
		expect(await roster.apply(own, bob2.deviceId)).toBe(false);
		await roster.apply(addBob.op, ada.deviceId);
		expect(roster.authorised(own, bob2.deviceId)).toBe(true);
		expect(await roster.apply(own, bob2.deviceId)).toBe(true);
		expect(roster.ownerOf(bob2.deviceId)).toBe(bob1.userId);
		expect(roster.roleOf(bob1.userId)).toBe('member');
		expect(roster.membership.events.map((e) => e.kind)).toEqual(['joined', 'joined']);
		// The same add signed by someone else's device is an add by them: Cy is no admin.
		const cyRoster = await build(ada.userId, [
			genesis,
			addBob,
			{ op: add(cy, 'member', 'Cy'), signer: ada.deviceId }
		]);
		expect(cyRoster.authorised(add(bob2, 'member', 'Bob'), cy.deviceId)).toBe(false);
		// A known device of Bob listing another device adds nothing: only a signer vouches for itself.
		const bob3 = (
			await restoreAccount({
				masterSeed: bobAccount.keyring.masterSeed as Uint8Array,
				sskSeed: bobAccount.keyring.sskSeed,
				accountKey: bobAccount.keyring.accountKey
			})
		).keyring.identity;
		const listed = add(bob3, 'member', 'Bob');
		expect(await roster.apply(listed, bob1.deviceId)).toBe(false);
		expect(roster.ownerOf(bob3.deviceId)).toBeUndefined();
		// A device with another user's chain is not Bob's.
		const forged = {
			...add(bob2, 'member', 'Bob'),
			devices: [eve.deviceId],
			certs: [eve.deviceCert]
		};
		expect(await roster.apply(forged, eve.deviceId)).toBe(false);
		expect(roster.ownerOf(eve.deviceId)).toBeUndefined();
	});

	it('keeps a backdated variant of an add (preferred, refused) whatever the order', async () => {
		const genesis = add(ada, 'owner', 'Ada');
		const addBob = add(bob, 'member', 'Bob');
		const promote = makeMemberRole(clock, bob.userId, 'admin');
		const addCy = add(cy, 'member', 'Cy');
		// Bob re-signs his add of Cy under the same id, stamped before he was an admin.
		// (A wall clock of the same length, earlier: the lesser JSON, so the one the replay keeps.)
		const backdated = { ...addCy, hlc: [promote.hlc[0] - 1, 0] as [number, number] };
		const orders = [
			[addCy, backdated],
			[backdated, addCy]
		];
		for (const [first, second] of orders) {
			const roster = await build(ada.userId, [
				{ op: genesis, signer: ada.deviceId },
				{ op: addBob, signer: ada.deviceId }
			]);
			roster.applyChange(promote, ada.deviceId);
			// As the gate does: an add not authorised waits, and is tried again.
			for (let round = 0; round < 2; round++) {
				for (const op of [first, second] as MemberAddOp[]) {
					if (roster.authorised(op, bob.deviceId)) await roster.apply(op, bob.deviceId);
					else await roster.supersede(op, bob.deviceId);
				}
			}
			expect(roster.roleOf(cy.userId)).toBeUndefined();
		}
	});

	it('is the same whatever order the adds arrive in', async () => {
		const adds = [
			{ op: add(ada, 'owner', 'Ada'), signer: ada.deviceId },
			{ op: add(bob, 'admin', 'Bob'), signer: ada.deviceId },
			{ op: add(cy, 'member', 'Cy'), signer: bob.deviceId },
			{ op: add(eve, 'member', 'Eve'), signer: cy.deviceId },
			{ op: add(bob, 'member', 'Bobby'), signer: ada.deviceId }
		];
		const expected = summary(await build(ada.userId, adds));
		expect(expected.map((m) => m.name)).toEqual(['Ada', 'Bobby', 'Cy']);
		await fc.assert(
			fc.asyncProperty(fc.shuffledSubarray(adds, { minLength: adds.length }), async (order) => {
				expect(summary(await build(ada.userId, order))).toEqual(expected);
			}),
			{ numRuns: 40 }
		);
	});

	it(`holds at most ${MAX_MEMBERS} members; adds past that change nothing`, async () => {
		const people = await Promise.all(
			Array.from({ length: MAX_MEMBERS }, async () => (await createAccount()).keyring.identity)
		);
		const adds = [
			{ op: add(ada, 'owner', 'Ada'), signer: ada.deviceId },
			...people.map((p, i) => ({ op: add(p, 'member', `P${i}`), signer: ada.deviceId }))
		];
		const roster = await build(ada.userId, adds);
		expect(roster.size).toBe(MAX_MEMBERS);
		expect(roster.member(people.at(-1)!.userId)).toBeUndefined();
		// An existing member still gains devices and roles when the roster is full.
		await roster.apply(add(people[0]!, 'admin', 'P0'), ada.deviceId);
		expect(roster.roleOf(people[0]!.userId)).toBe('admin');
	});
});

/**
 * A user whose keys the test holds: devices D1..D5 certified by the first
 * self-signing key (SSK1, issued 1000; each restored device has the master
 * key sign it again, later), and what it takes to rotate it.
 */
interface Rotating {
	user: string;
	d: [PublicIdentity, PublicIdentity, PublicIdentity, PublicIdentity, PublicIdentity];
	/** SSK1's private seed (every device holds it: a removed one too). */
	sskSeed: Uint8Array;
	/** The first master key (the first recovery key). */
	masterSeed: Uint8Array;
	/** A new SSK certified by the master key, and certificates of devices under it. */
	newSsk(
		issued: number,
		seed?: Uint8Array
	): Promise<{
		key: string;
		cert: Certificate;
		device(device: PublicIdentity): Promise<Certificate>;
	}>;
}

async function rotating(): Promise<Rotating> {
	const made = await createAccount({ now: 1000 });
	const { masterSeed, sskSeed, accountKey } = made.keyring;
	const others = await Promise.all(
		[1, 2, 3, 4].map(
			async (i) =>
				(
					await restoreAccount(
						{ masterSeed: masterSeed as Uint8Array, sskSeed, accountKey },
						{ now: 1000 + 100 * i }
					)
				).keyring.identity
		)
	);
	const user = made.keyring.identity.userId;
	const master = await createSigner(masterSeed as Uint8Array);
	return {
		user,
		d: [made.keyring.identity, ...others] as Rotating['d'],
		sskSeed,
		masterSeed: masterSeed as Uint8Array,
		async newSsk(issued, seed = newSigningSeed()) {
			const key = toBase64Url(ed25519PublicKey(seed));
			const signer = await createSigner(seed);
			return {
				key,
				cert: await certify({ v: 1, type: 'ssk', user, key, issued }, master),
				device: (device) =>
					certify(
						{ v: 1, type: 'device', user, device: device.deviceId, dh: device.dhPublic, issued },
						signer
					)
			};
		}
	};
}

/** An add of `user` listing `devices` with their certificates under `ssk`. */
function addUnder(
	user: string,
	ssk: Certificate,
	devices: ReadonlyArray<{ id: string; cert: Certificate }>,
	role: Role = 'member'
): MemberAddOp {
	return makeMemberAdd(clock, {
		user,
		devices: devices.map((d) => d.id),
		role,
		ssk,
		certs: devices.map((d) => d.cert)
	});
}

/** A device's own add under its first SSK (rule 6). */
function self(device: PublicIdentity): { op: MemberAddOp; signer: string } {
	return { op: add(device, 'member', 'Bob'), signer: device.deviceId };
}

function devicesOf(roster: Roster, user: string) {
	const member = roster.member(user);
	return {
		devices: [...(member?.devices.keys() ?? [])].sort(),
		revoked: [...(member?.revoked ?? [])].sort()
	};
}

const ids = (...devices: PublicIdentity[]) => devices.map((d) => d.deviceId).sort();

describe('Roster rule 7: revocation by a newer self-signing key', () => {
	let bob: Rotating;
	let ssk2: Awaited<ReturnType<Rotating['newSsk']>>;
	let certs2: Certificate[];

	beforeAll(async () => {
		bob = await rotating();
		ssk2 = await bob.newSsk(2000);
		certs2 = await Promise.all(bob.d.map((device) => ssk2.device(device)));
	});

	/** Ada's roster with Bob (an admin) and his devices D1, D2, D3 under SSK1. */
	async function withBob(): Promise<Roster> {
		const [d1, d2, d3] = bob.d;
		return build(ada.userId, [
			{ op: add(ada, 'owner', 'Ada'), signer: ada.deviceId },
			{ op: add(d1, 'admin', 'Bob'), signer: ada.deviceId },
			self(d2),
			self(d3)
		]);
	}

	/** Bob's own add under SSK2 signed by `signer`, listing `devices` (indices in bob.d). */
	function under2(signer: number, devices: number[]): { op: MemberAddOp; signer: string } {
		return {
			op: addUnder(
				bob.user,
				ssk2.cert,
				devices.map((i) => ({ id: bob.d[i]!.deviceId, cert: certs2[i]! }))
			),
			signer: bob.d[signer]!.deviceId
		};
	}

	it('counts what a revoked device signed before the new key, and nothing after', async () => {
		const roster = await withBob();
		const [d1, d2] = bob.d;
		expect(roster.excludesAnyone).toBe(false);
		const rotate = under2(0, [0, 2]);
		await roster.apply(rotate.op, rotate.signer);
		const changed = roster.sskChangedAt();
		if (!changed) throw new Error('expected a change');
		const before = { wall: changed.hlc.wall - 1, counter: 0 };
		const after = { wall: changed.hlc.wall + 1, counter: 0 };
		expect(roster.excludesAnyone).toBe(true);
		expect(roster.deviceCounts(d2!.deviceId, before, 'op-1')).toBe(true);
		expect(roster.deviceCounts(d2!.deviceId, after, 'op-2')).toBe(false);
		// The same stamp as the change: ordered by op id.
		expect(roster.deviceCounts(d2!.deviceId, changed.hlc, '')).toBe(true);
		// Active devices and strangers are not judged here.
		expect(roster.deviceCounts(d1!.deviceId, after, 'op-3')).toBe(true);
		expect(roster.deviceCounts('someone-else', after, 'op-4')).toBe(true);
	});

	it('keeps sskChangedAt null while every user has had one SSK', async () => {
		const roster = await withBob();
		const [d1, d2, d3] = bob.d;
		// Three certificates of SSK1 (issued 1000, 1100, 1200): one key.
		expect(devicesOf(roster, bob.user)).toEqual({ devices: ids(d1, d2, d3), revoked: [] });
		expect(roster.member(bob.user)?.sskKeys.size).toBe(1);
		expect(roster.sskChangedAt()).toBeNull();
		expect(roster.revokedDevice(d2.deviceId)).toBe(false);
	});

	it('revokes the devices the newer SSK does not certify', async () => {
		const roster = await withBob();
		const [d1, d2, d3] = bob.d;
		const rotate = under2(0, [0, 2]);
		const version = roster.version;
		expect(roster.authorised(rotate.op, rotate.signer)).toBe(true);
		expect(await roster.apply(rotate.op, rotate.signer)).toBe(true);
		expect(roster.version).toBeGreaterThan(version);
		const member = roster.members().find((m) => m.user === bob.user);
		expect([...(member?.devices.keys() ?? [])].sort()).toEqual(ids(d1, d3));
		expect(member?.devices.get(d3.deviceId)).toBe(d3.dhPublic);
		expect([...(member?.revoked ?? [])]).toEqual([d2.deviceId]);
		expect(member?.sskKeys.size).toBe(2);
		expect(member?.sskKeys.has(ssk2.key)).toBe(true);
		expect(roster.currentSsk(bob.user)).toBe(ssk2.key);
		// What D2 signed before stays Bob's.
		expect(roster.ownerOf(d2.deviceId)).toBe(bob.user);
		expect(roster.revokedDevice(d2.deviceId)).toBe(true);
		expect(roster.revokedDevice(d3.deviceId)).toBe(false);
		expect(roster.sskChangedAt()).toEqual({ hlc: opHlc(rotate.op), id: rotate.op.id });
		expect(roster.canAdd(d1.deviceId)).toBe(true);
		expect(roster.canAdd(d2.deviceId)).toBe(false);
		// Applying it again changes nothing.
		expect(await roster.apply(rotate.op, rotate.signer)).toBe(false);
	});

	it('lets a device re-certify itself later under the newer SSK', async () => {
		const roster = await withBob();
		const [d1, d2, d3] = bob.d;
		const rotate = under2(0, [0]);
		await roster.apply(rotate.op, rotate.signer);
		expect(devicesOf(roster, bob.user)).toEqual({ devices: ids(d1), revoked: ids(d2, d3) });
		const again = under2(2, [2]);
		const version = roster.version;
		expect(await roster.apply(again.op, again.signer)).toBe(true);
		expect(roster.version).toBeGreaterThan(version);
		expect(devicesOf(roster, bob.user)).toEqual({ devices: ids(d1, d3), revoked: ids(d2) });
		// The change of SSK is still the first add that carried SSK2.
		expect(roster.sskChangedAt()).toEqual({ hlc: opHlc(rotate.op), id: rotate.op.id });
	});

	it('lets a revoked device add nobody, nor itself back', async () => {
		const roster = await withBob();
		const [, d2] = bob.d;
		const rotate = under2(0, [0, 2]);
		await roster.apply(rotate.op, rotate.signer);
		const before = { version: roster.version, changedAt: roster.sskChangedAt() };
		// Bob is an admin, but D2 speaks for him no more.
		const addCy = add(cy, 'member', 'Cy');
		expect(roster.authorised(addCy, d2.deviceId)).toBe(false);
		expect(await roster.apply(addCy, d2.deviceId)).toBe(false);
		expect(await roster.supersede(addCy, d2.deviceId)).toBe(false);
		expect(roster.member(cy.userId)).toBeUndefined();
		// Its own add under the old SSK: with the certificate it had, or with
		// a fresh one (it holds the old SSK): nothing changes.
		const fresh = await certify(
			{ v: 1, type: 'device', user: bob.user, device: d2.deviceId, dh: d2.dhPublic, issued: 1900 },
			await createSigner(bob.sskSeed)
		);
		expect(await roster.apply(add(d2, 'admin', 'Bob'), d2.deviceId)).toBe(false);
		const refreshed = addUnder(bob.user, d2.sskCert, [{ id: d2.deviceId, cert: fresh }]);
		expect(roster.authorised(refreshed, d2.deviceId)).toBe(true);
		expect(await roster.apply(refreshed, d2.deviceId)).toBe(false);
		expect(roster.version).toBe(before.version);
		expect(roster.revokedDevice(d2.deviceId)).toBe(true);
		expect(roster.sskChangedAt()).toEqual(before.changedAt);
	});

	it('re-certifies only devices known as the user’s: no squatting on device ids', async () => {
		const roster = await withBob();
		const [d1, d2, d3, d4] = bob.d;
		// D4 (never in the conversation) is listed with a valid SSK2 chain by D1.
		const rotate = under2(0, [0, 2, 3]);
		expect(await roster.apply(rotate.op, rotate.signer)).toBe(true);
		expect(roster.ownerOf(d4.deviceId)).toBeUndefined();
		expect(devicesOf(roster, bob.user)).toEqual({ devices: ids(d1, d3), revoked: ids(d2) });
		// Bob's SSK2 certifying Eve's device, listed by Bob's device: Eve's it stays.
		const roster2 = await build(ada.userId, [
			{ op: add(ada, 'owner', 'Ada'), signer: ada.deviceId },
			{ op: add(bob.d[0], 'admin', 'Bob'), signer: ada.deviceId },
			{ op: add(eve, 'member', 'Eve'), signer: ada.deviceId }
		]);
		const squat = addUnder(bob.user, ssk2.cert, [
			{ id: d1.deviceId, cert: certs2[0]! },
			{ id: eve.deviceId, cert: await ssk2.device(eve) }
		]);
		expect(await roster2.apply(squat, d1.deviceId)).toBe(true);
		expect(roster2.ownerOf(eve.deviceId)).toBe(eve.userId);
		expect(devicesOf(roster2, bob.user)).toEqual({ devices: ids(d1), revoked: [] });
		// D4 joining by its own add (under SSK1) is active: SSK2 certified it,
		// as it would be had its add come first.
		expect(await roster.apply(self(d4).op, d4.deviceId)).toBe(true);
		expect(devicesOf(roster, bob.user)).toEqual({ devices: ids(d1, d3, d4), revoked: ids(d2) });
	});

	it('takes the greater key when two SSKs were issued at the same time', async () => {
		const [sskA, sskB] = await Promise.all([bob.newSsk(3000), bob.newSsk(3000)]);
		const [high, low] = sskA.key > sskB.key ? [sskA, sskB] : [sskB, sskA];
		const [d1, d2, d3] = bob.d;
		const underLow = addUnder(bob.user, low.cert, [
			{ id: d1.deviceId, cert: await low.device(d1) },
			{ id: d2.deviceId, cert: await low.device(d2) }
		]);
		const underHigh = addUnder(bob.user, high.cert, [
			{ id: d1.deviceId, cert: await high.device(d1) },
			{ id: d3.deviceId, cert: await high.device(d3) }
		]);
		for (const order of [
			[underLow, underHigh],
			[underHigh, underLow]
		]) {
			const roster = await withBob();
			for (const op of order) await roster.apply(op, d1.deviceId);
			expect(devicesOf(roster, bob.user)).toEqual({ devices: ids(d1, d3), revoked: ids(d2) });
			expect(roster.sskChangedAt()).toEqual({ hlc: opHlc(underHigh), id: underHigh.id });
		}
	});

	it('keeps the SSK of a new master key current: the replaced key certifies nothing that counts', async () => {
		const [d1, d2, d3] = bob.d;
		// Bob made a new recovery key: master 2, certified by the first, signs SSK3.
		const master2 = await createSigner(newSigningSeed());
		const link = await certify(
			{ v: 1, type: 'master', user: bob.user, key: toBase64Url(master2.publicKey), issued: 2500 },
			await createSigner(bob.masterSeed)
		);
		const sskSeed3 = newSigningSeed();
		const ssk3 = await certify(
			{
				v: 1,
				type: 'ssk',
				user: bob.user,
				key: toBase64Url(ed25519PublicKey(sskSeed3)),
				issued: 2500,
				masters: [link]
			},
			master2
		);
		const signer3 = await createSigner(sskSeed3);
		const cert3 = (device: PublicIdentity) =>
			certify(
				{
					v: 1,
					type: 'device',
					user: bob.user,
					device: device.deviceId,
					dh: device.dhPublic,
					issued: 2500
				},
				signer3
			);
		const underNew = addUnder(bob.user, ssk3, [
			{ id: d1.deviceId, cert: await cert3(d1) },
			{ id: d3.deviceId, cert: await cert3(d3) }
		]);
		// Someone who kept the old recovery key certifies a newer SSK (far later) for D2.
		const stale = await bob.newSsk(9_000);
		const underOld = addUnder(bob.user, stale.cert, [
			{ id: d2.deviceId, cert: await stale.device(d2) }
		]);
		for (const order of [
			[underNew, underOld],
			[underOld, underNew]
		]) {
			const roster = await withBob();
			for (const op of order) {
				expect(await roster.apply(op, op === underOld ? d2.deviceId : d1.deviceId)).toBe(true);
			}
			expect(roster.currentSsk(bob.user)).toBe(toBase64Url(ed25519PublicKey(sskSeed3)));
			expect(devicesOf(roster, bob.user)).toEqual({ devices: ids(d1, d3), revoked: ids(d2) });
		}
	});

	it('is the same whatever order the adds arrive in', async () => {
		const [d1, d2, d3, d4, d5] = bob.d;
		const rotate = under2(0, [0, 2, 4]); // D5 is not known yet on some replicas
		const adds = [
			{ op: add(ada, 'owner', 'Ada'), signer: ada.deviceId },
			{ op: add(d1, 'admin', 'Bob'), signer: ada.deviceId },
			self(d2),
			self(d3),
			self(d4), // linked before the rotation, then removed
			self(d5),
			rotate,
			under2(2, [2]), // D3 again, later: changes nothing
			self(d2), // a revoked device's own add under SSK1
			{ op: add(cy, 'member', 'Cy'), signer: d1.deviceId }
		];
		const outcome = (roster: Roster) => ({
			members: summary(roster),
			bob: devicesOf(roster, bob.user),
			changedAt: roster.sskChangedAt()
		});
		const expected = outcome(await build(ada.userId, adds));
		expect(expected.bob).toEqual({ devices: ids(d1, d3, d5), revoked: ids(d2, d4) });
		expect(expected.changedAt).toEqual({ hlc: opHlc(rotate.op), id: rotate.op.id });
		expect(expected.members.map((m) => m.name)).toEqual(['Ada', 'Bob', 'Cy']);
		await fc.assert(
			fc.asyncProperty(fc.shuffledSubarray(adds, { minLength: adds.length }), async (order) => {
				expect(outcome(await build(ada.userId, order))).toEqual(expected);
			}),
			{ numRuns: 40 }
		);
	});
});
