/**
 * SHA-256 in WebAssembly (hash-wasm) for the page: about twice as fast as
 * noble's JavaScript on envelope-sized inputs, and a receiver hashes every
 * envelope it checks (rule 3: an entry's key is the hash of its bytes), so a
 * new device bringing in 10,000 envelopes spends ~50 ms less on it. Still
 * synchronous once loaded, as the doc rules need; until it is, `sha256`
 * stays on noble (same digests). Not in the crypto barrel: the relay uses
 * Node's own (sync-server/src/relay/verify.ts) and never loads this.
 */
import { useSyncSha256, type SyncSha256 } from './hash';

let installing: Promise<SyncSha256> | undefined;

/** Loads the WebAssembly SHA-256 once and makes `sha256` use it; resolves with it. */
export function useWasmSha256(): Promise<SyncSha256> {
	installing ??= import('hash-wasm')
		.then(({ createSHA256 }) => createSHA256())
		.then((hasher) => {
			// One hasher, used synchronously from start to digest: nothing interleaves.
			const wasm: SyncSha256 = (bytes) => hasher.init().update(bytes).digest('binary');
			useSyncSha256(wasm);
			return wasm;
		});
	return installing;
}
