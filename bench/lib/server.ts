/**
 * A tiny static file server for the built benchmark page, on a loopback
 * port. Serves only files below `root`; everything else is 404.
 */
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';

const TYPES: Record<string, string> = {
	'.html': 'text/html; charset=utf-8',
	'.js': 'text/javascript; charset=utf-8',
	'.css': 'text/css; charset=utf-8',
	'.map': 'application/json; charset=utf-8',
	'.json': 'application/json; charset=utf-8',
	'.svg': 'image/svg+xml',
	'.wasm': 'application/wasm'
};

export interface StaticServer {
	url: string;
	close(): Promise<void>;
}

export async function serveStatic(root: string): Promise<StaticServer> {
	const base = normalize(root + sep);
	const server: Server = createServer((req, res) => {
		const path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
		if (path === '/favicon.ico') {
			res.writeHead(204).end();
			return;
		}
		const file = normalize(join(base, path.endsWith('/') ? `${path}index.html` : path));
		if (!file.startsWith(base)) {
			res.writeHead(404).end();
			return;
		}
		readFile(file).then(
			(body) => {
				res.writeHead(200, {
					'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
					'cache-control': 'no-store'
				});
				res.end(body);
			},
			() => res.writeHead(404).end()
		);
	});
	await new Promise<void>((resolve, reject) => {
		server.once('error', reject);
		server.listen(0, '127.0.0.1', () => resolve());
	});
	const address = server.address();
	if (address === null || typeof address === 'string')
		throw new Error('no port for the bench server');
	return {
		url: `http://127.0.0.1:${address.port}/`,
		close: () => new Promise((resolve) => server.close(() => resolve()))
	};
}
