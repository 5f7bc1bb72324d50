import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Role } from './operations';
import {
	countsAt,
	MembershipLog,
	replayMembership,
	type MembershipOp,
	type MembershipState
} from './membership';

let counter = 0;
function stamp(wall: number, signer: string, id?: string) {
	return { hlc: { wall, counter: 0 }, id: id ?? `op${String(++counter).padStart(6, '0')}`, signer };
}
const add = (wall: number, signer: string, user: string, role: Role = 'member'): MembershipOp => ({
	...stamp(wall, signer),
	kind: 'add',
	user,
	role
});
const remove = (wall: number, signer: string, user: string): MembershipOp => ({
	...stamp(wall, signer),
	kind: 'remove',
	user
});
const role = (wall: number, signer: string, user: string, to: Role): MembershipOp => ({
	...stamp(wall, signer),
	kind: 'role',
	user,
	role: to
});

const roles = (state: MembershipState) =>
	Object.fromEntries([...state.members].map(([user, m]) => [user, m.role]));

const genesis = add(1, 'ada', 'ada', 'owner');

describe('replayMembership', () => {
	it('starts with the creator as owner; owners and admins add, members cannot', () => {
		const state = replayMembership('ada', [
			genesis,
			add(2, 'ada', 'bob', 'admin'),
			add(3, 'bob', 'cy'),
			add(4, 'cy', 'dee'),
			add(5, 'bob', 'eve', 'owner')
		]);
		expect(roles(state)).toEqual({ ada: 'owner', bob: 'admin', cy: 'member' });
		expect(state.refused.size).toBe(2);
	});

	it('refuses a genesis by anyone but the creator, and a second genesis', () => {
		const state = replayMembership('ada', [
			add(1, 'mallory', 'mallory', 'owner'),
			genesis,
			remove(3, 'ada', 'ada'),
			add(4, 'ada', 'ada', 'owner')
		]);
		expect(roles(state)).toEqual({});
		expect(state.refused.size).toBe(2);
	});

	it('gives a forged "promote me" from a plain member no effect', () => {
		const ops = [
			genesis,
			add(2, 'ada', 'bob'),
			role(3, 'bob', 'bob', 'admin'),
			remove(4, 'bob', 'ada')
		];
		const state = replayMembership('ada', ops);
		expect(roles(state)).toEqual({ ada: 'owner', bob: 'member' });
		expect(state.refused.size).toBe(2);
	});

	it('resolves "A removes B" against "B removes A" by the lesser stamp, the same in any order', () => {
		const base = [
			genesis,
			add(2, 'ada', 'bob', 'admin'),
			add(2, 'ada', 'cy', 'admin'),
			add(3, 'ada', 'dee')
		];
		const bobRemovesCy = remove(10, 'bob', 'cy');
		const cyRemovesBob = remove(10, 'cy', 'bob');
		const first = replayMembership('ada', [...base, bobRemovesCy, cyRemovesBob]);
		const second = replayMembership('ada', [cyRemovesBob, ...base.reverse(), bobRemovesCy]);
		expect(roles(first)).toEqual(roles(second));
		expect(first.members.size).toBe(3);
		const winner = bobRemovesCy.id < cyRemovesBob.id ? 'bob' : 'cy';
		expect(first.members.has(winner)).toBe(true);
		expect(first.refused.size).toBe(1);
	});

	it('lets anyone leave; an admin cannot remove or demote an owner', () => {
		const state = replayMembership('ada', [
			genesis,
			add(2, 'ada', 'bob', 'admin'),
			add(3, 'ada', 'cy'),
			remove(4, 'bob', 'ada'),
			role(5, 'bob', 'ada', 'member'),
			remove(6, 'cy', 'cy')
		]);
		expect(roles(state)).toEqual({ ada: 'owner', bob: 'admin' });
		expect(state.events.at(-1)).toMatchObject({ kind: 'left', user: 'cy' });
		expect(state.refused.size).toBe(2);
	});

	it('hands ownership to the senior member of the highest role when the last owner goes', () => {
		const state = replayMembership('ada', [
			genesis,
			add(2, 'ada', 'bob'),
			add(3, 'ada', 'cy', 'admin'),
			add(4, 'ada', 'dee', 'admin'),
			remove(5, 'ada', 'ada')
		]);
		expect(roles(state)).toEqual({ bob: 'member', cy: 'owner', dee: 'admin' });
		expect(state.events.at(-1)).toMatchObject({ kind: 'owner', user: 'cy' });
	});

	it('hands ownership to someone else when the only owner steps down', () => {
		const state = replayMembership('ada', [
			genesis,
			add(2, 'ada', 'bob'),
			role(3, 'ada', 'ada', 'admin')
		]);
		expect(roles(state)).toEqual({ ada: 'admin', bob: 'owner' });
	});

	it('brings a removed member back with a later add, and tells which of their ops count', () => {
		const removal = remove(10, 'ada', 'bob');
		const readd = add(20, 'ada', 'bob');
		const state = replayMembership('ada', [genesis, add(2, 'ada', 'bob'), removal, readd]);
		expect(roles(state)).toEqual({ ada: 'owner', bob: 'member' });
		expect(countsAt(state, 'bob', stamp(1, 'bob'))).toBe(true);
		expect(countsAt(state, 'bob', stamp(5, 'bob'))).toBe(true);
		expect(countsAt(state, 'bob', stamp(15, 'bob'))).toBe(false);
		expect(countsAt(state, 'bob', stamp(25, 'bob'))).toBe(true);
		expect(countsAt(state, 'zed', stamp(25, 'zed'))).toBe(false);
	});

	it('records what happened for the timeline', () => {
		const state = replayMembership('ada', [
			genesis,
			add(2, 'ada', 'bob'),
			role(3, 'ada', 'bob', 'admin'),
			remove(4, 'bob', 'bob')
		]);
		expect(state.events.map((e) => e.kind)).toEqual(['joined', 'joined', 'role', 'left']);
	});
});

// ---------------------------------------------------------------------------
// Properties over random operation sets

const USERS = ['u0', 'u1', 'u2', 'u3', 'u4'];
const arbUser = fc.constantFrom(...USERS);
const arbRole = fc.constantFrom<Role>('member', 'admin', 'owner');
const arbOp: fc.Arbitrary<MembershipOp> = fc
	.record({
		wall: fc.integer({ min: 1, max: 30 }),
		id: fc.stringMatching(/^[a-f]{4}$/),
		signer: arbUser,
		user: arbUser,
		role: arbRole,
		kind: fc.constantFrom('add', 'add', 'remove', 'role')
	})
	.map(({ wall, id, signer, user, role: r, kind }) => {
		const at = { hlc: { wall, counter: 0 }, id, signer };
		return kind === 'remove'
			? { ...at, kind, user }
			: { ...at, kind: kind as 'add' | 'role', user, role: r };
	});
const arbOps = fc.array(arbOp, { maxLength: 40 }).map((ops) => [
	{
		hlc: { wall: 0, counter: 0 },
		id: 'aaaa',
		signer: 'u0',
		kind: 'add',
		user: 'u0',
		role: 'owner'
	} as MembershipOp,
	...ops
]);

describe('replayMembership properties', () => {
	it('converges: any order and any duplication of the same set gives the same membership', () => {
		fc.assert(
			fc.property(
				arbOps.chain((ops) =>
					fc.tuple(
						fc.constant(ops),
						fc.shuffledSubarray(ops, { minLength: ops.length, maxLength: ops.length }),
						fc.array(fc.constantFrom(...ops), { maxLength: 5 })
					)
				),
				([ops, shuffled, dupes]) => {
					const a = replayMembership('u0', ops);
					const b = replayMembership('u0', [...dupes, ...shuffled]);
					expect(roles(b)).toEqual(roles(a));
					expect(b.events).toEqual(a.events);
					expect([...b.spans]).toEqual([...a.spans]);
				}
			)
		);
	});

	it('always leaves an owner while anyone is a member', () => {
		fc.assert(
			fc.property(arbOps, (ops) => {
				const state = replayMembership('u0', ops);
				if (state.members.size > 0) {
					expect([...state.members.values()].some((m) => m.role === 'owner')).toBe(true);
				}
			})
		);
	});

	it('gives changes signed by a user who never held admin or owner no effect', () => {
		fc.assert(
			fc.property(arbOps, fc.array(arbOp, { maxLength: 10 }), (ops, extra) => {
				const forger = 'u4';
				const honest = ops.filter((op) => op.signer !== forger);
				const forged = extra
					.filter((op) => op.user !== forger)
					.map((op) => ({ ...op, signer: forger, id: `f${op.id}` }));
				const without = replayMembership('u0', honest);
				// The property is about a forger who is never more than a member.
				fc.pre(
					!without.events.some(
						(e) => e.user === forger && (e.kind === 'owner' || ('role' in e && e.role !== 'member'))
					)
				);
				const withForged = replayMembership('u0', [...honest, ...forged]);
				expect(roles(withForged)).toEqual(roles(without));
				expect(withForged.events).toEqual(without.events);
			})
		);
	});

	it('incrementally, one op at a time in any order, matches the replay of the whole set', () => {
		fc.assert(
			fc.property(
				arbOps.chain((ops) =>
					fc.shuffledSubarray(ops, { minLength: ops.length, maxLength: ops.length })
				),
				(ops) => {
					const log = new MembershipLog('u0');
					let revision = log.revision;
					for (const op of ops) {
						const before = JSON.stringify(roles(log.state));
						log.add(op);
						// A visible change always moves the revision.
						if (JSON.stringify(roles(log.state)) !== before) {
							expect(log.revision).toBeGreaterThan(revision);
						}
						revision = log.revision;
					}
					const whole = replayMembership('u0', ops);
					expect(roles(log.state)).toEqual(roles(whole));
					expect(log.state.events).toEqual(whole.events);
					expect([...log.state.refused].sort()).toEqual([...whole.refused].sort());
				}
			)
		);
	});
});

describe('MembershipLog', () => {
	it('takes a flood of in-order ops from one member without replaying the log each time', () => {
		const log = new MembershipLog('ada');
		log.add(genesis);
		log.add(add(2, 'ada', 'bob'));
		for (let i = 0; i < 20_000; i++) log.add(role(10 + i, 'bob', 'bob', 'admin'));
		expect(log.size).toBe(20_002);
		expect(log.state.refused.size).toBe(20_000);
		expect(roles(log.state)).toEqual({ ada: 'owner', bob: 'member' });
		// An op that lands early replays the log: the outcome is the same.
		log.add(role(5, 'ada', 'cy', 'admin'));
		expect(log.state.refused.size).toBe(20_001);
	});
});
