/**
 * Safety numbers: both people see the same 60 digits (and a QR code) for
 * each other; "Mark as verified" records it on the user's devices and shows
 * in the member list; "Clear verification" undoes it.
 */
import { expect, test, type Page } from '@playwright/test';
import { createAccount, inviteAndJoin } from './helpers';

async function openSafetyNumber(page: Page, name: string) {
	await page.getByRole('button', { name: 'Members' }).click();
	const members = page.getByRole('dialog', { name: 'Members' });
	await members.getByRole('button', { name: `Verify ${name}` }).click();
	const dialog = page.getByRole('dialog', { name: `Safety number with ${name}` });
	await expect(dialog).toBeVisible();
	return dialog;
}

test('two members see the same safety number and one marks the other as verified', async ({
	browser
}) => {
	test.setTimeout(90_000);
	const ada = await (await browser.newContext()).newPage();
	const bob = await (await browser.newContext()).newPage();
	await createAccount(ada, 'Ada');
	await createAccount(bob, 'Bob');
	await inviteAndJoin(ada, bob, 'Verified chat');

	const adaView = await openSafetyNumber(ada, 'Bob');
	const bobView = await openSafetyNumber(bob, 'Ada');
	const digits = async (dialog: typeof adaView) =>
		(await dialog.getByRole('group', { name: 'Safety number' }).innerText()).replace(/\s+/g, '');
	const number = await digits(adaView);
	expect(number).toMatch(/^\d{60}$/);
	expect(await digits(bobView)).toBe(number);
	await expect(adaView.getByRole('img', { name: 'Safety number QR code' })).toBeVisible();
	await expect(adaView.getByRole('status')).toHaveText(/Not verified/);

	await adaView.getByRole('button', { name: 'Mark as verified' }).click();
	await expect(adaView.getByRole('status')).toHaveText(/Verified\./);
	await expect(adaView.getByRole('button', { name: 'Clear verification' })).toBeVisible();
	await adaView.getByRole('button', { name: 'Close' }).click();

	await ada.getByRole('button', { name: 'Members' }).click();
	const members = ada.getByRole('dialog', { name: 'Members' });
	await expect(members.getByRole('listitem').filter({ hasText: 'Bob' })).toContainText('Verified');
	// Bob did not verify Ada: his side says so.
	await expect(bobView.getByRole('status')).toHaveText(/Not verified/);

	// The verification survives a reload (it is in the vault), and can be cleared.
	await ada.reload();
	const again = await openSafetyNumber(ada, 'Bob');
	await expect(again.getByRole('status')).toHaveText(/Verified\./);
	await again.getByRole('button', { name: 'Clear verification' }).click();
	await expect(again.getByRole('status')).toHaveText(/Not verified/);
	await ada.context().close();
	await bob.context().close();
});
