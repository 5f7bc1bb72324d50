/**
 * Browsers directly (docs/protocol.md, "P2P sync": "Browsers"): two people in
 * two Chromium contexts meet through the Kith server's libp2p node, upgrade
 * to WebRTC (the path indicator says "direct"), and keep chatting both ways
 * after the server process is stopped. While both paths run, every message
 * shows once. Typing (encrypted awareness) rides the direct path too: with
 * the server gone, "NAME is typing…" still shows, and clears on send.
 *
 * Headless WebRTC with `iceServers: []` needs host candidates: Chromium is
 * launched with `--allow-loopback-in-peer-connection` and without mDNS
 * hiding of local addresses, so no network namespace (and no root) is needed.
 *
 * Files too: with the server (and its blob store) gone, a file Ada sends goes
 * to Bob over the direct path, byte-identical; his browser fetches its
 * chunks from hers. When the server is back, her browser uploads them there.
 */
import { createHash, randomBytes } from 'node:crypto';
import { expect, test, type Browser, type Page } from '@playwright/test';
import { launchWebrtcChromium } from './chromium';
import {
	article,
	articles,
	attachFile,
	composer,
	inviteAndJoin,
	linkedFileHash,
	messageLog,
	openConversation,
	personAt
} from './helpers';
import { RelayProcess } from './support/relay-process';

test.describe.configure({ timeout: 180_000 });

/** A 2 × 2 PNG. */
const PNG = Buffer.from(
	'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==',
	'base64'
);

let relay: RelayProcess;
let browser: Browser;

test.beforeEach(async () => {
	relay = new RelayProcess({ KITH_P2P: 'on' });
	await relay.start();
	browser = await launchWebrtcChromium();
});

test.afterEach(async () => {
	await browser.close();
	await relay.stop();
	relay.remove();
});

function path(page: Page) {
	return page.getByRole('status', { name: 'Path', exact: true });
}

function typing(page: Page, name: string) {
	return page.getByRole('status').filter({ hasText: `${name} is typing…` });
}

/** Type in `from` until `to` shows it, then send: the line goes with the send, not by timing out. */
async function typeAndSend(from: Page, to: Page, name: string, text: string): Promise<void> {
	await composer(from).fill(text.slice(0, -3));
	await expect(typing(to, name)).toBeVisible({ timeout: 15_000 });
	await expect(typing(to, name)).toHaveText(`${name} is typing…`);
	await composer(from).fill(text);
	await composer(from).press('Enter');
	// Shown for 6 s unless cleared, and the sender stops by itself only after
	// 4.5 s: gone within 2.5 s of the send means the send cleared it.
	await expect(typing(to, name)).toBeHidden({ timeout: 2_500 });
	await expect(article(to, text)).toBeVisible({ timeout: 30_000 });
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
	// Typing while both paths run: the state arrives twice, shows as one line, clears on send.
	await typeAndSend(bob, ada, 'Bob', 'typing on both paths');
	for (const page of [ada, bob]) {
		for (const text of ['over the relay', 'both paths, from ada', 'both paths, from bob']) {
			await expect(articles(page).filter({ hasText: text })).toHaveCount(1);
		}
	}

	// A second tab of Bob's: it holds no connection of its own, and reads the
	// path from the tab that does.
	const bobTab = await bob.context().newPage();
	await bobTab.goto(relay.origin);
	await openConversation(bobTab, 'Direct');
	await expect(path(bobTab)).toHaveText('direct', { timeout: 30_000 });

	// The server goes away; the direct connection stays.
	await relay.stop();
	await expect(ada.getByRole('status', { name: 'Connection' })).not.toHaveText('Connected', {
		timeout: 30_000
	});
	await expect(path(ada)).toHaveText('direct');
	await say(ada, bob, 'no server, from ada');
	await say(bob, ada, 'no server, from bob');

	// Typing with no server: the encrypted awareness rides /kith/sync.
	await typeAndSend(bob, ada, 'Bob', 'bob typed it, relay gone');
	await typeAndSend(ada, bob, 'Ada', 'ada typed it, relay gone');

	// A file with no blob store: Bob's browser fetches its chunks from Ada's (5 chunks).
	const bytes = randomBytes(1_200_000);
	await attachFile(ada, {
		name: 'trail-map.bin',
		mimeType: 'application/octet-stream',
		buffer: bytes
	});
	await expect(messageLog(ada).getByRole('link', { name: 'trail-map.bin' })).toBeVisible({
		timeout: 30_000
	});
	expect(await linkedFileHash(bob, 'trail-map.bin')).toBe(
		createHash('sha256').update(bytes).digest('hex')
	);
	await bob.screenshot({ path: test.info().outputPath('file-over-webrtc.png') });
	// Bob's other tab gets a file through his first tab's peers: a file that first
	// tab never shows (so never fetches into the profile's storage) while it
	// holds the connections.
	await bob.getByRole('link', { name: 'Settings' }).click();
	const forTab = randomBytes(700_000);
	await attachFile(ada, {
		name: 'for-the-other-tab.bin',
		mimeType: 'application/octet-stream',
		buffer: forTab
	});
	expect(await linkedFileHash(bobTab, 'for-the-other-tab.bin')).toBe(
		createHash('sha256').update(forTab).digest('hex')
	);
	await openConversation(bob, 'Direct');
	// An image shows inline; audio streams through Bob's service worker, which
	// asks his page for the chunks the relay cannot give.
	await attachFile(ada, { name: 'dot.png', mimeType: 'image/png', buffer: PNG });
	const dot = messageLog(bob).getByRole('img', { name: 'dot.png', exact: true });
	await expect(dot).toBeVisible({ timeout: 30_000 });
	await expect.poll(() => dot.evaluate((img) => (img as HTMLImageElement).naturalWidth)).toBe(2);
	const voice = randomBytes(900_000);
	await attachFile(ada, { name: 'voice.ogg', mimeType: 'audio/ogg', buffer: voice });
	expect(await linkedFileHash(bob, 'voice.ogg')).toBe(
		createHash('sha256').update(voice).digest('hex')
	);

	const expected = [
		'over the relay',
		'both paths, from ada',
		'both paths, from bob',
		'typing on both paths',
		'no server, from ada',
		'no server, from bob',
		'bob typed it, relay gone',
		'ada typed it, relay gone',
		'trail-map.bin',
		'for-the-other-tab.bin',
		'dot.png',
		'voice.ogg'
	];
	for (const page of [ada, bob]) {
		await expect(articles(page)).toHaveCount(expected.length);
		for (const text of expected) {
			await expect(articles(page).filter({ hasText: text })).toHaveCount(1);
		}
	}

	// The server comes back: Ada's browser uploads the files' chunks (5, 3, 1
	// and 4), which only Bob had, to its blob store, for members with no direct
	// path. It remembers them across a reload (the app opens from its cache).
	await ada.reload();
	await expect(ada.getByRole('navigation', { name: 'Conversations' })).toBeVisible();
	await relay.start();
	await expect(ada.getByRole('status', { name: 'Connection' })).toHaveText('Connected', {
		timeout: 60_000
	});
	await expect.poll(() => blobsStored(relay.origin), { timeout: 30_000 }).toBe(5 + 3 + 1 + 4);
});

/** Chunks the relay's blob store took since it started (its own counter). */
async function blobsStored(origin: string): Promise<number> {
	const text = await (await fetch(`${origin}/blobs/metrics`)).text();
	return Number(/kith_blobs_stored_total (\d+)/.exec(text)?.[1] ?? NaN);
}
