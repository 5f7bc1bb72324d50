/**
 * The app's network side: one relay connection per room, held by the
 * leader tab only (DESIGN: one profile, many tabs — one set of
 * connections). Followers see each room's status, what the relay
 * acknowledged and the remote awareness states through the tab channel, and
 * hand their own awareness state to the leader.
 *
 * Awareness (typing) rides every path of a room: the leader sets this
 * device's encrypted state on each (relay, P2P link), and merges the remote
 * states of all of them by awareness client id (./awareness-merge.ts), so a
 * state heard twice shows once and typing shows with the relay gone.
 *
 * Remote updates are committed through the room's DocSession (storage
 * first, then the other tabs), so a message shown from the relay is on this
 * device's disk too.
 */
import { RelayConnection, type ConnectionStatus, type RelayRefusal } from '../sync';
import type { RoomId } from '../crypto';
import type { ChunkId } from '../media/manifest';
import type { PeerReach } from '../media/media.svelte';
import type { ChunkSource } from '../p2p/peer-sync';
import { AwarenessMerge } from './awareness-merge';
import type { DocSession } from './doc-session';
import { LanLink } from './lan-link';
import { P2PLink } from './p2p-link';
import { pathLabel, roomPaths, type PathLabel } from './paths.svelte';
import type { TabCoordinator } from './tabs';

/** How long a room's direct path waits at most for the relay to catch the room up. */
const P2P_AFTER_MS = 3000;

export interface RoomNetListener {
	/** The connection status or the relay's acknowledged state changed. */
	onNet?(status: ConnectionStatus, relayState: ReadonlyMap<number, number>): void;
	/** Remote awareness states changed (remote client id → encrypted state). */
	onAwareness?(states: ReadonlyMap<number, Uint8Array>): void;
}

interface Room {
	session: DocSession;
	ikm: Uint8Array;
	connection: RelayConnection | null;
	status: ConnectionStatus;
	relayState: Map<number, number>;
	awareness: Map<number, Uint8Array>;
	/** Remote awareness of every path (relay, p2p, lan), one entry per client id (leader). */
	remote: AwarenessMerge;
	localAwareness: Uint8Array | null;
	listeners: Set<RoomNetListener>;
	unsubscribe: Array<() => void>;
	/** The direct path to the room's peers: the leader's own, as a follower heard it. */
	peer: PeerLabel;
}

/** A room's direct path: a PathLabel other than the relay's. */
type PeerLabel = Exclude<PathLabel, 'via relay'>;

export interface NetHubOptions {
	tabs: TabCoordinator;
	/** The relay's base URL (same origin as the app), or null for none. */
	relayUrl: string | null;
	/** This device's id, for the relay's push (it pushes only to devices not connected). */
	device?: string;
	onRefused?(room: RoomId, refusal: RelayRefusal): void;
	/** Any room's status changed. */
	onStatusChange?(): void;
	/** A LAN peer (Settings → LAN peers) connected or went. */
	onLanPeers?(): void;
	/** This device's media chunks, served to its peers in each room. */
	chunks?: ChunkSource;
	/** A room's direct path to peers came or went (or changed kind). */
	onPeersChange?(roomId: RoomId): void;
}

export class NetHub {
	readonly #options: NetHubOptions;
	readonly #rooms = new Map<RoomId, Room>();
	#closed = false;
	/** Direct sync with other browsers (leader only; loaded on first use). */
	#p2p: P2PLink | null = null;
	/** `kith serve` peers on the LAN, over WebRTC-Direct (leader only; loaded on first use). */
	readonly #lan: LanLink;

	constructor(options: NetHubOptions) {
		this.#options = options;
		this.#lan = new LanLink({
			onStatus: (id) => {
				const linked = this.#rooms.get(id);
				if (linked) this.#emitNet(linked);
			},
			onConnections: () => this.#options.onLanPeers?.(),
			onAwareness: (id, states) => this.#remoteAwareness(id, 'lan', states),
			...(options.chunks ? { chunks: options.chunks } : {})
		});
		const { tabs } = options;
		tabs.onNet((message) => {
			const room = this.#rooms.get(message.room as RoomId);
			if (!room || room.connection) return;
			room.status = message.status;
			if (room.peer !== message.peer) {
				room.peer = message.peer;
				this.#options.onPeersChange?.(message.room as RoomId);
			}
			for (const [client, clock] of message.relay) {
				if ((room.relayState.get(client) ?? 0) < clock) room.relayState.set(client, clock);
			}
			this.#emitNet(room);
		});
		tabs.onAwareness((message) => {
			const room = this.#rooms.get(message.room as RoomId);
			if (!room || room.connection) return;
			room.awareness = new Map(message.states);
			for (const listener of room.listeners) listener.onAwareness?.(room.awareness);
		});
		tabs.onTyping((roomId, state) => {
			const room = this.#rooms.get(roomId as RoomId);
			if (room && tabs.isLeader) this.#publishLocal(roomId as RoomId, room, state);
		});
		tabs.onNotify((roomId, envelope) => {
			this.#rooms.get(roomId as RoomId)?.connection?.notify(envelope);
		});
		tabs.onAsk(() => {
			for (const [id, room] of this.#rooms) {
				if (!room.connection) continue;
				this.#broadcast(id, room);
				tabs.broadcastAwareness({ room: id, states: [...room.awareness] });
			}
		});
		// Files: other tabs fetch chunks from this one's peers while it leads.
		tabs.setChunkHandler((room, id, reach) =>
			this.fetchChunk(room as RoomId, id, undefined, reach)
		);
		if (!tabs.isLeader) tabs.askForNet();
	}

	/**
	 * Sync a room. `ikm` is the room's key material (its epoch key, or the
	 * account key for the vault): the access capability is derived from it.
	 */
	attach(roomId: RoomId, session: DocSession, ikm: Uint8Array): void {
		if (this.#rooms.has(roomId) || this.#closed) return;
		const room: Room = {
			session,
			ikm,
			connection: null,
			status: this.#options.relayUrl ? 'connecting' : 'offline',
			relayState: new Map(),
			awareness: new Map(),
			remote: new AwarenessMerge(),
			localAwareness: null,
			listeners: new Set(),
			unsubscribe: [],
			peer: ''
		};
		this.#rooms.set(roomId, room);
		if (this.#options.tabs.isLeader) void this.#connect(roomId, room);
		this.#options.onStatusChange?.();
	}

	/** Stop syncing a room (a retired generation). */
	detach(roomId: RoomId): void {
		const room = this.#rooms.get(roomId);
		if (!room) return;
		this.#drop(room);
		room.listeners.clear();
		this.#rooms.delete(roomId);
		this.#p2p?.detach(roomId);
		this.#lan.detach(roomId);
		roomPaths.delete(roomId);
		this.#options.onStatusChange?.();
	}

	/** Stop a room's connection and its subscriptions. */
	#drop(room: Room): void {
		for (const stop of room.unsubscribe) stop();
		room.connection?.destroy();
	}

	/** This tab became the leader: open every connection. */
	async becomeLeader(): Promise<void> {
		for (const [id, room] of this.#rooms) await this.#connect(id, room);
	}

	listen(roomId: RoomId, listener: RoomNetListener): () => void {
		const room = this.#rooms.get(roomId);
		if (!room) return () => undefined;
		room.listeners.add(listener);
		listener.onNet?.(room.status, room.relayState);
		if (room.awareness.size > 0) listener.onAwareness?.(room.awareness);
		return () => room.listeners.delete(listener);
	}

	status(roomId: RoomId): ConnectionStatus | null {
		return this.#rooms.get(roomId)?.status ?? null;
	}

	relayState(roomId: RoomId): ReadonlyMap<number, number> {
		return this.#rooms.get(roomId)?.relayState ?? new Map();
	}

	/** This device's encrypted awareness state in a room (null clears it). */
	setLocalAwareness(roomId: RoomId, state: Uint8Array | null): void {
		const room = this.#rooms.get(roomId);
		if (!room) return;
		room.localAwareness = state;
		if (this.#options.tabs.isLeader) this.#publishLocal(roomId, room, state);
		else this.#options.tabs.sendTyping(roomId, state);
	}

	/** Hand the relay a notification envelope for a room's offline devices (through the leader). */
	notify(roomId: RoomId, envelope: Uint8Array): void {
		const room = this.#rooms.get(roomId);
		if (!room) return;
		if (room.connection) room.connection.notify(envelope);
		else this.#options.tabs.sendNotify(roomId, envelope);
	}

	/**
	 * Whether a room reaches a peer of `reach` directly right now: LAN peers,
	 * other browsers (`far`), or either. Only the leader tab holds peers;
	 * another tab answers from the path the leader told it (which names the
	 * LAN when both are there, so `far` may be a browser or not).
	 */
	hasPeers(roomId: RoomId, reach: PeerReach = 'any'): boolean {
		if (!this.#options.tabs.isLeader) {
			const peer = this.#rooms.get(roomId)?.peer ?? '';
			return reach === 'lan' ? peer === 'LAN peer' : peer !== '';
		}
		const lan = reach !== 'far' && this.#lan.hasPeers(roomId);
		return lan || (reach !== 'lan' && (this.#p2p?.hasPeers(roomId) ?? false));
	}

	/**
	 * A media chunk from a room's peers of `reach` (`any`: LAN peers first,
	 * then other browsers), checked against its id; null when none has it.
	 * Another tab asks the leader, which holds the peers.
	 */
	async fetchChunk(
		roomId: RoomId,
		id: ChunkId,
		signal?: AbortSignal,
		reach: PeerReach = 'any'
	): Promise<Uint8Array | null> {
		const tabs = this.#options.tabs;
		if (!tabs.isLeader) {
			signal?.throwIfAborted();
			return tabs.askChunk(roomId, id, reach);
		}
		if (reach !== 'far') {
			const lan = await this.#lan.fetchChunk(roomId, id, signal);
			if (lan || reach === 'lan') return lan;
		}
		return (await this.#p2p?.fetchChunk(roomId, id, signal)) ?? null;
	}

	/** Try every room's connection now (the user asked, or the network came back). */
	reconnectNow(): void {
		for (const room of this.#rooms.values()) room.connection?.reconnectNow();
	}

	/**
	 * Reach a `kith serve` on the LAN at an address it printed, and keep it.
	 * Rejects with a message for the user. Only the leader tab holds
	 * connections.
	 */
	async connectLanPeer(address: string): Promise<string> {
		if (this.#closed) throw new Error('Kith is shutting down.');
		if (!this.#options.tabs.isLeader) {
			throw new Error(
				'Another Kith tab holds this device’s connections: connect from that tab, or close it.'
			);
		}
		return this.#lan.connect(address);
	}

	/** Keep saved LAN peer addresses (leader only: a new leader is told again). */
	keepLanPeers(addresses: string[]): void {
		if (this.#options.tabs.isLeader) this.#lan.keep(addresses);
	}

	async forgetLanPeer(address: string): Promise<void> {
		await this.#lan.forget(address);
	}

	lanPeerConnected(address: string): boolean {
		return this.#lan.connected(address);
	}

	async #connect(roomId: RoomId, room: Room): Promise<void> {
		this.#lan.attach(roomId, room.session, room.ikm);
		if (room.localAwareness) this.#lan.setLocalAwareness(roomId, room.localAwareness);
		const relayUrl = this.#options.relayUrl;
		if (!relayUrl || room.connection || this.#closed) return;
		// Remote updates apply to the in-memory doc; storage must be writable first.
		await room.session.loaded.catch(() => undefined);
		if (room.connection || this.#closed) return;
		const connection = new RelayConnection({
			relayUrl,
			roomId,
			cdoc: room.session.doc,
			capabilityIkm: room.ikm,
			...(this.#options.device ? { deviceId: this.#options.device } : {}),
			onRemoteApplied: (update) => room.session.commitRemoteUpdate(update)
		});
		room.connection = connection;
		room.unsubscribe.push(
			connection.on('status', ({ status }) => {
				room.status = status;
				this.#emitNet(room);
				this.#broadcast(roomId, room);
			}),
			connection.on('stored', ({ relayState }) => {
				for (const [client, clock] of relayState) room.relayState.set(client, clock);
				this.#emitNet(room);
				this.#broadcast(roomId, room);
			}),
			connection.on('refused', (refusal) => this.#options.onRefused?.(roomId, refusal)),
			connection.on('awareness', ({ states }) => this.#remoteAwareness(roomId, 'relay', states))
		);
		if (room.localAwareness) connection.setLocalState(room.localAwareness);
		room.status = connection.status;
		this.#emitNet(room);
		// The direct path opens once the relay caught the room up (or cannot be
		// reached, or is slow to: P2P_AFTER_MS): a device catching up on a lot
		// spends its first moments on the relay's backlog, not on WebRTC
		// handshakes with peers that would send the same updates again.
		const waits: Array<() => void> = [];
		const stopWaiting = () => {
			clearTimeout(timer);
			for (const stop of waits.splice(0)) stop();
		};
		const startPeers = () => {
			stopWaiting();
			if (this.#closed || this.#rooms.get(roomId) !== room || room.connection !== connection)
				return;
			this.#attachPeers(roomId, room, relayUrl);
		};
		const timer = setTimeout(startPeers, P2P_AFTER_MS);
		waits.push(
			connection.on('synced', startPeers),
			connection.on('status', ({ status }) => {
				if (status === 'offline') startPeers();
			})
		);
		room.unsubscribe.push(stopWaiting);
	}

	#attachPeers(roomId: RoomId, room: Room, relayUrl: string): void {
		this.#p2p ??= new P2PLink({
			origin: relayUrl,
			onStatus: (id) => {
				const linked = this.#rooms.get(id);
				if (linked) this.#emitNet(linked);
			},
			onAwareness: (id, states) => this.#remoteAwareness(id, 'p2p', states),
			...(this.#options.chunks ? { chunks: this.#options.chunks } : {})
		});
		this.#p2p.attach(roomId, room.session, room.ikm);
		if (room.localAwareness) this.#p2p.setLocalAwareness(roomId, room.localAwareness);
	}

	/** This device's encrypted awareness state, on every path of the room (leader). */
	#publishLocal(roomId: RoomId, room: Room, state: Uint8Array | null): void {
		room.connection?.setLocalState(state);
		this.#p2p?.setLocalAwareness(roomId, state);
		this.#lan.setLocalAwareness(roomId, state);
	}

	/**
	 * One path's remote awareness states of a room: merged with the other
	 * paths' by client id, then to the listeners and the follower tabs.
	 */
	#remoteAwareness(
		roomId: RoomId,
		path: 'relay' | 'p2p' | 'lan',
		states: ReadonlyMap<number, Uint8Array>
	): void {
		const room = this.#rooms.get(roomId);
		if (!room || !room.remote.set(path, states)) return;
		room.awareness = new Map(room.remote.states);
		for (const listener of room.listeners) listener.onAwareness?.(room.awareness);
		this.#options.tabs.broadcastAwareness({ room: roomId, states: [...room.awareness] });
	}

	#emitNet(room: Room): void {
		const leader = this.#options.tabs.isLeader;
		for (const [id, held] of this.#rooms) {
			if (held !== room) continue;
			if (leader) {
				const peer = this.#peerLabel(id);
				if (peer !== room.peer) {
					room.peer = peer;
					this.#broadcast(id, room);
					this.#options.onPeersChange?.(id);
				}
			}
			const label = pathLabel(room.status === 'connected', room.peer);
			if (roomPaths.get(id) !== label) roomPaths.set(id, label);
		}
		for (const listener of room.listeners) listener.onNet?.(room.status, room.relayState);
		this.#options.onStatusChange?.();
	}

	/** The leader's direct path to a room's peers. */
	#peerLabel(roomId: RoomId): PeerLabel {
		const label = this.#lan.label(roomId) || (this.#p2p?.label(roomId) ?? '');
		return label === 'direct' || label === 'LAN peer' ? label : '';
	}

	#broadcast(roomId: RoomId, room: Room): void {
		this.#options.tabs.broadcastNet({
			room: roomId,
			status: room.status,
			relay: [...room.relayState],
			peer: room.peer
		});
	}

	close(): void {
		this.#closed = true;
		this.#p2p?.close();
		this.#p2p = null;
		this.#lan.close();
		for (const room of this.#rooms.values()) this.#drop(room);
		this.#rooms.clear();
	}
}
