/**
 * A measurement aid for the fan-out benchmark's RSS (not part of `npm run
 * bench`): one relay process, a fixed ladder of steps instead of a search,
 * and the relay's RSS after each, so two versions of the relay (or two sets
 * of Node options) can be compared at the same offered rates.
 *
 *   npx tsx bench/relay/mem-probe.ts [kind] [receivers] [rate…]
 *
 * kind: kith (default), plain or stock; receivers: 100 by default; rates: the
 * steps in order (default: the probe ladder 50…12,800 of a search, then 9,000
 * twice as full windows). Each step is a quick-mode window (probe: 0.2 + 0.6 s,
 * full: rates given after a `full` word, 0.3 + 1.2 s). With
 * KITH_BENCH_RELAY_ARGS='--import ./bench/relay/mem-report.mjs' the relay also
 * writes its own breakdown (process.memoryUsage, V8 heap spaces, smaps) to
 * KITH_MEM_REPORT after every step.
 */
import { readFileSync } from 'node:fs';
import { LoadGenerator } from './loadgen-client';
import { startRelayProcess, type RelayKind } from './servers';

const args = process.argv.slice(2);
const kind = (args[0] ?? 'kith') as RelayKind;
const receivers = Number(args[1] ?? 100);
const rest = args.slice(2);
const steps: { rate: number; full: boolean }[] = [];
let full = false;
for (const word of rest) {
	if (word === 'full') full = true;
	else steps.push({ rate: Number(word), full });
}
if (steps.length === 0) {
	// As a search to 100 receivers goes: probes until one fails, then full windows below it.
	for (let r = 50; r <= 12_800; r *= 2) steps.push({ rate: r, full: false });
	steps.push({ rate: 9000, full: true }, { rate: 9000, full: true });
}
const count = Math.ceil(
	steps.reduce((n, s) => n + (s.rate * (s.full ? 1.5 : 0.8) + 10), 0) * 1.05 + 100
);

const MiB = 1024 * 1024;
const mb = (b: number): string => (b / MiB).toFixed(1);
const report = process.env.KITH_MEM_REPORT;

const lg = LoadGenerator.start();
try {
	await lg.init({ count, threads: 1 });
	const relay = await startRelayProcess(kind);
	try {
		await lg.connect({ kind, url: relay.url, receivers, relayPid: relay.pid });
		await new Promise((r) => setTimeout(r, 500));
		const line = async (label: string): Promise<void> => {
			let extra = '';
			if (report) {
				process.kill(relay.pid, 'SIGUSR2');
				await new Promise((r) => setTimeout(r, 300));
				try {
					extra = ' ' + readFileSync(report, 'utf8').trim();
				} catch {
					extra = ' (no report)';
				}
			}
			console.log(`${label.padEnd(16)} RSS ${mb(relay.rss()).padStart(6)} MiB${extra}`);
		};
		await line('idle');
		let from = 0;
		for (const s of steps) {
			const w = s.full ? { warmMs: 300, measureMs: 1200 } : { warmMs: 200, measureMs: 600 };
			const r = await lg.step({ from, rate: s.rate, ...w, abortMs: 1000, drainMs: 10_000 });
			from += r.sent;
			console.log(
				`${(s.full ? 'full ' : 'probe ') + s.rate}: p99 ${r.p99Ms.toFixed(1)} ms, relay CPU ${r.relayCpuPct.toFixed(0)} %, ` +
					`RSS at end of sending ${mb(r.relayRss)} MiB, ${(r.delivered / r.frames).toFixed(1)} msg/frame`
			);
			await line(`  after ${s.rate}`);
		}
		console.log(`peak RSS ${mb(relay.peakRss())} MiB`);
	} finally {
		await lg.disconnect().catch(() => undefined);
		await relay.stop();
	}
} finally {
	await lg.stop();
}
