/**
 * Automerge, loaded lazily: the dynamic import keeps it (and ~1.5 MB of wasm)
 * out of the app's first chunk (DESIGN: keep Automerge off the critical path
 * where it can be).
 *
 * In a browser build the wasm is its own file (a hashed asset the service
 * worker precaches), handed to `initializeWasm` as a fetch: the browser
 * compiles it while it streams in and keeps the compiled code in its cache,
 * so a later start skips most of the compile, and no 3.6 MB base64 string is
 * parsed and decoded on the main thread. Elsewhere (Node: the peer, the
 * tests) it comes from the slim build's base64 module, decoded here with a
 * table decoder (`initializeBase64Wasm`'s `Uint8Array.from(atob(s), mapFn)`
 * spends ~1.5 s of main thread on it; this takes ~0.15 s).
 */
import { base64 } from '@scure/base';

export type AutomergeModule = typeof import('@automerge/automerge/slim');

let loading: Promise<AutomergeModule> | undefined;

async function wasmSource(): Promise<string | Uint8Array> {
	// A Vite client build (the app, its workers, the benchmark page) makes this
	// `false === false` and drops the Node branch; in Node (no Vite, or Vitest's
	// server side) it is not false.
	if (import.meta.env?.SSR === false) {
		const { default: url } = await import('@automerge/automerge/automerge.wasm?url');
		return url;
	}
	const { automergeWasmBase64 } = await import('@automerge/automerge/automerge.wasm.base64');
	return base64.decode(automergeWasmBase64);
}

export function loadAutomerge(): Promise<AutomergeModule> {
	loading ??= (async () => {
		const [automerge, wasm] = await Promise.all([
			import('@automerge/automerge/slim'),
			wasmSource()
		]);
		if (!automerge.isWasmInitialized()) await automerge.initializeWasm(wasm);
		return automerge;
	})();
	return loading;
}
