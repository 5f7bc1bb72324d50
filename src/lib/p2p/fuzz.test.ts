/**
 * Bad input on /kith/sync: thousands of random, truncated and oversized frames
 * from strangers and from a member, over real libp2p streams. Each bad stream
 * is closed (with a named reason where one can still be sent); the node stays
 * up, its doc is untouched, and it still serves another peer.
 */
import * as encoding from 'lib0/encoding';
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from '../crypto';
import { encodeFrame } from './frame-stream';
import { MAX_FRAME_BYTES } from './sync-protocol';
import {
	capabilityOf,
	connect,
	doc,
	ids,
	newRoom,
	rawClient,
	rawHandshake,
	startNode,
	startPeer,
	stopAll,
	until,
	write,
	type RawClient
} from './test-support';
import { writeHello, writeProof, writeSyncStep1, writeSyncUpdate } from './wire';

afterEach(stopAll);

/** Seeded PRNG (mulberry32): a failure names its seed and can be replayed. */
function prng(seed: number) {
	let a = seed >>> 0;
	const next = () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
	const int = (n: number) => Math.floor(next() * n);
	const bytes = (n: number) => {
		const out = new Uint8Array(n);
		for (let i = 0; i < n; i++) out[i] = int(256);
		return out;
	};
	return { int, bytes, pick: <T>(items: T[]) => items[int(items.length)] as T };
}

type Rng = ReturnType<typeof prng>;

/** One hostile frame, already on the wire (its own length prefix, or a broken one). */
function junkFrame(rng: Rng, valid: Uint8Array[]): Uint8Array {
	switch (rng.int(8)) {
		case 0: // random body, honest length
			return encodeFrame(rng.bytes(1 + rng.int(300)));
		case 1: {
			// a valid frame cut short, sent as if complete
			const frame = rng.pick(valid);
			return encodeFrame(frame.subarray(0, rng.int(frame.length)));
		}
		case 2: {
			// a valid frame with a byte flipped
			const frame = rng.pick(valid).slice();
			const i = rng.int(frame.length);
			frame[i] = (frame[i] as number) ^ (1 + rng.int(255));
			return encodeFrame(frame);
		}
		case 3: // a valid frame with bytes appended
			return encodeFrame(new Uint8Array([...rng.pick(valid), ...rng.bytes(1 + rng.int(8))]));
		case 4: // raw bytes with no framing at all
			return rng.bytes(1 + rng.int(64));
		case 5: // a length over the limit
			return encoding.encode((e) => encoding.writeVarUint(e, MAX_FRAME_BYTES + 1 + rng.int(1e9)));
		case 6: // an empty frame
			return new Uint8Array([0]);
		default: // a valid frame at the wrong moment
			return encodeFrame(rng.pick(valid));
	}
}

/** Send raw bytes on the client's stream, ignoring a stream already gone. */
function sendRaw(client: RawClient, bytes: Uint8Array): void {
	try {
		client.frames.stream.send(bytes);
	} catch {
		// closed by the peer: expected
	}
}

/** Close our end (a partial frame may be pending), then read until the stream ends. */
async function drain(client: RawClient): Promise<void> {
	await client.frames.close().catch(() => undefined);
	for (;;) {
		const message = await client.read(10_000);
		if (!message) return;
	}
}

describe('fuzz', () => {
	it('thousands of junk frames from strangers close their streams, never the node', async () => {
		const seed = Date.now() % 1e9;
		const rng = prng(seed);
		const room = newRoom();
		const alice = await startPeer([room]);
		await write(doc(alice, room), alice.device, room.key, 'still here');
		const before = ids(doc(alice, room));
		const mallory = await startNode();
		const valid = [
			writeHello(room.roomId, randomBytes(32)),
			writeProof(randomBytes(64)),
			writeSyncStep1(new Uint8Array([0])),
			writeSyncUpdate(doc(alice, room).encodeState())
		];
		let sent = 0;
		const streams = 120;
		for (let batch = 0; batch < streams; batch += 10) {
			await Promise.all(
				Array.from({ length: 10 }, async () => {
					const client = await rawClient(mallory, alice.node);
					const count = 10 + rng.int(30);
					for (let i = 0; i < count; i++) {
						sendRaw(client, junkFrame(rng, valid));
						sent++;
					}
					await drain(client);
				})
			);
		}
		expect(sent, `seed ${seed}`).toBeGreaterThan(2000);
		expect(ids(doc(alice, room))).toEqual(before);
		// Still serving: a member syncs.
		const bob = await startPeer([room]);
		await connect(bob.node, alice.node);
		await until(() => doc(bob, room).size === 1, 'bob syncs after the storm');
	});

	it('junk from an admitted member after the handshake: closed with a reason, doc untouched', async () => {
		const seed = Date.now() % 1e9;
		const rng = prng(seed);
		const room = newRoom();
		const alice = await startPeer([room]);
		await write(doc(alice, room), alice.device, room.key, 'intact');
		const before = ids(doc(alice, room));
		const member = await startNode();
		const capability = await capabilityOf(room);
		const valid = [
			writeSyncStep1(new Uint8Array([0])),
			writeSyncUpdate(doc(alice, room).encodeState())
		];
		const reasons = new Set<string>();
		let sent = 0;
		for (let round = 0; round < 40; round++) {
			const client = await rawClient(member, alice.node);
			const answer = await rawHandshake(client, member, alice.node, room.roomId, capability);
			expect(answer?.type, `seed ${seed}`).toBe('proof');
			for (let i = 0; i < 50; i++) {
				sendRaw(client, junkFrame(rng, valid));
				sent++;
			}
			await client.frames.close().catch(() => undefined);
			for (;;) {
				const message = await client.read(10_000);
				if (!message) break;
				if (message.type === 'refused') reasons.add(message.reason);
			}
		}
		expect(sent).toBe(2000);
		expect(ids(doc(alice, room)), `seed ${seed}`).toEqual(before);
		// Every closing reason is a named one.
		for (const reason of reasons) {
			expect(reason).toMatch(
				/^(malformed-frame|frame-too-large|unexpected-message|too-many-refusals|doc-rules:[a-z-]+)$/
			);
		}
		const bob = await startPeer([room]);
		await connect(bob.node, alice.node);
		await until(() => doc(bob, room).size === 1, 'bob syncs after the junk');
	});

	it('an oversized frame is refused frame-too-large before its body is read', async () => {
		const room = newRoom();
		const alice = await startPeer([room]);
		const mallory = await startNode();
		const client = await rawClient(mallory, alice.node);
		sendRaw(
			client,
			encoding.encode((e) => encoding.writeVarUint(e, MAX_FRAME_BYTES + 1))
		);
		expect(await client.read()).toMatchObject({ type: 'refused', reason: 'frame-too-large' });
		expect(await client.read()).toBeNull();
		// A frame at the limit is read (and refused for what it is, not its size).
		const atLimit = await rawClient(mallory, alice.node);
		const body = new Uint8Array(MAX_FRAME_BYTES);
		body[0] = 99; // an unknown message type
		sendRaw(atLimit, encodeFrame(body));
		expect(await atLimit.read()).toMatchObject({ type: 'refused', reason: 'malformed-frame' });
	});

	it('a member that stops reading is cut off (slow-reader) instead of growing the send queue', async () => {
		const room = newRoom();
		const alice = await startPeer([room]);
		const member = await startNode();
		const client = await rawClient(member, alice.node);
		const answer = await rawHandshake(
			client,
			member,
			alice.node,
			room.roomId,
			await capabilityOf(room)
		);
		expect(answer?.type).toBe('proof');
		await until(() => alice.sync.sessions(room.roomId).length === 1, 'admitted');
		client.frames.stream.pause(); // yamux stops granting alice window
		const big = 'y'.repeat(900 * 1024);
		for (let i = 0; i < 40 && alice.sync.sessions(room.roomId).length > 0; i++) {
			await write(doc(alice, room), alice.device, room.key, `${i}${big}`);
		}
		await until(() => alice.sync.sessions(room.roomId).length === 0, 'the session is cut');
		expect(alice.log.some((line) => line.fields?.['reason'] === 'slow-reader')).toBe(true);
		// Alice goes on: a member that reads gets everything.
		const bob = await startPeer([room]);
		await connect(bob.node, alice.node);
		await until(() => doc(bob, room).size === doc(alice, room).size, 'bob catches up', 30_000);
	}, 60_000);

	it('a stranger that says nothing is cut off after the handshake timeout', async () => {
		const room = newRoom();
		const { PeerSync } = await import('./peer-sync');
		const node = await startNode();
		const sync = new PeerSync(node, { handshakeTimeoutMs: 300 });
		await sync.start();
		const mallory = await startNode();
		const client = await rawClient(mallory, node);
		expect(await client.read()).toMatchObject({ type: 'refused', reason: 'handshake-timeout' });
		expect(await client.read()).toBeNull();
		await sync.stop();
		void room;
	});
});
