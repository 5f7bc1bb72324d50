/**
 * The blob store's settings, read from the environment like config.ts (and
 * with its reader: a bad value names the variable, what it expected and what
 * it got). Kept here so the store is one module that mounts with one line.
 *
 *   KITH_BLOB_MAX_FILE_BYTES    2 GiB   largest file an upload is granted for (`file-too-large`)
 *   KITH_BLOB_QUOTA_BYTES      64 GiB   chunk bytes the store holds in all (`quota`)
 *   KITH_BLOB_ROOM_QUOTA_BYTES 16 GiB   chunk bytes uploaded under one room's grants (`room-quota`)
 */
import { EnvReader } from '../config.ts';

export interface BlobConfig {
	maxFileBytes: number;
	quotaBytes: number;
	roomQuotaBytes: number;
}

const GiB = 1024 ** 3;

export const BLOB_DEFAULTS: BlobConfig = {
	maxFileBytes: 2 * GiB,
	quotaBytes: 64 * GiB,
	roomQuotaBytes: 16 * GiB
};

/** Throws ConfigError listing every unusable variable. */
export function loadBlobConfig(env: Record<string, string | undefined> = process.env): BlobConfig {
	const r = new EnvReader(env);
	const big = { min: 0, max: Number.MAX_SAFE_INTEGER };
	const config = {
		maxFileBytes: r.integer('KITH_BLOB_MAX_FILE_BYTES', BLOB_DEFAULTS.maxFileBytes, {
			min: 0,
			max: 16 * GiB
		}),
		quotaBytes: r.integer('KITH_BLOB_QUOTA_BYTES', BLOB_DEFAULTS.quotaBytes, big),
		roomQuotaBytes: r.integer('KITH_BLOB_ROOM_QUOTA_BYTES', BLOB_DEFAULTS.roomQuotaBytes, big)
	};
	r.done();
	return config;
}
