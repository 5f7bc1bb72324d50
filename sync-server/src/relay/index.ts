export {
	attachRelay,
	CHALLENGE_PATH,
	CLOSE,
	METRICS_PATH,
	MOVED_PATH,
	RETIRE_PATH,
	SYNC_PATH
} from './relay.ts';
export type { NotifyHandler, Relay, RelayOptions } from './relay.ts';
export {
	accessMessage,
	CHALLENGE_TTL_MS,
	movedMessage,
	RELAY_SECRET_FILE,
	retireMessage
} from './challenge.ts';
export { DATABASE_FILE } from './store.ts';
export * from './wire.ts';
