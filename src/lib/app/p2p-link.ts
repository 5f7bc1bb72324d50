/**
 * The leader tab's peer-to-peer side (docs/protocol.md, "P2P sync":
 * "Browsers"): the rooms the NetHub syncs over the relay also sync directly
 * with other browsers over WebRTC, through ../p2p/browser-node.ts. That
 * module (libp2p, WebRTC) is imported only when the first room is attached,
 * so the first screen does not load it; when the server runs no libp2p node
 * (or the browser cannot start one) the rooms keep syncing through the relay
 * alone.
 *
 * Updates from a peer pass the doc rules in PeerSync and are committed
 * through the room's DocSession, exactly like the relay's: the docs are
 * CRDTs, so an update that arrives on both paths is applied once.
 *
 * Typing (awareness) rides the same sessions: the NetHub hands this device's
 * encrypted state to every path (`setLocalAwareness`) and merges the remote
 * states of every path by client id (./awareness-merge.ts), so a state that
 * arrives both ways shows once.
 */
import type { RoomId } from '../crypto';
import type { BrowserPeers } from '../p2p/browser-node';
import { warningsLogger } from '../sync/relay-connection';
import type { DocSession } from './doc-session';

interface LinkedRoom {
	session: DocSession;
	ikm: Uint8Array;
	/** This device's encrypted awareness state, set on the room once PeerSync holds it. */
	local: Uint8Array | null;
}

export interface P2PLinkOptions {
	/** The Kith server's origin. */
	origin: string;
	/** A room's peer path changed: "direct", "LAN peer" or "". */
	onStatus?: (roomId: RoomId, label: string) => void;
	/** A room's remote awareness states from peers changed (client id → encrypted state). */
	onAwareness?: (roomId: RoomId, states: ReadonlyMap<number, Uint8Array>) => void;
}

export class P2PLink {
	readonly #options: P2PLinkOptions;
	readonly #rooms = new Map<RoomId, LinkedRoom>();
	readonly #labels = new Map<RoomId, string>();
	#peers: Promise<BrowserPeers | null> | null = null;
	#ready: BrowserPeers | null = null;
	#closed = false;

	constructor(options: P2PLinkOptions) {
		this.#options = options;
	}

	attach(roomId: RoomId, session: DocSession, ikm: Uint8Array): void {
		if (this.#closed || this.#rooms.has(roomId)) return;
		const room: LinkedRoom = { session, ikm, local: null };
		this.#rooms.set(roomId, room);
		void this.#start().then(async (peers) => {
			await session.loaded.catch(() => undefined);
			if (!peers || this.#rooms.get(roomId) !== room) return;
			peers.addRoom({ roomId, cdoc: session.doc, capabilityIkm: ikm });
			if (room.local) peers.setLocalAwareness(roomId, room.local);
		});
	}

	detach(roomId: RoomId): void {
		if (!this.#rooms.delete(roomId)) return;
		void this.#peers?.then((peers) => peers?.removeRoom(roomId));
	}

	/** This device's encrypted awareness state in a room (null clears it), for its peers. */
	setLocalAwareness(roomId: RoomId, state: Uint8Array | null): void {
		const room = this.#rooms.get(roomId);
		if (!room) return;
		room.local = state;
		// A room PeerSync does not hold yet gets it in `attach`, right after addRoom.
		this.#ready?.setLocalAwareness(roomId, state);
	}

	/** "direct", "LAN peer" or "" for a room. */
	label(roomId: RoomId): string {
		return this.#labels.get(roomId) ?? '';
	}

	close(): void {
		this.#closed = true;
		this.#ready = null;
		this.#rooms.clear();
		void this.#peers?.then((peers) => peers?.stop());
	}

	#start(): Promise<BrowserPeers | null> {
		this.#peers ??= import('../p2p/browser-node')
			.then(({ BrowserPeers }) =>
				BrowserPeers.start({
					origin: this.#options.origin,
					logger: warningsLogger('p2p'),
					onStatus: (roomId, status) => {
						this.#labels.set(roomId, status.label);
						this.#options.onStatus?.(roomId, status.label);
					},
					onAwareness: (roomId, states) => this.#options.onAwareness?.(roomId, states),
					onRemoteApplied: (roomId, update) => {
						this.#rooms
							.get(roomId)
							?.session.commitRemoteUpdate(update)
							.catch((error: unknown) =>
								console.error('kith p2p: could not store an update', error)
							);
					}
				})
			)
			.then(
				async (peers) => {
					if (this.#closed) await peers?.stop();
					if (this.#closed) return null;
					this.#ready = peers;
					return peers;
				},
				(error: unknown) => {
					console.warn('kith: no peer-to-peer sync, the relay only:', error);
					return null;
				}
			);
		return this.#peers;
	}
}
