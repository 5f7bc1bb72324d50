import { describe, expect, it } from 'vitest';
import { newRoomId, newSecretKey } from '../crypto';
import { P2PFrameError } from './errors';
import { MAX_MEET_TAGS, meetTag, readMeet, writePeers, writeRegister } from './meet';

const PEER = '12D3KooWNuo72E3SqDmBfU2CWezJpDxUSRsqvSDgMz2uaeAe4V9Q';

describe('/kith/meet frames', () => {
	it('round-trips register and peers', () => {
		const tags = [meetTag(newSecretKey(), newRoomId()), meetTag(newSecretKey(), newRoomId())];
		expect(readMeet(writeRegister(tags))).toEqual({ type: 'register', tags });
		expect(readMeet(writeRegister([]))).toEqual({ type: 'register', tags: [] });
		expect(readMeet(writePeers([PEER]))).toEqual({ type: 'peers', peers: [PEER] });
	});

	it('derives a tag only holders of the key can compute, per room and per key', () => {
		const key = newSecretKey();
		const room = newRoomId();
		expect(meetTag(key, room)).toEqual(meetTag(key, room));
		expect(meetTag(key, room)).not.toEqual(meetTag(key, newRoomId()));
		expect(meetTag(key, room)).not.toEqual(meetTag(newSecretKey(), room));
		expect(meetTag(key, room)).toHaveLength(32);
	});

	it('refuses malformed frames', () => {
		const bad = [
			new Uint8Array([]),
			new Uint8Array([7]),
			new Uint8Array([1, 1, 1, 2, 3]),
			new Uint8Array([1, 0, 0]),
			new Uint8Array([2, 1, 3, 0x41, 0x42, 0x43]),
			Uint8Array.from([...writePeers([PEER]), 0]),
			Uint8Array.from([1, ...[0x81, 0x40]])
		];
		for (const body of bad) expect(() => readMeet(body), String(body)).toThrow(P2PFrameError);
		expect(() => writeRegister(new Array(MAX_MEET_TAGS + 1).fill(new Uint8Array(32)))).toThrow(
			RangeError
		);
	});
});
