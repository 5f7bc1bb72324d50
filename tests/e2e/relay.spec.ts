/**
 * Two people, two browsers (separate contexts: separate storage, keys and
 * accounts), one real relay (the server Playwright starts). Invite, join,
 * admission by the inviter's online device, real-time messages both ways,
 * receipts up to "Read", typing, members, and the connection indicator.
 */
import { expect, test, type Browser, type Page } from '@playwright/test';
import { article, composer, createAccount, inviteAndJoin, messageLog, status } from './helpers';

async function person(browser: Browser, name: string): Promise<Page> {
	const context = await browser.newContext();
	const page = await context.newPage();
	await createAccount(page, name);
	return page;
}

test('invite, join, chat both ways, receipts reach Read, typing shows and clears', async ({
	browser
}) => {
	test.setTimeout(120_000);
	const ada = await person(browser, 'Ada');
	const bob = await person(browser, 'Bob');
	await expect(ada.getByRole('status', { name: 'Connection' })).toHaveText('Connected', {
		timeout: 15_000
	});

	await inviteAndJoin(ada, bob, 'Trip');

	// The joiner sees who invited whom before the first message.
	await bob.getByRole('button', { name: 'Members' }).click();
	const bobMembers = bob.getByRole('dialog', { name: 'Members' });
	await expect(bobMembers.getByRole('listitem')).toHaveCount(2, { timeout: 15_000 });
	await expect(bobMembers.getByText('Ada', { exact: true })).toBeVisible();
	await bobMembers.getByRole('button', { name: 'Close' }).click();

	// Real time, both ways.
	await composer(bob).fill('hello from bob');
	await composer(bob).press('Enter');
	await expect(article(ada, 'hello from bob')).toBeVisible({ timeout: 15_000 });
	await expect(article(ada, 'hello from bob')).toContainText('Bob');

	await composer(ada).fill('hi bob, ada here');
	await composer(ada).press('Enter');
	const adaMessage = article(ada, 'hi bob, ada here');
	await expect(article(bob, 'hi bob, ada here')).toBeVisible({ timeout: 15_000 });
	// Bob has the conversation open at the bottom: it is read.
	await expect(status(adaMessage, 'Read')).toBeVisible({ timeout: 20_000 });

	// Typing: shown to the other side while Bob writes, gone when he stops.
	await composer(bob).fill('I am writ');
	const typing = ada.getByRole('status').filter({ hasText: 'Bob is typing…' });
	await expect(typing).toBeVisible({ timeout: 10_000 });
	await composer(bob).fill('');
	await expect(typing).toBeHidden({ timeout: 10_000 });

	await ada.getByRole('button', { name: 'Members' }).click();
	const members = ada.getByRole('dialog', { name: 'Members' });
	await expect(members.getByRole('listitem')).toHaveCount(2);
	await expect(members.getByText(/^Bob/)).toBeVisible();
	await expect(members.getByText(/^Ada/)).toBeVisible();
	await members.getByRole('button', { name: 'Close' }).click();

	await expect(messageLog(bob).getByRole('article')).toHaveCount(2);
	await ada.context().close();
	await bob.context().close();
});
