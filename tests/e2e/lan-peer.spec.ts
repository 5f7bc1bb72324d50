/**
 * A LAN peer (docs/protocol.md, "P2P sync": "LAN peers"): a `kith serve`
 * prints the WebRTC-Direct address a browser can dial; the browser enters it
 * under Settings → "LAN peers", keeps it across a reload, and syncs the
 * conversation with that peer directly: the path indicator reads "LAN peer",
 * and messages still go both ways once the relay process is stopped.
 *
 * With the relay gone, a file goes between two browsers through `kith serve`
 * too: it keeps no files, and passes each chunk request on to the sender.
 *
 * The relay runs without its libp2p node (KITH_P2P off): the LAN path needs
 * nothing from the server. Chromium is launched as in p2p.spec.ts (host
 * candidates, loopback allowed) so no network namespace is needed.
 */
import { expect, test, type Browser, type Page } from '@playwright/test';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { cleanup, freeUdpPort, kith, ServeProcess, tempDir } from '../../src/cli/test-support';
import { launchWebrtcChromium } from './chromium';
import {
	article,
	articles,
	attachFile,
	composer,
	linkedFileHash,
	openConversation,
	personAt,
	status
} from './helpers';
import { RelayProcess } from './support/relay-process';

test.describe.configure({ timeout: 240_000 });

let relay: RelayProcess;
let browser: Browser;

test.beforeEach(async () => {
	relay = new RelayProcess();
	await relay.start();
	browser = await launchWebrtcChromium();
});

test.afterEach(async () => {
	await browser.close();
	await cleanup();
	await relay.stop();
	relay.remove();
});

/**
 * Carol's kith account with one conversation, and the arguments of her
 * `kith serve`: JSON output, the test's relay, no mDNS, loopback TCP and a
 * free UDP port for browsers.
 */
async function carolWith(conversation: string): Promise<{ dir: string; serveArgs: string[] }> {
	const dir = join(tempDir(), 'carol');
	expect((await kith(['--data', dir, 'init', '--name', 'Carol'])).code).toBe(0);
	expect((await kith(['--data', dir, 'new', conversation])).code).toBe(0);
	const serveArgs = [
		...['--data', dir, '--json', '--relay', relay.origin, '--no-mdns'],
		...['--listen', '/ip4/127.0.0.1/tcp/0', '--webrtc-port', String(await freeUdpPort())]
	];
	return { dir, serveArgs };
}

function path(page: Page) {
	return page.getByRole('status', { name: 'Path', exact: true });
}

function json(line: string): Record<string, unknown> {
	try {
		return JSON.parse(line) as Record<string, unknown>;
	} catch {
		return {};
	}
}

/** What `kith serve --json` printed for browsers. */
async function browserAddresses(serve: ServeProcess): Promise<string[]> {
	let addresses: string[] = [];
	await expect
		.poll(
			() => {
				for (const line of serve.lines) {
					const printed = json(line).browserAddresses;
					if (Array.isArray(printed)) addresses = printed as string[];
				}
				return addresses.length;
			},
			{ timeout: 10_000 }
		)
		.toBeGreaterThan(0);
	return addresses;
}

/** `kith serve --json` printed a message with this text. */
function served(serve: ServeProcess, text: string): () => boolean {
	return () => serve.lines.some((line) => json(line).text === text);
}

async function connectLanPeer(page: Page, address: string): Promise<void> {
	await page.getByRole('link', { name: 'Settings' }).click();
	const box = page.getByRole('textbox', { name: 'Peer address' });
	const connect = page.getByRole('button', { name: 'Connect', exact: true });

	// Bad input is refused with a reason, and nothing is kept.
	await box.fill('192.168.1.20:9090');
	await connect.click();
	await expect(page.getByRole('alert')).toContainText('not a peer address');
	await box.fill(address.replace(/\/p2p\/.*$/, ''));
	await connect.click();
	await expect(page.getByRole('alert')).toContainText('/p2p/');
	// A well-formed address where nobody answers: the dial fails with a reason, nothing is kept.
	const nobody = address.replace(/\/udp\/\d+\//, '/udp/9/');
	await box.fill(nobody);
	await connect.click();
	await expect(page.getByRole('alert')).toContainText('Could not reach that peer', {
		timeout: 30_000
	});
	await expect(page.getByRole('button', { name: `Forget ${nobody}` })).toHaveCount(0);

	await box.fill(address);
	await connect.click();
	await expect(page.getByRole('button', { name: `Forget ${address}` })).toBeVisible({
		timeout: 30_000
	});
	await expect(page.getByRole('alert')).toHaveCount(0);
	const listed = page.getByRole('listitem').filter({ hasText: address });
	await expect(listed.getByText('Connected', { exact: true })).toBeVisible({ timeout: 15_000 });
	await page
		.getByRole('region', { name: 'LAN peers' })
		.screenshot({ path: test.info().outputPath('lan-peers.png') });
}

test('a browser reaches kith serve over WebRTC-Direct and keeps chatting without the relay', async () => {
	const { dir, serveArgs } = await carolWith('Workshop');
	let serve = new ServeProcess(serveArgs);
	await serve.ready;
	const addresses = await browserAddresses(serve);
	for (const address of addresses) {
		expect(address).toMatch(
			/^\/ip4\/[\d.]+\/udp\/\d+\/webrtc-direct\/certhash\/u[\w-]+\/p2p\/\w+$/
		);
		expect(address).not.toContain('/ip4/0.0.0.0/');
	}
	// The LAN address first, loopback only last.
	const address = addresses[0]!;

	// The browser joins Carol's conversation through the relay.
	const invite = await kith(['--data', dir, '--relay', relay.origin, 'invite', 'Workshop']);
	expect(invite.code, invite.stderr).toBe(0);
	const dan = await personAt(browser, relay.origin, 'Dan');
	await dan.goto(invite.lines[0]!);
	await dan.getByRole('button', { name: 'Join' }).click();
	await expect(dan.getByRole('heading', { level: 1, name: 'Workshop', exact: true })).toBeVisible({
		timeout: 60_000
	});
	await expect(path(dan)).toHaveText('via relay', { timeout: 30_000 });

	// Settings → LAN peers → the address kith serve printed → Connect.
	await connectLanPeer(dan, address);
	await openConversation(dan, 'Workshop');
	await expect(path(dan)).toHaveText('LAN peer', { timeout: 30_000 });

	// Kept across a reload: the tab dials it again by itself.
	await dan.reload();
	await expect(path(dan)).toHaveText('LAN peer', { timeout: 30_000 });

	// The relay goes; the LAN peer stays.
	await relay.stop();
	await expect(dan.getByRole('status', { name: 'Connection' })).not.toHaveText('Connected', {
		timeout: 30_000
	});
	await expect(path(dan)).toHaveText('LAN peer');

	await composer(dan).fill('no relay, from the browser');
	await composer(dan).press('Enter');
	await expect.poll(served(serve, 'no relay, from the browser'), { timeout: 30_000 }).toBe(true);
	// With no relay to say "Sent", the LAN peer's receipt says "Delivered".
	await expect(status(article(dan, 'no relay, from the browser'), 'Delivered')).toBeVisible({
		timeout: 20_000
	});

	const sent = await kith([
		'--data',
		dir,
		'send',
		'Workshop',
		'no relay, from kith',
		'--timeout',
		'30'
	]);
	expect(sent.code, sent.stderr).toBe(0);
	await expect(article(dan, 'no relay, from kith')).toBeVisible({ timeout: 30_000 });
	await expect(article(dan, 'no relay, from kith')).toContainText('Carol');
	for (const text of ['no relay, from the browser', 'no relay, from kith']) {
		await expect(articles(dan).filter({ hasText: text })).toHaveCount(1);
	}
	await dan.screenshot({ path: test.info().outputPath('lan-peer-path.png') });

	// kith serve restarts (same data dir, same port: the same address); the tab dials it again.
	await serve.stop();
	// No relay and no peer: the Path is empty (and hidden).
	await expect(path(dan)).toBeHidden({ timeout: 30_000 });
	serve = new ServeProcess(serveArgs);
	await serve.ready;
	expect(await browserAddresses(serve)).toEqual(addresses);
	await expect(path(dan)).toHaveText('LAN peer', { timeout: 60_000 });
	const again = await kith([
		'--data',
		dir,
		'send',
		'Workshop',
		'after a restart',
		'--timeout',
		'30'
	]);
	expect(again.code, again.stderr).toBe(0);
	await expect(article(dan, 'after a restart')).toBeVisible({ timeout: 30_000 });

	// Forget: the address goes from the list.
	await dan.getByRole('link', { name: 'Settings' }).click();
	await dan.getByRole('button', { name: `Forget ${address}` }).click();
	await expect(dan.getByRole('button', { name: `Forget ${address}` })).toHaveCount(0);
	await serve.stop();
});

test('two browsers on a LAN chat through kith serve with no relay at all', async () => {
	const { dir, serveArgs } = await carolWith('Picnic');
	const serve = new ServeProcess(serveArgs);
	await serve.ready;
	const address = (await browserAddresses(serve))[0]!;

	// Dan and Eve meet Carol's conversation through the relay, once.
	const people: Page[] = [];
	for (const name of ['Dan', 'Eve']) {
		const invite = await kith(['--data', dir, '--relay', relay.origin, 'invite', 'Picnic']);
		expect(invite.code, invite.stderr).toBe(0);
		const page = await personAt(browser, relay.origin, name);
		await page.goto(invite.lines[0]!);
		await page.getByRole('button', { name: 'Join' }).click();
		await expect(page.getByRole('heading', { level: 1, name: 'Picnic', exact: true })).toBeVisible({
			timeout: 60_000
		});
		// Settings → LAN peers → the address kith serve printed.
		await page.getByRole('link', { name: 'Settings' }).click();
		await page.getByRole('textbox', { name: 'Peer address' }).fill(address);
		await page.getByRole('button', { name: 'Connect', exact: true }).click();
		await expect(
			page
				.getByRole('listitem')
				.filter({ hasText: address })
				.getByText('Connected', { exact: true })
		).toBeVisible({ timeout: 30_000 });
		await openConversation(page, 'Picnic');
		await expect(path(page)).toHaveText('LAN peer', { timeout: 30_000 });
		people.push(page);
	}
	const [dan, eve] = people as [Page, Page];

	// No relay from here on: every message goes browser → kith serve → browser.
	await relay.stop();
	for (const page of people) {
		await expect(page.getByRole('status', { name: 'Connection' })).not.toHaveText('Connected', {
			timeout: 30_000
		});
	}
	// Typing travels the same way.
	await composer(dan).fill('lunch on the grass?');
	await expect(eve.getByRole('status').filter({ hasText: 'Dan is typing…' })).toBeVisible({
		timeout: 30_000
	});
	await composer(dan).press('Enter');
	await expect(article(eve, 'lunch on the grass?')).toBeVisible({ timeout: 30_000 });
	await expect(article(eve, 'lunch on the grass?')).toContainText('Dan');
	await composer(eve).fill('bring the blanket');
	await composer(eve).press('Enter');
	await expect(article(dan, 'bring the blanket')).toBeVisible({ timeout: 30_000 });
	await expect(article(dan, 'bring the blanket')).toContainText('Eve');
	// Carol's peer has both; Dan's message reached every member.
	await expect.poll(served(serve, 'bring the blanket'), { timeout: 30_000 }).toBe(true);
	await expect(status(article(dan, 'lunch on the grass?'), 'Delivered')).toBeVisible({
		timeout: 30_000
	});

	// A photo-sized file, browser → kith serve → browser, with no blob store anywhere.
	const bytes = randomBytes(700_000);
	await attachFile(dan, {
		name: 'meadow.bin',
		mimeType: 'application/octet-stream',
		buffer: bytes
	});
	expect(await linkedFileHash(eve, 'meadow.bin')).toBe(
		createHash('sha256').update(bytes).digest('hex')
	);
	await serve.stop();
});
