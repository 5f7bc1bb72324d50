/**
 * Encrypted media chunks on disk, by content address (docs/protocol.md,
 * "Media blobs").
 *
 *   KITH_DATA/blobs/<first 2 chars of id>/<id>    the chunk's bytes, as uploaded
 *   KITH_DATA/blobs.sqlite                         blobs (id, size, room, created)
 *
 * The id is base64url(SHA-256(bytes)); `put` checks it before anything is
 * written, so a stored file always hashes to its name. A chunk is written to
 * a temporary file, fsynced and renamed, then indexed: a crash leaves either
 * no file, or a file the index may lack (found again by the next `put` of the
 * same chunk, which re-indexes it). The index carries the quota counts; the
 * `room` column says which room's grant paid for it (metadata the relay
 * already has from its own connections).
 */
import type Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { openSqlite, type SqliteSchema } from '../sqlite.ts';

export const BLOB_DIR = 'blobs';
export const BLOB_DATABASE_FILE = 'blobs.sqlite';
const SCHEMA: SqliteSchema = {
	version: 1,
	sql: `
	CREATE TABLE IF NOT EXISTS blobs (
		id      TEXT PRIMARY KEY,
		size    INTEGER NOT NULL,
		room    TEXT NOT NULL,
		created INTEGER NOT NULL
	);
	CREATE INDEX IF NOT EXISTS blobs_room ON blobs (room);
	`
};
export class BlobStoreError extends Error {
	static readonly NAME = 'BlobStoreError';
	override name = BlobStoreError.NAME;
}

/** 32 bytes, base64url without padding (canonical). */
const ID_PATTERN = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

export function isBlobId(value: unknown): value is string {
	return typeof value === 'string' && ID_PATTERN.test(value);
}

export function blobIdOf(bytes: Uint8Array): string {
	return createHash('sha256').update(bytes).digest('base64url');
}

export type PutResult = 'stored' | 'exists' | 'hash-mismatch' | 'quota' | 'room-quota';

export class BlobStore {
	readonly dir: string;
	readonly #db: Database.Database;
	readonly #stmt: {
		has: Database.Statement<[string], { size: number }>;
		insert: Database.Statement<[string, number, string, number]>;
		total: Database.Statement<[], { total: number | null }>;
		roomTotal: Database.Statement<[string], { total: number | null }>;
	};
	#total: number;
	readonly #roomTotals = new Map<string, number>();

	constructor(
		dataDir: string,
		readonly limits: { quotaBytes: number; roomQuotaBytes: number }
	) {
		this.dir = join(dataDir, BLOB_DIR);
		mkdirSync(this.dir, { recursive: true });
		this.#db = openSqlite(join(dataDir, BLOB_DATABASE_FILE), SCHEMA, {
			newer: (message) => new BlobStoreError(message)
		}).db;
		this.#stmt = {
			has: this.#db.prepare('SELECT size FROM blobs WHERE id = ?'),
			insert: this.#db.prepare(
				'INSERT OR IGNORE INTO blobs (id, size, room, created) VALUES (?, ?, ?, ?)'
			),
			total: this.#db.prepare('SELECT sum(size) AS total FROM blobs'),
			roomTotal: this.#db.prepare('SELECT sum(size) AS total FROM blobs WHERE room = ?')
		};
		this.#total = this.#stmt.total.get()?.total ?? 0;
	}

	get totalBytes(): number {
		return this.#total;
	}

	#roomBytes(room: string): number {
		let total = this.#roomTotals.get(room);
		if (total === undefined) {
			total = this.#stmt.roomTotal.get(room)?.total ?? 0;
			this.#roomTotals.set(room, total);
		}
		return total;
	}

	pathOf(id: string): string {
		return join(this.dir, id.slice(0, 2), id);
	}

	has(id: string): boolean {
		return this.#stmt.has.get(id) !== undefined;
	}

	/** Store `bytes` under `id`, paid for by `room`. Never stores bytes that do not hash to `id`. */
	async put(id: string, bytes: Uint8Array, room: string): Promise<PutResult> {
		if (blobIdOf(bytes) !== id) return 'hash-mismatch';
		if (this.has(id)) return 'exists';
		if (this.#total + bytes.length > this.limits.quotaBytes) return 'quota';
		if (this.#roomBytes(room) + bytes.length > this.limits.roomQuotaBytes) return 'room-quota';
		const path = this.pathOf(id);
		mkdirSync(join(this.dir, id.slice(0, 2)), { recursive: true });
		const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
		const file = await open(tmp, 'w', 0o600);
		try {
			await file.writeFile(bytes);
			await file.sync();
		} finally {
			await file.close();
		}
		await rename(tmp, path).catch(async (err: unknown) => {
			await rm(tmp, { force: true });
			throw err;
		});
		// Two concurrent puts of one chunk: the second insert is ignored, counted once.
		if (this.#stmt.insert.run(id, bytes.length, room, Date.now()).changes === 1) {
			this.#total += bytes.length;
			this.#roomTotals.set(room, this.#roomBytes(room) + bytes.length);
		}
		return 'stored';
	}

	/** The chunk's bytes, or undefined when it is not held. */
	async get(id: string): Promise<Uint8Array | undefined> {
		if (!this.has(id)) return undefined;
		try {
			return new Uint8Array(await readFile(this.pathOf(id)));
		} catch (err) {
			if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
			throw err;
		}
	}

	async size(id: string): Promise<number | undefined> {
		try {
			return (await stat(this.pathOf(id))).size;
		} catch {
			return undefined;
		}
	}

	close(): void {
		this.#db.close();
	}
}
