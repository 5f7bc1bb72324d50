/**
 * Mentions: typing `@` and the start of a name offers the members by name;
 * the mention is highlighted for the member it names, and gathered in their
 * "Mentions" view, whose entries open the message in its conversation. Two
 * browsers through the relay.
 */
import { expect, test } from '@playwright/test';
import { adaAndBob, article, composer, send } from './helpers';

test('@ completes a member, and the mention reaches their Mentions view', async ({ browser }) => {
	test.setTimeout(120_000);
	const { ada, bob } = await adaAndBob(browser, 'Weekend');
	// Bob's membership has reached Ada once his first message has.
	await send(bob, 'Hello!');
	await expect(article(ada, 'Hello!')).toBeVisible();

	// Ada types "@b": the list offers Bob (not herself); Enter puts in "@Bob ".
	const box = composer(ada);
	await box.pressSequentially('Are you coming, @b');
	const list = ada.getByRole('listbox', { name: 'Mention a member' });
	await expect(list.getByRole('option')).toHaveText(['Bob']);
	await expect(list.getByRole('option', { name: 'Bob' })).toHaveAttribute('aria-selected', 'true');
	await box.press('Enter');
	await expect(list).toHaveCount(0);
	await expect(box).toHaveValue('Are you coming, @Bob ');
	await box.pressSequentially('?');
	await box.press('Enter');
	await expect(box).toHaveValue('');

	// Escape closes the list; the text stays as typed.
	await box.pressSequentially('@B');
	await expect(list).toBeVisible();
	await box.press('Escape');
	await expect(list).toHaveCount(0);
	await expect(box).toHaveValue('@B');
	await box.fill('');
	await send(ada, 'Bring snacks, everyone');

	// Bob sees the mention marked as his.
	const mentioned = article(bob, 'Are you coming, @Bob ?');
	await expect(mentioned).toBeVisible();
	await expect(mentioned).toContainText('Mentions you');
	await expect(article(bob, 'Bring snacks, everyone')).not.toContainText('Mentions you');
	// Ada's own copy names Bob, and does not say it mentions her.
	await expect(article(ada, 'Are you coming, @Bob ?')).not.toContainText('Mentions you');

	// The Mentions view lists it (and only it); it opens the message in context.
	await bob.getByRole('link', { name: 'Mentions' }).click();
	await expect(bob.getByRole('heading', { level: 1, name: 'Mentions' })).toBeVisible();
	const entries = bob.getByRole('list', { name: 'Mentions' }).getByRole('link');
	await expect(entries).toHaveCount(1);
	await expect(entries.first()).toContainText('Ada in Weekend');
	await expect(entries.first()).toContainText('Are you coming, @Bob ?');
	await entries.first().click();
	await expect(bob.getByRole('heading', { level: 1, name: 'Weekend', exact: true })).toBeVisible();
	await expect(article(bob, 'Are you coming, @Bob ?')).toBeFocused();

	// Ada has no mentions.
	await ada.getByRole('link', { name: 'Mentions' }).click();
	await expect(ada.getByText('Nobody has mentioned you yet.', { exact: false })).toBeVisible();
});
