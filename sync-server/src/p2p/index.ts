/**
 * The Kith server's libp2p node (docs/protocol.md, "P2P sync": "The server's
 * node"): a WebSockets listener on its own port, noise, yamux, identify, a
 * circuit relay v2 server (browsers reserve a slot on it and signal WebRTC
 * through it) with limits raised well past js-libp2p's 2 minutes and
 * 128 KiB, and `/kith/meet/1.0.0` (./meet.ts) where browsers that share a
 * conversation find each other under tags the server cannot read.
 *
 *   GET /p2p/info   {peerId, port, addrs}: how a browser reaches the node
 *                   (`addrs` only when KITH_P2P_ANNOUNCE is set; otherwise it
 *                   dials the page's own host on `port`)
 *
 * The node holds no room and syncs nothing itself. It is optional
 * (`KITH_P2P=off`), starts on the first `/p2p/info` (a server no browser
 * asks never loads libp2p: tens of MiB a relay-only deployment does not
 * pay), and a node that fails to start leaves the rest of the server
 * running (`/p2p/info` answers 503 and the next request tries again).
 */
import type { Config } from '../config.ts';
import { silentLogger, type Logger } from '../log.ts';
import type { KithServer } from '../server.ts';
import { loadP2PConfig, type P2PConfig } from './config.ts';
import type { ServerP2P } from './node.ts';

export { loadP2PConfig, P2P_DEFAULTS, type P2PConfig } from './config.ts';
export type { ServerP2P } from './node.ts';

export interface P2POptions {
	logger?: Logger;
	/** Settings; read from the environment when absent. */
	p2p?: P2PConfig;
}

/** The server's node, started on first use. */
export interface P2PHandle {
	/** Starts the node once (a failed start is tried again on the next call). */
	start(): Promise<ServerP2P>;
	/** Whether it has started. */
	readonly started: boolean;
}

/** Serve `/p2p/info`, starting the node on the first request; null when KITH_P2P=off. */
export function attachP2P(
	server: KithServer,
	config: Config,
	options: P2POptions = {}
): P2PHandle | null {
	const log = (options.logger ?? silentLogger).child({ component: 'p2p' });
	const p2p = options.p2p ?? loadP2PConfig();
	if (!p2p.enabled) {
		// Said plainly, so a browser does not read the app's page as the node's info.
		server.addRoute({
			methods: ['GET'],
			path: '/p2p/info',
			handler: (_req, res) => {
				res.writeHead(404, {
					'Content-Type': 'text/plain; charset=utf-8',
					'Cache-Control': 'no-store'
				});
				res.end(
					'Peer-to-peer is off on this server (KITH_P2P=off); sync goes through the relay.\n'
				);
			}
		});
		return null;
	}
	let running: Promise<ServerP2P> | null = null;
	let node: ServerP2P | null = null;
	let closed = false;
	const handle: P2PHandle = {
		get started() {
			return node !== null;
		},
		start() {
			if (closed) return Promise.reject(new Error('the server is closing'));
			running ??= import('./node.ts')
				.then(({ startServerNode }) => startServerNode(config, p2p, log))
				.then((started) => {
					node = started;
					return started;
				})
				.catch((err: unknown) => {
					running = null;
					log.error('the libp2p node did not start; browsers sync via the relay only', { err });
					throw err;
				});
			return running;
		}
	};
	server.addRoute({
		methods: ['GET'],
		path: '/p2p/info',
		handler: (_req, res) => {
			handle.start().then(
				(started) => {
					res.writeHead(200, {
						'Content-Type': 'application/json',
						'Cache-Control': 'no-store'
					});
					res.end(started.info);
				},
				() => {
					res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8' });
					res.end('The peer-to-peer node is not available; sync goes through the relay.\n');
				}
			);
		}
	});
	server.onClose(async () => {
		closed = true;
		const started = await running?.catch(() => null);
		if (started) {
			started.meet.stop();
			await started.node.stop();
		}
	});
	return handle;
}
