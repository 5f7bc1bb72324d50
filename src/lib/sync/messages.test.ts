import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as encoding from 'lib0/encoding';
import { backoffDelay } from './backoff';
import { RelayFrameError } from './errors';
import {
	MESSAGE_NOTIFY,
	MESSAGE_STORED,
	readAwarenessUpdate,
	readRelayMessage,
	readStateVector,
	writePermissionDenied,
	writeRefused,
	writeStateVector,
	writeAwareness,
	writeNotify,
	writeStored,
	writeSyncStep1,
	writeSyncStep2,
	writeSyncUpdate
} from './messages';

function bytes(...parts: Array<(e: encoding.Encoder) => void>): Uint8Array {
	const encoder = encoding.createEncoder();
	for (const part of parts) part(encoder);
	return encoding.toUint8Array(encoder);
}

function awarenessUpdate(entries: Array<[number, number, string]>): Uint8Array {
	return bytes((e) => {
		encoding.writeVarUint(e, entries.length);
		for (const [client, clock, json] of entries) {
			encoding.writeVarUint(e, client);
			encoding.writeVarUint(e, clock);
			encoding.writeVarString(e, json);
		}
	});
}

describe('relay messages', () => {
	it('round-trip', () => {
		const sv = writeStateVector(new Map([[5, 3]]));
		expect(readRelayMessage(writeSyncStep1(sv))).toMatchObject({
			type: 'sync-step1',
			state: new Map([[5, 3]])
		});
		expect(readRelayMessage(writeSyncStep2(new Uint8Array([0, 0])))).toMatchObject({
			type: 'sync-step2'
		});
		expect(readRelayMessage(writeSyncUpdate(new Uint8Array([0, 0])))).toMatchObject({
			type: 'sync-update'
		});
		expect(readRelayMessage(writePermissionDenied('bad-room'))).toEqual({
			type: 'permission-denied',
			reason: 'bad-room'
		});
		expect(readRelayMessage(writeStored(sv))).toMatchObject({
			type: 'stored',
			state: new Map([[5, 3]])
		});
		expect(readRelayMessage(writeRefused('rate-limited', 'slow down'))).toEqual({
			type: 'refused',
			reason: 'rate-limited',
			message: 'slow down'
		});
	});

	it("writes payload frames byte for byte as lib0's encoder does, at their exact size", () => {
		const writers: Array<[(payload: Uint8Array) => Uint8Array, number[]]> = [
			[writeSyncStep1, [0, 0]],
			[writeSyncStep2, [0, 1]],
			[writeSyncUpdate, [0, 2]],
			[writeAwareness, [1]],
			[writeNotify, [MESSAGE_NOTIFY]],
			[writeStored, [MESSAGE_STORED]]
		];
		// Lengths around the var-uint steps (127/128, 16383/16384) and beyond.
		const payload = fc.oneof(
			fc.uint8Array({ maxLength: 300 }),
			fc
				.constantFrom(127, 128, 16_383, 16_384, 70_000)
				.map((n) => new Uint8Array(n).map((_, i) => i * 7))
		);
		fc.assert(
			fc.property(payload, fc.nat({ max: writers.length - 1 }), (update, which) => {
				const [write, head] = writers[which]!;
				const expected = bytes(
					...head.map((n) => (e: encoding.Encoder) => encoding.writeVarUint(e, n)),
					(e) => encoding.writeVarUint8Array(e, update)
				);
				const written = write(update);
				expect(written).toEqual(expected);
				expect(written.buffer.byteLength).toBe(expected.length);
			})
		);
	});

	it('state vectors use the Yjs layout', () => {
		const state = new Map([
			[1, 2],
			[4294967295, 7]
		]);
		expect(readStateVector(writeStateVector(state))).toEqual(state);
	});

	it.each([
		['empty', new Uint8Array()],
		['unknown type', new Uint8Array([77])],
		['unknown sync step', new Uint8Array([0, 5, 0])],
		['truncated payload', new Uint8Array([0, 2, 10, 1])],
		['trailing bytes', new Uint8Array([0, 2, 1, 0, 9])],
		['bad state vector', new Uint8Array([100, 2, 3, 1])],
		['unknown auth message', new Uint8Array([2, 1, 0])]
	])('refuse a frame: %s', (_name, frame) => {
		expect(() => readRelayMessage(frame)).toThrow(
			expect.objectContaining({ name: RelayFrameError.NAME })
		);
	});

	it('accept only { e: base64url } or null awareness states', () => {
		expect(
			readAwarenessUpdate(
				awarenessUpdate([
					[1, 1, '{"e":"AAEC"}'],
					[2, 3, 'null']
				])
			)
		).toEqual([
			{ client: 1, clock: 1, state: new Uint8Array([0, 1, 2]) },
			{ client: 2, clock: 3, state: null }
		]);
		// The relay's keep-alive: an update naming nobody.
		expect(readAwarenessUpdate(new Uint8Array([0]))).toEqual([]);
		for (const json of ['{}', '{"e":1}', '{"e":"AA","x":1}', '["e"]', 'not json', '{"e":"A+"}']) {
			expect(() => readAwarenessUpdate(awarenessUpdate([[1, 1, json]]))).toThrow(
				expect.objectContaining({ name: RelayFrameError.NAME })
			);
		}
	});
});

describe('backoffDelay', () => {
	it('doubles from 0.5 s to a 30 s cap, with half of each step random', () => {
		expect(backoffDelay(0, undefined, 0)).toBe(250);
		expect(backoffDelay(0, undefined, 0.999999)).toBe(500);
		expect(backoffDelay(3, undefined, 1)).toBe(4000);
		expect(backoffDelay(20, undefined, 0)).toBe(15_000);
		expect(backoffDelay(1000, undefined, 1)).toBe(30_000);
	});
});
