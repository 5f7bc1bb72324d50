/**
 * The real entry point in a child process, as an operator runs it.
 *
 * The child is the `tsx` binary that `npm run serve` runs, not `npx tsx`:
 * on SIGTERM npm's exec wrapper exits by the signal itself, so its exit code
 * says nothing about the server (process-group signals, as a terminal or the
 * end-to-end runner send them, still reach the server through it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { truncate, writeFile } from 'node:fs/promises';
import { Agent, get, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { fakeBuild, removeTempDirs, tempDir } from './test-helpers.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tsx = join(root, 'node_modules', '.bin', 'tsx');
const children: ChildProcess[] = [];

afterEach(async () => {
	for (const child of children.splice(0)) {
		if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
	}
	await removeTempDirs();
});

interface Started {
	child: ChildProcess;
	url: string;
	dataDir: string;
	lines: string[];
	exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
	waitForLine: (pattern: RegExp, timeoutMs?: number) => Promise<string>;
	stderr: () => string;
}

function run(env: Record<string, string>): Omit<Started, 'url' | 'dataDir'> {
	const child = spawn(tsx, ['sync-server/src/main.ts'], {
		cwd: root,
		env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
		stdio: ['ignore', 'pipe', 'pipe']
	});
	children.push(child);
	const lines: string[] = [];
	const waiters: Array<{ pattern: RegExp; resolve: (line: string) => void }> = [];
	createInterface({ input: child.stdout! }).on('line', (line) => {
		lines.push(line);
		for (const w of waiters.filter((w) => w.pattern.test(line))) {
			waiters.splice(waiters.indexOf(w), 1);
			w.resolve(line);
		}
	});
	let errText = '';
	child.stderr!.on('data', (chunk: Buffer) => (errText += chunk.toString()));
	const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
		child.once('exit', (code, signal) => resolve({ code, signal }))
	);
	const waitForLine = (pattern: RegExp, timeoutMs = 20_000) =>
		new Promise<string>((resolve, reject) => {
			const seen = lines.find((l) => pattern.test(l));
			if (seen) return resolve(seen);
			const timer = setTimeout(
				() =>
					reject(
						new Error(
							`no line matching ${pattern}; stdout: ${lines.join('\n')}; stderr: ${errText}`
						)
					),
				timeoutMs
			);
			waiters.push({
				pattern,
				resolve: (line) => {
					clearTimeout(timer);
					resolve(line);
				}
			});
			void exited.then(() =>
				setTimeout(() => reject(new Error(`exited before ${pattern}; stderr: ${errText}`)), 50)
			);
		});
	return { child, lines, exited, waitForLine, stderr: () => errText };
}

async function startMain(env: Record<string, string>): Promise<Started> {
	const started = run(env);
	const line = await started.waitForLine(/^Kith listening on /);
	const m = /^Kith listening on (http:\/\/\S+) \(data: (.+)\)$/.exec(line);
	expect(m, line).not.toBeNull();
	return { ...started, url: m![1]!, dataDir: m![2]! };
}

function getResponse(url: string, agent?: Agent): Promise<IncomingMessage> {
	return new Promise((resolve, reject) => get(url, { agent }, resolve).on('error', reject));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts a 32 MiB download and stops reading it, so it stays in flight. */
async function stalledDownload(url: string) {
	const res = await getResponse(url);
	expect(res.statusCode).toBe(200);
	let bytes = 0;
	res.on('data', (chunk: Buffer) => (bytes += chunk.length));
	res.pause();
	const ended = new Promise<number>((resolve, reject) => {
		res.on('end', () => resolve(bytes));
		res.on('error', reject);
		res.on('aborted', () => reject(new Error('download cut')));
	});
	return { resume: () => res.resume(), ended };
}

describe('main', () => {
	it('creates the data dir, drains in-flight requests on SIGTERM and exits 0', async () => {
		const build = await fakeBuild();
		const big = join(build, 'big.bin');
		const size = 32 * 1024 * 1024;
		await truncate(await createEmpty(big), size);
		const dataDir = join(await tempDir('kith-main-'), 'nested', 'data');
		const timeoutMs = 15_000;

		const s = await startMain({
			KITH_DATA: dataDir,
			KITH_STATIC: build,
			KITH_SHUTDOWN_TIMEOUT_MS: String(timeoutMs)
		});
		expect(s.dataDir).toBe(dataDir);
		expect(statSync(dataDir).isDirectory()).toBe(true);

		const health = await fetch(`${s.url}/healthz`);
		expect(((await health.json()) as { status: string }).status).toBe('ok');

		// One idle keep-alive connection, one download in flight.
		const agent = new Agent({ keepAlive: true });
		const idle = await getResponse(`${s.url}/healthz`, agent);
		idle.resume();
		const download = await stalledDownload(`${s.url}/big.bin`);

		const t0 = Date.now();
		s.child.kill('SIGTERM');
		await s.waitForLine(/"msg":"shutting down"/);
		await sleep(300);
		expect(s.child.exitCode).toBeNull(); // waiting for the download

		download.resume();
		expect(await download.ended).toBe(size);
		const { code } = await s.exited;
		expect(code).toBe(0);
		expect(Date.now() - t0).toBeLessThan(timeoutMs);
		expect(s.lines.some((l) => l.includes('"msg":"stopped"'))).toBe(true);
		agent.destroy();
	});

	it('exits at once on a second signal', async () => {
		const build = await fakeBuild();
		await truncate(await createEmpty(join(build, 'big.bin')), 32 * 1024 * 1024);
		const s = await startMain({
			KITH_DATA: await tempDir('kith-main-'),
			KITH_STATIC: build,
			KITH_SHUTDOWN_TIMEOUT_MS: '20000'
		});
		const download = await stalledDownload(`${s.url}/big.bin`);
		download.ended.catch(() => {});

		s.child.kill('SIGTERM');
		await s.waitForLine(/"msg":"shutting down"/);
		const t0 = Date.now();
		s.child.kill('SIGTERM');
		const { code } = await s.exited;
		expect(code).toBe(128 + 15);
		// Far below the 20 s drain it would otherwise wait for (generous: CI machines are busy).
		expect(Date.now() - t0).toBeLessThan(10_000);
	});

	it('refuses a bad configuration with exit code 2 and says what is wrong', async () => {
		const dataDir = join(await tempDir('kith-main-'), 'never');
		const s = run({ PORT: 'eighty', KITH_DATA: dataDir });
		const { code } = await s.exited;
		expect(code).toBe(2);
		expect(s.stderr()).toContain('PORT must be a whole number from 0 to 65535 (got "eighty")');
		expect(existsSync(dataDir)).toBe(false);
	});

	it('serves a 503 page, not a crash, when the app is not built', async () => {
		const s = await startMain({
			KITH_DATA: await tempDir('kith-main-'),
			KITH_STATIC: join(await tempDir('kith-main-'), 'build')
		});
		const res = await fetch(`${s.url}/`);
		expect(res.status).toBe(503);
		expect(await res.text()).toContain('npm run build');
		s.child.kill('SIGINT');
		expect((await s.exited).code).toBe(0);
	});
});

async function createEmpty(path: string): Promise<string> {
	await writeFile(path, '');
	return path;
}
