/**
 * Per-conversation settings live in the account's vault: "Pin" puts a
 * conversation at the top of the list, "Archive" moves it out of the main
 * list into "Archived (N)". Both hold after a reload and show the same on
 * another device of the account. "Block NAME" hides what someone writes.
 */
import { expect, test, type Page } from '@playwright/test';
import {
	adaAndBob,
	article,
	conversationList,
	conversationLink,
	createAccount,
	createConversation,
	linkDevice,
	openConversation,
	send
} from './helpers';

test.describe.configure({ timeout: 120_000 });

/** The names in the main list, top to bottom. */
async function mainList(page: Page): Promise<string[]> {
	return conversationList(page)
		.getByRole('list', { name: 'Conversations' })
		.getByRole('link')
		.allTextContents();
}

test('pinned conversations come first and archived ones leave the main list, on every device', async ({
	browser
}) => {
	const ada = await (await browser.newContext()).newPage();
	await createAccount(ada, 'Ada');
	for (const name of ['Garden', 'Books', 'Travel']) {
		await createConversation(ada, name);
		await send(ada, `About ${name}`);
	}
	await expect.poll(() => mainList(ada)).toEqual(['Travel', 'Books', 'Garden', 'Notes to self']);

	// Pin the oldest: it goes to the top, and says so.
	await openConversation(ada, 'Garden');
	const pin = ada.getByRole('button', { name: 'Pin', exact: true });
	await pin.click();
	await expect(pin).toHaveAttribute('aria-pressed', 'true');
	await expect.poll(() => mainList(ada)).toEqual(['Garden', 'Travel', 'Books', 'Notes to self']);
	await expect(conversationLink(ada, 'Garden')).toHaveAccessibleDescription('Pinned');

	// Archive one: out of the main list, under "Archived (1)".
	await openConversation(ada, 'Books');
	await ada.getByRole('button', { name: 'Archive', exact: true }).click();
	await expect.poll(() => mainList(ada)).toEqual(['Garden', 'Travel', 'Notes to self']);
	const archivedToggle = ada.getByRole('button', { name: 'Archived (1)' });
	await archivedToggle.click();
	await expect(archivedToggle).toHaveAttribute('aria-expanded', 'true');
	const archived = ada.getByRole('list', { name: 'Archived conversations' });
	await expect(archived.getByRole('link', { name: 'Books', exact: true })).toBeVisible();

	// After a reload, and on a linked device: the same.
	await ada.reload();
	await expect.poll(() => mainList(ada)).toEqual(['Garden', 'Travel', 'Notes to self']);
	const second = await linkDevice(browser, ada);
	await expect
		.poll(() => mainList(second), { timeout: 60_000 })
		.toEqual(['Garden', 'Travel', 'Notes to self']);
	await expect(second.getByRole('button', { name: 'Archived (1)' })).toBeVisible();

	// Unarchived on the second device: back in Ada's main list.
	await second.getByRole('button', { name: 'Archived (1)' }).click();
	await second
		.getByRole('list', { name: 'Archived conversations' })
		.getByRole('link', { name: 'Books', exact: true })
		.click();
	const archive = second.getByRole('button', { name: 'Archive', exact: true });
	await expect(archive).toHaveAttribute('aria-pressed', 'true');
	await archive.click();
	await expect
		.poll(() => mainList(ada), { timeout: 30_000 })
		.toEqual(['Garden', 'Travel', 'Books', 'Notes to self']);
	await expect(ada.getByRole('button', { name: /^Archived/ })).toHaveCount(0);
});

test('"Block NAME" hides what they write, on every conversation, until "Unblock NAME"', async ({
	browser
}) => {
	const { ada, bob } = await adaAndBob(browser, 'Neighbours');
	await send(bob, 'Bob before the block');
	await expect(article(ada, 'Bob before the block')).toBeVisible({ timeout: 30_000 });

	await ada.getByRole('button', { name: 'Members' }).click();
	const members = ada.getByRole('dialog', { name: 'Members' });
	await members.getByRole('button', { name: 'Block Bob' }).click();
	await expect(members.getByRole('button', { name: 'Unblock Bob' })).toBeVisible();
	await members.getByRole('button', { name: 'Close' }).click();
	const log = ada.getByRole('log', { name: 'Messages' });
	await expect(log.getByText('Bob before the block')).toHaveCount(0);
	await expect(log.getByText('A message from someone you blocked')).toHaveCount(1);

	// What Bob writes now stays hidden, and counts as nothing unread.
	await openConversation(ada, 'Notes to self');
	await send(bob, 'Bob after the block');
	await expect(article(bob, 'Bob after the block')).toBeVisible();
	await openConversation(ada, 'Neighbours');
	await expect(log.getByText('A message from someone you blocked')).toHaveCount(2, {
		timeout: 30_000
	});
	await expect(log.getByText('Bob after the block')).toHaveCount(0);
	await expect(conversationLink(ada, 'Neighbours')).not.toHaveAccessibleDescription(/unread/);

	// Settings lists him; "Unblock Bob" shows everything again.
	await ada.getByRole('link', { name: 'Settings' }).click();
	const blocked = ada.getByRole('list', { name: 'Blocked' });
	await expect(blocked.getByRole('listitem')).toHaveCount(1);
	await blocked.getByRole('button', { name: 'Unblock Bob' }).click();
	await openConversation(ada, 'Neighbours');
	await expect(article(ada, 'Bob before the block')).toBeVisible();
	await expect(article(ada, 'Bob after the block')).toBeVisible();
	await expect(log.getByText('A message from someone you blocked')).toHaveCount(0);
});
