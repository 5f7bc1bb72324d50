/**
 * Search (textbox "Search" in the sidebar) across every conversation, over
 * the decrypted text: it finds a message by a word in it and opens it in its
 * conversation, scrolled into view and focused, even when it lies far back
 * in the history (outside the window the conversation first renders).
 */
import { expect, test } from '@playwright/test';
import {
	article,
	composer,
	conversationList,
	createAccount,
	createConversation,
	inviteAndJoin,
	send
} from './helpers';

test('search finds a message by a word in it and opens it in context', async ({ page }) => {
	test.setTimeout(120_000);
	await createAccount(page, 'Ada');
	await createConversation(page, 'Trip');
	const wanted = 'The harbour ferry leaves at nine';
	await send(page, wanted);
	// Enough newer messages that the wanted one is not in the window a
	// conversation opens with (its newest 80).
	const box = composer(page);
	for (let i = 0; i < 100; i++) {
		await box.fill(`filler ${i}`);
		await box.press('Enter');
		await expect(box).toHaveValue('');
	}
	await expect(article(page, 'filler 99')).toBeVisible();
	await createConversation(page, 'Groceries');
	await send(page, 'Buy apples at the harbour market');

	const search = page.getByRole('textbox', { name: 'Search' });
	const results = page.getByRole('list', { name: 'Search results' });
	await search.fill('harbour');
	await expect(results.getByRole('link')).toHaveCount(2);
	await expect(page.getByRole('status').filter({ hasText: '2 messages found' })).toBeVisible();
	// While searching, the results stand in for the conversation list.
	await expect(conversationList(page)).toHaveCount(0);

	// Every word must match; a prefix counts; a longer word forgives a typo.
	await search.fill('harbour ferry');
	await expect(results.getByRole('link')).toHaveCount(1);
	await search.fill('ferr');
	await expect(results.getByRole('link')).toHaveCount(1);
	await search.fill('harbor');
	await expect(results.getByRole('link')).toHaveCount(2);
	await search.fill('nothing-like-this');
	await expect(page.getByRole('status').filter({ hasText: 'No messages found' })).toBeVisible();

	await search.fill('ferry');
	const hit = results.getByRole('link', { name: /Ada in Trip/ });
	await expect(hit).toContainText(wanted);
	await hit.click();
	await expect(page.getByRole('heading', { level: 1, name: 'Trip', exact: true })).toBeVisible();
	const target = article(page, wanted);
	await expect(target).toBeFocused();
	await expect(target).toBeInViewport();

	// Escape clears the query and brings the conversation list back.
	await search.focus();
	await search.press('Escape');
	await expect(search).toHaveValue('');
	await expect(conversationList(page)).toBeVisible();
});

test("search finds other members' messages, also ones that arrive while results are open", async ({
	browser
}) => {
	test.setTimeout(120_000);
	const ada = await (await browser.newContext()).newPage();
	const bob = await (await browser.newContext()).newPage();
	await createAccount(ada, 'Ada');
	await createAccount(bob, 'Bob');
	await inviteAndJoin(ada, bob, 'Plans');
	await send(bob, 'Shall we take the lighthouse trail?');
	await expect(article(ada, 'Shall we take the lighthouse trail?')).toBeVisible();

	const search = ada.getByRole('textbox', { name: 'Search' });
	const results = ada.getByRole('list', { name: 'Search results' });
	await search.fill('lighthouse');
	await expect(results.getByRole('link', { name: /Bob in Plans/ })).toBeVisible();

	// A message arriving while the results are open shows up in them.
	await send(bob, 'Or the lighthouse cafe after');
	await expect(results.getByRole('link')).toHaveCount(2);
	await ada.context().close();
	await bob.context().close();
});
