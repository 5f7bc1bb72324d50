/**
 * The HTTP side of the Kith server: `/healthz`, the built web app, and the
 * seams the relay plugs into — extra routes (`addRoute`), WebSocket upgrades
 * (`addUpgradeHandler`) and shutdown hooks (`onClose`).
 *
 * Shutdown is graceful: stop accepting, drop idle keep-alive connections,
 * let in-flight requests finish (their connections then close), run the
 * close hooks (the relay says goodbye to its sockets), and after
 * `shutdownTimeoutMs` cut whatever is left.
 *
 * No handler can take the process down: every request runs inside a
 * try/catch that logs and answers 500, malformed requests are answered by
 * the `clientError` handler, and an upgrade nobody claims is refused.
 */
import { readFileSync } from 'node:fs';
import {
	STATUS_CODES,
	createServer as createHttpServer,
	type IncomingMessage,
	type Server,
	type ServerResponse
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Config } from './config.ts';
import { silentLogger, type Logger } from './log.ts';
import { StaticSite, sendText } from './static-site.ts';

/** Where a request is going: the path (still percent-encoded) and query. */
export interface RequestTarget {
	pathname: string;
	search: string;
}

export type RouteHandler = (
	req: IncomingMessage,
	res: ServerResponse,
	target: RequestTarget
) => void | Promise<void>;

export interface Route {
	/** Allowed methods; a GET route also answers HEAD. */
	methods: readonly string[];
	/** Exact path, or with `prefix: true` every path starting with it. */
	path: string;
	prefix?: boolean;
	handler: RouteHandler;
}

/**
 * Claims an upgrade request for `path` (e.g. the relay's `/sync`). The handler
 * owns the socket from then on, including closing it on shutdown (`onClose`).
 */
export interface UpgradeRoute {
	path: string;
	prefix?: boolean;
	handler: (req: IncomingMessage, socket: Duplex, head: Buffer, target: RequestTarget) => void;
}

export interface KithServer {
	/** Starts listening on the configured host and port; resolves with the bound port. */
	listen(): Promise<{ port: number; host: string; url: string }>;
	/** Graceful stop; see the module comment. Idempotent. */
	close(): Promise<void>;
	addRoute(route: Route): void;
	addUpgradeHandler(route: UpgradeRoute): void;
	/** Runs when shutdown begins, alongside the draining of HTTP requests. */
	onClose(hook: () => Promise<void> | void): void;
	/** True from the moment `close()` is called. */
	readonly closing: boolean;
	/** The underlying server, for code that needs `node:http` directly. */
	readonly http: Server;
}

export interface ServerOptions {
	logger?: Logger;
	/** Reported by `/healthz`; the package version by default. */
	version?: string;
}

/** Sent with every HTTP response. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
	'X-Content-Type-Options': 'nosniff',
	'Referrer-Policy': 'no-referrer',
	// Camera and microphone stay available to Kith itself (voice notes, calls
	// later) but not to anything it embeds; the rest it never needs.
	'Permissions-Policy':
		'camera=(self), microphone=(self), geolocation=(), payment=(), usb=(), serial=(), hid=(), ' +
		'midi=(), magnetometer=(), gyroscope=(), accelerometer=()',
	'Cross-Origin-Opener-Policy': 'same-origin',
	'Cross-Origin-Resource-Policy': 'same-origin',
	// The app's CSP comes as a <meta> tag, where frame-ancestors is ignored.
	'Content-Security-Policy': "frame-ancestors 'none'",
	'X-Frame-Options': 'DENY'
};

export class ServerError extends Error {
	static readonly NAME = 'ServerError';
	constructor(message: string, options?: ErrorOptions) {
		super(message, options);
		this.name = ServerError.NAME;
	}
}

export const packageVersion: string = readPackageVersion();

export function createServer(config: Config, options: ServerOptions = {}): KithServer {
	const log = options.logger ?? silentLogger;
	const httpLog = log.child({ component: 'http' });
	const version = options.version ?? packageVersion;
	const startedAt = Date.now();
	const site = new StaticSite(config.staticDir, log.child({ component: 'static' }));
	const routes: Route[] = [];
	const upgrades: UpgradeRoute[] = [];
	const closeHooks: Array<() => Promise<void> | void> = [];

	/** Every open connection, with its number of unfinished requests. */
	const inflight = new Map<Socket, number>();
	const upgraded = new Set<Socket>();
	const responses = new Set<ServerResponse>();
	let closing: Promise<void> | undefined;

	const http = createHttpServer();

	http.on('connection', (socket: Socket) => {
		inflight.set(socket, 0);
		socket.once('close', () => {
			inflight.delete(socket);
			upgraded.delete(socket);
		});
	});

	http.on('request', (req: IncomingMessage, res: ServerResponse) => {
		const socket = req.socket;
		inflight.set(socket, (inflight.get(socket) ?? 0) + 1);
		const started = performance.now();
		const path = pathOnly(req.url);
		responses.add(res);
		res.once('close', () => {
			responses.delete(res);
			const left = (inflight.get(socket) ?? 1) - 1;
			if (inflight.has(socket)) inflight.set(socket, left);
			httpLog.debug('request', {
				method: req.method,
				path,
				status: res.statusCode,
				ms: Math.round(performance.now() - started)
			});
			// While stopping, a connection is closed as soon as it has nothing to do.
			if (closing && left === 0 && !upgraded.has(socket)) endSoon(socket);
		});
		if (closing) res.setHeader('Connection', 'close');
		void handleRequest(req, res);
	});

	async function handleRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
		try {
			for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
			const target = requestTarget(req);
			if (!target) {
				sendText(res, 400, 'Bad request\n');
				return;
			}
			const method = req.method ?? 'GET';
			const route = routes.find((r) => matches(r, target.pathname));
			if (route) {
				const allowed = allowedMethods(route.methods);
				if (!allowed.includes(method)) {
					sendText(res, 405, 'Method not allowed\n', { Allow: allowed.join(', ') });
					return;
				}
				await route.handler(req, res, target);
				return;
			}
			if (method !== 'GET' && method !== 'HEAD') {
				sendText(res, 405, 'Method not allowed\n', { Allow: 'GET, HEAD' });
				return;
			}
			site.handle(req, res, target.pathname);
		} catch (err) {
			httpLog.error('request handler failed', {
				method: req.method,
				path: pathOnly(req.url),
				err
			});
			if (!res.headersSent) sendText(res, 500, 'Internal server error\n');
			else res.destroy();
		}
	}

	http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
		const target = requestTarget(req);
		const route =
			target && !closing ? upgrades.find((u) => matches(u, target.pathname)) : undefined;
		if (!target || !route) {
			refuseUpgrade(socket, closing ? 503 : target ? 404 : 400);
			return;
		}
		upgraded.add(req.socket);
		try {
			route.handler(req, socket, head, target);
		} catch (err) {
			httpLog.error('upgrade handler failed', { path: pathOnly(req.url), err });
			socket.destroy();
		}
	});

	http.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
		// Malformed request line, oversized headers, timeouts, resets: answer if
		// we still can, then drop the connection. Never a crash.
		httpLog.debug('client error', { code: err.code, message: err.message });
		const pending = (socket as { _httpMessage?: ServerResponse })._httpMessage;
		if (err.code === 'ECONNRESET' || !socket.writable || pending?.headersSent) {
			socket.destroy();
			return;
		}
		const status =
			err.code === 'HPE_HEADER_OVERFLOW'
				? 431
				: err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
					? 408
					: 400;
		socket.end(
			`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`
		);
	});

	http.on('error', (err) => httpLog.error('server error', { err }));

	// Built-in routes.
	routes.push({
		methods: ['GET'],
		path: '/healthz',
		handler: (_req, res) => {
			const body = closing
				? { status: 'stopping', version }
				: {
						status: 'ok',
						version,
						uptimeSeconds: Math.floor((Date.now() - startedAt) / 1000)
					};
			const json = JSON.stringify(body);
			res.writeHead(closing ? 503 : 200, {
				'Content-Type': 'application/json; charset=utf-8',
				'Content-Length': Buffer.byteLength(json),
				'Cache-Control': 'no-store'
			});
			res.end(json);
		}
	});

	function refuseUpgrade(socket: Duplex, status: number): void {
		if (socket.writable) {
			socket.end(
				`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`
			);
		}
		socket.destroy();
	}

	async function listen(): Promise<{ port: number; host: string; url: string }> {
		if (http.listening) throw new ServerError('The server is already listening.');
		if (closing) throw new ServerError('The server has been closed.');
		if (!site.isBuilt()) {
			log.warn('web app not built: pages answer 503 until it is', {
				staticDir: config.staticDir,
				fix: 'npm run build'
			});
		}
		await new Promise<void>((resolve, reject) => {
			const onError = (err: NodeJS.ErrnoException) => {
				http.off('listening', onListening);
				reject(listenError(err, config));
			};
			const onListening = () => {
				http.off('error', onError);
				resolve();
			};
			http.once('error', onError);
			http.once('listening', onListening);
			http.listen(config.port, config.host);
		});
		const address = http.address() as AddressInfo;
		const hostInUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
		return {
			port: address.port,
			host: address.address,
			url: `http://${hostInUrl}:${address.port}`
		};
	}

	function close(): Promise<void> {
		closing ??= shutdown();
		return closing;
	}

	async function shutdown(): Promise<void> {
		const serverClosed = new Promise<void>((resolve) => {
			if (!http.listening) resolve();
			else http.close(() => resolve());
		});
		// Idle connections go now; busy ones when their last response is done.
		for (const res of responses) {
			if (!res.headersSent) res.setHeader('Connection', 'close');
		}
		for (const [socket, count] of inflight) {
			if (count === 0 && !upgraded.has(socket)) socket.destroy();
		}
		const hooks = Promise.all(
			closeHooks.map(async (hook) => {
				try {
					await hook();
				} catch (err) {
					log.error('close hook failed', { err });
				}
			})
		);
		let timer: NodeJS.Timeout | undefined;
		const timedOut = new Promise<'timeout'>((resolve) => {
			timer = setTimeout(() => resolve('timeout'), config.shutdownTimeoutMs);
		});
		const outcome = await Promise.race([
			Promise.all([serverClosed, hooks]).then(() => 'drained' as const),
			timedOut
		]);
		clearTimeout(timer);
		if (outcome === 'timeout') {
			log.warn('shutdown timeout reached, closing remaining connections', {
				connections: inflight.size,
				timeoutMs: config.shutdownTimeoutMs
			});
			for (const socket of inflight.keys()) socket.destroy();
			await serverClosed;
		}
	}

	return {
		listen,
		close,
		addRoute: (route) => {
			// Later routes must not shadow the built-in ones.
			routes.push(route);
		},
		addUpgradeHandler: (route) => {
			upgrades.push(route);
		},
		onClose: (hook) => {
			closeHooks.push(hook);
		},
		get closing() {
			return closing !== undefined;
		},
		http
	};
}

/**
 * The path and query of a request. Origin-form (`/a?b`) is the norm; an
 * absolute-form target (`http://host/a`, which HTTP/1.1 servers must accept)
 * is reduced to its path. Anything else (`*`, garbage) is refused.
 */
function requestTarget(req: IncomingMessage): RequestTarget | undefined {
	let raw = req.url ?? '';
	if (!raw.startsWith('/')) {
		try {
			const url = new URL(raw);
			if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
			raw = url.pathname + url.search;
			req.url = raw;
		} catch {
			return undefined;
		}
	}
	const q = raw.indexOf('?');
	return { pathname: q === -1 ? raw : raw.slice(0, q), search: q === -1 ? '' : raw.slice(q) };
}

/** Flushes what is queued for `socket`, then closes it whether or not the peer answers the FIN. */
function endSoon(socket: Socket): void {
	if (socket.destroyed) return;
	socket.end(() => socket.destroy());
}

function matches(route: { path: string; prefix?: boolean }, pathname: string): boolean {
	return route.prefix ? pathname.startsWith(route.path) : pathname === route.path;
}

function allowedMethods(methods: readonly string[]): string[] {
	const out = methods.map((m) => m.toUpperCase());
	if (out.includes('GET') && !out.includes('HEAD')) out.push('HEAD');
	return out;
}

/** The path of a request URL without its query, for logs (queries may carry tokens). */
function pathOnly(url: string | undefined): string {
	if (url === undefined) return '';
	const q = url.indexOf('?');
	return (q === -1 ? url : url.slice(0, q)).slice(0, 200);
}

function listenError(err: NodeJS.ErrnoException, config: Config): Error {
	const where = `${config.host}:${config.port}`;
	if (err.code === 'EADDRINUSE') {
		return new ServerError(
			`Port ${config.port} on ${config.host} is already in use; set PORT to a free port.`,
			{
				cause: err
			}
		);
	}
	if (err.code === 'EACCES') {
		return new ServerError(
			`Not allowed to listen on ${where}; ports below 1024 need privileges — set PORT above 1023.`,
			{ cause: err }
		);
	}
	if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') {
		return new ServerError(`Cannot listen on ${where}: HOST is not an address of this machine.`, {
			cause: err
		});
	}
	return new ServerError(`Cannot listen on ${where}: ${err.message}`, { cause: err });
}

function readPackageVersion(): string {
	try {
		const pkg: unknown = JSON.parse(
			readFileSync(new URL('../../package.json', import.meta.url), 'utf8')
		);
		if (pkg && typeof pkg === 'object' && 'version' in pkg && typeof pkg.version === 'string') {
			return pkg.version;
		}
	} catch {
		// Reported as "unknown" below; a missing version must not stop the server.
	}
	return 'unknown';
}
