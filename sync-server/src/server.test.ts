import { readFileSync } from 'node:fs';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { Agent, get, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULTS, type Config } from './config.ts';
import { createLogger } from './log.ts';
import { createServer, SECURITY_HEADERS, type KithServer } from './server.ts';
import {
	ENTRY_JS,
	ENTRY_PATH,
	INDEX_HTML,
	fakeBuild,
	rawRequest,
	removeTempDirs,
	statusOf,
	tempDir
} from './test-helpers.ts';

const packageVersion = (
	JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
		version: string;
	}
).version;

const running: KithServer[] = [];

afterEach(async () => {
	await Promise.all(running.splice(0).map((s) => s.close()));
	await removeTempDirs();
});

async function start(staticDir: string, overrides: Partial<Config> = {}) {
	const lines: Array<Record<string, unknown>> = [];
	const logger = createLogger({
		level: 'debug',
		write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>)
	});
	const config: Config = {
		...DEFAULTS,
		host: '127.0.0.1',
		port: 0,
		dataDir: await tempDir('kith-data-'),
		staticDir,
		shutdownTimeoutMs: 10_000,
		logLevel: 'debug',
		...overrides
	};
	const server = createServer(config, { logger });
	running.push(server);
	return { server, lines, config, listen: () => server.listen() };
}

async function started(staticDir: string, overrides: Partial<Config> = {}) {
	const s = await start(staticDir, overrides);
	const { port, url } = await s.listen();
	return { ...s, port, base: url };
}

async function expectHealthy(base: string) {
	const res = await fetch(`${base}/healthz`);
	expect(res.status).toBe(200);
	expect(((await res.json()) as { status: string }).status).toBe('ok');
}

describe('healthz', () => {
	it('reports status, version and uptime as JSON', async () => {
		const { base } = await started(await fakeBuild());
		const res = await fetch(`${base}/healthz`);
		expect(res.status).toBe(200);
		expect(res.headers.get('content-type')).toMatch(/^application\/json/);
		expect(res.headers.get('cache-control')).toBe('no-store');
		const body = (await res.json()) as Record<string, unknown>;
		expect(body).toEqual({ status: 'ok', version: packageVersion, uptimeSeconds: 0 });
	});

	it('answers HEAD and refuses other methods with 405', async () => {
		const { base } = await started(await fakeBuild());
		expect((await fetch(`${base}/healthz`, { method: 'HEAD' })).status).toBe(200);
		const post = await fetch(`${base}/healthz`, { method: 'POST', body: 'x' });
		expect(post.status).toBe(405);
		expect(post.headers.get('allow')).toBe('GET, HEAD');
	});
});

describe('web app', () => {
	it('serves index.html at / with no-cache and security headers', async () => {
		const { base } = await started(await fakeBuild());
		const res = await fetch(`${base}/`);
		expect(res.status).toBe(200);
		expect(res.headers.get('content-type')).toMatch(/^text\/html/);
		expect(res.headers.get('cache-control')).toBe('no-cache');
		for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
			expect(res.headers.get(name)).toBe(value);
		}
		expect(await res.text()).toBe(INDEX_HTML);
	});

	it('serves hashed assets as immutable, and revalidates by ETag', async () => {
		const { base } = await started(await fakeBuild());
		const res = await fetch(`${base}${ENTRY_PATH}`);
		expect(res.status).toBe(200);
		expect(res.headers.get('content-type')).toMatch(/javascript/);
		expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
		expect(await res.text()).toBe(ENTRY_JS);

		const etag = res.headers.get('etag');
		expect(etag).toBeTruthy();
		const again = await fetch(`${base}${ENTRY_PATH}`, { headers: { 'if-none-match': etag! } });
		expect(again.status).toBe(304);
		expect(again.headers.get('x-content-type-options')).toBe('nosniff');
	});

	it('serves other files with no-cache', async () => {
		const { base } = await started(await fakeBuild());
		const res = await fetch(`${base}/robots.txt`);
		expect(res.status).toBe(200);
		expect(res.headers.get('cache-control')).toBe('no-cache');
		expect(await res.text()).toContain('User-agent');
	});

	it('falls back to index.html for client-side routes', async () => {
		const { base } = await started(await fakeBuild());
		for (const path of ['/c/abc', '/c/abc?x=1', '/settings/devices/', '/join']) {
			const res = await fetch(`${base}${path}`);
			expect(res.status, path).toBe(200);
			expect(res.headers.get('cache-control'), path).toBe('no-cache');
			expect(await res.text(), path).toBe(INDEX_HTML);
		}
	});

	it('answers 404, not the shell, for missing files', async () => {
		const { base } = await started(await fakeBuild());
		for (const path of ['/missing.js', '/_app/immutable/nope', '/.well-known/thing', '/a/b.css']) {
			const res = await fetch(`${base}${path}`);
			expect(res.status, path).toBe(404);
			expect(res.headers.get('content-type'), path).toMatch(/^text\/plain/);
		}
	});

	it('refuses writes to the app with 405', async () => {
		const { base } = await started(await fakeBuild());
		const res = await fetch(`${base}/c/abc`, { method: 'PUT', body: 'x' });
		expect(res.status).toBe(405);
		expect(res.headers.get('allow')).toBe('GET, HEAD');
	});

	it('answers 503 with a fix while there is no build, and serves the build once it exists', async () => {
		const dir = await tempDir('kith-nobuild-');
		const { base, lines } = await started(join(dir, 'build'));
		expect(lines.some((l) => l.level === 'warn' && String(l.msg).includes('not built'))).toBe(true);

		const res = await fetch(`${base}/`);
		expect(res.status).toBe(503);
		expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
		expect(await res.text()).toContain('npm run build');
		expect((await fetch(`${base}/c/abc`)).status).toBe(503);
		await expectHealthy(base);

		// Building while the server runs needs no restart.
		await mkdir(join(dir, 'build'));
		await writeFile(join(dir, 'build', 'index.html'), INDEX_HTML);
		const after = await fetch(`${base}/`);
		expect(after.status).toBe(200);
		expect(await after.text()).toBe(INDEX_HTML);
	});

	it('picks up a rebuild without a restart', async () => {
		const build = await fakeBuild();
		const { base } = await started(build);
		expect(await (await fetch(`${base}/`)).text()).toBe(INDEX_HTML);

		const next = '<!doctype html><title>Kith</title><p>release two, a little longer</p>\n';
		await writeFile(join(build, 'index.html'), next);
		await writeFile(join(build, 'added.txt'), 'new file\n');
		const later = new Date(Date.now() + 5000);
		await utimes(join(build, 'index.html'), later, later);

		expect(await (await fetch(`${base}/c/x`)).text()).toBe(next);
		expect(await (await fetch(`${base}/added.txt`)).text()).toBe('new file\n');
	});
});

describe('bad requests', () => {
	it('survives malformed URLs, traversal attempts and odd request targets', async () => {
		const { base, port } = await started(await fakeBuild());
		const requests = [
			'GET /%E0%A4%A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
			'GET /%ZZ%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
			'GET /..%2f..%2f..%2fetc%2fpasswd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
			'GET /../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
			'GET //etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
			'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
			'GET javascript:alert(1) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
		];
		for (const request of requests) {
			const response = await rawRequest(port, request);
			const status = statusOf(response);
			expect([200, 400, 404], request).toContain(status);
			expect(response, request).not.toContain('root:');
		}
		await expectHealthy(base);
	});

	it('accepts an absolute-form request target', async () => {
		const { port } = await started(await fakeBuild());
		const response = await rawRequest(
			port,
			'GET http://kith.example/healthz HTTP/1.1\r\nHost: kith.example\r\nConnection: close\r\n\r\n'
		);
		expect(statusOf(response)).toBe(200);
		expect(response).toContain('"status":"ok"');
	});

	it('answers oversized headers with 431 and garbage with 400', async () => {
		const { base, port } = await started(await fakeBuild());
		const huge = `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`;
		expect(statusOf(await rawRequest(port, huge))).toBe(431);

		const garbage = Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0d, 0x0a, 0x0d, 0x0a]);
		expect(statusOf(await rawRequest(port, garbage))).toBe(400);
		expect(statusOf(await rawRequest(port, 'HELLO THERE\r\n\r\n'))).toBe(400);
		expect(statusOf(await rawRequest(port, 'GET / HTTP/1.1\r\nContent-Length: -5\r\n\r\n'))).toBe(
			400
		);
		await expectHealthy(base);
	});

	it('ignores malformed Range headers instead of failing mid-response', async () => {
		const { base } = await started(await fakeBuild());
		for (const range of ['bytes=5-2', 'bytes=abc', 'bytes=-', 'bytes=0-1,4-5', 'items=0-1']) {
			const res = await fetch(`${base}${ENTRY_PATH}`, { headers: { range } });
			expect(res.status, range).toBe(200);
			expect(await res.text(), range).toBe(ENTRY_JS);
		}
		const partial = await fetch(`${base}${ENTRY_PATH}`, { headers: { range: 'bytes=0-6' } });
		expect(partial.status).toBe(206);
		expect(await partial.text()).toBe(ENTRY_JS.slice(0, 7));
		await expectHealthy(base);
	});

	it('turns a failing route into a logged 500 and keeps serving', async () => {
		const { server, lines, listen } = await start(await fakeBuild());
		server.addRoute({
			methods: ['GET'],
			path: '/boom',
			handler: () => {
				throw new Error('sync failure');
			}
		});
		server.addRoute({
			methods: ['GET'],
			path: '/boom-async',
			handler: async () => {
				await Promise.resolve();
				throw new Error('async failure');
			}
		});
		const { url: base } = await listen();
		expect((await fetch(`${base}/boom?secret=1`)).status).toBe(500);
		expect((await fetch(`${base}/boom-async`)).status).toBe(500);
		const errors = lines.filter((l) => l.msg === 'request handler failed');
		expect(errors).toHaveLength(2);
		expect(errors[0]?.path).toBe('/boom');
		expect(JSON.stringify(errors)).not.toContain('secret=1');
		await expectHealthy(base);
	});
});

describe('extension points', () => {
	it('routes extra paths, by prefix too, without shadowing /healthz', async () => {
		const { server, listen } = await start(await fakeBuild());
		server.addRoute({
			methods: ['GET', 'POST'],
			path: '/media/',
			prefix: true,
			handler: (req, res, target) => {
				res.end(`${req.method} ${target.pathname} ${target.search}`);
			}
		});
		server.addRoute({
			methods: ['GET'],
			path: '/healthz',
			handler: (_req, res) => {
				res.end('shadowed');
			}
		});
		const { url: base } = await listen();
		expect(await (await fetch(`${base}/media/abc?x=1`)).text()).toBe('GET /media/abc ?x=1');
		expect(await (await fetch(`${base}/media/abc`, { method: 'POST' })).text()).toBe(
			'POST /media/abc '
		);
		await expectHealthy(base);
	});

	it('hands upgrades to their handler and refuses unclaimed ones', async () => {
		const { server, listen } = await start(await fakeBuild());
		server.addUpgradeHandler({
			path: '/sync',
			handler: (_req, socket) => {
				socket.end(
					'HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\nhi'
				);
			}
		});
		const { port } = await listen();
		const upgrade = (path: string) =>
			`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`;
		const ok = await rawRequest(port, upgrade('/sync'));
		expect(statusOf(ok)).toBe(101);
		expect(ok.endsWith('hi')).toBe(true);
		expect(statusOf(await rawRequest(port, upgrade('/elsewhere')))).toBe(404);
	});

	it('reports a port in use clearly', async () => {
		const { port } = await started(await fakeBuild());
		const second = await start(await fakeBuild(), { port });
		await expect(second.listen()).rejects.toThrow(/already in use/);
	});
});

describe('shutdown', () => {
	it('finishes in-flight requests, closes idle keep-alive connections, runs close hooks', async () => {
		const { server, listen } = await start(await fakeBuild());
		let release!: () => void;
		const gate = new Promise<void>((resolve) => (release = resolve));
		server.addRoute({
			methods: ['GET'],
			path: '/slow',
			handler: async (_req, res) => {
				await gate;
				res.end('done');
			}
		});
		let hookRan = false;
		server.onClose(() => {
			hookRan = true;
		});
		const { url: base, port } = await listen();

		// An idle keep-alive connection must not hold the shutdown up.
		const agent = new Agent({ keepAlive: true });
		const idle = await new Promise<IncomingMessage>((resolve) =>
			get(`${base}/healthz`, { agent }, resolve)
		);
		idle.resume();
		await new Promise((resolve) => idle.on('end', resolve));

		const slow = fetch(`${base}/slow`);
		await new Promise((resolve) => setTimeout(resolve, 100));

		const t0 = Date.now();
		const closed = server.close();
		expect(server.closing).toBe(true);
		expect(hookRan).toBe(true);
		let done = false;
		void closed.then(() => (done = true));
		await new Promise((resolve) => setTimeout(resolve, 200));
		expect(done).toBe(false); // still waiting for /slow

		release();
		const res = await slow;
		expect(res.status).toBe(200);
		expect(res.headers.get('connection')).not.toBe('keep-alive');
		expect(await res.text()).toBe('done');
		await closed;
		// Well under the 10 s timeout: the idle connection did not hold the shutdown up.
		expect(Date.now() - t0).toBeLessThan(5000);
		agent.destroy();

		await expect(rawRequest(port, 'GET /healthz HTTP/1.1\r\n\r\n')).rejects.toThrow();
	});

	it('cuts requests that outlive the timeout', async () => {
		const { server, listen } = await start(await fakeBuild(), { shutdownTimeoutMs: 300 });
		server.addRoute({ methods: ['GET'], path: '/never', handler: () => new Promise(() => {}) });
		const { url: base } = await listen();
		const stuck = fetch(`${base}/never`).then(
			() => 'answered',
			() => 'cut'
		);
		await new Promise((resolve) => setTimeout(resolve, 100));
		const t0 = Date.now();
		await server.close();
		expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
		expect(Date.now() - t0).toBeLessThan(2000);
		expect(await stuck).toBe('cut');
	});
});
