/**
 * HTTP Range for /media/<id> (RFC 9110 §14). Only single ranges: a media
 * element asks for one at a time, and a multi-range request is answered with
 * the whole file (200), which the RFC allows.
 */

export type RangeResult =
	{ kind: 'full' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

/** Parse a Range header against a resource of `size` bytes. `end` is inclusive. */
export function parseRange(header: string | null, size: number): RangeResult {
	if (header === null) return { kind: 'full' };
	const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
	if (!match) return { kind: 'full' }; // unknown unit or several ranges: ignore the header
	const [, first = '', last = ''] = match;
	if (first === '' && last === '') return { kind: 'full' };
	if (first === '') {
		// Suffix: the last N bytes.
		const n = Number(last);
		if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
		return { kind: 'partial', start: Math.max(0, size - n), end: size - 1 };
	}
	const start = Number(first);
	if (start >= size) return { kind: 'unsatisfiable' };
	const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
	if (end < start) return { kind: 'full' }; // invalid range: ignore it
	return { kind: 'partial', start, end };
}

/** The chunks covering bytes [start, end] (inclusive), and where the range starts in the first one. */
export function chunkSpan(
	start: number,
	end: number,
	chunkSize: number
): { first: number; last: number; offset: number } {
	return {
		first: Math.floor(start / chunkSize),
		last: Math.floor(end / chunkSize),
		offset: start % chunkSize
	};
}
