/**
 * Benchmark: message search (src/lib/search) over a 100k-message history.
 *
 * - Index build: `MessageSearch.update` over 100,000 chat-like messages
 *   (bench/browser/texts.ts) from an empty index, as the app does on the
 *   first search after unlocking. Median of `reps` builds.
 * - Query latency: `MessageSearch.search` for queries a user types — one or
 *   two words, whole or as prefixes, a typo — p50 and p95 over `queries`
 *   queries. Target: p95 < 50 ms.
 * - Baseline, in the same process: a linear scan that lower-cases every text
 *   and tests each query word with `includes` (what search costs with no
 *   index at all).
 *
 * Runs in Node: the index is plain JavaScript (FlexSearch), the same V8 as
 * Chromium's; no storage is involved (the index is kept in memory only).
 */
import { messageText } from '../browser/texts';
import { fmt, ratio, type Row } from '../lib/report';
import { median, percentile } from '../lib/stats';
import {
	MessageSearch,
	type SearchableMessage,
	type SearchSource
} from '../../src/lib/search/message-search';

export interface SearchConfig {
	messages: number;
	reps: number;
	queries: number;
}

export function searchConfig(quick: boolean): SearchConfig {
	return quick
		? { messages: 20_000, reps: 2, queries: 100 }
		: { messages: 100_000, reps: 3, queries: 300 };
}

const QUERY_WORDS = ['tomorrow', 'lunch', 'coffee', 'meeting', 'photo', 'traffic', 'minutes'];

/** Deterministic queries: single words, pairs, prefixes and a typo. */
function queries(count: number): string[] {
	const out: string[] = [];
	for (let i = 0; i < count; i++) {
		const a = QUERY_WORDS[i % QUERY_WORDS.length]!;
		const b = QUERY_WORDS[(i * 3 + 1) % QUERY_WORDS.length]!;
		switch (i % 4) {
			case 0:
				out.push(a);
				break;
			case 1:
				out.push(`${a} ${b}`);
				break;
			case 2:
				out.push(a.slice(0, 4));
				break;
			default:
				out.push(`${a.slice(0, -2)}${a.at(-1)}${a.at(-2)}`); // two letters swapped
		}
	}
	return out;
}

function source(messages: readonly SearchableMessage[]): SearchSource {
	return {
		id: 'bench',
		version: 1,
		length: messages.length,
		at: (i) => messages[i]!,
		changedSince: () => 0
	};
}

export interface SearchResults {
	buildMs: number[];
	queryMs: number[];
	scanMs: number[];
	hitsMedian: number;
}

export async function runSearch(
	cfg: SearchConfig,
	log: (text: string) => void
): Promise<{ rows: Row[]; results: SearchResults }> {
	const messages: SearchableMessage[] = [];
	for (let i = 0; i < cfg.messages; i++) {
		messages.push({
			id: `m${i}`,
			author: `u${i % 5}`,
			text: messageText(i),
			deleted: false,
			time: i
		});
	}
	const buildMs: number[] = [];
	let index = new MessageSearch();
	for (let rep = 0; rep < cfg.reps; rep++) {
		index = new MessageSearch();
		const t = performance.now();
		index.update(source(messages));
		buildMs.push(performance.now() - t);
		log(`search: index of ${fmt(cfg.messages)} messages built in ${fmt(buildMs.at(-1)!)} ms`);
		await new Promise((resolve) => setImmediate(resolve));
	}
	const qs = queries(cfg.queries);
	for (const q of qs.slice(0, 20)) index.search(q); // warm-up
	const queryMs: number[] = [];
	const hits: number[] = [];
	for (const q of qs) {
		const t = performance.now();
		hits.push(index.search(q).length);
		queryMs.push(performance.now() - t);
	}
	const lower = messages.map((m) => m.text);
	const scanMs: number[] = [];
	for (const q of qs) {
		const t = performance.now();
		const words = q.toLowerCase().split(/\s+/);
		let found = 0;
		for (const text of lower) {
			const l = text.toLowerCase();
			if (words.every((w) => l.includes(w))) found++;
		}
		scanMs.push(performance.now() - t);
		if (found < 0) throw new Error('unreachable');
	}
	const p95 = percentile(queryMs, 95);
	const scanP95 = percentile(scanMs, 95);
	const rows: Row[] = [
		{
			name: `S1 Search index build, ${fmt(cfg.messages / 1000)}k messages`,
			value: `${fmt(median(buildMs))} ms`,
			note: `median of ${cfg.reps}; ${fmt((cfg.messages / median(buildMs)) * 1000)} messages/s; in memory only`
		},
		{
			name: 'S2 Search query, p95',
			value: `${fmt(p95, 1)} ms`,
			baseline: `${fmt(scanP95, 1)} ms`,
			ratio: ratio(p95 / scanP95),
			target: '< 50 ms',
			result: p95 < 50 ? 'PASS' : 'MISS',
			note: `p50 ${fmt(median(queryMs), 2)} ms over ${qs.length} queries (words, pairs, prefixes, typos), ${fmt(median(hits))} results each (median, at most 50); baseline: linear scan with includes`
		}
	];
	return { rows, results: { buildMs, queryMs, scanMs, hitsMedian: median(hits) } };
}
