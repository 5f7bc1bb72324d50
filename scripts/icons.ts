/**
 * Draws the app's PNG icons from the same artwork as static/favicon.svg:
 *
 *   static/icons/icon-192.png, icon-512.png   purpose "any": the rounded tile, transparent corners
 *   static/icons/maskable-512.png             purpose "maskable": full-bleed background, the
 *                                             bubble inside the 80 % safe zone, so any mask
 *                                             (circle, squircle) keeps all of it
 *   static/icons/apple-touch-icon.png         180×180, opaque: iOS ignores the manifest's icons
 *
 * Chromium renders the SVG (the same one the e2e tests drive), so no image
 * library is needed. The PNGs are committed; run this again after changing
 * the artwork: `npx tsx scripts/icons.ts`.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { chromium } from '@playwright/test';
import { chromiumLaunchOptions } from '../tests/e2e/chromium';

const TILE = '#2f5d50';
const favicon = readFileSync('static/favicon.svg', 'utf8');
const bubble = /<path [^>]*\/>/.exec(favicon)?.[0];
if (!bubble) throw new Error('static/favicon.svg has no <path>: update scripts/icons.ts');

// The bubble spans about 44 of 64 units; scaled by 0.8 about the centre it stays
// inside the maskable safe zone (a circle of radius 40 % of the size).
const maskable =
	`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">` +
	`<rect width="64" height="64" fill="${TILE}"/>` +
	`<g transform="translate(32 32) scale(0.8) translate(-32 -32)">${bubble}</g></svg>`;

const icons = [
	{ file: 'static/icons/icon-192.png', size: 192, svg: favicon },
	{ file: 'static/icons/icon-512.png', size: 512, svg: favicon },
	{ file: 'static/icons/maskable-512.png', size: 512, svg: maskable },
	{ file: 'static/icons/apple-touch-icon.png', size: 180, svg: maskable }
];

const browser = await chromium.launch(chromiumLaunchOptions());
try {
	mkdirSync('static/icons', { recursive: true });
	for (const { file, size, svg } of icons) {
		const page = await browser.newPage({ viewport: { width: size, height: size } });
		const src = `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`;
		await page.setContent(
			`<style>html,body{margin:0;background:transparent}</style>` +
				`<img src="${src}" width="${size}" height="${size}" style="display:block">`
		);
		await page.locator('img').evaluate((img: HTMLImageElement) => img.decode());
		writeFileSync(file, await page.screenshot({ omitBackground: true, type: 'png' }));
		await page.close();
		process.stdout.write(`${file} (${size}×${size})\n`);
	}
} finally {
	await browser.close();
}
