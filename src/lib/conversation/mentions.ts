/**
 * Mentions: `@Name` in a message's text, where Name is a member's display
 * name. The sender's app finds them when the message is sent and lists the
 * users in the op (`mentions`, see operations.ts), so a reader never has to
 * guess from names, which may change or repeat: the list says who was meant.
 * The text keeps `@Name` as typed, so old readers still show who was named.
 *
 * A mention starts at an `@` that begins the text or follows a character that
 * is not a letter, digit or `_` (so `ada@example.org` names nobody), and ends
 * where the name ends, before the end of the text or a character that is not
 * a letter, digit or `_` (so `@Adam` does not name Ada). Names compare
 * without regard to case. Where two names fit (`@Ann Lee` for "Ann" and "Ann
 * Lee") the longer wins.
 */

/** A member who can be mentioned. */
export interface Mentionable {
	readonly user: string;
	readonly name: string;
}

/** A stretch of message text: plain, or a mention (`@Name`) of `user`. */
export interface TextSegment {
	readonly text: string;
	readonly user?: string;
}

/** Longest name that can be mentioned; longer display names cannot be. */
const MAX_NAME = 64;
const WORD = /[\p{L}\p{N}_]/u;

function isWordChar(char: string | undefined): boolean {
	return char !== undefined && WORD.test(char);
}

/** Character just before `index` (a whole code point). */
function charBefore(text: string, index: number): string | undefined {
	if (index === 0) return undefined;
	const low = text.charCodeAt(index - 1);
	if (low >= 0xdc00 && low <= 0xdfff && index >= 2) return text.slice(index - 2, index);
	return text[index - 1];
}

function charAt(text: string, index: number): string | undefined {
	if (index >= text.length) return undefined;
	return String.fromCodePoint(text.codePointAt(index) as number);
}

interface Found {
	start: number;
	end: number;
	user: string;
}

/** Candidates longest name first, names folded to lower case once. */
function prepare(members: readonly Mentionable[]): { user: string; name: string }[] {
	return members
		.filter((m) => m.name.trim() !== '' && m.name.length <= MAX_NAME)
		.map((m) => ({ user: m.user, name: m.name.toLowerCase() }))
		.sort((a, b) => b.name.length - a.name.length);
}

function scan(text: string, members: readonly Mentionable[]): Found[] {
	const found: Found[] = [];
	if (!text.includes('@') || members.length === 0) return found;
	const candidates = prepare(members);
	let at = text.indexOf('@');
	while (at !== -1) {
		let next = at + 1;
		if (!isWordChar(charBefore(text, at))) {
			for (const candidate of candidates) {
				const end = at + 1 + candidate.name.length;
				if (end > text.length) continue;
				if (text.slice(at + 1, end).toLowerCase() !== candidate.name) continue;
				if (isWordChar(charAt(text, end))) continue;
				found.push({ start: at, end, user: candidate.user });
				next = end;
				break;
			}
		}
		at = text.indexOf('@', next);
	}
	return found;
}

/** The users `text` mentions, each once, in order of first mention. */
export function findMentions(text: string, members: readonly Mentionable[]): string[] {
	const users = new Set<string>();
	for (const found of scan(text, members)) users.add(found.user);
	return [...users];
}

/**
 * `text` cut into plain stretches and mentions of `members` (for showing a
 * received message, pass only the users its op mentions: a name typed
 * without meaning a member is not highlighted).
 */
export function mentionSegments(text: string, members: readonly Mentionable[]): TextSegment[] {
	const found = scan(text, members);
	if (found.length === 0) return [{ text }];
	const segments: TextSegment[] = [];
	let from = 0;
	for (const { start, end, user } of found) {
		if (start > from) segments.push({ text: text.slice(from, start) });
		segments.push({ text: text.slice(start, end), user });
		from = end;
	}
	if (from < text.length) segments.push({ text: text.slice(from) });
	return segments;
}

/** A mention being typed: the `@` is at `start`, `query` is what follows it up to the caret. */
export interface MentionQuery {
	readonly start: number;
	readonly query: string;
}

/**
 * The mention being typed at `caret`, if any: an `@` that may start a
 * mention, followed by at most MAX_NAME characters on the same line.
 */
export function mentionQueryAt(text: string, caret: number): MentionQuery | null {
	const from = Math.max(0, caret - MAX_NAME - 1);
	const at = text.lastIndexOf('@', caret - 1);
	if (at < from || at === -1) return null;
	if (isWordChar(charBefore(text, at))) return null;
	const query = text.slice(at + 1, caret);
	if (/[\n\r@]/.test(query) || query.startsWith(' ')) return null;
	return { start: at, query };
}

/**
 * Members whose name matches `query`: names that start with it first, then
 * names with a later word that starts with it; alphabetical within each.
 */
export function mentionCandidates<T extends Mentionable>(
	query: string,
	members: readonly T[],
	limit = 8
): T[] {
	const q = query.toLowerCase();
	const starts: T[] = [];
	const words: T[] = [];
	for (const member of members) {
		if (member.name.trim() === '' || member.name.length > MAX_NAME) continue;
		const name = member.name.toLowerCase();
		if (name.startsWith(q)) starts.push(member);
		else if (name.split(/\s+/).some((word) => word.startsWith(q))) words.push(member);
	}
	const byName = (a: T, b: T) => a.name.localeCompare(b.name);
	return [...starts.sort(byName), ...words.sort(byName)].slice(0, limit);
}
