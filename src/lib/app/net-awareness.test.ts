/**
 * NetHub's typing (awareness) over several paths: this device's encrypted
 * state goes to the relay connection and to the peer-to-peer link alike
 * (null clears it on both), and the remote states of both are merged by
 * awareness client id for the listeners and the follower tabs; the direct
 * path opens once the relay caught a room up (or cannot). The relay
 * connection, the P2P link and the LAN link are stand-ins.
 */
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { RoomId } from '../crypto';
import type { DocSession } from './doc-session';
import type { TabCoordinator } from './tabs';

type States = ReadonlyMap<number, Uint8Array>;

const fakes = vi.hoisted(() => {
	class FakeRelay {
		static last: FakeRelay | null = null;
		readonly status = 'connected';
		local: Uint8Array | null = null;
		readonly listeners = new Map<string, Set<(payload: unknown) => void>>();
		constructor() {
			FakeRelay.last = this;
		}
		on(type: string, listener: (payload: unknown) => void) {
			const set = this.listeners.get(type) ?? new Set();
			this.listeners.set(type, set);
			set.add(listener);
			return () => set.delete(listener);
		}
		emit(type: string, payload: unknown) {
			for (const listener of [...(this.listeners.get(type) ?? [])]) listener(payload);
		}
		setLocalState(state: Uint8Array | null) {
			this.local = state;
		}
		destroy() {}
	}
	interface P2POptions {
		onAwareness?: (roomId: string, states: ReadonlyMap<number, Uint8Array>) => void;
	}
	class FakeP2P {
		static last: FakeP2P | null = null;
		readonly options: P2POptions;
		readonly local = new Map<string, Uint8Array | null>();
		readonly attached = new Set<string>();
		constructor(options: P2POptions) {
			this.options = options;
			FakeP2P.last = this;
		}
		attach(roomId: string) {
			this.attached.add(roomId);
		}
		detach() {}
		label() {
			return 'direct';
		}
		setLocalAwareness(roomId: string, state: Uint8Array | null) {
			this.local.set(roomId, state);
		}
		close() {}
	}
	/** The LAN link: records this device's state; `label` is falsy (no LAN peer connected). */
	class FakeLan {
		static last: FakeLan | null = null;
		readonly options: P2POptions;
		readonly local = new Map<string, Uint8Array | null>();
		constructor(options: P2POptions) {
			this.options = options;
			FakeLan.last = this;
		}
		attach() {}
		detach() {}
		label() {
			return '';
		}
		setLocalAwareness(roomId: string, state: Uint8Array | null) {
			this.local.set(roomId, state);
		}
		close() {}
	}
	return { FakeRelay, FakeP2P, FakeLan };
});

vi.mock('../sync', () => ({ RelayConnection: fakes.FakeRelay }));
vi.mock('./p2p-link', () => ({ P2PLink: fakes.FakeP2P }));
vi.mock('./lan-link', () => ({ LanLink: fakes.FakeLan }));

const { NetHub } = await import('./net');

const ROOM = 'room-1' as RoomId;
const bytes = (...values: number[]) => new Uint8Array(values);

function fakeTabs() {
	const broadcasts: { room: string; states: [number, Uint8Array][] }[] = [];
	const typing: ((room: string, state: Uint8Array | null) => void)[] = [];
	const tabs = {
		isLeader: true,
		onNet: () => () => undefined,
		onAwareness: () => () => undefined,
		onTyping: (handler: (room: string, state: Uint8Array | null) => void) => {
			typing.push(handler);
			return () => undefined;
		},
		onNotify: () => () => undefined,
		onAsk: () => () => undefined,
		askForNet: () => undefined,
		setChunkHandler: () => undefined,
		broadcastNet: () => undefined,
		broadcastAwareness: (message: { room: string; states: [number, Uint8Array][] }) =>
			broadcasts.push(message),
		sendTyping: () => undefined
	};
	return { tabs: tabs as unknown as TabCoordinator, broadcasts, typing };
}

async function hubWithRoom() {
	const { tabs, broadcasts, typing } = fakeTabs();
	const hub = new NetHub({ tabs, relayUrl: 'http://kith.test' });
	const session = { loaded: Promise.resolve(), doc: {} } as unknown as DocSession;
	hub.attach(ROOM, session, new Uint8Array(32));
	await vi.waitFor(() => {
		if (!fakes.FakeRelay.last) throw new Error('not connected yet');
	});
	const relay = fakes.FakeRelay.last as InstanceType<typeof fakes.FakeRelay>;
	// The direct path opens once the relay caught the room up.
	relay.emit('synced', {});
	const p2p = fakes.FakeP2P.last as InstanceType<typeof fakes.FakeP2P>;
	const lan = fakes.FakeLan.last as InstanceType<typeof fakes.FakeLan>;
	const seen: States[] = [];
	hub.listen(ROOM, { onAwareness: (states) => seen.push(new Map(states)) });
	const fromRelay = (states: States) => relay.emit('awareness', { states });
	const fromPeers = (states: States) => p2p.options.onAwareness?.(ROOM, states);
	const fromLan = (states: States) => lan.options.onAwareness?.(ROOM, states);
	return { hub, relay, p2p, lan, seen, broadcasts, typing, fromRelay, fromPeers, fromLan };
}

beforeEach(() => {
	fakes.FakeRelay.last = null;
	fakes.FakeP2P.last = null;
	fakes.FakeLan.last = null;
});

describe('NetHub: when the direct path opens', () => {
	async function attached(tabs: TabCoordinator) {
		const hub = new NetHub({ tabs, relayUrl: 'http://kith.test' });
		const session = { loaded: Promise.resolve(), doc: {} } as unknown as DocSession;
		hub.attach(ROOM, session, new Uint8Array(32));
		await vi.waitFor(() => {
			if (!fakes.FakeRelay.last) throw new Error('not connected yet');
		});
		return { hub, relay: fakes.FakeRelay.last as InstanceType<typeof fakes.FakeRelay> };
	}
	const peersHold = () => fakes.FakeP2P.last?.attached.has(ROOM) ?? false;

	it('after the relay caught the room up, not before', async () => {
		const { hub, relay } = await attached(fakeTabs().tabs);
		relay.emit('status', { status: 'connected' });
		expect(peersHold()).toBe(false);
		relay.emit('synced', {});
		expect(peersHold()).toBe(true);
		hub.close();
	});

	it('at once when the relay cannot be reached', async () => {
		const { hub, relay } = await attached(fakeTabs().tabs);
		relay.emit('status', { status: 'offline' });
		expect(peersHold()).toBe(true);
		hub.close();
	});

	it('after a few seconds when the relay is slow to catch up', async () => {
		vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
		try {
			const { hub } = await attached(fakeTabs().tabs);
			vi.advanceTimersByTime(2_900);
			expect(peersHold()).toBe(false);
			vi.advanceTimersByTime(200);
			expect(peersHold()).toBe(true);
			hub.close();
		} finally {
			vi.useRealTimers();
		}
	});
});

describe('NetHub awareness over the relay and peers', () => {
	it('sets this device’s state on every path, and null clears it on every path', async () => {
		const { hub, relay, p2p } = await hubWithRoom();
		hub.setLocalAwareness(ROOM, bytes(1, 2, 3));
		expect(relay.local).toEqual(bytes(1, 2, 3));
		expect(p2p.local.get(ROOM)).toEqual(bytes(1, 2, 3));
		hub.setLocalAwareness(ROOM, null);
		expect(relay.local).toBeNull();
		expect(p2p.local.get(ROOM)).toBeNull();
		hub.close();
	});

	it('LAN peers (kith serve) get this device’s state and bring theirs, like the other paths', async () => {
		const { hub, lan, seen, fromRelay, fromLan } = await hubWithRoom();
		hub.setLocalAwareness(ROOM, bytes(4));
		expect(lan.local.get(ROOM)).toEqual(bytes(4));
		fromRelay(new Map());
		fromLan(new Map([[5, bytes(5)]]));
		expect(seen.at(-1)).toEqual(new Map([[5, bytes(5)]]));
		fromLan(new Map());
		expect(seen.at(-1)).toEqual(new Map());
		hub.setLocalAwareness(ROOM, null);
		expect(lan.local.get(ROOM)).toBeNull();
		hub.close();
	});

	it('a follower tab’s state (through the leader) goes on every path too', async () => {
		const { hub, relay, p2p, typing } = await hubWithRoom();
		for (const handler of typing) handler(ROOM, bytes(9));
		expect(relay.local).toEqual(bytes(9));
		expect(p2p.local.get(ROOM)).toEqual(bytes(9));
		for (const handler of typing) handler(ROOM, null);
		expect(relay.local).toBeNull();
		expect(p2p.local.get(ROOM)).toBeNull();
		hub.close();
	});

	it('shows peer states with no relay, one entry per client over both paths, and clears', async () => {
		const { hub, seen, broadcasts, fromRelay, fromPeers } = await hubWithRoom();
		// The relay is gone (its states dropped): typing still shows, from peers.
		fromRelay(new Map());
		expect(seen).toHaveLength(0);
		fromPeers(new Map([[7, bytes(7)]]));
		expect(seen.at(-1)).toEqual(new Map([[7, bytes(7)]]));
		expect(broadcasts.at(-1)).toEqual({ room: ROOM, states: [[7, bytes(7)]] });
		// The relay is back and carries the same state: no second entry, nothing new.
		fromRelay(new Map([[7, bytes(7)]]));
		expect(seen).toHaveLength(1);
		// Another person over the relay only.
		fromRelay(
			new Map([
				[7, bytes(7)],
				[8, bytes(8)]
			])
		);
		expect(seen.at(-1)).toEqual(
			new Map([
				[7, bytes(7)],
				[8, bytes(8)]
			])
		);
		// 7 clears: gone once neither path holds it.
		fromPeers(new Map());
		expect(seen.at(-1)?.has(7)).toBe(true);
		fromRelay(new Map([[8, bytes(8)]]));
		expect(seen.at(-1)).toEqual(new Map([[8, bytes(8)]]));
		expect(broadcasts.at(-1)).toEqual({ room: ROOM, states: [[8, bytes(8)]] });
		hub.close();
	});
});
