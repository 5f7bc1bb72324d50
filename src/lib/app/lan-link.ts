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
import type { ChunkSource } from '../p2p/peer-sync';
import { warningsLogger } from '../sync/relay-connection';
import { PeerLink } from './peer-link';

export interface LanLinkOptions {
	/** A room's LAN peers changed (read `label`). */
	onStatus?: (roomId: RoomId) => void;
	/** A kept address connected or went. */
	onConnections?: () => void;
	/** The LAN peers' awareness states of a room (all of them: a full replacement). */
	onAwareness?: (roomId: RoomId, states: ReadonlyMap<number, Uint8Array>) => void;
	/** This device's media chunks, served to its peers. */
	chunks?: ChunkSource;
}

export class LanLink extends PeerLink<LanPeers> {
	readonly #options: LanLinkOptions;
	readonly #withPeers = new Set<RoomId>();

	constructor(options: LanLinkOptions = {}) {
		// Started only once there is an address to dial (connect, keep).
		super('LAN', false);
		this.#options = options;
	}

	/** "LAN peer" while a room syncs with one, else "". */
	label(roomId: RoomId): '' | 'LAN peer' {
		return this.#withPeers.has(roomId) ? 'LAN peer' : '';
	}

	/** Whether the peer at a kept address is connected now. */
	connected(address: string): boolean {
		return this.ready?.connected(address) ?? false;
	}

	/**
	 * Dial an address the user entered, and keep it. Rejects with an Error
	 * whose message is for the user (a bad address, or a failed dial).
	 * Resolves with the address, normalised.
	 */
	async connect(text: string): Promise<string> {
		const { parseLanPeerAddress } = await import('../p2p/lan-peer');
		parseLanPeerAddress(text);
		const peers = await this.start();
		if (!peers) throw new Error('This browser cannot reach LAN peers (no WebRTC).');
		return (await peers.connect(text)).address;
	}

	/** Keep saved addresses: dialed now, and again whenever they are not connected. */
	keep(addresses: string[]): void {
		if (addresses.length === 0) return;
		void this.start().then((peers) => {
			for (const address of addresses) peers?.add(address);
		});
	}

	async forget(address: string): Promise<void> {
		const peers = await this.started();
		await peers?.forget(address);
	}

	protected override roomDetached(roomId: RoomId): void {
		this.#withPeers.delete(roomId);
	}

	override close(): void {
		super.close();
		this.#withPeers.clear();
	}

	protected override startPeers(
		commit: (roomId: RoomId, update: Uint8Array) => void
	): Promise<LanPeers | null> {
		return import('../p2p/lan-peer')
			.then(({ LanPeers }) =>
				LanPeers.start({
					logger: warningsLogger('lan'),
					onStatus: (roomId, peers) => {
						if (peers.length > 0) this.#withPeers.add(roomId);
						else this.#withPeers.delete(roomId);
						this.#options.onStatus?.(roomId);
					},
					onConnections: () => this.#options.onConnections?.(),
					onRemoteApplied: commit,
					...(this.#options.chunks ? { chunks: this.#options.chunks } : {})
				})
			)
			.then((peers) => {
				peers.sync.on('awareness', ({ roomId, states }) =>
					this.#options.onAwareness?.(roomId, states)
				);
				return peers;
			});
	}
}
