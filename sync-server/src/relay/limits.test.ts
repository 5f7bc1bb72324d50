/**
 * Limits: frame size, rate per connection (frames and bytes), bytes per room.
 * Each is refused with its named reason and counted in /metrics.
 */
import * as encoding from 'lib0/encoding';
import { afterEach, describe, expect, it } from 'vitest';
import {
	cleanUp,
	Conversation,
	Member,
	metricsText,
	refusalCount,
	RelayClient,
	startRelay
} from './test-support.ts';
import { MESSAGE_AWARENESS } from './wire.ts';

afterEach(cleanUp);

function awareness(size: number): Uint8Array {
	return encoding.encode((e) => {
		encoding.writeVarUint(e, MESSAGE_AWARENESS);
		encoding.writeVarUint8Array(e, new Uint8Array(size));
	});
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('relay limits', () => {
	it("refuses a frame over KITH_MAX_FRAME_BYTES with 'frame-too-large' and closes 1009", async () => {
		const relay = await startRelay({ config: { maxFrameBytes: 4096 } });
		const conversation = new Conversation();
		const ok = await RelayClient.join(relay.base, conversation);
		ok.send(awareness(4000)); // within the limit: fine
		const big = await RelayClient.join(relay.base, conversation);
		await big.next((f) => f.kind === 'sync-step1');
		big.send(awareness(4100));
		expect((await big.closed).code).toBe(1009);
		expect(big.refusals()).toEqual(['frame-too-large']);
		// Far over the limit, the WebSocket layer cuts the connection itself (still 1009).
		const huge = await RelayClient.join(relay.base, conversation);
		huge.send(awareness(64 * 1024));
		expect((await huge.closed).code).toBe(1009);
		await ok.next((f) => f.kind === 'query-awareness');
		expect(ok.ws.readyState).toBe(ok.ws.OPEN);
		expect(refusalCount(await metricsText(relay.base), 'frame-too-large')).toBe(2);
	});

	it("drops a flood with 'rate-limited' (frames and bytes), keeps the connection, recovers", async () => {
		const relay = await startRelay({ config: { rateMsgsPerSec: 20, rateBytesPerSec: 8192 } });
		const conversation = new Conversation();
		const alice = await Member.create(conversation);
		const flooder = await RelayClient.join(relay.base, conversation, { doc: alice.doc });
		const listener = await RelayClient.join(relay.base, conversation);
		await listener.next((f) => f.kind === 'sync-step1');
		for (let i = 0; i < 200; i++) flooder.send(awareness(1));
		await flooder.next((f) => f.kind === 'refused' && f.reason === 'rate-limited');
		await sleep(200);
		// The burst (40 frames) went through, give or take a refill; the rest did not.
		const through = listener.frames.filter((f) => f.kind === 'awareness').length;
		expect(through).toBeGreaterThanOrEqual(35);
		expect(through).toBeLessThan(80);
		// About one notice per second, however many frames were dropped.
		const notices = flooder.refusals().length;
		expect(new Set(flooder.refusals())).toEqual(new Set(['rate-limited']));
		expect(notices).toBeLessThanOrEqual(2);
		expect(refusalCount(await metricsText(relay.base), 'rate-limited')).toBeGreaterThan(140);

		// After a pause it works again: an update is stored and acknowledged.
		await sleep(300);
		const { update } = await alice.write(['after the flood']);
		flooder.sendUpdate(update);
		await flooder.acked(alice.client, 1);

		// Bytes: 8 KiB/s with a 16 KiB burst; frames of 3 KiB run out after a few.
		await sleep(1000); // frame tokens for the next 12 frames, and a second since the notice
		const before = refusalCount(await metricsText(relay.base), 'rate-limited');
		for (let i = 0; i < 12; i++) flooder.send(awareness(3000));
		await flooder.until(() => flooder.refusals().length > notices, 5000, 'another notice');
		expect(refusalCount(await metricsText(relay.base), 'rate-limited') - before).toBeGreaterThan(4);
		expect(flooder.ws.readyState).toBe(flooder.ws.OPEN);
	});

	it("refuses updates beyond KITH_ROOM_QUOTA_BYTES with 'room-quota', storing none of them", async () => {
		const relay = await startRelay({ config: { roomQuotaBytes: 2500 } });
		const conversation = new Conversation();
		const alice = await Member.create(conversation);
		const a = await RelayClient.join(relay.base, conversation);
		let stored = 0;
		let refused = 0;
		for (let i = 0; i < 10 && refused < 2; i++) {
			const { update } = await alice.write([`message ${i}`]);
			const seen = a.frames.length;
			a.sendUpdate(update);
			const answer = await a.next((f) => f.kind === 'stored' || f.kind === 'refused', seen);
			if (answer.kind === 'stored') stored++;
			else {
				expect(answer.kind === 'refused' && answer.reason).toBe('room-quota');
				refused++;
			}
		}
		expect(stored).toBeGreaterThan(2);
		expect(refused).toBe(2);
		// A fresh client gets exactly what was acknowledged.
		const reader = await Member.create(conversation);
		const r = await RelayClient.join(relay.base, conversation, { doc: reader.doc });
		await r.pull();
		expect(reader.doc.size).toBe(stored);
		const metrics = await metricsText(relay.base);
		expect(refusalCount(metrics, 'room-quota')).toBe(2);
		expect(Number(/^kith_storage_bytes (\d+)$/m.exec(metrics)![1])).toBeLessThanOrEqual(2500);
	});
});
