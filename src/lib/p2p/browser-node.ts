/**
 * The browser's libp2p side (docs/protocol.md, "P2P sync": "Browsers"): a
 * node with WebSockets (to the Kith server's node), a circuit relay v2
 * transport (a reservation on the server's node, so other browsers can reach
 * this one for signalling) and WebRTC, noise, yamux and identify; PeerSync
 * (./peer-sync.ts) on its direct WebRTC connections; and the client of
 * `/kith/meet/1.0.0` (./meet.ts) that finds the browsers sharing a room.
 *
 * Heavy (libp2p, WebRTC): the app imports this module dynamically, only once
 * a leader tab has rooms to sync and the server runs a node.
 */
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2';
import type { Connection, Libp2p } from '@libp2p/interface';
import { webRTC } from '@libp2p/webrtc';
import { webSockets } from '@libp2p/websockets';
import { multiaddr } from '@multiformats/multiaddr';
import type { RoomId } from '../crypto';
import { backoffDelay } from '../sync/backoff';
import type { SyncLogger } from '../sync/relay-connection';
import { FrameStream } from './frame-stream';
import { KITH_MEET_PROTOCOL, MAX_MEET_FRAME_BYTES, meetTag, readMeet, writeRegister } from './meet';
import { createPageNode } from './page-node';
import { PeerSync, type ChunkSource, type P2PRoomStatus, type PeerSyncRoom } from './peer-sync';

/** What `GET /p2p/info` answers. */
export interface ServerNodeInfo {
	peerId: string;
	port: number;
	addrs: string[];
}

export interface BrowserPeersOptions {
	/** The Kith server's origin (the page's own). */
	origin: string;
	logger?: SyncLogger;
	/** A room's peers changed. */
	onStatus?: (roomId: RoomId, status: P2PRoomStatus) => void;
	/** An update from a peer passed the doc rules and was applied (store it). */
	onRemoteApplied?: (roomId: RoomId, update: Uint8Array) => void;
	/** A room's remote awareness states changed (client id → encrypted state). */
	onAwareness?: (roomId: RoomId, states: ReadonlyMap<number, Uint8Array>) => void;
	/** This device's media chunks, served to its peers in each room. */
	chunks?: ChunkSource;
}

const silent: SyncLogger = {
	debug: () => undefined,
	info: () => undefined,
	warn: () => undefined,
	error: () => undefined
};

/** The multiaddr a browser on `origin` dials to reach the server's node. */
export function serverAddress(info: ServerNodeInfo, origin: string): string {
	if (info.addrs.length > 0 && info.addrs[0]) return info.addrs[0];
	const url = new URL(origin);
	const host = url.hostname.replace(/^\[|\]$/g, '');
	const proto = /^\d+\.\d+\.\d+\.\d+$/.test(host) ? 'ip4' : host.includes(':') ? 'ip6' : 'dns';
	const ws = url.protocol === 'https:' ? 'wss' : 'ws';
	return `/${proto}/${host}/tcp/${info.port}/${ws}/p2p/${info.peerId}`;
}

/** Ask the server how to reach its node; null when it runs none. */
export async function fetchServerNode(origin: string): Promise<ServerNodeInfo | null> {
	const response = await fetch(new URL('/p2p/info', origin), { cache: 'no-store' });
	if (!response.ok) return null;
	const body = (await response.json()) as Partial<ServerNodeInfo>;
	if (typeof body.peerId !== 'string' || typeof body.port !== 'number') return null;
	return {
		peerId: body.peerId,
		port: body.port,
		addrs: Array.isArray(body.addrs) ? body.addrs.filter((a) => typeof a === 'string') : []
	};
}

/** True for a connection that is relayed (through the server's node) rather than direct. */
function isRelayed(connection: Connection): boolean {
	const components = connection.remoteAddr.getComponents();
	const circuit = components.some((c) => c.name === 'p2p-circuit');
	const webrtc = components.some((c) => c.name === 'webrtc');
	return connection.limits !== undefined || (circuit && !webrtc);
}

export class BrowserPeers {
	readonly node: Libp2p;
	readonly sync: PeerSync;
	readonly #server: string;
	readonly #serverId: string;
	readonly #log: SyncLogger;
	/** Rooms held → their meet tag. */
	readonly #tags = new Map<RoomId, Uint8Array>();
	/** Peers the server said share a room, with their dial failures. */
	readonly #known = new Map<string, number>();
	readonly #timers = new Set<ReturnType<typeof setTimeout>>();
	#meet: FrameStream | null = null;
	#meetFailures = 0;
	#stopped = false;

	private constructor(
		node: Libp2p,
		sync: PeerSync,
		server: string,
		serverId: string,
		log: SyncLogger
	) {
		this.node = node;
		this.sync = sync;
		this.#server = server;
		this.#serverId = serverId;
		this.#log = log;
	}

	/** Start the node and meet; null when the server runs no libp2p node. */
	static async start(options: BrowserPeersOptions): Promise<BrowserPeers | null> {
		const log = options.logger ?? silent;
		const info = await fetchServerNode(options.origin);
		if (!info) return null;
		const server = serverAddress(info, options.origin);
		// The server's node may be on the LAN or loopback: createPageNode allows those.
		const node = await createPageNode(
			[`${server}/p2p-circuit`, '/webrtc'],
			[webSockets(), webRTC({ rtcConfiguration: { iceServers: [] } }), circuitRelayTransport()]
		);
		const sync = new PeerSync(node, {
			logger: log,
			dialDiscovered: false,
			lanDiscovery: false,
			syncOn: (connection) =>
				connection.remotePeer.toString() !== info.peerId && !isRelayed(connection),
			...(options.onRemoteApplied ? { onRemoteApplied: options.onRemoteApplied } : {}),
			...(options.chunks ? { chunks: options.chunks } : {})
		});
		const peers = new BrowserPeers(node, sync, server, info.peerId, log);
		if (options.onStatus) {
			const onStatus = options.onStatus;
			sync.on('status', ({ roomId, status }) => onStatus(roomId, status));
		}
		if (options.onAwareness) {
			const onAwareness = options.onAwareness;
			sync.on('awareness', ({ roomId, states }) => onAwareness(roomId, states));
		}
		await sync.start();
		node.addEventListener('connection:close', peers.#onConnectionClose);
		void peers.#meetLoop();
		return peers;
	}

	/** Sync a room with the browsers that hold it too. */
	addRoom(room: PeerSyncRoom): void {
		if (this.#tags.has(room.roomId)) return;
		this.#tags.set(room.roomId, meetTag(room.capabilityIkm, room.roomId));
		this.sync.addRoom(room);
		this.#register();
	}

	async removeRoom(roomId: RoomId): Promise<void> {
		if (!this.#tags.delete(roomId)) return;
		this.#register();
		await this.sync.removeRoom(roomId);
	}

	async stop(): Promise<void> {
		this.#stopped = true;
		for (const timer of this.#timers) clearTimeout(timer);
		this.#timers.clear();
		this.node.removeEventListener('connection:close', this.#onConnectionClose);
		this.#meet?.abort(new Error('stopping'));
		await this.sync.stop();
		await this.node.stop();
	}

	// ---- meeting ---------------------------------------------------------------------

	#later(delay: number, task: () => void): void {
		const timer = setTimeout(() => {
			this.#timers.delete(timer);
			if (!this.#stopped) task();
		}, delay);
		this.#timers.add(timer);
	}

	#register(): void {
		const meet = this.#meet;
		if (!meet) return;
		meet.send(writeRegister([...this.#tags.values()])).catch((error: unknown) => {
			this.#log.debug('could not register to meet', { error: describe(error) });
		});
	}

	/** Keep one meet stream open to the server's node; after it ends, open another. */
	async #meetLoop(): Promise<void> {
		while (!this.#stopped) {
			try {
				await this.#waitForReservation();
				const stream = await this.node.dialProtocol(multiaddr(this.#server), KITH_MEET_PROTOCOL);
				const meet = new FrameStream(stream, { maxFrameBytes: MAX_MEET_FRAME_BYTES });
				this.#meet = meet;
				this.#meetFailures = 0;
				this.#register();
				for (;;) {
					const body = await meet.next();
					if (body === null) break;
					const message = readMeet(body);
					if (message.type !== 'peers') throw new Error('the server sent a register frame');
					for (const peer of message.peers) this.#met(peer);
				}
			} catch (error) {
				this.#log.debug('meet stream ended', { error: describe(error) });
			}
			this.#meet = null;
			if (this.#stopped) return;
			const delay = backoffDelay(this.#meetFailures++, { initialMs: 1000, maxMs: 30_000 });
			await new Promise<void>((resolve) => this.#later(delay, resolve));
		}
	}

	/** Wait (a while) until the server's node holds a reservation for us, so peers can reach us. */
	async #waitForReservation(): Promise<void> {
		const has = () =>
			this.node.getMultiaddrs().some((ma) => ma.toString().includes('/p2p-circuit'));
		if (has()) return;
		await new Promise<void>((resolve) => {
			const done = () => {
				this.node.removeEventListener('self:peer:update', check);
				resolve();
			};
			const check = () => {
				if (has()) done();
			};
			this.node.addEventListener('self:peer:update', check);
			this.#later(10_000, done);
		});
	}

	#met(peer: string): void {
		if (peer === this.node.peerId.toString() || peer === this.#serverId) return;
		if (!this.#known.has(peer)) this.#known.set(peer, 0);
		this.#dialSoon(peer, 0);
	}

	#directTo(peer: string): boolean {
		return this.node
			.getConnections()
			.some((c) => c.remotePeer.toString() === peer && c.status === 'open' && !isRelayed(c));
	}

	/** The peer with the smaller id dials; the other waits to be dialed. */
	#dialSoon(peer: string, delay: number): void {
		if (this.node.peerId.toString() > peer) return;
		this.#later(delay, () => {
			if (this.#directTo(peer)) return;
			const address = multiaddr(`${this.#server}/p2p-circuit/webrtc/p2p/${peer}`);
			this.node.dial(address).then(
				() => this.#known.set(peer, 0),
				(error: unknown) => {
					const failures = this.#known.get(peer) ?? 0;
					this.#known.set(peer, failures + 1);
					this.#log.debug('could not reach a peer over WebRTC', { peer, error: describe(error) });
					if (failures < 8) {
						this.#dialSoon(peer, backoffDelay(failures, { initialMs: 1000, maxMs: 30_000 }));
					}
				}
			);
		});
	}

	/** A direct connection to a known peer went: try again (while the server can still signal). */
	readonly #onConnectionClose = (event: CustomEvent<Connection>): void => {
		const peer = event.detail.remotePeer.toString();
		if (!this.#known.has(peer) || isRelayed(event.detail)) return;
		this.#dialSoon(peer, 1000);
	};
}

function describe(error: unknown): string {
	return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
