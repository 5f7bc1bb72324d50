/**
 * Roles in a group: the owner makes a member an admin ("Make Bob an admin"
 * in Members), the admin can then invite and let people in on their own,
 * and the change shows as a line in everyone's timeline. Dismissed, the
 * admin can no longer invite. Three browsers through the relay.
 */
import { expect, test, type Page } from '@playwright/test';
import { adaAndBob, article, createAccount, openConversation, send } from './helpers';

async function members(page: Page) {
	await page.getByRole('button', { name: 'Members' }).click();
	return page.getByRole('dialog', { name: 'Members' });
}

test('an admin made by the owner invites and admits; dismissed, they cannot', async ({
	browser
}) => {
	test.setTimeout(150_000);
	const { ada, bob } = await adaAndBob(browser, 'Team');
	const log = (page: Page) => page.getByRole('log', { name: 'Messages' });
	await expect(log(ada).getByText('You added Bob', { exact: true })).toBeVisible();
	await expect(log(bob).getByText('Ada added you', { exact: true })).toBeVisible();

	// A plain member is offered no role changes, and cannot invite.
	const bobsMembers = await members(bob);
	await expect(bobsMembers.getByRole('button', { name: /admin/ })).toHaveCount(0);
	await bobsMembers.getByRole('button', { name: 'Close' }).click();
	await bob.getByRole('button', { name: 'Invite' }).click();
	await expect(
		bob.getByRole('dialog', { name: 'Invite' }).getByText(/Only the owner and admins/)
	).toBeVisible();
	await bob.getByRole('dialog', { name: 'Invite' }).getByRole('button', { name: 'Close' }).click();

	// Ada makes Bob an admin: both timelines say so, and Members shows it.
	const adasMembers = await members(ada);
	await adasMembers.getByRole('button', { name: 'Make Bob an admin' }).click();
	await expect(adasMembers.getByRole('button', { name: 'Dismiss Bob as admin' })).toBeVisible();
	await expect(adasMembers.getByRole('listitem').filter({ hasText: 'Bob' })).toContainText('Admin');
	await adasMembers.getByRole('button', { name: 'Close' }).click();
	await expect(log(ada).getByText('You made Bob an admin', { exact: true })).toBeVisible();
	await expect(log(bob).getByText('Ada made you an admin', { exact: true })).toBeVisible();

	// Bob, now an admin, invites Cy; Bob's device lets Cy in while Ada is away.
	const adaContext = ada.context();
	await ada.close();
	const cy = await (await browser.newContext()).newPage();
	await createAccount(cy, 'Cy');
	await bob.getByRole('button', { name: 'Invite' }).click();
	const dialog = bob.getByRole('dialog', { name: 'Invite' });
	const linkBox = dialog.getByRole('textbox', { name: 'Invite link' });
	await expect(linkBox).toHaveValue(/\/join#/);
	const link = await linkBox.inputValue();
	await dialog.getByRole('button', { name: 'Close' }).click();
	await cy.goto(link);
	await cy.getByRole('button', { name: 'Join' }).click();
	await expect(cy.getByRole('heading', { level: 1, name: 'Team', exact: true })).toBeVisible({
		timeout: 30_000
	});
	await expect(log(cy).getByText('Bob added you', { exact: true })).toBeVisible();
	await send(cy, 'Hi all, Bob let me in');
	await expect(article(bob, 'Hi all, Bob let me in')).toBeVisible();

	// Ada comes back and dismisses Bob as admin; Bob can no longer invite.
	const ada2 = await adaContext.newPage();
	await ada2.goto('/');
	await openConversation(ada2, 'Team');
	await expect(article(ada2, 'Hi all, Bob let me in')).toBeVisible({ timeout: 30_000 });
	const again = await members(ada2);
	await again.getByRole('button', { name: 'Dismiss Bob as admin' }).click();
	await expect(again.getByRole('button', { name: 'Make Bob an admin' })).toBeVisible();
	await again.getByRole('button', { name: 'Close' }).click();
	await expect(log(bob).getByText('Ada dismissed you as admin', { exact: true })).toBeVisible();
	await expect(log(cy).getByText('Ada dismissed Bob as admin', { exact: true })).toBeVisible();
	await bob.getByRole('button', { name: 'Invite' }).click();
	await expect(
		bob.getByRole('dialog', { name: 'Invite' }).getByText(/Only the owner and admins/)
	).toBeVisible();
});
