/**
 * PeerSync keeps /kith/sync sessions (./sync-protocol.ts) open for every room
 * this peer holds with every connected peer that holds it too. It needs only
 * a libp2p node's public API (`handle`, `getConnections`, `dial`, events), so
 * the Node peer (./node.ts) and the browser's node (WebRTC, circuit relay)
 * both run it.
 *
 * Streams: for each connection and each room, both sides open a stream; a
 * peer that does not hold the room refuses (that is fine: nobody learns
 * anything). When both streams of a pair succeed, both sides keep the one
 * dialed by the peer with the smaller id and close the other as `duplicate`.
 * A stream that ends while its connection is still up is opened again after
 * a backoff, unless the peer refused it `unauthorized` (then not before the
 * next connection to that peer). Peers found by discovery (mDNS) are dialed.
 *
 * Media chunks (`fetchChunk`): a room's peers are asked in turn for a chunk,
 * and the first blob that hashes to its id is taken; a peer asked for a
 * chunk answers from its chunk store, or passes the request on one hop to
 * its other peers in the same room (so a `kith serve` with no store of its
 * own carries files between two browsers).
 */
import type { Connection, Libp2p, PeerId, PeerInfo, Stream } from '@libp2p/interface';
import { isPrivateIp } from '@libp2p/utils';
import { Awareness } from 'y-protocols/awareness';
import type { ConversationDoc } from '../conversation';
import { fromBase64Url, type RoomId } from '../crypto';
import { verifyChunk } from '../media/chunks';
import type { ChunkId } from '../media/manifest';
import { backoffDelay } from '../sync/backoff';
import { deriveRoomCapability } from '../sync/capability';
import { Emitter } from '../sync/emitter';
import { awarenessStateOf } from '../sync/messages';
import type { SyncLogger } from '../sync/relay-connection';
import { P2PRefusedError } from './errors';
import { Slots } from './slots';
import { MAX_CHUNK_HOPS } from './wire';
import {
	acceptSyncSession,
	KITH_SYNC_PROTOCOL,
	openSyncSession,
	type SessionOptions,
	type StreamPeers,
	type SyncRoom,
	type SyncSession
} from './sync-protocol';

/**
 * Streams a peer may open before this side's connection is fully set up
 * (libp2p's default is 10, and one more resets the whole connection). A peer
 * with many rooms opens one stream per room as soon as it is connected.
 */
export const MAX_EARLY_STREAMS = 256;

/** Streams per protocol and connection: one per room, so far more than libp2p's default 32. */
const MAX_STREAMS_PER_CONNECTION = 1024;
/**
 * Outbound handshakes running at once, across all peers: keeps a peer with
 * many rooms under the OTHER side's early-stream limit (10 by default in
 * js-libp2p, identify included) and spreads the signing work.
 */
const MAX_OPENING = 6;

export interface PeerSyncRoom {
	roomId: RoomId;
	cdoc: ConversationDoc;
	/** The room's key material (epoch key, or the account key for the vault room). */
	capabilityIkm: Uint8Array;
	/** Shared awareness of the room; one is made (and destroyed with the room) when absent. */
	awareness?: Awareness;
}

/** How a room reaches peers right now: over a LAN (private address or mDNS), directly, or not at all. */
export type P2PPathKind = 'lan' | 'direct' | 'none';

export interface P2PRoomStatus {
	kind: P2PPathKind;
	/** For the UI: "LAN peer", "direct", or "" with no peer. */
	label: string;
	/** Peers with an open session for the room. */
	peers: string[];
}

export interface PeerSyncEvents {
	status: { roomId: RoomId; status: P2PRoomStatus };
	session: { roomId: RoomId; session: SyncSession };
	/** A peer refused a stream we opened (e.g. `unauthorized`: it does not hold the room). */
	refused: { roomId: RoomId; peer: string; reason: string };
	/**
	 * The room's remote awareness states changed (client id → encrypted
	 * state, this device's own excluded); empty once the room is removed.
	 */
	awareness: { roomId: RoomId; states: ReadonlyMap<number, Uint8Array> };
}

export interface PeerSyncOptions {
	logger?: SyncLogger;
	/** Dial peers found by discovery (mDNS). Default true. */
	dialDiscovered?: boolean;
	/**
	 * Count a discovered peer as on the LAN (default true: the Node peer's only
	 * discovery is mDNS). A browser says false: libp2p reports every peer it
	 * learns of (identify, the relay) as discovered too.
	 */
	lanDiscovery?: boolean;
	handshakeTimeoutMs?: number;
	/** Called after an update from a peer passed the doc rules and was applied. */
	onRemoteApplied?: (roomId: RoomId, update: Uint8Array) => void;
	/**
	 * Which connections to open room streams on (default: all). A browser
	 * skips its connection to the server's node and relayed (limited)
	 * connections, and syncs over the direct WebRTC connection only.
	 */
	syncOn?: (connection: Connection) => boolean;
	/** Where this peer keeps media chunks, to serve them to its peers. Without it, it only passes requests on. */
	chunks?: ChunkSource;
}

/** A store of media chunks by id (../media/chunk-store.ts's ChunkStore fits). */
export interface ChunkSource {
	get(id: string): Promise<Uint8Array | undefined>;
}

export interface FetchChunkOptions {
	signal?: AbortSignal;
	/** How far each peer asked may pass the request on (default MAX_CHUNK_HOPS). */
	hops?: number;
	/** A peer not to ask (the one whose request is being passed on). */
	except?: string;
}

interface HeldRoom {
	room: SyncRoom;
	ownsAwareness: boolean;
	/** Stop reporting the awareness' changes. */
	unwatch: () => void;
}

const silentLogger: SyncLogger = {
	debug: () => undefined,
	info: () => undefined,
	warn: () => undefined,
	error: () => undefined
};

const LABELS: Record<P2PPathKind, string> = { lan: 'LAN peer', direct: 'direct', none: '' };

export class PeerSync {
	readonly node: Libp2p;
	readonly #log: SyncLogger;
	readonly #options: PeerSyncOptions;
	readonly #events: Emitter<PeerSyncEvents>;
	readonly #rooms = new Map<RoomId, HeldRoom>();
	/** `${peer} ${room}` → open sessions (two only for a moment, until the duplicate goes). */
	readonly #sessions = new Map<string, Set<SyncSession>>();
	/** `${peer} ${room}` → an outbound attempt is running or scheduled. */
	readonly #dialing = new Set<string>();
	/** `${peer} ${room}` → the peer refused `unauthorized`; cleared when it connects again. */
	readonly #refusedBy = new Set<string>();
	readonly #failures = new Map<string, number>();
	readonly #timers = new Set<ReturnType<typeof setTimeout>>();
	/** Peers found by mDNS: on the LAN by definition. */
	readonly #lanPeers = new Set<string>();
	/** Outbound handshakes running at once. */
	readonly #opening = new Slots(MAX_OPENING);
	#started = false;

	constructor(node: Libp2p, options: PeerSyncOptions = {}) {
		this.node = node;
		this.#options = options;
		this.#log = options.logger ?? silentLogger;
		this.#events = new Emitter((error) =>
			this.#log.error('a PeerSync listener failed', { error: describe(error) })
		);
	}

	on<K extends keyof PeerSyncEvents>(
		type: K,
		listener: (payload: PeerSyncEvents[K]) => void
	): () => void {
		return this.#events.on(type, listener);
	}

	async start(): Promise<void> {
		if (this.#started) return;
		this.#started = true;
		await this.node.handle(KITH_SYNC_PROTOCOL, this.#onInbound, {
			maxInboundStreams: MAX_STREAMS_PER_CONNECTION,
			maxOutboundStreams: MAX_STREAMS_PER_CONNECTION
		});
		this.node.addEventListener('connection:open', this.#onConnectionOpen);
		this.node.addEventListener('peer:discovery', this.#onDiscovery);
		for (const connection of this.node.getConnections()) this.#syncConnection(connection);
	}

	/** Stop syncing: every session is closed (`shutting-down`); the node itself keeps running. */
	async stop(): Promise<void> {
		if (!this.#started) return;
		this.#started = false;
		this.node.removeEventListener('connection:open', this.#onConnectionOpen);
		this.node.removeEventListener('peer:discovery', this.#onDiscovery);
		for (const timer of this.#timers) clearTimeout(timer);
		this.#timers.clear();
		await this.node.unhandle(KITH_SYNC_PROTOCOL).catch(() => undefined);
		const sessions = [...this.#sessions.values()].flatMap((set) => [...set]);
		await Promise.all(sessions.map((session) => session.close('shutting-down')));
		for (const held of this.#rooms.values()) {
			held.unwatch();
			if (held.ownsAwareness) held.room.awareness.destroy();
		}
		this.#rooms.clear();
		this.#events.clear();
	}

	/** Serve and sync a room with every peer that holds it. */
	addRoom(input: PeerSyncRoom): void {
		if (this.#rooms.has(input.roomId)) return;
		const capability = deriveRoomCapability(input.capabilityIkm, input.roomId);
		// A bad key fails each handshake of the room, reported there; never unhandled.
		capability.catch((error: unknown) =>
			this.#log.error('cannot derive the room capability', {
				room: input.roomId,
				error: describe(error)
			})
		);
		let awareness = input.awareness;
		const ownsAwareness = !awareness;
		if (!awareness) {
			awareness = new Awareness(input.cdoc.doc);
			awareness.setLocalState(null);
		}
		const watched = awareness;
		const onChange = () =>
			this.#events.emit('awareness', {
				roomId: input.roomId,
				states: this.remoteAwareness(input.roomId)
			});
		watched.on('change', onChange);
		this.#rooms.set(input.roomId, {
			room: { roomId: input.roomId, cdoc: input.cdoc, capability, awareness },
			ownsAwareness,
			unwatch: () => watched.off('change', onChange)
		});
		if (!this.#started) return;
		for (const connection of this.node.getConnections()) {
			if (this.#options.syncOn && !this.#options.syncOn(connection)) continue;
			this.#openSoon(connection.remotePeer, input.roomId, 0);
		}
	}

	/** Stop serving a room: its sessions close, and peers asking for it are refused. */
	async removeRoom(roomId: RoomId): Promise<void> {
		const held = this.#rooms.get(roomId);
		if (!held) return;
		this.#rooms.delete(roomId);
		const closing: Promise<void>[] = [];
		for (const [key, set] of this.#sessions) {
			if (!key.endsWith(` ${roomId}`)) continue;
			for (const session of set) closing.push(session.close());
		}
		await Promise.all(closing);
		held.unwatch();
		if (held.ownsAwareness) held.room.awareness.destroy();
		this.#events.emit('awareness', { roomId, states: new Map() });
		this.#emitStatus(roomId);
	}

	/** The awareness PeerSync uses for a room (to set this device's encrypted state). */
	awareness(roomId: RoomId): Awareness | undefined {
		return this.#rooms.get(roomId)?.room.awareness;
	}

	/**
	 * Set (or with null, clear) this device's encrypted awareness state in a
	 * room, as `{ e: <base64url> }` like the relay's (RelayConnection).
	 */
	setLocalAwareness(roomId: RoomId, encrypted: Uint8Array | null): void {
		const awareness = this.#rooms.get(roomId)?.room.awareness;
		if (!awareness) return;
		if (encrypted === null && awareness.getLocalState() === null) return;
		awareness.setLocalState(encrypted ? awarenessStateOf(encrypted) : null);
	}

	/** A room's remote awareness states: client id → encrypted state (own excluded). */
	remoteAwareness(roomId: RoomId): Map<number, Uint8Array> {
		const states = new Map<number, Uint8Array>();
		const awareness = this.#rooms.get(roomId)?.room.awareness;
		if (!awareness) return states;
		for (const [client, state] of awareness.getStates()) {
			if (client === awareness.clientID) continue;
			// Every remote state passed readAwarenessUpdate: it is { e: base64url }.
			const e: unknown = state['e'];
			if (typeof e !== 'string') continue;
			try {
				states.set(client, fromBase64Url(e));
			} catch {
				// not base64url: shows nothing
			}
		}
		return states;
	}

	/** Open sessions of a room. */
	sessions(roomId: RoomId): SyncSession[] {
		const out: SyncSession[] = [];
		for (const [key, set] of this.#sessions) {
			if (key.endsWith(` ${roomId}`)) out.push(...set);
		}
		return out;
	}

	status(roomId: RoomId): P2PRoomStatus {
		const peers = new Set<string>();
		let kind: P2PPathKind = 'none';
		for (const session of this.sessions(roomId)) {
			peers.add(session.remotePeer);
			if (this.#isLan(session.remotePeer)) kind = 'lan';
			else if (kind === 'none') kind = 'direct';
		}
		return { kind, label: LABELS[kind], peers: [...peers] };
	}

	// ---- connections ---------------------------------------------------------------

	readonly #onConnectionOpen = (event: CustomEvent<Connection>): void => {
		this.#syncConnection(event.detail);
	};

	readonly #onDiscovery = (event: CustomEvent<PeerInfo>): void => {
		const peer = event.detail.id;
		if (this.#options.lanDiscovery !== false) this.#lanPeers.add(peer.toString());
		if (this.#options.dialDiscovered === false) return;
		if (this.node.getConnections(peer).length > 0) return;
		this.node.dial(peer).catch((error: unknown) => {
			this.#log.debug('could not dial a discovered peer', {
				peer: peer.toString(),
				error: describe(error)
			});
		});
	};

	#syncConnection(connection: Connection): void {
		if (this.#options.syncOn && !this.#options.syncOn(connection)) return;
		const peer = connection.remotePeer;
		for (const key of [...this.#refusedBy]) {
			if (key.startsWith(`${peer.toString()} `)) this.#refusedBy.delete(key);
		}
		// The peer with the larger id waits a moment, so that usually only the
		// smaller one's streams are opened and no duplicate needs closing.
		const delay = this.node.peerId.toString() < peer.toString() ? 0 : 250;
		for (const roomId of this.#rooms.keys()) this.#openSoon(peer, roomId, delay);
	}

	#openSoon(peer: PeerId, roomId: RoomId, delay: number): void {
		const key = `${peer.toString()} ${roomId}`;
		if (this.#dialing.has(key) || this.#refusedBy.has(key)) return;
		this.#dialing.add(key);
		const timer = setTimeout(() => {
			this.#timers.delete(timer);
			void this.#opening
				.run(() => this.#open(peer, roomId, key))
				.finally(() => this.#dialing.delete(key));
		}, delay);
		this.#timers.add(timer);
	}

	async #open(peer: PeerId, roomId: RoomId, key: string): Promise<void> {
		const held = this.#rooms.get(roomId);
		if (!this.#started || !held || (this.#sessions.get(key)?.size ?? 0) > 0) return;
		const connection = this.node
			.getConnections(peer)
			.find((c) => c.status === 'open' && (this.#options.syncOn?.(c) ?? true));
		if (!connection) return; // the next connection starts over
		let stream: Stream;
		try {
			stream = await connection.newStream(KITH_SYNC_PROTOCOL, {
				maxOutboundStreams: MAX_STREAMS_PER_CONNECTION
			});
		} catch (error) {
			this.#log.debug('could not open a /kith/sync stream', {
				peer: peer.toString(),
				error: describe(error)
			});
			this.#retryLater(peer, roomId, key);
			return;
		}
		try {
			const session = await openSyncSession(
				stream,
				this.#peers(connection),
				held.room,
				this.#sessionOptions
			);
			this.#failures.delete(key);
			this.#adopt(key, session);
		} catch (error) {
			const reason = error instanceof P2PRefusedError ? error.reason : 'reset';
			if (reason === 'unauthorized') {
				// It does not hold the room (or not under our key): ask again only
				// after it reconnects.
				this.#refusedBy.add(key);
				this.#events.emit('refused', { roomId, peer: peer.toString(), reason });
				return;
			}
			this.#events.emit('refused', { roomId, peer: peer.toString(), reason });
			this.#retryLater(peer, roomId, key);
		}
	}

	#retryLater(peer: PeerId, roomId: RoomId, key: string): void {
		if (!this.#started || this.node.getConnections(peer).length === 0) return;
		const failures = this.#failures.get(key) ?? 0;
		this.#failures.set(key, failures + 1);
		const delay = backoffDelay(failures, { initialMs: 500, maxMs: 30_000 });
		const timer = setTimeout(() => {
			this.#timers.delete(timer);
			this.#openSoon(peer, roomId, 0);
		}, delay);
		this.#timers.add(timer);
	}

	readonly #onInbound = (stream: Stream, connection: Connection): void => {
		const peers = this.#peers(connection);
		acceptSyncSession(
			stream,
			peers,
			(roomId) => this.#rooms.get(roomId)?.room,
			this.#sessionOptions
		).then(
			(session) => {
				if (session) this.#adopt(`${peers.remoteName} ${session.roomId}`, session);
			},
			(error: unknown) =>
				this.#log.error('a /kith/sync stream failed', {
					peer: peers.remoteName,
					error: describe(error)
				})
		);
	};

	readonly #onRemoteApplied = (update: Uint8Array, session: SyncSession): void => {
		this.#options.onRemoteApplied?.(session.roomId, update);
	};

	get #sessionOptions(): SessionOptions {
		return {
			logger: this.#log,
			handshakeTimeoutMs: this.#options.handshakeTimeoutMs,
			onRemoteApplied: this.#onRemoteApplied,
			serveChunk: this.#serveChunk
		};
	}

	// ---- media chunks ----------------------------------------------------------------

	/**
	 * A chunk from the room's peers: each is asked in turn (those on the LAN
	 * first), and the first blob that hashes to `id` is returned. A blob that
	 * does not is refused, logged, and the next peer asked. Null when no peer
	 * has it (or none is connected). Rejects only when `signal` aborts.
	 */
	async fetchChunk(
		roomId: RoomId,
		id: ChunkId,
		options: FetchChunkOptions = {}
	): Promise<Uint8Array | null> {
		const hops = Math.min(options.hops ?? MAX_CHUNK_HOPS, MAX_CHUNK_HOPS);
		const asked = new Set<string>();
		const sessions = this.sessions(roomId)
			.filter((s) => s.isOpen && s.remotePeer !== options.except)
			.sort((a, b) => Number(this.#isLan(b.remotePeer)) - Number(this.#isLan(a.remotePeer)));
		for (const session of sessions) {
			if (asked.has(session.remotePeer)) continue;
			asked.add(session.remotePeer);
			const blob = await session.wantChunk(id, hops, options.signal);
			if (!blob) continue;
			if (await verifyChunk(id, blob)) return blob;
			this.#log.warn('refused a chunk from a peer that does not match its address', {
				room: roomId,
				peer: session.remotePeer
			});
		}
		return null;
	}

	readonly #serveChunk = async (
		id: ChunkId,
		hops: number,
		session: SyncSession
	): Promise<Uint8Array | undefined> => {
		const held = await this.#options.chunks?.get(id);
		if (held) return held;
		if (hops === 0) return undefined;
		const passed = await this.fetchChunk(session.roomId, id, {
			hops: hops - 1,
			except: session.remotePeer
		});
		return passed ?? undefined;
	};

	#peers(connection: Connection): StreamPeers {
		if (isPrivateAddress(connection)) this.#lanPeers.add(connection.remotePeer.toString());
		return {
			local: this.node.peerId.toMultihash().bytes,
			remote: connection.remotePeer.toMultihash().bytes,
			remoteName: connection.remotePeer.toString()
		};
	}

	// ---- sessions ------------------------------------------------------------------

	#adopt(key: string, session: SyncSession): void {
		if (!this.#started || !this.#rooms.has(session.roomId)) {
			void session.close('shutting-down');
			return;
		}
		let set = this.#sessions.get(key);
		if (!set) this.#sessions.set(key, (set = new Set()));
		set.add(session);
		session.closed.then((end) => {
			set.delete(session);
			if (set.size === 0 && this.#sessions.get(key) === set) this.#sessions.delete(key);
			this.#emitStatus(session.roomId);
			const peer = this.node
				.getConnections()
				.find((c) => c.remotePeer.toString() === session.remotePeer);
			if (end.reason === 'duplicate' || end.reason === 'shutting-down' || !peer) return;
			if (end.reason === 'unauthorized') return;
			if (set.size === 0) this.#retryLater(peer.remotePeer, session.roomId, key);
		});
		if (set.size > 1) this.#dropDuplicate(set);
		this.#events.emit('session', { roomId: session.roomId, session });
		this.#emitStatus(session.roomId);
	}

	/** Keep the stream dialed by the smaller peer id; both sides pick the same one. */
	#dropDuplicate(set: Set<SyncSession>): void {
		const me = this.node.peerId.toString();
		const dialer = (session: SyncSession) =>
			session.direction === 'outbound' ? me : session.remotePeer;
		const sorted = [...set].sort((a, b) => (dialer(a) < dialer(b) ? -1 : 1));
		for (const extra of sorted.slice(1)) {
			set.delete(extra);
			void extra.close('duplicate');
		}
	}

	#isLan(peer: string): boolean {
		return this.#lanPeers.has(peer);
	}

	#emitStatus(roomId: RoomId): void {
		this.#events.emit('status', { roomId, status: this.status(roomId) });
	}
}

/**
 * True when the connection's remote address is on a private network (or
 * loopback), reached straight over TCP or WebSockets: a relayed or WebRTC
 * connection names the relay's address, which says nothing of the peer's.
 */
function isPrivateAddress(connection: Connection): boolean {
	const components = connection.remoteAddr.getComponents();
	if (components.some((c) => c.name === 'p2p-circuit' || c.name === 'webrtc')) return false;
	for (const component of components) {
		if ((component.name === 'ip4' || component.name === 'ip6') && component.value) {
			return isPrivateIp(component.value) === true;
		}
	}
	return false;
}

function describe(error: unknown): string {
	return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
