/**
 * What a conversation view renders of a (possibly huge) message list: a
 * window of it, cut into rows — day headings and messages, with the group
 * edges that let consecutive messages of one author sit together.
 *
 * The window is kept as indices into the message list. `end: null` means
 * "the tail": the window follows new messages. `start: null` means "the last
 * `initial` messages". A window never holds more than `max` messages; when
 * it grows past that, messages are dropped from the end away from the one
 * the user is moving towards.
 */
import type { MessageView } from '../app/types';
import { dayKey } from './format';

export interface WindowLimits {
	/** Messages shown when a conversation opens. */
	initial: number;
	/** Messages added when the user scrolls near an edge of the window. */
	chunk: number;
	/** Most messages rendered at once. */
	max: number;
}

export const DEFAULT_LIMITS: WindowLimits = { initial: 80, chunk: 60, max: 400 };

export interface WindowState {
	start: number | null;
	end: number | null;
}

export const TAIL: WindowState = { start: null, end: null };

export interface Bounds {
	start: number;
	end: number;
}

export function bounds(total: number, w: WindowState, lim = DEFAULT_LIMITS): Bounds {
	const end = w.end === null ? total : Math.max(0, Math.min(w.end, total));
	const wanted = w.start ?? total - lim.initial;
	const start = Math.max(0, end - lim.max, Math.min(end, wanted));
	return { start, end };
}

/** Extend the window towards older messages, dropping the newest past `max`. */
export function earlier(total: number, w: WindowState, lim = DEFAULT_LIMITS): WindowState {
	const b = bounds(total, w, lim);
	if (b.start === 0) return w;
	const start = Math.max(0, b.start - lim.chunk);
	const end = b.end - start > lim.max ? start + lim.max : w.end;
	return { start, end };
}

/** Extend the window towards newer messages; it follows the tail again once it reaches it. */
export function later(total: number, w: WindowState, lim = DEFAULT_LIMITS): WindowState {
	if (w.end === null) return w;
	const b = bounds(total, w, lim);
	const end = Math.min(total, b.end + lim.chunk);
	const start = Math.max(b.start, end - lim.max);
	return { start, end: end >= total ? null : end };
}

/**
 * A window that shows the message at `index` with room around it (a jump to
 * a search result or a quoted message); it follows the tail when it reaches it.
 */
export function around(total: number, index: number, lim = DEFAULT_LIMITS): WindowState {
	const at = Math.max(0, Math.min(index, total - 1));
	const start = Math.max(0, at - lim.chunk);
	const end = Math.min(total, at + lim.chunk + 1);
	return { start, end: end >= total ? null : end };
}

export interface DayRow {
	kind: 'day';
	key: string;
	/** Any time within the day, for its label. */
	time: number;
}

export interface MessageRow {
	kind: 'message';
	key: string;
	message: MessageView;
	/** First of a run of one author's messages: shows the author's name. */
	groupStart: boolean;
	/** Last of the run: the bubble's tail, a little more space after. */
	groupEnd: boolean;
}

/** What buildRows needs of a system line. */
export interface SystemLineLike {
	key: string;
	/** Wall-clock ms. */
	time: number;
	text: string;
}

/** A line about the conversation itself ("Ada made Bob an admin"). */
export interface SystemRow {
	kind: 'system';
	key: string;
	text: string;
}

export type Row = DayRow | MessageRow | SystemRow;

/** Messages further apart than this start a new visual group. */
export const GROUP_GAP_MS = 5 * 60_000;

function author(m: MessageView): string {
	return m.mine ? '\u0000me' : m.authorName;
}

function sameGroup(a: MessageView | undefined, b: MessageView | undefined): boolean {
	return (
		a !== undefined &&
		b !== undefined &&
		author(a) === author(b) &&
		Math.abs(b.time - a.time) <= GROUP_GAP_MS &&
		dayKey(a.time) === dayKey(b.time)
	);
}

/**
 * Rows for messages[start, end). A day heading goes before the first message
 * of each day, and always before the window's first message, so the top of
 * what is rendered has its date. A heading's key is its message's key: unique
 * even if clocks made two runs of one day.
 */
export function buildRows(
	messages: readonly MessageView[],
	start: number,
	end: number,
	/** Lines about the conversation, oldest first; each goes before the first message after it. */
	lines: readonly SystemLineLike[] = []
): Row[] {
	const rows: Row[] = [];
	let day: string | null = null;
	/** Pushes a day heading when `time` is on another day than the last heading. */
	const heading = (key: string, time: number): boolean => {
		const next = dayKey(time);
		if (next === day) return false;
		day = next;
		rows.push({ kind: 'day', key: `day:${key}`, time });
		return true;
	};
	// Lines before the window's first message are above it (unless it starts at the top).
	let line = 0;
	const first = messages[start];
	if (start > 0 && first !== undefined) {
		while (line < lines.length && (lines[line] as SystemLineLike).time < first.time) line++;
	}
	const pushLine = (l: SystemLineLike) => {
		heading(l.key, l.time);
		rows.push({ kind: 'system', key: l.key, text: l.text });
	};
	let prev: MessageView | undefined;
	for (let i = start; i < end; i++) {
		const m = messages[i];
		if (m === undefined) continue;
		let interrupted = false;
		while (line < lines.length && (lines[line] as SystemLineLike).time < m.time) {
			pushLine(lines[line++] as SystemLineLike);
			interrupted = true;
		}
		const newDay = heading(m.key, m.time);
		const next = i + 1 < end ? messages[i + 1] : undefined;
		const lineBeforeNext =
			next !== undefined && line < lines.length && (lines[line] as SystemLineLike).time < next.time;
		rows.push({
			kind: 'message',
			key: m.key,
			message: m,
			groupStart: newDay || interrupted || !sameGroup(prev, m),
			groupEnd: lineBeforeNext || !sameGroup(m, next)
		});
		prev = m;
	}
	// Lines after the last message show once the window reaches the end.
	if (end >= messages.length) {
		while (line < lines.length) pushLine(lines[line++] as SystemLineLike);
	}
	return rows;
}
