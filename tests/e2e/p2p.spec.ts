/**
 * Browsers directly (docs/protocol.md, "P2P sync": "Browsers"): two people in
 * two Chromium contexts meet through the Kith server's libp2p node, upgrade
 * to WebRTC (the path indicator says "direct"), and keep chatting both ways
 * after the server process is stopped. While both paths run, every message
 * shows once.
 *
 * Headless WebRTC with `iceServers: []` needs host candidates: Chromium is
 * launched with `--allow-loopback-in-peer-connection` and without mDNS
 * hiding of local addresses, so no network namespace (and no root) is needed.
 */
import { chromium, expect, test, type Browser, type Page } from '@playwright/test';
import { chromiumLaunchOptions } from './chromium';
import { article, articles, composer, inviteAndJoin, personAt } from './helpers';
import { RelayProcess } from './support/relay-process';

test.describe.configure({ timeout: 180_000 });

let relay: RelayProcess;
let browser: Browser;

test.beforeEach(async () => {
	relay = new RelayProcess({ KITH_P2P: 'on' });
	await relay.start();
	const options = chromiumLaunchOptions();
	browser = await chromium.launch({
		...options,
		args: [
			...options.args,
			'--allow-loopback-in-peer-connection',
			'--disable-features=WebRtcHideLocalIpsWithMdns'
		]
	});
});

test.afterEach(async () => {
	await browser.close();
	await relay.stop();
	relay.remove();
});

function path(page: Page) {
	return page.getByRole('status', { name: 'Path', exact: true });
}

async function say(from: Page, to: Page, text: string): Promise<void> {
	await composer(from).fill(text);
	await composer(from).press('Enter');
	await expect(article(from, text)).toBeVisible();
	await expect(article(to, text)).toBeVisible({ timeout: 30_000 });
}

test('two browsers upgrade to WebRTC and keep chatting when the server is gone', async () => {
	const ada = await personAt(browser, relay.origin, 'Ada');
	const bob = await personAt(browser, relay.origin, 'Bob');
	await inviteAndJoin(ada, bob, 'Direct');

	// Through the relay first, then straight to each other.
	await say(bob, ada, 'over the relay');
	await expect(path(ada)).toHaveText('direct', { timeout: 60_000 });
	await expect(path(bob)).toHaveText('direct', { timeout: 60_000 });
	await ada.screenshot({ path: test.info().outputPath('direct.png') });

	// Both paths at once: each message once on each side.
	await say(ada, bob, 'both paths, from ada');
	await say(bob, ada, 'both paths, from bob');
	for (const page of [ada, bob]) {
		for (const text of ['over the relay', 'both paths, from ada', 'both paths, from bob']) {
			await expect(articles(page).filter({ hasText: text })).toHaveCount(1);
		}
	}

	// The server goes away; the direct connection stays.
	await relay.stop();
	await expect(ada.getByRole('status', { name: 'Connection' })).not.toHaveText('Connected', {
		timeout: 30_000
	});
	await expect(path(ada)).toHaveText('direct');
	await say(ada, bob, 'no server, from ada');
	await say(bob, ada, 'no server, from bob');

	const expected = [
		'over the relay',
		'both paths, from ada',
		'both paths, from bob',
		'no server, from ada',
		'no server, from bob'
	];
	for (const page of [ada, bob]) {
		await expect(articles(page)).toHaveCount(expected.length);
		for (const text of expected) {
			await expect(articles(page).filter({ hasText: text })).toHaveCount(1);
		}
	}
});
