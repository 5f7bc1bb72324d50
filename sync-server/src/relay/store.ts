/**
 * The relay's storage: SQLite (better-sqlite3) in `KITH_DATA/relay.sqlite`.
 *
 *   rooms   (id, cap, created, bytes)   one row per claimed room; `cap` is the
 *                                       capability public key that admits to it,
 *                                       `bytes` the sum of its update rows
 *   updates (seq, room, bytes)          Yjs updates (v1) as they were accepted,
 *                                       in arrival order (seq)
 *   retire_plans   (room, retain_until, planned)
 *   retire_devices (room, tag)          a room's retirement plan: the opaque
 *                                       tags of the devices that must move first
 *   moved   (room, tag, at)             tags reported as moved (kept before a plan)
 *   retired (id, at)                    tombstones: rooms whose data was deleted
 *
 * WAL with synchronous=NORMAL: a transaction that returned survives a killed
 * process (not necessarily a power cut), which is what an acknowledgement
 * promises. Every write is one transaction, so a crash leaves either all of it
 * or none. The database holds only what clients sent: ciphertext envelopes
 * inside Yjs updates, and public keys.
 *
 * `secure_delete` is on: SQLite overwrites deleted rows (and the pages they
 * free) with zeros, so the bytes of a compacted-away row or a retired room do
 * not linger in free space. Retiring a room also checkpoints the write-ahead
 * log and truncates it (`wal_checkpoint(TRUNCATE)`), so no older frame of the
 * log still carries them. A database from schema 1 (written without
 * `secure_delete`) is vacuumed once when it is upgraded, for the same reason.
 */
import type Database from 'better-sqlite3';
import { join } from 'node:path';
import { openSqlite, type SqliteSchema } from '../sqlite.ts';

export const DATABASE_FILE = 'relay.sqlite';
const SCHEMA: SqliteSchema = {
	version: 2,
	sql: `
	CREATE TABLE IF NOT EXISTS rooms (
		id      TEXT PRIMARY KEY,
		cap     BLOB NOT NULL,
		created INTEGER NOT NULL,
		bytes   INTEGER NOT NULL DEFAULT 0
	);
	CREATE TABLE IF NOT EXISTS updates (
		seq   INTEGER PRIMARY KEY,
		room  TEXT NOT NULL,
		bytes BLOB NOT NULL
	);
	CREATE INDEX IF NOT EXISTS updates_by_room ON updates (room, seq);
	CREATE TABLE IF NOT EXISTS retire_plans (
		room         TEXT PRIMARY KEY,
		retain_until INTEGER NOT NULL,
		planned      INTEGER NOT NULL
	);
	CREATE INDEX IF NOT EXISTS retire_plans_by_deadline ON retire_plans (retain_until);
	CREATE TABLE IF NOT EXISTS retire_devices (
		room TEXT NOT NULL,
		tag  TEXT NOT NULL,
		PRIMARY KEY (room, tag)
	) WITHOUT ROWID;
	CREATE TABLE IF NOT EXISTS moved (
		room TEXT NOT NULL,
		tag  TEXT NOT NULL,
		at   INTEGER NOT NULL,
		PRIMARY KEY (room, tag)
	) WITHOUT ROWID;
	CREATE TABLE IF NOT EXISTS retired (
		id TEXT PRIMARY KEY,
		at INTEGER NOT NULL
	) WITHOUT ROWID;
	`
};

/** The page cache's size as SQLite reads `cache_size`: negative, in KiB (SQLite's default). */
export const PAGE_CACHE_KIB = -2000;

export interface StoredRoom {
	cap: Uint8Array;
	bytes: number;
	rows: number;
}

/** A room's retirement plan and how far it has got. */
export interface RetirementPlan {
	retainUntil: number;
	/** Planned device tags. */
	devices: number;
	/** Planned device tags not reported as moved yet. */
	pending: number;
}

export interface UpdateRow {
	seq: number;
	bytes: Uint8Array;
}

export class StoreError extends Error {
	static readonly NAME = 'StoreError';
	override name = StoreError.NAME;
}

export class RelayStore {
	readonly path: string;
	readonly #db: Database.Database;
	readonly #stmt: {
		room: Database.Statement<[string], { cap: Buffer; bytes: number }>;
		rows: Database.Statement<[string], { n: number }>;
		claim: Database.Statement<[string, Buffer, number]>;
		append: Database.Statement<[string, Buffer]>;
		addBytes: Database.Statement<[number, string]>;
		updates: Database.Statement<[string], { bytes: Buffer }>;
		compactable: Database.Statement<[string, number, number], { seq: number; bytes: Buffer }>;
		remove: Database.Statement<[number, string]>;
		total: Database.Statement<[], { total: number }>;
		cap: Database.Statement<[string], { cap: Buffer }>;
		isRetired: Database.Statement<[string], { n: number }>;
		plan: Database.Statement<[string, number, number]>;
		clearDevices: Database.Statement<[string]>;
		addDevice: Database.Statement<[string, string]>;
		planOf: Database.Statement<[string], { retainUntil: number; devices: number; pending: number }>;
		hasMoved: Database.Statement<[string, string], { n: number }>;
		movedCount: Database.Statement<[string], { n: number }>;
		addMoved: Database.Statement<[string, string, number]>;
		due: Database.Statement<[number], { room: string }>;
		roomBytes: Database.Statement<[string], { bytes: number }>;
		dropUpdates: Database.Statement<[string]>;
		dropRoom: Database.Statement<[string]>;
		dropPlan: Database.Statement<[string]>;
		dropMoved: Database.Statement<[string]>;
		tombstone: Database.Statement<[string, number]>;
	};
	readonly #appendTx: (room: string, bytes: Uint8Array) => void;
	readonly #replaceTx: (
		room: string,
		seqs: readonly number[],
		removedBytes: number,
		merged: Uint8Array
	) => void;
	readonly #planTx: (
		room: string,
		tags: readonly string[],
		retainUntil: number,
		now: number
	) => void;
	readonly #movedTx: (room: string, tag: string, now: number, limit: number) => boolean;
	readonly #retireTx: (room: string, now: number) => number;
	#totalBytes: number;

	constructor(dataDir: string) {
		this.path = join(dataDir, DATABASE_FILE);
		const { db, from } = openSqlite(this.path, SCHEMA, {
			pragmas: [
				// Deleted content is overwritten with zeros (see the module comment).
				'secure_delete = ON',
				// SQLite's own default page cache (2 MB), not better-sqlite3's 16 MB: the
				// relay mostly appends, the OS caches the file anyway, and a busy room's
				// writes would otherwise fill all 16 MB of the relay's memory with pages.
				`cache_size = ${PAGE_CACHE_KIB}`
			],
			newer: (message) => new StoreError(message)
		});
		this.#db = db;
		if (from === 1) {
			// Schema 1 deleted rows (compaction) without secure_delete: their bytes
			// may sit in free space. Rebuilding the file once drops them.
			try {
				db.exec('VACUUM');
				this.checkpoint();
			} catch (err) {
				db.close();
				throw err;
			}
		}
		this.#stmt = {
			room: db.prepare('SELECT cap, bytes FROM rooms WHERE id = ?'),
			rows: db.prepare('SELECT count(*) AS n FROM updates WHERE room = ?'),
			claim: db.prepare(
				'INSERT OR IGNORE INTO rooms (id, cap, created, bytes) VALUES (?, ?, ?, 0)'
			),
			append: db.prepare('INSERT INTO updates (room, bytes) VALUES (?, ?)'),
			addBytes: db.prepare('UPDATE rooms SET bytes = bytes + ? WHERE id = ?'),
			updates: db.prepare('SELECT bytes FROM updates WHERE room = ? ORDER BY seq'),
			compactable: db.prepare(
				'SELECT seq, bytes FROM updates WHERE room = ? AND length(bytes) < ? ORDER BY seq LIMIT ?'
			),
			remove: db.prepare('DELETE FROM updates WHERE seq = ? AND room = ?'),
			total: db.prepare('SELECT coalesce(sum(bytes), 0) AS total FROM rooms'),
			cap: db.prepare('SELECT cap FROM rooms WHERE id = ?'),
			isRetired: db.prepare('SELECT count(*) AS n FROM retired WHERE id = ?'),
			plan: db.prepare(
				`INSERT INTO retire_plans (room, retain_until, planned) VALUES (?, ?, ?)
				 ON CONFLICT (room) DO UPDATE SET retain_until = excluded.retain_until, planned = excluded.planned`
			),
			clearDevices: db.prepare('DELETE FROM retire_devices WHERE room = ?'),
			addDevice: db.prepare('INSERT OR IGNORE INTO retire_devices (room, tag) VALUES (?, ?)'),
			planOf: db.prepare(
				`SELECT p.retain_until AS retainUntil,
				        (SELECT count(*) FROM retire_devices d WHERE d.room = p.room) AS devices,
				        (SELECT count(*) FROM retire_devices d WHERE d.room = p.room AND NOT EXISTS
				           (SELECT 1 FROM moved m WHERE m.room = d.room AND m.tag = d.tag)) AS pending
				 FROM retire_plans p WHERE p.room = ?`
			),
			hasMoved: db.prepare('SELECT count(*) AS n FROM moved WHERE room = ? AND tag = ?'),
			movedCount: db.prepare('SELECT count(*) AS n FROM moved WHERE room = ?'),
			addMoved: db.prepare('INSERT OR IGNORE INTO moved (room, tag, at) VALUES (?, ?, ?)'),
			due: db.prepare(
				`SELECT p.room AS room FROM retire_plans p
				 WHERE p.retain_until <= ? OR NOT EXISTS
				   (SELECT 1 FROM retire_devices d WHERE d.room = p.room AND NOT EXISTS
				     (SELECT 1 FROM moved m WHERE m.room = d.room AND m.tag = d.tag))`
			),
			roomBytes: db.prepare('SELECT bytes FROM rooms WHERE id = ?'),
			dropUpdates: db.prepare('DELETE FROM updates WHERE room = ?'),
			dropRoom: db.prepare('DELETE FROM rooms WHERE id = ?'),
			dropPlan: db.prepare('DELETE FROM retire_plans WHERE room = ?'),
			dropMoved: db.prepare('DELETE FROM moved WHERE room = ?'),
			tombstone: db.prepare('INSERT OR IGNORE INTO retired (id, at) VALUES (?, ?)')
		};
		const stmt = this.#stmt;
		this.#appendTx = db.transaction((room: string, bytes: Uint8Array) => {
			stmt.append.run(room, asBuffer(bytes));
			if (stmt.addBytes.run(bytes.length, room).changes !== 1) {
				throw new StoreError(`room ${room} is not registered`);
			}
		});
		this.#replaceTx = db.transaction(
			(room: string, seqs: readonly number[], removedBytes: number, merged: Uint8Array) => {
				for (const seq of seqs) {
					if (stmt.remove.run(seq, room).changes !== 1) {
						throw new StoreError(`update ${seq} of room ${room} is missing`);
					}
				}
				stmt.append.run(room, asBuffer(merged));
				stmt.addBytes.run(merged.length - removedBytes, room);
			}
		);
		this.#planTx = db.transaction(
			(room: string, tags: readonly string[], retainUntil: number, now: number) => {
				stmt.plan.run(room, retainUntil, now);
				stmt.clearDevices.run(room);
				for (const tag of tags) stmt.addDevice.run(room, tag);
			}
		);
		this.#movedTx = db.transaction((room: string, tag: string, now: number, limit: number) => {
			if (stmt.hasMoved.get(room, tag)!.n > 0) return true;
			if (stmt.movedCount.get(room)!.n >= limit) return false;
			stmt.addMoved.run(room, tag, now);
			return true;
		});
		this.#retireTx = db.transaction((room: string, now: number) => {
			const bytes = stmt.roomBytes.get(room)?.bytes ?? 0;
			stmt.dropUpdates.run(room);
			stmt.dropRoom.run(room);
			stmt.clearDevices.run(room);
			stmt.dropPlan.run(room);
			stmt.dropMoved.run(room);
			stmt.tombstone.run(room, now);
			return bytes;
		});
		this.#totalBytes = stmt.total.get()!.total;
	}

	/** Sum of every room's stored update bytes. */
	get totalBytes(): number {
		return this.#totalBytes;
	}

	room(id: string): StoredRoom | undefined {
		const row = this.#stmt.room.get(id);
		if (!row) return undefined;
		return { cap: new Uint8Array(row.cap), bytes: row.bytes, rows: this.#stmt.rows.get(id)!.n };
	}

	/**
	 * Registers `cap` for a room nobody has claimed yet. Returns the capability the
	 * room is registered with afterwards: `cap` if this call claimed it, else the
	 * earlier claimant's.
	 */
	claim(id: string, cap: Uint8Array, now: number): Uint8Array {
		this.#stmt.claim.run(id, asBuffer(cap), now);
		return new Uint8Array(this.#stmt.room.get(id)!.cap);
	}

	/** Appends one accepted update; durable when this returns. */
	append(room: string, bytes: Uint8Array): void {
		this.#appendTx(room, bytes);
		this.#totalBytes += bytes.length;
	}

	/** Every stored update of a room, oldest first. */
	updates(room: string): Uint8Array[] {
		return this.#stmt.updates.all(room).map((row) => bytesOf(row.bytes));
	}

	/**
	 * The room's oldest rows smaller than `maxRowBytes`, at most `limit` of
	 * them and, past the first two, no more than `maxBytes` together. Rows are
	 * read one at a time and the reading stops there: only what is merged is
	 * ever in memory.
	 */
	compactable(room: string, maxRowBytes: number, maxBytes: number, limit: number): UpdateRow[] {
		const chunk: UpdateRow[] = [];
		let total = 0;
		for (const row of this.#stmt.compactable.iterate(room, maxRowBytes, limit)) {
			if (chunk.length >= 2 && total + row.bytes.length > maxBytes) break;
			chunk.push({ seq: row.seq, bytes: bytesOf(row.bytes) });
			total += row.bytes.length;
		}
		return chunk;
	}

	/**
	 * Replaces exactly the rows `seqs` of `room` by one `merged` row, in one
	 * transaction. Throws (and changes nothing) if any of them is gone.
	 */
	replace(room: string, seqs: readonly number[], removedBytes: number, merged: Uint8Array): void {
		this.#replaceTx(room, seqs, removedBytes, merged);
		this.#totalBytes += merged.length - removedBytes;
	}

	/** The capability a room is registered with, if it is. */
	capOf(id: string): Uint8Array | undefined {
		const row = this.#stmt.cap.get(id);
		return row ? new Uint8Array(row.cap) : undefined;
	}

	/** Whether the room was retired (its tombstone is kept for good). */
	isRetired(id: string): boolean {
		return this.#stmt.isRetired.get(id)!.n > 0;
	}

	/** Records or replaces the room's retirement plan; moved tags already recorded count. */
	plan(room: string, tags: readonly string[], retainUntil: number, now: number): void {
		this.#planTx(room, tags, retainUntil, now);
	}

	planOf(room: string): RetirementPlan | undefined {
		return this.#stmt.planOf.get(room);
	}

	/**
	 * Records that the device behind `tag` left the room (idempotent). False
	 * when the room already holds `limit` other moved tags: nothing is recorded.
	 */
	markMoved(room: string, tag: string, now: number, limit: number): boolean {
		return this.#movedTx(room, tag, now, limit);
	}

	/** Rooms whose plan is fulfilled: every planned tag moved, or the deadline passed. */
	due(now: number): string[] {
		return this.#stmt.due.all(now).map((row) => row.room);
	}

	/**
	 * Deletes every update of the room, its row, its plan and its moved tags,
	 * and leaves a tombstone, in one transaction. Returns the update bytes
	 * removed. The caller checkpoints afterwards (`checkpoint`): until then
	 * the write-ahead log may still hold older copies of the rows.
	 */
	retire(room: string, now: number): number {
		const bytes = this.#retireTx(room, now);
		this.#totalBytes -= bytes;
		return bytes;
	}

	/**
	 * Copies the write-ahead log into the database and truncates it to zero
	 * bytes, so deleted content survives in neither file. False when a reader
	 * kept it from finishing (try again later).
	 */
	checkpoint(): boolean {
		const [row] = this.#db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
		return row?.busy === 0;
	}

	close(): void {
		if (this.#db.open) this.#db.close();
	}
}

/** A Buffer view of the same bytes (no copy), which is what the driver binds as a BLOB. */
function asBuffer(bytes: Uint8Array): Buffer {
	return Buffer.isBuffer(bytes)
		? bytes
		: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A blob SQLite returned, as a plain Uint8Array over the same memory (no copy). */
function bytesOf(blob: Buffer): Uint8Array {
	return new Uint8Array(blob.buffer, blob.byteOffset, blob.byteLength);
}
