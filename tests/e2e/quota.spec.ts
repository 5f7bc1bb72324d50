import { chromium, expect, test } from '@playwright/test';
import { chromiumLaunchOptions } from './chromium';
import {
	articles,
	composer,
	createAccount,
	expectMessages,
	openConversation,
	send,
	status,
	stored
} from './helpers';

/**
 * A full disk, for real: Chromium's DevTools protocol shrinks this origin's
 * storage quota, so IndexedDB itself aborts the write with QuotaExceededError.
 * (This test launches its own browser: the override did not take effect on
 * the runner's shared browser.)
 */
test('a full storage quota is reported clearly and nothing saved is lost', async ({ baseURL }) => {
	test.setTimeout(120_000);
	const browser = await chromium.launch(chromiumLaunchOptions());
	try {
		const context = await browser.newContext({ baseURL });
		const page = await context.newPage();
		await page.goto('/');
		const cdp = await context.newCDPSession(page);
		const origin = new URL(page.url()).origin;
		// The service worker's precache (the app shell, a few MB) counts against the same
		// quota: let it finish, then leave room for the account and a few small messages,
		// not for what follows.
		const used = await page.evaluate(async () => {
			await navigator.serviceWorker.ready;
			return (await navigator.storage.estimate()).usage ?? 0;
		});
		await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: used + 400_000 });
		await createAccount(page, 'Ada');
		await openConversation(page, 'Notes to self');
		await send(page, 'Saved before the disk filled up');

		// Large messages: far more than the space left.
		const big = Array(3000).fill('Too much to store.').join(' ');
		const texts = [0, 1, 2, 3, 4, 5].map((i) => `${i} ${big}`);
		for (const text of texts) {
			await composer(page).fill(text);
			await composer(page).press('Enter');
			await expect(composer(page)).toHaveValue('');
		}
		const alert = page.getByRole('alert').filter({ hasText: /storage is full/i });
		await expect(alert).toBeVisible({ timeout: 20_000 });
		await expect(alert).toContainText(/already saved is safe/i);
		// What could not be stored is not claimed as saved.
		const last = articles(page).nth(6);
		await expect(status(last, 'Saving')).toBeVisible();

		// Space comes back: the queued messages are written after all.
		await cdp.send('Storage.overrideQuotaForOrigin', { origin });
		await expect(stored(last)).toBeVisible({ timeout: 60_000 });
		await expect(articles(page).getByText('Saving', { exact: true })).toHaveCount(0);

		await page.reload();
		await openConversation(page, 'Notes to self');
		await expectMessages(page, ['Saved before the disk filled up', ...texts]);
	} finally {
		await browser.close();
	}
});
