/**
 * Automerge, loaded lazily. The slim build plus the base64 wasm works the same
 * in browsers, workers and Node without bundler plugins, and the dynamic
 * import keeps ~1.5 MB of wasm out of the app's first chunk (DESIGN: keep
 * Automerge off the critical path where it can be).
 *
 * The wasm is decoded here rather than by `initializeBase64Wasm`, whose
 * `Uint8Array.from(atob(s), mapFn)` spends ~1.5 s of main thread on the 3.6 MB
 * string (measured in headless Chromium here) on every start; a table
 * decoder takes ~0.15 s.
 */
import { base64 } from '@scure/base';

export type AutomergeModule = typeof import('@automerge/automerge/slim');

let loading: Promise<AutomergeModule> | undefined;

export function loadAutomerge(): Promise<AutomergeModule> {
	loading ??= (async () => {
		const [automerge, wasm] = await Promise.all([
			import('@automerge/automerge/slim'),
			import('@automerge/automerge/automerge.wasm.base64')
		]);
		if (!automerge.isWasmInitialized()) {
			await automerge.initializeWasm(base64.decode(wasm.automergeWasmBase64));
		}
		return automerge;
	})();
	return loading;
}
