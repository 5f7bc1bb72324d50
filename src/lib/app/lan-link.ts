/**
 * The leader tab's LAN peers (docs/protocol.md, "P2P sync": "LAN peers"):
 * the `kith serve` peers this device was told to reach (Settings → LAN
 * peers), dialed over WebRTC-Direct by ../p2p/lan-peer.ts, which is imported
 * only once there is an address to dial. Every room the NetHub syncs also
 * syncs with those peers (PeerSync, gated by the room capability), and a
 * room that syncs with one reads "LAN peer" in its path indicator.
 *
 * Updates from a LAN peer pass the doc rules in PeerSync and are committed
 * through the room's DocSession, like the relay's and other browsers'.
 */
import type { RoomId } from '../crypto';
import type { LanPeers } from '../p2p/lan-peer';
import { warningsLogger } from '../sync/relay-connection';
import type { DocSession } from './doc-session';

interface LinkedRoom {
	session: DocSession;
	ikm: Uint8Array;
	/** This device's encrypted awareness state, set on the peers' room when it is added. */
	local: Uint8Array | null;
}

export interface LanLinkOptions {
	/** A room's LAN peers changed (read `label`). */
	onStatus?: (roomId: RoomId) => void;
	/** A kept address connected or went. */
	onConnections?: () => void;
	/** The LAN peers' awareness states of a room (all of them: a full replacement). */
	onAwareness?: (roomId: RoomId, states: ReadonlyMap<number, Uint8Array>) => void;
}

export class LanLink {
	readonly #options: LanLinkOptions;
	readonly #rooms = new Map<RoomId, LinkedRoom>();
	readonly #withPeers = new Set<RoomId>();
	#peers: Promise<LanPeers | null> | null = null;
	#ready: LanPeers | null = null;
	#closed = false;

	constructor(options: LanLinkOptions = {}) {
		this.#options = options;
	}

	attach(roomId: RoomId, session: DocSession, ikm: Uint8Array): void {
		if (this.#closed || this.#rooms.has(roomId)) return;
		const room: LinkedRoom = { session, ikm, local: null };
		this.#rooms.set(roomId, room);
		if (this.#peers) void this.#peers.then((peers) => this.#add(peers, roomId, room));
	}

	detach(roomId: RoomId): void {
		if (!this.#rooms.delete(roomId)) return;
		this.#withPeers.delete(roomId);
		void this.#peers?.then((peers) => peers?.removeRoom(roomId));
	}

	/** This device's encrypted awareness state in a room (null clears it), for the LAN peers. */
	setLocalAwareness(roomId: RoomId, state: Uint8Array | null): void {
		const room = this.#rooms.get(roomId);
		if (!room) return;
		room.local = state;
		this.#ready?.sync.setLocalAwareness(roomId, state);
	}

	/** "LAN peer" while a room syncs with one, else "". */
	label(roomId: RoomId): '' | 'LAN peer' {
		return this.#withPeers.has(roomId) ? 'LAN peer' : '';
	}

	/** Whether the peer at a kept address is connected now. */
	connected(address: string): boolean {
		return this.#ready?.connected(address) ?? false;
	}

	/**
	 * Dial an address the user entered, and keep it. Rejects with an Error
	 * whose message is for the user (a bad address, or a failed dial).
	 * Resolves with the address, normalised.
	 */
	async connect(text: string): Promise<string> {
		const { parseLanPeerAddress } = await import('../p2p/lan-peer');
		parseLanPeerAddress(text);
		const peers = await this.#start();
		if (!peers) throw new Error('This browser cannot reach LAN peers (no WebRTC).');
		return (await peers.connect(text)).address;
	}

	/** Keep saved addresses: dialed now, and again whenever they are not connected. */
	keep(addresses: string[]): void {
		if (this.#closed || addresses.length === 0) return;
		void this.#start().then((peers) => {
			for (const address of addresses) peers?.add(address);
		});
	}

	async forget(address: string): Promise<void> {
		const peers = await this.#peers;
		await peers?.forget(address);
	}

	close(): void {
		this.#closed = true;
		this.#rooms.clear();
		this.#withPeers.clear();
		void this.#peers?.then((peers) => peers?.stop());
	}

	#add(peers: LanPeers | null, roomId: RoomId, room: LinkedRoom): void {
		void room.session.loaded
			.catch(() => undefined)
			.then(() => {
				if (!peers || this.#rooms.get(roomId) !== room) return;
				peers.addRoom({ roomId, cdoc: room.session.doc, capabilityIkm: room.ikm });
				if (room.local) peers.sync.setLocalAwareness(roomId, room.local);
			});
	}

	#start(): Promise<LanPeers | null> {
		this.#peers ??= import('../p2p/lan-peer')
			.then(({ LanPeers }) =>
				LanPeers.start({
					logger: warningsLogger('lan'),
					onStatus: (roomId, peers) => {
						if (peers.length > 0) this.#withPeers.add(roomId);
						else this.#withPeers.delete(roomId);
						this.#options.onStatus?.(roomId);
					},
					onConnections: () => this.#options.onConnections?.(),
					onRemoteApplied: (roomId, update) => {
						this.#rooms
							.get(roomId)
							?.session.commitRemoteUpdate(update)
							.catch((error: unknown) =>
								console.error('kith lan: could not store an update', error)
							);
					}
				})
			)
			.then(
				async (peers) => {
					if (this.#closed) {
						await peers.stop();
						return null;
					}
					this.#ready = peers;
					peers.sync.on('awareness', ({ roomId, states }) =>
						this.#options.onAwareness?.(roomId, states)
					);
					for (const [roomId, room] of this.#rooms) this.#add(peers, roomId, room);
					return peers;
				},
				(error: unknown) => {
					console.warn('kith: no LAN peers:', error);
					return null;
				}
			);
		return this.#peers;
	}
}
