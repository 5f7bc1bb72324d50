/**
 * Settings → "Make a new recovery key": a new master key replaces the one
 * the old recovery key holds. Every device of the account takes new keys by
 * itself and goes on as the same person for others; the old key is refused
 * where a recovery key is asked for and opens no backup made after, while
 * the new one does; a backup made before, restored with the old key, makes a
 * device that is no longer the account's.
 */
import { readFileSync } from 'node:fs';
import { expect, test } from '@playwright/test';
import {
	article,
	restoreBackup,
	conversationLink,
	createAccount,
	expectDevicesOf,
	inviteAndJoin,
	linkDevice,
	openConversation,
	send,
	unique
} from './helpers';

test.describe.configure({ timeout: 180_000 });

test('a new recovery key replaces the old one: the devices go on as the same person, and the old key opens nothing new', async ({
	browser
}) => {
	const ada = await (await browser.newContext()).newPage();
	const bob = await (await browser.newContext()).newPage();
	await ada.goto('/');
	await bob.goto('/');
	const oldKey = await createAccount(ada, 'Ada');
	await createAccount(bob, 'Bob');
	const title = unique('Keys');
	await inviteAndJoin(ada, bob, title);
	await send(ada, 'Before the new key');
	await expect(article(bob, 'Before the new key')).toBeVisible({ timeout: 30_000 });
	const second = await linkDevice(browser, ada);
	await openConversation(second, title);
	await expect(article(second, 'Before the new key')).toBeVisible({ timeout: 60_000 });

	// A backup made before (the first device holds the key: none is asked for).
	await ada.getByRole('link', { name: 'Settings' }).click();
	const downloadingOld = ada.waitForEvent('download');
	await ada.getByRole('button', { name: 'Export backup' }).click();
	const oldBackup = readFileSync(await (await downloadingOld).path());

	// Ada's first device makes a new key; it is shown once.
	await ada.getByRole('button', { name: 'Make a new recovery key' }).click();
	const confirm = ada.getByRole('dialog', { name: 'Make a new recovery key?' });
	await expect(confirm).toContainText('Your current recovery key stops working');
	await confirm.getByRole('button', { name: 'Make new key' }).click();
	const shown = ada.getByRole('dialog', { name: 'New recovery key' });
	await expect(shown).toBeVisible({ timeout: 30_000 });
	const newKey = (await shown.getByLabel('Recovery key value').textContent())?.trim() ?? '';
	expect(newKey).toMatch(/^Es/);
	expect(newKey).not.toBe(oldKey);
	await ada.screenshot({ path: test.info().outputPath('new-recovery-key.png') });
	await shown.getByRole('button', { name: 'Continue' }).click();
	await expect(shown).toBeHidden();
	await expect(
		ada.getByRole('status').filter({ hasText: 'You have a new recovery key' })
	).toBeVisible();

	// Both devices write on; Bob sees Ada, and still two devices of hers.
	await openConversation(ada, title);
	await send(ada, 'After the new key');
	const fromFirst = article(bob, 'After the new key');
	await expect(fromFirst).toBeVisible({ timeout: 30_000 });
	await expect(fromFirst).toContainText('Ada');
	await expect(article(second, 'After the new key')).toBeVisible({ timeout: 30_000 });
	await send(second, 'The second device after the new key');
	const fromSecond = article(bob, 'The second device after the new key');
	await expect(fromSecond).toBeVisible({ timeout: 30_000 });
	await expect(fromSecond).toContainText('Ada');
	await expect(article(ada, 'The second device after the new key')).toBeVisible({
		timeout: 30_000
	});
	await expectDevicesOf(bob, 'Ada', 2);

	// The linked device asks for the recovery key: the old one is refused, the new one seals.
	await second.getByRole('link', { name: 'Settings' }).click();
	const keyField = second.getByRole('textbox', { name: 'Recovery key' });
	await keyField.fill(oldKey);
	await second.getByRole('button', { name: 'Export backup' }).click();
	await expect(second.getByRole('alert')).toContainText(
		'This recovery key was replaced by a newer one and no longer works.'
	);
	await keyField.fill(newKey);
	const downloading = second.waitForEvent('download');
	await second.getByRole('button', { name: 'Export backup' }).click();
	const backup = readFileSync(await (await downloading).path());
	await expect(second.getByRole('status').filter({ hasText: 'Backup saved' })).toBeVisible();

	// A fresh browser: the old key does not open the backup, the new one restores it.
	const fresh = await (await browser.newContext()).newPage();
	await fresh.goto('/');
	await fresh.getByRole('button', { name: 'Restore from backup' }).click();
	await restoreBackup(fresh, backup, oldKey);
	await expect(fresh.getByRole('alert')).toContainText(
		'This recovery key does not open this backup.'
	);
	await restoreBackup(fresh, backup, newKey);
	await expect(conversationLink(fresh, title)).toBeVisible({ timeout: 30_000 });
	await openConversation(fresh, title);
	await expect(article(fresh, 'The second device after the new key')).toBeVisible({
		timeout: 30_000
	});
	await send(fresh, 'Restored with the new key');
	const restored = article(bob, 'Restored with the new key');
	await expect(restored).toBeVisible({ timeout: 30_000 });
	await expect(restored).toContainText('Ada');

	// The backup from before, with the old key, makes a device that is no longer the account's.
	const stale = await (await browser.newContext()).newPage();
	await stale.goto('/');
	await stale.getByRole('button', { name: 'Restore from backup' }).click();
	await restoreBackup(stale, oldBackup, oldKey);
	await expect(stale.getByRole('heading', { name: 'This device was removed' })).toBeVisible({
		timeout: 30_000
	});
	await expect(stale.getByRole('button', { name: 'Wipe this device' })).toBeVisible();

	// The linked device makes the next key, with the current one typed; the first
	// device, its Settings open, no longer holds a master key that counts, so it
	// asks for the key too.
	await ada.getByRole('link', { name: 'Settings' }).click();
	const adaKeyField = ada.getByRole('textbox', { name: 'Recovery key' });
	await expect(ada.getByRole('button', { name: 'Export backup' })).toBeVisible();
	await expect(adaKeyField).toHaveCount(0);
	await second.getByRole('button', { name: 'Make a new recovery key' }).click();
	const confirmOnSecond = second.getByRole('dialog', { name: 'Make a new recovery key?' });
	await confirmOnSecond.getByRole('textbox', { name: 'Recovery key' }).fill(newKey);
	await confirmOnSecond.getByRole('button', { name: 'Make new key' }).click();
	const third = second.getByRole('dialog', { name: 'New recovery key' });
	await expect(third).toBeVisible({ timeout: 30_000 });
	const thirdKey = (await third.getByLabel('Recovery key value').textContent())?.trim() ?? '';
	expect(thirdKey).not.toBe(newKey);
	await third.getByRole('button', { name: 'Continue' }).click();
	await expect(adaKeyField).toBeVisible({ timeout: 30_000 });
	await adaKeyField.fill(newKey);
	await ada.getByRole('button', { name: 'Export backup' }).click();
	await expect(ada.getByRole('alert')).toContainText(
		'This recovery key was replaced by a newer one'
	);
});
