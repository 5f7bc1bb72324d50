import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAccount, type PublicIdentity } from '../identity';
import { RosterGate, type SignedOps } from './admission';
import { HlcClock } from './hlc';
import { makeMemberAdd, makeMemberRole, makeSend, type Role } from './operations';
import { ConversationReducer, type ReducerItem } from './reducer';
import { Roster } from './roster';

const clock = new HlcClock();
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

function add(who: PublicIdentity, role: Role) {
	return makeMemberAdd(clock, {
		user: who.userId,
		devices: [who.deviceId],
		role,
		name: who.userId.slice(0, 4),
		ssk: who.sskCert,
		certs: [who.deviceCert]
	});
}

function permutations<T>(items: readonly T[]): T[][] {
	if (items.length <= 1) return [items.slice()];
	return items.flatMap((item, i) =>
		permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest])
	);
}

/** Admit envelopes one at a time in the given order; the texts that counted, with authors. */
async function admitted(envelopes: SignedOps[]): Promise<{ texts: string[]; held: number }> {
	const roster = new Roster(ada.userId);
	const gate = new RosterGate(roster, (device) => roster.ownerOf(device));
	const texts: string[] = [];
	for (const envelope of envelopes) {
		await gate.admit([envelope], (_e, author, op) => {
			if (op.type === 'send')
				texts.push(
					`${author === ada.userId ? 'ada' : author === bob.userId ? 'bob' : author === cy.userId ? 'cy' : 'other'}:${op.text}`
				);
		});
	}
	return { texts: texts.sort(), held: gate.heldCount };
}

describe('RosterGate', () => {
	it('admits the same operations whatever the arrival order; a stranger counts for nothing', async () => {
		const envelopes: SignedOps[] = [
			{ entryId: 'g', device: ada.deviceId, ops: [add(ada, 'owner'), makeSend(clock, 'a1')] },
			{ entryId: 'b', device: ada.deviceId, ops: [add(bob, 'admin')] },
			{ entryId: 'c', device: bob.deviceId, ops: [add(cy, 'member'), makeSend(clock, 'b1')] },
			{ entryId: 'm', device: cy.deviceId, ops: [makeSend(clock, 'c1')] },
			{ entryId: 'e', device: eve.deviceId, ops: [add(eve, 'owner'), makeSend(clock, 'e1')] }
		];
		for (const order of permutations(envelopes)) {
			const result = await admitted(order);
			expect(result.texts).toEqual(['ada:a1', 'bob:b1', 'cy:c1']);
			expect(result.held).toBe(1); // Eve's envelope waits, forever
		}
	});

	it('applies role changes by the membership rules, the same in any order', async () => {
		// In causal (stamp) order: Ada promotes Bob, Bob adds Cy, Cy tries to
		// promote herself, Ada demotes Bob, then Bob tries to add Eve.
		const envelopes: SignedOps[] = [
			{ entryId: 'g', device: ada.deviceId, ops: [add(ada, 'owner')] },
			{ entryId: 'b', device: ada.deviceId, ops: [add(bob, 'member')] },
			{ entryId: 'p', device: ada.deviceId, ops: [makeMemberRole(clock, bob.userId, 'admin')] },
			{ entryId: 'c', device: bob.deviceId, ops: [add(cy, 'member'), makeSend(clock, 'b1')] },
			{
				entryId: 'f',
				device: cy.deviceId,
				ops: [makeMemberRole(clock, cy.userId, 'admin'), makeSend(clock, 'c1')]
			},
			{ entryId: 'd', device: ada.deviceId, ops: [makeMemberRole(clock, bob.userId, 'member')] },
			{ entryId: 'e', device: bob.deviceId, ops: [add(eve, 'member')] },
			{ entryId: 'x', device: eve.deviceId, ops: [makeSend(clock, 'e1')] }
		];
		const name = (user: string) =>
			user === ada.userId ? 'ada' : user === bob.userId ? 'bob' : user === cy.userId ? 'cy' : 'eve';
		// As a replica does: admit, recount when the roster changed, reduce.
		const run = async (order: SignedOps[]) => {
			const roster = new Roster(ada.userId);
			const gate = new RosterGate(roster, (device) => roster.ownerOf(device));
			const reducer = new ConversationReducer();
			for (const envelope of order) {
				const items: ReducerItem[] = [];
				const version = roster.version;
				await gate.admit([envelope], (e, author, op) =>
					items.push({ op, author, device: e.device, envelopeId: e.entryId })
				);
				if (roster.version !== version) gate.recount(reducer);
				reducer.add(items);
			}
			return {
				roles: roster.members().map((m) => [name(m.user), m.role]),
				events: roster.membership.events.length,
				texts: reducer.messages.map((m) => `${name(m.author)}:${m.text}`)
			};
		};
		const expected = await run(envelopes);
		expect(expected.roles.slice(0, 1)).toEqual([['ada', 'owner']]);
		expect(expected.roles.slice(1).sort()).toEqual([
			['bob', 'member'],
			['cy', 'member']
		]);
		// Eve was added after Bob's demotion: what she sends counts for nothing.
		expect(expected.texts).toEqual(['bob:b1', 'cy:c1']);
		await fc.assert(
			fc.asyncProperty(
				fc.shuffledSubarray(envelopes, { minLength: envelopes.length }),
				async (order) => {
					expect(await run(order)).toEqual(expected);
				}
			),
			{ numRuns: 40 }
		);
	});
});
