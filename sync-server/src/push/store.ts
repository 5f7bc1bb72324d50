/**
 * Push subscriptions: SQLite (better-sqlite3, WAL) in `KITH_DATA/push.db`, a
 * database of its own so push never touches the relay's store.
 *
 *   subscriptions (endpoint, p256dh, auth, device, updated)
 *                            one row per browser push subscription; the
 *                            endpoint is its identity (unguessable, so
 *                            knowing it is ownership)
 *   subscription_rooms (endpoint, room, muted)
 *                            the rooms it was proven for, and whether the
 *                            user muted each
 *
 * The endpoint and keys are what a push service needs to deliver and
 * decrypt; nothing here can read a message. Every write is one transaction.
 */
import type Database from 'better-sqlite3';
import { join } from 'node:path';
import { openSqlite, type SqliteSchema } from '../sqlite.ts';

export const PUSH_DATABASE_FILE = 'push.db';
const SCHEMA: SqliteSchema = {
	version: 1,
	sql: `
	CREATE TABLE IF NOT EXISTS subscriptions (
		endpoint TEXT PRIMARY KEY,
		p256dh   TEXT NOT NULL,
		auth     TEXT NOT NULL,
		device   TEXT NOT NULL,
		updated  INTEGER NOT NULL
	);
	CREATE TABLE IF NOT EXISTS subscription_rooms (
		endpoint TEXT NOT NULL,
		room     TEXT NOT NULL,
		muted    INTEGER NOT NULL,
		PRIMARY KEY (endpoint, room)
	) WITHOUT ROWID;
	CREATE INDEX IF NOT EXISTS subscription_rooms_by_room ON subscription_rooms (room, endpoint);
	`
};

export interface Subscription {
	endpoint: string;
	/** The browser's ECDH public key (base64url, uncompressed P-256). */
	p256dh: string;
	/** The browser's auth secret (base64url, 16 bytes). */
	auth: string;
	/** The opaque device id the client names on its connections. */
	device: string;
}

export interface SubscribedRoom {
	room: string;
	muted: boolean;
}

export class PushStoreError extends Error {
	static readonly NAME = 'PushStoreError';
	override name = PushStoreError.NAME;
}

type SubscriptionRow = Subscription;

export class PushStore {
	readonly path: string;
	readonly #db: Database.Database;
	readonly #stmt: {
		upsert: Database.Statement<[string, string, string, string, number]>;
		clearRooms: Database.Statement<[string]>;
		addRoom: Database.Statement<[string, string, number]>;
		remove: Database.Statement<[string]>;
		get: Database.Statement<[string], SubscriptionRow>;
		rooms: Database.Statement<[string], { room: string; muted: number }>;
		targets: Database.Statement<[string], SubscriptionRow>;
		count: Database.Statement<[], { n: number }>;
	};
	readonly #replaceTx: (sub: Subscription, rooms: readonly SubscribedRoom[], now: number) => void;
	readonly #removeTx: (endpoint: string) => boolean;
	#count: number;

	constructor(dataDir: string) {
		this.path = join(dataDir, PUSH_DATABASE_FILE);
		this.#db = openSqlite(this.path, SCHEMA, {
			newer: (message) => new PushStoreError(message)
		}).db;
		const db = this.#db;
		this.#stmt = {
			upsert: db.prepare(
				`INSERT INTO subscriptions (endpoint, p256dh, auth, device, updated) VALUES (?, ?, ?, ?, ?)
				 ON CONFLICT (endpoint) DO UPDATE SET
				   p256dh = excluded.p256dh, auth = excluded.auth,
				   device = excluded.device, updated = excluded.updated`
			),
			clearRooms: db.prepare('DELETE FROM subscription_rooms WHERE endpoint = ?'),
			addRoom: db.prepare(
				'INSERT INTO subscription_rooms (endpoint, room, muted) VALUES (?, ?, ?)'
			),
			remove: db.prepare('DELETE FROM subscriptions WHERE endpoint = ?'),
			get: db.prepare(
				'SELECT endpoint, p256dh, auth, device FROM subscriptions WHERE endpoint = ?'
			),
			rooms: db.prepare(
				'SELECT room, muted FROM subscription_rooms WHERE endpoint = ? ORDER BY room'
			),
			targets: db.prepare(
				`SELECT s.endpoint, s.p256dh, s.auth, s.device
				 FROM subscription_rooms r JOIN subscriptions s ON s.endpoint = r.endpoint
				 WHERE r.room = ? AND r.muted = 0`
			),
			count: db.prepare('SELECT count(*) AS n FROM subscriptions')
		};
		const stmt = this.#stmt;
		this.#replaceTx = db.transaction(
			(sub: Subscription, rooms: readonly SubscribedRoom[], now: number) => {
				stmt.upsert.run(sub.endpoint, sub.p256dh, sub.auth, sub.device, now);
				stmt.clearRooms.run(sub.endpoint);
				for (const { room, muted } of rooms) stmt.addRoom.run(sub.endpoint, room, muted ? 1 : 0);
			}
		);
		this.#removeTx = db.transaction((endpoint: string) => {
			stmt.clearRooms.run(endpoint);
			return stmt.remove.run(endpoint).changes > 0;
		});
		this.#count = stmt.count.get()!.n;
	}

	/** Subscriptions stored. */
	get count(): number {
		return this.#count;
	}

	/** Stores `sub` (new, or updated keys and device) with exactly `rooms`, in one transaction. */
	replace(sub: Subscription, rooms: readonly SubscribedRoom[], now: number): void {
		this.#replaceTx(sub, rooms, now);
		this.#count = this.#stmt.count.get()!.n;
	}

	/** Removes a subscription and its rooms; false if there was none. */
	remove(endpoint: string): boolean {
		const removed = this.#removeTx(endpoint);
		if (removed) this.#count--;
		return removed;
	}

	get(endpoint: string): Subscription | undefined {
		return this.#stmt.get.get(endpoint);
	}

	rooms(endpoint: string): SubscribedRoom[] {
		return this.#stmt.rooms.all(endpoint).map((r) => ({ room: r.room, muted: r.muted === 1 }));
	}

	/** The subscriptions registered for `room` and not muted there. */
	targets(room: string): Subscription[] {
		return this.#stmt.targets.all(room);
	}

	close(): void {
		if (this.#db.open) this.#db.close();
	}
}
