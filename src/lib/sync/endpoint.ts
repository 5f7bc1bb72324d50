/** `http(s)://host/prefix` → the URL of `path` under it, in the ws(s) scheme when asked. */
export function relayEndpoint(base: string, path: string, websocket = false): URL {
	const url = new URL(path, base.endsWith('/') ? base : `${base}/`);
	if (websocket) {
		if (url.protocol === 'https:') url.protocol = 'wss:';
		else if (url.protocol === 'http:') url.protocol = 'ws:';
	}
	return url;
}
