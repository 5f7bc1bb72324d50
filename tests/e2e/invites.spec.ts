/**
 * Invite links can be revoked: a revoked link gets nobody in, while a new
 * link still works. Three browsers through the relay.
 */
import { expect, test } from '@playwright/test';
import { article, createAccount, createConversation, send } from './helpers';

test('a revoked invite link gets no admission; a new one does', async ({ browser }) => {
	test.setTimeout(120_000);
	const ada = await (await browser.newContext()).newPage();
	const cy = await (await browser.newContext()).newPage();
	const dee = await (await browser.newContext()).newPage();
	await createAccount(ada, 'Ada');
	await createAccount(cy, 'Cy');
	await createAccount(dee, 'Dee');
	await createConversation(ada, 'Club');

	const invite = async () => {
		await ada.getByRole('button', { name: 'Invite' }).click();
		const dialog = ada.getByRole('dialog', { name: 'Invite' });
		const box = dialog.getByRole('textbox', { name: 'Invite link' });
		await expect(box).toHaveValue(/\/join#/);
		return { dialog, link: await box.inputValue() };
	};

	// Ada makes a link and revokes it at once.
	const first = await invite();
	await first.dialog.getByRole('button', { name: 'Revoke link' }).click();
	await expect(first.dialog.getByRole('status').filter({ hasText: 'revoked' })).toBeVisible();
	await expect(first.dialog.getByRole('img', { name: 'Invite QR code' })).toHaveCount(0);
	await first.dialog.getByRole('button', { name: 'Close' }).click();

	// Cy asks with it while Ada's device is online.
	await cy.goto(first.link);
	await cy.getByRole('button', { name: 'Join' }).click();
	await expect(cy.getByText('Waiting for a member to let you in')).toBeVisible();

	// Dee asks later, with a new link: Ada's device lets her in. Cy asked
	// first, so her request had its turn by then: no fixed wait needed.
	const second = await invite();
	await second.dialog.getByRole('button', { name: 'Close' }).click();
	await dee.goto(second.link);
	await dee.getByRole('button', { name: 'Join' }).click();
	await expect(dee.getByRole('heading', { level: 1, name: 'Club', exact: true })).toBeVisible({
		timeout: 30_000
	});
	await send(dee, 'Dee got in');
	await expect(article(ada, 'Dee got in')).toBeVisible({ timeout: 20_000 });

	// Cy is still waiting, and not a member anywhere.
	await expect(cy.getByText('Waiting for a member to let you in')).toBeVisible();
	await expect(cy.getByRole('heading', { level: 1, name: 'Club', exact: true })).toHaveCount(0);
	await ada.getByRole('button', { name: 'Members' }).click();
	const members = ada.getByRole('dialog', { name: 'Members' });
	await expect(members.getByRole('listitem')).toHaveCount(2);
	await expect(members.getByRole('listitem').filter({ hasText: 'Cy' })).toHaveCount(0);
});
