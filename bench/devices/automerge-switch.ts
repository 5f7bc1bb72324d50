/**
 * Stands in for src/lib/vault/automerge.ts in the devices benchmark's build
 * of the app only (bench/devices/build.config.ts resolves the vault's
 * `./automerge` here; nothing else in the app imports it).
 *
 * - By default it is the real thing: `loadAutomerge` of the app's module,
 *   unchanged, with two probes: one `performance.measure`
 *   ("kith-bench:automerge-load") from the first call to the moment the
 *   module is ready (import of the JS glue, the wasm fetched and compiled as
 *   it streams, instantiate), and the time spent in each Automerge function
 *   the vault calls, summed in `globalThis.__kithBenchAutomerge`.
 * - When the page sets `globalThis.__kithBenchVault` (a page init script of
 *   the benchmark), it returns a plain-JavaScript stand-in instead
 *   (./automerge-stub.ts) holding that vault's content: no Automerge module
 *   is loaded, no wasm compiled, no change decoded. The "without Automerge"
 *   side of benchmark D2.
 */
import { loadAutomerge as loadReal, type AutomergeModule } from '../../src/lib/vault/automerge';
import { stubAutomerge } from './automerge-stub';

export type { AutomergeModule };

/** What the vault calls (src/lib/vault/vault.ts). */
const CALLS = ['init', 'applyChanges', 'change', 'getChanges', 'getHeads', 'view'] as const;

let loading: Promise<AutomergeModule> | undefined;

function timed(module: AutomergeModule): AutomergeModule {
	const stats = { calls: 0, ms: 0 };
	(globalThis as { __kithBenchAutomerge?: typeof stats }).__kithBenchAutomerge = stats;
	const out: Record<string, unknown> = { ...module };
	for (const name of CALLS) {
		const fn = module[name] as (...args: unknown[]) => unknown;
		out[name] = (...args: unknown[]) => {
			const start = performance.now();
			try {
				return fn(...args);
			} finally {
				stats.ms += performance.now() - start;
				stats.calls++;
			}
		};
	}
	return out as AutomergeModule;
}

export function loadAutomerge(): Promise<AutomergeModule> {
	const vault = (globalThis as { __kithBenchVault?: unknown }).__kithBenchVault;
	if (typeof vault === 'string') return Promise.resolve(stubAutomerge<AutomergeModule>(vault));
	loading ??= (async () => {
		const start = performance.now();
		const module = await loadReal();
		performance.measure('kith-bench:automerge-load', { start, end: performance.now() });
		return timed(module);
	})();
	return loading;
}
