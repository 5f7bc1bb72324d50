/**
 * The network failing: one person cut off (a TCP proxy the test stops, which
 * kills open WebSockets), the relay restarted, and a joiner waiting for an
 * inviter who is offline. Each test runs its own relay process, so it can
 * stop it and read everything it stored and logged.
 */
import { expect, test, type Browser, type Page } from '@playwright/test';
import {
	article,
	articles,
	composer,
	createAccount,
	invite,
	inviteAndJoin,
	status
} from './helpers';
import { RelayProcess } from './support/relay-process';
import { TcpProxy } from './support/tcp-proxy';

test.describe.configure({ timeout: 150_000 });

async function person(browser: Browser, origin: string, name: string): Promise<Page> {
	const context = await browser.newContext();
	const page = await context.newPage();
	await page.goto(origin);
	await createAccount(page, name);
	return page;
}

function connection(page: Page) {
	return page.getByRole('status', { name: 'Connection' });
}

async function send(page: Page, text: string): Promise<void> {
	await composer(page).fill(text);
	await composer(page).press('Enter');
	await expect(article(page, text)).toBeVisible();
}

async function texts(page: Page): Promise<string[]> {
	return articles(page).locator('p.text').allTextContents();
}

let relay: RelayProcess;

test.beforeEach(async () => {
	relay = new RelayProcess();
	await relay.start();
});

test.afterEach(async () => {
	await relay.stop();
	relay.remove();
});

test('cut off while both write: messages stay Saved, go out when the link returns, same order everywhere', async ({
	browser
}) => {
	const proxy = new TcpProxy({ host: '127.0.0.1', port: relay.port });
	await proxy.start();
	const ada = await person(browser, relay.origin, 'Ada');
	const bob = await person(browser, proxy.origin, 'Bob');
	await inviteAndJoin(ada, bob, 'Cabin', proxy.origin);
	await send(bob, 'before the cut');
	await expect(article(ada, 'before the cut')).toBeVisible({ timeout: 15_000 });
	await expect(connection(bob)).toHaveText('Connected');

	await proxy.stop();
	await expect(connection(bob)).not.toHaveText('Connected', { timeout: 10_000 });
	for (const text of ['ada one', 'ada two']) await send(ada, text);
	for (const text of ['bob one', 'bob two']) await send(bob, text);
	// Stored on Bob's device, not on the relay: "Saved", never "Sent".
	await expect(status(article(bob, 'bob two'), 'Saved')).toBeVisible();
	await expect(article(bob, 'ada one')).toHaveCount(0);
	await expect(article(ada, 'bob one')).toHaveCount(0);

	await proxy.start();
	await expect(connection(bob)).toHaveText('Connected', { timeout: 30_000 });
	for (const text of ['ada one', 'ada two', 'bob one', 'bob two']) {
		await expect(article(ada, text)).toBeVisible({ timeout: 20_000 });
		await expect(article(bob, text)).toBeVisible({ timeout: 20_000 });
	}
	await expect(status(article(bob, 'bob two'), 'Read')).toBeVisible({ timeout: 20_000 });
	expect(await texts(ada)).toEqual(await texts(bob));
	expect(await texts(ada)).toHaveLength(5);
	await proxy.stop();
});

test('relay restarted mid-conversation: nothing lost, clients reconnect by themselves, and it stored no plaintext', async ({
	browser
}) => {
	const marker = `MARKER-${crypto.randomUUID()}`;
	const ada = await person(browser, relay.origin, `Ada ${marker}-name`);
	const bob = await person(browser, relay.origin, 'Bob');
	const title = `Plans ${marker}-title`;
	await inviteAndJoin(ada, bob, title);
	await send(ada, `${marker} first`);
	await expect(article(bob, `${marker} first`)).toBeVisible({ timeout: 15_000 });
	await expect(status(article(ada, `${marker} first`), 'Read')).toBeVisible({ timeout: 20_000 });

	await relay.stop();
	await expect(connection(ada)).not.toHaveText('Connected', { timeout: 10_000 });
	await send(ada, `${marker} during the outage`);
	await expect(status(article(ada, `${marker} during the outage`), 'Saved')).toBeVisible();

	await relay.start();
	await expect(connection(ada)).toHaveText('Connected', { timeout: 30_000 });
	await expect(connection(bob)).toHaveText('Connected', { timeout: 30_000 });
	await expect(article(bob, `${marker} during the outage`)).toBeVisible({ timeout: 20_000 });
	await send(bob, `${marker} after`);
	await expect(article(ada, `${marker} after`)).toBeVisible({ timeout: 15_000 });

	// A third person joining now gets the whole history from the restarted relay.
	const cy = await person(browser, relay.origin, 'Cy');
	await invite(ada, cy, title);
	for (const text of [`${marker} first`, `${marker} during the outage`, `${marker} after`]) {
		await expect(article(cy, text)).toBeVisible({ timeout: 30_000 });
	}

	await relay.stop();
	const stored = relay.storedBytes();
	expect(stored.length).toBeGreaterThan(0);
	expect(stored).not.toContain(marker);
	expect(relay.output).not.toContain(marker);
	expect(relay.output.length).toBeGreaterThan(0);
});

test('a joiner waits until a member device is online to let them in', async ({ browser }) => {
	const ada = await person(browser, relay.origin, 'Ada');
	const bob = await person(browser, relay.origin, 'Bob');
	await ada.getByRole('button', { name: 'New conversation' }).click();
	await ada.getByRole('textbox', { name: 'Conversation name' }).fill('Later');
	await ada.getByRole('button', { name: 'Create', exact: true }).click();
	await ada.getByRole('button', { name: 'Invite' }).click();
	const dialog = ada.getByRole('dialog', { name: 'Invite' });
	const link = await dialog.getByRole('textbox', { name: 'Invite link' }).inputValue();
	const adaContext = ada.context();
	const adaUrl = ada.url();
	// Ada goes away (her tab closes); her device keeps its data.
	await ada.close();

	await bob.goto(link);
	await expect(bob.getByText('Ada', { exact: true })).toBeVisible();
	await bob.getByRole('button', { name: 'Join' }).click();
	await expect(bob.getByText('Waiting for a member to let you in')).toBeVisible();
	// Nobody can let Bob in for now.
	await bob.waitForTimeout(2000);
	await expect(bob.getByText('Waiting for a member to let you in')).toBeVisible();

	const back = await adaContext.newPage();
	await back.goto(adaUrl);
	await expect(bob.getByRole('heading', { level: 1, name: 'Later', exact: true })).toBeVisible({
		timeout: 30_000
	});
	await send(bob, 'let in at last');
	await expect(article(back, 'let in at last')).toBeVisible({ timeout: 15_000 });
});
