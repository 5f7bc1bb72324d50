export { attachRelay, CHALLENGE_PATH, CLOSE, METRICS_PATH, SYNC_PATH } from './relay.ts';
export type { NotifyHandler, Relay, RelayOptions } from './relay.ts';
export { accessMessage, CHALLENGE_TTL_MS, RELAY_SECRET_FILE } from './challenge.ts';
export { DATABASE_FILE } from './store.ts';
export * from './wire.ts';
