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
import type { ChunkSource } from '../p2p/peer-sync';
import { warningsLogger } from '../sync/relay-connection';
import { PeerLink } from './peer-link';

export interface P2PLinkOptions {
	/** The Kith server's origin. */
	origin: string;
	/** A room's peer path changed: "direct", "LAN peer" or "". */
	onStatus?: (roomId: RoomId, label: string) => void;
	/** A room's remote awareness states from peers changed (client id → encrypted state). */
	onAwareness?: (roomId: RoomId, states: ReadonlyMap<number, Uint8Array>) => void;
	/** This device's media chunks, served to its peers. */
	chunks?: ChunkSource;
}

export class P2PLink extends PeerLink<BrowserPeers> {
	readonly #options: P2PLinkOptions;
	readonly #labels = new Map<RoomId, string>();

	constructor(options: P2PLinkOptions) {
		// The first room attached starts the node.
		super('p2p', true);
		this.#options = options;
	}

	/** "direct", "LAN peer" or "" for a room. */
	label(roomId: RoomId): string {
		return this.#labels.get(roomId) ?? '';
	}

	protected override startPeers(
		commit: (roomId: RoomId, update: Uint8Array) => void
	): Promise<BrowserPeers | null> {
		return import('../p2p/browser-node').then(({ BrowserPeers }) =>
			BrowserPeers.start({
				origin: this.#options.origin,
				logger: warningsLogger('p2p'),
				onStatus: (roomId, status) => {
					this.#labels.set(roomId, status.label);
					this.#options.onStatus?.(roomId, status.label);
				},
				onAwareness: (roomId, states) => this.#options.onAwareness?.(roomId, states),
				onRemoteApplied: commit,
				...(this.#options.chunks ? { chunks: this.#options.chunks } : {})
			})
		);
	}
}
