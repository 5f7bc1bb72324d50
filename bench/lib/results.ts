/**
 * bench/results/latest.json is shared by every benchmark section: a run
 * replaces what it measured and keeps the rest, so `--only=relay` does not
 * lose the last full run's app figures (and the reverse).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const RESULTS = fileURLToPath(new URL('../results', import.meta.url));
export const LATEST = join(RESULTS, 'latest.json');

export type Results = Record<string, unknown>;

/** Reads latest.json (or nothing), lets `update` return the new content, writes it. */
export async function updateResults(update: (previous: Results) => Results): Promise<string> {
	let previous: Results = {};
	try {
		const parsed: unknown = JSON.parse(await readFile(LATEST, 'utf8'));
		if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
			previous = parsed as Results;
	} catch {
		// No previous results (or unreadable ones): start afresh.
	}
	await mkdir(RESULTS, { recursive: true });
	await writeFile(LATEST, `${JSON.stringify(update(previous), null, '\t')}\n`);
	return LATEST;
}

/** Keeps every key of `previous`, replacing those in `sections`. */
export function mergeResults(sections: Results): Promise<string> {
	return updateResults((previous) => ({ ...previous, ...sections }));
}
