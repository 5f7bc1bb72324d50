import { describe, expect, it } from 'vitest';
import { newRoomId, newSecretKey, type ConversationId } from '../crypto';
import { DEVICE_SEEN_STEP_MS, newConversationEntry, Vault, type ConversationEntry } from './vault';

function entry(name: string, extra: Partial<ConversationEntry> = {}): ConversationEntry {
	return {
		id: `c-${name}` as ConversationId,
		name,
		kind: 'group',
		roomId: newRoomId(),
		epoch: 0,
		keys: new Map([[0, newSecretKey()]]),
		createdAt: 1_700_000_000_000,
		...extra
	};
}

describe('Vault conversations', () => {
	it('a new conversation entry is a first generation in a room and under a key of its own, kept by the vault as made', async () => {
		const one = newConversationEntry('Trip', 'group', 'user-ada');
		const two = newConversationEntry('Notes', 'notes');
		expect(one).toMatchObject({ name: 'Trip', kind: 'group', epoch: 0, creator: 'user-ada' });
		expect(one.id as string).toBe(one.roomId as string);
		expect(one.keys.get(0)).toHaveLength(32);
		expect(two).not.toHaveProperty('creator');
		expect(two.roomId).not.toBe(one.roomId);
		expect(two.keys.get(0)).not.toEqual(one.keys.get(0));
		const vault = await Vault.open();
		vault.initialise('Ada', two);
		vault.addConversation(one);
		const kept = vault.conversations().find((c) => c.id === one.id);
		expect(kept).toMatchObject({ name: 'Trip', kind: 'group', roomId: one.roomId, epoch: 0 });
		expect(kept?.keys.get(0)).toEqual(one.keys.get(0));
	});

	it('keeps an unconfirmed admission’s invitation and the mute setting, across devices', async () => {
		const a = await Vault.open();
		const changes = [
			...a.initialise('Ada', entry('Notes', { kind: 'notes' })),
			...a.addConversation(
				entry('Trip', { invite: { id: 'inv-1', device: 'dev-ada', inviter: 'Ada' } })
			),
			...a.addConversation(entry('Work'))
		];
		const trip = a.conversations().find((c) => c.name === 'Trip')!;
		expect(trip.invite).toEqual({ id: 'inv-1', device: 'dev-ada', inviter: 'Ada' });
		expect(trip.muted).toBeUndefined();

		const muting = a.setMuted(trip.id, true);
		expect(muting).toHaveLength(1);
		expect(a.setMuted(trip.id, true)).toEqual([]); // no change, nothing to store

		// Another device of the account gets the same view from the changes.
		const b = await Vault.open();
		b.applyChanges([...changes, ...muting]);
		const seen = b.conversations().find((c) => c.name === 'Trip')!;
		expect(seen.muted).toBe(true);
		expect(seen.invite).toEqual(trip.invite);
		expect(b.conversations().find((c) => c.name === 'Work')!.muted).toBeUndefined();

		b.setMuted(seen.id, false);
		expect(b.conversations().find((c) => c.name === 'Trip')!.muted).toBeUndefined();
	});

	it('pins and archives conversations, on every device, the last writer winning', async () => {
		const a = await Vault.open();
		const changes = [
			...a.initialise('Ada', entry('Notes', { kind: 'notes' })),
			...a.addConversation(entry('Trip')),
			...a.addConversation(entry('Work'))
		];
		const id = (name: string) => a.conversations().find((c) => c.name === name)!.id;
		changes.push(...a.setPinned(id('Work'), true), ...a.setArchived(id('Trip'), true));
		expect(a.setPinned(id('Work'), true)).toEqual([]);
		const b = await Vault.open();
		b.applyChanges(changes);
		const flags = (v: Vault) =>
			v.conversations().map((c) => [c.name, c.pinned === true, c.archived === true]);
		expect(flags(b)).toEqual(flags(a));
		expect(flags(b)).toContainEqual(['Work', true, false]);
		expect(flags(b)).toContainEqual(['Trip', false, true]);
		a.applyChanges(b.setArchived(id('Trip'), false));
		expect(a.conversations().find((c) => c.name === 'Trip')?.archived).toBeUndefined();
	});

	it('refuses to mute a conversation it does not hold', async () => {
		const a = await Vault.open();
		a.initialise('Ada', entry('Notes', { kind: 'notes' }));
		expect(a.setMuted('missing' as ConversationId, true)).toEqual([]);
	});
});

describe('Vault verified contacts', () => {
	it('records a verification, syncs it to another device, and clears it', async () => {
		const a = await Vault.open();
		const b = await Vault.open();
		b.applyChanges(a.initialise('Ada', entry('Notes', { kind: 'notes' })));
		const marking = a.setVerified('bob', '123451234512345123451234512345');
		expect(a.setVerified('bob', '123451234512345123451234512345')).toEqual([]);
		b.applyChanges(marking);
		expect(b.verifiedContacts()).toEqual(new Map([['bob', '123451234512345123451234512345']]));
		a.applyChanges(b.setVerified('bob', null));
		expect(a.verifiedContacts().size).toBe(0);
		expect(a.setVerified('bob', null)).toEqual([]);
	});
});

describe('Vault blocked people', () => {
	it('blocks and unblocks someone on every device', async () => {
		const a = await Vault.open();
		const changes = [...a.initialise('Ada', entry('Notes', { kind: 'notes' }))];
		changes.push(...a.setBlocked('user-bob', 'Bob'));
		expect(a.setBlocked('user-bob', 'Bob')).toEqual([]);
		const b = await Vault.open();
		b.applyChanges(changes);
		expect([...b.blockedUsers()]).toEqual([['user-bob', 'Bob']]);
		a.applyChanges(b.setBlocked('user-bob', null));
		expect(a.blockedUsers().size).toBe(0);
		expect(a.setBlocked('user-bob', null)).toEqual([]);
	});
});

describe('Vault devices', () => {
	it('lists the devices of the account; names stay, "seen" moves forward by the hour', async () => {
		const a = await Vault.open();
		const changes = [...a.initialise('Ada', entry('Notes', { kind: 'notes' }))];
		changes.push(...a.noteDevice('dev-a', 'Firefox on Linux', 1_000));
		changes.push(...a.noteDevice('dev-b', 'Chrome on Android', 2_000));
		expect(a.noteDevice('dev-a', 'Renamed', 1_000 + 60_000)).toEqual([]); // within the hour
		changes.push(...a.noteDevice('dev-a', 'Renamed', 1_000 + DEVICE_SEEN_STEP_MS));
		expect(a.devices()).toEqual([
			{ id: 'dev-a', name: 'Firefox on Linux', added: 1_000, seen: 1_000 + DEVICE_SEEN_STEP_MS },
			{ id: 'dev-b', name: 'Chrome on Android', added: 2_000, seen: 2_000 }
		]);
		const b = await Vault.open();
		b.applyChanges(changes);
		expect(b.devices()).toEqual(a.devices());
	});

	it('keeps each device’s key-agreement key once given; a removal drops the device, and the whole vault seeds a new one', async () => {
		const a = await Vault.open();
		const changes = [...a.initialise('Ada', entry('Notes', { kind: 'notes' }))];
		changes.push(...a.noteDevice('dev-a', 'Firefox on Linux', 1_000));
		// Within the hour, but the key is new: it is written.
		changes.push(...a.noteDevice('dev-a', 'Firefox on Linux', 1_500, 'dh-a'));
		changes.push(...a.noteDevice('dev-b', 'Chrome on Android', 2_000, 'dh-b'));
		expect(a.noteDevice('dev-a', 'x', 1_600, 'dh-other')).toEqual([]);
		// A second browser of the same kind is numbered.
		changes.push(...a.noteDevice('dev-c', 'Firefox on Linux', 1_700));
		changes.push(...a.noteDevice('dev-d', 'Firefox on Linux', 1_800));
		expect(
			a
				.devices()
				.filter((d) => d.name.startsWith('Firefox'))
				.map((d) => d.name)
		).toEqual(['Firefox on Linux (3)', 'Firefox on Linux (2)', 'Firefox on Linux']);
		changes.push(...a.forgetDevices(['dev-c', 'dev-d']));
		expect(a.devices().map((d) => [d.id, d.dh])).toEqual([
			['dev-b', 'dh-b'],
			['dev-a', 'dh-a']
		]);
		changes.push(...a.forgetDevices(['dev-b']));
		expect(a.forgetDevices(['dev-b'])).toEqual([]);
		expect(a.devices().map((d) => d.id)).toEqual(['dev-a']);
		// A device removal's new room starts from every change: the same vault.
		const fresh = await Vault.open();
		fresh.applyChanges(a.allChanges());
		expect(fresh.devices()).toEqual(a.devices());
		expect(fresh.conversations().map((c) => c.name)).toEqual(['Notes']);
		expect(fresh.displayName).toBe('Ada');
	});
});

describe('Vault generations', () => {
	it('moves a conversation forward only, lists every generation, then forgets the retired ones', async () => {
		const a = await Vault.open();
		const trip = entry('Trip');
		const changes = [
			...a.initialise('Ada', entry('Notes', { kind: 'notes' })),
			...a.addConversation(trip)
		];
		const next = { room: newRoomId(), epoch: 1, key: newSecretKey(), opener: 'd'.repeat(43) };
		const moving = a.moveConversation(trip.id, next);
		expect(moving.length).toBeGreaterThan(0);
		expect(a.moveConversation(trip.id, next)).toEqual([]); // again: nothing
		expect(a.moveConversation(trip.id, { ...next, epoch: 0 })).toEqual([]); // back: nothing

		const moved = a.conversations().find((c) => c.id === trip.id)!;
		expect(moved.roomId).toBe(next.room);
		expect(moved.epoch).toBe(1);
		expect(moved.keys.get(1)).toEqual(next.key);
		expect(moved.keys.get(0)).toEqual(trip.keys.get(0));
		expect([...(moved.generations ?? [])]).toEqual([
			[0, { room: trip.roomId, opener: null }],
			[1, { room: next.room, opener: next.opener }]
		]);

		// Another device of the account moves with the changes.
		const b = await Vault.open();
		b.applyChanges([...changes, ...moving]);
		expect(b.conversations().find((c) => c.id === trip.id)?.roomId).toBe(next.room);

		const retiring = a.retireGenerations(trip.id, 1);
		expect(retiring.length).toBeGreaterThan(0);
		const retired = a.conversations().find((c) => c.id === trip.id)!;
		expect([...retired.keys.keys()]).toEqual([1]);
		expect([...(retired.generations ?? []).keys()]).toEqual([1]);
		expect(a.retireGenerations(trip.id, 1)).toEqual([]);
	});

	it('follows the winning generation of an epoch instead, keeping the one left until it is forgotten', async () => {
		const a = await Vault.open();
		const trip = entry('Trip');
		a.initialise('Ada', entry('Notes', { kind: 'notes' }));
		a.addConversation(trip);
		const mine = { room: newRoomId(), epoch: 1, key: newSecretKey(), opener: 'd'.repeat(43) };
		const winner = { room: newRoomId(), epoch: 1, key: newSecretKey(), opener: 'e'.repeat(43) };
		a.moveConversation(trip.id, mine);
		expect(a.moveConversation(trip.id, winner).length).toBeGreaterThan(0);
		expect(a.moveConversation(trip.id, winner)).toEqual([]); // again: nothing

		const moved = a.conversations().find((c) => c.id === trip.id)!;
		expect(moved.roomId).toBe(winner.room);
		expect(moved.epoch).toBe(1);
		expect(moved.keys.get(1)).toEqual(winner.key);
		expect(moved.keys.get(0)).toEqual(trip.keys.get(0));
		expect(moved.generations?.get(1)).toEqual({ room: winner.room, opener: winner.opener });
		expect(moved.abandoned).toEqual(new Map([[mine.room, mine.key]]));

		expect(a.forgetAbandoned(trip.id).length).toBeGreaterThan(0);
		expect(a.conversations().find((c) => c.id === trip.id)?.abandoned).toBeUndefined();
		expect(a.forgetAbandoned(trip.id)).toEqual([]);
	});
});
