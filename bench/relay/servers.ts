/**
 * The relays under test, each started as its own child process on a loopback
 * port (so its RSS and CPU time are its own):
 *
 * - `kith`: the real server (sync-server/src/main.ts) with a temporary
 *   KITH_DATA, its rate limits raised (see RELAY_ENV) and LOG_LEVEL=warn;
 * - `plain`: bench/relay/plain-broadcaster.ts, opaque frames to every other client;
 * - `stock`: bench/relay/stock-server.ts, `@y/websocket-server` as its bin wires it.
 *
 * All three run as `node --import tsx <file>`, so each carries the same loader.
 * KITH_BENCH_RELAY_ARGS adds Node options to the relay processes, e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export type RelayKind = 'kith' | 'plain' | 'stock';

export const RELAY_NAMES: Record<RelayKind, string> = {
	kith: 'Kith relay',
	plain: 'plain ws broadcaster',
	stock: '@y/websocket-server 0.1.1'
};

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const ENTRY: Record<RelayKind, string> = {
	kith: 'sync-server/src/main.ts',
	plain: 'bench/relay/plain-broadcaster.ts',
	stock: 'bench/relay/stock-server.ts'
};

/**
 * The Kith relay's per-connection rate limits (docs/protocol.md, "Limits") are
 * raised to their maxima for the benchmarks: the single writer sends far more
 * than the default 200 frames/s, and a refusal would measure the limiter.
 */
export const RELAY_ENV: Record<string, string> = {
	KITH_RATE_MSGS_PER_SEC: '1000000',
	KITH_RATE_BYTES_PER_SEC: String(1024 * 1024 * 1024),
	LOG_LEVEL: 'warn'
};

export interface RelayProcess {
	kind: RelayKind;
	/** http://127.0.0.1:port */
	url: string;
	pid: number;
	/** Resident set size now (VmRSS), bytes. */
	rss(): number;
	/** Peak resident set size so far (VmHWM), bytes. */
	peakRss(): number;
	/** User + system CPU time so far, ms. */
	cpuMs(): number;
	/** True once the process exited (crashed or stopped). */
	readonly exited: boolean;
	stop(): Promise<void>;
}

/**
 * The Node options `npm run serve` gives the server (package.json), e.g. its
 * young-generation cap. Every relay of the benchmark runs with them, the
 * baselines too, so none is measured under settings the others lack.
 */
export function serveNodeOptions(): string[] {
	const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
		scripts: Record<string, string>;
	};
	const words = pkg.scripts.serve?.split(/\s+/) ?? [];
	if (words[0] !== 'node') return [];
	const options: string[] = [];
	for (const word of words.slice(1)) {
		if (word === '--import' || !word.startsWith('--')) break;
		options.push(word);
	}
	return options;
}

export async function startRelayProcess(kind: RelayKind): Promise<RelayProcess> {
	const dataDir = kind === 'kith' ? await mkdtemp(join(tmpdir(), 'kith-bench-relay-')) : null;
	const env: NodeJS.ProcessEnv = { ...process.env, HOST: '127.0.0.1', PORT: '0' };
	if (dataDir) {
		Object.assign(env, RELAY_ENV, {
			KITH_DATA: dataDir,
			KITH_STATIC: join(dataDir, 'no-build')
		});
	}
	const child: ChildProcess = spawn(
		process.execPath,
		[
			...serveNodeOptions(),
			...(process.env.KITH_BENCH_RELAY_ARGS ?? '').split(' ').filter(Boolean),
			'--import',
			'tsx',
			ENTRY[kind]
		],
		{
			cwd: ROOT,
			env,
			stdio: ['ignore', 'pipe', 'pipe']
		}
	);
	let stderr = '';
	child.stderr?.on('data', (chunk: Buffer) => {
		stderr += chunk.toString();
		if (stderr.length > 20_000) stderr = stderr.slice(-10_000);
	});
	let exited = false;
	const gone = new Promise<void>((resolve) =>
		child.once('exit', () => {
			exited = true;
			resolve();
		})
	);
	const url = await new Promise<string>((resolve, reject) => {
		const timer = setTimeout(
			() => reject(new Error(`${kind} relay did not start: ${stderr}`)),
			30_000
		);
		createInterface({ input: child.stdout! }).on('line', (line) => {
			const m = /listening on (http:\/\/\S+)/.exec(line);
			if (m) {
				clearTimeout(timer);
				resolve(m[1]!);
			}
		});
		void gone.then(() => {
			clearTimeout(timer);
			reject(new Error(`${kind} relay exited before listening: ${stderr}`));
		});
	});
	const pid = child.pid!;
	return {
		kind,
		url,
		pid,
		rss: () => procStatus(pid, 'VmRSS'),
		peakRss: () => procStatus(pid, 'VmHWM'),
		cpuMs: () => procCpuMs(pid),
		get exited() {
			return exited;
		},
		async stop() {
			if (!exited) {
				child.kill('SIGTERM');
				const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
				await gone;
				clearTimeout(timer);
			}
			if (dataDir) await rm(dataDir, { recursive: true, force: true });
		}
	};
}

/** A field of /proc/<pid>/status in bytes (the kernel prints kB). */
export function procStatus(pid: number | 'self', field: 'VmRSS' | 'VmHWM'): number {
	try {
		const text = readFileSync(`/proc/${pid}/status`, 'utf8');
		const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
		return m ? Number(m[1]) * 1024 : Number.NaN;
	} catch {
		return Number.NaN;
	}
}

/** utime + stime of a process, in ms (clock ticks are 100 Hz on Linux). */
export function procCpuMs(pid: number | 'self'): number {
	try {
		const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
		// Fields after the command name (which may hold spaces) start at index 2 ("state").
		const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
		return (Number(fields[11]) + Number(fields[12])) * 10;
	} catch {
		return Number.NaN;
	}
}
