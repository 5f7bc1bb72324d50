/**
 * Labels the UI shows for times and counts. Pure functions: the clock (`now`)
 * and the locale are parameters, so tests pin them and components pass the
 * user's (`undefined` = the browser's locale).
 *
 * Days are calendar days in the local time zone, compared by their local
 * date, never by subtracting 24 h (a DST day has 23 or 25 hours).
 */

type Locale = string | undefined;

const DAY_MS = 86_400_000;

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Intl formatters are costly to build and a long list formats hundreds of times. */
function formatter(locale: Locale, options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
	const id = `${locale ?? ''}|${JSON.stringify(options)}`;
	let found = formatters.get(id);
	if (!found) {
		found = new Intl.DateTimeFormat(locale, options);
		formatters.set(id, found);
	}
	return found;
}

/** Local midnight of the day holding `ms`. */
export function startOfDay(ms: number): number {
	const d = new Date(ms);
	return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
}

/** A stable key for the local calendar day of `ms`, e.g. "2026-11-28". */
export function dayKey(ms: number): string {
	const d = new Date(ms);
	const mm = String(d.getMonth() + 1).padStart(2, '0');
	const dd = String(d.getDate()).padStart(2, '0');
	return `${d.getFullYear()}-${mm}-${dd}`;
}

export function isSameDay(a: number, b: number): boolean {
	return dayKey(a) === dayKey(b);
}

/** Whole calendar days from the day of `ms` to the day of `now` (0 = same day, 1 = yesterday; negative = future). */
export function daysAgo(ms: number, now: number): number {
	// Rounding absorbs the hour a DST change adds to or takes from a day.
	return Math.round((startOfDay(now) - startOfDay(ms)) / DAY_MS);
}

/**
 * The label of a day separator in a conversation: "Today", "Yesterday", the
 * weekday within the last week, otherwise the date (with the year when it is
 * not this year's).
 */
export function dayLabel(ms: number, now: number, locale?: Locale): string {
	const days = daysAgo(ms, now);
	if (days === 0) return 'Today';
	if (days === 1) return 'Yesterday';
	if (days > 1 && days < 7) return formatter(locale, { weekday: 'long' }).format(ms);
	const sameYear = new Date(ms).getFullYear() === new Date(now).getFullYear();
	return formatter(
		locale,
		sameYear
			? { weekday: 'long', day: 'numeric', month: 'long' }
			: { day: 'numeric', month: 'long', year: 'numeric' }
	).format(ms);
}

/** Hours and minutes in the user's locale ("14:05", or "2:05 PM" where the locale says so). */
export function timeLabel(ms: number, locale?: Locale): string {
	return formatter(locale, { hour: '2-digit', minute: '2-digit' }).format(ms);
}

/** The full date and time, for a `title` tooltip. */
export function fullTimeLabel(ms: number, locale?: Locale): string {
	return formatter(locale, { dateStyle: 'full', timeStyle: 'short' }).format(ms);
}

/** ISO 8601 for `<time datetime>`. */
export function isoTime(ms: number): string {
	return new Date(ms).toISOString();
}

/**
 * The short time a conversation list shows beside a conversation: the time
 * today, "Yesterday", the short weekday within a week, else a short date.
 */
export function listTimeLabel(ms: number, now: number, locale?: Locale): string {
	const days = daysAgo(ms, now);
	if (days <= 0) return timeLabel(ms, locale);
	if (days === 1) return 'Yesterday';
	if (days < 7) return formatter(locale, { weekday: 'short' }).format(ms);
	const sameYear = new Date(ms).getFullYear() === new Date(now).getFullYear();
	return formatter(
		locale,
		sameYear
			? { day: 'numeric', month: 'short' }
			: { day: 'numeric', month: 'short', year: 'numeric' }
	).format(ms);
}

/** "1 unread message", "3 unread messages". */
export function unreadLabel(count: number): string {
	return count === 1 ? '1 unread message' : `${count} unread messages`;
}

/** What an unread badge shows: the count, capped so the badge keeps its size. */
export function badgeText(count: number): string {
	return count > 99 ? '99+' : String(count);
}

/** The message of a thrown value, for an alert the user reads. */
export function errorText(error: unknown): string {
	if (error instanceof Error && error.message) return error.message;
	if (typeof error === 'string' && error) return error;
	return 'Something went wrong. Please try again.';
}

export type NameCheck = { ok: true; value: string } | { ok: false; error: string };

/**
 * A display or conversation name: trimmed, 1 to `max` characters (counted as
 * code points, so an emoji is one).
 */
export function checkName(raw: string, what: string, max = 64): NameCheck {
	const value = raw.trim();
	if (value.length === 0) return { ok: false, error: `Enter a ${what}.` };
	const length = [...value].length;
	if (length > max) {
		return {
			ok: false,
			error: `The ${what} is too long: ${length} characters, at most ${max}.`
		};
	}
	return { ok: true, value };
}
