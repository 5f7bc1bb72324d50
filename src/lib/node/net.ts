/**
 * The Node peer's network: a libp2p node (TCP and WebSockets listeners, mDNS
 * on the LAN: ../p2p/node.ts) running PeerSync for every room the account
 * holds, and, with a relay URL, one RelayConnection per room — the app's
 * relay protocol (../sync). Remote updates are applied to each room's doc by
 * those shared implementations (doc rules enforced there); NodeDoc stores
 * them.
 *
 * Delivery (what `kith send` waits for): an envelope is delivered once the
 * relay acknowledged storing it (the same acknowledgement that shows "Sent"
 * in the app), or once it was written to a sync session with a peer holding
 * the room after that session's initial exchange completed.
 */
import type { Libp2p, PrivateKey } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import type { RoomId } from '../crypto';
import { createKithNode, installNodePolyfills } from '../p2p/node';
import { PeerSync } from '../p2p/peer-sync';
import type { SyncSession } from '../p2p/sync-protocol';
import { RelayConnection, isSentBy, movedTag, reportMoved, type SyncLogger } from '../sync';
import type { NodeDoc } from './doc';
import type { DirectCertificate } from './p2p-identity';

export interface NodeNetOptions {
	relayUrl?: string | null;
	/** libp2p listen addresses (default: TCP and WebSockets on every interface). */
	listen?: string[];
	/**
	 * Listen addresses to start with instead when `listen` cannot be bound
	 * (a port remembered from the last start that another program took since).
	 */
	listenFallback?: string[];
	/** Multiaddrs to dial at start (peers not found by mDNS). */
	peers?: string[];
	mdns?: boolean;
	/** The node's identity and WebRTC-Direct certificate (./p2p-identity.ts); new ones when absent. */
	identity?: { privateKey: PrivateKey; certificate: DirectCertificate };
	deviceId?: string;
	logger?: SyncLogger;
	onRelayRefused?(roomId: RoomId, message: string): void;
}

interface NetRoom {
	doc: NodeDoc;
	ikm: Uint8Array;
	relay: RelayConnection | null;
	sessions: Set<SyncSession>;
	relaySynced: boolean;
}

export class NodeNet {
	readonly #options: NodeNetOptions;
	readonly #rooms = new Map<RoomId, NetRoom>();
	readonly #waiters = new Set<() => void>();
	#node: Libp2p | null = null;
	#sync: PeerSync | null = null;
	#started = false;
	readonly #directDials = new Set<Promise<unknown>>();

	constructor(options: NodeNetOptions) {
		this.#options = options;
	}

	get started(): boolean {
		return this.#started;
	}

	async start(): Promise<void> {
		if (this.#started) return;
		installNodePolyfills();
		const create = (listen: string[] | undefined) =>
			createKithNode({
				...(listen ? { listen } : {}),
				mdns: this.#options.mdns ?? true,
				// WebRTC-Direct when listening on it (serve) or told to dial it (--peer).
				webrtcDirect:
					(listen ?? []).some((a) => a.includes('/webrtc-direct')) ||
					(this.#options.peers ?? []).some((a) => a.includes('/webrtc-direct')),
				...(this.#options.identity
					? {
							privateKey: this.#options.identity.privateKey,
							certificate: this.#options.identity.certificate
						}
					: {})
			});
		let node: Libp2p;
		try {
			node = await create(this.#options.listen);
		} catch (error) {
			const fallback = this.#options.listenFallback;
			if (!fallback || !isAddressInUse(error)) throw error;
			this.#options.logger?.warn('a listen address is taken; listening elsewhere', {
				error: String(error)
			});
			node = await create(fallback);
		}
		this.#node = node;
		const sync = new PeerSync(node, {
			...(this.#options.logger ? { logger: this.#options.logger } : {})
		});
		this.#sync = sync;
		sync.on('session', ({ roomId, session }) => {
			const room = this.#rooms.get(roomId);
			if (!room) return;
			room.sessions.add(session);
			session.on('synced', () => this.#wake());
			void session.closed.then(() => {
				room.sessions.delete(session);
			});
			this.#wake();
		});
		this.#started = true;
		for (const room of this.#rooms.values()) this.#attach(room);
		await sync.start();
		for (const address of this.#options.peers ?? []) {
			const dial = node
				.dial(multiaddr(address))
				.catch((error: unknown) =>
					this.#options.logger?.warn('could not dial a peer', { address, error: String(error) })
				);
			// node-datachannel aborts the process when a WebRTC-Direct dial is cut short: stop waits.
			if (address.includes('/webrtc-direct')) this.#directDials.add(dial);
		}
	}

	/** Listen addresses (with the peer id), for other peers to dial. */
	addresses(): string[] {
		return this.#node?.getMultiaddrs().map((a) => a.toString()) ?? [];
	}

	/**
	 * The WebRTC-Direct addresses a browser on the LAN can dial (Settings →
	 * LAN peers): every interface's but 0.0.0.0, loopback last (a browser on
	 * this same machine only).
	 */
	browserAddresses(): string[] {
		return browserAddresses(this.addresses());
	}

	/** Sync a room (from `start` on): with peers holding it, and with the relay. */
	addRoom(doc: NodeDoc, ikm: Uint8Array): void {
		if (this.#rooms.has(doc.roomId)) return;
		const room: NetRoom = { doc, ikm, relay: null, sessions: new Set(), relaySynced: false };
		this.#rooms.set(doc.roomId, room);
		if (this.#started) this.#attach(room);
	}

	/** Stop syncing a room (a retired generation). */
	removeRoom(roomId: RoomId): void {
		const room = this.#rooms.get(roomId);
		if (!room) return;
		this.#rooms.delete(roomId);
		room.relay?.destroy();
		void this.#sync?.removeRoom(roomId);
	}

	/** Tell the relay this device moved out of a retired generation's room (no relay: nothing). */
	async reportMoved(roomId: RoomId, key: Uint8Array, deviceId: string): Promise<void> {
		const relayUrl = this.#options.relayUrl;
		if (!relayUrl) return;
		await reportMoved(relayUrl, roomId, key, await movedTag(roomId, deviceId));
	}

	#attach(room: NetRoom): void {
		const { doc, ikm } = room;
		this.#sync?.addRoom({ roomId: doc.roomId, cdoc: doc.cdoc, capabilityIkm: ikm });
		const relayUrl = this.#options.relayUrl;
		if (!relayUrl) return;
		const relay = new RelayConnection({
			relayUrl,
			roomId: doc.roomId,
			cdoc: doc.cdoc,
			capabilityIkm: ikm,
			networkEvents: null,
			...(this.#options.deviceId ? { deviceId: this.#options.deviceId } : {}),
			...(this.#options.logger ? { logger: this.#options.logger } : {})
		});
		relay.on('stored', () => this.#wake());
		relay.on('refused', (refusal) => this.#options.onRelayRefused?.(doc.roomId, refusal.message));
		relay.on('synced', () => {
			room.relaySynced = true;
			this.#wake();
		});
		room.relay = relay;
	}

	/** Whether a room has caught up with the relay or with a peer since it was added. */
	roomSynced(roomId: RoomId): boolean {
		const room = this.#rooms.get(roomId);
		if (!room) return false;
		if (room.relaySynced) return true;
		for (const session of room.sessions) if (session.isOpen && session.synced) return true;
		return false;
	}

	/** Peers with an open session for a room. */
	peerCount(roomId: RoomId): number {
		return this.#sync?.status(roomId).peers.length ?? 0;
	}

	/** Whether an envelope of a room reached the relay or a peer (see the module header). */
	delivered(roomId: RoomId, envelope: Uint8Array): boolean {
		const room = this.#rooms.get(roomId);
		if (!room) return false;
		if (room.relay && isSentBy(room.relay.relayState, envelope)) return true;
		for (const session of room.sessions) if (session.isOpen && session.synced) return true;
		return false;
	}

	/** Resolves true once every envelope is delivered, false when `timeoutMs` passes first. */
	waitDelivered(roomId: RoomId, envelopes: Uint8Array[], timeoutMs: number): Promise<boolean> {
		return this.waitFor(() => envelopes.every((e) => this.delivered(roomId, e)), timeoutMs);
	}

	/** Re-checks `test` whenever the network moves (and every 250 ms) until it holds or time runs out. */
	waitFor(test: () => boolean, timeoutMs: number): Promise<boolean> {
		if (test()) return Promise.resolve(true);
		return new Promise((resolve) => {
			const check = () => {
				if (!test()) return;
				done(true);
			};
			const timer = setTimeout(() => done(false), timeoutMs);
			const ticker = setInterval(check, 250);
			const done = (value: boolean) => {
				clearTimeout(timer);
				clearInterval(ticker);
				this.#waiters.delete(check);
				resolve(value);
			};
			this.#waiters.add(check);
		});
	}

	#wake(): void {
		for (const waiter of [...this.#waiters]) waiter();
	}

	async stop(): Promise<void> {
		for (const room of this.#rooms.values()) room.relay?.destroy();
		await this.#sync?.stop();
		await Promise.allSettled([...this.#directDials]);
		try {
			await this.#node?.stop();
		} catch {
			// stopping anyway
		}
	}
}

/** The browser-dialable addresses among `addresses`: WebRTC-Direct with certhash and peer id, loopback last. */
export function browserAddresses(addresses: string[]): string[] {
	const direct = addresses.filter(
		(a) =>
			/^\/ip[46]\/[^/]+\/udp\/\d+\/webrtc-direct\/certhash\/[^/]+\/p2p\/[^/]+$/.test(a) &&
			!a.startsWith('/ip4/0.0.0.0/') &&
			!a.startsWith('/ip6/::/')
	);
	const loopback = (a: string) => a.startsWith('/ip4/127.') || a.startsWith('/ip6/::1/');
	return [...direct.filter((a) => !loopback(a)), ...direct.filter(loopback)];
}

/** Whether starting a node failed because a listen port is taken (TCP, or WebRTC-Direct's UDP mux). */
export function isAddressInUse(error: unknown): boolean {
	return error instanceof Error && /EADDRINUSE|ICE UDP mux|already a listener/.test(error.message);
}
