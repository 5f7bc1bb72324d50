/**
 * What the leader tab's two direct paths share (./p2p-link.ts: other
 * browsers over WebRTC; ./lan-link.ts: `kith serve` peers over
 * WebRTC-Direct): the rooms the NetHub syncs, handed to the peers' PeerSync
 * once their doc is loaded; this device's encrypted awareness state per room;
 * updates from a peer, which passed the doc rules in PeerSync, committed
 * through the room's DocSession like the relay's; and peers started lazily
 * (their module is imported only then), stopped on close; and media chunks
 * fetched from the peers of a room (hash-checked in PeerSync).
 */
import type { RoomId } from '../crypto';
import type { ChunkId } from '../media/manifest';
import type { PeerSync, PeerSyncRoom } from '../p2p/peer-sync';
import type { DocSession } from './doc-session';

/** The peers a link drives (BrowserPeers, LanPeers). */
export interface LinkPeers {
	readonly sync: PeerSync;
	addRoom(room: PeerSyncRoom): void;
	removeRoom(roomId: RoomId): Promise<void>;
	stop(): Promise<void>;
}

interface LinkedRoom {
	session: DocSession;
	ikm: Uint8Array;
	/** This device's encrypted awareness state, set on the peers' room when it is added. */
	local: Uint8Array | null;
}

export abstract class PeerLink<P extends LinkPeers> {
	readonly #rooms = new Map<RoomId, LinkedRoom>();
	#peers: Promise<P | null> | null = null;
	#ready: P | null = null;
	#closed = false;

	/**
	 * `name` is for the logs; with `startOnAttach` the first room attached
	 * starts the peers, else `start` does when the subclass asks.
	 */
	protected constructor(
		private readonly name: string,
		private readonly startOnAttach: boolean
	) {}

	/**
	 * Starts the peers (importing their module); null when this browser has
	 * none to offer. `commit` stores an update a peer sent for a room.
	 */
	protected abstract startPeers(
		commit: (roomId: RoomId, update: Uint8Array) => void
	): Promise<P | null>;

	attach(roomId: RoomId, session: DocSession, ikm: Uint8Array): void {
		if (this.#closed || this.#rooms.has(roomId)) return;
		const room: LinkedRoom = { session, ikm, local: null };
		this.#rooms.set(roomId, room);
		// Started: added now; starting: added when the peers are up.
		if (this.#ready) this.#add(this.#ready, roomId, room);
		else if (this.startOnAttach) void this.start();
	}

	detach(roomId: RoomId): void {
		if (!this.#rooms.delete(roomId)) return;
		this.roomDetached?.(roomId);
		void this.#peers?.then((peers) => peers?.removeRoom(roomId));
	}

	/** This device's encrypted awareness state in a room (null clears it), for its peers. */
	setLocalAwareness(roomId: RoomId, state: Uint8Array | null): void {
		const room = this.#rooms.get(roomId);
		if (!room) return;
		room.local = state;
		// A room the peers do not hold yet gets it in #add, right after addRoom.
		this.#ready?.sync.setLocalAwareness(roomId, state);
	}

	/** Whether a room syncs with a peer of this link right now. */
	hasPeers(roomId: RoomId): boolean {
		return (this.#ready?.sync.sessions(roomId).length ?? 0) > 0;
	}

	/** A media chunk from this link's peers in a room, checked against its id; null when none has it. */
	fetchChunk(roomId: RoomId, id: ChunkId, signal?: AbortSignal): Promise<Uint8Array | null> {
		const peers = this.#ready;
		if (!peers) return Promise.resolve(null);
		return peers.sync.fetchChunk(roomId, id, signal ? { signal } : {});
	}

	close(): void {
		this.#closed = true;
		this.#ready = null;
		this.#rooms.clear();
		void this.#peers?.then((peers) => peers?.stop());
	}

	/** The peers once started (null before, or when there are none). */
	protected get ready(): P | null {
		return this.#ready;
	}

	/** The peers, started on the first call (null: none on this browser). */
	protected start(): Promise<P | null> {
		// Closed: nothing starts again (a late `keep` or `connect`).
		if (this.#closed) return Promise.resolve(null);
		this.#peers ??= this.startPeers((roomId, update) => {
			this.#rooms
				.get(roomId)
				?.session.commitRemoteUpdate(update)
				.catch((error: unknown) =>
					console.error(`kith ${this.name}: could not store an update`, error)
				);
		}).then(
			async (peers) => {
				if (this.#closed) await peers?.stop();
				if (this.#closed || !peers) return null;
				this.#ready = peers;
				for (const [roomId, room] of this.#rooms) this.#add(peers, roomId, room);
				return peers;
			},
			(error: unknown) => {
				console.warn(`kith: no ${this.name} peers:`, error);
				return null;
			}
		);
		return this.#peers;
	}

	/** The peers if they were started (or are starting), without starting them. */
	protected started(): Promise<P | null> {
		return this.#peers ?? Promise.resolve(null);
	}

	/** A room was detached: what a subclass keeps of it (its status) goes too. */
	protected roomDetached?(roomId: RoomId): void;

	#add(peers: P, roomId: RoomId, room: LinkedRoom): void {
		void room.session.loaded
			.catch(() => undefined)
			.then(() => {
				if (this.#rooms.get(roomId) !== room) return;
				peers.addRoom({ roomId, cdoc: room.session.doc, capabilityIkm: room.ikm });
				if (room.local) peers.sync.setLocalAwareness(roomId, room.local);
			});
	}
}
