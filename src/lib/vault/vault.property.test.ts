/**
 * The vault under concurrent changes, as a property (the issue: "the vault
 * converges under concurrent settings changes on two devices offline"). Two
 * or three devices of one account start from the same vault and change it
 * offline with every public mutator, arguments drawn from small pools so they
 * collide: mute, verified contacts, read marks (each device its own, as the
 * app does), conversations added, moved to a next generation (also to
 * different rooms of one epoch), refollowed, retired, abandoned rooms
 * forgotten. Each then receives every device's changes shuffled, in random
 * batches, with duplicates. Every device must end with what a fresh device
 * shows from all the changes at once (the display name too: it has no setter).
 *
 * The merge must also keep what a user would notice: a device's read mark
 * never goes back, and the account's is the furthest of its devices'; a
 * verified contact and a mute setting hold one writer's value (the last
 * writer wins); a conversation keeps the furthest epoch a device moved it to,
 * with that epoch's room; every room listed comes with its own key; no room a
 * device followed is lost; a retired generation stays retired unless another
 * device wrote its key at the same time, and then it is back with that key
 * (Automerge keeps a concurrent write over a delete: asserted as it is).
 *
 * The vault breaks some of these today (every device showing what a fresh
 * one shows is no longer excused: Automerge 3.5.0 broke it when handed a
 * batch, and the vault now hands it one change a call), in
 * situations the property recognises and excuses (`excused`; worked examples
 * at the end). VAULT_STRICT=1 lifts every excuse, VAULT_STRICT='<name>' one;
 * RUNS=2000 searches longer; FC_SEED and FC_PATH replay a reported run.
 */
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { toBase64Url, type ConversationId, type RoomId, type SecretKey } from '../crypto';
import { deliveries } from '../conversation/test-support';
import { ONE_A_CALL_MAX, Vault, type ConversationEntry } from './vault';

// Vault.open takes its Automerge actor from randomBytes: hand out fixed actors
// instead, so that a seed replays the same winners of every conflict.
const actors = vi.hoisted(() => ({ next: [] as Uint8Array[] }));
vi.mock('../crypto', async (importOriginal) => {
	const actual = await importOriginal<typeof import('../crypto')>();
	return {
		...actual,
		randomBytes: (length: number): Uint8Array => actors.next.shift() ?? actual.randomBytes(length)
	};
});

/** A vault whose Automerge actor is `actor` (a higher one wins ties). */
function openAs(actor: number): Promise<Vault> {
	const bytes = new Uint8Array(16);
	bytes[0] = actor + 1;
	actors.next.push(bytes);
	return Vault.open();
}

/** VAULT_STRICT=1 checks every rule everywhere; VAULT_STRICT='<known failure>' lifts that excuse. */
const STRICT = process.env.VAULT_STRICT;

// Small pools, so that the devices collide.
const IDS = ['c-notes', 'c-trip', 'c-work', 'c-new1', 'c-new2'] as ConversationId[];
const INITIAL = 3; // the first three exist before the devices part
const DEVICES = ['dev-0', 'dev-1', 'dev-2'];
const USERS = ['bob', 'cy', 'di'];
const HALVES = ['11111', '22222'];
const VARIANTS = ['a', 'b', 'c'];
const MAX_EPOCH = 3;

const conv = (i: number): ConversationId => IDS[i] as ConversationId;
const room = (id: string, epoch: number, variant: string): RoomId =>
	`${id}.${epoch}.${variant}` as RoomId;
/** Each room has its own key, so a room listed with another's key shows. */
function keyOf(roomId: string): SecretKey {
	const out = new Uint8Array(32);
	out.set(new TextEncoder().encode(roomId));
	return out as SecretKey;
}
const b64 = (roomId: string): string => toBase64Url(keyOf(roomId));

function entry(id: ConversationId): ConversationEntry {
	const roomId = room(id, 0, 'a');
	return {
		id,
		name: id,
		kind: id === 'c-notes' ? 'notes' : 'group',
		roomId,
		epoch: 0,
		keys: new Map([[0, keyOf(roomId)]]),
		createdAt: 1_700_000_000_000
	};
}

/** A read mark: an hlcToString-shaped clock and a message id. */
const mark = (wall: number, msg: number) => ({
	hlc: `${1_700_000_000_000 + wall}.000000`,
	id: `m${msg}`
});

type Op =
	| { kind: 'mute'; c: number; on: boolean }
	| { kind: 'verify'; user: number; half: number | null }
	| { kind: 'read'; c: number; wall: number; msg: number }
	| { kind: 'add'; c: number }
	| { kind: 'move'; c: number; epoch: number; variant: number }
	| { kind: 'retire'; c: number; below: number | null }
	| { kind: 'rotate'; c: number; variant: number } // move to the next epoch, retire the rest
	| { kind: 'forget'; c: number };

const anyConv = fc.integer({ min: 0, max: IDS.length - 1 });
const often = fc.oneof(fc.constant(1), anyConv); // Trip half the time
const anyVariant = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: VARIANTS.length - 1 }));
const op: fc.Arbitrary<Op> = fc.oneof(
	fc.record({ kind: fc.constant('mute' as const), c: anyConv, on: fc.boolean() }),
	{
		weight: 2,
		arbitrary: fc.record({
			kind: fc.constant('verify' as const),
			user: fc.integer({ min: 0, max: USERS.length - 1 }),
			half: fc.option(fc.integer({ min: 0, max: HALVES.length - 1 }), { nil: null })
		})
	},
	fc.record({
		kind: fc.constant('read' as const),
		c: anyConv,
		wall: fc.integer({ min: 0, max: 3 }),
		msg: fc.integer({ min: 0, max: 2 })
	}),
	fc.record({
		kind: fc.constant('add' as const),
		c: fc.integer({ min: INITIAL, max: IDS.length - 1 })
	}),
	{
		weight: 3,
		arbitrary: fc.record({
			kind: fc.constant('move' as const),
			c: often,
			epoch: fc.integer({ min: 1, max: MAX_EPOCH }),
			variant: anyVariant
		})
	},
	{
		weight: 2,
		arbitrary: fc.record({
			kind: fc.constant('retire' as const),
			c: often,
			below: fc.option(fc.integer({ min: 1, max: MAX_EPOCH }), { nil: null })
		})
	},
	{
		weight: 2,
		arbitrary: fc.record({
			kind: fc.constant('rotate' as const),
			c: often,
			variant: anyVariant
		})
	},
	fc.record({ kind: fc.constant('forget' as const), c: anyConv })
);

/** What one device did, as far as the rules need it. */
interface Log {
	/** Conversation → the furthest mark this device asked for. */
	marks: Map<string, string>;
	/** Conversation → the generations it moved to. */
	moves: Map<string, Array<{ epoch: number; room: string }>>;
	/** Conversation → the epochs whose key it wrote and still holds. */
	wrote: Map<string, Set<number>>;
	/** Conversation → the epochs whose key it retired. */
	retired: Map<string, Set<number>>;
	/** Conversation → its last mute setting, when it changed it. */
	muted: Map<string, boolean>;
	/** User → its last verification (null: cleared), when it changed it. */
	verified: Map<string, string | null>;
	added: Set<string>;
	/** Conversations where it left a room for another of the same epoch. */
	refollowed: Set<string>;
	/** Conversations whose abandoned rooms it forgot. */
	forgot: Set<string>;
}

const newLog = (): Log => ({
	marks: new Map(),
	moves: new Map(),
	wrote: new Map(),
	retired: new Map(),
	muted: new Map(),
	verified: new Map(),
	added: new Set(),
	refollowed: new Set(),
	forgot: new Set()
});

function setIn<V>(map: Map<string, Set<V>>, key: string): Set<V> {
	const found = map.get(key) ?? new Set<V>();
	map.set(key, found);
	return found;
}

/** Run `o` on `vault` as `device` would, noting in `log` what changed. */
function run(vault: Vault, device: string, o: Op, log: Log): Uint8Array[] {
	if (o.kind === 'verify') {
		const user = USERS[o.user] as string;
		const half = o.half === null ? null : (HALVES[o.half] as string);
		const changes = vault.setVerified(user, half);
		if (changes.length > 0) log.verified.set(user, half);
		return changes;
	}
	const id = conv(o.c);
	const held = vault.conversations().find((c) => c.id === id);
	switch (o.kind) {
		case 'mute': {
			const changes = vault.setMuted(id, o.on);
			if (changes.length > 0) log.muted.set(id, o.on);
			return changes;
		}
		case 'read': {
			// As the app does, a device sets its own mark (kith.svelte.ts #markRead).
			const at = mark(o.wall, o.msg);
			const value = `${at.hlc} ${at.id}`;
			if ((log.marks.get(id) ?? '') < value) log.marks.set(id, value);
			return vault.setReadPosition(device, id, at);
		}
		case 'add': {
			// As the app does, it adds a conversation it does not hold
			// (addConversation replaces a held one, generations and settings).
			if (held) return [];
			log.added.add(id);
			setIn(log.wrote, id).add(0);
			return vault.addConversation(entry(id));
		}
		case 'move': {
			const variant = VARIANTS[o.variant] as string;
			const next = room(id, o.epoch, variant);
			const changes = vault.moveConversation(id, {
				room: next,
				epoch: o.epoch,
				key: keyOf(next),
				opener: `opener-${variant}`
			});
			if (changes.length > 0 && held) {
				const moves = log.moves.get(id) ?? [];
				moves.push({ epoch: o.epoch, room: next });
				log.moves.set(id, moves);
				setIn(log.wrote, id).add(o.epoch);
				if (held.epoch === o.epoch) log.refollowed.add(id);
			}
			return changes;
		}
		case 'retire': {
			if (!held) return [];
			// As the app does, it retires generations before the current one, never that one.
			const below = Math.min(o.below ?? held.epoch, held.epoch);
			const changes = vault.retireGenerations(id, below);
			if (changes.length > 0) {
				for (const e of held.keys.keys()) {
					if (e >= below) continue;
					setIn(log.retired, id).add(e);
					log.wrote.get(id)?.delete(e);
				}
			}
			return changes;
		}
		case 'rotate': {
			if (!held) return [];
			const move: Op = { kind: 'move', c: o.c, epoch: held.epoch + 1, variant: o.variant };
			const moved = run(vault, device, move, log);
			return [...moved, ...run(vault, device, { kind: 'retire', c: o.c, below: null }, log)];
		}
		case 'forget': {
			const changes = vault.forgetAbandoned(id);
			if (changes.length > 0) log.forgot.add(id);
			return changes;
		}
	}
}

function sorted<K extends string | number, V>(items: Iterable<[K, V]>): Array<[K, V]> {
	return [...items].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** A conversation as plain sorted JSON: maps as sorted pairs, keys in base64url. */
function project(c: ConversationEntry) {
	return {
		...c,
		muted: c.muted === true,
		keys: sorted([...c.keys].map(([e, k]): [number, string] => [e, toBase64Url(k)])),
		generations: sorted(c.generations ?? []),
		abandoned: sorted(
			[...(c.abandoned ?? [])].map(([r, k]): [string, string] => [r, toBase64Url(k)])
		)
	};
}
type Shown = ReturnType<typeof project>;

/** Everything a user of the vault can observe. */
function observe(vault: Vault) {
	return {
		initialised: vault.isInitialised,
		displayName: vault.displayName,
		conversations: vault
			.conversations()
			.map(project)
			.sort((a, b) => (a.id < b.id ? -1 : 1)),
		verified: sorted(vault.verifiedContacts()),
		read: IDS.map((id) => ({
			id,
			account: vault.readPosition(null, id),
			devices: DEVICES.map((d) => vault.readPosition(d, id))
		}))
	};
}
type Observed = ReturnType<typeof observe>;

const keyAt = (c: Shown, epoch: number) => c.keys.find(([e]) => e === epoch)?.[1];
const roomAt = (c: Shown, epoch: number) => c.generations.find(([e]) => e === epoch)?.[1].room;
const asText = (p: { hlc: string; id: string } | null | undefined): string =>
	p ? `${p.hlc} ${p.id}` : '';

/** How often the property reached the cases it is about (and excused one). */
const seen = {
	threeDevices: 0,
	movedByTwo: 0,
	movedByTwoKept: 0,
	sameEpochClash: 0,
	refollowed: 0,
	retiredStayedGone: 0,
	retiredCameBack: 0,
	concurrentVerified: 0,
	excused: new Map<string, number>()
};

/**
 * Known failures that are fixed: the vault now makes every shared map once,
 * when the vault or the conversation is made (vault.ts `initialise`,
 * `toVaultConversation`), so no two devices make one concurrently.
 */
const FIXED = new Set([
	'verified map made twice',
	'rooms map made twice',
	'abandoned map made twice',
	// forgetAbandoned deletes the rooms it knows, not the map.
	'forget races an abandoned room',
	// The current generation is read from `rooms` and `keys`, which merge per epoch.
	'generation moved by two'
]);

/** A rule is checked unless a known failure applies there (see STRICT). */
function excused(known: string, applies: boolean): boolean {
	if (!applies || FIXED.has(known)) return false;
	seen.excused.set(known, (seen.excused.get(known) ?? 0) + 1);
	return STRICT !== '1' && STRICT !== known;
}

interface World {
	/** The vault every device starts from, and what made it. */
	base: Observed;
	prelude: Log;
	/** Per device: what it did offline, and its view before it heard the others. */
	logs: Log[];
	alone: Observed[];
	merged: Observed;
}

function checkRules(w: World): void {
	const { base, merged, logs } = w;
	expect(merged.initialised).toBe(true);
	expect(merged.displayName).toBe('Ada'); // the vault has no setter: nobody changes it

	// Read marks: each device's is the furthest it set; the account's, the furthest of all.
	for (const id of IDS) {
		const row = merged.read.find((r) => r.id === id);
		let furthest = '';
		DEVICES.forEach((_, d) => {
			const asked = [d === 0 ? w.prelude : undefined, logs[d]]
				.map((l) => l?.marks.get(id) ?? '')
				.reduce((a, b) => (a > b ? a : b));
			expect(asText(row?.devices[d]), `read mark of dev-${d} in ${id}`).toBe(asked);
			if (asked > furthest) furthest = asked;
		});
		expect(asText(row?.account), `read mark of ${id}`).toBe(furthest);
	}

	// Verified contacts: the last writer wins, so some writer's value; untouched stays.
	const verifiers = logs.filter((l) => l.verified.size > 0).length;
	if (verifiers > 1) seen.concurrentVerified++;
	// Known failure: two devices make the `verified` map at once, one map is lost.
	if (!excused('verified map made twice', w.prelude.verified.size === 0 && verifiers > 1)) {
		for (const user of USERS) {
			const got = merged.verified.find(([u]) => u === user)?.[1] ?? null;
			const writes = logs.filter((l) => l.verified.has(user)).map((l) => l.verified.get(user));
			const was = base.verified.find(([u]) => u === user)?.[1] ?? null;
			if (writes.length === 0) expect(got, `verified ${user}`).toBe(was);
			else expect(writes, `verified ${user}`).toContain(got);
		}
	}

	// Conversations: the ones held before and every one added.
	const added = new Set(logs.flatMap((l) => [...l.added]));
	expect(merged.conversations.map((c) => c.id)).toEqual(
		IDS.filter((id) => base.conversations.some((c) => c.id === id) || added.has(id)).sort()
	);
	for (const c of merged.conversations) {
		const before = base.conversations.find((b) => b.id === c.id);
		// A conversation two devices added at once is two objects at one key:
		// the vault shows them merged, so neither device's mute, moves or
		// retirements are lost.
		checkConversation(w, c, before);
	}
}

function checkConversation(w: World, c: Shown, before: Shown | undefined): void {
	const { logs } = w;
	const movers = logs.filter((l) => l.moves.has(c.id));
	const movedByTwo = movers.length > 1;
	if (movedByTwo) seen.movedByTwo++;
	// Two devices moved it to different rooms of one epoch.
	const clash = movers.some((l, i) =>
		(l.moves.get(c.id) ?? []).some((m) =>
			movers.some(
				(o, j) =>
					j !== i && (o.moves.get(c.id) ?? []).some((n) => n.epoch === m.epoch && n.room !== m.room)
			)
		)
	);
	if (clash) seen.sameEpochClash++;
	if (logs.some((l) => l.refollowed.has(c.id))) seen.refollowed++;

	// Muted: the last writer wins, so some writer's value; untouched stays.
	const mutes = logs.filter((l) => l.muted.has(c.id)).map((l) => l.muted.get(c.id));
	if (mutes.length === 0) expect(c.muted, `muted ${c.id}`).toBe(before?.muted ?? false);
	else expect(mutes, `muted ${c.id}`).toContain(c.muted);

	// The current generation: one some device held; its key is listed.
	const epochs = movers.flatMap((l) => (l.moves.get(c.id) ?? []).map((m) => m.epoch));
	expect([before?.epoch ?? 0, ...epochs], `epoch of ${c.id}`).toContain(c.epoch);
	expect(keyAt(c, c.epoch), `key of ${c.id}'s epoch`).toBeDefined();
	// Moved by two devices: the furthest epoch, with its own room and key (the
	// vault reads the current generation from `rooms` and `keys`, which merge
	// per epoch, not from the `epoch` and `roomId` registers).
	expect(c.epoch, `furthest epoch of ${c.id}`).toBe(Math.max(before?.epoch ?? 0, ...epochs));
	expect(roomAt(c, c.epoch), `room of ${c.id}'s epoch`).toBe(c.roomId);
	expect(keyAt(c, c.epoch), `key of ${c.id}'s room`).toBe(b64(c.roomId));

	// Known failure: two devices make the `rooms` map at once (a conversation's
	// first move): one device's list of generations is lost, retired ones come back.
	const roomsMadeTwice = movedByTwo && !w.prelude.moves.has(c.id);
	// Every generation listed comes with its own room's key, and every key with its generation.
	if (!excused('rooms map made twice', roomsMadeTwice)) {
		for (const [e, g] of c.generations) {
			expect(keyAt(c, e), `key of ${c.id} generation ${e}`).toBe(b64(g.room));
		}
		expect(
			c.keys.map(([e]) => e),
			`generations of ${c.id}`
		).toEqual(c.generations.map(([e]) => e));
	}
	for (const [r, k] of c.abandoned) expect(k, `key of abandoned ${r}`).toBe(b64(r));

	// A retired generation stays gone, unless another device wrote its key at
	// the same time: then it is back (a concurrent write outlives a delete).
	logs.forEach((l, i) => {
		for (const e of l.retired.get(c.id) ?? []) {
			const rewritten = logs.filter((o, j) => j !== i && o.wrote.get(c.id)?.has(e));
			if (rewritten.length === 0) {
				seen.retiredStayedGone++;
				expect(keyAt(c, e), `retired key ${e} of ${c.id}`).toBeUndefined();
				if (!excused('rooms map made twice', roomsMadeTwice)) {
					expect(roomAt(c, e), `retired room ${e} of ${c.id}`).toBeUndefined();
				}
			} else {
				seen.retiredCameBack++;
				const rooms = rewritten.flatMap((o) => [
					...(o.moves.get(c.id) ?? []).filter((m) => m.epoch === e).map((m) => b64(m.room)),
					// An add writes the first generation (entry(): room 0 'a').
					...(o.added.has(c.id) && e === 0 ? [b64(room(c.id as ConversationId, 0, 'a'))] : [])
				]);
				expect(rooms, `key of ${c.id} generation ${e}, written again`).toContain(keyAt(c, e));
			}
		}
	});

	// Nothing a device followed is lost: every room it listed before it heard
	// the others (a generation, or an abandoned room) is listed still, at its
	// epoch or as abandoned (another device may have left it for another room
	// of the epoch), unless another device retired that generation or forgot
	// the abandoned rooms it knew.
	// Two devices that moved it to different rooms of one epoch keep both: one
	// as the generation, the other as abandoned (read from Automerge's
	// conflicts). Known failures: two devices made the `abandoned` map at once,
	// or one forgot abandoned rooms while another added one to them (the delete
	// takes the whole map): a room and its key go.
	const refollowers = logs.filter((l) => l.refollowed.has(c.id)).length;
	const forgetRace =
		before !== undefined &&
		before.abandoned.length > 0 &&
		logs.some((l) => l.forgot.has(c.id)) &&
		refollowers > 0;
	const abandonedMadeTwice = (before?.abandoned.length ?? 0) === 0 && refollowers > 1;
	if (excused('rooms map made twice', roomsMadeTwice)) return;
	if (excused('abandoned map made twice', abandonedMadeTwice)) return;
	if (excused('forget races an abandoned room', forgetRace)) return;
	if (movedByTwo) seen.movedByTwoKept++;
	const known = new Set([
		...(before?.generations.map(([, g]) => g.room as string) ?? []),
		...(before?.abandoned.map(([r]) => r as string) ?? [])
	]);
	logs.forEach((l, i) => {
		const mine = w.alone[i]?.conversations.find((a) => a.id === c.id);
		const others = logs.filter((_, j) => j !== i);
		const listed: Array<[number | null, string]> = [
			...(mine?.generations.map(([e, g]): [number, string] => [e, g.room]) ?? []),
			...(mine?.abandoned.map(([r]): [null, string] => [null, r]) ?? [])
		];
		for (const [e, r] of listed) {
			if (e !== null && others.some((o) => o.retired.get(c.id)?.has(e))) continue;
			if (known.has(r) && others.some((o) => o.forgot.has(c.id))) continue;
			const kept = (e !== null && roomAt(c, e) === r) || c.abandoned.some(([a]) => a === r);
			expect(kept, `${c.id} room ${r} of device ${i}`).toBe(true);
		}
	});
}

const scenario = fc.record({
	devices: fc.integer({ min: 2, max: 3 }),
	tripMoved: fc.boolean(), // Trip moved before they part: its `rooms` map is shared
	prelude: fc.array(op, { maxLength: 4 }),
	scripts: fc.array(fc.array(op, { maxLength: 14 }), { minLength: 3, maxLength: 3 }),
	// Actors of the devices and of the fresh one: which wins a tie.
	actors: fc.shuffledSubarray([0, 1, 2, 3], { minLength: 4, maxLength: 4 }),
	seeds: fc.array(fc.nat(), { minLength: 3, maxLength: 3 })
});

const RUNS = Number(process.env.RUNS ?? 60);

describe('Vault under concurrent changes (property)', () => {
	it(
		'converges on every device, whatever they did offline and however the changes travel, and keeps the rules users see',
		async () => {
			await fc.assert(
				fc.asyncProperty(scenario, async (s) => {
					const first = await openAs(s.actors[0] as number);
					const shared = [
						...first.initialise('Ada', entry(conv(0))),
						...first.addConversation(entry(conv(1))),
						...first.addConversation(entry(conv(2)))
					];
					const prelude = newLog();
					const moveTrip: Op = { kind: 'move', c: 1, epoch: 1, variant: 0 };
					for (const o of [...(s.tripMoved ? [moveTrip] : []), ...s.prelude]) {
						shared.push(...run(first, DEVICES[0] as string, o, prelude));
					}
					const devices = [first];
					for (let d = 1; d < s.devices; d++) {
						const v = await openAs(s.actors[d] as number);
						v.applyChanges(shared);
						devices.push(v);
					}
					if (s.devices === 3) seen.threeDevices++;
					const base = observe(first);

					// Offline, each device runs its script.
					const logs = devices.map(() => newLog());
					const made = devices.map((v, d) =>
						(s.scripts[d] ?? []).flatMap((o) => run(v, DEVICES[d] as string, o, logs[d] as Log))
					);
					const alone = devices.map(observe);

					// Each gets every device's changes (its own echoed back too).
					const all = made.flat();
					devices.forEach((v, d) => {
						for (const batch of deliveries(all, s.seeds[d] as number, 0.2)) v.applyChanges(batch);
					});
					// A fresh device gets them all at once: every device must show what it shows.
					const fresh = await openAs(s.actors[3] as number);
					fresh.applyChanges([...shared, ...all]);
					const merged = observe(fresh);
					for (const [d, v] of devices.entries()) {
						expect(observe(v), `device ${d}`).toEqual(merged);
					}

					checkRules({ base, prelude, logs, alone, merged });
				}),
				{
					numRuns: RUNS,
					// FC_SEED and FC_PATH replay a reported failure.
					...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}),
					...(process.env.FC_PATH ? { path: process.env.FC_PATH } : {})
				}
			);
			if (process.env.VAULT_STATS)
				console.log(JSON.stringify({ ...seen, excused: [...seen.excused] }));
			// The generator reached the cases the rules are about.
			expect(seen.threeDevices).toBeGreaterThan(0);
			expect(seen.movedByTwo).toBeGreaterThan(0);
			expect(seen.movedByTwoKept).toBeGreaterThan(0);
			expect(seen.sameEpochClash).toBeGreaterThan(0);
			expect(seen.refollowed).toBeGreaterThan(0);
			expect(seen.retiredStayedGone).toBeGreaterThan(0);
			expect(seen.retiredCameBack).toBeGreaterThan(0);
			expect(seen.concurrentVerified).toBeGreaterThan(0);
		},
		60_000 + RUNS * 200
	);
});

// Worked examples of the situations the property checks or excuses. Each was
// a known failure (an `it.fails`) until the vault kept its rule; the ones
// still excused above (`excused`) are the maps two devices made at once and a
// forget racing an abandoned room.

/** Devices of one account (a higher actor wins ties), from one vault holding Notes and Trip. */
async function account(...actorIds: number[]): Promise<Vault[]> {
	const devices: Vault[] = [];
	for (const actor of actorIds) devices.push(await openAs(actor));
	const [first, ...rest] = devices as [Vault, ...Vault[]];
	const shared = [
		...first.initialise('Ada', entry(conv(0))),
		...first.addConversation(entry(conv(1)))
	];
	for (const v of rest) v.applyChanges(shared);
	return devices;
}

/** Every device gets every change. */
function exchange(devices: Vault[], changes: Uint8Array[][]): void {
	for (const v of devices) v.applyChanges(changes.flat());
}

const TRIP = conv(1);
const trip = (v: Vault): ConversationEntry => {
	const found = v.conversations().find((c) => c.id === TRIP);
	if (!found) throw new Error('no Trip');
	return found;
};
const moveTo = (v: Vault, epoch: number, variant: string): Uint8Array[] =>
	v.moveConversation(TRIP, {
		room: room(TRIP, epoch, variant),
		epoch,
		key: keyOf(room(TRIP, epoch, variant)),
		opener: `opener-${variant}`
	});

describe('Vault under concurrent changes, worked examples', () => {
	// `verified ??= {}` on two devices: two maps put at one key, one wins whole.
	it('keeps contacts two devices verify at once when none was verified before', async () => {
		const [a, b] = (await account(0, 1)) as [Vault, Vault];
		exchange([a, b], [a.setVerified('bob', '11111'), b.setVerified('cy', '22222')]);
		expect(a.verifiedContacts()).toEqual(
			new Map([
				['bob', '11111'],
				['cy', '22222']
			])
		);
	});

	// epoch is a register (last writer wins), not the furthest epoch.
	it('keeps the furthest epoch two devices moved a conversation to', async () => {
		const [a, b] = (await account(1, 0)) as [Vault, Vault]; // a wins the tie
		exchange([a, b], [moveTo(a, 1, 'a')]);
		exchange([a, b], [moveTo(a, 2, 'a'), moveTo(b, 3, 'a')]);
		expect(trip(a).epoch).toBe(3);
	});

	// A refollow writes roomId but not epoch (unchanged, so no op): a concurrent
	// move to the next epoch wins epoch, the refollow wins roomId (more ops before it).
	it('keeps a conversation’s room the room of its epoch, and its key', async () => {
		const [a, b] = (await account(0, 1)) as [Vault, Vault];
		exchange([a, b], [moveTo(a, 1, 'a')]);
		exchange([a, b], [moveTo(a, 2, 'a'), moveTo(b, 1, 'b')]);
		const merged = trip(a);
		expect(merged.epoch).toBe(2);
		expect(merged.roomId).toBe(merged.generations?.get(merged.epoch)?.room);
		expect(merged.keys.get(merged.epoch)).toEqual(keyOf(merged.roomId));
	});

	// Both devices accept one invitation (kith.svelte.ts #acceptAdmission adds
	// what it does not hold): two objects put at one key; the vault merges them.
	it('keeps the mute setting of a conversation two devices added at once', async () => {
		const [a, b] = (await account(0, 1)) as [Vault, Vault]; // b wins the tie
		const added = conv(3);
		const fromA = [...a.addConversation(entry(added)), ...a.setMuted(added, true)];
		exchange([a, b], [fromA, b.addConversation(entry(added))]);
		expect(a.conversations().find((c) => c.id === added)?.muted).toBe(true);
	});

	// `rooms ??= {...}` on two devices (a conversation's first move): one map
	// wins whole, with a generation the other retired and without one it moved to.
	it('lists every generation with a key, and none without, after two first moves', async () => {
		const [a, b] = (await account(0, 1)) as [Vault, Vault]; // b wins the tie
		const fromA = [...moveTo(a, 1, 'a'), ...a.retireGenerations(TRIP, 1)];
		exchange([a, b], [fromA, moveTo(b, 1, 'a')]);
		const merged = trip(a);
		expect([...(merged.generations?.keys() ?? [])]).toEqual([...merged.keys.keys()]);
	});

	// keys[epoch] and rooms[epoch] are registers: the room that lost is read
	// from Automerge's conflicts, as abandoned, until forgetAbandoned.
	it('keeps a room of the epoch a device followed, as abandoned, when another’s wins', async () => {
		const [a, b] = (await account(0, 1)) as [Vault, Vault];
		exchange([a, b], [moveTo(a, 1, 'a')]);
		exchange([a, b], [moveTo(a, 2, 'a'), moveTo(b, 2, 'b')]);
		const merged = trip(a);
		const reachable = [merged.roomId, ...(merged.abandoned?.keys() ?? [])];
		expect(reachable.sort()).toEqual([room(TRIP, 2, 'a'), room(TRIP, 2, 'b')]);
		for (const [abandonedRoom, key] of merged.abandoned ?? []) {
			expect(key).toEqual(keyOf(abandonedRoom));
		}
		expect(trip(b)).toEqual(merged);
		// Forgotten once re-published, on every device; the current room stays.
		exchange([a, b], [b.forgetAbandoned(TRIP)]);
		for (const v of [a, b]) {
			expect(trip(v).abandoned).toBeUndefined();
			expect(trip(v).roomId).toBe(merged.roomId);
			expect(trip(v).keys.get(2)).toEqual(keyOf(merged.roomId));
		}
	});

	// forgetAbandoned deletes the map, with a room another device put in it meanwhile.
	it('keeps a room abandoned while another device forgot the ones it knew', async () => {
		const [a, b] = (await account(0, 1)) as [Vault, Vault];
		exchange([a, b], [moveTo(a, 1, 'a'), moveTo(a, 1, 'b')]); // 1.a abandoned
		exchange([a, b], [a.forgetAbandoned(TRIP), moveTo(b, 1, 'c')]); // b leaves 1.b
		expect([...(trip(a).abandoned?.keys() ?? [])]).toContain(room(TRIP, 1, 'b'));
	});

	// Two tabs of one device (each its own actor, one device id) mark read at
	// once: the mark is a register, the earlier one can win.
	it('never moves a device’s read mark back when two of its tabs mark at once', async () => {
		const [tab1, tab2] = (await account(1, 0)) as [Vault, Vault]; // tab1 wins the tie
		exchange([tab1, tab2], [tab1.setReadPosition('dev-0', TRIP, mark(0, 0))]);
		const marks = [
			tab1.setReadPosition('dev-0', TRIP, mark(1, 0)),
			tab2.setReadPosition('dev-0', TRIP, mark(2, 0))
		];
		exchange([tab1, tab2], marks);
		expect(tab1.readPosition('dev-0', TRIP)).toEqual(mark(2, 0));
	});

	// Automerge 3.5.0: one applyChanges call holding the delete of a key's
	// winning value and a concurrent losing put on that key leaves the deleted
	// value on show (the document underneath, toJS and save/load, is right).
	it('keeps changes that wait for a dependency through a large batch', async () => {
		const [a, b] = (await account(0, 1)) as [Vault, Vault];
		const first = a.setVerified('bob', '11111');
		const waiting = a.setVerified('cy', '22222'); // depends on `first`
		const many = Array.from({ length: ONE_A_CALL_MAX + 1 }, (_, i) =>
			a.setBlocked(`u${i}`, `U${i}`)
		).flat();
		b.applyChanges([...waiting, ...many.slice(1)]); // `first` and many[0] not yet here
		b.applyChanges([...first, ...many.slice(0, 1)]);
		expect(b.verifiedContacts()).toEqual(a.verifiedContacts());
		expect(b.blockedUsers().size).toBe(ONE_A_CALL_MAX + 1);
	});

	// Vault.applyChanges hands Automerge a few changes one a call, and loads
	// the document again after a larger batch.
	it.each([
		['a few changes', 0],
		['a batch larger than one a call', ONE_A_CALL_MAX]
	])(
		'shows what a fresh device shows, however the changes it gets are batched (%s)',
		async (_, extra) => {
			const [x, z, y] = (await account(2, 1, 0)) as [Vault, Vault, Vault];
			exchange([x, z, y], [x.setVerified('seed', '00000')]); // the map exists
			x.setVerified('bob', 'x'); // wins over z's (same counter, higher actor)
			const fromZ = z.setVerified('bob', 'z');
			const put1 = y.setVerified('bob', 'y1');
			const put2 = y.setVerified('bob', 'y2'); // a later counter: wins until deleted
			const cleared = y.setVerified('bob', null);
			const more = Array.from({ length: extra }, (_, i) => z.setVerified(`u${i}`, 'z')).flat();
			x.applyChanges([...put1, ...put2]);
			x.applyChanges([...cleared, ...fromZ, ...more]);
			expect(x.verifiedContacts().get('bob')).toBe('x');
			expect(x.verifiedContacts().size).toBe(2 + extra);
			// And it writes on as the same actor (no sequence number reused).
			const next = x.setVerified('cy', '33333');
			const fresh = await openAs(9);
			fresh.applyChanges([...x.allChanges(), ...next]);
			expect(fresh.verifiedContacts()).toEqual(x.verifiedContacts());
		}
	);
});
