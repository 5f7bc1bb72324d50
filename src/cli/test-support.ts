/**
 * Test support for the `kith` command: the real binary (bin/kith.mjs) in
 * child processes, each on its own temporary data dir.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const KITH_BIN = fileURLToPath(new URL('../../bin/kith.mjs', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Result {
	code: number | null;
	stdout: string;
	stderr: string;
	lines: string[];
}

const dirs: string[] = [];
const serves = new Set<ServeProcess>();

export function tempDir(): string {
	const dir = mkdtempSync(join(tmpdir(), 'kith-cli-'));
	dirs.push(dir);
	return dir;
}

export async function cleanup(): Promise<void> {
	await Promise.all([...serves].map((serve) => serve.stop()));
	for (const netns of [...namespaces]) netns.destroy();
	for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Environment of every kith process: no inherited passphrase. */
function env(extra: Record<string, string>): NodeJS.ProcessEnv {
	const base = { ...process.env };
	delete base.KITH_PASSPHRASE;
	return { ...base, ...extra };
}

/**
 * A network namespace of its own with only a loopback interface (multicast
 * on), so peers inside it find each other by mDNS and nothing they send
 * leaves it. Needs root and iproute2 (`ip netns`).
 */
export class Netns {
	readonly name: string;

	private constructor(name: string) {
		this.name = name;
	}

	/** Why namespaces cannot be made here, or null when they can. */
	static unavailable(): string | null {
		if (process.platform !== 'linux') return 'network namespaces need Linux';
		if (process.getuid?.() !== 0) return 'network namespaces need root';
		try {
			execFileSync('ip', ['-V'], { stdio: 'ignore' });
		} catch {
			return "network namespaces need iproute2's `ip`";
		}
		return null;
	}

	static create(): Netns {
		const name = `kith-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
		const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });
		ip('netns', 'add', name);
		const netns = new Netns(name);
		namespaces.add(netns);
		ip('-n', name, 'link', 'set', 'lo', 'up');
		ip('-n', name, 'link', 'set', 'lo', 'multicast', 'on');
		ip('-n', name, 'route', 'add', '224.0.0.0/4', 'dev', 'lo');
		return netns;
	}

	/** The program and arguments that run `command` inside the namespace. */
	wrap(command: string[]): [string, string[]] {
		return ['ip', ['netns', 'exec', this.name, ...command]];
	}

	destroy(): void {
		namespaces.delete(this);
		try {
			execFileSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
		} catch {
			// already gone
		}
	}
}

const namespaces = new Set<Netns>();

function command(args: string[], netns?: Netns): [string, string[]] {
	const full = [process.execPath, KITH_BIN, ...args];
	return netns ? netns.wrap(full) : [full[0] as string, full.slice(1)];
}

export function kith(
	args: string[],
	extraEnv: Record<string, string> = {},
	netns?: Netns
): Promise<Result> {
	return new Promise((resolve, reject) => {
		const [program, programArgs] = command(args, netns);
		const child = spawn(program, programArgs, {
			cwd: ROOT,
			env: env(extraEnv),
			stdio: ['ignore', 'pipe', 'pipe']
		});
		let stdout = '';
		let stderr = '';
		child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
		child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
		child.on('error', reject);
		child.on('close', (code) =>
			resolve({ code, stdout, stderr, lines: stdout.split('\n').filter((l) => l !== '') })
		);
	});
}

/** A `kith serve` process; `lines` are what it printed on stdout so far. */
export class ServeProcess {
	readonly child: ChildProcess;
	stdout = '';
	stderr = '';
	readonly ready: Promise<void>;

	constructor(args: string[], extraEnv: Record<string, string> = {}, netns?: Netns) {
		const [program, programArgs] = command([...args, 'serve'], netns);
		this.child = spawn(program, programArgs, {
			cwd: ROOT,
			env: env(extraEnv),
			stdio: ['ignore', 'pipe', 'pipe']
		});
		serves.add(this);
		this.child.stdout?.on('data', (chunk: Buffer) => (this.stdout += chunk.toString()));
		this.ready = new Promise((resolve, reject) => {
			this.child.stderr?.on('data', (chunk: Buffer) => {
				this.stderr += chunk.toString();
				if (this.stderr.includes('kith serve: ready')) resolve();
			});
			this.child.on('exit', (code) =>
				reject(new Error(`kith serve exited (${code}) before it was ready:\n${this.stderr}`))
			);
		});
	}

	get lines(): string[] {
		return this.stdout.split('\n').filter((l) => l !== '');
	}

	async stop(): Promise<number | null> {
		serves.delete(this);
		if (this.child.exitCode !== null) return this.child.exitCode;
		const exited = new Promise<number | null>((resolve) => this.child.once('exit', resolve));
		this.child.kill('SIGTERM');
		const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
		const code = await exited;
		clearTimeout(timer);
		return code;
	}
}

export async function until(test: () => boolean, timeoutMs = 30_000): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!test()) {
		if (Date.now() > deadline) throw new Error('timed out waiting');
		await new Promise((resolve) => setTimeout(resolve, 100));
	}
}

/** `read` lines without their times: author<TAB>text. */
export function authorsAndTexts(lines: string[]): string[] {
	return lines.map((line) => line.split('\t').slice(1).join('\t'));
}

/** A UDP port free right now. */
export async function freeUdpPort(): Promise<number> {
	const socket = createSocket('udp4');
	await new Promise<void>((resolve) => socket.bind(0, '0.0.0.0', resolve));
	const { port } = socket.address();
	await new Promise<void>((resolve) => socket.close(() => resolve()));
	return port;
}
