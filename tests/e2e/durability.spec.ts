/**
 * "Saved" means on disk: a message that showed "Saved" survives the browser
 * being killed outright (SIGKILL, no shutdown, no unload handlers) and
 * restarted on the same profile.
 *
 * This test starts Chromium itself rather than through the runner's browser
 * fixture, because it must own the real browser process to kill it and a
 * persistent profile to start again on.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Browser, type Page } from '@playwright/test';
import { killChromium, startChromium, type RunningChromium } from './support/chromium-process';
import {
	articles,
	composer,
	createAccount,
	expectMessages,
	expectNoAlert,
	messageLog,
	openConversation,
	stored
} from './helpers';

async function openApp(browser: Browser, baseURL: string): Promise<Page> {
	const context = browser.contexts()[0];
	if (!context) throw new Error('the browser has no default context');
	const page = await context.newPage();
	await page.goto(new URL('/', baseURL).href);
	return page;
}

test('messages that showed "Saved" survive a SIGKILL of the browser', async ({ baseURL }) => {
	test.setTimeout(90_000);
	if (!baseURL) throw new Error('baseURL is not configured');
	const profile = await mkdtemp(join(tmpdir(), 'kith-e2e-profile-'));
	const texts = Array.from({ length: 20 }, (_, i) => `Durable message ${i + 1} of 20`);
	let running: RunningChromium | null = null;
	try {
		running = await startChromium(profile);
		let page = await openApp(running.browser, baseURL);
		await createAccount(page, 'Ada');
		await openConversation(page, 'Notes to self');

		const box = composer(page);
		for (const text of texts) {
			await box.fill(text);
			await box.press('Enter');
			// The composer takes the next message once this one is stored.
			await expect(box).toHaveValue('');
		}
		await expect(articles(page)).toHaveCount(texts.length);
		await expect(stored(messageLog(page))).toHaveCount(texts.length);
		await expect(stored(articles(page).last())).toBeVisible();

		// Immediately: no snapshot, no idle flush, no unload.
		await killChromium(running);
		running = null;

		running = await startChromium(profile);
		page = await openApp(running.browser, baseURL);
		await openConversation(page, 'Notes to self');
		await expectMessages(page, texts);
		await expectNoAlert(page);
	} finally {
		if (running) {
			await running.browser.close().catch(() => undefined);
			await killChromium(running).catch(() => undefined);
		}
		await rm(profile, { recursive: true, force: true });
	}
});
