import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createSigner, newRoomId, newSecretKey, newSigningSeed, type RoomId } from '../crypto';
import { openEnvelope } from '../envelope';
import {
	MAX_NOTIFICATION_BYTES,
	MAX_PREVIEW_LENGTH,
	NotificationError,
	notificationRoom,
	notifyKeyFor,
	openNotification,
	previewOf,
	sealNotification
} from './notification';

async function setup() {
	const roomId = newRoomId();
	const epochKey = newSecretKey();
	const key = notifyKeyFor(epochKey, roomId);
	const signer = await createSigner(newSigningSeed());
	return { roomId, epochKey, key, signer };
}

const body = { c: 'conv-1', t: 'Family', n: 'Ada', p: 'dinner at eight?' };

describe('notification envelopes', () => {
	it('open with the room’s notification key, to exactly what was sealed', async () => {
		const { roomId, key, signer } = await setup();
		await fc.assert(
			fc.asyncProperty(
				fc.string({ maxLength: 64 }),
				fc.string({ maxLength: 100 }),
				fc.string({ maxLength: 400 }),
				async (n, t, text) => {
					const p = previewOf(text);
					const bytes = await sealNotification({
						roomId,
						epoch: 0,
						key,
						signer,
						body: { c: 'c1', t, n, p }
					});
					expect(bytes.length).toBeLessThanOrEqual(MAX_NOTIFICATION_BYTES);
					const opened = await openNotification(bytes, (room, epoch) =>
						room === roomId && epoch === 0 ? key : undefined
					);
					expect(opened).toEqual({ v: 1, c: 'c1', t, n, p, roomId });
				}
			),
			{ numRuns: 30 }
		);
	});

	it('name their room in the clear, nothing else', async () => {
		const { roomId, key, signer } = await setup();
		const bytes = await sealNotification({ roomId, epoch: 0, key, signer, body });
		expect(notificationRoom(bytes)).toBe(roomId);
		const text = new TextDecoder().decode(bytes);
		for (const secret of ['Ada', 'Family', 'dinner']) expect(text).not.toContain(secret);
	});

	it('are refused without the key, under another room’s key, or tampered', async () => {
		const { roomId, key, signer } = await setup();
		const bytes = await sealNotification({ roomId, epoch: 0, key, signer, body });
		await expect(openNotification(bytes, () => undefined)).rejects.toThrow(NotificationError);
		const other = notifyKeyFor(newSecretKey(), roomId);
		await expect(openNotification(bytes, () => other)).rejects.toThrow(NotificationError);
		const flipped = bytes.slice();
		flipped[flipped.length - 70]! ^= 1;
		await expect(openNotification(flipped, () => key)).rejects.toThrow(NotificationError);
		await expect(openNotification(bytes.subarray(0, 50), () => key)).rejects.toThrow(
			NotificationError
		);
		await expect(openNotification(new Uint8Array(5000), () => key)).rejects.toThrow(
			NotificationError
		);
	});

	it('cannot pass for a message: the epoch key does not open one', async () => {
		const { roomId, epochKey, key, signer } = await setup();
		const bytes = await sealNotification({ roomId, epoch: 0, key, signer, body });
		await expect(
			openEnvelope(bytes, { roomId: roomId as RoomId, keyForEpoch: () => epochKey })
		).rejects.toThrow();
	});

	it('make previews one line, cut with an ellipsis', () => {
		expect(previewOf('  hello\n\n  world  ')).toBe('hello world');
		const long = previewOf('x'.repeat(500));
		expect(Array.from(long)).toHaveLength(MAX_PREVIEW_LENGTH);
		expect(long.endsWith('…')).toBe(true);
		expect(Array.from(previewOf('😀'.repeat(300)))).toHaveLength(MAX_PREVIEW_LENGTH);
	});
});
