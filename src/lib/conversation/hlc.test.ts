import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
	compareHlc,
	DEFAULT_MAX_FORWARD_SKEW_MS,
	HLC_MAX_COUNTER,
	HLC_MAX_WALL,
	HlcClock,
	hlcToString,
	InvalidHlcError,
	isHlc,
	parseHlc,
	type Hlc
} from './hlc';

/** A time source the test moves by hand. */
function manualTime(start: number) {
	let now = start;
	return {
		read: () => now,
		set(value: number) {
			now = value;
		}
	};
}

const T0 = 1_732_000_000_000;
const DAY = 24 * 60 * 60 * 1000;

const hlcArb = fc.record({
	wall: fc.integer({ min: 0, max: HLC_MAX_WALL }),
	counter: fc.integer({ min: 0, max: HLC_MAX_COUNTER })
});

describe('HlcClock.now', () => {
	it('follows physical time when it moves forward', () => {
		const time = manualTime(T0);
		const clock = new HlcClock(time.read);
		expect(clock.now()).toEqual({ wall: T0, counter: 0 });
		time.set(T0 + 5);
		expect(clock.now()).toEqual({ wall: T0 + 5, counter: 0 });
	});

	it('counts up within one millisecond', () => {
		const clock = new HlcClock(() => T0);
		expect(clock.now()).toEqual({ wall: T0, counter: 0 });
		expect(clock.now()).toEqual({ wall: T0, counter: 1 });
		expect(clock.now()).toEqual({ wall: T0, counter: 2 });
	});

	it('never goes backwards when the physical clock does', () => {
		const time = manualTime(T0);
		const clock = new HlcClock(time.read);
		clock.now();
		time.set(T0 - 60_000); // NTP step back by a minute
		expect(clock.now()).toEqual({ wall: T0, counter: 1 });
		expect(clock.now()).toEqual({ wall: T0, counter: 2 });
		time.set(T0 + 1); // physical time catches up: back to counter 0
		expect(clock.now()).toEqual({ wall: T0 + 1, counter: 0 });
	});

	it('borrows a millisecond when the counter would overflow', () => {
		const clock = new HlcClock(() => T0);
		clock.observe({ wall: T0, counter: HLC_MAX_COUNTER - 1 });
		expect(clock.now()).toEqual({ wall: T0, counter: HLC_MAX_COUNTER });
		expect(clock.now()).toEqual({ wall: T0 + 1, counter: 0 });
		expect(hlcToString({ wall: T0 + 1, counter: 0 })).toHaveLength(20);
	});

	it('treats a broken time source as a stopped clock instead of throwing', () => {
		const time = manualTime(T0);
		const clock = new HlcClock(time.read);
		const first = clock.now();
		time.set(Number.NaN);
		const second = clock.now();
		time.set(-5);
		const third = clock.now();
		expect(compareHlc(second, first)).toBe(1);
		expect(compareHlc(third, second)).toBe(1);
	});

	it('floors fractional milliseconds (performance.now-style sources)', () => {
		const clock = new HlcClock(() => T0 + 0.7);
		expect(clock.now()).toEqual({ wall: T0, counter: 0 });
	});

	it('is strictly monotonic under any sequence of time jumps and observations', () => {
		const step = fc.oneof(
			fc.record({ kind: fc.constant('now' as const) }),
			fc.record({ kind: fc.constant('jump' as const), by: fc.integer({ min: -DAY, max: DAY }) }),
			fc.record({
				kind: fc.constant('observe' as const),
				offset: fc.integer({ min: -3 * DAY, max: 3 * DAY }),
				counter: fc.integer({ min: 0, max: HLC_MAX_COUNTER })
			})
		);
		fc.assert(
			fc.property(fc.array(step, { maxLength: 80 }), (steps) => {
				const time = manualTime(T0);
				const clock = new HlcClock(time.read);
				let floor: Hlc | null = null; // greatest issued or (bounded) observed
				for (const s of steps) {
					if (s.kind === 'jump') time.set(Math.max(0, time.read() + s.by));
					else if (s.kind === 'observe') {
						const remote = { wall: Math.max(0, time.read() + s.offset), counter: s.counter };
						clock.observe(remote);
						const cap = time.read() + DEFAULT_MAX_FORWARD_SKEW_MS;
						const bounded = remote.wall > cap ? { wall: cap, counter: 0 } : remote;
						if (floor === null || compareHlc(bounded, floor) > 0) floor = bounded;
					} else {
						const issued = clock.now();
						if (floor !== null) expect(compareHlc(issued, floor)).toBe(1);
						// Never more than the skew bound (plus borrowed ms) ahead of physical time.
						expect(issued.wall).toBeLessThanOrEqual(Math.max(time.read(), floor?.wall ?? 0) + 1);
						floor = issued;
					}
				}
			})
		);
	});
});

describe('HlcClock.observe', () => {
	it('makes the next timestamp greater than a remote one', () => {
		const clock = new HlcClock(() => T0);
		clock.observe({ wall: T0 + 5_000, counter: 7 });
		expect(clock.now()).toEqual({ wall: T0 + 5_000, counter: 8 });
	});

	it('ignores a remote timestamp that is behind', () => {
		const clock = new HlcClock(() => T0);
		clock.now();
		clock.observe({ wall: T0 - 10, counter: 99 });
		expect(clock.now()).toEqual({ wall: T0, counter: 1 });
	});

	it('lets a far-future remote pull the clock at most the skew bound ahead', () => {
		const clock = new HlcClock(() => T0);
		const far = { wall: T0 + 365 * DAY, counter: 3 };
		clock.observe(far);
		const next = clock.now();
		expect(next).toEqual({ wall: T0 + DAY, counter: 1 });
		// The remote op itself keeps its timestamp and still sorts after ours.
		expect(compareHlc(far, next)).toBe(1);
		// Repeated far-future observations do not ratchet the clock further.
		clock.observe(far);
		clock.observe({ wall: T0 + 2 * DAY, counter: 0 });
		expect(clock.now()).toEqual({ wall: T0 + DAY, counter: 2 });
	});

	it('accepts a custom skew bound', () => {
		const clock = new HlcClock(() => T0, { maxForwardSkewMs: 1_000 });
		clock.observe({ wall: T0 + 60_000, counter: 0 });
		expect(clock.now()).toEqual({ wall: T0 + 1_000, counter: 1 });
		expect(() => new HlcClock(() => T0, { maxForwardSkewMs: -1 })).toThrow(RangeError);
	});

	it('refuses a timestamp that is not an HLC', () => {
		const clock = new HlcClock(() => T0);
		for (const bad of [
			{ wall: -1, counter: 0 },
			{ wall: 1.5, counter: 0 },
			{ wall: HLC_MAX_WALL + 1, counter: 0 },
			{ wall: 0, counter: HLC_MAX_COUNTER + 1 },
			{ wall: Number.NaN, counter: 0 }
		]) {
			expect(() => clock.observe(bad)).toThrow(
				expect.objectContaining({ name: 'InvalidHlcError' })
			);
		}
	});
});

describe('compareHlc', () => {
	it('orders by wall, then counter', () => {
		expect(compareHlc({ wall: 1, counter: 9 }, { wall: 2, counter: 0 })).toBe(-1);
		expect(compareHlc({ wall: 2, counter: 0 }, { wall: 1, counter: 9 })).toBe(1);
		expect(compareHlc({ wall: 2, counter: 1 }, { wall: 2, counter: 2 })).toBe(-1);
		expect(compareHlc({ wall: 2, counter: 2 }, { wall: 2, counter: 2 })).toBe(0);
	});
});

describe('hlcToString / parseHlc', () => {
	it('is fixed width', () => {
		expect(hlcToString({ wall: 0, counter: 0 })).toBe('0000000000000.000000');
		expect(hlcToString({ wall: T0, counter: 42 })).toBe('1732000000000.000042');
		expect(hlcToString({ wall: HLC_MAX_WALL, counter: HLC_MAX_COUNTER })).toBe(
			'9999999999999.999999'
		);
	});

	it('round-trips', () => {
		fc.assert(
			fc.property(hlcArb, (hlc) => {
				expect(parseHlc(hlcToString(hlc))).toEqual(hlc);
			})
		);
	});

	it('sorts lexically exactly as compareHlc orders', () => {
		fc.assert(
			fc.property(hlcArb, hlcArb, (a, b) => {
				const sa = hlcToString(a);
				const sb = hlcToString(b);
				const lexical = sa < sb ? -1 : sa > sb ? 1 : 0;
				expect(lexical).toBe(compareHlc(a, b));
			})
		);
	});

	it.each([
		'',
		'garbage',
		'1.2',
		'000000000001.000000', // 12-digit wall
		'00000000000001.000000', // 14-digit wall
		'0000000000001.00000', // 5-digit counter
		'0000000000001.00000a',
		'0000000000001-000000',
		' 0000000000001.000000',
		'0000000000001.000000\n',
		'-000000000001.000000',
		'+000000000001.000000',
		'０000000000001.000000' // full-width digit
	])('parseHlc(%j) throws InvalidHlcError', (text) => {
		expect(() => parseHlc(text)).toThrow(InvalidHlcError);
		try {
			parseHlc(text);
		} catch (error) {
			expect((error as Error).name).toBe('InvalidHlcError');
		}
	});

	it('parseHlc refuses non-strings without a TypeError', () => {
		expect(() => parseHlc(42 as unknown as string)).toThrow(InvalidHlcError);
	});

	it('hlcToString refuses values that do not fit the format', () => {
		expect(() => hlcToString({ wall: HLC_MAX_WALL + 1, counter: 0 })).toThrow(InvalidHlcError);
		expect(() => hlcToString({ wall: 0, counter: -1 })).toThrow(InvalidHlcError);
		expect(() => hlcToString({ wall: 0.5, counter: 0 })).toThrow(InvalidHlcError);
	});

	it('isHlc checks shape and range', () => {
		expect(isHlc({ wall: T0, counter: 0 })).toBe(true);
		expect(isHlc(null)).toBe(false);
		expect(isHlc([T0, 0])).toBe(false);
		expect(isHlc({ wall: '1', counter: 0 })).toBe(false);
	});
});
