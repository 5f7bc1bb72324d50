/**
 * The benchmark browser: builds the page (bench/browser → bench/.out, kept
 * for source maps and DevTools; it is ignored by git and the linters) with
 * bench/vite.config.ts, serves it on a loopback port, and drives Debian's
 * Chromium through playwright-core with a fresh on-disk profile (so
 * IndexedDB writes reach the disk, as in a real browser profile; an
 * incognito context would keep them in memory).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type CDPSession, type Page } from 'playwright-core';
import { build } from 'vite';
import type { BenchApi } from '../browser/api';
import { chromiumLaunchOptions } from '../../tests/e2e/chromium';
import { serveStatic } from './server';

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));
const OUT = here('../.out');

export type Result<K extends keyof BenchApi> = Awaited<ReturnType<BenchApi[K]>>;

/** One page at a time (the app's writer lock is per profile); `fresh()` gives a new document. */
export class BenchPage {
	#page: Page | null = null;
	constructor(
		readonly context: BrowserContext,
		readonly url: string
	) {}

	get page(): Page {
		if (!this.#page) throw new Error('no bench page open: call fresh() first');
		return this.#page;
	}

	async fresh(): Promise<void> {
		if (this.#page) await this.#page.close();
		const page = await this.context.newPage();
		page.on('console', (message) => {
			if (message.type() === 'error' || message.type() === 'warning') {
				process.stderr.write(`  page ${message.type()}: ${message.text()}\n`);
			}
		});
		page.on('pageerror', (error) => process.stderr.write(`  page exception: ${error.message}\n`));
		await page.goto(this.url);
		await page.waitForFunction(() => window.kithBench !== undefined);
		this.#page = page;
	}

	async call<K extends keyof BenchApi>(
		name: K,
		...args: Parameters<BenchApi[K]>
	): Promise<Result<K>> {
		if (!this.#page) await this.fresh();
		return (await this.page.evaluate(
			([n, a]) => {
				const api = window.kithBench as unknown as Record<string, (...x: unknown[]) => unknown>;
				const fn = api[n as string];
				if (!fn) throw new Error(`no benchmark ${String(n)}`);
				return fn(...(a as unknown[]));
			},
			[name, args] as const
		)) as Result<K>;
	}

	/** A DevTools Protocol session on the current page (CPU profiles). */
	async cdp(): Promise<CDPSession> {
		return this.context.newCDPSession(this.page);
	}

	async userAgent(): Promise<string> {
		if (!this.#page) await this.fresh();
		return this.page.evaluate(() => navigator.userAgent);
	}

	async close(): Promise<void> {
		await this.#page?.close();
		this.#page = null;
	}
}

export interface BenchBrowser {
	page: BenchPage;
	close(): Promise<void>;
}

export async function startBenchBrowser(): Promise<BenchBrowser> {
	// The same binary and switches as the end-to-end tests (KITH_CHROMIUM, then Debian's).
	const launch = chromiumLaunchOptions();
	await build({ configFile: here('../vite.config.ts'), logLevel: 'warn' });
	const server = await serveStatic(OUT);
	const profileDir = await mkdtemp(join(tmpdir(), 'kith-bench-'));
	let context: BrowserContext;
	try {
		context = await chromium.launchPersistentContext(profileDir, {
			...launch,
			headless: true,
			viewport: { width: 1000, height: 800 }
		});
	} catch (error) {
		await server.close();
		await rm(profileDir, { recursive: true, force: true });
		throw error;
	}
	const page = new BenchPage(context, server.url);
	return {
		page,
		async close() {
			await page.close().catch(() => {});
			await context.close().catch(() => {});
			await server.close();
			await rm(profileDir, { recursive: true, force: true });
		}
	};
}
