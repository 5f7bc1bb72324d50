// http_ece 1.2.1 ships no types; only what the tests use (an RFC 8291 receiver).
declare module 'http_ece' {
	import type { ECDH } from 'node:crypto';
	export function decrypt(
		buffer: Buffer,
		params: { version: 'aes128gcm'; privateKey: ECDH; authSecret: string | Buffer }
	): Buffer;
}
