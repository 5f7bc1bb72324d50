import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobStoreError, BlobStore } from './blobs/store.ts';
import { PushStore, PushStoreError } from './push/store.ts';
import { RelayStore, StoreError } from './relay/store.ts';
import { openSqlite } from './sqlite.ts';

class TestError extends Error {}

const SCHEMA = {
	version: 2,
	sql: 'CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT);'
};

let dir: string;
beforeEach(() => {
	dir = mkdtempSync(join(tmpdir(), 'kith-sqlite-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function versionOf(path: string): number {
	const db = new Database(path);
	try {
		return db.pragma('user_version', { simple: true }) as number;
	} finally {
		db.close();
	}
}

function journalOf(path: string): string {
	const db = new Database(path, { readonly: true });
	try {
		return db.pragma('journal_mode', { simple: true }) as string;
	} finally {
		db.close();
	}
}

function writeVersion(path: string, version: number): void {
	const db = new Database(path);
	db.pragma(`user_version = ${version}`);
	db.close();
}

describe('openSqlite', () => {
	it('makes a new file at the schema, in WAL mode, and finds nothing to do the next time', () => {
		const path = join(dir, 'a.sqlite');
		const first = openSqlite(path, SCHEMA, { newer: (m) => new TestError(m) });
		expect(first.from).toBe(0);
		expect(first.db.pragma('journal_mode', { simple: true })).toBe('wal');
		first.db.prepare('INSERT INTO notes (text) VALUES (?)').run('kept');
		first.db.close();
		expect(versionOf(path)).toBe(2);
		const second = openSqlite(path, SCHEMA, { newer: (m) => new TestError(m) });
		expect(second.from).toBe(2);
		expect(second.db.prepare('SELECT text FROM notes').pluck().all()).toEqual(['kept']);
		second.db.close();
	});

	it('brings an older file up to date, keeping what it holds', () => {
		const path = join(dir, 'b.sqlite');
		const old = new Database(path);
		old.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT); PRAGMA user_version = 1;');
		old.prepare('INSERT INTO notes (text) VALUES (?)').run('from v1');
		old.close();
		const { db, from } = openSqlite(path, SCHEMA, { newer: (m) => new TestError(m) });
		expect(from).toBe(1);
		expect(db.prepare('SELECT text FROM notes').pluck().all()).toEqual(['from v1']);
		db.close();
		expect(versionOf(path)).toBe(2);
	});

	it('sets the pragmas it is given', () => {
		const { db } = openSqlite(join(dir, 'c.sqlite'), SCHEMA, {
			pragmas: ['secure_delete = ON', 'cache_size = -1000'],
			newer: (m) => new TestError(m)
		});
		expect(db.pragma('secure_delete', { simple: true })).toBe(1);
		expect(db.pragma('cache_size', { simple: true })).toBe(-1000);
		db.close();
	});

	it('refuses a file of a newer schema with its error, and leaves it as it was', () => {
		const path = join(dir, 'd.sqlite');
		writeVersion(path, 3);
		expect(() => openSqlite(path, SCHEMA, { newer: (m) => new TestError(m) })).toThrow(
			new TestError(`${path} was written by a newer Kith (schema 3); this one reads 2.`)
		);
		expect(versionOf(path)).toBe(3);
		// Not switched to WAL, and closed again: no -wal file is left open beside it.
		expect(journalOf(path)).toBe('delete');
		expect(existsSync(`${path}-wal`)).toBe(false);
	});

	it("refuses a newer relay, push or blob database with that store's own error", () => {
		for (const [file, open, error] of [
			['relay.sqlite', () => new RelayStore(dir), StoreError],
			['push.db', () => new PushStore(dir), PushStoreError],
			[
				'blobs.sqlite',
				() => new BlobStore(dir, { quotaBytes: 1, roomQuotaBytes: 1 }),
				BlobStoreError
			]
		] as const) {
			writeVersion(join(dir, file), 99);
			expect(open).toThrow(error);
		}
	});
});
