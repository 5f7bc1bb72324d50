/**
 * Two tabs of one profile (two TabCoordinators on a real BroadcastChannel,
 * Web Locks by a small stand-in): a follower gets media chunks from the
 * leader's peers, and the leader's direct path reaches it with the
 * connection state; committed updates are posted only when another tab is
 * there to hear them. The rest of the tab protocol is covered end to end
 * (tests/e2e/tabs.spec.ts).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { toBase64Url } from '../crypto';
import type { ChunkId } from '../media/manifest';
import { TabCoordinator, type NetMessage } from './tabs';

type LockCallback = (lock: { name: string } | null) => unknown;

/** Web Locks as tabs use them: exclusive, `ifAvailable`, queued otherwise. */
function fakeLocks() {
	const held = new Set<string>();
	const queues = new Map<string, (() => void)[]>();
	return {
		async query() {
			return {
				held: [...held].map((name) => ({ name })),
				pending: [...queues].flatMap(([name, queue]) => queue.map(() => ({ name })))
			};
		},
		request(
			name: string,
			options: LockCallback | { ifAvailable?: boolean },
			callback?: LockCallback
		) {
			const cb = typeof options === 'function' ? options : (callback as LockCallback);
			const ifAvailable = typeof options === 'object' && options.ifAvailable === true;
			const grant = async () => {
				held.add(name);
				try {
					return await cb({ name });
				} finally {
					held.delete(name);
					queues.get(name)?.shift()?.();
				}
			};
			if (!held.has(name)) return grant();
			if (ifAvailable) return Promise.resolve(cb(null));
			return new Promise((resolve) => {
				const queue = queues.get(name) ?? [];
				queues.set(name, queue);
				queue.push(() => resolve(grant()));
			});
		}
	};
}

const open: TabCoordinator[] = [];

afterEach(() => {
	for (const tab of open.splice(0)) tab.close();
	vi.unstubAllGlobals();
});

async function twoTabs(): Promise<{
	leader: TabCoordinator;
	follower: TabCoordinator;
	profile: string;
}> {
	vi.stubGlobal('navigator', { locks: fakeLocks() });
	const profile = `test-${crypto.randomUUID()}`;
	const leader = new TabCoordinator(profile);
	const follower = new TabCoordinator(profile);
	open.push(leader, follower);
	expect(await leader.start()).toBe(true);
	expect(await follower.start()).toBe(false);
	return { leader, follower, profile };
}

/** Every message on the profile's channel, as another listener hears it. */
function overhear(profile: string): { heard: unknown[]; close(): void } {
	const channel = new BroadcastChannel(`kith:${profile}`);
	const heard: unknown[] = [];
	channel.addEventListener('message', (event: MessageEvent) => heard.push(event.data));
	return { heard, close: () => channel.close() };
}

describe('tabs', () => {
	it('a follower gets a media chunk from the leader’s peers, and null when they have none', async () => {
		const { leader, follower } = await twoTabs();
		const blob = new Uint8Array([1, 2, 3, 4]);
		const [held, missing] = [1, 2].map(
			(fill) => toBase64Url(new Uint8Array(32).fill(fill)) as ChunkId
		) as [ChunkId, ChunkId];
		const asked: unknown[] = [];
		leader.setChunkHandler(async (room, id, reach) => {
			asked.push({ room, id, reach });
			return id === held ? blob : null;
		});
		// A follower answers nobody, even with a handler of its own.
		follower.setChunkHandler(async () => new Uint8Array([9]));

		expect(await follower.askChunk('room-1', held, 'lan')).toEqual(blob);
		expect(await follower.askChunk('room-1', missing, 'far')).toBeNull();
		expect(asked).toEqual([
			{ room: 'room-1', id: held, reach: 'lan' },
			{ room: 'room-1', id: missing, reach: 'far' }
		]);
	});

	it('committed updates go to the other tabs, and nowhere while the leader is alone', async () => {
		vi.stubGlobal('navigator', { locks: fakeLocks() });
		const profile = `test-${crypto.randomUUID()}`;
		const alone = new TabCoordinator(profile);
		open.push(alone);
		expect(await alone.start()).toBe(true);
		const channel = overhear(profile);
		await alone.broadcastUpdate('room-1', new Uint8Array([1, 2, 3]));
		// A message posted now would arrive before this one.
		alone.broadcastNet({ room: 'room-1', status: 'connected', relay: [], peer: '' });
		await vi.waitFor(() => expect(channel.heard).toHaveLength(1));
		expect(channel.heard[0]).toMatchObject({ t: 'net' });

		// Another tab queued for the lock: it hears every update.
		const follower = new TabCoordinator(profile);
		open.push(follower);
		expect(await follower.start()).toBe(false);
		const updates: unknown[] = [];
		follower.onUpdate((room, update) => updates.push({ room, update }));
		await alone.broadcastUpdate('room-1', new Uint8Array([4, 5, 6]));
		await vi.waitFor(() => expect(updates).toHaveLength(1));
		expect(updates[0]).toEqual({ room: 'room-1', update: new Uint8Array([4, 5, 6]) });
		channel.close();
	});

	it('the leader’s direct path to a room’s peers reaches the followers', async () => {
		const { leader, follower } = await twoTabs();
		const heard: NetMessage[] = [];
		follower.onNet((message) => heard.push(message));
		leader.broadcastNet({ room: 'room-1', status: 'offline', relay: [], peer: 'LAN peer' });
		await vi.waitFor(() => expect(heard).toHaveLength(1));
		expect(heard[0]).toMatchObject({ room: 'room-1', status: 'offline', peer: 'LAN peer' });
	});
});
