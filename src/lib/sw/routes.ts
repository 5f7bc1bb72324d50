/**
 * Which requests the service worker must never answer from a cache: they
 * belong to the server, and a stale or offline answer would lie.
 *
 * - `/healthz`, `/metrics`: the server's own state, now.
 * - `/sync/…`: the relay (its challenge over HTTP, then the WebSocket, which
 *   never passes a service worker anyway).
 * - `/blobs/…`: encrypted media chunks on the relay; their store is IndexedDB.
 * - `/media/…`: answered by the media route (decrypted on the fly), never
 *   cached in plaintext.
 *
 * Everything else that is a navigation gets the app shell: routing happens in
 * the browser, so `/c/<id>` and `/join` open offline like `/`.
 */
export const SERVER_ONLY_PATHS: readonly RegExp[] = [
	/^\/healthz(?:[/?]|$)/,
	/^\/metrics(?:[/?]|$)/,
	/^\/sync(?:[/?]|$)/,
	/^\/blobs(?:[/?]|$)/,
	/^\/media(?:[/?]|$)/
];

/** True when `pathname` (with or without its query) is one of the server's own. */
export function isServerOnly(pathname: string): boolean {
	return SERVER_ONLY_PATHS.some((re) => re.test(pathname));
}
