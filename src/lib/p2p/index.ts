/**
 * Peer to peer: conversation docs over libp2p (docs/protocol.md, "P2P sync").
 * `sync-protocol` is the one implementation of /kith/sync shared by every
 * peer; PeerSync runs it with every connected peer for every room held, on
 * any libp2p node. `./node` (a Node peer: TCP, WebSockets, mDNS) is not
 * exported here: import it only on Node.
 */
export { FrameStreamError } from './frame-stream';
export { P2PFrameError, P2PRefusedError } from './errors';
export {
	PeerSync,
	type P2PPathKind,
	type P2PRoomStatus,
	type PeerSyncEvents,
	type PeerSyncOptions,
	type PeerSyncRoom
} from './peer-sync';
export { P2P_ACCESS_CONTEXT, proofMessage } from './proof';
export {
	acceptSyncSession,
	HANDSHAKE_TIMEOUT_MS,
	KITH_SYNC_PROTOCOL,
	MAX_FRAME_BYTES,
	MAX_RULE_REFUSALS,
	openSyncSession,
	SyncSession,
	type P2PRefusalReason,
	type SessionEnd,
	type SessionOptions,
	type StreamPeers,
	type SyncRoom,
	type SyncSessionEvents
} from './sync-protocol';
