/**
 * Opening one of the server's SQLite files (the relay's updates, push
 * subscriptions): WAL journal, NORMAL sync, and a schema versioned by
 * `user_version`, brought up to date in one transaction.
 */
import Database from 'better-sqlite3';

export interface SqliteSchema {
	version: number;
	/**
	 * Statements that bring a file of any older schema (a new file is 0) to
	 * `version`: `CREATE … IF NOT EXISTS` and the like. They run in one
	 * transaction with the version bump.
	 */
	sql: string;
}

export interface OpenedSqlite {
	db: Database.Database;
	/** The schema the file had before (0: new; `schema.version`: nothing to do). */
	from: number;
}

/**
 * Opens `path`, sets `pragmas` (after WAL and NORMAL sync) and brings its
 * schema up to date. A file written by a newer schema is refused with the
 * error `newer` makes; on any failure the file is closed again.
 */
export function openSqlite(
	path: string,
	schema: SqliteSchema,
	options: { pragmas?: readonly string[]; newer: (message: string) => Error }
): OpenedSqlite {
	const db = new Database(path);
	try {
		// Read before anything is set: a file this version refuses is left as it was.
		const from = db.pragma('user_version', { simple: true }) as number;
		if (from > schema.version) {
			throw options.newer(
				`${path} was written by a newer Kith (schema ${from}); this one reads ${schema.version}.`
			);
		}
		db.pragma('journal_mode = WAL');
		db.pragma('synchronous = NORMAL');
		for (const pragma of options.pragmas ?? []) db.pragma(pragma);
		if (from < schema.version) {
			db.exec(`BEGIN;\n${schema.sql}\nPRAGMA user_version = ${schema.version};\nCOMMIT;`);
		}
		return { db, from };
	} catch (err) {
		db.close();
		throw err;
	}
}
