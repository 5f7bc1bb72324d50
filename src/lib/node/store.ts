/**
 * The Node peer's storage: one SQLite file in the data dir (better-sqlite3).
 *
 * - `updates`: each room's Yjs updates as they were applied — the same
 *   envelope docs the browser keeps in IndexedDB, so every message at rest is
 *   an encrypted, signed envelope (DESIGN: data at rest is ciphertext).
 * - `meta`: small records (the wrapped keyring, pending joins, the libp2p key).
 *
 * Writes are synchronous and each in its own transaction: when a call
 * returns, the data is on disk.
 */
import Database from 'better-sqlite3';
import type { RoomId } from '../crypto';

export class NodeStore {
	readonly #db: Database.Database;

	constructor(file: string) {
		this.#db = new Database(file);
		this.#db.pragma('journal_mode = WAL');
		this.#db.pragma('synchronous = FULL');
		// Deleted rows (a retired generation's envelopes) are overwritten, not left in free pages.
		this.#db.pragma('secure_delete = ON');
		this.#db.exec(`
			CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
			CREATE TABLE IF NOT EXISTS updates (
				seq INTEGER PRIMARY KEY AUTOINCREMENT,
				room TEXT NOT NULL,
				data BLOB NOT NULL
			);
			CREATE INDEX IF NOT EXISTS updates_room ON updates (room, seq);
		`);
	}

	getMeta<T>(key: string): T | undefined {
		const row = this.#db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as
			{ value: string } | undefined;
		return row ? (JSON.parse(row.value) as T) : undefined;
	}

	putMeta(key: string, value: unknown): void {
		this.#db
			.prepare(
				'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'
			)
			.run(key, JSON.stringify(value));
	}

	appendUpdate(room: RoomId, update: Uint8Array): void {
		this.#db
			.prepare('INSERT INTO updates (room, data) VALUES (?, ?)')
			.run(room, Buffer.from(update));
	}

	updates(room: RoomId): { seq: number; data: Uint8Array }[] {
		const rows = this.#db
			.prepare('SELECT seq, data FROM updates WHERE room = ? ORDER BY seq')
			.all(room) as { seq: number; data: Buffer }[];
		return rows.map((row) => ({ seq: row.seq, data: new Uint8Array(row.data) }));
	}

	/** Replace rows up to `upTo` (inclusive) by one merged update, atomically. */
	compact(room: RoomId, upTo: number, merged: Uint8Array): void {
		const run = this.#db.transaction(() => {
			this.#db.prepare('DELETE FROM updates WHERE room = ? AND seq <= ?').run(room, upTo);
			this.appendUpdate(room, merged);
		});
		run();
	}

	/** Delete every update of a room (a retired generation), and truncate the log. */
	forget(room: RoomId): void {
		this.#db.prepare('DELETE FROM updates WHERE room = ?').run(room);
		this.#db.pragma('wal_checkpoint(TRUNCATE)');
	}

	close(): void {
		this.#db.close();
	}
}
