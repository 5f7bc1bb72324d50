import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { newRoomId, newSecretKey } from '../crypto';
import { bucketSize } from '../crypto/padding';
import { sealEnvelope } from '../envelope';
import { fetchRelayLimits, frameBytesFor, maxPlaintextFor } from './limits';
import { writeSyncUpdate } from './messages';
import { docFor, newDevice } from './test-support';

describe('the relay frame limit, as a client knows it', () => {
	it('bounds the frame of any one envelope from above, within 64 bytes', async () => {
		const device = await newDevice();
		const room = newRoomId();
		const key = newSecretKey();
		const cdoc = docFor(room, device);
		await fc.assert(
			fc.asyncProperty(
				fc.oneof(fc.integer({ min: 0, max: 70_000 }), fc.integer({ min: 0, max: 300_000 })),
				fc.integer({ min: 0, max: 2 ** 32 - 1 }),
				async (length, epoch) => {
					const updates: Uint8Array[] = [];
					const take = (update: Uint8Array) => updates.push(update);
					cdoc.doc.on('update', take);
					const entry = await sealEnvelope({
						clock: cdoc.nextClock(),
						roomId: room,
						epoch,
						key,
						signer: device.signer,
						plaintext: new Uint8Array(length).fill(7)
					});
					cdoc.insertLocal([entry]);
					cdoc.doc.off('update', take);
					const frame = writeSyncUpdate(updates[0] as Uint8Array).length;
					expect(frame).toBeLessThanOrEqual(frameBytesFor(length));
					expect(frame).toBeGreaterThan(frameBytesFor(length) - 64);
				}
			),
			{ numRuns: 60 }
		);
	});

	it('finds the largest plaintext whose frame fits, for any limit', () => {
		fc.assert(
			fc.property(fc.integer({ min: 1024, max: 4 * 1024 * 1024 }), (limit) => {
				const most = maxPlaintextFor(limit);
				expect(most).toBeGreaterThan(0);
				expect(frameBytesFor(most)).toBeLessThanOrEqual(limit);
				// One byte more needs the next bucket, whose frame does not fit.
				expect(bucketSize(most + 1)).toBeGreaterThan(bucketSize(most));
				expect(frameBytesFor(most + 1)).toBeGreaterThan(limit);
			})
		);
		expect(maxPlaintextFor(400)).toBe(0);
		// The default limit (2 MiB) takes the largest envelope there is (1 MiB).
		expect(maxPlaintextFor(2 * 1024 * 1024)).toBeGreaterThan(1024 * 1024);
	});

	it('reads the limit from the relay, and says nothing for an answer it cannot use', async () => {
		const answer = (status: number, body: unknown) => async () =>
			new Response(JSON.stringify(body), { status });
		const seen: string[] = [];
		const ok = async (url: string | URL | Request) => {
			seen.push(String(url));
			return new Response(JSON.stringify({ maxFrameBytes: 4096, roomQuotaBytes: 1 }));
		};
		expect(await fetchRelayLimits('https://relay.example/', ok as typeof fetch)).toEqual({
			maxFrameBytes: 4096
		});
		expect(seen).toEqual(['https://relay.example/sync/limits']);
		for (const bad of [
			answer(404, {}),
			answer(200, { maxFrameBytes: 'lots' }),
			answer(200, { maxFrameBytes: -1 }),
			answer(200, null),
			async () => {
				throw new TypeError('offline');
			}
		]) {
			expect(await fetchRelayLimits('http://relay.example', bad as typeof fetch)).toBeNull();
		}
	});
});
