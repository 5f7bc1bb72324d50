/**
 * Serves the built single-page app (`npm run build` → `build/`).
 *
 * - Hashed assets under `/_app/immutable/` never change, so browsers may keep
 *   them for a year. Everything else (index.html, the service worker, the
 *   manifest, icons) is `no-cache`: always revalidated by ETag, so a new
 *   release is picked up on the next load.
 * - A path that is not a file and does not look like one (`/c/abc`) gets
 *   index.html: routing happens in the browser. A missing `/foo.js` is a 404,
 *   not HTML, so a stale client sees a clear failure instead of a parse error.
 * - Without a build the server still runs (the relay and `/healthz` do not
 *   need one) and pages answer 503 with what the operator should do.
 *
 * sirv indexes the directory once. A rebuild while the server runs rewrites
 * index.html, so its mtime is checked on each request and the index rebuilt
 * when it changed; while a build is half-written (no index.html yet) pages
 * answer 503 rather than half of an old release.
 */
import { statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import sirv from 'sirv';
import type { Logger } from './log.ts';

type Handler = ReturnType<typeof sirv>;

const IMMUTABLE = 'public, max-age=31536000, immutable';
const REVALIDATE = 'no-cache';

export const NOT_BUILT_MESSAGE =
	'Kith is running, but its web app has not been built yet.\n' +
	'Run `npm run build` in the Kith directory (or set KITH_STATIC to a built app), then reload.\n';

export class StaticSite {
	readonly dir: string;
	readonly #log: Logger;
	#handler: Handler | undefined;
	#indexMtimeMs = -1;

	constructor(dir: string, log: Logger) {
		this.dir = dir;
		this.#log = log;
	}

	/** True when the directory holds an index.html (checked now). */
	isBuilt(): boolean {
		return this.#current() !== undefined;
	}

	/** Answers a GET or HEAD for `pathname` (already split from the query). */
	handle(req: IncomingMessage, res: ServerResponse, pathname: string): void {
		const handler = this.#current();
		if (!handler) {
			sendText(res, 503, NOT_BUILT_MESSAGE, { 'Retry-After': '10' });
			return;
		}
		res.setHeader(
			'Cache-Control',
			pathname.startsWith('/_app/immutable/') ? IMMUTABLE : REVALIDATE
		);
		sanitizeRange(req);
		handler(req, res, () => {
			if (!looksLikeRoute(pathname)) {
				sendText(res, 404, 'Not found\n');
				return;
			}
			// Serve the shell under the original address; the router takes it from there.
			res.setHeader('Cache-Control', REVALIDATE);
			req.url = '/index.html';
			handler(req, res, () => sendText(res, 404, 'Not found\n'));
		});
	}

	#current(): Handler | undefined {
		let mtimeMs: number;
		try {
			mtimeMs = statSync(join(this.dir, 'index.html')).mtimeMs;
		} catch {
			if (this.#handler) this.#log.warn('web app build disappeared', { dir: this.dir });
			this.#handler = undefined;
			this.#indexMtimeMs = -1;
			return undefined;
		}
		if (!this.#handler || mtimeMs !== this.#indexMtimeMs) {
			this.#handler = sirv(this.dir, {
				dev: false,
				etag: true,
				gzip: true,
				brotli: true,
				dotfiles: false,
				extensions: ['html']
			});
			if (this.#indexMtimeMs !== -1) this.#log.info('web app build changed', { dir: this.dir });
			this.#indexMtimeMs = mtimeMs;
		}
		return this.#handler;
	}
}

/** `/c/abc` is a route; `/app.js`, `/_app/...` and `/.well-known/...` are files. */
function looksLikeRoute(pathname: string): boolean {
	if (pathname.startsWith('/_app/') || pathname.startsWith('/.well-known/')) return false;
	const last = pathname.slice(pathname.lastIndexOf('/') + 1);
	return !/\.[A-Za-z0-9]+$/.test(last);
}

/**
 * sirv trusts the Range header: `bytes=5-2` makes it throw after writing a 206
 * head. Anything but one well-formed `bytes=a-b` range is dropped, which HTTP
 * allows (the client gets the whole file with 200).
 */
function sanitizeRange(req: IncomingMessage): void {
	const range = req.headers.range;
	if (range === undefined) return;
	const m = /^bytes=(\d{1,15})-(\d{0,15})$/.exec(range.trim());
	if (!m || (m[2] !== '' && Number(m[2]) < Number(m[1]))) delete req.headers.range;
}

export function sendText(
	res: ServerResponse,
	status: number,
	text: string,
	headers: Record<string, string> = {}
): void {
	const body = Buffer.from(text, 'utf8');
	res.writeHead(status, {
		'Content-Type': 'text/plain; charset=utf-8',
		'Content-Length': body.byteLength,
		'Cache-Control': 'no-store',
		...headers
	});
	res.end(body);
}
