/**
 * A static file server for the built benchmark page, on a loopback port:
 * sirv (the server's own static handler) over `root`, everything else 404.
 */
import { createServer, type Server } from 'node:http';
import sirv from 'sirv';

export interface StaticServer {
	url: string;
	close(): Promise<void>;
}

export async function serveStatic(root: string): Promise<StaticServer> {
	// dev: re-read files on each request (the bundle is rebuilt before each run).
	const files = sirv(root, { dev: true });
	const server: Server = createServer((req, res) => {
		// Cross-origin isolated pages get the fine clock (performance.now() in
		// 5 µs steps, not 100 µs): the latency benchmark times sub-millisecond parts.
		res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
		res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
		files(req, res, () => {
			res.writeHead(404).end();
		});
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
