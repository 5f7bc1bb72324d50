/**
 * A browser and the `kith` command line peer chat through the relay (the
 * server Playwright starts): the browser invites and a `kith` peer joins,
 * and a `kith serve` invites and the browser joins. Messages go both ways.
 * The `kith` processes are the real binary, on temporary data dirs.
 */
import { expect, test, type Page } from '@playwright/test';
import { join } from 'node:path';
import { cleanup, kith, ServeProcess, tempDir } from '../../src/cli/test-support';
import { article, composer, createAccount, createConversation, status } from './helpers';
import { deviceSecrets, keysOf, relayRefuses, relayRooms } from './support/holdings';

test.afterAll(cleanup);

async function connected(page: Page): Promise<void> {
	await expect(page.getByRole('status', { name: 'Connection' })).toHaveText('Connected', {
		timeout: 15_000
	});
}

function net(relay: string): string[] {
	return ['--relay', relay, '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0'];
}

/** Ada (this page) makes a group and invites; a new `kith` peer named `peer` joins it. */
async function kithPeerJoins(
	page: Page,
	relay: string,
	peer: string,
	conversation: string
): Promise<string> {
	const dir = join(tempDir(), peer.toLowerCase());
	expect((await kith(['--data', dir, 'init', '--name', peer])).code).toBe(0);
	await createAccount(page, 'Ada');
	await connected(page);
	await createConversation(page, conversation);
	await page.getByRole('button', { name: 'Invite' }).click();
	const dialog = page.getByRole('dialog', { name: 'Invite' });
	const link = await dialog.getByRole('textbox', { name: 'Invite link' }).inputValue();
	await dialog.getByRole('button', { name: 'Close' }).click();
	const joined = await kith(['--data', dir, 'join', link, '--timeout', '90', ...net(relay)]);
	expect(joined.code, joined.stderr).toBe(0);
	return dir;
}

test('the browser invites, a kith peer joins, messages both ways', async ({ page, baseURL }) => {
	test.setTimeout(180_000);
	const relay = baseURL!;
	const dir = await kithPeerJoins(page, relay, 'Bob', 'Bridge');

	const sent = await kith([
		'--data',
		dir,
		'send',
		'Bridge',
		'hello from the command line',
		'--timeout',
		'30',
		...net(relay)
	]);
	expect(sent.code, sent.stderr).toBe(0);
	await expect(article(page, 'hello from the command line')).toBeVisible({ timeout: 20_000 });
	await expect(article(page, 'hello from the command line')).toContainText('Bob');

	await composer(page).fill('hello back from the browser');
	await composer(page).press('Enter');
	await expect(async () => {
		const read = await kith(['--data', dir, 'read', 'Bridge', ...net(relay)]);
		expect(read.lines.map((l) => l.split('\t').slice(1).join('\t'))).toEqual([
			'Bob\thello from the command line',
			'Ada\thello back from the browser'
		]);
	}).toPass({ timeout: 60_000 });
	// kith read marks what it printed as read, as opening the conversation does.
	await expect(status(article(page, 'hello back from the browser'), 'Read')).toBeVisible({
		timeout: 20_000
	});
});

test('kith serve invites, the browser joins, messages both ways', async ({ page, baseURL }) => {
	test.setTimeout(180_000);
	const relay = baseURL!;
	const dir = join(tempDir(), 'carol');
	expect((await kith(['--data', dir, 'init', '--name', 'Carol'])).code).toBe(0);
	expect((await kith(['--data', dir, 'new', 'Terminal'])).code).toBe(0);
	const serve = new ServeProcess(['--data', dir, ...net(relay)]);
	await serve.ready;
	const invite = await kith(['--data', dir, '--relay', relay, 'invite', 'Terminal']);
	expect(invite.code, invite.stderr).toBe(0);
	const link = invite.lines[0]!;

	await createAccount(page, 'Dan');
	await connected(page);
	await page.goto(link);
	await expect(page.getByText('Terminal', { exact: true })).toBeVisible();
	await page.getByRole('button', { name: 'Join' }).click();
	await expect(page.getByRole('heading', { level: 1, name: 'Terminal', exact: true })).toBeVisible({
		timeout: 60_000
	});

	await composer(page).fill('browser to serve');
	await composer(page).press('Enter');
	await expect
		.poll(() => serve.lines.some((l) => l.endsWith('\tDan\tbrowser to serve')), { timeout: 30_000 })
		.toBe(true);
	// The kith peer says it holds it, as a member's app would.
	await expect(status(article(page, 'browser to serve'), 'Delivered')).toBeVisible({
		timeout: 20_000
	});

	const sent = await kith([
		'--data',
		dir,
		'send',
		'Terminal',
		'serve to browser',
		'--timeout',
		'30'
	]);
	expect(sent.code, sent.stderr).toBe(0);
	await expect(article(page, 'serve to browser')).toBeVisible({ timeout: 20_000 });
	await serve.stop();
});

test('after a delete for everyone the group compacts, and a kith peer follows it to the new generation', async ({
	page,
	baseURL
}) => {
	test.setTimeout(180_000);
	const relay = baseURL!;
	const dir = await kithPeerJoins(page, relay, 'Eve', 'Ferry');
	const serve = new ServeProcess(['--data', dir, ...net(relay)]);
	await serve.ready;

	for (const text of ['soon gone', 'before the move']) {
		await composer(page).fill(text);
		await composer(page).press('Enter');
	}
	await expect
		.poll(() => serve.lines.some((l) => l.endsWith('\tAda\tbefore the move')), { timeout: 30_000 })
		.toBe(true);

	// The generation they are in, from Ada's vault on the relay.
	const ada = await keysOf(await deviceSecrets(page), relayRooms(process.env.KITH_E2E_DATA!));
	const ferry = ada.conversations.find((c) => c.name === 'Ferry')!;
	const oldKey = ferry.keys.get(0)!;

	// Ada deletes one for everyone: her device compacts into a new generation.
	const gone = article(page, 'soon gone');
	await gone.hover();
	await gone.getByRole('button', { name: 'Delete' }).click();
	await page
		.getByRole('dialog', { name: 'Delete this message for everyone?' })
		.getByRole('button', { name: 'Delete' })
		.click();
	await expect(article(page, 'This message was deleted')).toBeVisible();
	// The relay drops the old room only once every member device moved: Eve's too.
	await expect
		.poll(() => relayRefuses(relay, ferry.roomId, oldKey), { timeout: 60_000 })
		.toBe('room-retired');

	await composer(page).fill('after the move');
	await composer(page).press('Enter');
	await expect
		.poll(() => serve.lines.some((l) => l.endsWith('\tAda\tafter the move')), { timeout: 30_000 })
		.toBe(true);
	const sent = await kith(['--data', dir, 'send', 'Ferry', 'Eve moved too', '--timeout', '30']);
	expect(sent.code, sent.stderr).toBe(0);
	await expect(article(page, 'Eve moved too')).toBeVisible({ timeout: 20_000 });
	await serve.stop();
});
