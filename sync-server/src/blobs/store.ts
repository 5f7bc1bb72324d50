/**
 * Encrypted media chunks on disk, by content address (docs/protocol.md,
 * "Media blobs").
 *
 *   KITH_DATA/blobs/<first 2 chars of id>/<id>    the chunk's bytes, as uploaded
 *   KITH_DATA/blobs.sqlite                         blobs (id, size, room, created),
 *                                                  blob_expiry (id, expires)
 *
 * The id is base64url(SHA-256(bytes)); `put` checks it before anything is
 * written, so a stored file always hashes to its name. A chunk is written to
 * a temporary file, fsynced and renamed, then indexed: a crash leaves either
 * no file, or a file the index may lack (found again by the next `put` of the
 * same chunk, which re-indexes it). The index carries the quota counts; the
 * `room` column says which room's grant paid for it (metadata the relay
 * already has from its own connections).
 *
 * A chunk is kept for good unless its upload asked for a limited life (a
 * linking device's handed-over history, useful for minutes): then it has a
 * row in `blob_expiry`, and `sweep` deletes it once that time has passed.
 * An expiry only ever moves later: the same chunk uploaded again for good
 * loses its row, and a second limited upload keeps the later of the two.
 */
import type Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BASE64URL_32 } from '../../../src/lib/crypto/bytes.ts';
import { openSqlite, type SqliteSchema } from '../sqlite.ts';

export const BLOB_DIR = 'blobs';
export const BLOB_DATABASE_FILE = 'blobs.sqlite';
const SCHEMA: SqliteSchema = {
	version: 2,
	sql: `
	CREATE TABLE IF NOT EXISTS blobs (
		id      TEXT PRIMARY KEY,
		size    INTEGER NOT NULL,
		room    TEXT NOT NULL,
		created INTEGER NOT NULL
	);
	CREATE INDEX IF NOT EXISTS blobs_room ON blobs (room);
	CREATE TABLE IF NOT EXISTS blob_expiry (
		id      TEXT PRIMARY KEY,
		expires INTEGER NOT NULL
	);
	CREATE INDEX IF NOT EXISTS blob_expiry_expires ON blob_expiry (expires);
	`
};
export class BlobStoreError extends Error {
	static readonly NAME = 'BlobStoreError';
	override name = BlobStoreError.NAME;
}

export function isBlobId(value: unknown): value is string {
	return typeof value === 'string' && BASE64URL_32.test(value);
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
		expiry: Database.Statement<[string], { expires: number }>;
		setExpiry: Database.Statement<[string, number]>;
		clearExpiry: Database.Statement<[string]>;
		due: Database.Statement<[number, number], { id: string; size: number; room: string }>;
		remove: Database.Statement<[string]>;
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
			roomTotal: this.#db.prepare('SELECT sum(size) AS total FROM blobs WHERE room = ?'),
			expiry: this.#db.prepare('SELECT expires FROM blob_expiry WHERE id = ?'),
			setExpiry: this.#db.prepare(
				'INSERT INTO blob_expiry (id, expires) VALUES (?, ?) ' +
					'ON CONFLICT (id) DO UPDATE SET expires = max(expires, excluded.expires)'
			),
			clearExpiry: this.#db.prepare('DELETE FROM blob_expiry WHERE id = ?'),
			due: this.#db.prepare(
				'SELECT b.id AS id, b.size AS size, b.room AS room FROM blob_expiry e ' +
					'JOIN blobs b ON b.id = e.id WHERE e.expires <= ? LIMIT ?'
			),
			remove: this.#db.prepare('DELETE FROM blobs WHERE id = ?')
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

	/**
	 * Store `bytes` under `id`, paid for by `room`, for good or (with
	 * `expires`, ms since the epoch) until then. Never stores bytes that do not
	 * hash to `id`. A chunk already held is not written again; its life is
	 * extended as `keep` does.
	 */
	async put(id: string, bytes: Uint8Array, room: string, expires?: number): Promise<PutResult> {
		if (blobIdOf(bytes) !== id) return 'hash-mismatch';
		if (this.has(id)) {
			this.keep(id, expires);
			return 'exists';
		}
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
		const inserted = this.#db.transaction(() => {
			if (this.#stmt.insert.run(id, bytes.length, room, Date.now()).changes !== 1) return false;
			if (expires !== undefined) this.#stmt.setExpiry.run(id, expires);
			return true;
		})();
		if (inserted) {
			this.#total += bytes.length;
			this.#roomTotals.set(room, this.#roomBytes(room) + bytes.length);
		} else {
			this.keep(id, expires);
		}
		return 'stored';
	}

	/**
	 * A chunk that is held was uploaded again: for good (`expires` undefined)
	 * it loses any expiry; for a limited life it keeps the later of the two
	 * (and a chunk held for good stays so). Nobody can shorten a chunk's life.
	 */
	keep(id: string, expires?: number): void {
		const current = this.#stmt.expiry.get(id);
		if (!current) return;
		if (expires === undefined) this.#stmt.clearExpiry.run(id);
		else if (expires > current.expires) this.#stmt.setExpiry.run(id, expires);
	}

	/** When a held chunk expires (ms since the epoch), or undefined when it is kept for good. */
	expiresAt(id: string): number | undefined {
		return this.#stmt.expiry.get(id)?.expires;
	}

	/**
	 * Delete the chunks whose time has passed (up to `limit` of them): file,
	 * index row and quota counts. Returns how many went.
	 */
	async sweep(now = Date.now(), limit = 1000): Promise<number> {
		const due = this.#stmt.due.all(now, limit);
		for (const { id, size, room } of due) {
			// The file first: a crash between the two leaves a row naming a missing
			// file (served as not found, and swept again next time), never a file
			// that no row names and nothing would delete.
			await rm(this.pathOf(id), { force: true });
			const roomBytes = this.#roomBytes(room);
			this.#db.transaction(() => {
				this.#stmt.remove.run(id);
				this.#stmt.clearExpiry.run(id);
			})();
			this.#total -= size;
			this.#roomTotals.set(room, roomBytes - size);
		}
		return due.length;
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
