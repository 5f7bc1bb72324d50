/**
 * Measurement aid (bench/relay/mem-probe.ts): preloaded into a relay process
 * with `--import`, writes its memory breakdown as one line to KITH_MEM_REPORT
 * whenever the process gets SIGUSR2: V8's heap (total/used, per space),
 * external and ArrayBuffer bytes, anonymous and file-backed RSS, the GCs since
 * the last report (major ones with their flags) and the highest ArrayBuffer
 * bytes and RSS seen since then (sampled every 50 ms).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import v8 from 'node:v8';

const mb = (x) => (x / 1048576).toFixed(1);

const KIND = {
	[constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
	[constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
	[constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
	[constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak'
};
const fresh = () => ({ minor: 0, major: 0, incremental: 0, weak: 0, ms: 0, majorFlags: [] });
let gcs = fresh();
new PerformanceObserver((list) => {
	for (const e of list.getEntries()) {
		const k = KIND[e.detail?.kind] ?? 'other';
		gcs[k] = (gcs[k] ?? 0) + 1;
		gcs.ms += e.duration;
		if (k === 'major') gcs.majorFlags.push(e.detail.flags);
	}
}).observe({ entryTypes: ['gc'] });

let maxAb = 0;
let maxRss = 0;
setInterval(() => {
	const m = process.memoryUsage();
	maxAb = Math.max(maxAb, m.arrayBuffers);
	maxRss = Math.max(maxRss, m.rss);
}, 50).unref();

/** Anonymous RSS by mapping: glibc's main heap ([heap]), the others by the mapping's size. */
function anonMaps() {
	const byKind = { heap: 0, small: 0, mid: 0, big: 0 };
	const top = [];
	let cur = null;
	for (const l of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
		const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ (\d+)\s*(.*)$/.exec(l);
		if (head) {
			const size = (parseInt(head[2], 16) - parseInt(head[1], 16)) / 1024;
			cur = { name: head[4] || 'anon', size };
			continue;
		}
		const a = /^Anonymous:\s+(\d+)/.exec(l);
		if (a && cur && Number(a[1]) > 0) {
			const kb = Number(a[1]);
			const k =
				cur.name === '[heap]'
					? 'heap'
					: cur.size < 1024
						? 'small'
						: cur.size < 32768
							? 'mid'
							: 'big';
			byKind[k] += kb / 1024;
			top.push([kb, cur.size, cur.name]);
		}
	}
	top.sort((x, y) => y[0] - x[0]);
	const f = (x) => x.toFixed(1);
	return (
		`anon: [heap] ${f(byKind.heap)} <1M ${f(byKind.small)} <32M ${f(byKind.mid)} >=32M ${f(byKind.big)}; top ` +
		top
			.slice(0, 6)
			.map(([kb, size, name]) => `${f(kb / 1024)}/${f(size / 1024)}${name === 'anon' ? '' : name}`)
			.join(' ')
	);
}

process.on('SIGUSR2', () => {
	const m = process.memoryUsage();
	const spaces = Object.fromEntries(
		v8.getHeapSpaceStatistics().map((s) => [s.space_name.replace('_space', ''), s])
	);
	const sp = (n) => `${mb(spaces[n].space_size)}/${mb(spaces[n].space_used_size)}`;
	const smaps = readFileSync('/proc/self/smaps_rollup', 'utf8');
	const field = (f) => Number(new RegExp(`^${f}:\\s+(\\d+)`, 'm').exec(smaps)?.[1] ?? 0) / 1024;
	const line =
		`heap ${mb(m.heapTotal)}/${mb(m.heapUsed)} (new ${sp('new')}, old ${sp('old')}, code ${sp('code')}, lo ${sp('large_object')})` +
		` ext ${mb(m.external)} ab ${mb(m.arrayBuffers)} anon ${field('Anonymous').toFixed(1)} file ${(field('Rss') - field('Anonymous')).toFixed(1)}` +
		` | gc minor ${gcs.minor} major ${gcs.major} [${gcs.majorFlags.join(',')}] ${gcs.ms.toFixed(0)} ms` +
		` | max ab ${mb(Math.max(maxAb, m.arrayBuffers))} rss ${mb(Math.max(maxRss, m.rss))}` +
		` | ${anonMaps()}`;
	gcs = fresh();
	maxAb = maxRss = 0;
	if (process.env.KITH_MEM_REPORT) writeFileSync(process.env.KITH_MEM_REPORT, line + '\n');
});
