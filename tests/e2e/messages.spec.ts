import { expect, test } from '@playwright/test';
import {
	article,
	articles,
	composer,
	conversationList,
	createAccount,
	createConversation,
	expectMessages,
	expectNoAlert,
	messageLog,
	messageText,
	openConversation,
	send,
	stored
} from './helpers';

test('messages are saved, kept in order and survive a reload', async ({ page }) => {
	await createAccount(page, 'Ada');
	await openConversation(page, 'Notes to self');
	const box = composer(page);

	await send(page, 'First message');

	// Shift+Enter starts a new line; Enter sends the whole text as one message.
	await box.click();
	await box.pressSequentially('Second message, line one');
	await box.press('Shift+Enter');
	await box.pressSequentially('line two');
	await expect(box).toHaveValue('Second message, line one\nline two');
	await box.press('Enter');
	const multiline = articles(page).filter({ hasText: 'Second message, line one' });
	await expect(stored(multiline)).toBeVisible();
	await expect(box).toHaveValue('');
	await expect(messageText(multiline)).toHaveJSProperty(
		'textContent',
		'Second message, line one\nline two'
	);

	await send(page, 'Third message');

	const expected = ['First message', 'Second message, line one line two', 'Third message'];
	await expectMessages(page, expected);

	await page.reload();
	await openConversation(page, 'Notes to self');
	await expectMessages(page, expected);
	await expect(messageText(articles(page).nth(1))).toHaveJSProperty(
		'textContent',
		'Second message, line one\nline two'
	);
	await expectNoAlert(page);
});

test('a new conversation opens, and the list is ordered by last activity', async ({ page }) => {
	await createAccount(page, 'Ada');
	const links = conversationList(page).getByRole('link');
	await expect(links).toHaveText(['Notes to self']);

	await createConversation(page, 'Book club');
	await expect(page).toHaveURL(/\/c\/[^/]+$/);
	await expect(messageLog(page).getByText(/^No messages yet/)).toBeVisible();
	await send(page, 'Chapter 3 on Thursday?');
	await expect(links).toHaveText(['Book club', 'Notes to self']);

	await openConversation(page, 'Notes to self');
	await expect(articles(page)).toHaveCount(0);
	await send(page, 'Buy the book');
	await expect(links).toHaveText(['Notes to self', 'Book club']);

	// Each conversation keeps its own messages.
	await openConversation(page, 'Book club');
	await expectMessages(page, ['Chapter 3 on Thursday?']);

	// The order is a function of the stored messages, so a reload keeps it.
	await page.reload();
	await expect(links).toHaveText(['Notes to self', 'Book club']);
	await expectNoAlert(page);
});

test('a message over 64 KiB is refused with a clear error and kept in the composer', async ({
	page
}) => {
	await createAccount(page, 'Ada');
	await openConversation(page, 'Notes to self');
	const box = composer(page);

	const tooLong = 'a'.repeat(65_537);
	await box.fill(tooLong);
	await page.getByRole('button', { name: 'Send' }).click();
	const alert = page.getByRole('alert').filter({ hasText: /too long/i });
	await expect(alert).toBeVisible();
	await expect(alert).toContainText('65537');
	await expect(alert).toContainText('65536');
	await expect(box).toHaveValue(tooLong);
	await expect(articles(page)).toHaveCount(0);

	// Exactly at the limit is fine.
	const atLimit = 'b'.repeat(65_536);
	await box.fill(atLimit);
	await page.getByRole('button', { name: 'Send' }).click();
	await expect(box).toHaveValue('', { timeout: 15_000 });
	await expect(articles(page)).toHaveCount(1);
	await expect(stored(articles(page).first())).toBeVisible();
	await expect(messageText(articles(page).first())).toHaveJSProperty('textContent', atLimit);
	// A successful send clears the error.
	await expect(alert).toHaveCount(0);
});

test('markup in a message is shown as text and never runs', async ({ page }) => {
	const requested: string[] = [];
	page.on('request', (request) => requested.push(new URL(request.url()).pathname));

	await createAccount(page, 'Ada');
	await openConversation(page, 'Notes to self');
	const img = '<img src=x onerror="window.__xss=1">';
	const script = '<script>window.__xss=2</script>';
	await send(page, img);
	await send(page, script);

	await expect(messageText(article(page, img))).toHaveText(img);
	await expect(messageText(article(page, script))).toHaveText(script);
	await expect(messageLog(page).locator('img, script')).toHaveCount(0);
	expect(await page.evaluate(() => (window as { __xss?: unknown }).__xss)).toBeUndefined();
	expect(requested).not.toContain('/x');

	// Nor after a reload, when the messages come from storage.
	await page.reload();
	await openConversation(page, 'Notes to self');
	await expectMessages(page, [img, script]);
	await expect(messageLog(page).locator('img, script')).toHaveCount(0);
	expect(await page.evaluate(() => (window as { __xss?: unknown }).__xss)).toBeUndefined();
	expect(requested).not.toContain('/x');
});
