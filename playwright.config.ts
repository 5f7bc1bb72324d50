/**
 * End-to-end tests: real Chromium against the real server (`sync-server`)
 * serving the built app. `npm test` builds first; run `npm run build` before
 * `npx playwright test` on its own.
 *
 * The server gets a fixed port (KITH_E2E_PORT, default 48787) and a fresh,
 * empty data directory per run, removed when the run ends.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from '@playwright/test';
import { chromiumLaunchOptions } from './tests/e2e/chromium';

const port = e2ePort(process.env.KITH_E2E_PORT);
const baseURL = `http://127.0.0.1:${port}`;
const onCI = Boolean(process.env.CI);

export default defineConfig({
	testDir: 'tests/e2e',
	testMatch: '**/*.spec.ts',
	outputDir: 'test-results',
	// Two cores: two browsers at a time keep the run short without starving the server.
	workers: 2,
	fullyParallel: false,
	forbidOnly: onCI,
	retries: onCI ? 1 : 0,
	reporter: 'list',
	// Account creation runs Argon2id and key generation; on a busy two-core machine a flow
	// with a reload and an unlock takes over 30 s. A stuck test still fails within a minute.
	timeout: 60_000,
	expect: { timeout: 5_000 },
	use: {
		baseURL,
		browserName: 'chromium',
		launchOptions: chromiumLaunchOptions(),
		trace: { mode: 'retain-on-failure', screenshots: false },
		screenshot: 'only-on-failure'
	},
	webServer: {
		command: 'npx tsx sync-server/src/main.ts',
		url: `${baseURL}/healthz`,
		reuseExistingServer: false,
		timeout: 60_000,
		stdout: 'ignore',
		stderr: 'pipe',
		gracefulShutdown: { signal: 'SIGTERM', timeout: 5_000 },
		// KITH_P2P is left at its default (on), as in production: the browsers of
		// a test that share a conversation go direct. Browsers of different tests
		// never meet: peers find each other only under tags of rooms both hold,
		// and every test makes its own accounts and conversations.
		env: {
			HOST: '127.0.0.1',
			PORT: String(port),
			KITH_DATA: e2eDataDir(),
			LOG_LEVEL: 'warn',
			// push.spec's subscriptions name a dead endpoint on loopback.
			KITH_PUSH_HOSTS: '127.0.0.1'
		}
	}
});

function e2ePort(value: string | undefined): number {
	if (value === undefined || value.trim() === '') return 48787;
	const n = Number(value);
	if (!Number.isInteger(n) || n < 1 || n > 65535) {
		throw new Error(
			`KITH_E2E_PORT must be a port number from 1 to 65535 (got ${JSON.stringify(value)}).`
		);
	}
	return n;
}

/**
 * Playwright loads this file in the runner and again in every worker; the
 * runner makes the directory and hands it to the workers through the
 * environment, and removes it on exit (after the server has been stopped).
 */
function e2eDataDir(): string {
	const inherited = process.env.KITH_E2E_DATA;
	if (inherited) return inherited;
	const dir = mkdtempSync(join(tmpdir(), 'kith-e2e-'));
	process.env.KITH_E2E_DATA = dir;
	process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
	return dir;
}
