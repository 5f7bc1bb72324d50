/**
 * What people do with messages after sending them: react (a common emoji or
 * any other), edit their own ("Edited", the latest text everywhere), and
 * delete their own for everyone (a placeholder stays, the text is gone from
 * every member's view). Two browsers through the relay.
 */
import { expect, test } from '@playwright/test';
import { adaAndBob, article, messageText, send } from './helpers';

test('react, edit and delete for everyone, seen by the other member', async ({ browser }) => {
	test.setTimeout(120_000);
	const { ada, bob } = await adaAndBob(browser, 'Weekend');

	await send(ada, 'Hike on Saturday?');
	const onBob = article(bob, 'Hike on Saturday?');
	await expect(onBob).toBeVisible();

	// Bob reacts with a common emoji, then Ada with the same and with another typed in.
	await onBob.hover();
	await onBob.getByRole('button', { name: 'React' }).click();
	await onBob.getByRole('button', { name: 'React with 👍' }).click();
	const onAda = article(ada, 'Hike on Saturday?');
	await expect(onAda.getByRole('button', { name: '👍 1: Bob' })).toHaveAttribute(
		'aria-pressed',
		'false'
	);
	await onAda.getByRole('button', { name: '👍 1: Bob' }).click();
	await expect(onBob.getByRole('button', { name: '👍 2: Ada, Bob' })).toHaveAttribute(
		'aria-pressed',
		'true'
	);
	await onAda.getByRole('button', { name: 'React' }).click();
	await onAda.getByRole('textbox', { name: 'Other emoji' }).fill('🦔');
	await onAda.getByRole('button', { name: 'Add' }).click();
	await expect(onBob.getByRole('button', { name: '🦔 1: Ada' })).toBeVisible();
	// Toggling withdraws a reaction.
	await onBob.getByRole('button', { name: '👍 2: Ada, Bob' }).click();
	await expect(onAda.getByRole('button', { name: '👍 1: Ada' })).toBeVisible();

	// Only the author can edit or delete.
	await expect(onBob.getByRole('button', { name: 'Edit' })).toHaveCount(0);
	await expect(onBob.getByRole('button', { name: 'Delete' })).toHaveCount(0);

	// Ada edits: both see the new text, marked "Edited".
	await onAda.hover();
	await onAda.getByRole('button', { name: 'Edit' }).click();
	const box = ada.getByRole('textbox', { name: 'Edit message' });
	await box.fill('Hike on Sunday instead?');
	await ada.getByRole('button', { name: 'Save' }).click();
	const editedOnBob = article(bob, 'Hike on Sunday instead?');
	await expect(messageText(editedOnBob)).toHaveText('Hike on Sunday instead?');
	await expect(editedOnBob).toContainText('Edited');
	await expect(article(ada, 'Hike on Sunday instead?')).toContainText('Edited');
	// The reactions stay with the message.
	await expect(editedOnBob.getByRole('button', { name: '🦔 1: Ada' })).toBeVisible();
	// The author keeps the edit history; others are offered none.
	await expect(editedOnBob.getByRole('button', { name: 'Edit history' })).toHaveCount(0);
	const editedOnAda = article(ada, 'Hike on Sunday instead?');
	await editedOnAda.hover();
	await editedOnAda.getByRole('button', { name: 'Edit history' }).click();
	const history = ada.getByRole('dialog', { name: 'Edit history' });
	await expect(history.getByRole('listitem')).toHaveCount(2);
	await expect(history.getByRole('listitem').nth(0)).toContainText('Sent');
	await expect(history.getByRole('listitem').nth(0)).toContainText('Hike on Saturday?');
	await expect(history.getByRole('listitem').nth(1)).toContainText('Edited');
	await expect(history.getByRole('listitem').nth(1)).toContainText('Hike on Sunday instead?');
	await history.getByRole('button', { name: 'Close' }).click();
	await expect(history).toHaveCount(0);

	// Bob replies: the reply quotes the message; clicking the quote shows the original.
	await editedOnBob.hover();
	await editedOnBob.getByRole('button', { name: 'Reply' }).click();
	await expect(bob.getByRole('group', { name: 'Replying to Ada' })).toBeVisible();
	await send(bob, 'Sunday works');
	await expect(bob.getByRole('group', { name: 'Replying to Ada' })).toHaveCount(0);
	const reply = article(ada, 'Sunday works');
	const quote = reply.getByRole('button', {
		name: 'Replying to Ada: Hike on Sunday instead?. Show that message'
	});
	await expect(quote).toBeVisible();
	await quote.click();
	// (The reply quotes the same words: the original is the first of the two.)
	await expect(article(ada, 'Hike on Sunday instead?').first()).toBeFocused();

	// Ada deletes for everyone, after confirming: the text leaves both screens.
	const mine = article(ada, 'Hike on Sunday instead?').first();
	await mine.hover();
	await mine.getByRole('button', { name: 'Delete' }).click();
	const confirm = ada.getByRole('dialog', { name: 'Delete this message for everyone?' });
	await confirm.getByRole('button', { name: 'Delete' }).click();
	// (The reply's quote says so too: the deleted message is the first of the two.)
	await expect(article(bob, 'This message was deleted').first()).toBeVisible();
	await expect(article(ada, 'This message was deleted').first()).toBeVisible();
	await expect(bob.getByText('Hike on Sunday instead?')).toHaveCount(0);
	await expect(bob.getByText('Hike on Saturday?')).toHaveCount(0);
	// Replies quoting it no longer show its text either.
	await expect(
		article(bob, 'Sunday works').getByRole('button', {
			name: 'Replying to Ada: This message was deleted. Show that message'
		})
	).toBeVisible();
	// A deleted message keeps no reactions.
	await expect(article(bob, 'This message was deleted').first().getByRole('button')).toHaveCount(0);

	await ada.context().close();
	await bob.context().close();
});
