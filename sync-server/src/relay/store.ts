/**
 * The relay's storage: SQLite (better-sqlite3) in `KITH_DATA/relay.sqlite`.
 *
 *   rooms   (id, cap, created, bytes)   one row per claimed room; `cap` is the
 *                                       capability public key that admits to it,
 *                                       `bytes` the sum of its update rows
 *   updates (seq, room, bytes)          Yjs updates (v1) as they were accepted,
 *                                       in arrival order (seq)
 *
 * WAL with synchronous=NORMAL: a transaction that returned survives a killed
 * process (not necessarily a power cut), which is what an acknowledgement
 * promises. Every write is one transaction, so a crash leaves either all of it
 * or none. The database holds only what clients sent: ciphertext envelopes
 * inside Yjs updates, and public keys.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';

export const DATABASE_FILE = 'relay.sqlite';
const SCHEMA_VERSION = 1;

export interface StoredRoom {
	cap: Uint8Array;
	bytes: number;
	rows: number;
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
	};
	readonly #appendTx: (room: string, bytes: Uint8Array) => void;
	readonly #replaceTx: (
		room: string,
		seqs: readonly number[],
		removedBytes: number,
		merged: Uint8Array
	) => void;
	#totalBytes: number;

	constructor(dataDir: string) {
		this.path = join(dataDir, DATABASE_FILE);
		this.#db = new Database(this.path);
		try {
			this.#db.pragma('journal_mode = WAL');
			this.#db.pragma('synchronous = NORMAL');
			this.#migrate();
		} catch (err) {
			this.#db.close();
			throw err;
		}
		const db = this.#db;
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
			total: db.prepare('SELECT coalesce(sum(bytes), 0) AS total FROM rooms')
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
		this.#totalBytes = stmt.total.get()!.total;
	}

	#migrate(): void {
		const version = this.#db.pragma('user_version', { simple: true }) as number;
		if (version > SCHEMA_VERSION) {
			throw new StoreError(
				`${this.path} was written by a newer Kith (schema ${version}); this one reads ${SCHEMA_VERSION}.`
			);
		}
		if (version === SCHEMA_VERSION) return;
		this.#db.exec(`
			BEGIN;
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
			PRAGMA user_version = ${SCHEMA_VERSION};
			COMMIT;
		`);
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
		return this.#stmt.updates.all(room).map((row) => new Uint8Array(row.bytes));
	}

	/** Up to `limit` of the room's oldest rows smaller than `maxRowBytes`. */
	compactable(room: string, maxRowBytes: number, limit: number): UpdateRow[] {
		return this.#stmt.compactable
			.all(room, maxRowBytes, limit)
			.map((row) => ({ seq: row.seq, bytes: new Uint8Array(row.bytes) }));
	}

	/**
	 * Replaces exactly the rows `seqs` of `room` by one `merged` row, in one
	 * transaction. Throws (and changes nothing) if any of them is gone.
	 */
	replace(room: string, seqs: readonly number[], removedBytes: number, merged: Uint8Array): void {
		this.#replaceTx(room, seqs, removedBytes, merged);
		this.#totalBytes += merged.length - removedBytes;
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
