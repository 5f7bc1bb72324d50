export {
	attachPush,
	MAX_BODY_BYTES,
	MAX_ROOMS,
	PUSH_KEY_PATH,
	PUSH_SUBSCRIPTION_PATH
} from './push.ts';
export type { Push, PushOptions } from './push.ts';
export { PUSH_TTL_SECONDS } from './sender.ts';
export { PUSH_DATABASE_FILE } from './store.ts';
export { VAPID_FILE, VapidKeysError } from './vapid.ts';
