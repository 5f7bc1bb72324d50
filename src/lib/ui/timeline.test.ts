import { describe, expect, it } from 'vitest';
import type { MessageView } from '../app/types';
import { around, bounds, buildRows, earlier, later, TAIL, type WindowLimits } from './timeline';

const LIM: WindowLimits = { initial: 80, chunk: 60, max: 400 };

describe('message window', () => {
	it('opens on the last `initial` messages, or all of fewer', () => {
		expect(bounds(100_000, TAIL, LIM)).toEqual({ start: 99_920, end: 100_000 });
		expect(bounds(30, TAIL, LIM)).toEqual({ start: 0, end: 30 });
		expect(bounds(0, TAIL, LIM)).toEqual({ start: 0, end: 0 });
	});

	it('follows the tail as messages arrive', () => {
		const w = earlier(1000, TAIL, LIM); // start pinned at 860
		expect(bounds(1000, w, LIM)).toEqual({ start: 860, end: 1000 });
		expect(bounds(1005, w, LIM)).toEqual({ start: 860, end: 1005 });
	});

	it('never renders more than `max`, sliding off the oldest at the tail', () => {
		const w = { start: 0, end: null };
		expect(bounds(1000, w, LIM)).toEqual({ start: 600, end: 1000 });
	});

	it('loads earlier chunks and drops the newest past `max`', () => {
		let w = TAIL;
		const total = 10_000;
		for (let i = 0; i < 20; i++) w = earlier(total, w, LIM);
		const b = bounds(total, w, LIM);
		expect(b.end - b.start).toBe(400);
		expect(b.start).toBe(total - 80 - 20 * 60);
		expect(w.end).not.toBeNull(); // no longer following the tail
	});

	it('stops at the first message', () => {
		let w = TAIL;
		for (let i = 0; i < 5; i++) w = earlier(150, w, LIM);
		expect(bounds(150, w, LIM)).toEqual({ start: 0, end: 150 });
		expect(earlier(150, w, LIM)).toBe(w);
	});

	it('loads later chunks and rejoins the tail', () => {
		let w = TAIL;
		const total = 10_000;
		for (let i = 0; i < 20; i++) w = earlier(total, w, LIM);
		const before = bounds(total, w, LIM);
		w = later(total, w, LIM);
		const after = bounds(total, w, LIM);
		expect(after.end).toBe(before.end + 60);
		expect(after.end - after.start).toBeLessThanOrEqual(400);
		for (let i = 0; i < 30 && w.end !== null; i++) w = later(total, w, LIM);
		expect(w.end).toBeNull();
		expect(bounds(total, w, LIM).end).toBe(total);
		expect(later(total, w, LIM)).toBe(w);
	});
});

const at = (d: number, h: number, mi = 0) => new Date(2026, 10, d, h, mi).getTime();
let seq = 0;
function msg(author: string, time: number, extra: Partial<MessageView> = {}): MessageView {
	seq++;
	const mine = author === 'me';
	return {
		key: `k${seq}`,
		id: `m${seq}`,
		authorName: mine ? 'Me' : author,
		mine,
		text: `text ${seq}`,
		time,
		status: mine ? 'Saved' : null,
		readBy: [],
		edited: false,
		deleted: false,
		reactions: [],
		...extra
	};
}

describe('rows', () => {
	const list = [
		msg('ann', at(26, 9, 0)),
		msg('ann', at(26, 9, 1)),
		msg('me', at(26, 9, 2)),
		msg('me', at(26, 9, 30)), // 28 min later: a new group
		msg('ann', at(27, 10, 0)), // a new day
		msg('bob', at(27, 10, 1))
	];

	it('puts a day heading before each day and before the window', () => {
		const rows = buildRows(list, 0, list.length);
		expect(rows.map((r) => (r.kind === 'message' ? r.message.authorName[0] : 'D'))).toEqual([
			'D',
			'a',
			'a',
			'M',
			'M',
			'D',
			'a',
			'b'
		]);
		const mid = buildRows(list, 1, 3);
		expect(mid[0]?.kind).toBe('day');
		expect(mid).toHaveLength(3);
	});

	it('puts system lines before the first message after them, with day headings', () => {
		const lines = [
			{ key: 's1', time: at(26, 8), text: 'Ada created this conversation' },
			{ key: 's2', time: at(26, 9, 0) + 30_000, text: 'Ada added Bob' },
			{ key: 's3', time: at(28, 12), text: 'Ada made Bob an admin' }
		];
		const show = (rows: ReturnType<typeof buildRows>) =>
			rows.map((r) =>
				r.kind === 'day' ? 'D' : r.kind === 'system' ? r.key : r.message.authorName[0]
			);
		expect(show(buildRows(list, 0, list.length, lines))).toEqual([
			'D',
			's1',
			'a',
			's2',
			'a',
			'M',
			'M',
			'D',
			'a',
			'b',
			'D',
			's3'
		]);
		// A line between two messages of one author splits their run.
		const rows = buildRows(list, 0, list.length, lines).filter((r) => r.kind === 'message');
		expect(rows.slice(0, 2).map((r) => [r.groupStart, r.groupEnd])).toEqual([
			[true, true],
			[true, true]
		]);
		// A window that starts later leaves earlier lines above it, and one that
		// stops before the end leaves the later ones below.
		expect(show(buildRows(list, 2, 4, lines))).toEqual(['D', 'M', 'M']);
	});

	it('marks the edges of each author run', () => {
		const rows = buildRows(list, 0, list.length).filter((r) => r.kind === 'message');
		expect(rows.map((r) => [r.groupStart, r.groupEnd])).toEqual([
			[true, false],
			[false, true],
			[true, true],
			[true, true],
			[true, true],
			[true, true]
		]);
	});

	it('gives every row a unique key', () => {
		const rows = buildRows(list, 0, list.length);
		expect(new Set(rows.map((r) => r.key)).size).toBe(rows.length);
	});
});

describe('around', () => {
	it('opens a window with room on both sides of a message, following the tail near it', () => {
		expect(around(10_000, 5_000)).toEqual({ start: 4_940, end: 5_061 });
		expect(bounds(10_000, around(10_000, 5_000))).toEqual({ start: 4_940, end: 5_061 });
		expect(around(10_000, 3)).toEqual({ start: 0, end: 64 });
		expect(around(10_000, 9_990)).toEqual({ start: 9_930, end: null });
		expect(bounds(100, around(100, 99))).toEqual({ start: 39, end: 100 });
	});
});
