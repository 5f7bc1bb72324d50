/**
 * Peer to peer: conversation docs over libp2p (docs/protocol.md, "P2P sync").
 * `sync-protocol` is the one implementation of /kith/sync shared by every
 * peer; `node` builds a Node peer and PeerSync, which runs the protocol with
 * every connected peer for every room held. Import `./node` only on Node (or
 * give PeerSync a browser node): it pulls in TCP and mDNS.
 */
export { FrameStreamError } from './frame-stream';
export { P2PFrameError, P2PRefusedError } from './errors';
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
