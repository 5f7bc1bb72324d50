/**
 * Shared by the server tests: temporary directories, a stand-in web app
 * build, and a raw TCP client for requests `fetch` refuses to send.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const INDEX_HTML =
	'<!doctype html><html><head><title>Kith</title></head><body>shell</body></html>\n';
export const ENTRY_JS = 'console.log("kith");\n';
export const ENTRY_PATH = '/_app/immutable/entry/start.abc123.js';

const made: string[] = [];

export async function tempDir(prefix = 'kith-test-'): Promise<string> {
	const dir = await mkdtemp(join(tmpdir(), prefix));
	made.push(dir);
	return dir;
}

export async function removeTempDirs(): Promise<void> {
	await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}

/** A directory shaped like `npm run build` output: index.html plus a hashed asset. */
export async function fakeBuild(): Promise<string> {
	const dir = await tempDir('kith-build-');
	await writeFile(join(dir, 'index.html'), INDEX_HTML);
	await mkdir(join(dir, '_app/immutable/entry'), { recursive: true });
	await writeFile(join(dir, ENTRY_PATH.slice(1)), ENTRY_JS);
	await writeFile(join(dir, 'robots.txt'), 'User-agent: *\nDisallow:\n');
	return dir;
}

/**
 * Writes `data` to a fresh TCP connection and returns everything the server
 * sends back until it closes the connection (or `timeoutMs` passes).
 */
export function rawRequest(port: number, data: string | Buffer, timeoutMs = 3000): Promise<string> {
	return new Promise((resolve, reject) => {
		const chunks: Buffer[] = [];
		const socket = connect(port, '127.0.0.1', () => socket.write(data));
		const timer = setTimeout(() => {
			socket.destroy();
			resolve(Buffer.concat(chunks).toString('latin1'));
		}, timeoutMs);
		socket.on('data', (chunk: Buffer) => chunks.push(chunk));
		socket.on('error', (err: NodeJS.ErrnoException) => {
			// A reset after the answer arrived is still an answer.
			if (err.code === 'ECONNRESET' && chunks.length > 0) return;
			clearTimeout(timer);
			reject(err);
		});
		socket.on('close', () => {
			clearTimeout(timer);
			resolve(Buffer.concat(chunks).toString('latin1'));
		});
	});
}

/** The status code of a raw HTTP response, or 0 when there was none. */
export function statusOf(response: string): number {
	const m = /^HTTP\/1\.[01] (\d{3})/.exec(response);
	return m ? Number(m[1]) : 0;
}
