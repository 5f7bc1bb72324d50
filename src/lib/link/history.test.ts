import { describe, expect, it } from 'vitest';
import { newRoomId, utf8Encode } from '../crypto';
import { decodeHistory, encodeHistory, HistoryError, type HistoryView } from './history';

const view = (size: number, i = 0): HistoryView => ({
	room: newRoomId(),
	stateVector: new Uint8Array([1, 200, 1, 7, i]),
	data: { r: { messages: ['x'.repeat(size)] }, m: [['device', 'user', { type: 'member.add' }]] }
});

describe('handed-over history', () => {
	it('round-trips the views, state vectors byte for byte', () => {
		const views = [view(10, 1), view(20, 2)];
		const { bytes, rooms } = encodeHistory(views);
		expect(rooms).toBe(2);
		const back = decodeHistory(bytes);
		expect([...back.keys()]).toEqual(views.map((v) => v.room));
		for (const v of views) expect(back.get(v.room)).toEqual(v);
	});

	it('leaves out the views that would take it past the limit, keeping later ones that fit', () => {
		const [a, big, b] = [view(100), view(5_000), view(100)];
		const { bytes, rooms } = encodeHistory([a, big, b], 1_000);
		expect(rooms).toBe(2);
		expect(bytes.length).toBeLessThanOrEqual(1_000);
		expect([...decodeHistory(bytes).keys()]).toEqual([a.room, b.room]);
		expect(encodeHistory([], 1_000).rooms).toBe(0);
	});

	it('refuses a malformed history with HistoryError', () => {
		const good = JSON.parse(new TextDecoder().decode(encodeHistory([view(1)]).bytes));
		const bad = [
			'not json',
			JSON.stringify({ ...good, v: 2 }),
			JSON.stringify({ v: 1, rooms: [{ ...good.rooms[0], room: 'nope' }] }),
			JSON.stringify({ v: 1, rooms: [{ ...good.rooms[0], sv: 'not base64!' }] }),
			JSON.stringify({ v: 1, rooms: [{ ...good.rooms[0], data: { r: 1 } }] }),
			JSON.stringify({ v: 1, rooms: [{ ...good.rooms[0], extra: true }] })
		];
		for (const text of bad) expect(() => decodeHistory(utf8Encode(text))).toThrow(HistoryError);
	});
});
