import { expect, test } from '@playwright/test';

test('the server is healthy', async ({ request }) => {
	const res = await request.get('/healthz');
	expect(res.status()).toBe(200);
	expect(await res.json()).toMatchObject({ status: 'ok' });
});

test('the app shell loads', async ({ page }) => {
	const res = await page.goto('/');
	expect(res?.status(), 'the app is not built: run `npm run build`').toBe(200);
	await expect(page).toHaveTitle(/Kith/);
});
