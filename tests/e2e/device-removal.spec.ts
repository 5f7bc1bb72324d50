/**
 * Removing a device (Settings → Devices → "Remove NAME"): Ada has two
 * devices and a conversation with Bob. Her first device removes the second
 * while it is closed. The conversation moves to a new generation without
 * it; what Ada writes after reaches Bob; when the removed device opens
 * again, the relay refuses it and it shows "This device was removed", then
 * wipes itself. A device that stays open while it is removed learns it at
 * once.
 */
import { expect, test, type Page } from '@playwright/test';
import {
	article,
	createAccount,
	inviteAndJoin,
	linkDevice,
	openConversation,
	send,
	unique
} from './helpers';

test.describe.configure({ timeout: 180_000 });

async function refusals(baseURL: string, reason: string): Promise<number> {
	const text = await (await fetch(new URL('/metrics', baseURL))).text();
	const match = new RegExp(`kith_refusals_total\\{reason="${reason}"\\} (\\d+)`).exec(text);
	return Number(match?.[1] ?? 0);
}

/** Settings → Devices → "Remove NAME" for the one other device, confirmed. Returns NAME. */
async function removeOtherDevice(page: Page): Promise<string> {
	await page.getByRole('link', { name: 'Settings' }).click();
	const devices = page.getByRole('list', { name: 'Devices' });
	await expect(devices.getByRole('listitem')).toHaveCount(2, { timeout: 30_000 });
	const button = devices.getByRole('button', { name: /^Remove / });
	const name = ((await button.textContent()) ?? '').replace(/^Remove /, '').trim();
	await expect(devices.getByRole('button', { name: `Remove ${name}` })).toBeVisible();
	await button.click();
	const dialog = page.getByRole('dialog', { name: `Remove ${name}?` });
	await dialog.getByRole('button', { name: 'Remove device' }).click();
	await expect(page.getByRole('status').filter({ hasText: `${name} was removed` })).toBeVisible({
		timeout: 30_000
	});
	await expect(devices.getByRole('listitem')).toHaveCount(1);
	return name;
}

test('a removed device reads nothing written after, the relay refuses it, and it offers to wipe itself', async ({
	browser,
	baseURL
}) => {
	const ada = await (await browser.newContext()).newPage();
	const bob = await (await browser.newContext()).newPage();
	await createAccount(ada, 'Ada');
	await createAccount(bob, 'Bob');
	const title = unique('Plans');
	await inviteAndJoin(ada, bob, title);
	await send(ada, 'Before the removal');
	await expect(article(bob, 'Before the removal')).toBeVisible({ timeout: 30_000 });

	const second = await linkDevice(browser, ada);
	await openConversation(second, title);
	await expect(article(second, 'Before the removal')).toBeVisible({ timeout: 60_000 });
	// The second device goes away (its browser closed), its data kept.
	const secondContext = second.context();
	await second.close();

	await removeOtherDevice(ada);

	// The conversation goes on without it: Bob and Ada move to a new generation.
	await openConversation(ada, title);
	await send(ada, 'After the removal');
	await expect(article(bob, 'After the removal')).toBeVisible({ timeout: 60_000 });
	await send(bob, 'Bob still hears Ada');
	await expect(article(ada, 'Bob still hears Ada')).toBeVisible({ timeout: 30_000 });

	// The removed device opens again: the relay refuses it, and it says so.
	const before = await refusals(baseURL as string, 'room-retired');
	const again = await secondContext.newPage();
	await again.goto('/');
	await expect(again.getByRole('heading', { name: 'This device was removed' })).toBeVisible({
		timeout: 60_000
	});
	expect(await refusals(baseURL as string, 'room-retired')).toBeGreaterThan(before);
	await expect(again.getByText('After the removal')).toHaveCount(0);
	await again.getByRole('button', { name: 'Wipe this device' }).click();
	await expect(again.getByRole('heading', { name: 'Signed out' })).toBeVisible({
		timeout: 30_000
	});
	expect(
		await again.evaluate(async () => (await indexedDB.databases()).map((db) => db.name))
	).toEqual([]);
});

test('a device removed while it is open learns it at once', async ({ browser }) => {
	const ada = await (await browser.newContext()).newPage();
	await createAccount(ada, 'Ada');
	const second = await linkDevice(browser, ada);
	await expect(second.getByRole('link', { name: /Notes to self/ })).toBeVisible({
		timeout: 60_000
	});
	await removeOtherDevice(ada);
	await expect(second.getByRole('heading', { name: 'This device was removed' })).toBeVisible({
		timeout: 30_000
	});
	// Ada's first device goes on, with its notes, after a reload too (it stored the new keys).
	await ada.reload();
	await openConversation(ada, 'Notes to self');
	await send(ada, 'Still here');
	await expect(ada.getByRole('heading', { name: 'This device was removed' })).toHaveCount(0);
});
