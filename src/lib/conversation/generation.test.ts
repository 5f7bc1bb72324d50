import { x25519 } from '@noble/curves/ed25519.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromBase64Url, toBase64Url, utf8Encode } from '../crypto/bytes';
import { newRoomId, newSecretKey } from '../crypto/ids';
import { sealLockbox } from '../invite/lockbox';
import {
	GenerationError,
	openGeneration,
	sealGeneration,
	seedParts,
	winningEpoch,
	type GenerationKey,
	type HeldEpoch
} from './generation';
import { HlcClock } from './hlc';
import { replayMembership, roleAt, type MembershipOp, type Stamp } from './membership';
import {
	makeEpoch,
	makeMemberRemove,
	makeMemberRole,
	type EpochOp,
	type MemberRemoveOp,
	type MemberRoleOp,
	type OpId
} from './operations';

const clock = new HlcClock();

/** An X25519 device: its id (any 32-byte key, base64url), secret and public key. */
function dhDevice() {
	const secret = x25519.utils.randomSecretKey();
	return {
		id: toBase64Url(x25519.utils.randomSecretKey()),
		secret,
		dh: toBase64Url(x25519.getPublicKey(secret))
	};
}

const conversation = newRoomId();

function generation(epoch: number, opener: string): GenerationKey {
	return { room: newRoomId(), epoch, key: newSecretKey(), opener };
}

/** The generation's lockbox content as sealGeneration writes it, sealed directly. */
async function rawBox(dh: string, epoch: number, content: string): Promise<string> {
	const context = utf8Encode(`kith/generation\0${conversation}\0${epoch}`);
	return toBase64Url(await sealLockbox(fromBase64Url(dh), utf8Encode(content), context));
}

describe('sealGeneration / openGeneration', () => {
	it('opens the same room, epoch, key and opener for every device it was sealed to', async () => {
		const devices = [dhDevice(), dhDevice(), dhDevice()];
		const next = generation(3, devices[0]!.id);
		const boxes = await sealGeneration(
			conversation,
			next,
			new Map(devices.map((d) => [d.id, d.dh]))
		);
		expect(Object.keys(boxes).sort()).toEqual(devices.map((d) => d.id).sort());
		const op = makeEpoch(clock, 3, boxes);
		for (const device of devices) {
			const opened = await openGeneration(conversation, op, device.id, device.secret);
			expect(opened).not.toBeNull();
			expect(opened?.room).toBe(next.room);
			expect(opened?.epoch).toBe(3);
			expect(opened?.opener).toBe(next.opener);
			expect(toBase64Url(opened!.key)).toBe(toBase64Url(next.key));
		}
		// Each box is its own sealing (fresh ephemeral key): no two are alike.
		expect(new Set(Object.values(boxes)).size).toBe(devices.length);
	});

	it('gives null to a device without a box (removed, or joined after)', async () => {
		const [member, removed] = [dhDevice(), dhDevice()];
		const boxes = await sealGeneration(
			conversation,
			generation(1, member.id),
			new Map([[member.id, member.dh]])
		);
		const op = makeEpoch(clock, 1, boxes);
		expect(await openGeneration(conversation, op, removed.id, removed.secret)).toBeNull();
		// A name on Object.prototype is not a box either.
		expect(await openGeneration(conversation, op, '__proto__', removed.secret)).toBeNull();
		expect(await openGeneration(conversation, op, 'constructor', removed.secret)).toBeNull();
	});

	it('refuses a box moved to another device, another conversation, or another epoch', async () => {
		const [ada, bob] = [dhDevice(), dhDevice()];
		const boxes = await sealGeneration(
			conversation,
			generation(2, ada.id),
			new Map([
				[ada.id, ada.dh],
				[bob.id, bob.dh]
			])
		);
		const op = makeEpoch(clock, 2, boxes);
		// Ada's box under Bob's entry: Bob cannot open it.
		const moved = makeEpoch(clock, 2, { [bob.id]: boxes[ada.id]! });
		await expect(openGeneration(conversation, moved, bob.id, bob.secret)).rejects.toThrow();
		// Nor Ada with Bob's secret (her own box under her own entry).
		await expect(openGeneration(conversation, op, ada.id, bob.secret)).rejects.toThrow();
		// Replayed into another conversation.
		await expect(openGeneration(newRoomId(), op, ada.id, ada.secret)).rejects.toThrow();
		// Passed off as another generation.
		const renumbered: EpochOp = { ...op, epoch: 3 };
		await expect(openGeneration(conversation, renumbered, ada.id, ada.secret)).rejects.toThrow();
		const earlier: EpochOp = { ...op, epoch: 1 };
		await expect(openGeneration(conversation, earlier, bob.id, bob.secret)).rejects.toThrow();
		// The untouched op still opens.
		expect((await openGeneration(conversation, op, bob.id, bob.secret))?.epoch).toBe(2);
	});

	it('refuses a tampered box, whichever byte changed', async () => {
		const ada = dhDevice();
		const boxes = await sealGeneration(
			conversation,
			generation(1, ada.id),
			new Map([[ada.id, ada.dh]])
		);
		const bytes = fromBase64Url(boxes[ada.id]!);
		for (const index of [0, 1, 33, 40, 45, bytes.length - 1]) {
			const tampered = bytes.slice();
			tampered[index]! ^= 0x01;
			const op = makeEpoch(clock, 1, { [ada.id]: toBase64Url(tampered) });
			await expect(openGeneration(conversation, op, ada.id, ada.secret)).rejects.toThrow();
		}
		const truncated = makeEpoch(clock, 1, { [ada.id]: toBase64Url(bytes.subarray(0, 70)) });
		await expect(openGeneration(conversation, truncated, ada.id, ada.secret)).rejects.toThrow();
	});

	it('refuses a well-sealed box whose content does not match its op (GenerationError)', async () => {
		const ada = dhDevice();
		const room = newRoomId();
		const key = toBase64Url(newSecretKey());
		const contents = [
			'not json',
			'null',
			JSON.stringify({ room, epoch: 2, key, opener: ada.id }), // says epoch 2 in an epoch-1 op
			JSON.stringify({ room: 'short', epoch: 1, key, opener: ada.id }),
			JSON.stringify({ room, epoch: 1, key: toBase64Url(new Uint8Array(31)), opener: ada.id }),
			JSON.stringify({ room, epoch: 1, key }),
			JSON.stringify({ room, epoch: 1, key, opener: 'nobody' })
		];
		for (const content of contents) {
			const op = makeEpoch(clock, 1, { [ada.id]: await rawBox(ada.dh, 1, content) });
			await expect(openGeneration(conversation, op, ada.id, ada.secret)).rejects.toThrow(
				GenerationError
			);
		}
		const good = JSON.stringify({ room, epoch: 1, key, opener: ada.id });
		const op = makeEpoch(clock, 1, { [ada.id]: await rawBox(ada.dh, 1, good) });
		expect(await openGeneration(conversation, op, ada.id, ada.secret)).toMatchObject({
			room,
			epoch: 1,
			opener: ada.id
		});
	});
});

// ---------------------------------------------------------------------------

/** An epoch op as winningEpoch reads it (hlc, id, epoch); its boxes do not matter here. */
function held(
	wall: number,
	counter: number,
	id: string,
	device: string,
	epoch: number,
	user = `user-${device}`
): HeldEpoch {
	const op = {
		v: 1,
		id: id as OpId,
		hlc: [wall, counter],
		type: 'epoch',
		epoch,
		boxes: {}
	} satisfies EpochOp;
	return { op, device, user };
}

const key = (h: HeldEpoch | null) =>
	h && [h.op.hlc[0], h.op.hlc[1], h.op.id, h.device, h.op.epoch, h.user];

describe('winningEpoch', () => {
	it('picks the least by (hlc, id, device) among those that may open, of that epoch only', () => {
		const all = [
			held(5, 0, 'b', 'd1', 2),
			held(5, 0, 'a', 'd2', 2), // least of epoch 2 by id
			held(5, 0, 'a', 'd3', 2), // same hlc and id: device breaks the tie
			held(4, 9, 'z', 'd4', 3), // least overall, but for epoch 3
			held(6, 0, 'a', 'd5', 2),
			held(5, 0, '0', 'd6', 2) // least of all, but its user may not open
		];
		const mayOpen = (h: HeldEpoch) => h.user !== 'user-d6';
		expect(key(winningEpoch(all, 2, mayOpen))).toEqual(key(all[1]!));
		expect(key(winningEpoch(all, 3, mayOpen))).toEqual(key(all[3]!));
		expect(winningEpoch(all, 4, mayOpen)).toBeNull();
		expect(winningEpoch(all, 2, () => false)).toBeNull();
		expect(winningEpoch([], 1, () => true)).toBeNull();
		// Without d2, the tie on (hlc, id) goes to the lesser device.
		expect(key(winningEpoch([all[2]!, all[0]!], 2, mayOpen))).toEqual(key(all[2]!));
		// hlc counts before id: a lesser counter wins over a lesser id.
		const counter = [held(5, 1, 'a', 'd1', 1), held(5, 0, 'z', 'd1', 1)];
		expect(key(winningEpoch(counter, 1, () => true))).toEqual(key(counter[1]!));
	});

	it('agrees with a sort of the admissible candidates, whatever the input order', () => {
		const candidate = fc
			.record({
				wall: fc.integer({ min: 0, max: 3 }),
				counter: fc.integer({ min: 0, max: 2 }),
				id: fc.constantFrom('A', 'B', 'C'),
				device: fc.constantFrom('d1', 'd2', 'd3', 'd4'),
				epoch: fc.integer({ min: 1, max: 3 })
			})
			.map((c) => held(c.wall, c.counter, c.id, c.device, c.epoch));
		fc.assert(
			fc.property(
				// Distinct (hlc, id, device, epoch): one op per identity, as a replica holds them.
				fc.uniqueArray(candidate, { maxLength: 14, selector: (h) => JSON.stringify(key(h)) }),
				fc.integer({ min: 1, max: 3 }),
				fc.subarray(['user-d1', 'user-d2', 'user-d3', 'user-d4']),
				fc.func(fc.integer()),
				(all, epoch, allowed, shuffleKey) => {
					const mayOpen = (h: HeldEpoch) => allowed.includes(h.user);
					const expected =
						all
							.filter((h) => h.op.epoch === epoch && mayOpen(h))
							.sort(
								(a, b) =>
									a.op.hlc[0] - b.op.hlc[0] ||
									a.op.hlc[1] - b.op.hlc[1] ||
									(a.op.id < b.op.id ? -1 : a.op.id > b.op.id ? 1 : 0) ||
									(a.device < b.device ? -1 : a.device > b.device ? 1 : 0)
							)[0] ?? null;
					const winner = winningEpoch(all, epoch, mayOpen);
					expect(key(winner)).toEqual(key(expected));
					const orders = [
						[...all].reverse(),
						[...all].sort((a, b) => shuffleKey(key(a)) - shuffleKey(key(b)))
					];
					for (const order of orders) {
						expect(key(winningEpoch(order, epoch, mayOpen))).toEqual(key(winner));
					}
				}
			),
			{ numRuns: 200 }
		);
	});
});

// ---------------------------------------------------------------------------

describe('seedParts', () => {
	const user = 'A'.repeat(43);
	const pool: Array<{ device: string; op: MemberRoleOp | MemberRemoveOp }> = Array.from(
		{ length: 70 },
		(_, i) => ({
			device: `${'d'.repeat(42)}${'ABCDEFGH'[i % 8]}`,
			op: i % 3 === 0 ? makeMemberRemove(clock, user) : makeMemberRole(clock, user, 'admin')
		})
	);

	it('splits in order into parts of at most the size, covering everything once', () => {
		fc.assert(
			fc.property(
				fc.integer({ min: 0, max: pool.length }),
				fc.integer({ min: 1, max: 20 }),
				(n, limit) => {
					const ops = pool.slice(0, n);
					const parts = seedParts(ops, limit);
					expect(parts.length).toBe(Math.ceil(n / limit));
					for (const part of parts) {
						expect(part.length).toBeGreaterThan(0);
						expect(part.length).toBeLessThanOrEqual(limit);
					}
					// Every part but the last is full.
					for (const part of parts.slice(0, -1)) expect(part.length).toBe(limit);
					const flat = parts.flat();
					expect(flat.map((s) => s.op)).toEqual(ops.map((s) => s.op));
					expect(flat.map((s) => s.device)).toEqual(ops.map((s) => s.device));
					// Only device and op are carried (the schema's fields).
					for (const seeded of flat) expect(Object.keys(seeded).sort()).toEqual(['device', 'op']);
				}
			),
			{ numRuns: 100 }
		);
	});

	it('gives no parts for no ops; with the default size, full parts and everything covered', () => {
		expect(seedParts([])).toEqual([]);
		expect(seedParts(pool.slice(0, 5), 2).map((p) => p.length)).toEqual([2, 2, 1]);
		const parts = seedParts(pool);
		const size = parts[0]!.length;
		expect(size).toBeGreaterThan(0);
		for (const part of parts.slice(0, -1)) expect(part.length).toBe(size);
		expect(parts.at(-1)!.length).toBeLessThanOrEqual(size);
		expect(parts.flat()).toEqual(pool);
	});
});

// ---------------------------------------------------------------------------

describe('roleAt', () => {
	let n = 0;
	const at = (wall: number, signer = 'probe'): Stamp => ({
		hlc: { wall, counter: 0 },
		id: `q${String(++n).padStart(4, '0')}`,
		signer
	});
	const op = (wall: number, signer: string, rest: object): MembershipOp =>
		({ hlc: { wall, counter: 0 }, id: `op${wall}`, signer, ...rest }) as MembershipOp;
	const ops: MembershipOp[] = [
		op(1, 'ada', { kind: 'add', user: 'ada', role: 'owner' }),
		op(2, 'ada', { kind: 'add', user: 'bob', role: 'member' }),
		op(3, 'ada', { kind: 'add', user: 'cy', role: 'member' }),
		op(4, 'cy', { kind: 'role', user: 'cy', role: 'admin' }), // forged: refused
		op(5, 'ada', { kind: 'role', user: 'bob', role: 'admin' }),
		op(8, 'ada', { kind: 'remove', user: 'bob' }),
		op(10, 'ada', { kind: 'add', user: 'bob', role: 'member' }),
		op(12, 'ada', { kind: 'remove', user: 'ada' }) // Ada leaves: Bob or Cy succeeds
	];
	const state = replayMembership('ada', ops);

	it('follows a promotion and a removal, and counts nothing refused', () => {
		expect(roleAt(state, 'bob', at(1))).toBeUndefined(); // before his add
		expect(roleAt(state, 'bob', at(2))).toBe('member');
		expect(roleAt(state, 'bob', at(4))).toBe('member');
		expect(roleAt(state, 'bob', ops[4]!)).toBe('admin'); // at the promotion's own stamp
		expect(roleAt(state, 'bob', at(6))).toBe('admin');
		expect(roleAt(state, 'bob', at(8))).toBeUndefined(); // after the removal
		expect(roleAt(state, 'bob', at(9))).toBeUndefined();
		expect(roleAt(state, 'bob', at(11))).toBe('member'); // added back, as a member
		expect(roleAt(state, 'cy', at(4))).toBe('member');
		expect(roleAt(state, 'cy', at(7))).toBe('member'); // her "promote me" changed nothing
		expect(roleAt(state, 'ada', at(0))).toBeUndefined();
		expect(roleAt(state, 'ada', at(11))).toBe('owner');
		expect(roleAt(state, 'ada', at(13))).toBeUndefined();
		expect(roleAt(state, 'mallory', at(13))).toBeUndefined();
	});

	it('gives the successor owner from the succession on', () => {
		// Cy joined first (3) of the remaining members (Bob came back at 10).
		expect(roleAt(state, 'cy', at(11))).toBe('member');
		expect(roleAt(state, 'cy', at(13))).toBe('owner');
		expect(roleAt(state, 'bob', at(13))).toBe('member');
		expect(state.members.get('cy')?.role).toBe('owner');
	});

	it('agrees with a replay cut at that point', () => {
		for (let wall = 0; wall <= 13; wall++) {
			const cut = replayMembership(
				'ada',
				ops.filter((o) => o.hlc.wall <= wall)
			);
			for (const user of ['ada', 'bob', 'cy']) {
				expect(roleAt(state, user, at(wall, 'zzz'))).toBe(cut.members.get(user)?.role);
			}
		}
	});
});
