import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAccount, restoreAccount, type PublicIdentity } from '../identity';
import { HlcClock } from './hlc';
import { makeMemberAdd, makeMemberRole, type MemberAddOp, type Role } from './operations';
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
