/**
 * /kith/sync between real libp2p nodes on 127.0.0.1 TCP (noise, yamux): no
 * mock of libp2p, real sealed envelopes, the real doc rules.
 */
import * as encoding from 'lib0/encoding';
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { ENVELOPE_MAP } from '../conversation';
import { rawDoc, withoutDeleteSet } from '../conversation/test-support';
import { equalBytes, newSecretKey, utf8Encode } from '../crypto';
import { envelopeId, sealEnvelope } from '../envelope';
import { awarenessStateOf } from '../sync/messages';
import { MAX_FRAME_BYTES } from './sync-protocol';
import {
	capabilityOf,
	connect,
	doc,
	ids,
	join,
	newDevice,
	newRoom,
	rawClient,
	rawHandshake,
	sleep,
	startNode,
	startPeer,
	stopAll,
	until,
	write,
	type Peer,
	type RawClient,
	type Room
} from './test-support';
import { writeAwareness, writeSyncStep1, writeSyncUpdate, type P2PMessage } from './wire';

afterEach(stopAll);

const converged = (a: Peer, b: Peer, room: Room) =>
	ids(doc(a, room)).join() === ids(doc(b, room)).join();

describe('two peers', () => {
	it('sync a conversation both ways, live and after the fact, and report the path', async () => {
		const room = newRoom();
		const [alice, bob] = await Promise.all([startPeer([room]), startPeer([room])]);
		await write(doc(alice, room), alice.device, room.key, 'before we met');
		await connect(alice.node, bob.node);
		await until(() => doc(bob, room).size === 1, 'bob gets the history');
		await write(doc(bob, room), bob.device, room.key, 'hi alice', 'how are you');
		await write(doc(alice, room), alice.device, room.key, 'hi bob');
		await until(() => doc(alice, room).size === 4 && doc(bob, room).size === 4, 'both ways');
		expect(ids(doc(alice, room))).toEqual(ids(doc(bob, room)));
		// One stream per room and pair: a duplicate (both dialed) was closed.
		await until(() => alice.sync.sessions(room.roomId).length === 1, 'one session on alice');
		expect(bob.sync.sessions(room.roomId)).toHaveLength(1);
		// Loopback counts as a LAN.
		expect(alice.sync.status(room.roomId)).toMatchObject({
			kind: 'lan',
			label: 'LAN peer',
			peers: [bob.node.peerId.toString()]
		});
	});

	it('a third peer that connects later gets the whole history', async () => {
		const room = newRoom();
		const [alice, bob, carol] = await Promise.all([
			startPeer([room]),
			startPeer([room]),
			startPeer([room])
		]);
		await connect(alice.node, bob.node);
		for (let i = 0; i < 20; i++) {
			await write(doc(i % 2 ? alice : bob, room), (i % 2 ? alice : bob).device, room.key, `m${i}`);
		}
		await until(() => converged(alice, bob, room) && doc(bob, room).size === 20, 'a and b');
		await connect(carol.node, bob.node);
		await until(() => doc(carol, room).size === 20, 'carol gets everything');
		expect(ids(doc(carol, room))).toEqual(ids(doc(alice, room)));
	});

	it('a history larger than several frames arrives whole (step2 split under the frame limit)', async () => {
		const room = newRoom();
		const [alice, bob] = await Promise.all([startPeer([room]), startPeer([room])]);
		const big = 'x'.repeat(400 * 1024);
		for (let i = 0; i < 16; i++)
			await write(doc(alice, room), alice.device, room.key, `${i}${big}`);
		expect(doc(alice, room).encodeState().length).toBeGreaterThan(3 * MAX_FRAME_BYTES);
		await connect(bob.node, alice.node);
		await until(() => doc(bob, room).size === 16, 'bob gets 16 large envelopes', 20_000);
		expect(ids(doc(bob, room))).toEqual(ids(doc(alice, room)));
	});

	it('sync over WebSockets too (the transport a browser uses to reach a kith peer)', async () => {
		const room = newRoom();
		const ws = ['/ip4/127.0.0.1/tcp/0/ws'];
		const [alice, bob] = await Promise.all([
			startPeer([room], { listen: ws }),
			startPeer([room], { listen: ws })
		]);
		expect(String(bob.node.getMultiaddrs()[0])).toContain('/ws');
		await write(doc(alice, room), alice.device, room.key, 'over ws');
		await connect(alice.node, bob.node);
		await until(() => doc(bob, room).size === 1, 'bob syncs over ws');
	});

	it('only rooms both hold are synced; the other streams are refused', async () => {
		const shared = newRoom();
		const onlyAlice = newRoom();
		const onlyBob = newRoom();
		const alice = await startPeer([shared, onlyAlice]);
		const bob = await startPeer([shared, onlyBob]);
		const refused: string[] = [];
		alice.sync.on('refused', (event) => refused.push(`${event.roomId} ${event.reason}`));
		await write(doc(alice, onlyAlice), alice.device, onlyAlice.key, 'secret of alice');
		await write(doc(bob, onlyBob), bob.device, onlyBob.key, 'secret of bob');
		await write(doc(alice, shared), alice.device, shared.key, 'for both');
		await connect(alice.node, bob.node);
		await until(() => doc(bob, shared).size === 1, 'the shared room syncs');
		await until(() => refused.length > 0, 'alice is refused for her own room');
		expect(refused).toEqual([`${onlyAlice.roomId} unauthorized`]);
		expect(bob.sync.status(onlyAlice.roomId).kind).toBe('none');
		expect(alice.sync.status(onlyBob.roomId).kind).toBe('none');
	});

	it('re-dials after the connection comes back, and syncs what was written meanwhile', async () => {
		const room = newRoom();
		const [alice, bob] = await Promise.all([startPeer([room]), startPeer([room])]);
		await connect(alice.node, bob.node);
		await write(doc(alice, room), alice.device, room.key, 'one');
		await until(() => doc(bob, room).size === 1, 'first message');
		await alice.node.hangUp(bob.node.peerId);
		await until(() => alice.sync.status(room.roomId).kind === 'none', 'alice sees no peer');
		await write(doc(alice, room), alice.device, room.key, 'written apart');
		await write(doc(bob, room), bob.device, room.key, 'me too');
		await sleep(100);
		expect(doc(bob, room).size).toBe(2);
		await connect(bob.node, alice.node);
		await until(() => converged(alice, bob, room) && doc(alice, room).size === 3, 'caught up');
	});
});

describe('access', () => {
	/** Read until the stream ends; every frame received is kept on the client. */
	async function drain(client: RawClient): Promise<P2PMessage[]> {
		const messages: P2PMessage[] = [];
		for (;;) {
			const message = await client.read();
			if (!message) return messages;
			messages.push(message);
		}
	}

	it('a peer without the capability is refused and receives no room data', async () => {
		const room = newRoom();
		const alice = await startPeer([room]);
		await write(doc(alice, room), alice.device, room.key, 'for members only');
		const mallory = await startNode();
		// A wrong key (a former epoch, another room's key), and no key at all.
		for (const capability of [await capabilityOf(room, newSecretKey()), null]) {
			const client = await rawClient(mallory, alice.node);
			const answer = await rawHandshake(client, mallory, alice.node, room.roomId, capability);
			expect(answer).toMatchObject({ type: 'refused', reason: 'unauthorized' });
			// Try to pull anyway: ask for everything, and push an update.
			await client.send(writeSyncStep1(new Uint8Array([0]))).catch(() => undefined);
			expect(await drain(client)).toEqual([]);
			// Exactly two frames came: the challenge (32 random bytes) and the refusal.
			expect(client.received.map((bytes) => bytes[0])).toEqual([17, 101]);
			const envelope = [...doc(alice, room).entries()][0]?.bytes as Uint8Array;
			for (const bytes of client.received) expect(containsBytes(bytes, envelope)).toBe(false);
		}
		expect(alice.sync.status(room.roomId).kind).toBe('none');
	});

	it('the refusal is the same whether the room is held or not (existence is not revealed)', async () => {
		const held = newRoom();
		const alice = await startPeer([held]);
		const mallory = await startNode();
		const answers: Uint8Array[] = [];
		for (const roomId of [held.roomId, newRoom().roomId]) {
			const client = await rawClient(mallory, alice.node);
			await rawHandshake(client, mallory, alice.node, roomId, null);
			answers.push(client.received.at(-1) as Uint8Array);
		}
		expect(equalBytes(answers[0] as Uint8Array, answers[1] as Uint8Array)).toBe(true);
	});

	it('a listener without the capability cannot pass the dialer’s check (mutual proof)', async () => {
		const room = newRoom();
		const alice = await startPeer([room]);
		// Bob holds the room id under a wrong key: he refuses alice's proof, and
		// alice would refuse his. Neither doc moves.
		const bob = await startPeer();
		join(bob, room, newSecretKey());
		await write(doc(alice, room), alice.device, room.key, 'alice');
		await write(doc(bob, room), bob.device, room.key, 'bob');
		const refused: string[] = [];
		alice.sync.on('refused', (event) => refused.push(event.reason));
		bob.sync.on('refused', (event) => refused.push(event.reason));
		await connect(alice.node, bob.node);
		await until(() => refused.length === 2, 'both refused');
		expect(refused).toEqual(['unauthorized', 'unauthorized']);
		expect(doc(alice, room).size).toBe(1);
		expect(doc(bob, room).size).toBe(1);
	});

	it('a proof made for another connection is refused (no relaying of a member’s answer)', async () => {
		const room = newRoom();
		const alice = await startPeer([room]);
		const mallory = await startNode();
		const other = await startNode();
		const capability = await capabilityOf(room);
		const client = await rawClient(mallory, alice.node);
		// A valid signature, but naming `other` as the prover: what a member
		// dialing `other` would have produced.
		const answer = await rawHandshake(client, other, alice.node, room.roomId, capability);
		expect(answer).toMatchObject({ type: 'refused', reason: 'unauthorized' });
	});
});

describe('doc rules', () => {
	async function member(room: Room) {
		const alice = await startPeer([room]);
		await write(doc(alice, room), alice.device, room.key, 'kept');
		const bobNode = await startNode();
		const client = await rawClient(bobNode, alice.node);
		const answer = await rawHandshake(
			client,
			bobNode,
			alice.node,
			room.roomId,
			await capabilityOf(room)
		);
		expect(answer?.type).toBe('proof');
		// Alice's step1, and her awareness (none) — then her step2 answers ours.
		expect((await client.read())?.type).toBe('sync-step1');
		return { alice, client };
	}

	it('an awareness update that speaks for the receiver itself is dropped', async () => {
		const room = newRoom();
		const { alice, client } = await member(room);
		const awareness = alice.sync.awareness(room.roomId);
		if (!awareness) throw new Error('no awareness');
		const forged = encoding.encode((e) => {
			encoding.writeVarUint(e, 1);
			encoding.writeVarUint(e, awareness.clientID);
			encoding.writeVarUint(e, 99);
			encoding.writeVarString(e, JSON.stringify(awarenessStateOf(utf8Encode('spoof'))));
		});
		await client.send(writeAwareness(forged));
		// And one for another client, which is taken.
		const other = encoding.encode((e) => {
			encoding.writeVarUint(e, 1);
			encoding.writeVarUint(e, 4242);
			encoding.writeVarUint(e, 1);
			encoding.writeVarString(e, JSON.stringify(awarenessStateOf(utf8Encode('typing'))));
		});
		await client.send(writeAwareness(other));
		await until(() => awareness.getStates().has(4242), 'the other state arrives');
		expect(awareness.getLocalState()).toBeNull();
		expect(alice.log.some((line) => line.message.includes('speaks for this device'))).toBe(true);
	});

	it('an update that breaks a rule is refused whole, with the reason, and nothing is applied', async () => {
		const room = newRoom();
		const { alice, client } = await member(room);
		const bob = await newDevice();
		const good = await sealEnvelope({
			clock: 0,
			roomId: room.roomId,
			epoch: 0,
			key: room.key,
			signer: bob.signer,
			plaintext: utf8Encode('good')
		});
		const cases: [string, Uint8Array][] = [];

		// delete: bob's own envelope, then deleted
		const deleting = rawDoc(bob.client);
		deleting.getMap(ENVELOPE_MAP).set(good.id, good.bytes);
		deleting.getMap(ENVELOPE_MAP).delete(good.id);
		cases.push(['delete-set', Y.encodeStateAsUpdate(deleting)]);

		// overwrite: alice's entry given a second value
		const over = rawDoc(bob.client, doc(alice, room));
		const [kept] = [...doc(alice, room).entries()];
		over.getMap(ENVELOPE_MAP).set(kept?.id as string, good.bytes);
		cases.push([
			'overwrite',
			withoutDeleteSet(Y.encodeStateAsUpdate(over, Y.encodeStateVector(doc(alice, room).doc)))
		]);

		// wrong client id: bob's envelope under another client id
		const wrongClient = rawDoc((bob.client ^ 0x1234) >>> 0);
		wrongClient.getMap(ENVELOPE_MAP).set(good.id, good.bytes);
		cases.push(['client-mismatch', Y.encodeStateAsUpdate(wrongClient)]);

		// forged signature: one bit flipped, key re-hashed, right client
		const forged = good.bytes.slice();
		forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 1;
		const forging = rawDoc(bob.client);
		forging.getMap(ENVELOPE_MAP).set(envelopeId(forged), forged);
		cases.push(['bad-signature', Y.encodeStateAsUpdate(forging)]);

		// a good envelope and a forged one in one update: refused whole
		const mixed = rawDoc(bob.client);
		mixed.getMap(ENVELOPE_MAP).set(good.id, good.bytes);
		const forged2 = (
			await sealEnvelope({
				clock: 1,
				roomId: room.roomId,
				epoch: 0,
				key: room.key,
				signer: bob.signer,
				plaintext: utf8Encode('second')
			})
		).bytes.slice();
		forged2[forged2.length - 1] = (forged2[forged2.length - 1] as number) ^ 1;
		mixed.getMap(ENVELOPE_MAP).set(envelopeId(forged2), forged2);
		cases.push(['bad-signature', Y.encodeStateAsUpdate(mixed)]);

		const before = ids(doc(alice, room));
		for (const [reason, update] of cases) {
			await client.send(writeSyncUpdate(update));
			let message = await client.read();
			while (message && message.type !== 'refused') message = await client.read();
			expect([reason, message]).toMatchObject([reason, { reason: `doc-rules:${reason}` }]);
		}
		expect(ids(doc(alice, room))).toEqual(before);
		expect(doc(alice, room).has(good.id)).toBe(false);
		// The stream is still usable: a good update is applied.
		const fine = rawDoc(bob.client);
		fine.getMap(ENVELOPE_MAP).set(good.id, good.bytes);
		await client.send(writeSyncUpdate(Y.encodeStateAsUpdate(fine)));
		await until(() => doc(alice, room).has(good.id), 'the good update is applied');
	});
});

function containsBytes(haystack: Uint8Array, needle: Uint8Array): boolean {
	const probe = needle.subarray(needle.length - 32);
	outer: for (let i = 0; i + probe.length <= haystack.length; i++) {
		for (let j = 0; j < probe.length; j++) if (haystack[i + j] !== probe[j]) continue outer;
		return true;
	}
	return false;
}
