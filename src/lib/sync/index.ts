/**
 * Sync: conversation docs over a relay (docs/protocol.md, "Relay protocol").
 * One RelayConnection per (relay, room); status and "Sent" from the relay's
 * acknowledgements. Runs in the leader tab only (see ../app/tabs.ts).
 */
export { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff';
export {
	challengeMessage,
	deriveRoomCapability,
	ROOM_ACCESS_INFO,
	type RoomCapability
} from './capability';
export { CapabilityError, ChallengeError, RelayFrameError } from './errors';
export {
	readAwarenessUpdate,
	readRelayMessage,
	MAX_NOTIFY_BYTES,
	MESSAGE_NOTIFY,
	writeAwareness,
	writeNotify,
	writePermissionDenied,
	writeQueryAwareness,
	writeRefused,
	writeStored,
	writeSyncStep1,
	writeSyncStep2,
	writeSyncUpdate,
	type AwarenessEntry,
	type RelayMessage
} from './messages';
export {
	consoleLogger,
	isTransientRefusal,
	MAX_UPDATE_BYTES,
	RelayConnection,
	type ConnectionStatus,
	type RelayConnectionEvents,
	type RelayConnectionOptions,
	type RelayRefusal,
	type RemoteAwarenessChange,
	type SyncLogger
} from './relay-connection';
export { splitUpdate } from './split-update';
export { isSentBy } from './status';
export { movedTag, reportMoved, RetireError, retireRoom } from './retire';
export {
	fetchRelayLimits,
	frameBytesFor,
	FRAME_OVERHEAD_MAX,
	maxPlaintextFor,
	TooLargeForRelayError,
	type RelayLimits
} from './limits';
