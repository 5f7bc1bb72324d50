/**
 * A secret the server makes once and keeps under KITH_DATA (the relay's HMAC
 * secret, the VAPID keys): read it, or create it with mode 0600. If another
 * process creates it at the same moment, theirs wins and is read back, so
 * every process ends up with the same secret.
 */
import { readFileSync, writeFileSync } from 'node:fs';

export function readOrCreateSecretFile(path: string, make: () => Uint8Array | string): Buffer {
	try {
		return readFileSync(path);
	} catch (err) {
		if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
	}
	try {
		// 'wx': fails if the file exists, so a concurrent creator's file is kept.
		writeFileSync(path, make(), { mode: 0o600, flag: 'wx' });
	} catch (err) {
		if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
	}
	return readFileSync(path);
}
