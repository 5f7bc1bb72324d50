/**
 * Files between two browsers through the real relay and blob store:
 *
 * - a 50 MB file arrives byte-identical; one chunk is tampered with on the
 *   way (a route flips a byte) and is refused and fetched again;
 * - the service worker serves /media/<id> with Range: exactly the bytes asked;
 * - the blob store on disk holds no plaintext of the file;
 * - a file over the per-file limit is refused before any upload, with an alert;
 * - a receiver killed mid-download (SIGKILL, throttled fetches) resumes after
 *   a restart without fetching again the chunks it held;
 * - with the service worker in control, a file's link saves the file itself
 *   (a `download` attribute would send the browser past the worker).
 *
 * Chunk fetches are counted by the relay's own counter (/blobs/metrics).
 */
import { createHash, randomBytes } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { closeSync, openSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type BrowserContext, type Page } from '@playwright/test';
import { killChromium, startChromium, type RunningChromium } from './support/chromium-process';
import {
	adaAndBob,
	attachFile as attach,
	createAccount,
	inviteAndJoin,
	linkedFileHash,
	messageLog,
	openConversation
} from './helpers';

const MB = 1000 * 1000;
const CHUNK = 256 * 1024;

function sha256(bytes: Uint8Array): string {
	return createHash('sha256').update(bytes).digest('hex');
}

/** A file of `size` random bytes with `marker` written every 64 KiB, on disk (Playwright's in-memory limit is 50 MB). */
async function makeFile(name: string, size: number, marker: string) {
	const dir = await mkdtemp(join(tmpdir(), 'kith-media-'));
	const bytes = new Uint8Array(randomBytes(size));
	const mark = Buffer.from(marker);
	for (let at = 0; at + mark.length < size; at += 64 * 1024) bytes.set(mark, at);
	const path = join(dir, name);
	writeFileSync(path, bytes);
	return { dir, path, bytes };
}

/** A small PNG (a colour gradient), made by hand: no canvas in Node. */
function png(width: number, height: number): Buffer {
	const crcTable = Array.from({ length: 256 }, (_, n) => {
		let c = n;
		for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
		return c >>> 0;
	});
	const crc = (bytes: Buffer) => {
		let c = 0xffffffff;
		for (const b of bytes) c = (crcTable[(c ^ b) & 0xff] as number) ^ (c >>> 8);
		return (c ^ 0xffffffff) >>> 0;
	};
	const chunk = (type: string, data: Buffer) => {
		const head = Buffer.alloc(4);
		head.writeUInt32BE(data.length);
		const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
		const tail = Buffer.alloc(4);
		tail.writeUInt32BE(crc(body));
		return Buffer.concat([head, body, tail]);
	};
	const ihdr = Buffer.alloc(13);
	ihdr.writeUInt32BE(width, 0);
	ihdr.writeUInt32BE(height, 4);
	ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
	const rows = Buffer.alloc((width * 3 + 1) * height);
	for (let y = 0; y < height; y++) {
		for (let x = 0; x < width; x++) {
			const at = y * (width * 3 + 1) + 1 + x * 3;
			rows.set([(x * 255) / width, (y * 255) / height, 160], at);
		}
	}
	return Buffer.concat([
		Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
		chunk('IHDR', ihdr),
		chunk('IDAT', deflateSync(rows)),
		chunk('IEND', Buffer.alloc(0))
	]);
}

async function served(baseURL: string): Promise<number> {
	const text = await (await fetch(new URL('/blobs/metrics', baseURL))).text();
	return Number(/kith_blobs_served_total (\d+)/.exec(text)?.[1] ?? NaN);
}

async function person(context: BrowserContext, name: string): Promise<Page> {
	const page = await context.newPage();
	await createAccount(page, name);
	return page;
}

/** SHA-256 (hex) of what the page gets from `url`, computed in the page. */
function hashInPage(
	page: Page,
	url: string,
	range?: string
): Promise<{ status: number; hash: string; contentRange: string | null; length: number }> {
	return page.evaluate(
		async ([u, r]) => {
			const res = await fetch(u as string, r ? { headers: { Range: r } } : {});
			const buf = await res.arrayBuffer();
			const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
			return {
				status: res.status,
				hash: Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join(''),
				contentRange: res.headers.get('Content-Range'),
				length: buf.byteLength
			};
		},
		[url, range ?? null]
	);
}

function walk(dir: string, out: string[] = []): string[] {
	for (const name of readdirSync(dir)) {
		const path = join(dir, name);
		if (statSync(path).isDirectory()) walk(path, out);
		else out.push(path);
	}
	return out;
}

test('a 50 MB file arrives byte-identical; tampering is refused; Range is exact; no plaintext at the relay; over the limit is refused', async ({
	browser,
	baseURL
}) => {
	test.setTimeout(240_000);
	if (!baseURL) throw new Error('no baseURL');
	const marker = `kith-media-marker-${randomBytes(6).toString('hex')}`;
	const file = await makeFile(`${marker}.bin`, 50 * MB, marker);
	const sparseDir = await mkdtemp(join(tmpdir(), 'kith-media-big-'));
	try {
		const adaContext = await browser.newContext();
		// Bob fetches from the page (no worker), where a route can tamper with a chunk.
		const bobContext = await browser.newContext({ serviceWorkers: 'block' });
		const ada = await person(adaContext, 'Ada');
		const bob = await person(bobContext, 'Bob');
		// The worker controls Ada's page (it claims it once active).
		await expect
			.poll(() => ada.evaluate(() => Boolean(navigator.serviceWorker?.controller)), {
				timeout: 20_000
			})
			.toBe(true);
		await inviteAndJoin(ada, bob, 'Files');

		// Over the limit (a sparse 2 GiB + 1 byte file): refused at once, nothing uploaded.
		const big = join(sparseDir, 'too-big.iso');
		closeSync(openSync(big, 'w'));
		await import('node:fs/promises').then((fs) => fs.truncate(big, 2 * 1024 ** 3 + 1));
		await attach(ada, big);
		const alert = ada.getByRole('alert').filter({ hasText: 'too-big.iso' });
		await expect(alert).toContainText('is too large to send');
		await expect(alert).toContainText('Nothing was uploaded');
		await expect(ada.getByRole('progressbar')).toHaveCount(0);
		await ada.screenshot({ path: test.info().outputPath('too-large.png') });
		await alert.getByRole('button', { name: 'Dismiss' }).click();

		// An image: inline for the receiver, from a preview to the full picture.
		const photo = join(sparseDir, 'photo.png');
		writeFileSync(photo, png(480, 320));
		await attach(ada, photo);
		const picture = messageLog(bob).getByRole('img', { name: 'photo.png', exact: true });
		await expect(picture).toBeVisible({ timeout: 60_000 });
		await expect
			.poll(() => picture.evaluate((img) => (img as HTMLImageElement).naturalWidth))
			.toBe(480);

		// Paste and drop send files too (synthetic events carrying a DataTransfer).
		await ada.getByRole('log', { name: 'Messages' }).evaluate((log) => {
			const data = (name: string) => {
				const transfer = new DataTransfer();
				transfer.items.add(new File([`hello from ${name}`], name, { type: 'text/plain' }));
				return transfer;
			};
			log.dispatchEvent(
				new ClipboardEvent('paste', { clipboardData: data('pasted.txt'), bubbles: true })
			);
			log.dispatchEvent(
				new DragEvent('drop', {
					dataTransfer: data('dropped.txt'),
					bubbles: true,
					cancelable: true
				})
			);
		});
		for (const name of ['pasted.txt', 'dropped.txt']) {
			await expect(messageLog(bob).getByRole('link', { name })).toBeVisible({ timeout: 30_000 });
		}

		// Tamper with the first chunk Bob fetches: flip one byte, once.
		const fetches = new Map<string, number>();
		let tampered: string | null = null;
		await bobContext.route('**/blobs/*', async (route) => {
			const request = route.request();
			const id = new URL(request.url()).pathname.split('/').pop() ?? '';
			if (request.method() !== 'GET' || id.length !== 43) return route.continue();
			fetches.set(id, (fetches.get(id) ?? 0) + 1);
			if (tampered === null) {
				tampered = id;
				const response = await route.fetch();
				const body = Buffer.from(await response.body());
				body[100] = (body[100] ?? 0) ^ 0xff;
				return route.fulfill({ response, body });
			}
			return route.continue();
		});

		const servedBefore = await served(baseURL);
		await attach(ada, file.path);
		const upload = ada.getByRole('progressbar', { name: `Uploading ${marker}.bin` });
		await expect(upload).toBeVisible();
		await ada.screenshot({ path: test.info().outputPath('uploading.png') });
		await expect(upload).toBeHidden({ timeout: 120_000 });

		// Bob: a progress bar, then the file as a link with its name.
		const receiving = bob.getByRole('progressbar', { name: `Downloading ${marker}.bin` });
		await expect(
			receiving.or(messageLog(bob).getByRole('link', { name: `${marker}.bin` }))
		).toBeVisible({
			timeout: 120_000
		});
		await bob.screenshot({ path: test.info().outputPath('downloading.png') });
		const link = messageLog(bob).getByRole('link', { name: `${marker}.bin` });
		await expect(link).toBeVisible({ timeout: 120_000 });
		expect(await link.getAttribute('download')).toBe(`${marker}.bin`);
		// Downloaded as a person would: click the link, then compare the saved file.
		const download = bob.waitForEvent('download');
		await link.click();
		const saved = await (await download).path();
		expect((await download).suggestedFilename()).toBe(`${marker}.bin`);
		const got = readFileSync(saved);
		expect(got.length).toBe(file.bytes.length);
		expect(sha256(got)).toBe(sha256(file.bytes));
		// The tampered chunk was refused and fetched again; every other one once.
		const chunks = Math.ceil(file.bytes.length / CHUNK);
		expect(tampered).not.toBeNull();
		expect(fetches.get(tampered as unknown as string)).toBe(2);
		expect(fetches.size).toBe(chunks);
		expect((await served(baseURL)) - servedBefore).toBe(chunks + 1);
		await bob.screenshot({ path: test.info().outputPath('received.png') });

		// Ada's worker serves the file with Range, decrypting as it reads.
		const adaLink = messageLog(ada).getByRole('link', { name: `${marker}.bin` });
		await expect(adaLink).toBeVisible();
		const mediaHref = (await adaLink.getAttribute('href')) ?? '';
		expect(mediaHref).toMatch(/^\/media\/[A-Za-z0-9_-]{22}\?download=1$/);
		const [start, end] = [CHUNK - 1000, 3 * CHUNK + 12345]; // spans four chunks
		const ranged = await hashInPage(ada, mediaHref, `bytes=${start}-${end}`);
		expect(ranged.status).toBe(206);
		expect(ranged.contentRange).toBe(`bytes ${start}-${end}/${file.bytes.length}`);
		expect(ranged.length).toBe(end - start + 1);
		expect(ranged.hash).toBe(sha256(file.bytes.subarray(start, end + 1)));
		const tail = await hashInPage(ada, mediaHref, 'bytes=-777');
		expect(tail.status).toBe(206);
		expect(tail.hash).toBe(sha256(file.bytes.subarray(file.bytes.length - 777)));
		const beyond = await hashInPage(ada, mediaHref, `bytes=${file.bytes.length}-`);
		expect(beyond.status).toBe(416);

		// At rest on the relay: chunks, and no plaintext of the file anywhere.
		const dataDir = process.env.KITH_E2E_DATA;
		if (!dataDir) throw new Error('KITH_E2E_DATA is not set');
		const files = walk(dataDir);
		expect(files.filter((f) => f.includes('/blobs/')).length).toBeGreaterThanOrEqual(chunks);
		const needle = Buffer.from(marker);
		for (const path of files) expect(readFileSync(path).includes(needle), path).toBe(false);

		await adaContext.close();
		await bobContext.close();
	} finally {
		await rm(file.dir, { recursive: true, force: true });
		await rm(sparseDir, { recursive: true, force: true });
	}
});

test('a receiver killed mid-download resumes without fetching again what it held', async ({
	browser,
	baseURL
}) => {
	test.setTimeout(240_000);
	if (!baseURL) throw new Error('no baseURL');
	const file = await makeFile('resume.bin', 20 * MB, 'resume-marker');
	const chunks = Math.ceil(file.bytes.length / CHUNK);
	const profile = await mkdtemp(join(tmpdir(), 'kith-e2e-profile-'));
	let running: RunningChromium | null = null;
	try {
		const adaContext = await browser.newContext();
		const ada = await person(adaContext, 'Ada');
		running = await startChromium(profile);
		const bobContext = running.browser.contexts()[0] as BrowserContext;
		// Throttle Bob's chunk fetches so the kill lands mid-transfer.
		let completed = 0;
		await bobContext.route('**/blobs/*', async (route) => {
			if (route.request().method() !== 'GET') return route.continue();
			await new Promise((r) => setTimeout(r, 150));
			await route.continue();
			completed++;
		});
		const bob = await bobContext.newPage();
		await bob.goto(new URL('/', baseURL).href);
		await createAccount(bob, 'Bob');
		await inviteAndJoin(ada, bob, 'Resume');

		await attach(ada, file.path);
		await expect(ada.getByRole('progressbar', { name: 'Uploading resume.bin' })).toBeHidden({
			timeout: 120_000
		});
		const progress = bob.getByRole('progressbar', { name: 'Downloading resume.bin' });
		await expect(progress).toBeVisible({ timeout: 60_000 });
		await expect
			.poll(async () => Number(await progress.getAttribute('aria-valuenow')), { timeout: 60_000 })
			.toBeGreaterThanOrEqual(30);
		const heldBefore = completed;
		await killChromium(running);
		running = null;
		expect(heldBefore).toBeLessThan(chunks);

		const servedBefore = await served(baseURL);
		running = await startChromium(profile);
		const page = await running.browser.contexts()[0]!.newPage();
		await page.goto(new URL('/', baseURL).href);
		await openConversation(page, 'Resume');
		const link = messageLog(page).getByRole('link', { name: 'resume.bin' });
		await expect(link).toBeVisible({ timeout: 120_000 });
		const got = await hashInPage(page, (await link.getAttribute('href')) ?? '');
		expect(got.hash).toBe(sha256(file.bytes));
		const refetched = (await served(baseURL)) - servedBefore;
		// Only what was not on disk at the kill: the chunks after it, plus at most the few in flight.
		console.log(
			`resume: ${chunks} chunks; ${heldBefore} fetched before the kill; ${refetched} after the restart`
		);
		test.info().annotations.push({
			type: 'chunks',
			description: `${chunks} chunks; ${heldBefore} fetched before the kill; ${refetched} after the restart`
		});
		expect(refetched).toBeLessThanOrEqual(chunks - heldBefore + 4);
		expect(refetched).toBeLessThan(chunks);
		await adaContext.close();
	} finally {
		if (running) {
			await running.browser.close().catch(() => undefined);
			await killChromium(running).catch(() => undefined);
		}
		await rm(profile, { recursive: true, force: true });
		await rm(file.dir, { recursive: true, force: true });
	}
});

test('with the service worker in control, a file’s link saves the file itself', async ({
	browser
}) => {
	const { ada, bob } = await adaAndBob(browser, 'Files');
	await expect
		.poll(() => bob.evaluate(() => Boolean(navigator.serviceWorker?.controller)), {
			timeout: 20_000
		})
		.toBe(true);
	const bytes = randomBytes(700_000);
	await attach(ada, { name: 'notes.bin', mimeType: 'application/octet-stream', buffer: bytes });
	expect(await linkedFileHash(bob, 'notes.bin')).toBe(sha256(bytes));
});
