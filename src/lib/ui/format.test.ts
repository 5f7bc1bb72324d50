import { describe, expect, it } from 'vitest';
import {
	badgeText,
	checkName,
	dayKey,
	dayLabel,
	daysAgo,
	errorText,
	isoTime,
	isSameDay,
	listTimeLabel,
	timeLabel,
	unreadLabel
} from './format';

// Local-time constructors: the tests mean the same thing in every time zone.
const at = (y: number, mo: number, d: number, h = 12, mi = 0) =>
	new Date(y, mo - 1, d, h, mi).getTime();
const NOW = at(2026, 11, 28, 15, 30);

describe('days', () => {
	it('keys a day by its local date', () => {
		expect(dayKey(at(2026, 1, 5, 0, 0))).toBe('2026-01-05');
		expect(dayKey(at(2026, 12, 31, 23, 59))).toBe('2026-12-31');
	});

	it('counts calendar days, not 24-hour spans', () => {
		expect(daysAgo(at(2026, 11, 28, 0, 1), NOW)).toBe(0);
		expect(daysAgo(at(2026, 11, 27, 23, 59), at(2026, 11, 28, 0, 1))).toBe(1);
		expect(daysAgo(at(2026, 11, 21), NOW)).toBe(7);
		expect(isSameDay(at(2026, 11, 28, 0, 0), at(2026, 11, 28, 23, 59))).toBe(true);
		expect(isSameDay(at(2026, 11, 28, 23, 59), at(2026, 11, 29, 0, 0))).toBe(false);
	});

	it('survives a daylight-saving change (rounding a 23 or 25 hour day)', () => {
		// Whatever the zone, a week of local midnights is 7 days apart.
		expect(daysAgo(at(2026, 3, 22, 0, 0), at(2026, 3, 29, 0, 0))).toBe(7);
		expect(daysAgo(at(2026, 10, 18, 0, 0), at(2026, 10, 25, 23, 0))).toBe(7);
	});
});

describe('dayLabel', () => {
	it('says Today and Yesterday', () => {
		expect(dayLabel(at(2026, 11, 28, 0, 0), NOW, 'en-GB')).toBe('Today');
		expect(dayLabel(at(2026, 11, 27, 23, 59), NOW, 'en-GB')).toBe('Yesterday');
	});

	it('names the weekday within the last week', () => {
		expect(dayLabel(at(2026, 11, 24), NOW, 'en-GB')).toBe('Tuesday');
		expect(dayLabel(at(2026, 11, 22), NOW, 'en-GB')).toBe('Sunday');
	});

	it('gives the date further back, with the year when it is another year', () => {
		expect(dayLabel(at(2026, 11, 21), NOW, 'en-GB')).toBe('Saturday 21 November');
		expect(dayLabel(at(2025, 12, 31), NOW, 'en-GB')).toBe('31 December 2025');
		expect(dayLabel(at(2025, 12, 31), NOW, 'en-US')).toBe('December 31, 2025');
	});

	it('does not call a future day Today', () => {
		expect(dayLabel(at(2026, 11, 29), NOW, 'en-GB')).toBe('Sunday 29 November');
	});
});

describe('times', () => {
	it('formats hours and minutes in the locale', () => {
		expect(timeLabel(at(2026, 11, 28, 9, 5), 'en-GB')).toBe('09:05');
		expect(timeLabel(at(2026, 11, 28, 21, 5), 'en-GB')).toBe('21:05');
		expect(timeLabel(at(2026, 11, 28, 21, 5), 'en-US')).toMatch(/^09:05\sPM$/);
	});

	it('gives ISO 8601 for <time datetime>', () => {
		expect(isoTime(Date.UTC(2026, 10, 28, 14, 3, 9, 7))).toBe('2026-11-28T14:03:09.007Z');
	});

	it('shortens list times by age', () => {
		expect(listTimeLabel(at(2026, 11, 28, 8, 15), NOW, 'en-GB')).toBe('08:15');
		expect(listTimeLabel(at(2026, 11, 27, 8, 15), NOW, 'en-GB')).toBe('Yesterday');
		expect(listTimeLabel(at(2026, 11, 25), NOW, 'en-GB')).toBe('Wed');
		expect(listTimeLabel(at(2026, 3, 2), NOW, 'en-GB')).toBe('2 Mar');
		expect(listTimeLabel(at(2024, 3, 2), NOW, 'en-GB')).toBe('2 Mar 2024');
		// A clock a little ahead of ours still reads as a time, not a date.
		expect(listTimeLabel(at(2026, 11, 29, 0, 5), at(2026, 11, 28, 23, 59), 'en-GB')).toBe('00:05');
	});
});

describe('counts and errors', () => {
	it('words unread counts', () => {
		expect(unreadLabel(1)).toBe('1 unread message');
		expect(unreadLabel(3)).toBe('3 unread messages');
		expect(badgeText(7)).toBe('7');
		expect(badgeText(100)).toBe('99+');
	});

	it('takes the message of a thrown error', () => {
		const tooLong = Object.assign(new Error('This message is too long.'), {
			name: 'MessageTooLongError'
		});
		expect(errorText(tooLong)).toBe('This message is too long.');
		expect(errorText('offline')).toBe('offline');
		expect(errorText(undefined)).toMatch(/went wrong/);
		expect(errorText(new Error(''))).toMatch(/went wrong/);
	});
});

describe('checkName', () => {
	it('trims and accepts 1 to 64 characters', () => {
		expect(checkName('  Ada  ', 'display name')).toEqual({ ok: true, value: 'Ada' });
		expect(checkName('x'.repeat(64), 'display name').ok).toBe(true);
	});

	it('refuses an empty or whitespace-only name', () => {
		expect(checkName('   ', 'display name')).toEqual({ ok: false, error: 'Enter a display name.' });
	});

	it('refuses more than 64 characters and says how many', () => {
		const r = checkName('x'.repeat(65), 'display name');
		expect(r.ok).toBe(false);
		if (!r.ok) expect(r.error).toContain('65');
	});

	it('counts an emoji as one character', () => {
		expect(checkName('🙂'.repeat(64), 'display name').ok).toBe(true);
	});
});
