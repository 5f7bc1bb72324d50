/**
 * Benchmark 4, relay fan-out: one writer, 100 and 500 receivers, against three
 * relays each in its own child process (./servers.ts): the Kith relay, a plain
 * `ws` broadcaster (baseline) and the stock `@y/websocket-server`. For each it
 * finds the highest message rate offered by the single writer at which the
 * delivery latency p99 over every receiver stays within TARGET_P99_MS over a
 * steady window, and the relay process's RSS at that rate.
 *
 * The search: a ladder of short probe steps (50, 100, 200, … messages/s)
 * up to the first rate that fails, then a bisection (geometric) between the
 * last rate that passed and that one with full steady windows. Only a full
 * window counts as a pass; the probes only bracket. A later repetition starts
 * from the bracket [r / 1.25, r × 1.25] around the first one's result r,
 * widening it when both ends turn out to pass or fail. A step fails when
 * p99 > TARGET_P99_MS, when a delivery is missing, or at once when any
 * delivery takes over ABORT_MS. Each search runs against a fresh relay
 * process; the writer's stream restarts at seq 0 for each.
 */
import { availableParallelism, loadavg } from 'node:os';
import { median } from '../lib/stats';
import { fmt, mb, ratio, type Row } from '../lib/report';
import type { StepResult } from './loadgen';
import { LoadGenerator } from './loadgen-client';
import {
	RELAY_ENV,
	RELAY_NAMES,
	startRelayProcess,
	type RelayKind,
	type RelayProcess
} from './servers';

export const TARGET_P99_MS = 100;
const ABORT_MS = 1000;
const MIN_RATE = 25;
const FIRST_RATE = 50;

export interface FanoutConfig {
	receivers: number[];
	relays: RelayKind[];
	reps: number;
	/** Probe steps: warm-up and measured ms. */
	probe: { warmMs: number; measureMs: number };
	/** Full steps: warm-up and steady window, ms. */
	full: { warmMs: number; measureMs: number };
	/** Full steps after the bracket is known: first search, and later ones (which start from the first's result). */
	bisectSteps: number;
	hintedBisectSteps: number;
	/** A search stops refining after this long. */
	searchBudgetMs: number;
	maxRate: number;
	/** Messages in the writer's stream (a relay process is restarted when they run out). */
	streamMessages: number;
	/** Receiver threads in the load generator. */
	threads: number;
}

export function fanoutConfig(quick: boolean): FanoutConfig {
	return {
		receivers: [100, 500],
		relays: ['kith', 'plain', 'stock'],
		reps: quick ? 1 : 2,
		probe: quick ? { warmMs: 200, measureMs: 600 } : { warmMs: 300, measureMs: 700 },
		full: quick ? { warmMs: 300, measureMs: 1200 } : { warmMs: 500, measureMs: 3000 },
		bisectSteps: quick ? 1 : 3,
		hintedBisectSteps: 2,
		searchBudgetMs: quick ? 10_000 : 35_000,
		maxRate: 25_600,
		// Enough fresh messages for every step of a search up to maxRate (each step sends new ones).
		streamMessages: quick ? 60_000 : 150_000,
		// More receiver threads only pay where the relay cannot use the cores.
		threads: Math.max(1, Math.min(3, availableParallelism() - 2))
	};
}

export interface Step extends StepResult {
	full: boolean;
	pass: boolean;
}

export interface SearchResult {
	relay: RelayKind;
	receivers: number;
	rep: number;
	/** Highest rate that passed a full steady window (0: none did). */
	rate: number;
	/** The rate passed at maxRate: the real limit is higher. */
	capped: boolean;
	/** The full step at that rate. */
	atRate: Step | null;
	/** The lowest-rate full step that failed above it (saturation diagnostics). */
	failAbove: Step | null;
	/** RSS right after the receivers connected, before any message. */
	idleRss: number;
	/** VmHWM of the last relay process at the end. */
	peakRss: number;
	restarts: number;
	ms: number;
	steps: Step[];
}

export interface FanoutResults {
	config: FanoutConfig;
	frameBytes: number;
	relayEnv: Record<string, string>;
	searches: SearchResult[];
	load: { start: number[]; end: number[] };
}

type Log = (text: string) => void;

const passed = (r: StepResult): boolean =>
	!r.aborted &&
	r.drained &&
	r.closed === 0 &&
	r.delivered >= r.expected &&
	r.expected > 0 &&
	r.p99Ms <= TARGET_P99_MS;

const roundRate = (r: number): number => (r >= 200 ? Math.round(r / 10) * 10 : Math.round(r));

class Search {
	relay: RelayProcess | null = null;
	from = 0;
	restarts = 0;
	idleRss = Number.NaN;
	readonly steps: Step[] = [];

	constructor(
		readonly lg: LoadGenerator,
		readonly kind: RelayKind,
		readonly receivers: number,
		readonly cfg: FanoutConfig,
		readonly log: Log
	) {}

	async start(): Promise<void> {
		this.relay = await startRelayProcess(this.kind);
		await this.lg.connect({
			kind: this.kind,
			url: this.relay.url,
			receivers: this.receivers,
			relayPid: this.relay.pid
		});
		this.from = 0;
		if (Number.isNaN(this.idleRss)) this.idleRss = this.relay.rss();
	}

	async restart(): Promise<void> {
		this.restarts++;
		await this.stop();
		await this.start();
	}

	async stop(): Promise<void> {
		await this.lg.disconnect().catch(() => undefined);
		await this.relay?.stop();
		this.relay = null;
	}

	async step(rate: number, full: boolean): Promise<boolean> {
		const w = full ? this.cfg.full : this.cfg.probe;
		const needed = Math.ceil((rate * (w.warmMs + w.measureMs)) / 1000) + 1;
		if (this.from + needed > this.cfg.streamMessages) await this.restart();
		const r = await this.lg.step({
			from: this.from,
			rate,
			warmMs: w.warmMs,
			measureMs: w.measureMs,
			abortMs: ABORT_MS,
			drainMs: 10_000
		});
		this.from += r.sent;
		const pass = passed(r);
		this.steps.push({ ...r, full, pass });
		this.log(
			`    ${full ? 'full ' : 'probe'} ${fmt(rate).padStart(6)} msg/s: ${pass ? 'pass' : 'FAIL'}  p50 ${fmt(r.p50Ms, 1)} / p99 ${fmt(r.p99Ms, 1)} ms` +
				`${r.aborted ? ' (aborted)' : ''}${r.drained ? '' : ' (not drained)'}; relay CPU ${fmt(r.relayCpuPct)} %, RSS ${mb(r.relayRss)}; load gen CPU ${fmt(r.loadgenCpuPct)} %, loop p99 ${fmt(r.loopP99Ms)} ms; ${fmt(r.delivered / r.frames, 2)} msg/frame`
		);
		if (!r.drained || r.closed > 0 || this.relay?.exited) await this.restart();
		return pass;
	}
}

async function searchOnce(
	lg: LoadGenerator,
	kind: RelayKind,
	receivers: number,
	rep: number,
	hint: number | null,
	cfg: FanoutConfig,
	log: Log
): Promise<SearchResult> {
	const started = performance.now();
	const s = new Search(lg, kind, receivers, cfg, log);
	await s.start();
	try {
		const over = () => performance.now() - started > cfg.searchBudgetMs;
		// Bracket: lo believed to pass, hi believed to fail; the flags say whether a
		// full window showed it.
		let lo: number;
		let hi: number;
		let loOk = false;
		let hiOk = false;
		let steps = cfg.bisectSteps;
		if (hint !== null && hint > 0) {
			lo = roundRate(hint / 1.25);
			hi = roundRate(hint * 1.25);
			steps = cfg.hintedBisectSteps;
		} else {
			let rate = FIRST_RATE;
			let pass = await s.step(rate, false);
			lo = 0;
			hi = Number.POSITIVE_INFINITY;
			for (;;) {
				if (!pass) {
					hi = rate;
					break;
				}
				lo = rate;
				rate *= 2;
				if (rate > cfg.maxRate) break;
				pass = await s.step(rate, false);
			}
			// A probe that fails in its short window fails a full one too (the
			// backlog only grows); a pass in a short window proves nothing.
			hiOk = Number.isFinite(hi);
			if (lo === 0) lo = roundRate(FIRST_RATE / 1.4);
		}
		for (let k = 0; k < steps && Number.isFinite(hi) && hi / lo > 1.05 && !over(); k++) {
			const mid = roundRate(Math.sqrt(lo * hi));
			if (await s.step(mid, true)) {
				lo = mid;
				loOk = true;
			} else {
				hi = mid;
				hiOk = true;
			}
		}
		// The upper end was a guess (a hint): go up until a full window fails.
		for (let k = 0; k < 4 && !hiOk && hi <= cfg.maxRate && !over(); k++) {
			if (await s.step(hi, true)) {
				lo = hi;
				loOk = true;
				hi = roundRate(hi * 1.25);
			} else {
				hiOk = true;
			}
		}
		// The lower end was a guess too: come down until a full window passes.
		// (Not cut short by the time budget: a search must end with a rate that passed.)
		while (!loOk && lo >= MIN_RATE) {
			if (await s.step(lo, true)) loOk = true;
			else lo = roundRate(lo / 1.4);
		}
		const verified = loOk ? lo : 0;
		const full = s.steps.filter((st) => st.full);
		const atRate = full.find((st) => st.pass && st.rate === verified) ?? null;
		const failAbove =
			full.filter((st) => !st.pass && st.rate > verified).sort((a, b) => a.rate - b.rate)[0] ??
			s.steps.filter((st) => !st.pass && st.rate > verified).sort((a, b) => a.rate - b.rate)[0] ??
			null;
		return {
			relay: kind,
			receivers,
			rep,
			rate: verified,
			capped: verified >= cfg.maxRate,
			atRate,
			failAbove,
			idleRss: s.idleRss,
			peakRss: s.relay?.peakRss() ?? Number.NaN,
			restarts: s.restarts,
			ms: performance.now() - started,
			steps: s.steps
		};
	} finally {
		await s.stop();
	}
}

export async function runFanout(
	cfg: FanoutConfig,
	log: Log
): Promise<{ rows: Row[]; results: FanoutResults }> {
	const loadStart = loadavg();
	const lg = LoadGenerator.start();
	const searches: SearchResult[] = [];
	let frameBytes = 0;
	try {
		log(`fan-out: sealing the writer's ${fmt(cfg.streamMessages)} messages (real envelopes)`);
		({ frameBytes } = await lg.init({ count: cfg.streamMessages, threads: cfg.threads }));
		for (let rep = 0; rep < cfg.reps; rep++) {
			// Relays interleaved per repetition, so a change of machine load hits each alike.
			for (const receivers of cfg.receivers) {
				for (const kind of cfg.relays) {
					const first = searches.find((r) => r.relay === kind && r.receivers === receivers);
					log(
						`fan-out ${rep + 1}/${cfg.reps}: ${RELAY_NAMES[kind]}, ${receivers} receivers${first ? ` (from ${fmt(first.rate)} msg/s)` : ''}`
					);
					const result = await searchOnce(
						lg,
						kind,
						receivers,
						rep,
						first ? first.rate : null,
						cfg,
						log
					);
					log(
						`  → ${fmt(result.rate)} msg/s${result.capped ? ' (capped)' : ''}, RSS ${mb(result.atRate?.relayRss ?? Number.NaN)} (${fmt(result.ms / 1000, 1)} s)`
					);
					searches.push(result);
				}
			}
		}
	} finally {
		await lg.stop();
	}
	const results: FanoutResults = {
		config: cfg,
		frameBytes,
		relayEnv: RELAY_ENV,
		searches,
		load: { start: loadStart, end: loadavg() }
	};
	return { rows: fanoutRows(results), results };
}

interface Summary {
	rate: number;
	rss: number;
	p99: number;
	/** Messages per frame delivered at that rate (1 unless the relay merges). */
	perFrame: number;
	rates: number[];
	/** Searches in which no rate passed (left out of the medians). */
	failed: number;
	failRelayCpu: number;
	failLoadgenCpu: number;
	failLoop: number;
	capped: boolean;
}

function summarise(results: FanoutResults, kind: RelayKind, receivers: number): Summary {
	const all = results.searches.filter((r) => r.relay === kind && r.receivers === receivers);
	const runs = all.filter((r) => r.rate > 0);
	const fails = runs.flatMap((r) => (r.failAbove ? [r.failAbove] : []));
	return {
		rate: median(runs.map((r) => r.rate)),
		rss: median(runs.map((r) => r.atRate?.relayRss ?? Number.NaN)),
		p99: median(runs.map((r) => r.atRate?.p99Ms ?? Number.NaN)),
		perFrame: median(
			runs.map((r) => (r.atRate ? r.atRate.delivered / r.atRate.frames : Number.NaN))
		),
		rates: all.map((r) => r.rate),
		failed: all.length - runs.length,
		failRelayCpu: median(fails.map((f) => f.relayCpuPct)),
		failLoadgenCpu: median(fails.map((f) => f.loadgenCpuPct)),
		failLoop: median(fails.map((f) => f.loopP99Ms)),
		capped: runs.some((r) => r.capped)
	};
}

export function fanoutRows(results: FanoutResults): Row[] {
	const rows: Row[] = [];
	const rate = (s: Summary): string => `${s.capped ? '≥ ' : ''}${fmt(s.rate)} msg/s`;
	const detail = (s: Summary): string =>
		`runs ${s.rates.map((r) => fmt(r)).join(', ')}${s.failed ? ` (${s.failed} found no passing rate: left out)` : ''}; p99 ${fmt(s.p99, 1)} ms and ${fmt(s.perFrame, 2)} msg/frame at that rate; first failing rate: relay CPU ${fmt(s.failRelayCpu)} %, load gen CPU ${fmt(s.failLoadgenCpu)} %, loop p99 ${fmt(s.failLoop)} ms`;
	for (const n of results.config.receivers) {
		const kith = summarise(results, 'kith', n);
		const plain = summarise(results, 'plain', n);
		const stock = summarise(results, 'stock', n);
		const vsPlain = kith.rate / plain.rate;
		const vsStock = kith.rate / stock.rate;
		const rss = kith.rss / plain.rss;
		const verdict = (ok: boolean): 'PASS' | 'MISS' => (ok ? 'PASS' : 'MISS');
		rows.push({
			name: `4 Fan-out to ${n}: Kith relay, max rate`,
			value: rate(kith),
			baseline: rate(plain),
			ratio: ratio(vsPlain),
			target: '≥ 0.80×',
			result: verdict(vsPlain >= 0.8),
			note: `baseline: plain ws broadcaster; Kith ${detail(kith)}`
		});
		rows.push({
			name: `  …vs @y/websocket-server`,
			value: rate(kith),
			baseline: rate(stock),
			ratio: ratio(vsStock),
			target: '> 1.00×',
			result: verdict(vsStock > 1),
			note: `stock ${detail(stock)}`
		});
		rows.push({
			name: `  …Kith relay RSS at that rate`,
			value: mb(kith.rss),
			baseline: mb(plain.rss),
			ratio: ratio(rss),
			target: '≤ 1.50×',
			result: verdict(rss <= 1.5),
			note: `baseline: the plain broadcaster's RSS at its own max rate; stock ${mb(stock.rss)}`
		});
		rows.push({ name: `  plain ws broadcaster`, value: rate(plain), note: detail(plain) });
	}
	return rows;
}
