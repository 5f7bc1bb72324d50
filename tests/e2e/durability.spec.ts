/**
 * "Saved" means on disk: a message that showed "Saved" survives the browser
 * being killed outright (SIGKILL, no shutdown, no unload handlers) and
 * restarted on the same profile.
 *
 * This test starts Chromium itself rather than through the runner's browser
 * fixture, because it must own the real browser process to kill it and a
 * persistent profile to start again on.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, expect, test, type Browser, type Page } from '@playwright/test';
import { chromiumLaunchOptions } from './chromium';
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

interface RunningChromium {
	child: ChildProcess;
	pid: number;
	browser: Browser;
	exited: Promise<void>;
}

/** Start Chromium on `userDataDir` with a DevTools port of its choosing, and connect to it. */
async function startChromium(userDataDir: string): Promise<RunningChromium> {
	const { executablePath, args } = chromiumLaunchOptions();
	const child = spawn(
		executablePath,
		[...args, `--user-data-dir=${userDataDir}`, '--remote-debugging-port=0', 'about:blank'],
		// Its own process group, so every helper process can be cleaned up after the kill.
		{ detached: true, stdio: ['ignore', 'ignore', 'pipe'] }
	);
	const pid = child.pid;
	if (pid === undefined) throw new Error(`could not start ${executablePath}`);
	const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
	const endpoint = await new Promise<string>((resolve, reject) => {
		let seen = '';
		const timer = setTimeout(
			() => reject(new Error(`Chromium printed no DevTools endpoint in 20 s:\n${seen}`)),
			20_000
		);
		child.stderr?.setEncoding('utf8');
		child.stderr?.on('data', (chunk: string) => {
			if (seen.length < 64_000) seen += chunk;
			const match = /DevTools listening on (ws:\/\/\S+)/.exec(seen);
			if (match?.[1]) {
				clearTimeout(timer);
				resolve(match[1]);
			}
		});
		child.once('exit', (code, signal) => {
			clearTimeout(timer);
			reject(new Error(`Chromium exited early (${code ?? signal}):\n${seen}`));
		});
	});
	const browser = await chromium.connectOverCDP(endpoint);
	return { child, pid, browser, exited };
}

/** SIGKILL the browser process (no chance to flush anything), then its helpers. */
async function killChromium(running: RunningChromium): Promise<void> {
	process.kill(running.pid, 'SIGKILL');
	await running.exited;
	try {
		process.kill(-running.pid, 'SIGKILL');
	} catch {
		// The group is already gone.
	}
}

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
