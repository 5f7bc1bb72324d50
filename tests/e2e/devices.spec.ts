/**
 * Linking a device (Settings → "Link a device"): two browsers of one
 * account, one of another. The second browser opens the link, both show
 * the same code, the user confirms on both; the new device then has every
 * conversation of the account and the whole history of one of 1,000
 * messages, writes as the same person, and reading on one device clears
 * the unread count on the other.
 */
import { expect, test, type Page } from '@playwright/test';
import {
	article,
	composer,
	conversationLink,
	createAccount,
	createConversation,
	inviteAndJoin,
	linkDevice,
	openConversation,
	send,
	stored,
	unique,
	expectDevicesOf
} from './helpers';

test.describe.configure({ timeout: 180_000 });

/** Send `count` messages "<prefix> 0001"… through the composer, each once the one before is taken. */
async function sendMany(page: Page, prefix: string, count: number): Promise<void> {
	await composer(page).evaluate(
		async (box, [prefix, count]) => {
			const area = box as HTMLTextAreaElement;
			for (let i = 1; i <= Number(count); i++) {
				area.value = `${prefix} ${String(i).padStart(4, '0')}`;
				area.dispatchEvent(new Event('input', { bubbles: true }));
				area.dispatchEvent(
					new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true })
				);
				while (area.value !== '') await new Promise((resolve) => setTimeout(resolve, 1));
			}
		},
		[prefix, String(count)]
	);
}

test('a linked device gets every conversation and the full history, writes as the same person, and shares read state', async ({
	browser
}) => {
	const ada = await (await browser.newContext()).newPage();
	const bob = await (await browser.newContext()).newPage();
	const recoveryKey = await createAccount(ada, 'Ada');
	await createAccount(bob, 'Bob');
	const title = unique('Long story');
	await inviteAndJoin(ada, bob, title);
	await sendMany(ada, 'Backlog', 1000);
	await expect(stored(article(ada, 'Backlog 1000'))).toBeVisible({ timeout: 60_000 });
	await expect(article(bob, 'Backlog 1000')).toBeVisible({ timeout: 60_000 });
	await createConversation(ada, 'Just mine');
	await send(ada, 'Only Ada is here');

	// Ada links a second browser.
	const second = await linkDevice(browser, ada);

	// Every conversation of the account, and the whole history.
	for (const name of [title, 'Just mine', 'Notes to self']) {
		await expect(conversationLink(second, name)).toBeVisible({ timeout: 60_000 });
	}
	await openConversation(second, title);
	await expect(article(second, 'Backlog 1000')).toBeVisible({ timeout: 60_000 });
	const search = second.getByRole('textbox', { name: 'Search' });
	await search.fill('Backlog 0001');
	const hit = second
		.getByRole('list', { name: 'Search results' })
		.getByRole('link', { name: /Ada in/ })
		.filter({ hasText: 'Backlog 0001' });
	await expect(hit).toBeVisible({ timeout: 30_000 });
	await hit.click();
	await expect(article(second, 'Backlog 0001')).toBeVisible({ timeout: 30_000 });
	await search.fill('');

	// The same person: Bob sees the new device's message as Ada's; both of Ada's devices see it.
	await send(second, 'Written on the linked device');
	const arrived = article(bob, 'Written on the linked device');
	await expect(arrived).toBeVisible({ timeout: 30_000 });
	await expect(arrived).toContainText('Ada');
	// Bob sees both of Ada's devices where he verifies her.
	await expectDevicesOf(bob, 'Ada', 2);
	await openConversation(ada, title);
	const mine = article(ada, 'Written on the linked device');
	await expect(mine).toBeVisible({ timeout: 30_000 });
	// It came from the other device, so it went out: never "Saved" here.
	await expect(mine.getByText('Sent', { exact: true })).toBeVisible();

	// Read on one device: unread clears on the other.
	for (const page of [ada, second]) await openConversation(page, 'Just mine');
	await send(bob, 'Are you there?');
	for (const page of [ada, second]) {
		await expect(conversationLink(page, title)).toHaveAccessibleDescription(/1 unread/, {
			timeout: 30_000
		});
	}
	await openConversation(second, title);
	await expect(article(second, 'Are you there?')).toBeVisible();
	await expect(conversationLink(ada, title)).not.toHaveAccessibleDescription(/unread/, {
		timeout: 30_000
	});

	// Ada's Devices list has both.
	await ada.getByRole('link', { name: 'Settings' }).click();
	await expect(ada.getByRole('list', { name: 'Devices' }).getByRole('listitem')).toHaveCount(2, {
		timeout: 30_000
	});
	await expect(ada.getByRole('list', { name: 'Devices' })).toContainText('(this device)');

	// The master key stayed on Ada's first device: a backup made on the linked one needs the recovery key.
	await second.getByRole('link', { name: 'Settings' }).click();
	await second.getByRole('button', { name: 'Export backup' }).click();
	await expect(second.getByRole('alert')).toContainText('Enter your recovery key');
	await second.getByRole('textbox', { name: 'Recovery key' }).fill(recoveryKey);
	const downloading = second.waitForEvent('download');
	await second.getByRole('button', { name: 'Export backup' }).click();
	expect((await downloading).suggestedFilename()).toMatch(/\.kith$/);
});
