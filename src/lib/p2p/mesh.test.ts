/**
 * Several real peers: one conversation over several paths converges with no
 * duplicates (fast-check drives the topology and the order of writes),
 * updates and awareness hop across peers, many rooms share one connection,
 * and mDNS finds a peer on the LAN.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { utf8Encode } from '../crypto';
import { awarenessStateOf } from '../sync/messages';
import {
	connect,
	doc,
	ids,
	newRoom,
	sleep,
	startPeer,
	stopAll,
	until,
	write,
	type Peer,
	type Room
} from './test-support';

afterEach(stopAll);

function expectConverged(peers: Peer[], room: Room, total: number): void {
	const expected = ids(doc(peers[0] as Peer, room));
	expect(expected).toHaveLength(total);
	expect(new Set(expected).size).toBe(total);
	for (const peer of peers) {
		const cdoc = doc(peer, room);
		expect(ids(cdoc)).toEqual(expected);
		// No entry was ever held twice: a duplicate would have left a delete set.
		expect(Y.decodeUpdate(cdoc.encodeState()).ds.clients.size).toBe(0);
	}
}

describe('several paths', () => {
	it('a triangle (each peer reaches the others directly and through the third) converges with no duplicates', async () => {
		const room = newRoom();
		const peers = await Promise.all([startPeer([room]), startPeer([room]), startPeer([room])]);
		const [a, b, c] = peers as [Peer, Peer, Peer];
		await connect(a.node, b.node);
		await connect(b.node, c.node);
		await connect(c.node, a.node);
		await Promise.all(
			peers.map(async (peer, i) => {
				for (let n = 0; n < 10; n++) {
					await write(doc(peer, room), peer.device, room.key, `${i}:${n}`);
				}
			})
		);
		await until(() => peers.every((peer) => doc(peer, room).size === 30), 'all 30 everywhere');
		expectConverged(peers, room, 30);
		// No refusal anywhere: forwarded copies are skipped, not refused.
		for (const peer of peers) {
			expect(peer.log.filter((line) => line.message.includes('refused'))).toEqual([]);
		}
	});

	it('updates hop across a line of peers (a — b — c): forwarded through b’s doc', async () => {
		const room = newRoom();
		const [a, b, c] = await Promise.all([startPeer([room]), startPeer([room]), startPeer([room])]);
		await connect(a.node, b.node);
		await connect(b.node, c.node);
		await write(doc(a, room), a.device, room.key, 'from a');
		await write(doc(c, room), c.device, room.key, 'from c');
		await until(() => doc(a, room).size === 2 && doc(c, room).size === 2, 'both ends');
		expectConverged([a, b, c], room, 2);
		expect(a.node.getConnections(c.node.peerId)).toHaveLength(0);
	});

	it('property: any connected topology and interleaving of writes and connections converges', async () => {
		await fc.assert(
			fc.asyncProperty(
				fc.array(fc.tuple(fc.nat(3), fc.nat(3)), { minLength: 3, maxLength: 6 }),
				fc.array(fc.tuple(fc.nat(3), fc.nat(20)), { minLength: 4, maxLength: 12 }),
				async (edges, schedule) => {
					const room = newRoom();
					const peers = await Promise.all([0, 1, 2, 3].map(() => startPeer([room])));
					try {
						// A spanning line keeps the graph connected; random edges add paths.
						const spanning: [number, number][] = [
							[0, 1],
							[1, 2],
							[2, 3]
						];
						const links = [...spanning, ...edges].filter(([x, y]) => x !== y);
						const pending = [...links];
						let written = 0;
						for (const [who, pause] of schedule) {
							const peer = peers[who] as Peer;
							await write(doc(peer, room), peer.device, room.key, `w${written++}`);
							const link = pending.shift();
							if (link) {
								const [x, y] = link;
								await connect((peers[x] as Peer).node, (peers[y] as Peer).node);
							}
							await sleep(pause);
						}
						for (const [x, y] of pending) {
							await connect((peers[x] as Peer).node, (peers[y] as Peer).node);
						}
						await until(
							() => peers.every((peer) => doc(peer, room).size === written),
							'every write everywhere',
							20_000
						);
						expectConverged(peers, room, written);
					} finally {
						await stopAll();
					}
				}
			),
			{ numRuns: 4 }
		);
	}, 120_000);
});

describe('rooms and awareness', () => {
	it('thirty rooms over one connection all sync (early streams stay under the limit)', async () => {
		const rooms = Array.from({ length: 30 }, () => newRoom());
		const [a, b] = await Promise.all([startPeer(rooms), startPeer(rooms)]);
		for (const room of rooms) await write(doc(a, room), a.device, room.key, room.roomId);
		await connect(b.node, a.node);
		await until(() => rooms.every((room) => doc(b, room).size === 1), 'every room on b', 20_000);
		expect(a.node.getConnections(b.node.peerId)).toHaveLength(1);
	});

	it('encrypted awareness reaches peers two hops away and leaves with its peer', async () => {
		const room = newRoom();
		const [a, b, c] = await Promise.all([startPeer([room]), startPeer([room]), startPeer([room])]);
		await connect(a.node, b.node);
		await connect(b.node, c.node);
		await until(
			() =>
				c.sync.status(room.roomId).kind !== 'none' && a.sync.status(room.roomId).kind !== 'none',
			'sessions open'
		);
		const awarenessA = a.sync.awareness(room.roomId);
		const awarenessC = c.sync.awareness(room.roomId);
		if (!awarenessA || !awarenessC) throw new Error('no awareness');
		const sealed = utf8Encode('pretend ciphertext: typing');
		awarenessA.setLocalState(awarenessStateOf(sealed));
		await until(() => awarenessC.getStates().has(awarenessA.clientID), 'c sees a typing');
		expect(awarenessC.getStates().get(awarenessA.clientID)).toEqual(awarenessStateOf(sealed));
		await a.node.hangUp(b.node.peerId);
		await until(() => !awarenessC.getStates().has(awarenessA.clientID), 'a leaves c');
	});
});

describe('mDNS', () => {
	it('two peers on one host find each other and sync with no address given', async () => {
		const room = newRoom();
		const a = await startPeer([room], { mdns: { interval: 300 } });
		const b = await startPeer([room], { mdns: { interval: 300 } });
		await write(doc(a, room), a.device, room.key, 'found you');
		await until(() => doc(b, room).size === 1, 'b syncs through mDNS', 20_000);
		expect(b.sync.status(room.roomId)).toMatchObject({ kind: 'lan', label: 'LAN peer' });
	});
});
