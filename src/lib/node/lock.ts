/**
 * One process at a time opens a data dir: a lock file holding the owner's
 * pid, created exclusively. A lock left by a process that is gone is taken
 * over. `kith serve` holds the lock while it runs; other commands then talk
 * to it over its socket instead of opening the dir (../../cli/control.ts).
 */
import { openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { locked } from './errors';

export const LOCK_FILE = 'lock';

function alive(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch (error) {
		return (error as NodeJS.ErrnoException).code === 'EPERM';
	}
}

/** Take the data dir's lock, waiting up to `waitMs` for another command to finish. */
export async function acquireLock(dir: string, waitMs: number): Promise<() => void> {
	const path = join(dir, LOCK_FILE);
	const deadline = Date.now() + waitMs;
	for (;;) {
		try {
			const fd = openSync(path, 'wx', 0o600);
			writeSync(fd, String(process.pid));
			closeSync(fd);
			let released = false;
			return () => {
				if (released) return;
				released = true;
				rmSync(path, { force: true });
			};
		} catch (error) {
			if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
				throw locked(`cannot lock the data dir ${dir}: ${(error as Error).message}`);
			}
		}
		let owner = NaN;
		try {
			owner = Number.parseInt(readFileSync(path, 'utf8'), 10);
		} catch {
			// removed meanwhile: try again
		}
		if (Number.isSafeInteger(owner) && owner > 0 && !alive(owner)) {
			rmSync(path, { force: true });
			continue;
		}
		if (Date.now() >= deadline) {
			throw locked(`the data dir ${dir} is in use by another kith process (pid ${owner})`);
		}
		await new Promise((resolve) => setTimeout(resolve, 100));
	}
}
