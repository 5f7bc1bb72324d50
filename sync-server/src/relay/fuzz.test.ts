/**
 * Robustness: thousands of malformed, truncated, oversized and random frames
 * from several connections at once, before and after admission, plus raw
 * bytes that are not even WebSocket framing. The relay must stay up, keep
 * serving a well-behaved client in another room throughout, never log an
 * internal error, and leave the attacked room's data exactly as it was
 * written validly.
 */
import * as encoding from 'lib0/encoding';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import * as Y from 'yjs';
import { ConversationDoc } from '../../../src/lib/conversation/index.ts';
import {
	accessParams,
	cleanUp,
	Conversation,
	ids,
	Member,
	metricsText,
	refusalCount,
	RelayClient,
	startRelay,
	type RunningRelay
} from './test-support.ts';
import { writeSyncStep1, writeSyncStep2, writeSyncUpdate } from './wire.ts';

afterEach(cleanUp);

const SEED = 0x6b697468;
const FRAMES = 3000;
const LOOPS = 4;
const MAX_FRAME = 16 * 1024;

/** mulberry32: a small seeded PRNG, so a failure can be replayed. */
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
	const bytes = (n: number) => Uint8Array.from({ length: n }, () => int(256));
	const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
	return { next, int, bytes, pick };
}
type Rng = ReturnType<typeof prng>;

function framed(write: (e: encoding.Encoder) => void): Uint8Array {
	return encoding.encode(write);
}

/** One hostile frame: a string means "send as a text frame". */
function hostileFrame(rng: Rng, valid: readonly Uint8Array[]): Uint8Array | string {
	const update = rng.pick(valid);
	const frame = writeSyncUpdate(update);
	// Broken framing closes the connection, so it is rarer than bad content.
	const fatal = [0, 1, 4, 5, 7, 8, 12];
	const survivable = [2, 3, 6, 9, 10, 11, 13, 14];
	switch (rng.pick(rng.next() < 0.05 ? fatal : survivable)) {
		case 0:
			return rng.bytes(rng.int(200));
		case 1: // a sync message of any subtype with random payload
			return framed((e) => {
				encoding.writeVarUint(e, 0);
				encoding.writeVarUint(e, rng.int(6));
				encoding.writeVarUint8Array(e, rng.bytes(rng.int(100)));
			});
		case 2: // a well-framed update of random bytes
			return writeSyncUpdate(rng.bytes(1 + rng.int(300)));
		case 3: {
			// a valid update with a few bytes flipped
			const mutated = update.slice();
			for (let k = 0; k <= rng.int(3); k++) {
				const at = rng.int(mutated.length);
				mutated[at] = mutated[at]! ^ (1 << rng.int(8));
			}
			return rng.next() < 0.5 ? writeSyncUpdate(mutated) : writeSyncStep2(mutated);
		}
		case 4: // truncated
			return frame.subarray(0, rng.int(frame.length));
		case 5: // trailing garbage
			return new Uint8Array([...frame, ...rng.bytes(1 + rng.int(8))]);
		case 6: // awareness with random (opaque) content
			return framed((e) => {
				encoding.writeVarUint(e, 1);
				encoding.writeVarUint8Array(e, rng.bytes(rng.int(64)));
			});
		case 7: // absurd length prefixes
			return new Uint8Array([
				0,
				rng.int(3),
				0xff,
				0xff,
				0xff,
				0xff,
				0x0f,
				...rng.bytes(rng.int(20))
			]);
		case 8: // step 1 with a random state vector
			return writeSyncStep1(rng.bytes(rng.int(40)));
		case 9: // unknown message types
			return framed((e) => {
				encoding.writeVarUint(e, 4 + rng.int(200));
				encoding.writeUint8Array(e, rng.bytes(rng.int(30)));
			});
		case 10: // a replay of a valid update (acknowledged, adds nothing)
			return frame;
		case 11: // an update whose struct count is huge but whose bytes are few
			return writeSyncUpdate(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3]));
		case 12:
			return rng.next() < 0.3 ? rng.bytes(MAX_FRAME + 1 + rng.int(1000)) : 'text is not binary';
		case 14: // step 1 with a well-formed but arbitrary state vector
			return writeSyncStep1(Y.encodeStateVector(new Map([[rng.int(2 ** 32), rng.int(2 ** 32)]])));
		default: // a valid update merged with random structs of a random client
			return writeSyncUpdate(
				Y.mergeUpdates([update, randomDocUpdate(rng)].sort(() => rng.next() - 0.5))
			);
	}
}

/** A plain Yjs update with arbitrary content under a random client: refused by the rules. */
function randomDocUpdate(rng: Rng): Uint8Array {
	const doc = new Y.Doc({ gc: false });
	doc.clientID = rng.int(2 ** 31);
	const kind = rng.int(3);
	if (kind === 0) doc.getMap('e').set(`k${rng.int(1000)}`, rng.bytes(rng.int(200)));
	if (kind === 1) doc.getText('t').insert(0, 'x'.repeat(1 + rng.int(20)));
	if (kind === 2) doc.getArray('e').push([rng.bytes(10)]);
	return Y.encodeStateAsUpdate(doc);
}

function openSocket(url: string): Promise<WebSocket | undefined> {
	return new Promise((resolve) => {
		const ws = new WebSocket(url);
		ws.on('error', () => resolve(undefined));
		ws.once('open', () => resolve(ws));
		ws.once('close', () => resolve(undefined));
	});
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One connection's worth of hostile frames; returns how many were sent. */
async function session(
	relay: RunningRelay,
	target: Conversation,
	rng: Rng,
	valid: readonly Uint8Array[]
): Promise<number> {
	const ws = relay.base.replace(/^http/, 'ws');
	const mode = rng.int(10);
	let path: string;
	if (mode < 7) {
		const params = new URLSearchParams(
			await accessParams(relay.base, target.roomId, await target.capability())
		);
		if (rng.next() < 0.5) params.set('ack', '1');
		path = `/sync/${target.roomId}?${params}`;
	} else if (mode < 9) {
		// Not admitted: the frames arrive while (and after) the relay says no.
		path = rng.pick([
			`/sync/${target.roomId}`,
			`/sync/${target.roomId}?cap=AAAA&nonce=BBBB&sig=CCCC`,
			`/sync/${'x'.repeat(22)}?nonce=${'A'.repeat(54)}`,
			`/sync/%00%ff?ack=1`
		]);
	} else {
		// A room of its own, claimed by this connection.
		const own = new Conversation();
		path = `/sync/${own.roomId}?${new URLSearchParams(await accessParams(relay.base, own.roomId, await own.capability()))}`;
	}
	const socket = await openSocket(ws + path);
	if (!socket) return 0;
	const closed = new Promise((resolve) => socket.once('close', resolve));
	let sent = 0;
	const count = 20 + rng.int(60);
	for (let i = 0; i < count && socket.readyState === WebSocket.OPEN; i++) {
		socket.send(hostileFrame(rng, valid));
		sent++;
		if (i % 16 === 15) await sleep(1);
	}
	await Promise.race([closed, sleep(200)]);
	socket.terminate();
	return sent;
}

/** Bytes after a valid upgrade that are not WebSocket frames (unmasked, random opcodes). */
function rawGarbage(relay: RunningRelay, roomId: string, rng: Rng): Promise<void> {
	const { port } = new URL(relay.base);
	return new Promise((resolve) => {
		const socket = connect(Number(port), '127.0.0.1', () => {
			socket.write(
				`GET /sync/${roomId} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
					'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'
			);
			socket.write(rng.bytes(2000));
		});
		socket.on('error', () => {});
		socket.on('data', () => {});
		socket.on('close', () => resolve());
		setTimeout(() => socket.destroy(), 1000);
	});
}

describe('relay under hostile input', () => {
	it('stays up, keeps serving others and keeps stored data intact', async () => {
		const relay = await startRelay({
			config: { maxFrameBytes: MAX_FRAME, rateMsgsPerSec: 100_000, rateBytesPerSec: 1 << 30 }
		});
		const rng = prng(SEED);

		// The attacked room: valid history first.
		const target = new Conversation();
		const owner = await Member.create(target);
		const o = await RelayClient.join(relay.base, target, { doc: owner.doc });
		const valid: Uint8Array[] = [];
		for (const batch of [['a'], ['b', 'c'], ['d'], ['e', 'f', 'g']]) {
			const { update } = await owner.write(batch);
			valid.push(update);
			o.sendUpdate(update);
		}
		await o.acked(owner.client, 7);
		await o.close();

		// A well-behaved pair in another room, writing throughout.
		const calm = new Conversation();
		const writer = await Member.create(calm);
		const reader = await Member.create(calm);
		const w = await RelayClient.join(relay.base, calm, { doc: writer.doc });
		const r = await RelayClient.join(relay.base, calm, { doc: reader.doc });
		let fuzzing = true;
		const calmTraffic = (async () => {
			while (fuzzing) {
				w.sendUpdate((await writer.write([`calm ${writer.doc.size}`])).update);
				await sleep(25);
			}
		})();

		let sent = 0;
		const received = () => relay.relay.metrics.framesIn;
		await Promise.all(
			Array.from({ length: LOOPS }, async (_, loop) => {
				const loopRng = prng(SEED + loop + 1);
				while (received() < FRAMES) {
					const n = await session(relay, target, loopRng, valid);
					sent += n;
				}
			})
		);
		for (let i = 0; i < 5; i++) await rawGarbage(relay, target.roomId, rng);
		fuzzing = false;
		await calmTraffic;
		// Frames the relay read (the calm pair's few hundred among them), and hostile frames sent.
		expect(received()).toBeGreaterThanOrEqual(FRAMES);
		expect(sent).toBeGreaterThanOrEqual(FRAMES * 0.8);

		// Still up, and the calm room saw every write, live.
		expect((await fetch(`${relay.base}/healthz`)).status).toBe(200);
		await w.acked(writer.client, writer.doc.size, 20_000);
		await r.until(() => reader.doc.size === writer.doc.size, 20_000, 'calm room in sync');
		expect(writer.doc.size).toBeGreaterThan(5);
		expect(ids(reader.doc)).toEqual(ids(writer.doc));
		expect(w.refusals()).toEqual([]);
		expect([...r.docRefusals, ...w.docRefusals]).toEqual([]);

		// The attacked room holds exactly what was written validly.
		const fresh = new ConversationDoc(target.roomId, 1);
		const f = await RelayClient.join(relay.base, target, { doc: fresh });
		await f.pull();
		expect(ids(fresh)).toEqual(ids(owner.doc));
		expect(f.docRefusals).toEqual([]);

		const metrics = await metricsText(relay.base);
		for (const reason of [
			'malformed-frame',
			'frame-too-large',
			'unsupported-message',
			'doc-rules:malformed-update'
		]) {
			expect([reason, refusalCount(metrics, reason) > 0]).toEqual([reason, true]);
		}
		// Hostile input is refused, never an internal failure.
		expect(relay.logs.filter((l) => l.level === 'error')).toEqual([]);
	});
});
