/**
 * PeerSync's encrypted awareness as the app uses it: this device's state set
 * as bytes (`setLocalAwareness`, encoded `{ e: <base64url> }` like the
 * relay's), remote states reported as bytes by client id (the `awareness`
 * event, `remoteAwareness`), cleared on all peers, and gone with a peer.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { utf8Encode } from '../crypto';
import { awarenessStateOf } from '../sync/messages';
import { connect, doc, newRoom, startPeer, stopAll, until } from './test-support';

afterEach(stopAll);

describe('PeerSync awareness for the app', () => {
	it('a state set as bytes reaches the peer as the same bytes, clears, and leaves with its peer', async () => {
		const room = newRoom();
		const [a, b] = await Promise.all([startPeer([room]), startPeer([room])]);
		const events: ReadonlyMap<number, Uint8Array>[] = [];
		b.sync.on('awareness', ({ roomId, states }) => {
			if (roomId === room.roomId) events.push(states);
		});
		// Set before any session: it goes out when the session opens.
		const sealed = utf8Encode('pretend ciphertext: typing');
		a.sync.setLocalAwareness(room.roomId, sealed);
		const aClient = doc(a, room).doc.clientID;
		expect(a.sync.awareness(room.roomId)?.getLocalState()).toEqual(awarenessStateOf(sealed));
		// Never its own state among the remote ones.
		expect(a.sync.remoteAwareness(room.roomId).size).toBe(0);

		await connect(a.node, b.node);
		await until(() => b.sync.remoteAwareness(room.roomId).has(aClient), 'b sees a typing');
		expect(b.sync.remoteAwareness(room.roomId).get(aClient)).toEqual(sealed);
		expect(events.at(-1)?.get(aClient)).toEqual(sealed);

		a.sync.setLocalAwareness(room.roomId, null);
		await until(() => !b.sync.remoteAwareness(room.roomId).has(aClient), 'a clears');
		expect(events.at(-1)?.has(aClient)).toBe(false);

		a.sync.setLocalAwareness(room.roomId, sealed);
		await until(() => events.at(-1)?.has(aClient) === true, 'a types again');
		await a.node.hangUp(b.node.peerId);
		await until(() => events.at(-1)?.has(aClient) === false, 'a leaves b');
		expect(b.sync.remoteAwareness(room.roomId).size).toBe(0);
	});

	it('removing a room reports it empty', async () => {
		const room = newRoom();
		const [a, b] = await Promise.all([startPeer([room]), startPeer([room])]);
		a.sync.setLocalAwareness(room.roomId, utf8Encode('typing'));
		await connect(a.node, b.node);
		await until(() => b.sync.remoteAwareness(room.roomId).size === 1, 'b sees a');
		let last: ReadonlyMap<number, Uint8Array> | null = null;
		b.sync.on('awareness', ({ states }) => (last = states));
		await b.sync.removeRoom(room.roomId);
		expect(last).toEqual(new Map());
		expect(b.sync.remoteAwareness(room.roomId).size).toBe(0);
		// Setting a state in a room not held is a no-op.
		b.sync.setLocalAwareness(room.roomId, utf8Encode('x'));
	});
});
