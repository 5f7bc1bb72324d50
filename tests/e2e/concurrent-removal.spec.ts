/**
 * Two admins remove two members at once, out of each other's sight (the
 * relay is down): each opens a generation of the same epoch, without the
 * one they removed. Once they meet again every device follows the same one
 * (the least epoch op, protocol.md "Which one"), the admin whose generation
 * lost moves over with what he wrote there, and because the winning
 * generation was still sealed to the other removed member, the first admin
 * rotates once more: neither removed member reads what follows.
 */
import { expect, test, type Page } from '@playwright/test';
import { article, composer, invite, inviteAndJoin, personAt, send, status } from './helpers';
import { relayPerTest } from './support/relay-process';
import { deviceSecrets, keysOf, openEverything, relayRooms } from './support/holdings';

test.describe.configure({ timeout: 180_000 });

const relays = relayPerTest();

function log(page: Page) {
	return page.getByRole('log', { name: 'Messages' });
}

async function members(page: Page) {
	await page.getByRole('button', { name: 'Members' }).click();
	return page.getByRole('dialog', { name: 'Members' });
}

async function remove(page: Page, name: string): Promise<void> {
	const list = await members(page);
	await list.getByRole('button', { name: `Remove ${name}` }).click();
	await expect(list.getByRole('listitem').filter({ hasText: name })).toHaveCount(0, {
		timeout: 15_000
	});
	await list.getByRole('button', { name: 'Close' }).click();
}

test('two admins removing two members at once end in one generation that neither removed member reads', async ({
	browser
}) => {
	const relay = relays.current;
	const [ada, bob, cy, dee] = await Promise.all(
		['Ada', 'Bob', 'Cy', 'Dee'].map((name) => personAt(browser, relay.origin, name))
	);
	await inviteAndJoin(ada as Page, bob as Page, 'Crew');
	await invite(ada as Page, cy as Page, 'Crew');
	await invite(ada as Page, dee as Page, 'Crew');
	const adaMembers = await members(ada as Page);
	await adaMembers.getByRole('button', { name: 'Make Bob an admin' }).click();
	await expect(adaMembers.getByRole('button', { name: 'Dismiss Bob as admin' })).toBeVisible();
	await adaMembers.getByRole('button', { name: 'Close' }).click();
	await expect(log(bob as Page).getByText('Ada made you an admin', { exact: true })).toBeVisible({
		timeout: 20_000
	});
	await send(dee as Page, 'Dee says hi');
	for (const page of [ada, bob, cy] as Page[]) {
		await expect(article(page, 'Dee says hi')).toBeVisible({ timeout: 20_000 });
	}

	// With the keys in their vaults, Cy and Dee open what is on the relay (the method works).
	const readable = async (page: Page) => {
		const held = (await keysOf(await deviceSecrets(page), relayRooms(relay.dataDir))).conversations;
		const keys = held.flatMap((c) => [...c.keys.values()]);
		return (await openEverything(relayRooms(relay.dataDir), keys)).join('\n');
	};
	for (const page of [cy, dee] as Page[]) expect(await readable(page)).toContain('Dee says hi');

	// Apart: Ada removes Cy, then Bob removes Dee and writes in his own new generation.
	await relay.stop();
	for (const page of [ada, bob] as Page[]) {
		await expect(page.getByRole('status', { name: 'Connection' })).not.toHaveText('Connected', {
			timeout: 15_000
		});
	}
	await remove(ada as Page, 'Cy');
	await remove(bob as Page, 'Dee');
	await send(bob as Page, 'Bob wrote while apart');
	await expect(status(article(bob as Page, 'Bob wrote while apart'), 'Saved')).toBeVisible();

	// Together again: one generation for all; Bob's message moved over with him.
	await relay.start();
	await expect(article(ada as Page, 'Bob wrote while apart')).toBeVisible({ timeout: 60_000 });
	for (const page of [ada, bob] as Page[]) {
		await expect(
			log(page)
				.getByText(/removed Cy$|removed you$/)
				.first()
		).toBeVisible({
			timeout: 20_000
		});
		await expect(log(page).getByText(/removed Dee$/)).toBeVisible({ timeout: 20_000 });
	}
	for (const page of [cy, dee] as Page[]) {
		await expect(page.getByRole('status').filter({ hasText: 'You were removed' })).toBeVisible({
			timeout: 30_000
		});
		await expect(composer(page)).toHaveCount(0);
	}

	// The winning generation still had Dee's lockbox: Ada (the first admin) rotates again.
	const adaSecrets = await deviceSecrets(ada as Page);
	const bobSecrets = await deviceSecrets(bob as Page);
	const crew = async (secrets: typeof adaSecrets) =>
		(await keysOf(secrets, relayRooms(relay.dataDir))).conversations.find((c) => c.name === 'Crew');
	await expect.poll(async () => (await crew(adaSecrets))?.epoch, { timeout: 40_000 }).toBe(2);
	await expect
		.poll(async () => (await crew(bobSecrets))?.roomId, { timeout: 40_000 })
		.toBe((await crew(adaSecrets))?.roomId);
	// Bob forgets the generation he opened, once what he wrote there is republished.
	await expect
		.poll(async () => (await crew(bobSecrets))?.abandoned, { timeout: 40_000 })
		.toEqual([]);

	await send(ada as Page, 'After both removals');
	await expect(article(bob as Page, 'After both removals')).toBeVisible({ timeout: 20_000 });
	await send(bob as Page, 'Bob agrees');
	await expect(article(ada as Page, 'Bob agrees')).toBeVisible({ timeout: 20_000 });
	for (const page of [ada, bob] as Page[]) {
		const list = await members(page);
		await expect(list.getByRole('listitem')).toHaveCount(2);
		await list.getByRole('button', { name: 'Close' }).click();
	}

	// Neither removed member, with every key their vault holds, opens what followed.
	for (const page of [cy, dee] as Page[]) {
		await expect(article(page, 'After both removals')).toHaveCount(0);
		const read = await readable(page);
		expect(read).not.toContain('After both removals');
		expect(read).not.toContain('Bob agrees');
	}
});
