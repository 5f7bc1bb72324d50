import { expect, test } from '@playwright/test';

test('the server is healthy', async ({ request }) => {
	const res = await request.get('/healthz');
	expect(res.status()).toBe(200);
	expect(await res.json()).toMatchObject({ status: 'ok' });
});

test('the app shell loads, and the browser accepts the security headers', async ({ page }) => {
	const complaints: string[] = [];
	page.on('console', (message) => {
		const text = message.text();
		if (/Permissions-Policy|Content.Security.Policy|Cross-Origin/i.test(text))
			complaints.push(text);
	});
	const res = await page.goto('/');
	expect(res?.status(), 'the app is not built: run `npm run build`').toBe(200);
	await expect(page).toHaveTitle(/Kith/);
	expect(complaints).toEqual([]);
});

test('a client-side route loads the app shell too', async ({ page }) => {
	const res = await page.goto('/c/does-not-exist');
	expect(res?.status()).toBe(200);
	await expect(page).toHaveTitle(/Kith/);
});
