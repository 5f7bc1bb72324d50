import { expect, test } from '@playwright/test';
import {
	conversationLink,
	conversationList,
	createAccount,
	openConversation,
	RECOVERY_KEY_PATTERN,
	send
} from './helpers';

test('a new account shows its recovery key once and opens on Notes to self', async ({ page }) => {
	await page.goto('/');
	await page.getByRole('textbox', { name: 'Display name' }).fill('Ada');
	await page.getByRole('button', { name: 'Create account' }).click();

	const dialog = page.getByRole('dialog', { name: 'Recovery key' });
	await expect(dialog).toBeVisible({ timeout: 20_000 });
	const key = dialog.getByLabel('Recovery key value');
	await expect(key).toHaveText(RECOVERY_KEY_PATTERN);
	// Matrix-style key: 2 prefix bytes + 32 seed bytes + parity, base58 → ~48 characters.
	const compact = ((await key.textContent()) ?? '').replace(/\s+/g, '');
	expect(compact.length).toBeGreaterThanOrEqual(44);

	await dialog.getByRole('button', { name: 'Continue' }).click();
	await expect(dialog).toBeHidden();
	await expect(conversationLink(page, 'Notes to self')).toBeVisible();

	await page.reload();
	await expect(conversationLink(page, 'Notes to self')).toBeVisible();
	await expect(page.getByRole('button', { name: 'Create account' })).toHaveCount(0);
	await expect(page.getByRole('textbox', { name: 'Display name' })).toHaveCount(0);
	await expect(page.getByRole('dialog', { name: 'Recovery key' })).toHaveCount(0);
});

test('a conversation link is named by the conversation alone', async ({ page }) => {
	await createAccount(page, 'Ada');
	await openConversation(page, 'Notes to self');
	const text = 'A preview that must not leak into the link name';
	await send(page, text);

	const link = conversationLink(page, 'Notes to self');
	// The list shows the preview beside the link…
	await expect(conversationList(page).getByText(text)).toBeVisible();
	// …but the link's name is exactly the conversation's name: no preview, no time.
	await expect(link).toHaveAccessibleName('Notes to self');
	await expect(conversationList(page).getByRole('link')).toHaveCount(1);
	// Own messages are never unread; the description (the unread count) says nothing else.
	await expect(link).not.toHaveAccessibleDescription(/preview|\d{1,2}:\d{2}/i);
});
