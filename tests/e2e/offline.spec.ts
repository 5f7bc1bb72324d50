/**
 * The installable, offline app: the service worker precaches the shell, so
 * after one visit Kith opens with the server gone; a new version waits behind
 * "Update available" and takes over on "Reload" without losing a draft; the
 * web manifest is valid and its icons load.
 *
 * The offline and update tests run their own server process (RelayProcess)
 * so they can stop it, and the update test serves a copy of the build whose
 * service-worker.js it changes: the browser then sees a new version exactly
 * as it would after a deploy.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect, test, type Browser, type Page } from '@playwright/test';
import {
	article,
	composer,
	conversationLink,
	createAccount,
	inviteAndJoin,
	openConversation,
	status,
	stored
} from './helpers';
import { RelayProcess } from './support/relay-process';

/** The build the servers serve (what playwright.config.ts's server uses too). */
const BUILD_DIR = resolve(process.env.KITH_STATIC || 'build');

function connection(page: Page) {
	return page.getByRole('status', { name: 'Connection' });
}

function updateBanner(page: Page) {
	return page.getByRole('status', { name: 'Update available' });
}

async function person(browser: Browser, origin: string, name: string): Promise<Page> {
	const context = await browser.newContext();
	const page = await context.newPage();
	await page.goto(origin);
	await createAccount(page, name);
	return page;
}

/** Wait until a service worker controls the page: the shell is precached and it serves this tab. */
async function controlled(page: Page): Promise<void> {
	await page.evaluate(() => navigator.serviceWorker.ready);
	await expect
		.poll(() => page.evaluate(() => navigator.serviceWorker.controller !== null), {
			timeout: 20_000
		})
		.toBe(true);
}

/** Every URL in this origin's Cache Storage. */
async function cachedUrls(page: Page): Promise<string[]> {
	return page.evaluate(async () => {
		const urls: string[] = [];
		for (const name of await caches.keys()) {
			const cache = await caches.open(name);
			for (const request of await cache.keys()) urls.push(new URL(request.url).pathname);
		}
		return urls;
	});
}

/** A copy of the build, served by its own server process, so a test can publish a "new version". */
async function siteWithItsOwnServer(): Promise<{ site: string; relay: RelayProcess }> {
	const site = mkdtempSync(join(tmpdir(), 'kith-e2e-site-'));
	cpSync(BUILD_DIR, site, { recursive: true });
	const relay = new RelayProcess({ KITH_STATIC: site });
	await relay.start();
	return { site, relay };
}

/** Deploy: a service worker that differs (a new build version, so the shell is re-fetched). */
function deployNewVersion(site: string): void {
	const { version } = JSON.parse(readFileSync(join(site, '_app/version.json'), 'utf8')) as {
		version: string;
	};
	const workerFile = join(site, 'service-worker.js');
	const worker = readFileSync(workerFile, 'utf8');
	expect(worker).toContain(version);
	writeFileSync(workerFile, worker.replaceAll(version, `${version}-next`));
	// The server re-reads the build when index.html changes.
	const now = new Date();
	utimesSync(join(site, 'index.html'), now, now);
}

/** The app looks for updates hourly and when the tab comes back into view; ask now. */
async function checkForUpdate(page: Page): Promise<void> {
	await page.evaluate(async () => {
		const registration = await navigator.serviceWorker.getRegistration();
		await registration?.update();
	});
}

test.describe('with a server the test can stop', () => {
	test.describe.configure({ timeout: 150_000 });

	test('Offline: load once, stop the server, reload: the app works; a message written then goes out when the server is back', async ({
		browser
	}) => {
		const relay = new RelayProcess();
		await relay.start();
		try {
			const ada = await person(browser, relay.origin, 'Ada');
			const bob = await person(browser, relay.origin, 'Bob');
			await inviteAndJoin(ada, bob, 'Cabin');
			await composer(ada).fill('before the outage');
			await composer(ada).press('Enter');
			await expect(article(bob, 'before the outage')).toBeVisible({ timeout: 15_000 });
			await controlled(ada);
			const conversationUrl = ada.url();
			expect(new URL(conversationUrl).pathname).toMatch(/^\/c\//);

			const cached = await cachedUrls(ada);
			expect(cached).toContain('/index.html');
			expect(cached.some((path) => path.startsWith('/_app/immutable/'))).toBe(true);
			for (const path of cached) expect(path).not.toMatch(/^\/(healthz|metrics|sync|blobs|media)/);

			await relay.stop();

			// A reload of the deep link: the shell, the conversation and its history, from this device.
			await ada.reload();
			await expect(ada.getByRole('heading', { level: 1, name: 'Cabin', exact: true })).toBeVisible({
				timeout: 20_000
			});
			await expect(article(ada, 'before the outage')).toBeVisible();
			await expect(connection(ada)).not.toHaveText('Connected');
			// The server's own routes are never answered from a cache.
			const health = await ada.evaluate(() =>
				fetch('/healthz').then(
					(response) => `status ${response.status}`,
					() => 'network error'
				)
			);
			expect(health).toBe('network error');

			// Other entry points open offline too: the start page, and a join link.
			await ada.goto(`${relay.origin}/join`);
			await expect(ada.getByRole('heading', { level: 1, name: 'Join a conversation' })).toBeVisible(
				{ timeout: 20_000 }
			);
			await ada.goto(relay.origin);
			await expect(conversationLink(ada, 'Cabin')).toBeVisible({ timeout: 20_000 });
			await openConversation(ada, 'Cabin');
			expect(ada.url()).toBe(conversationUrl);

			await composer(ada).fill('written offline');
			await composer(ada).press('Enter');
			const offline = article(ada, 'written offline');
			await expect(status(offline, 'Saved')).toBeVisible({ timeout: 10_000 });
			await expect(composer(ada)).toHaveValue('');

			await relay.start();
			await expect(connection(ada)).toHaveText('Connected', { timeout: 30_000 });
			await expect(article(bob, 'written offline')).toBeVisible({ timeout: 30_000 });
			await expect(status(offline, 'Saved')).toHaveCount(0, { timeout: 20_000 });
			await expect(stored(offline)).toBeVisible();
		} finally {
			await relay.stop();
			relay.remove();
		}
	});

	test('a new version waits behind "Update available"; "Reload" lets it in and the draft survives', async ({
		browser
	}, testInfo) => {
		const { site, relay } = await siteWithItsOwnServer();
		try {
			const page = await person(browser, relay.origin, 'Ada');
			await controlled(page);
			await openConversation(page, 'Notes to self');
			const notesUrl = page.url();
			await expect(updateBanner(page)).toHaveCount(0);

			deployNewVersion(site);
			await checkForUpdate(page);
			const banner = updateBanner(page);
			await expect(banner).toBeVisible({ timeout: 20_000 });
			await expect(banner.getByRole('button', { name: 'Reload' })).toBeVisible();
			expect(
				await page.evaluate(async () => {
					const registration = await navigator.serviceWorker.getRegistration();
					return registration?.waiting !== null;
				})
			).toBe(true);

			// Reloading by hand does not let it in (this tab still uses the old one), and the
			// banner is back at once: the new version is still waiting.
			await page.reload();
			await expect(page.getByRole('heading', { level: 1, name: 'Notes to self' })).toBeVisible({
				timeout: 20_000
			});
			await expect(banner).toBeVisible({ timeout: 20_000 });

			// Unsent text, in two conversations.
			await composer(page).fill('half a thought, not sent');
			await page.getByRole('button', { name: 'New conversation' }).click();
			await page.getByRole('textbox', { name: 'Conversation name' }).fill('Second');
			await page.getByRole('button', { name: 'Create', exact: true }).click();
			await expect(page.getByRole('heading', { level: 1, name: 'Second' })).toBeVisible();
			await composer(page).fill('another draft');
			await composer(page).press('Shift+Enter');
			await composer(page).pressSequentially('on two lines');
			const secondUrl = page.url();

			// A second tab, with a draft of its own: it sees the banner too, and when the first
			// tab lets the new version in, it reloads as well and keeps its draft.
			const other = await page.context().newPage();
			await other.goto(notesUrl);
			await expect(other.getByRole('heading', { level: 1, name: 'Notes to self' })).toBeVisible({
				timeout: 20_000
			});
			await expect(updateBanner(other)).toBeVisible({ timeout: 20_000 });
			await composer(other).fill('typed in the other tab');

			await page.bringToFront();
			await page.screenshot({ path: testInfo.outputPath('update-banner.png') });
			await banner.screenshot({ path: testInfo.outputPath('update-banner-close.png') });

			const reloaded = page.waitForEvent('load');
			const otherReloaded = other.waitForEvent('load');
			await banner.getByRole('button', { name: 'Reload' }).click();
			await reloaded;
			await otherReloaded;
			await expect(composer(other)).toHaveValue('typed in the other tab', { timeout: 20_000 });
			await expect(updateBanner(other)).toHaveCount(0);

			await expect(page.getByRole('heading', { level: 1, name: 'Second' })).toBeVisible({
				timeout: 20_000
			});
			expect(page.url()).toBe(secondUrl);
			await expect(composer(page)).toHaveValue('another draft\non two lines');
			await openConversation(page, 'Notes to self');
			await expect(composer(page)).toHaveValue('half a thought, not sent');
			await expect(updateBanner(page)).toHaveCount(0);
			// The new version is in charge, nothing waits, and the drafts' copy is gone.
			const after = await page.evaluate(async () => {
				const registration = await navigator.serviceWorker.getRegistration();
				return {
					waiting: registration?.waiting !== null,
					stash: sessionStorage.getItem('kith:drafts')
				};
			});
			expect(after).toEqual({ waiting: false, stash: null });
			const cached = await cachedUrls(page);
			expect(cached.filter((path) => path === '/index.html')).toHaveLength(1);
		} finally {
			await relay.stop();
			relay.remove();
			rmSync(site, { recursive: true, force: true });
		}
	});

	test('when the drafts cannot be kept, "Reload" does not reload and says so', async ({
		browser
	}) => {
		const { site, relay } = await siteWithItsOwnServer();
		try {
			const page = await person(browser, relay.origin, 'Ada');
			await controlled(page);
			await openConversation(page, 'Notes to self');
			deployNewVersion(site);
			await checkForUpdate(page);
			const banner = updateBanner(page);
			await expect(banner).toBeVisible({ timeout: 20_000 });

			await composer(page).fill('precious words');
			// sessionStorage refuses, as when it is full or disabled.
			await page.evaluate(() => {
				Storage.prototype.setItem = () => {
					throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
				};
			});
			await page.evaluate(() => {
				(window as unknown as { loads: number }).loads = 1;
			});
			await banner.getByRole('button', { name: 'Reload' }).click();
			await expect(banner).toContainText('could not be kept', { timeout: 20_000 });
			await expect(banner.getByRole('button', { name: 'Reload' })).toBeEnabled();
			// Still the same page (no reload happened), with the text in the box.
			expect(await page.evaluate(() => (window as unknown as { loads?: number }).loads)).toBe(1);
			await expect(composer(page)).toHaveValue('precious words');
		} finally {
			await relay.stop();
			relay.remove();
			rmSync(site, { recursive: true, force: true });
		}
	});
});

test('the web manifest is valid, linked from the page, and its icons load', async ({
	page,
	request
}) => {
	await page.goto('/');
	const href = await page.locator('link[rel="manifest"]').getAttribute('href');
	expect(href).toBe('/manifest.webmanifest');

	const response = await request.get('/manifest.webmanifest');
	expect(response.status()).toBe(200);
	expect(response.headers()['content-type']).toMatch(/^application\/manifest\+json/);
	const manifest = (await response.json()) as {
		name: string;
		short_name: string;
		start_url: string;
		scope: string;
		display: string;
		theme_color: string;
		background_color: string;
		icons: { src: string; sizes: string; type: string; purpose?: string }[];
	};
	expect(manifest).toMatchObject({
		name: 'Kith',
		short_name: 'Kith',
		start_url: '/',
		scope: '/',
		display: 'standalone',
		theme_color: expect.stringMatching(/^#[0-9a-f]{6}$/i),
		background_color: expect.stringMatching(/^#[0-9a-f]{6}$/i)
	});

	const pngs = manifest.icons.filter((icon) => icon.type === 'image/png');
	for (const [size, purpose] of [
		['192x192', 'any'],
		['512x512', 'any'],
		['512x512', 'maskable']
	] as const) {
		expect(pngs.some((icon) => icon.sizes === size && (icon.purpose ?? 'any') === purpose)).toBe(
			true
		);
	}
	for (const icon of manifest.icons) {
		const image = await request.get(icon.src);
		expect(image.status(), icon.src).toBe(200);
		expect(image.headers()['content-type'], icon.src).toBe(icon.type);
		if (icon.type !== 'image/png') continue;
		// The PNG header says the size the manifest claims.
		const bytes = await image.body();
		expect(bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
		expect(`${bytes.readUInt32BE(16)}x${bytes.readUInt32BE(20)}`).toBe(icon.sizes);
	}

	// Chromium's own reading of it: no parse errors.
	const cdp = await page.context().newCDPSession(page);
	const parsed = (await cdp.send('Page.getAppManifest')) as {
		url: string;
		errors: { message: string }[];
	};
	expect(parsed.url).toMatch(/\/manifest\.webmanifest$/);
	expect(parsed.errors).toEqual([]);
});
