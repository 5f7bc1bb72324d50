/**
 * Benchmark 5, message latency browser → relay → browser on loopback: two
 * pages of the bench browser (bench/browser/relay.html), each in the same
 * room, page A sending paced messages and page B opening them
 * (bench/browser/relay-benches.ts). Kith: real envelopes through the app's
 * RelayConnection and a Kith relay process; baseline: the same texts as plain
 * Y.Map entries through the stock y-websocket provider and a
 * `@y/websocket-server` process. Runs alternate between the two systems.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Page } from 'playwright-core';
import { newRoomId, newSecretKey, toBase64Url } from '../../src/lib/crypto';
import type { LatencyRun, RelayBenchApi } from '../browser/relay-benches';
import type { BenchBrowser } from '../lib/browser';
import { fmt, ratio, type Row } from '../lib/report';
import { median, percentile } from '../lib/stats';
import { startRelayProcess, type RelayProcess } from './servers';

export interface LatencyConfig {
	/** Messages per run, the first `warmup` of which are not counted. */
	messages: number;
	warmup: number;
	intervalMs: number;
	/** Runs of each system, alternating. */
	reps: number;
}

export function latencyConfig(quick: boolean): LatencyConfig {
	return quick
		? { messages: 100, warmup: 20, intervalMs: 20, reps: 1 }
		: { messages: 300, warmup: 20, intervalMs: 20, reps: 3 };
}

export type LatencySystem = 'kith' | 'stock';

export interface LatencyRep {
	system: LatencySystem;
	rep: number;
	/** One-way A → B, ms, per counted message (shared clock). */
	oneWayMs: number[];
	/** A → B → A round trip, ms, per counted message (A's clock alone). */
	roundTripMs: number[];
	/** Splits of the one-way time, ms per counted message: A encodes and seals (Kith) … */
	sendMs: number[];
	/** … A's socket to B's socket: both WebSocket stacks and the relay … */
	hopMs: number[];
	/** … B from the frame to the readable message (Kith: doc rules, apply, decrypt). */
	receiveMs: number[];
	/** Counted messages that did not arrive (or whose echo did not). */
	lost: number;
	echoLost: number;
}

export interface LatencyResults {
	config: LatencyConfig;
	reps: LatencyRep[];
	/** document.visibilityState of both pages at the end (hidden pages get throttled timers). */
	visibility: string[];
	/** Whether both pages were cross-origin isolated (the fine clock). */
	isolated: boolean;
	userAgent: string;
}

type Log = (text: string) => void;

async function openPage(browser: BenchBrowser): Promise<Page> {
	const page = await browser.page.context.newPage();
	page.on('console', (message) => {
		if (message.type() === 'error' || message.type() === 'warning') {
			process.stderr.write(`  relay page ${message.type()}: ${message.text()}\n`);
		}
	});
	page.on('pageerror', (error) =>
		process.stderr.write(`  relay page exception: ${error.message}\n`)
	);
	await page.goto(new URL('relay.html', browser.page.url).href);
	await page.waitForFunction(() => window.kithRelayBench !== undefined);
	return page;
}

/** Calls the relay page's API (the function runs in the page). */
function call<K extends keyof RelayBenchApi>(
	page: Page,
	name: K,
	...args: Parameters<RelayBenchApi[K]>
): Promise<Awaited<ReturnType<RelayBenchApi[K]>>> {
	return page.evaluate(
		([n, a]) => {
			const api = window.kithRelayBench as unknown as Record<string, (...x: unknown[]) => unknown>;
			return api[n as string]!(...(a as unknown[]));
		},
		[name, args] as const
	) as Promise<Awaited<ReturnType<RelayBenchApi[K]>>>;
}

/**
 * KITH_BENCH_PAGE_PROFILE=DIR: CPU profiles of both pages during each run's
 * sending, written as DIR/<system>-<rep>-{a,b}.cpuprofile (open them in
 * Chromium's DevTools, Performance panel).
 */
async function startProfiles(pages: Page[]): Promise<(prefix: string) => Promise<void>> {
	const sessions = await Promise.all(pages.map((page) => page.context().newCDPSession(page)));
	for (const session of sessions) {
		await session.send('Profiler.enable');
		await session.send('Profiler.setSamplingInterval', { interval: 50 });
		await session.send('Profiler.start');
	}
	return async (prefix) => {
		await mkdir(dirname(prefix), { recursive: true });
		for (const [i, session] of sessions.entries()) {
			const { profile } = await session.send('Profiler.stop');
			await writeFile(`${prefix}-${'ab'[i]}.cpuprofile`, JSON.stringify(profile));
			await session.detach();
		}
	};
}

async function once(
	system: LatencySystem,
	rep: number,
	relay: RelayProcess,
	a: Page,
	b: Page,
	cfg: LatencyConfig
): Promise<LatencyRep> {
	if (system === 'kith') {
		const roomId = newRoomId();
		const key = toBase64Url(newSecretKey());
		// B first: the room is claimed by whoever comes first, and both hold its capability.
		await call(b, 'kithJoin', relay.url, roomId, key, 'echoer');
		await call(a, 'kithJoin', relay.url, roomId, key, 'sender');
	} else {
		const room = `bench-${rep}-${Date.now()}`;
		const ws = relay.url.replace(/^http/, 'ws');
		await call(b, 'stockJoin', ws, room, 'echoer');
		await call(a, 'stockJoin', ws, room, 'sender');
	}
	const profiling = process.env.KITH_BENCH_PAGE_PROFILE ? await startProfiles([a, b]) : null;
	const sent: LatencyRun = await call(a, 'send', cfg.messages, cfg.intervalMs, 3000);
	if (profiling) await profiling(`${process.env.KITH_BENCH_PAGE_PROFILE}/${system}-${rep}`);
	const got: LatencyRun = await call(b, 'results');
	await call(a, 'leave');
	await call(b, 'leave');
	const oneWayMs: number[] = [];
	const roundTripMs: number[] = [];
	const sendMs: number[] = [];
	const hopMs: number[] = [];
	const receiveMs: number[] = [];
	const num = (v: number | undefined): v is number => typeof v === 'number' && Number.isFinite(v);
	let lost = 0;
	let echoLost = 0;
	for (let i = cfg.warmup; i < cfg.messages; i++) {
		const start = sent.sent[i];
		const arrived = got.received[i];
		const echoed = sent.echoed[i];
		const handedOver = sent.handedOver[i];
		const frame = got.frame[i];
		if (!num(start)) continue;
		if (num(arrived)) oneWayMs.push(arrived - start);
		else lost++;
		if (num(echoed)) roundTripMs.push(echoed - start);
		else echoLost++;
		if (num(arrived) && num(handedOver) && num(frame)) {
			sendMs.push(handedOver - start);
			hopMs.push(frame - handedOver);
			receiveMs.push(arrived - frame);
		}
	}
	return { system, rep, oneWayMs, roundTripMs, sendMs, hopMs, receiveMs, lost, echoLost };
}

export async function runLatency(
	cfg: LatencyConfig,
	browser: BenchBrowser,
	log: Log
): Promise<{ rows: Row[]; results: LatencyResults }> {
	const relays = {
		kith: await startRelayProcess('kith'),
		stock: await startRelayProcess('stock')
	};
	const reps: LatencyRep[] = [];
	const visibility: string[] = [];
	let isolated = false;
	let userAgent = '';
	let a: Page | null = null;
	let b: Page | null = null;
	try {
		a = await openPage(browser);
		b = await openPage(browser);
		for (let rep = 0; rep < cfg.reps; rep++) {
			// Alternating, and which goes first alternates too.
			const order: LatencySystem[] = rep % 2 ? ['stock', 'kith'] : ['kith', 'stock'];
			for (const system of order) {
				log(
					`latency ${rep + 1}/${cfg.reps}: ${system === 'kith' ? 'Kith (RelayConnection, Kith relay)' : 'stock (y-websocket, @y/websocket-server)'}, ${cfg.messages} messages every ${cfg.intervalMs} ms`
				);
				const r = await once(system, rep, relays[system], a, b, cfg);
				log(
					`  one-way p50 ${fmt(percentile(r.oneWayMs, 50), 2)} / p99 ${fmt(percentile(r.oneWayMs, 99), 2)} ms (send ${fmt(percentile(r.sendMs, 50), 2)} + hop ${fmt(percentile(r.hopMs, 50), 2)} + receive ${fmt(percentile(r.receiveMs, 50), 2)}); round trip p50 ${fmt(percentile(r.roundTripMs, 50), 2)} ms${r.lost + r.echoLost ? `; lost ${r.lost}, echoes lost ${r.echoLost}` : ''}`
				);
				reps.push(r);
			}
		}
		visibility.push(await call(a, 'visibility'), await call(b, 'visibility'));
		isolated = (await call(a, 'isolated')) && (await call(b, 'isolated'));
		userAgent = await a.evaluate(() => navigator.userAgent);
	} finally {
		await a?.close().catch(() => undefined);
		await b?.close().catch(() => undefined);
		await relays.kith.stop();
		await relays.stock.stop();
	}
	const results: LatencyResults = { config: cfg, reps, visibility, isolated, userAgent };
	return { rows: latencyRows(results), results };
}

export function latencyRows(results: LatencyResults): Row[] {
	const of = (system: LatencySystem) => results.reps.filter((r) => r.system === system);
	// Each run's p50 and p99, then the median over runs (runs alternate, so load hits both alike).
	const stat = (system: LatencySystem, pick: (r: LatencyRep) => number[], p: number): number =>
		median(of(system).map((r) => percentile(pick(r), p)));
	const oneWay = (r: LatencyRep) => r.oneWayMs;
	const roundTrip = (r: LatencyRep) => r.roundTripMs;
	const k50 = stat('kith', oneWay, 50);
	const s50 = stat('stock', oneWay, 50);
	const k99 = stat('kith', oneWay, 99);
	const s99 = stat('stock', oneWay, 99);
	const kRt = stat('kith', roundTrip, 50);
	const sRt = stat('stock', roundTrip, 50);
	const lost = results.reps.reduce((n, r) => n + r.lost + r.echoLost, 0);
	const splits = (system: LatencySystem): string =>
		`send ${fmt(
			stat(system, (r) => r.sendMs, 50),
			2
		)} + hop ${fmt(
			stat(system, (r) => r.hopMs, 50),
			2
		)} + receive ${fmt(
			stat(system, (r) => r.receiveMs, 50),
			2
		)} ms`;
	const counted = of('kith')[0]?.oneWayMs.length ?? 0;
	return [
		{
			name: '5 Latency browser→relay→browser, p50',
			value: `${fmt(k50, 2)} ms`,
			baseline: `${fmt(s50, 2)} ms`,
			ratio: ratio(k50 / s50),
			target: '≤ 1.30×',
			result: k50 / s50 <= 1.3 ? 'PASS' : 'MISS',
			note: `one way, shared clock; median of ${of('kith').length} runs × ${counted} messages; baseline: plain Y.Map entries, y-websocket 3.1.0 → @y/websocket-server 0.1.1`
		},
		{
			name: '  …p99',
			value: `${fmt(k99, 2)} ms`,
			baseline: `${fmt(s99, 2)} ms`,
			ratio: ratio(k99 / s99),
			note: `p50 splits (A encodes/seals, socket to socket through the relay, B checks/decrypts): Kith ${splits('kith')}; stock ${splits('stock')}`
		},
		{
			name: '  …round trip A→B→A / 2, p50',
			value: `${fmt(kRt / 2, 2)} ms`,
			baseline: `${fmt(sRt / 2, 2)} ms`,
			ratio: ratio(kRt / sRt),
			note: `A's clock only (B echoes each message); ${lost} messages or echoes lost`
		}
	];
}
