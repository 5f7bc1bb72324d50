/**
 * Section "media" of `npm run bench` (`--only=media`): the encrypted media
 * pipeline in the real app.
 *
 * Starts the real Kith server on the built app (`npm run build`; built here if
 * missing) with a temporary KITH_DATA, opens it in Chromium on a fresh on-disk
 * profile (real IndexedDB) so the app's service worker takes control, and
 * evaluates bench/media/page.ts (the real src/lib/media, bundled here) in the
 * page:
 *
 * 1. Throughput: chunk + encrypt + hash + store in IndexedDB, then read +
 *    decrypt, against WebCrypto AES-256-GCM encrypt + decrypt of the same
 *    chunks (no hashing, no storage). Target: the pipeline at ≥ 0.5× raw.
 * 2. Service-worker streaming: a 500 MB file (100 MB with --quick) is put in
 *    the chunk store, its manifest posted to the worker, and the page reads
 *    /media/<id> to the end (and a Range in the middle) without keeping it.
 *    Meanwhile the worker's memory is sampled every 25 ms over the DevTools
 *    Protocol attached to the service-worker target (Runtime.getHeapUsage:
 *    JS heap used, plus embedder and ArrayBuffer backing stores where
 *    Chromium reports them). Target: peak < 64 MB.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium, type Page } from 'playwright-core';
import { build } from 'vite';
import WebSocket from 'ws';
import { chromiumLaunchOptions } from '../../tests/e2e/chromium';
import { fmt, ratio, type Row } from '../lib/report';
import { median } from '../lib/stats';
import type { PipelineResult } from './page';

const root = fileURLToPath(new URL('../../', import.meta.url));
const MB = 1000 * 1000;
const SW_LIMIT_BYTES = 64 * 1024 * 1024;

export interface MediaConfig {
	quick: boolean;
	pipelineBytes: number;
	pipelineReps: number;
	streamBytes: number;
}

export function mediaConfig(quick: boolean): MediaConfig {
	return {
		quick,
		pipelineBytes: quick ? 16 * MB : 64 * MB,
		pipelineReps: quick ? 3 : 5,
		streamBytes: quick ? 100 * MB : 500 * MB
	};
}

async function bundle(): Promise<string> {
	const out = await build({
		configFile: false,
		logLevel: 'warn',
		resolve: { alias: { $lib: join(root, 'src/lib') } },
		build: {
			write: false,
			target: 'es2022',
			minify: false,
			lib: { entry: join(root, 'bench/media/page.ts'), formats: ['iife'], name: 'kithMediaBench' }
		}
	});
	const outputs = Array.isArray(out) ? out : [out];
	for (const o of outputs) {
		if ('output' in o) {
			const chunk = o.output.find((c) => c.type === 'chunk');
			if (chunk && chunk.type === 'chunk') return chunk.code;
		}
	}
	throw new Error('bundling the media bench page produced no code');
}

async function startServer(dataDir: string): Promise<{ url: string; stop(): Promise<void> }> {
	const child = spawn(process.execPath, ['--import', 'tsx', 'sync-server/src/main.ts'], {
		cwd: root,
		env: {
			...process.env,
			HOST: '127.0.0.1',
			PORT: '0',
			KITH_DATA: dataDir,
			KITH_STATIC: join(root, process.env.KITH_BUILD_DIR || 'build'),
			LOG_LEVEL: 'warn'
		},
		stdio: ['ignore', 'pipe', 'inherit']
	});
	const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
	const url = await new Promise<string>((resolve, reject) => {
		createInterface({ input: child.stdout }).on('line', (line) => {
			const m = /^Kith listening on (http:\/\/\S+) /.exec(line);
			if (m?.[1]) resolve(m[1]);
		});
		child.once('exit', (code) => reject(new Error(`the Kith server exited (${code})`)));
	});
	return {
		url,
		async stop() {
			child.kill('SIGTERM');
			await exited;
		}
	};
}

/** A raw DevTools Protocol connection to the service-worker target (Playwright gives none for workers). */
async function serviceWorkerSession(profileDir: string) {
	const [port] = (await readFile(join(profileDir, 'DevToolsActivePort'), 'utf8')).split('\n');
	const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{
		type: string;
		url: string;
		webSocketDebuggerUrl: string;
	}>;
	const target = targets.find((t) => t.type === 'service_worker');
	if (!target) throw new Error('no service worker target');
	const ws = new WebSocket(target.webSocketDebuggerUrl, { perMessageDeflate: false });
	await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
	let next = 0;
	const pending = new Map<number, (value: unknown) => void>();
	ws.on('message', (data) => {
		const message = JSON.parse(String(data)) as { id?: number; result?: unknown };
		if (message.id !== undefined) pending.get(message.id)?.(message.result);
	});
	const send = <T>(method: string, params: object = {}): Promise<T> =>
		new Promise((resolve) => {
			const id = ++next;
			pending.set(id, resolve as (value: unknown) => void);
			ws.send(JSON.stringify({ id, method, params }));
		});
	return { send, close: () => ws.close() };
}

interface HeapUsage {
	usedSize: number;
	totalSize: number;
	embedderHeapUsedSize?: number;
	backingStorageSize?: number;
}

export async function runMedia(
	cfg: MediaConfig,
	log: (text: string) => void
): Promise<{ rows: Row[]; results: Record<string, unknown> }> {
	const buildDir = join(root, process.env.KITH_BUILD_DIR || 'build');
	if (!existsSync(join(buildDir, 'service-worker.js'))) {
		log('building the app (npm run build): the media bench needs its service worker');
		await new Promise<void>((resolve, reject) => {
			const child = spawn('npm', ['run', 'build'], { cwd: root, stdio: 'ignore' });
			child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`build: ${code}`))));
		});
	}
	const code = await bundle();
	const dataDir = await mkdtemp(join(tmpdir(), 'kith-bench-media-data-'));
	const profileDir = await mkdtemp(join(tmpdir(), 'kith-bench-media-'));
	const server = await startServer(dataDir);
	const launch = chromiumLaunchOptions();
	const context = await chromium.launchPersistentContext(profileDir, {
		...launch,
		args: [...launch.args, '--remote-debugging-port=0'],
		headless: true,
		// The bench code is evaluated into the app's page: the app's CSP (no eval) is not measured here.
		bypassCSP: true
	});
	try {
		const page: Page = await context.newPage();
		await page.goto(server.url);
		await page.waitForFunction(() => navigator.serviceWorker?.controller != null, null, {
			timeout: 60_000
		});
		await page.evaluate(`${code}\n;window.kithMediaBench = kithMediaBench; true`);

		log(
			`media pipeline: ${fmt(cfg.pipelineBytes / MB)} MB × ${cfg.pipelineReps}, against raw AES-GCM`
		);
		const runs: PipelineResult[] = [];
		for (let i = 0; i < cfg.pipelineReps; i++) {
			runs.push(
				(await page.evaluate(
					([size, seed]) =>
						(
							window as unknown as {
								kithMediaBench: { pipeline(a: number, b: number): Promise<unknown> };
							}
						).kithMediaBench.pipeline(size, seed),
					[cfg.pipelineBytes, i + 1] as const
				)) as PipelineResult
			);
		}
		const mbps = (bytes: number, ms: number) => bytes / MB / (ms / 1000);
		const pipeMbps = median(runs.map((r) => mbps(r.bytes, r.writeMs + r.readMs)));
		const rawMbps = median(runs.map((r) => mbps(r.bytes, r.rawEncryptMs + r.rawDecryptMs)));
		const writeMbps = median(runs.map((r) => mbps(r.bytes, r.writeMs)));
		const readMbps = median(runs.map((r) => mbps(r.bytes, r.readMs)));
		const encryptMbps = median(runs.map((r) => mbps(r.bytes, r.encryptOnlyMs)));
		const storeMbps = median(runs.map((r) => mbps(r.bytes, r.storeOnlyMs)));

		log(`service-worker streaming: preparing a ${fmt(cfg.streamBytes / MB)} MB file`);
		const manifest = (await page.evaluate(
			([size]) =>
				(
					window as unknown as {
						kithMediaBench: { prepare(a: number, b: number): Promise<unknown> };
					}
				).kithMediaBench.prepare(size, 99),
			[cfg.streamBytes] as const
		)) as { id: string; size: number };
		await page.evaluate((m) => {
			navigator.serviceWorker.controller?.postMessage({ type: 'kith-media:manifest', manifest: m });
		}, manifest);
		const sw = await serviceWorkerSession(profileDir);
		await sw.send('HeapProfiler.collectGarbage');
		const base = await sw.send<HeapUsage>('Runtime.getHeapUsage');
		const samples: HeapUsage[] = [];
		let sampling = true;
		const sampler = (async () => {
			while (sampling) {
				samples.push(await sw.send<HeapUsage>('Runtime.getHeapUsage'));
				await new Promise((r) => setTimeout(r, 25));
			}
		})();
		log('service-worker streaming: reading /media/<id> to the end');
		const drain = (url: string, range?: string) =>
			page.evaluate(
				([u, r]) =>
					(
						window as unknown as {
							kithMediaBench: {
								drain(
									u: string,
									r?: string
								): Promise<{ status: number; bytes: number; ms: number }>;
							};
						}
					).kithMediaBench.drain(u as string, r ?? undefined),
				[url, range ?? null] as const
			);
		const whole = await drain(`/media/${manifest.id}`);
		const mid = Math.floor(manifest.size / 2);
		const ranged = await drain(`/media/${manifest.id}`, `bytes=${mid}-${mid + 10 * MB - 1}`);
		sampling = false;
		await sampler;
		sw.close();
		if (whole.bytes !== manifest.size)
			throw new Error(`streamed ${whole.bytes} of ${manifest.size} bytes`);
		if (ranged.status !== 206 || ranged.bytes !== 10 * MB)
			throw new Error('the Range read was wrong');
		const total = (u: HeapUsage) =>
			u.usedSize + (u.embedderHeapUsedSize ?? 0) + (u.backingStorageSize ?? 0);
		const peak = Math.max(...samples.map(total));
		const peakJs = Math.max(...samples.map((s) => s.usedSize));
		const rows: Row[] = [
			{
				name: 'M1 Media pipeline (chunk+encrypt+hash+store, read+decrypt)',
				value: `${fmt(pipeMbps)} MB/s`,
				baseline: `${fmt(rawMbps)} MB/s`,
				ratio: ratio(pipeMbps / rawMbps),
				target: '≥ 0.50×',
				result: pipeMbps / rawMbps >= 0.5 ? 'PASS' : 'MISS',
				note: `write ${fmt(writeMbps)} MB/s (chunk+encrypt+hash alone ${fmt(encryptMbps)} MB/s, IndexedDB puts alone ${fmt(storeMbps)} MB/s), read ${fmt(readMbps)} MB/s; baseline = WebCrypto AES-256-GCM encrypt+decrypt of the same 256 KiB chunks; ${fmt(cfg.pipelineBytes / MB)} MB × ${cfg.pipelineReps}`
			},
			{
				name: `M2 Service worker streams ${fmt(cfg.streamBytes / MB)} MB, peak memory`,
				value: `${fmt(peak / 2 ** 20, 1)} MiB`,
				baseline: `${fmt(total(base) / 2 ** 20, 1)} MiB idle`,
				target: '< 64 MiB',
				result: peak < SW_LIMIT_BYTES ? 'PASS' : 'MISS',
				note: `JS heap peak ${fmt(peakJs / 2 ** 20, 1)} MiB; ${samples.length} samples (Runtime.getHeapUsage of the SW target${base.backingStorageSize === undefined ? ', JS heap only' : ' + ArrayBuffer backing stores'}); whole file ${fmt(whole.ms)} ms (${fmt(mbps(whole.bytes, whole.ms))} MB/s); 10 MB Range ${fmt(ranged.ms)} ms`
			}
		];
		return {
			rows,
			results: {
				pipeline: runs,
				pipelineMbps: pipeMbps,
				rawMbps,
				stream: {
					bytes: manifest.size,
					wholeMs: whole.ms,
					rangeMs: ranged.ms,
					peakBytes: peak,
					peakJsBytes: peakJs,
					idle: base,
					samples: samples.length
				}
			}
		};
	} finally {
		await context.close().catch(() => undefined);
		await server.stop();
		await rm(profileDir, { recursive: true, force: true });
		await rm(dataDir, { recursive: true, force: true });
	}
}
