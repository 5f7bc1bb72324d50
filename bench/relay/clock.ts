/**
 * One clock for every thread of the load generator: CLOCK_MONOTONIC through
 * `process.hrtime`, in ms. (`performance.now()` has a different origin in
 * each worker thread.)
 */
export function nowMs(): number {
	const [s, ns] = process.hrtime();
	return s * 1e3 + ns / 1e6;
}

/** Latency histogram: 0.05 ms buckets up to 5 s, then one overflow bucket. */
export const BUCKET_MS = 0.05;
export const BUCKETS = 100_000;

export function bucketOf(ms: number): number {
	const b = Math.floor(ms / BUCKET_MS);
	return b < 0 ? 0 : b >= BUCKETS ? BUCKETS : b;
}

/** Percentile (nearest rank, p in 0–100) of a histogram, in ms; overflow counts as Infinity. */
export function histogramPercentile(hist: Uint32Array, total: number, p: number): number {
	if (total === 0) return Number.NaN;
	const rank = Math.max(1, Math.ceil((p / 100) * total));
	let seen = 0;
	for (let b = 0; b < hist.length; b++) {
		seen += hist[b]!;
		if (seen >= rank) return b >= BUCKETS ? Number.POSITIVE_INFINITY : (b + 1) * BUCKET_MS;
	}
	return Number.POSITIVE_INFINITY;
}
