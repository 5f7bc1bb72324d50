/**
 * Where does the time go? Runs one benchmark scenario under Chromium's CPU
 * profiler (DevTools Protocol) and prints the functions with the most self
 * time and the most inclusive time, each with the source module it comes
 * from. The raw profile is written to bench/results/<scenario>.cpuprofile
 * (open it in Chromium DevTools → Performance).
 *
 *   npx tsx bench/profile.ts burst            sendMany of 5,000 on an empty conversation
 *   npx tsx bench/profile.ts persistence      DocPersistence: 5,000 map.set transactions, flush()
 *   npx tsx bench/profile.ts append [size]    100 single sends at `size` messages (default 20,000)
 *   npx tsx bench/profile.ts coldopen [size]  cold open from the snapshot (default 20,000)
 */
import { readdir, readFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIG_CONVERSATION } from './browser/api';
import { startBenchBrowser, type BenchPage } from './lib/browser';

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

interface CallFrame {
	functionName: string;
	url: string;
	lineNumber: number;
	columnNumber: number;
}

interface ProfileNode {
	id: number;
	callFrame: CallFrame;
	children?: number[];
}

interface CpuProfile {
	nodes: ProfileNode[];
	startTime: number;
	endTime: number;
	samples?: number[];
	timeDeltas?: number[];
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Source module of each generated position, from the bundle's source map (VLQ mappings). */
class SourceLookup {
	readonly #lines: { column: number; source: number }[][] = [];
	readonly #sources: string[];

	constructor(map: { sources: string[]; mappings: string }) {
		this.#sources = map.sources.map((source) =>
			source.replace(/^(\.\.\/)+/, '').replace(/^node_modules\//, '')
		);
		let source = 0;
		for (const line of map.mappings.split(';')) {
			const segments: { column: number; source: number }[] = [];
			let column = 0;
			for (const segment of line.split(',')) {
				if (!segment) continue;
				const values = decodeVlq(segment);
				column += values[0] ?? 0;
				if (values.length >= 4) {
					source += values[1] ?? 0;
					segments.push({ column, source });
				}
			}
			this.#lines.push(segments);
		}
	}

	moduleOf(frame: CallFrame): string {
		if (!frame.url.includes('/assets/')) return frame.url ? frame.url : '(native)';
		const segments = this.#lines[frame.lineNumber] ?? [];
		let found: number | null = null;
		for (const segment of segments) {
			if (segment.column > frame.columnNumber) break;
			found = segment.source;
		}
		found ??= segments[0]?.source ?? null;
		return found === null ? '?' : (this.#sources[found] ?? '?');
	}
}

function decodeVlq(segment: string): number[] {
	const values: number[] = [];
	let value = 0;
	let shift = 0;
	for (const char of segment) {
		const digit = BASE64.indexOf(char);
		value += (digit & 31) << shift;
		if (digit & 32) {
			shift += 5;
		} else {
			values.push(value & 1 ? -(value >>> 1) : value >>> 1);
			value = 0;
			shift = 0;
		}
	}
	return values;
}

async function sourceLookup(): Promise<SourceLookup> {
	const dir = here('./.out/assets');
	const file = (await readdir(dir)).find((name) => name.endsWith('.js.map'));
	if (!file) throw new Error('the bench bundle has no source map');
	return new SourceLookup(JSON.parse(await readFile(join(dir, file), 'utf8')));
}

function summarise(profile: CpuProfile, sources: SourceLookup): void {
	const byId = new Map(profile.nodes.map((node) => [node.id, node]));
	const parent = new Map<number, number>();
	for (const node of profile.nodes)
		for (const child of node.children ?? []) parent.set(child, node.id);
	const selfMs = new Map<number, number>();
	const samples = profile.samples ?? [];
	const deltas = profile.timeDeltas ?? [];
	samples.forEach((id, i) => selfMs.set(id, (selfMs.get(id) ?? 0) + (deltas[i + 1] ?? 0) / 1000));
	const key = (node: ProfileNode): string =>
		`${node.callFrame.functionName || '(anonymous)'}  [${sources.moduleOf(node.callFrame)}]`;
	const self = new Map<string, number>();
	const inclusive = new Map<string, number>();
	let total = 0;
	for (const [id, ms] of selfMs) {
		const node = byId.get(id);
		if (!node) continue;
		total += ms;
		self.set(key(node), (self.get(key(node)) ?? 0) + ms);
		const seen = new Set<string>();
		for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
			const k = key(byId.get(at) as ProfileNode);
			if (seen.has(k)) continue;
			seen.add(k);
			inclusive.set(k, (inclusive.get(k) ?? 0) + ms);
		}
	}
	const print = (title: string, map: Map<string, number>, count: number): void => {
		process.stdout.write(`\n${title} (of ${total.toFixed(0)} ms sampled)\n`);
		for (const [name, ms] of [...map].sort((a, b) => b[1] - a[1]).slice(0, count)) {
			process.stdout.write(
				`${ms.toFixed(0).padStart(8)} ms  ${((ms / total) * 100).toFixed(1).padStart(5)}%  ${name}\n`
			);
		}
	};
	print('Self time', self, 25);
	const skip = /^\((root|program|idle|garbage collector)\)|^\(anonymous\)\s+\[\?\]/;
	print('Inclusive time', new Map([...inclusive].filter(([name]) => !skip.test(name))), 30);
}

async function profiled(page: BenchPage, name: string, run: () => Promise<unknown>): Promise<void> {
	const cdp = await page.cdp();
	await cdp.send('Profiler.enable');
	await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
	await cdp.send('Profiler.start');
	const started = performance.now();
	const result = await run();
	const wall = performance.now() - started;
	const { profile } = (await cdp.send('Profiler.stop')) as { profile: CpuProfile };
	process.stdout.write(
		`\n${name}: ${wall.toFixed(0)} ms wall\n${JSON.stringify(result).slice(0, 600)}\n`
	);
	const dir = here('./results');
	await mkdir(dir, { recursive: true });
	await writeFile(join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
	summarise(profile, await sourceLookup());
}

async function main(): Promise<void> {
	const [scenario, sizeArg] = process.argv.slice(2);
	const size = sizeArg ? Number(sizeArg) : 20_000;
	if (!Number.isInteger(size) || size < 1) throw new Error(`bad size ${sizeArg}`);
	if (!['burst', 'persistence', 'append', 'coldopen'].includes(scenario ?? '')) {
		throw new Error('usage: npx tsx bench/profile.ts burst|persistence|append|coldopen [size]');
	}
	const browser = await startBenchBrowser();
	const { page } = browser;
	try {
		await page.fresh();
		if (scenario === 'burst') {
			await page.call('burstKith', 5_000); // warm-up
			await profiled(page, 'burst', () => page.call('burstKith', 5_000));
		} else if (scenario === 'persistence') {
			await page.call('burstDocPersistence', 5_000); // warm-up
			await profiled(page, 'persistence', () => page.call('burstDocPersistence', 5_000));
		} else if (scenario === 'append') {
			await page.call('appendGrow', BIG_CONVERSATION, size, 1_000);
			await page.call('appendPrepare', BIG_CONVERSATION);
			await page.call('appendRep', BIG_CONVERSATION, 50); // warm-up
			await profiled(page, 'append', () => page.call('appendRep', BIG_CONVERSATION, 100));
		} else {
			await page.call('appendGrow', BIG_CONVERSATION, size, 1_000);
			await page.call('snapshotSave');
			await page.fresh();
			await profiled(page, 'coldopen', () => page.call('kithColdOpen', false, true));
		}
	} finally {
		await browser.close();
	}
}

main().catch((error: unknown) => {
	process.stderr.write(
		`profile: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`
	);
	process.exitCode = 1;
});
