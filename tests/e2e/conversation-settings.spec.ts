/**
 * Per-conversation settings live in the account's vault: "Pin" puts a
 * conversation at the top of the list, "Archive" moves it out of the main
 * list into "Archived (N)". Both hold after a reload and show the same on
 * another device of the account.
 */
import { expect, test, type Page } from '@playwright/test';
import {
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
