/**
 * "Sign out and erase this device" (Settings): the device's push
 * subscription leaves the relay first, then everything Kith kept on the
 * device is erased, in every tab; the app starts over at account creation.
 */
import { expect, test, type Page } from '@playwright/test';
import { conversationLink, createAccount, createConversation, send, unique } from './helpers';

/** A PushManager that subscribes without a push service (its endpoint goes nowhere). */
function fakePushManager(endpoint: string): void {
	let subscribed = false;
	const subscription = {
		endpoint,
		options: { userVisibleOnly: true, applicationServerKey: null },
		expirationTime: null,
		getKey: () => null,
		toJSON: () => ({
			endpoint,
			expirationTime: null,
			keys: {
				p256dh:
					'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM',
				auth: 'tBHItJI5svbpez7KI4CCXg'
			}
		}),
		unsubscribe: async () => {
			subscribed = false;
			return true;
		}
	};
	PushManager.prototype.subscribe = async function () {
		subscribed = true;
		return subscription as unknown as PushSubscription;
	};
	PushManager.prototype.getSubscription = async function () {
		return subscribed ? (subscription as unknown as PushSubscription) : null;
	};
}

async function databases(page: Page): Promise<string[]> {
	return page.evaluate(async () =>
		(await indexedDB.databases()).map((db) => db.name ?? '').filter(Boolean)
	);
}

test('signing out removes the push subscription at the relay and erases the device in every tab', async ({
	browser
}) => {
	test.setTimeout(90_000);
	const context = await browser.newContext();
	await context.grantPermissions(['notifications']);
	const endpoint = `https://127.0.0.1:9/push/${unique('signout')}`;
	await context.addInitScript(fakePushManager, endpoint);
	const page = await context.newPage();
	await createAccount(page, 'Ada');
	await createConversation(page, 'Before sign-out');
	const marker = unique('Erased');
	await send(page, marker);
	const other = await context.newPage();
	await other.goto('/');
	await expect(conversationLink(other, 'Before sign-out')).toBeVisible();

	await page.getByRole('link', { name: 'Settings' }).click();
	const toggle = page.getByRole('switch', { name: 'Notifications' });
	const registered = page.waitForRequest(
		(r) => r.url().endsWith('/push/subscription') && r.method() === 'PUT'
	);
	await toggle.click();
	await expect(toggle).toHaveAttribute('aria-checked', 'true', { timeout: 15_000 });
	expect((await (await registered).response())?.status()).toBe(200);
	expect(await databases(page)).not.toEqual([]);

	// Asked first; Cancel changes nothing.
	await page.getByRole('button', { name: 'Sign out and erase this device' }).click();
	const dialog = page.getByRole('dialog', { name: 'Sign out and erase this device?' });
	await expect(dialog).toContainText('cannot be undone');
	await dialog.getByRole('button', { name: 'Cancel' }).click();
	await expect(dialog).toHaveCount(0);
	await expect(toggle).toHaveAttribute('aria-checked', 'true');

	await page.getByRole('button', { name: 'Sign out and erase this device' }).click();
	const removed = page.waitForRequest(
		(r) => r.url().endsWith('/push/subscription') && r.method() === 'DELETE'
	);
	await dialog.getByRole('button', { name: 'Erase this device' }).click();
	const request = await removed;
	expect(JSON.parse(request.postData() ?? '{}')).toEqual({ endpoint });
	expect((await request.response())?.status()).toBe(204);

	// This tab starts over at account creation; the other tab stopped using the store.
	await expect(page.getByRole('button', { name: 'Create account' })).toBeVisible({
		timeout: 15_000
	});
	await expect(other.getByRole('heading', { name: 'Signed out' })).toBeVisible();
	await expect(other.getByText(marker)).toHaveCount(0);

	// Nothing of the account is left: no database of the old profile, no conversation.
	const left = await databases(page);
	expect(left.filter((name) => name !== 'kith-local')).toEqual([]);
	await page.reload();
	await expect(page.getByRole('button', { name: 'Create account' })).toBeVisible();
	await expect(page.getByText('Before sign-out')).toHaveCount(0);
	await expect(
		page.evaluate(async () => (await navigator.serviceWorker.ready).pushManager.getSubscription())
	).resolves.toBeNull();
	await context.close();
});
