/**
 * A Kith server (relay + app) in its own process, on a loopback port with
 * its own data directory, that a test can stop and start again. Its stdout
 * and stderr are kept, so a test can check what it logged.
 */
import { test } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.once('error', reject);
		server.listen(0, '127.0.0.1', () => {
			const address = server.address();
			const port = address && typeof address === 'object' ? address.port : 0;
			server.close(() => resolve(port));
		});
	});
}

export class RelayProcess {
	readonly dataDir = mkdtempSync(join(tmpdir(), 'kith-relay-e2e-'));
	port = 0;
	output = '';
	#child: ChildProcess | null = null;
	#env: Record<string, string>;

	/** `env`: extra environment for the server, e.g. `KITH_STATIC` for a build of the test's own. */
	constructor(env: Record<string, string> = {}) {
		this.#env = env;
	}

	get origin(): string {
		return `http://127.0.0.1:${this.port}`;
	}

	async start(): Promise<void> {
		if (!this.port) this.port = await freePort();
		const child = spawn(join('node_modules', '.bin', 'tsx'), ['sync-server/src/main.ts'], {
			env: {
				...process.env,
				HOST: '127.0.0.1',
				PORT: String(this.port),
				KITH_DATA: this.dataDir,
				LOG_LEVEL: 'debug',
				// Tests that stop or cut this relay mean a partition: with the
				// server's libp2p node the browsers would meet and sync directly
				// around it. p2p.spec.ts turns it on.
				KITH_P2P: 'off',
				...this.#env
			},
			stdio: ['ignore', 'pipe', 'pipe']
		});
		child.stdout?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
		child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
		this.#child = child;
		const deadline = Date.now() + 30_000;
		for (;;) {
			if (child.exitCode !== null) throw new Error(`relay exited at start:\n${this.output}`);
			try {
				const response = await fetch(`${this.origin}/healthz`);
				if (response.ok) return;
			} catch {
				// not listening yet
			}
			if (Date.now() > deadline) throw new Error(`relay did not start:\n${this.output}`);
			await new Promise((resolve) => setTimeout(resolve, 150));
		}
	}

	/** Stop, and start again on the same port and data with another environment. */
	async restartWith(env: Record<string, string>): Promise<void> {
		await this.stop();
		this.#env = env;
		await this.start();
	}

	/** SIGTERM, and wait for the process to exit. */
	async stop(): Promise<void> {
		const child = this.#child;
		this.#child = null;
		if (!child || child.exitCode !== null) return;
		await new Promise<void>((resolve) => {
			child.once('exit', () => resolve());
			child.kill('SIGTERM');
		});
	}

	/** Every byte of every file the relay keeps, as latin1 text (for searching). */
	storedBytes(): string {
		let all = '';
		for (const name of readdirSync(this.dataDir, { recursive: true }) as string[]) {
			try {
				all += readFileSync(join(this.dataDir, name)).toString('latin1');
			} catch {
				// a directory
			}
		}
		return all;
	}

	remove(): void {
		rmSync(this.dataDir, { recursive: true, force: true });
	}
}

/**
 * A relay process of the test's own, started before each test of the file
 * and stopped and removed after it (so a test can stop it, restart it and
 * read what it stored). `current` is the running test's relay.
 */
export function relayPerTest(): { readonly current: RelayProcess } {
	let relay: RelayProcess | null = null;
	test.beforeEach(async () => {
		relay = new RelayProcess();
		await relay.start();
	});
	test.afterEach(async () => {
		await relay?.stop();
		relay?.remove();
		relay = null;
	});
	return {
		get current(): RelayProcess {
			if (!relay) throw new Error('no relay: use it inside a test');
			return relay;
		}
	};
}
