/**
 * Section "devices" of `npm run bench` (`--only=devices`): a new device of an
 * account, and the app's first screen, in the real app.
 *
 * Set-up (not timed): the app is built (bench/devices/build.config.ts: the
 * app's own config, plus a switch that can swap the vault's Automerge for a
 * plain-JavaScript stand-in, see D2), the real Kith server runs it on
 * loopback with a temporary data dir (rate limits raised as in the relay
 * sections), and Chromium opens it on fresh on-disk profiles (real
 * IndexedDB). A first device is seeded through the app's own composition
 * root (bench/devices/page.ts `seed`: KithApp without its UI, one `send` at
 * a time per conversation, until every message is "Sent"), then opened in
 * the real UI.
 *
 * D1, a newly linked device to full history: Settings → "Link a device" on
 * the first device, the link opened in a new browser (a fresh profile each
 * run), "Codes match" on the first device and then on the new one. Timed on
 * the new device, in its page: from its "Codes match" click (the second
 * confirmation) until the app's search, whose box gets the query the moment
 * it appears, reports every conversation's first and last message ("20
 * messages found", the index complete): both ends of every history
 * in the app (from the view the first device handed over, docs/protocol.md
 * §8c "History"). Reported beside it, read after D1 stopped: when the new
 * device's own storage holds every envelope the relay held before the run
 * (its IndexedDB polled; an upper bound). Baseline, over the same relay and protocol: a
 * fresh browser copies the same rooms (the vault room and every
 * conversation's) into empty Yjs docs (bench/devices/page.ts `copyRooms`),
 * all at once, until each doc holds what the relay's step 1 said. Runs
 * alternate, baseline first.
 *
 * D2, first screen: a fresh page load of the app for the first device's
 * account, from navigation start until the conversation list's first link
 * is in the DOM and visible (a MutationObserver installed before the page's
 * scripts). With Automerge (the app as built) and without it (the same
 * build, the page's init script setting `__kithBenchVault`, so the vault
 * runs on a plain-JavaScript stand-in holding the same content: no Automerge
 * module, no wasm), alternating, one warm-up load of each first. Automerge's
 * part is the difference of the medians.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { svelte, vitePreprocess } from '@sveltejs/vite-plugin-svelte';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { build } from 'vite';
import { chromiumLaunchOptions } from '../../tests/e2e/chromium';
import { deviceSecrets, keysOf, relayRooms, roomEnvelopes } from '../../tests/e2e/support/holdings';
import * as Y from 'yjs';
import { ENVELOPE_MAP } from '../../src/lib/conversation/doc-rules';
import { asSecretKey, fromBase64Url, toBase64Url, type RoomId } from '../../src/lib/crypto';
import { openEnvelope } from '../../src/lib/envelope';
import { decodeVaultChanges, loadAutomerge, vaultRoomId } from '../../src/lib/vault';
import { fmt, ratio, type Row } from '../lib/report';
import { median } from '../lib/stats';
import { procCpuMs, RELAY_ENV, serveNodeOptions } from '../relay/servers';
import { serializeVault } from './automerge-stub';
import type { CopyResult, CopyRoom, SeedOptions, SeedResult } from './page';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/**
 * KITH_BENCH_PROFILE=<file>: the last D1 run's new device is run under
 * Chromium's CPU profiler (from the second "Codes match" to done) and the
 * profile written there, with the probe's times; the app is built unminified.
 * The figures of a profiled invocation are not comparable with others.
 */
const PROFILE_TO = process.env.KITH_BENCH_PROFILE ?? null;

/** Where the benchmark's build of the app goes (KITH_BUILD_DIR), and SvelteKit's files. */
const BUILD_DIR = join(tmpdir(), 'kith-bench-devices-build');
const SVELTEKIT_DIR = '.svelte-kit-bench';
const MARKER = 'quokka';
const STEP_TIMEOUT_MS = 60_000;
const SYNC_TIMEOUT_MS = 300_000;

export interface DevicesConfig {
	conversations: number;
	/** Messages per conversation. */
	messages: number;
	/** D1 runs (each: one baseline copy, one new device). */
	linkReps: number;
	/** D2 loads of each variant (after one warm-up load of each). */
	screenLoads: number;
}

export function devicesConfig(quick: boolean): DevicesConfig {
	return quick
		? { conversations: 10, messages: 200, linkReps: 3, screenLoads: 3 }
		: { conversations: 10, messages: 1_000, linkReps: 5, screenLoads: 7 };
}

export interface LinkRun {
	/** New device: "Codes match" clicked → every first and last message found (ms). */
	kithMs: number;
	/** New device: click → the app open (the search box on screen). */
	readyMs: number;
	/** New device: click → the first marker message found. */
	firstHitMs: number;
	/**
	 * New device: click → its conversation storage holds every envelope the
	 * relay held before the run (untimed for D1: read by polling its
	 * IndexedDB after D1 stopped, so an upper bound, to ~0.2 s).
	 */
	storedMs: number;
	/** Baseline: the same rooms copied over the same protocol into empty Yjs docs. */
	copy: CopyResult;
	/** Conversations listed on the new device afterwards (untimed check). */
	listed: number;
}

export interface ScreenLoad {
	variant: 'with' | 'without';
	/** Navigation start → the list's first link in the DOM and visible. */
	firstScreenMs: number;
	/** The navigation's response end and DOMContentLoaded end. */
	responseEndMs: number;
	domContentLoadedMs: number;
	/** Links in the list at that moment. */
	links: number;
	/** With Automerge: its load (first loadAutomerge call → module ready), start and duration. */
	automerge: { startMs: number; durationMs: number } | null;
	/** With Automerge: calls the vault made into it before the first screen, and their time. */
	automergeCalls: { calls: number; ms: number } | null;
	/** The page was controlled by the app's service worker. */
	serviceWorker: boolean;
}

export interface DevicesResults {
	seed: SeedResult & { ms: number };
	relay: { rooms: number; envelopes: number; envelopeBytes: number };
	link: LinkRun[];
	screen: ScreenLoad[];
	warmup: ScreenLoad[];
	buildMs: number;
}

// ---- set-up ------------------------------------------------------------------------------

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
	return new Promise((resolve, reject) => {
		const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
		let output = '';
		const keep = (chunk: Buffer) => {
			output = (output + chunk.toString()).slice(-20_000);
		};
		child.stdout.on('data', keep);
		child.stderr.on('data', keep);
		child.once('error', reject);
		child.once('exit', (code) =>
			code === 0 ? resolve() : reject(new Error(`${command} exited with ${code}:\n${output}`))
		);
	});
}

/** The app, built with bench/devices/build.config.ts into BUILD_DIR. */
async function buildApp(): Promise<void> {
	await run(
		join(ROOT, 'node_modules/.bin/vite'),
		[
			'build',
			'--config',
			'bench/devices/build.config.ts',
			'--logLevel',
			'warn',
			// Profiling (KITH_BENCH_PROFILE): readable function names.
			...(PROFILE_TO ? ['--minify', 'false'] : [])
		],
		{ ...process.env, KITH_BUILD_DIR: BUILD_DIR, KITH_SVELTEKIT_DIR: SVELTEKIT_DIR }
	);
}

/** bench/devices/page.ts as one script (Svelte runes compiled as in the app). */
async function bundlePage(): Promise<string> {
	const out = await build({
		configFile: false,
		logLevel: 'warn',
		plugins: [svelte({ configFile: false, preprocess: vitePreprocess() })],
		resolve: { alias: { $lib: join(ROOT, 'src/lib') } },
		build: {
			write: false,
			target: 'es2022',
			minify: false,
			rollupOptions: {
				// One classic script: what reads import.meta there (worker and wasm URLs) is not used.
				onwarn(warning, warn) {
					if (warning.code !== 'EMPTY_IMPORT_META') warn(warning);
				}
			},
			lib: {
				entry: join(ROOT, 'bench/devices/page.ts'),
				formats: ['iife'],
				name: 'kithDevicesBench'
			}
		}
	});
	for (const o of Array.isArray(out) ? out : [out]) {
		if ('output' in o) {
			const chunk = o.output.find((c) => c.type === 'chunk');
			if (chunk && chunk.type === 'chunk') return chunk.code;
		}
	}
	throw new Error('bundling the devices bench page produced no code');
}

interface Relay {
	url: string;
	dataDir: string;
	pid: number;
	stop(): Promise<void>;
}

async function startRelay(): Promise<Relay> {
	const dataDir = await mkdtemp(join(tmpdir(), 'kith-bench-devices-data-'));
	const child = spawn(
		process.execPath,
		[...serveNodeOptions(), '--import', 'tsx', 'sync-server/src/main.ts'],
		{
			cwd: ROOT,
			env: {
				...process.env,
				...RELAY_ENV,
				HOST: '127.0.0.1',
				PORT: '0',
				KITH_DATA: dataDir,
				KITH_STATIC: BUILD_DIR
			},
			stdio: ['ignore', 'pipe', 'pipe']
		}
	);
	let stderr = '';
	child.stderr.on('data', (chunk: Buffer) => {
		stderr = (stderr + chunk.toString()).slice(-10_000);
	});
	const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
	const url = await new Promise<string>((resolve, reject) => {
		createInterface({ input: child.stdout }).on('line', (line) => {
			const m = /^Kith listening on (http:\/\/\S+) /.exec(line);
			if (m?.[1]) resolve(m[1]);
		});
		void exited.then(() => reject(new Error(`the Kith server exited at start:\n${stderr}`)));
	});
	return {
		url: url.replace(/\/$/, ''),
		dataDir,
		pid: child.pid as number,
		async stop() {
			if (child.exitCode === null) {
				child.kill('SIGTERM');
				const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
				await exited;
				clearTimeout(timer);
			}
			await rm(dataDir, { recursive: true, force: true });
		}
	};
}

interface Browser {
	context: BrowserContext;
	close(): Promise<void>;
}

/** A Chromium with a fresh on-disk profile (IndexedDB on disk, as in a real profile). */
async function openBrowser(name: string): Promise<Browser> {
	const dir = await mkdtemp(join(tmpdir(), `kith-bench-devices-${name}-`));
	const context = await chromium.launchPersistentContext(dir, {
		...chromiumLaunchOptions(),
		headless: true,
		viewport: { width: 1000, height: 800 }
	});
	return {
		context,
		async close() {
			await context.close().catch(() => undefined);
			await rm(dir, { recursive: true, force: true });
		}
	};
}

function reportErrors(page: Page, who: string): void {
	page.on('pageerror', (error) =>
		process.stderr.write(`  ${who} page exception: ${error.message}\n`)
	);
	page.on('console', (message) => {
		if (message.type() !== 'error') return;
		// A /healthz document asks for a favicon the server does not have.
		if (who === 'bench' && message.text().startsWith('Failed to load resource')) return;
		process.stderr.write(`  ${who} page error: ${message.text()}\n`);
	});
}

/** A `/healthz` document of the relay's origin (no app runs there) with the bench code loaded. */
async function benchPage(context: BrowserContext, origin: string, code: string): Promise<Page> {
	const page = await context.newPage();
	reportErrors(page, 'bench');
	await page.goto(`${origin}/healthz`);
	await page.evaluate(`${code}\n;window.kithDevicesBench = kithDevicesBench; true`);
	return page;
}

type BenchWindow = {
	kithDevicesBench: {
		seed(options: SeedOptions): Promise<SeedResult>;
		copyRooms(origin: string, rooms: CopyRoom[]): Promise<CopyResult>;
	};
};

function conversationLinks(page: Page) {
	return page.getByRole('navigation', { name: 'Conversations' }).getByRole('link');
}

async function waitForLinks(page: Page, count: number, timeout: number): Promise<void> {
	const deadline = Date.now() + timeout;
	while ((await conversationLinks(page).count()) < count) {
		if (Date.now() > deadline) throw new Error(`fewer than ${count} conversations listed`);
		await page.waitForTimeout(100);
	}
}

/**
 * Waits (at most 30 s) until the relay used under 5 % of a core over the last
 * half second and, when given, `page` ran no long task for a second: what the
 * last step set off (background loads, snapshots, the relay's compaction)
 * is over before the next measurement.
 */
async function settle(relay: Relay, page?: Page): Promise<number> {
	const started = performance.now();
	const deadline = started + 30_000;
	let cpu = procCpuMs(relay.pid);
	for (;;) {
		await new Promise((resolve) => setTimeout(resolve, 500));
		const now = procCpuMs(relay.pid);
		const busy = now - cpu > 25;
		cpu = now;
		if (!busy || performance.now() > deadline) break;
	}
	if (page) {
		const left = Math.max(0, deadline - performance.now());
		await page.evaluate(`new Promise((resolve) => {
			let last = performance.now();
			const observer = new PerformanceObserver((list) => {
				for (const e of list.getEntries()) last = Math.max(last, e.startTime + e.duration);
			});
			observer.observe({ type: 'longtask' });
			const t0 = performance.now();
			const tick = () => {
				const now = performance.now();
				if (now - last >= 1000 || now - t0 > ${left}) {
					observer.disconnect();
					resolve(true);
				} else setTimeout(tick, 100);
			};
			tick();
		})`);
	}
	return performance.now() - started;
}

// ---- D1: linking a device ------------------------------------------------------------------

/**
 * The new device's probe, run before its page's scripts: when "Codes match"
 * is clicked, when the search box appears, when the search status first
 * counts a result and when it reads exactly "<expected> messages found".
 * Times in ms since the epoch (timeOrigin + now), kept in sessionStorage too
 * so a reload would not lose them.
 */
function linkProbe(expected: number): string {
	return `(() => {
	const KEY = '__kithBenchLink';
	const now = () => performance.timeOrigin + performance.now();
	const state = JSON.parse(sessionStorage.getItem(KEY) || 'null') ||
		{ clickedAt: null, readyAt: null, firstHitAt: null, doneAt: null };
	const save = () => sessionStorage.setItem(KEY, JSON.stringify(state));
	window[KEY] = state;
	document.addEventListener('click', (event) => {
		const button = event.target instanceof Element ? event.target.closest('button') : null;
		if (button && button.textContent.trim() === 'Codes match' && state.clickedAt === null) {
			state.clickedAt = now();
			save();
		}
	}, true);
	const target = '${expected} messages found';
	const observer = new MutationObserver(() => {
		if (state.readyAt === null && document.querySelector('input[aria-label="Search"]')) {
			state.readyAt = now();
			save();
		}
		for (const el of document.querySelectorAll('[role="status"]')) {
			const text = el.textContent.trim();
			if (state.firstHitAt === null && /^[1-9][0-9]* messages? found/.test(text)) {
				state.firstHitAt = now();
				save();
			}
			if (text === target) {
				state.doneAt = now();
				save();
				observer.disconnect();
				return;
			}
		}
	});
	observer.observe(document, { childList: true, subtree: true, characterData: true });
})();`;
}

interface ProbeState {
	clickedAt: number | null;
	readyAt: number | null;
	firstHitAt: number | null;
	doneAt: number | null;
}

async function linkDevice(
	first: Page,
	origin: string,
	cfg: DevicesConfig,
	expectEnvelopes: number,
	profileTo: string | null = null
): Promise<Omit<LinkRun, 'copy'>> {
	const device = await openBrowser('new');
	try {
		await device.context.addInitScript({ content: linkProbe(2 * cfg.conversations) });
		const page = await device.context.newPage();
		reportErrors(page, 'new device');
		const cdp = profileTo ? await device.context.newCDPSession(page) : null;

		await first.getByRole('link', { name: 'Settings' }).click();
		await first.getByRole('button', { name: 'Link a device' }).click();
		const dialog = first.getByRole('dialog', { name: 'Link a device' });
		const linkBox = dialog.getByRole('textbox', { name: 'Device link' });
		await linkBox.waitFor({ timeout: STEP_TIMEOUT_MS });
		const link = await linkBox.inputValue();
		if (!link.startsWith(`${origin}/link#`)) throw new Error(`unexpected device link ${link}`);

		await page.goto(link);
		const code = page.getByLabel('Link code');
		await code.waitFor({ timeout: STEP_TIMEOUT_MS });
		const shown = dialog.getByLabel('Link code');
		await shown.waitFor({ timeout: STEP_TIMEOUT_MS });
		const [a, b] = [await code.textContent(), await shown.textContent()];
		if (!a || a !== b || !/^\d{3} \d{3}$/.test(a)) throw new Error(`link codes ${a} and ${b}`);
		await dialog.getByRole('button', { name: 'Codes match' }).click();
		if (cdp) {
			await cdp.send('Profiler.enable');
			await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
			await cdp.send('Profiler.start');
		}
		await page.getByRole('button', { name: 'Codes match' }).click();

		const search = page.getByRole('textbox', { name: 'Search' });
		await search.fill(MARKER, { timeout: SYNC_TIMEOUT_MS });
		await page.waitForFunction(
			() =>
				(window as unknown as { __kithBenchLink?: { doneAt: number | null } }).__kithBenchLink
					?.doneAt != null,
			null,
			{ timeout: SYNC_TIMEOUT_MS, polling: 200 }
		);
		const probe = (await page.evaluate(
			() => (window as unknown as { __kithBenchLink: unknown }).__kithBenchLink
		)) as ProbeState;
		if (probe.clickedAt === null || probe.readyAt === null || probe.doneAt === null)
			throw new Error(`the new device's probe is incomplete: ${JSON.stringify(probe)}`);
		if (cdp && profileTo) {
			const { profile } = await cdp.send('Profiler.stop');
			const origin = await page.evaluate(() => performance.timeOrigin);
			await writeFile(profileTo, JSON.stringify({ profile, probe, timeOrigin: origin }));
			process.stderr.write(`  the new device's CPU profile is in ${profileTo}\n`);
		}

		// Reported beside D1: when every envelope is in the new device's own storage too.
		const storedAt = await waitStored(page, expectEnvelopes);

		// Untimed: every conversation is listed.
		await search.fill('');
		await waitForLinks(page, cfg.conversations + 1, STEP_TIMEOUT_MS);
		const listed = await conversationLinks(page).count();
		await dialog.getByText('is linked').waitFor({ timeout: STEP_TIMEOUT_MS });
		await dialog.getByRole('button', { name: 'Done' }).click();
		return {
			kithMs: probe.doneAt - probe.clickedAt,
			readyMs: probe.readyAt - probe.clickedAt,
			firstHitMs: (probe.firstHitAt ?? probe.doneAt) - probe.clickedAt,
			storedMs: storedAt - probe.clickedAt,
			listed
		};
	} finally {
		await device.close();
	}
}

/**
 * Every update in the page's conversation storage (each `kith-doc:` database's
 * `updates` store), base64, by database. A string script: tsx's helpers do
 * not exist in the page.
 */
const READ_DOC_STORAGE = `(async () => {
	const request = (req) => new Promise((resolve, reject) => {
		req.onsuccess = () => resolve(req.result);
		req.onerror = () => reject(req.error);
	});
	const b64 = (bytes) => {
		let text = '';
		for (let i = 0; i < bytes.length; i += 8192) text += String.fromCharCode(...bytes.subarray(i, i + 8192));
		return btoa(text);
	};
	const out = {};
	for (const info of await indexedDB.databases()) {
		if (!info.name || !info.name.startsWith('kith-doc:')) continue;
		const db = await request(indexedDB.open(info.name));
		if (db.objectStoreNames.contains('updates')) {
			const values = await request(db.transaction('updates', 'readonly').objectStore('updates').getAll());
			out[info.name] = values.filter((v) => v instanceof Uint8Array).map(b64);
		}
		db.close();
	}
	return out;
})()`;

/** Envelopes in the page's conversation storage. */
async function storedEnvelopes(page: Page): Promise<number> {
	const stored = (await page.evaluate(READ_DOC_STORAGE)) as Record<string, string[]>;
	let count = 0;
	for (const updates of Object.values(stored)) {
		const doc = new Y.Doc({ gc: false });
		for (const update of updates) Y.applyUpdate(doc, Buffer.from(update, 'base64'));
		count += doc.getMap(ENVELOPE_MAP).size;
		doc.destroy();
	}
	return count;
}

/** The page's clock (ms since the epoch) once its storage holds at least `expected` envelopes. */
async function waitStored(page: Page, expected: number): Promise<number> {
	const deadline = Date.now() + SYNC_TIMEOUT_MS;
	for (;;) {
		const count = await storedEnvelopes(page);
		const at = (await page.evaluate('performance.timeOrigin + performance.now()')) as number;
		if (count >= expected) return at;
		if (Date.now() > deadline) {
			throw new Error(`the new device stored ${count} of ${expected} envelopes`);
		}
		await page.waitForTimeout(150);
	}
}

async function copyBaseline(origin: string, code: string, rooms: CopyRoom[]): Promise<CopyResult> {
	const browser = await openBrowser('copy');
	try {
		const page = await benchPage(browser.context, origin, code);
		return await page.evaluate(
			([o, r]) => (window as unknown as BenchWindow).kithDevicesBench.copyRooms(o, r),
			[origin, rooms] as const
		);
	} finally {
		await browser.close();
	}
}

// ---- D2: first screen ------------------------------------------------------------------------

const SCREEN_PROBE = `(() => {
	const state = { firstScreen: null, links: 0, automergeCalls: null };
	window.__kithBenchScreen = state;
	const observer = new MutationObserver(() => {
		const links = document.querySelectorAll('nav[aria-label="Conversations"] a');
		const first = links[0];
		if (first && first.checkVisibility()) {
			state.firstScreen = performance.now();
			state.links = links.length;
			const calls = globalThis.__kithBenchAutomerge;
			if (calls) state.automergeCalls = { calls: calls.calls, ms: calls.ms };
			observer.disconnect();
		}
	});
	observer.observe(document, { childList: true, subtree: true });
})();`;

async function loadFirstScreen(
	context: BrowserContext,
	origin: string,
	variant: 'with' | 'without',
	vaultJson: string
): Promise<ScreenLoad> {
	const page = await context.newPage();
	reportErrors(page, `first screen (${variant})`);
	try {
		if (variant === 'without') {
			await page.addInitScript({
				content: `globalThis.__kithBenchVault = ${JSON.stringify(vaultJson)};`
			});
		}
		await page.addInitScript({ content: SCREEN_PROBE });
		await page.goto(`${origin}/`);
		await page.waitForFunction(
			() =>
				(window as unknown as { __kithBenchScreen?: { firstScreen: number | null } })
					.__kithBenchScreen?.firstScreen != null,
			null,
			{ timeout: STEP_TIMEOUT_MS, polling: 50 }
		);
		// Let the page finish what it started (relay connections, background loads) before it goes.
		await page.waitForTimeout(1000);
		return await page.evaluate((v) => {
			const screen = (
				window as unknown as {
					__kithBenchScreen: {
						firstScreen: number;
						links: number;
						automergeCalls: { calls: number; ms: number } | null;
					};
				}
			).__kithBenchScreen;
			const nav = performance.getEntriesByType('navigation')[0] as
				PerformanceNavigationTiming | undefined;
			const load = performance.getEntriesByName('kith-bench:automerge-load')[0];
			return {
				variant: v,
				firstScreenMs: screen.firstScreen,
				responseEndMs: nav?.responseEnd ?? Number.NaN,
				domContentLoadedMs: nav?.domContentLoadedEventEnd ?? Number.NaN,
				links: screen.links,
				automerge: load ? { startMs: load.startTime, durationMs: load.duration } : null,
				automergeCalls: screen.automergeCalls,
				serviceWorker: navigator.serviceWorker?.controller != null
			};
		}, variant);
	} finally {
		await page.close();
	}
}

// ---- the section -------------------------------------------------------------------------------

/** The vault's content as the relay holds it, opened with the account key, for the stand-in. */
async function vaultContent(dataDir: string, account: string): Promise<string> {
	const accountKey = asSecretKey(fromBase64Url(account));
	const roomId = vaultRoomId(accountKey);
	const updates = relayRooms(dataDir).get(roomId) ?? [];
	const changes: Uint8Array[] = [];
	for (const bytes of roomEnvelopes(updates)) {
		const opened = await openEnvelope(bytes, {
			roomId,
			keyForEpoch: (epoch) => (epoch === 0 ? accountKey : undefined)
		});
		changes.push(...decodeVaultChanges(opened.plaintext));
	}
	const A = await loadAutomerge();
	const [doc] = A.applyChanges(A.init<Record<string, unknown>>(), changes);
	return serializeVault(doc, (value) => value instanceof A.ImmutableString);
}

export async function runDevices(
	cfg: DevicesConfig,
	log: (text: string) => void
): Promise<{ rows: Row[]; results: DevicesResults; notes: string[] }> {
	log('devices: building the app (bench/devices/build.config.ts) and the bench page');
	const built = performance.now();
	await buildApp();
	const code = await bundlePage();
	const buildMs = performance.now() - built;
	const relay = await startRelay();
	const first = await openBrowser('first').catch(async (error: unknown) => {
		await relay.stop();
		throw error;
	});
	try {
		const names = Array.from(
			{ length: cfg.conversations },
			(_, i) => `Conversation ${String(i + 1).padStart(2, '0')}`
		);
		log(
			`devices: seeding the first device: ${cfg.conversations} conversations × ${fmt(cfg.messages)} messages, until all "Sent"`
		);
		const seeding = performance.now();
		const seedPage = await benchPage(first.context, relay.url, code);
		const options: SeedOptions = {
			displayName: 'Ada',
			names,
			messages: cfg.messages,
			marker: MARKER
		};
		const seeded = await seedPage.evaluate(
			(o) => (window as unknown as BenchWindow).kithDevicesBench.seed(o),
			options
		);
		await seedPage.close();
		const seed = { ...seeded, ms: performance.now() - seeding };
		log(
			`devices: seeded in ${fmt(seed.ms / 1000, 1)} s (sends ${fmt(seeded.sendMs / 1000, 1)} s, all "Sent" at ${fmt(seeded.sentMs / 1000, 1)} s)`
		);

		const app = await first.context.newPage();
		reportErrors(app, 'first device');
		await app.goto(`${relay.url}/`);
		await waitForLinks(app, cfg.conversations + 1, STEP_TIMEOUT_MS);

		// The rooms a new device syncs, and their keys, as the relay and the account hold them.
		const secrets = await deviceSecrets(app as unknown as Parameters<typeof deviceSecrets>[0]);
		const held = await keysOf(secrets, relayRooms(relay.dataDir));
		const rooms: CopyRoom[] = [
			{ roomId: vaultRoomId(asSecretKey(fromBase64Url(secrets.account))), ikm: secrets.account },
			...held.conversations.map((c) => {
				const key = c.keys.get(c.epoch);
				if (!key) throw new Error(`no key for ${c.name}`);
				return { roomId: c.roomId, ikm: toBase64Url(key) };
			})
		];
		const stored = relayRooms(relay.dataDir);
		const envelopes = rooms.flatMap((r) => roomEnvelopes(stored.get(r.roomId as RoomId) ?? []));
		const relayStats = {
			rooms: rooms.length,
			envelopes: envelopes.length,
			envelopeBytes: envelopes.reduce((sum, e) => sum + e.length, 0)
		};

		const link: LinkRun[] = [];
		for (let rep = 0; rep < cfg.linkReps; rep++) {
			// The first device (its background loads, snapshots; what the last new device
			// wrote in every roster) and the relay are quiet before each measurement.
			await settle(relay, app);
			const copy = await copyBaseline(relay.url, code, rooms);
			await settle(relay, app);
			const profileTo = rep === cfg.linkReps - 1 ? PROFILE_TO : null;
			const held = relayRooms(relay.dataDir);
			const expect = rooms.reduce(
				(sum, r) => sum + roomEnvelopes(held.get(r.roomId as RoomId) ?? []).length,
				0
			);
			const linked = await linkDevice(app, relay.url, cfg, expect, profileTo);
			link.push({ ...linked, copy });
			log(
				`devices: D1 run ${rep + 1}/${cfg.linkReps}: new device ${fmt(linked.kithMs)} ms (app open at ${fmt(linked.readyMs)} ms; every envelope stored by ${fmt(linked.storedMs)} ms), copy ${fmt(copy.ms)} ms`
			);
		}
		await settle(relay, app);
		await app.close();

		log(
			`devices: D2 first screen, ${cfg.screenLoads} loads with and without Automerge (after a warm-up of each)`
		);
		const vaultJson = await vaultContent(relay.dataDir, secrets.account);
		const screenLoad = async (variant: 'with' | 'without') => {
			await settle(relay);
			return loadFirstScreen(first.context, relay.url, variant, vaultJson);
		};
		const warmup: ScreenLoad[] = [];
		for (const variant of ['with', 'without'] as const) warmup.push(await screenLoad(variant));
		const screen: ScreenLoad[] = [];
		for (let i = 0; i < cfg.screenLoads; i++) {
			const order = i % 2 === 0 ? (['with', 'without'] as const) : (['without', 'with'] as const);
			for (const variant of order) screen.push(await screenLoad(variant));
		}
		const results: DevicesResults = { seed, relay: relayStats, link, screen, warmup, buildMs };
		return { rows: rows(cfg, results), results, notes: notes(cfg, results) };
	} finally {
		await first.close();
		await relay.stop();
	}
}

function rows(cfg: DevicesConfig, r: DevicesResults): Row[] {
	const kith = median(r.link.map((l) => l.kithMs));
	const copy = median(r.link.map((l) => l.copy.ms));
	const r1 = kith / copy;
	const n = `${cfg.conversations} × ${fmt(cfg.messages)}`;
	const MB = 1e6;
	const withLoads = r.screen.filter((s) => s.variant === 'with');
	const withoutLoads = r.screen.filter((s) => s.variant === 'without');
	const withMs = median(withLoads.map((s) => s.firstScreenMs));
	const withoutMs = median(withoutLoads.map((s) => s.firstScreenMs));
	const part = withMs - withoutMs;
	const share = part / withMs;
	const paired = median(
		withLoads.map((s, i) => s.firstScreenMs - (withoutLoads[i]?.firstScreenMs ?? Number.NaN))
	);
	const loads = withLoads.flatMap((s) => (s.automerge ? [s.automerge] : []));
	const loadMs = median(loads.map((l) => l.durationMs));
	const loadStart = median(loads.map((l) => l.startMs));
	const calls = withLoads.flatMap((s) => (s.automergeCalls ? [s.automergeCalls] : []));
	return [
		{
			name: `D1 Linked device to full history, ${n}`,
			value: `${fmt(kith)} ms`,
			baseline: `${fmt(copy)} ms`,
			ratio: ratio(r1),
			target: '≤ 3.00×',
			result: r1 <= 3 ? 'PASS' : 'MISS',
			note: `median of ${r.link.length} new devices (${r.link.map((l) => fmt(l.kithMs)).join(', ')} ms): second "Codes match" → search finds every conversation's first and last message; app open at ${fmt(median(r.link.map((l) => l.readyMs)))} ms, first one found at ${fmt(median(r.link.map((l) => l.firstHitMs)))} ms; every envelope in the new device's own storage by ${fmt(median(r.link.map((l) => l.storedMs)))} ms (untimed, read after; the history shows from the view the first device handed over); baseline: ${r.relay.rooms} rooms (vault + every conversation) copied at once over the relay protocol into empty Yjs docs (${r.link.map((l) => fmt(l.copy.ms)).join(', ')} ms), ${fmt(median(r.link.map((l) => l.copy.updateBytes)) / MB, 2)} MB of updates; ${fmt(r.relay.envelopes)} envelopes, ${fmt(r.relay.envelopeBytes / MB, 2)} MB on the relay`
		},
		{
			name: `D2 First screen, ${cfg.conversations + 1} conversations`,
			value: `${fmt(withMs)} ms`,
			baseline: `${fmt(withoutMs)} ms`,
			ratio: ratio(withMs / withoutMs),
			note: `fresh page loads of the app (${withLoads.length} each, alternating, after one warm-up each), navigation start → first conversation link visible; baseline: the same build with the vault on a plain-JS stand-in (no Automerge module, no wasm); response end ${fmt(median(withLoads.map((s) => s.responseEndMs)))} ms, DOMContentLoaded ${fmt(median(withLoads.map((s) => s.domContentLoadedMs)))} ms; service worker controlling: ${withLoads.every((s) => s.serviceWorker) ? 'yes' : 'not always'}`
		},
		{
			name: `  …Automerge's part`,
			value: `${fmt(part)} ms`,
			baseline: `${fmt(withMs)} ms`,
			ratio: `${fmt(share * 100, 1)} %`,
			target: '≤ 15 %',
			result: share <= 0.15 ? 'PASS' : 'MISS',
			note: `median with − median without: all Automerge adds (its load, applying and reading the vault); paired by load ${fmt(paired)} ms; its load (import of the JS glue, the wasm fetched and compiled as it streams, instantiate) ${fmt(loadMs)} ms, from ${fmt(loadStart)} to ${fmt(loadStart + loadMs)} ms after navigation start, in parallel with other start-up work; then ${fmt(median(calls.map((c) => c.ms)))} ms in ${fmt(median(calls.map((c) => c.calls)))} calls of the vault into it before the first screen`
		}
	];
}

function notes(cfg: DevicesConfig, r: DevicesResults): string[] {
	return [
		`Kith server on loopback with a temporary data dir (${Object.entries(RELAY_ENV)
			.map(([k, v]) => `${k}=${v}`)
			.join(' ')}); each browser a headless Chromium on a fresh on-disk profile.`,
		`Seeded through KithApp (no UI): ${fmt(r.seed.messages)} messages, one send at a time per conversation, in ${fmt(r.seed.ms / 1000, 1)} s; app and bench page built in ${fmt(r.buildMs / 1000, 1)} s.`,
		`D1: baseline and new device alternate (${cfg.linkReps} of each), each after the first device and the relay went quiet; each new device adds itself to every roster, so later runs carry a few more envelopes.`,
		`D2: the first device's profile, fresh pages; "without" pages get the vault's content as the relay held it after D1, in the stand-in (bench/devices/automerge-stub.ts).`
	];
}
