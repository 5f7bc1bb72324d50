/**
 * "Export backup" (Settings) and "Restore from backup" (first run): the
 * backup brings every conversation and its messages into a fresh browser,
 * which becomes a new device of the same person (others see its messages
 * as Ada's, and it reads theirs); a damaged backup, or a recovery key that
 * does not open it, restores nothing. With "Include files", the files come
 * along: a restored browser shows them without the relay's file store.
 */
import { readFileSync } from 'node:fs';
import { expect, test, type Page } from '@playwright/test';
import {
	article,
	attachFile,
	restoreBackup,
	articles,
	conversationLink,
	createAccount,
	inviteAndJoin,
	messageText,
	openConversation,
	send,
	stored,
	unique
} from './helpers';

test.describe.configure({ timeout: 120_000 });

async function texts(page: Page, conversation: string): Promise<string[]> {
	await openConversation(page, conversation);
	return (await articles(page).all()).length === 0
		? []
		: Promise.all(
				(await articles(page).all()).map(async (a) => (await messageText(a).innerText()).trim())
			);
}

async function docDatabases(page: Page): Promise<string[]> {
	return page.evaluate(async () =>
		(await indexedDB.databases()).map((db) => db.name ?? '').filter((n) => n.startsWith('kith-doc'))
	);
}

test('a backup restores every conversation into a fresh browser as the same person; a damaged one or a wrong key restores nothing', async ({
	browser
}) => {
	const ada = await (await browser.newContext({ acceptDownloads: true })).newPage();
	const bob = await (await browser.newContext()).newPage();
	const recoveryKey = await createAccount(ada, 'Ada');
	const bobsKey = await createAccount(bob, 'Bob');
	const title = unique('Backed up');
	await inviteAndJoin(ada, bob, title);
	await send(ada, 'Ada before the backup');
	await send(bob, 'Bob before the backup');
	await expect(article(ada, 'Bob before the backup')).toBeVisible({ timeout: 20_000 });
	await openConversation(ada, 'Notes to self');
	await send(ada, 'A note to self');
	const before = await texts(ada, title);
	expect(before).toEqual(['Ada before the backup', 'Bob before the backup']);

	await ada.getByRole('link', { name: 'Settings' }).click();
	const downloading = ada.waitForEvent('download');
	await ada.getByRole('button', { name: 'Export backup' }).click();
	const download = await downloading;
	expect(download.suggestedFilename()).toMatch(/^kith-backup-\d{4}-\d{2}-\d{2}\.kith$/);
	const backup = readFileSync(await download.path());
	await expect(ada.getByRole('status').filter({ hasText: 'Backup saved' })).toBeVisible();
	expect(backup.includes(Buffer.from('Ada before the backup'))).toBe(false);

	const fresh = await (await browser.newContext()).newPage();
	await fresh.goto('/');
	await fresh.getByRole('button', { name: 'Restore from backup' }).click();
	await fresh.screenshot({ path: test.info().outputPath('restore.png') });

	// One flipped byte: refused, nothing stored.
	const damaged = Buffer.from(backup);
	const middle = Math.floor(damaged.length / 2);
	damaged[middle] = (damaged[middle] ?? 0) ^ 0x01;
	await restoreBackup(fresh, damaged, recoveryKey);
	await expect(fresh.getByRole('alert')).toContainText(
		'This backup is damaged or incomplete; nothing was restored.'
	);
	// Someone else's recovery key: refused too.
	await restoreBackup(fresh, backup, bobsKey);
	await expect(fresh.getByRole('alert')).toContainText(
		'This recovery key does not open this backup.'
	);
	expect(await docDatabases(fresh)).toEqual([]);
	await expect(fresh.getByRole('heading', { name: 'Restore from backup' })).toBeVisible();

	// The real key: the same conversations and messages.
	await restoreBackup(fresh, backup, recoveryKey);
	await expect(conversationLink(fresh, title)).toBeVisible({ timeout: 30_000 });
	await expect(conversationLink(fresh, 'Notes to self')).toBeVisible();
	expect(await texts(fresh, title)).toEqual(before);
	expect(await texts(fresh, 'Notes to self')).toContain('A note to self');

	// A new device of Ada's: Bob sees what it writes as Ada's, and it reads Bob.
	await openConversation(fresh, title);
	await send(fresh, 'Written on the restored device');
	const arrived = article(bob, 'Written on the restored device');
	await expect(arrived).toBeVisible({ timeout: 30_000 });
	await expect(arrived).toContainText('Ada');
	await send(bob, 'Bob answers the restored device');
	await expect(article(fresh, 'Bob answers the restored device')).toBeVisible({ timeout: 30_000 });
	// And Ada's first device sees it as her own.
	await openConversation(ada, title);
	await expect(article(ada, 'Written on the restored device')).toBeVisible({ timeout: 30_000 });
});

/** A 2 × 2 PNG, red. */
const PNG = Buffer.from(
	'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==',
	'base64'
);

test('"Include files" puts the files in the backup: a restored browser shows them without the relay’s file store', async ({
	browser
}) => {
	const ada = await (await browser.newContext({ acceptDownloads: true })).newPage();
	const recoveryKey = await createAccount(ada, 'Ada');
	await openConversation(ada, 'Notes to self');
	await attachFile(ada, { name: 'red.png', mimeType: 'image/png', buffer: PNG });
	await expect(ada.getByRole('log', { name: 'Messages' }).getByText('red.png')).toBeVisible({
		timeout: 30_000
	});
	await expect(stored(article(ada, 'red.png'))).toBeVisible({ timeout: 30_000 });

	await ada.getByRole('link', { name: 'Settings' }).click();
	const include = ada.getByRole('checkbox', { name: /Include files/ });
	await expect(include).toHaveAccessibleDescription(/1 file/);
	await include.check();
	const downloading = ada.waitForEvent('download');
	await ada.getByRole('button', { name: 'Export backup' }).click();
	const backup = readFileSync(await (await downloading).path());

	// A fresh browser that cannot reach the relay's file store at all.
	const context = await browser.newContext({ serviceWorkers: 'block' });
	let blobRequests = 0;
	await context.route('**/blobs/**', (route) => {
		blobRequests++;
		return route.abort();
	});
	const fresh = await context.newPage();
	await fresh.goto('/');
	await fresh.getByRole('button', { name: 'Restore from backup' }).click();
	await restoreBackup(fresh, backup, recoveryKey);
	await openConversation(fresh, 'Notes to self');
	const picture = fresh
		.getByRole('log', { name: 'Messages' })
		.getByRole('img', { name: 'red.png', exact: true });
	await expect(picture).toBeVisible({ timeout: 30_000 });
	await expect
		.poll(() => picture.evaluate((img) => (img as HTMLImageElement).naturalWidth))
		.toBe(2);
	expect(blobRequests).toBe(0);
});
