/**
 * One profile, many tabs: two pages of one browser context share storage,
 * Web Locks and BroadcastChannel, as two tabs of one profile do. The first
 * tab leads (it alone writes to IndexedDB); the second follows until the
 * first closes.
 */
import { expect, test } from '@playwright/test';
import {
	article,
	conversationLink,
	conversationList,
	createAccount,
	createConversation,
	expectMessages,
	expectNoAlert,
	openConversation,
	send,
	stored
} from './helpers';

test('tabs of one profile share a live view and hand over the writer role', async ({ context }) => {
	test.setTimeout(60_000);
	const tabA = await context.newPage();
	await createAccount(tabA, 'Ada');
	await openConversation(tabA, 'Notes to self');

	const tabB = await context.newPage();
	await tabB.goto('/');
	await openConversation(tabB, 'Notes to self');

	// The leader's message appears in the follower without a reload.
	await send(tabA, 'From tab A');
	await expect(stored(article(tabB, 'From tab A'))).toBeVisible();

	// The follower's message is stored through the leader and appears there too.
	await send(tabB, 'From tab B');
	await expect(stored(article(tabA, 'From tab B'))).toBeVisible();
	await expectMessages(tabA, ['From tab A', 'From tab B']);
	await expectMessages(tabB, ['From tab A', 'From tab B']);
	await expectNoAlert(tabA);
	await expectNoAlert(tabB);

	// A conversation created in the follower shows up in the leader's list.
	await createConversation(tabB, 'Book club');
	await expect(conversationLink(tabA, 'Book club')).toBeVisible();
	await send(tabB, 'Made in tab B');
	await openConversation(tabA, 'Book club');
	await expectMessages(tabA, ['Made in tab B']);

	// The leader closes: the follower takes over writing.
	await tabA.close();
	await openConversation(tabB, 'Notes to self');
	await send(tabB, 'After tab A closed');
	await expectMessages(tabB, ['From tab A', 'From tab B', 'After tab A closed']);

	await tabB.reload();
	await expect(conversationList(tabB).getByRole('link')).toHaveText(['Notes to self', 'Book club']);
	await openConversation(tabB, 'Notes to self');
	await expectMessages(tabB, ['From tab A', 'From tab B', 'After tab A closed']);
	await openConversation(tabB, 'Book club');
	await expectMessages(tabB, ['Made in tab B']);
	await expectNoAlert(tabB);
});

test('a tab opened later loads what the first tab saved', async ({ context }) => {
	const tabA = await context.newPage();
	await createAccount(tabA, 'Ada');
	await openConversation(tabA, 'Notes to self');
	await send(tabA, 'Written before tab B opened');

	const tabB = await context.newPage();
	await tabB.goto('/');
	await openConversation(tabB, 'Notes to self');
	await expectMessages(tabB, ['Written before tab B opened']);
	// No second onboarding in a second tab.
	await expect(tabB.getByRole('button', { name: 'Create account' })).toHaveCount(0);
});
