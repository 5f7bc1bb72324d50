/**
 * The composition root: the one place that picks implementations (IndexedDB
 * storage, WebCrypto, WebAssembly SHA-256) and wires them into a KithApp.
 */
import { useWasmSha256 } from '../crypto/wasm-sha256';
import { LocalStore } from '../storage';
import { KithApp } from './kith.svelte';

export function createApp(): KithApp {
	// Envelope ids and the doc rules hash every envelope: WebAssembly's SHA-256
	// once it has loaded (noble's until then, and if it cannot load).
	useWasmSha256().catch((error: unknown) =>
		console.warn('kith: SHA-256 stays in JavaScript:', error)
	);
	// The relay serves the app: same origin.
	const relayUrl = typeof location === 'undefined' ? null : location.origin;
	return new KithApp({ store: new LocalStore(), relayUrl });
}
