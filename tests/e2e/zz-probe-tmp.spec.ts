import { test } from '@playwright/test';
test('probe', async ({ page }) => {
	page.on('console', (m) => console.log('console', m.type(), m.text()));
	page.on('pageerror', (e) => console.log('pageerror', e.message));
	page.on('requestfailed', (r) => console.log('requestfailed', r.url(), r.failure()?.errorText));
	page.on('response', (r) => { if (r.status() >= 400) console.log('response', r.status(), r.url()); });
	await page.goto('http://127.0.0.1:48802/');
	await page.getByRole('textbox', { name: 'Display name' }).fill('probe');
	await page.getByRole('button', { name: 'Create account' }).click();
	await page.waitForTimeout(12000);
	console.log((await page.locator('body').innerText()).slice(0, 500));
});
