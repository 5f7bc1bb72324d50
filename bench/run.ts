/**
 * `npm run bench`: Kith's performance benchmarks in a real Chromium with
 * real IndexedDB on disk (a fresh, temporary browser profile).
 *
 * Builds the benchmark page (bench/browser → bench/.out) with its own Vite
 * config, serves it on a loopback port, opens it with playwright-core and
 * calls the benchmarks the page exposes (bench/browser/benches.ts). Prints a
 * table of medians, ratios against baselines measured in the same run, and
 * PASS/MISS against each target; writes every sample to
 * bench/results/latest.json. Benchmarks report, they do not gate: the exit
 * code is 0 unless the run itself fails.
 *
 * Relay sections (bench/relay/): 4, fan-out of one writer to 100 and 500
 * receivers through the Kith relay, a plain `ws` broadcaster and the stock
 * `@y/websocket-server`, each in its own process (Node clients); 5, message
 * latency browser → relay → browser between two pages of the bench browser,
 * Kith against the stock y-websocket stack.
 *
 * Options:
 *   --quick          small sizes and fewer repetitions (a smoke run, 1–2 min)
 *   --only=LIST      run only these sections (comma-separated): app (1–3), fanout (4),
 *                    latency (5), relay (= fanout,latency), media (encrypted files:
 *                    pipeline throughput, service-worker streaming memory), search (message
 *                    search: index build, query p95), p2p (peer to peer over
 *                    /kith/sync: message latency, history sync to a new peer), compaction
 *                    (stored bytes and cold open of a 100k-message conversation before and
 *                    after compaction, against a plain Yjs doc), devices (a newly linked
 *                    device to full history against copying the same rooms' bytes; the
 *                    app's first screen with and without Automerge). Default: all
 *   --no-render      skip mounting the real ConversationView on cold open
 *   --rebuild        also cold-open without a snapshot (verify, decrypt, reduce all; ~1 min more)
 *   KITH_BENCH_PAGE_PROFILE=DIR  CPU profiles of the pages: the scroll (app section) and
 *                    both latency pages, as .cpuprofile files in DIR
 *   KITH_CHROMIUM    Chromium executable (default /usr/bin/chromium)
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cpus, loadavg, totalmem } from 'node:os';
import { BIG_CONVERSATION } from './browser/api';
import { startBenchBrowser, type BenchBrowser, type BenchPage, type Result } from './lib/browser';
import { fmt, printTable, ratio, sizeLabel, type Row } from './lib/report';
import { mergeResults, updateResults, type Results } from './lib/results';
import { mean, median, percentile } from './lib/stats';
import { fanoutConfig, runFanout } from './relay/fanout';
import { latencyConfig, runLatency } from './relay/latency';
import { RELAY_ENV, serveNodeOptions } from './relay/servers';
import { mediaConfig, runMedia } from './media/media';
import { runSearch, searchConfig } from './search/search';
import { p2pConfig, runP2P } from './p2p/p2p';
import { compactionConfig, runCompaction } from './compaction/compaction';
import { devicesConfig, runDevices } from './devices/devices';
/** Cold-open repetitions that also wait for the whole doc to load in the background. */
const FULL_LOAD_REPS = 2;
/** Benchmark 6: animation frames of scripted scrolling up, and pixels per frame (a fast fling). */
const SCROLL_FRAMES = 300;
const SCROLL_STEP_PX = 1200;
const SPLIT_REPS = 2;

const SECTIONS = [
	'app',
	'fanout',
	'latency',
	'media',
	'search',
	'p2p',
	'compaction',
	'devices'
] as const;
type Section = (typeof SECTIONS)[number];

interface Config {
	quick: boolean;
	/** Sections to run. */
	only: Section[];
	render: boolean;
	/** Also cold-open without a snapshot (every signature verified, every envelope decrypted): ~1 min more. */
	rebuild: boolean;
	/** Conversation sizes for benchmark 1; the last one is also the cold-open conversation. */
	sizes: number[];
	/** Envelopes sealed per DocSession commit while growing the conversation. */
	growChunk: number;
	appendReps: number;
	appendPerRep: number;
	coldReps: number;
	burst: number;
	burstReps: number;
	envelopeCount: number;
}

function sections(argv: string[]): Section[] {
	const only = argv.filter((arg) => arg.startsWith('--only='));
	if (only.length === 0) return [...SECTIONS];
	const names = only.flatMap((arg) => arg.slice('--only='.length).split(','));
	const picked = new Set<Section>();
	for (const name of names) {
		if (name === 'relay') {
			picked.add('fanout');
			picked.add('latency');
		} else if ((SECTIONS as readonly string[]).includes(name)) picked.add(name as Section);
		else throw new Error(`unknown section ${name} (known: ${SECTIONS.join(', ')}, relay)`);
	}
	return SECTIONS.filter((section) => picked.has(section));
}

function config(argv: string[]): Config {
	const known = new Set(['--quick', '--no-render', '--rebuild']);
	for (const arg of argv) {
		if (!known.has(arg) && !arg.startsWith('--only=')) {
			throw new Error(`unknown option ${arg} (known: ${[...known].join(', ')}, --only=LIST)`);
		}
	}
	const quick = argv.includes('--quick');
	return {
		quick,
		only: sections(argv),
		render: !argv.includes('--no-render'),
		rebuild: argv.includes('--rebuild'),
		sizes: quick ? [1_000, 3_000, 10_000] : [1_000, 10_000, 100_000],
		growChunk: 1_000,
		appendReps: quick ? 3 : 5,
		appendPerRep: quick ? 50 : 100,
		coldReps: quick ? 3 : 5,
		burst: 5_000,
		burstReps: quick ? 3 : 5,
		envelopeCount: 2_000
	};
}

const started = Date.now();
const log = (text: string): void => {
	const s = ((Date.now() - started) / 1000).toFixed(0).padStart(4);
	process.stdout.write(`[${s} s] ${text}\n`);
};

// ---- the run ----------------------------------------------------------------

async function main(): Promise<void> {
	const cfg = config(process.argv.slice(2));
	const browserNeeded = cfg.only.includes('app') || cfg.only.includes('latency');
	if (browserNeeded) {
		log(`building the benchmark page (${cfg.quick ? 'quick run' : 'full run'})`);
		const browser = await startBenchBrowser();
		try {
			if (cfg.only.includes('app')) await run(cfg, browser.page);
			if (cfg.only.includes('latency')) await relayLatency(cfg, browser);
		} finally {
			await browser.close();
		}
	}
	if (cfg.only.includes('fanout')) await relayFanout(cfg);
	if (cfg.only.includes('media')) await media(cfg);
	if (cfg.only.includes('search')) await search(cfg);
	if (cfg.only.includes('p2p')) await p2p(cfg);
	if (cfg.only.includes('compaction')) await compaction(cfg);
	if (cfg.only.includes('devices')) await devices(cfg);
	log(`done in ${fmt((Date.now() - started) / 1000)} s`);
}

// ---- relay sections (bench/relay/) ---------------------------------------------

function machine(): Results {
	return {
		cores: cpus().length,
		cpu: cpus()[0]?.model.trim(),
		memoryBytes: totalmem(),
		node: process.version
	};
}

/** Stores one relay section under `relay` in latest.json, keeping the other one. */
async function saveRelay(section: 'fanout' | 'latency', value: Results): Promise<void> {
	const file = await updateResults((previous) => {
		const relay =
			previous.relay && typeof previous.relay === 'object' ? (previous.relay as Results) : {};
		return { ...previous, relay: { ...relay, [section]: value } };
	});
	log(`${section} results written to ${file}`);
}

async function relayLatency(cfg: Config, browser: BenchBrowser): Promise<void> {
	const load = loadavg();
	const started = Date.now();
	const { rows, results } = await runLatency(latencyConfig(cfg.quick), browser, log);
	const { userAgent } = results;
	printTable(rows);
	const end = loadavg();
	process.stdout.write(
		[
			'',
			`Two pages of one headless Chromium (${/Chrome\/([\d.]+)/.exec(userAgent)?.[1] ?? '?'}), relays in their own processes on loopback; pages visible: ${results.visibility.join(', ')}; clock ${results.isolated ? '5 µs steps (cross-origin isolated)' : '100 µs steps'}.`,
			`Load average (1 min) ${fmt(load[0] ?? 0, 1)} at start, ${fmt(end[0] ?? 0, 1)} at end; ${fmt((Date.now() - started) / 1000)} s.`,
			''
		].join('\n')
	);
	await saveRelay('latency', {
		date: new Date().toISOString(),
		machine: machine(),
		quick: cfg.quick,
		summary: rows,
		...results,
		load: { start: load, end }
	});
}

/** Writes a section's figures into the results file, stamped with date and machine. */
async function saveSection(
	name: 'media' | 'search' | 'p2p' | 'compaction' | 'devices',
	cfg: Config,
	rows: Row[],
	results: object
): Promise<void> {
	const file = await updateResults((previous) => ({
		...previous,
		[name]: {
			date: new Date().toISOString(),
			machine: machine(),
			quick: cfg.quick,
			summary: rows,
			...results
		}
	}));
	log(`${name} results written to ${file}`);
}

/** Section "media" (bench/media/): pipeline throughput and service-worker streaming memory. */
async function media(cfg: Config): Promise<void> {
	const { rows, results } = await runMedia(mediaConfig(cfg.quick), log);
	printTable(rows);
	await saveSection('media', cfg, rows, results);
}

async function search(cfg: Config): Promise<void> {
	const { rows, results } = await runSearch(searchConfig(cfg.quick), log);
	printTable(rows);
	await saveSection('search', cfg, rows, results);
}

/** Section "p2p" (bench/p2p/): /kith/sync latency and history sync against bare libp2p streams. */
async function p2p(cfg: Config): Promise<void> {
	const load = loadavg();
	const started = Date.now();
	const { rows, results } = await runP2P(p2pConfig(cfg.quick), log);
	printTable(rows);
	const end = loadavg();
	process.stdout.write(
		[
			'',
			`Peers in this process (one event loop), libp2p over TCP on 127.0.0.1 (noise, yamux), SQLite stores in a temporary dir.`,
			`Load average (1 min) ${fmt(load[0] ?? 0, 1)} at start, ${fmt(end[0] ?? 0, 1)} at end; ${fmt((Date.now() - started) / 1000)} s.`,
			''
		].join('\n')
	);
	await saveSection('p2p', cfg, rows, { ...results, load: { start: load, end } });
}

/**
 * A section whose runner returns its rows, results and notes: print the
 * table and the notes with the load average around it, and save it.
 */
async function noted(
	name: 'compaction' | 'devices',
	cfg: Config,
	run: () => Promise<{ rows: Row[]; results: object; notes: string[] }>
): Promise<void> {
	const load = loadavg();
	const started = Date.now();
	const { rows, results, notes } = await run();
	printTable(rows);
	const end = loadavg();
	process.stdout.write(
		[
			'',
			...notes,
			`Load average (1 min) ${fmt(load[0] ?? 0, 1)} at start, ${fmt(end[0] ?? 0, 1)} at end; ${fmt((Date.now() - started) / 1000)} s.`,
			''
		].join('\n')
	);
	await saveSection(name, cfg, rows, { ...results, load: { start: load, end } });
}

/** Section "compaction" (bench/compaction/): stored bytes and cold open before and after compaction. */
function compaction(cfg: Config): Promise<void> {
	return noted('compaction', cfg, () => runCompaction(compactionConfig(cfg.quick), log));
}

/** Section "devices" (bench/devices/): a newly linked device to full history; first screen and Automerge. */
function devices(cfg: Config): Promise<void> {
	return noted('devices', cfg, () => runDevices(devicesConfig(cfg.quick), log));
}

async function relayFanout(cfg: Config): Promise<void> {
	const started = Date.now();
	const fanout = fanoutConfig(cfg.quick);
	const { rows, results } = await runFanout(fanout, log);
	printTable(rows);
	const restarts = results.searches.reduce((n, s) => n + s.restarts, 0);
	process.stdout.write(
		[
			'',
			`One writer, ${fanout.receivers.join(' and ')} receivers, ${results.frameBytes}-byte frames (one sealed envelope per Yjs update); each relay in its own process;`,
			`max rate = highest rate with delivery p99 ≤ 100 ms over a ${fanout.full.measureMs / 1000} s steady window, median of ${fanout.reps} search(es) each; RSS is the relay's VmRSS at the end of that window.`,
			`Kith relay run with ${Object.entries(RELAY_ENV)
				.map(([k, v]) => `${k}=${v}`)
				.join(
					' '
				)} (rate limits raised: the single writer sends far over the default 200 frames/s).`,
			`Every relay runs with the Node options of \`npm run serve\`: ${serveNodeOptions().join(' ') || '(none)'}.`,
			`Load generator: one process, writer and ${fanout.threads} receiver thread(s); its CPU and event-loop delay at the first failing rate are in the notes (near 100 % means it shares the limit).`,
			`Relay restarts during the searches: ${restarts}. Load average (1 min) ${fmt(results.load.start[0] ?? 0, 1)} at start, ${fmt(results.load.end[0] ?? 0, 1)} at end; ${fmt((Date.now() - started) / 1000)} s.`,
			''
		].join('\n')
	);
	await saveRelay('fanout', {
		date: new Date().toISOString(),
		machine: machine(),
		quick: cfg.quick,
		summary: rows,
		...results
	});
}

async function run(cfg: Config, page: BenchPage): Promise<void> {
	const loadAtStart = loadavg();
	await page.fresh();
	const userAgent = await page.userAgent();
	const chromiumVersion = /Chrome\/([\d.]+)/.exec(userAgent)?.[1] ?? 'unknown';

	// -- cheap ones first: envelope rates and the 5,000-message burst -------------
	log(`envelope seal/open, ${fmt(cfg.envelopeCount)} envelopes × ${cfg.burstReps}`);
	const envelopes: Result<'envelopeRates'>[] = [];
	for (let i = 0; i < cfg.burstReps; i++)
		envelopes.push(await page.call('envelopeRates', cfg.envelopeCount));

	log(`burst of ${fmt(cfg.burst)}: y-indexeddb, DocPersistence, Kith sendMany × ${cfg.burstReps}`);
	const burst = {
		yIndexeddb: [] as Result<'burstYIndexeddb'>[],
		docPersistence: [] as Result<'burstDocPersistence'>[],
		kith: [] as Result<'burstKith'>[]
	};
	for (let i = 0; i < cfg.burstReps; i++) {
		burst.yIndexeddb.push(await page.call('burstYIndexeddb', cfg.burst));
		burst.docPersistence.push(await page.call('burstDocPersistence', cfg.burst));
		burst.kith.push(await page.call('burstKith', cfg.burst));
	}

	// -- benchmark 1: append cost at three sizes, repetitions interleaved ----------
	// One conversation per size, so a repetition at each size runs in turn and a
	// change of machine load hits every size alike.
	await page.fresh();
	const labels = cfg.sizes.map((size, i) =>
		i === cfg.sizes.length - 1 ? BIG_CONVERSATION : `size-${size}`
	);
	const grows: Result<'appendGrow'>[] = [];
	for (const [i, size] of cfg.sizes.entries()) {
		log(
			`growing a conversation to ${fmt(size)} messages (one envelope each, ${fmt(cfg.growChunk)} per commit)`
		);
		grows.push(await page.call('appendGrow', labels[i] as string, size, cfg.growChunk));
	}
	const prepared: Result<'appendPrepare'>[] = [];
	for (const label of labels) prepared.push(await page.call('appendPrepare', label));
	log(
		`appending ${cfg.appendReps} × ${cfg.appendPerRep} single messages at each size, interleaved`
	);
	const appendReps: Result<'appendRep'>[][] = labels.map(() => []);
	for (let rep = 0; rep < cfg.appendReps; rep++) {
		for (const [i, label] of labels.entries()) {
			appendReps[i]?.push(await page.call('appendRep', label, cfg.appendPerRep));
		}
	}
	// Compaction amortised over one period of its tiers (16 compactions of 500
	// updates: the freeze size at these envelope sizes), at each size.
	const cycleMessages = (cfg.quick ? 8 : 16) * 500;
	log(`compaction over ${fmt(cycleMessages)} single-entry updates at each size`);
	const cycles: Result<'compactionCycle'>[] = [];
	for (const label of labels) cycles.push(await page.call('compactionCycle', label, cycleMessages));
	log('saving the view snapshot, compacting storage');
	const snapshot = await page.call('snapshotSave');
	const baseline = await page.call('baselinePrepare', snapshot.messages);

	// -- benchmark 2: cold open, each repetition in a fresh page --------------------
	log(
		`cold open of ${fmt(snapshot.messages)} messages vs Y.applyUpdate × ${cfg.coldReps} (fresh page each)`
	);
	const cold = {
		baseline: [] as Result<'baselineColdOpen'>[],
		kith: [] as Result<'kithColdOpen'>[]
	};
	for (let i = 0; i < cfg.coldReps; i++) {
		await page.fresh();
		cold.baseline.push(await page.call('baselineColdOpen'));
		await page.fresh();
		// The background load takes several times the first screen: waited for twice only.
		cold.kith.push(await page.call('kithColdOpen', cfg.render, i < FULL_LOAD_REPS));
	}
	log(`cold open split timings × ${SPLIT_REPS} (fresh page each)`);
	const splits: Result<'kithColdOpenSplits'>[] = [];
	for (let i = 0; i < SPLIT_REPS; i++) {
		await page.fresh();
		splits.push(await page.call('kithColdOpenSplits'));
	}
	let noSnapshot: Result<'kithColdOpenNoSnapshot'> | null = null;
	if (cfg.rebuild) {
		log('cold open without a snapshot × 1 (fresh page)');
		await page.fresh();
		noSnapshot = await page.call('kithColdOpenNoSnapshot');
	}

	log(
		`scrolling up through the history: ${SCROLL_FRAMES} frames of ${SCROLL_STEP_PX} px (fresh page)`
	);
	await page.fresh();
	const profileDir = process.env.KITH_BENCH_PAGE_PROFILE;
	const cdp = profileDir ? await page.cdp() : null;
	if (cdp) {
		await cdp.send('Profiler.enable');
		await cdp.send('Profiler.setSamplingInterval', { interval: 100 });
		await cdp.send('Profiler.start');
	}
	const scroll = await page.call('kithScroll', SCROLL_FRAMES, SCROLL_STEP_PX);
	if (cdp && profileDir) {
		const { profile } = await cdp.send('Profiler.stop');
		await mkdir(profileDir, { recursive: true });
		await writeFile(join(profileDir, 'scroll.cpuprofile'), JSON.stringify(profile));
		log(`scroll CPU profile written to ${join(profileDir, 'scroll.cpuprofile')}`);
	}

	// -- report ----------------------------------------------------------------------
	const rows: Row[] = [];
	const appendMedians = appendReps.map((reps) => median(reps.map((r) => r.repUs)));
	const coreMedians = appendReps.map((reps) => median(reps.map((r) => r.coreUs)));
	const compactUs = cycles.map((c) => c.perMessageUs);
	const withCompaction = appendMedians.map((us, i) => us + (compactUs[i] as number));
	const coreWithCompaction = coreMedians.map((us, i) => us + (compactUs[i] as number));
	const flatness = (values: number[], i: number, name: string, note: string): Row => {
		const last = i === values.length - 1;
		const r = (values[i] as number) / (values[0] as number);
		return {
			name,
			value: `${fmt(values[i] as number)} µs`,
			baseline: i === 0 ? '' : `${fmt(values[0] as number)} µs`,
			ratio: i === 0 ? '' : ratio(r),
			target: last ? '≤ 1.50×' : '',
			result: last ? (r <= 1.5 ? 'PASS' : 'MISS') : undefined,
			note
		};
	};
	prepared.forEach((p, i) => {
		const sends = appendReps[i]?.flatMap((r) => r.sendUs) ?? [];
		rows.push(
			flatness(
				appendMedians,
				i,
				`1 Append at ${sizeLabel(p.size)}, per message`,
				`send p50 ${fmt(median(sends))} / p95 ${fmt(percentile(sends, 95))} / max ${fmt(Math.max(...sends))} µs; seal ${fmt(p.sealUs)} µs, bare strict commit ${fmt(p.commitUs)} µs; heap ${fmt(p.heapMB)} MB`
			)
		);
	});
	prepared.forEach((p, i) => {
		rows.push(
			flatness(
				coreMedians,
				i,
				`1 Core path, no ConversationSession, at ${sizeLabel(p.size)}`,
				'makeSend + encodeBatch + DocSession.sealAndInsert until committed, on a doc of this size with no ConversationSession'
			)
		);
	});
	prepared.forEach((p, i) => {
		const c = cycles[i];
		const compactMs = median(appendReps[i]?.map((r) => r.compactMs) ?? []);
		rows.push(
			flatness(
				withCompaction,
				i,
				`  …whole path with compaction, at ${sizeLabel(p.size)}`,
				c
					? `+ ${fmt(c.perMessageUs)} µs: ${c.compactions} compactions of ${fmt(c.messages / c.compactions)} updates took ${fmt(c.totalMs)} ms (max ${fmt(c.maxMs)} ms, ${fmt(c.maxBytes / 1e6, 1)} MB; ${c.full} full), ${fmt(c.size)} → ${fmt(c.size + c.messages)} envelopes; one full rewrite ${fmt(c.fullMs)} ms; after a repetition ${fmt(compactMs)} ms`
					: ''
			)
		);
	});
	prepared.forEach((p, i) => {
		rows.push(
			flatness(
				coreWithCompaction,
				i,
				`  …core path with compaction, at ${sizeLabel(p.size)}`,
				'the same compaction cost per message'
			)
		);
	});
	const baseApply = median(cold.baseline.map((c) => c.applyMs));
	const firstScreen = median(cold.kith.map((c) => c.firstScreenMs));
	const rendered = cold.kith.every((c) => c.renderedMs !== null)
		? median(cold.kith.map((c) => c.renderedMs as number))
		: Number.NaN;
	const fullLoads = cold.kith.flatMap((c) => (c.fullLoadMs === null ? [] : [c.fullLoadMs]));
	const n = sizeLabel(snapshot.messages);
	rows.push({
		name: `2 Cold open ${n}: first screen`,
		value: `${fmt(firstScreen)} ms`,
		baseline: `${fmt(baseApply)} ms`,
		ratio: ratio(firstScreen / baseApply),
		target: '≤ 2.00×',
		result: firstScreen / baseApply <= 2 ? 'PASS' : 'MISS',
		note: `loadSnapshot ${fmt(median(cold.kith.map((c) => c.loadSnapshotMs)))} ms, then DocSession + ConversationSession (deserialize, views); baseline: Y.applyUpdate of ${fmt(baseline.messages)} plaintext map entries (${fmt(baseline.updateBytes / 1e6, 1)} MB)`
	});
	if (Number.isFinite(rendered)) {
		rows.push({
			name: `  …rendered (ConversationView)`,
			value: `${fmt(rendered)} ms`,
			baseline: `${fmt(baseApply)} ms`,
			ratio: ratio(rendered / baseApply),
			note: `${cold.kith[0]?.renderedRows ?? 0} rows in the first frame`
		});
	}
	rows.push({
		name: `  …full doc loaded (background)`,
		value: `${fmt(median(fullLoads))} ms`,
		note: `median of ${fullLoads.length}; ${fmt(snapshot.envelopes)} envelopes, ${fmt(snapshot.storedBytes / 1e6, 1)} MB stored; entries the snapshot covers skip the signature check`
	});
	const split = (key: keyof Result<'kithColdOpenSplits'>): string =>
		fmt(median(splits.map((s) => s[key])));
	rows.push({
		name: `  …splits (median of ${SPLIT_REPS})`,
		value: '',
		note: `read ${split('readMs')} + decrypt ${split('decryptMs')} + JSON ${split('parseMs')} + validate ${split('validateMs')} + reduce ${split('reduceMs')} ms; snapshot ${fmt((splits[0]?.snapshotBytes ?? 0) / 1e6, 1)} MB`
	});
	if (noSnapshot) {
		rows.push({
			name: `  …without a snapshot (1 run)`,
			value: `${fmt(noSnapshot.viewMs)} ms`,
			baseline: `${fmt(baseApply)} ms`,
			ratio: ratio(noSnapshot.viewMs / baseApply),
			note: `doc loaded, every signature verified at ${fmt(noSnapshot.loadedMs)} ms; then every envelope decrypted and reduced`
		});
	}
	{
		const k = scroll.kith.frameMs;
		const b = scroll.baseline.frameMs;
		const over = (xs: number[], ms: number) => xs.filter((x) => x > ms).length;
		const worst = Math.max(...k);
		rows.push({
			name: `6 Scroll ${sizeLabel(scroll.messages)} history: frames > 50 ms`,
			value: `${over(k, 50)} of ${k.length}`,
			baseline: `${over(b, 50)} of ${b.length}`,
			target: 'none > 100 ms',
			result: over(k, 100) === 0 ? 'PASS' : 'MISS',
			note: `longest frame ${fmt(worst, 1)} ms (${over(k, 100)} over 100 ms); p95 ${fmt(percentile(k, 95), 1)} vs ${fmt(percentile(b, 95), 1)} ms; reached message ${fmt(scroll.kith.reached)} from the end's ${fmt(scroll.messages)}, ${scroll.kith.rows} rows rendered; baseline: the same scroll over a static copy of the first ${scroll.baseline.rows} rows`
		});
	}
	const yRate = median(burst.yIndexeddb.map((b) => b.perSecond));
	const kithRate = median(burst.kith.map((b) => b.perSecond));
	const dpRate = median(burst.docPersistence.map((b) => b.perSecond));
	rows.push({
		name: `3 Burst ${fmt(cfg.burst)}: Kith sendMany`,
		value: `${fmt(kithRate)} /s`,
		baseline: `${fmt(yRate)} /s`,
		ratio: ratio(kithRate / yRate),
		target: '≥ 20.00×',
		result: kithRate / yRate >= 20 ? 'PASS' : 'MISS',
		note: `${fmt(median(burst.kith.map((b) => b.ms)))} ms until all "Saved" (strict durability); baseline: y-indexeddb, one transaction per map.set (${burst.yIndexeddb[0]?.durability ?? '?'} durability)`
	});
	rows.push({
		name: `  DocPersistence alone`,
		value: `${fmt(dpRate)} /s`,
		baseline: `${fmt(yRate)} /s`,
		ratio: ratio(dpRate / yRate),
		note: `same ${fmt(cfg.burst)} plaintext map.set transactions, batched, until flush() (strict)`
	});
	rows.push({
		name: `Envelope seal`,
		value: `${fmt(median(envelopes.map((e) => e.sealPerSecond)))} /s`,
		note: `${fmt(cfg.envelopeCount)} concurrent, ~50-char messages (pad, AES-GCM, Ed25519, SHA-256)`
	});
	rows.push({
		name: `Envelope open (verify + decrypt)`,
		value: `${fmt(median(envelopes.map((e) => e.openPerSecond)))} /s`
	});
	rows.push({
		name: `Snapshot save at ${n}`,
		value: `${fmt(snapshot.saveMs)} ms`,
		note: `serialize + JSON + AES-GCM + put, 1 run; ${fmt(snapshot.ciphertextBytes / 1e6, 1)} MB`
	});

	printTable(rows);
	const grownMs = grows
		.map((g) => `${sizeLabel(g.messages)} in ${fmt(g.ms / 1000, 1)} s`)
		.join(', ');
	process.stdout.write(
		[
			'',
			`Repetitions: append ${cfg.appendReps} × ${cfg.appendPerRep} sends per size, sizes interleaved (median of per-repetition means);`,
			`cold open ${cfg.coldReps} fresh pages each (full load ${FULL_LOAD_REPS}); bursts and envelope rates ${cfg.burstReps} each; splits ${SPLIT_REPS}; snapshot save 1${cfg.rebuild ? ', cold open without snapshot 1' : ''}.`,
			`Conversations grown with one envelope per message, ${fmt(cfg.growChunk)} envelopes per commit (${grownMs});`,
			`each grows by ${fmt(cfg.appendReps * cfg.appendPerRep)} during its measurement.`,
			`Machine: ${cpus().length} cores (${cpus()[0]?.model.trim() ?? '?'}), ${fmt(totalmem() / 2 ** 30)} GiB; Chromium ${chromiumVersion}; Node ${process.version}.`,
			`Load average (1 min) at start ${fmt(loadAtStart[0] ?? 0, 1)}, at end ${fmt(loadavg()[0] ?? 0, 1)}: other work on the machine skews every figure, ratios less so.`,
			`Total time ${fmt((Date.now() - started) / 1000)} s. Benchmarks report; they never fail the run.`,
			''
		].join('\n')
	);

	const file = await mergeResults({
		date: new Date().toISOString(),
		machine: {
			cores: cpus().length,
			cpu: cpus()[0]?.model.trim(),
			memoryBytes: totalmem(),
			chromium: chromiumVersion,
			node: process.version
		},
		config: cfg,
		summary: rows,
		raw: {
			envelopes,
			burst,
			grows,
			prepared,
			appendReps,
			cycles,
			snapshot,
			baseline,
			cold,
			splits,
			noSnapshot,
			scroll
		},
		derived: {
			appendMedianUs: appendMedians,
			appendWithCompactionUs: withCompaction,
			coreMedianUs: coreMedians,
			coreWithCompactionUs: coreWithCompaction,
			appendMeanSendUs: appendReps.map((reps) => mean(reps.flatMap((r) => r.sendUs)))
		},
		load: { start: loadAtStart, end: loadavg() }
	});
	log(`results written to ${file}`);
}

main().catch((error: unknown) => {
	process.stderr.write(
		`bench: the run failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`
	);
	process.exitCode = 1;
});
