/**
 * Hybrid Logical Clock (Kulkarni et al., 2014): the timestamp every
 * conversation operation carries, and the first key by which messages are
 * ordered.
 *
 * An Hlc is a pair (wall, counter): `wall` is milliseconds since the Unix
 * epoch, `counter` breaks ties within one millisecond. Pairs compare by wall,
 * then counter. The clock keeps `last`, the greatest Hlc it has issued or
 * accepted from `observe`, and follows these rules:
 *
 *   now():      p = physical time (ms, floored, clamped to [0, HLC_MAX_WALL])
 *               if p > last.wall  then last = (p, 0)
 *               else               last = tick(last)
 *               return last
 *   tick(h):    (h.wall, h.counter + 1), or (h.wall + 1, 0) when the counter
 *               is already HLC_MAX_COUNTER: the clock borrows one millisecond
 *               from the future rather than widen the counter, so strings
 *               stay fixed-width and order is never lost.
 *   observe(r): last = max(last, min(r, (p + maxForwardSkewMs, 0)))
 *
 * So a physical clock that goes backwards never makes the HLC go backwards:
 * the wall stays where it was and the counter climbs until physical time
 * catches up.
 *
 * Forward-skew bound. A remote timestamp is merged only up to
 * `physical + maxForwardSkewMs` (one day by default). Without the bound a
 * single device with a wrong clock (or a malicious member) could drag every
 * replica's clock years ahead, permanently: every later message would carry
 * that nonsense time and the 13-digit wall could even be exhausted. The price
 * is that an operation stamped more than a day ahead is not dominated by our
 * next one: it keeps its own (far-future) Hlc and is still ordered by it, but
 * a reply we write now may sort before it. That is the right trade: the bad
 * clock only misplaces its own operations.
 *
 * String form: 13-digit zero-padded wall, '.', 6-digit zero-padded counter
 * (`1732000000000.000042`, 20 chars). Fixed width makes the
 * lexical order of strings equal the order of Hlcs, so they can be used as
 * sort keys in storage.
 */

/** A hybrid logical timestamp. Plain data: safe to structured-clone and JSON-encode. */
export interface Hlc {
	/** Milliseconds since the Unix epoch, an integer in [0, HLC_MAX_WALL]. */
	wall: number;
	/** Tie-breaker within one millisecond, an integer in [0, HLC_MAX_COUNTER]. */
	counter: number;
}

/** Largest wall that fits 13 decimal digits (year 2286). */
export const HLC_MAX_WALL = 9_999_999_999_999;
/** Largest counter that fits 6 decimal digits. */
export const HLC_MAX_COUNTER = 999_999;
/** Default bound on how far a remote timestamp may pull the local clock ahead. */
export const DEFAULT_MAX_FORWARD_SKEW_MS = 24 * 60 * 60 * 1000;

/**
 * An Hlc that is out of range, or a string that is not an Hlc. Callers compare
 * `error.name`, not `instanceof`, so the check survives bundling twice.
 */
export class InvalidHlcError extends Error {
	static readonly NAME = 'InvalidHlcError';
	override name = InvalidHlcError.NAME;
}

export function isHlc(value: unknown): value is Hlc {
	if (typeof value !== 'object' || value === null) return false;
	const { wall, counter } = value as Record<string, unknown>;
	return (
		Number.isInteger(wall) &&
		(wall as number) >= 0 &&
		(wall as number) <= HLC_MAX_WALL &&
		Number.isInteger(counter) &&
		(counter as number) >= 0 &&
		(counter as number) <= HLC_MAX_COUNTER
	);
}

function assertHlc(value: Hlc, what: string): void {
	if (!isHlc(value)) {
		throw new InvalidHlcError(
			`${what} is not a valid HLC: wall must be an integer in [0, ${HLC_MAX_WALL}] and counter an integer in [0, ${HLC_MAX_COUNTER}]`
		);
	}
}

/** Total order on Hlcs: by wall, then counter. Returns -1, 0 or 1. */
export function compareHlc(a: Hlc, b: Hlc): -1 | 0 | 1 {
	if (a.wall !== b.wall) return a.wall < b.wall ? -1 : 1;
	if (a.counter !== b.counter) return a.counter < b.counter ? -1 : 1;
	return 0;
}

/** Fixed-width, lexically sortable form: `WWWWWWWWWWWWW.CCCCCC`. */
export function hlcToString(hlc: Hlc): string {
	assertHlc(hlc, 'hlcToString input');
	return `${String(hlc.wall).padStart(13, '0')}.${String(hlc.counter).padStart(6, '0')}`;
}

const HLC_STRING = /^(\d{13})\.(\d{6})$/;

/** Inverse of hlcToString. Anything else (other widths, signs, spaces) throws InvalidHlcError. */
export function parseHlc(text: string): Hlc {
	const match = typeof text === 'string' ? HLC_STRING.exec(text) : null;
	if (!match) {
		throw new InvalidHlcError('not an HLC string: expected 13 digits, a dot and 6 digits');
	}
	// Both groups are all digits of bounded width, so Number() is exact and in range.
	return { wall: Number(match[1]), counter: Number(match[2]) };
}

function tick(hlc: Hlc): Hlc {
	if (hlc.counter < HLC_MAX_COUNTER) return { wall: hlc.wall, counter: hlc.counter + 1 };
	if (hlc.wall >= HLC_MAX_WALL) {
		// Only reachable with a physical clock set past the year 2286.
		throw new InvalidHlcError('the clock has run out of timestamps (wall and counter at maximum)');
	}
	return { wall: hlc.wall + 1, counter: 0 };
}

export interface HlcClockOptions {
	/** How far ahead of physical time `observe` may move the clock. Default: one day. */
	maxForwardSkewMs?: number;
}

/**
 * One clock per device (or per tab that writes). Not persisted by itself: on
 * start, observe the latest Hlc this device wrote so a clock that went back
 * across a restart still issues increasing timestamps (within the skew bound).
 */
export class HlcClock {
	readonly #physical: () => number;
	readonly #maxForwardSkewMs: number;
	/** A floor, not an issued timestamp: the first now() is always above it. */
	#last: Hlc = { wall: 0, counter: 0 };

	constructor(now: () => number = Date.now, options: HlcClockOptions = {}) {
		const skew = options.maxForwardSkewMs ?? DEFAULT_MAX_FORWARD_SKEW_MS;
		if (!Number.isFinite(skew) || skew < 0) {
			throw new RangeError('maxForwardSkewMs must be a finite, non-negative number');
		}
		this.#physical = now;
		this.#maxForwardSkewMs = Math.floor(skew);
	}

	/** The greatest Hlc issued or (within the skew bound) observed so far. */
	get last(): Hlc {
		return { ...this.#last };
	}

	/** Timestamp for a local event. Strictly increasing across calls. */
	now(): Hlc {
		const physical = this.#readPhysical();
		this.#last = physical > this.#last.wall ? { wall: physical, counter: 0 } : tick(this.#last);
		return { ...this.#last };
	}

	/**
	 * Merge a timestamp received from another device, so the next `now()` is
	 * greater than it — unless it is more than `maxForwardSkewMs` ahead of our
	 * physical clock, in which case the clock only advances to that bound
	 * (see the module header).
	 */
	observe(remote: Hlc): void {
		assertHlc(remote, 'observed timestamp');
		const cap = Math.min(HLC_MAX_WALL, this.#readPhysical() + this.#maxForwardSkewMs);
		const bounded: Hlc = remote.wall > cap ? { wall: cap, counter: 0 } : remote;
		if (compareHlc(bounded, this.#last) > 0) {
			this.#last = { wall: bounded.wall, counter: bounded.counter };
		}
	}

	#readPhysical(): number {
		const raw = this.#physical();
		// A broken time source (NaN, negative) counts as "the clock is behind":
		// the counter carries order until it recovers. Never throw from a clock.
		if (!Number.isFinite(raw) || raw < 0) return 0;
		return Math.min(HLC_MAX_WALL, Math.floor(raw));
	}
}
