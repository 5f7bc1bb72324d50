import { spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium, type Page } from 'playwright-core';
import { chromiumLaunchOptions } from '../../tests/e2e/chromium';
import { RELAY_ENV } from '../relay/servers';

const root = '/work/main';
async function startServer(dataDir: string) {
	const child = spawn(process.execPath, ['--import', 'tsx', 'sync-server/src/main.ts'], {
		cwd: root,
		env: { ...process.env, HOST: '127.0.0.1', PORT: '0', KITH_DATA: dataDir, KITH_STATIC: '/tmp/kb-build-bench', ...RELAY_ENV },
		stdio: ['ignore', 'pipe', 'inherit']
	});
	const url = await new Promise<string>((resolve) => {
		createInterface({ input: child.stdout! }).on('line', (line) => {
			const m = /^Kith listening on (http:\/\/\S+) /.exec(line);
			if (m?.[1]) resolve(m[1]);
		});
	});
	return { url, child };
}

async function sendMany(page: Page, prefix: string, count: number): Promise<void> {
	await page.getByRole('textbox', { name: 'Message' }).evaluate(
		async (box, [prefix, count]) => {
			const area = box as HTMLTextAreaElement;
			for (let i = 1; i <= Number(count); i++) {
				area.value = `${prefix} ${String(i).padStart(4, '0')}`;
				area.dispatchEvent(new Event('input', { bubbles: true }));
				area.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
				while (area.value !== '') await new Promise((resolve) => { const ch = new MessageChannel(); ch.port1.onmessage = resolve; ch.port2.postMessage(0); });
			}
		},
		[prefix, String(count)]
	);
}

const dataDir = await mkdtemp(join(tmpdir(), 'kb-scratch-data-'));
const { url, child } = await startServer(dataDir);
console.log(url);
const profile = await mkdtemp(join(tmpdir(), 'kb-scratch-prof-'));
const launch = chromiumLaunchOptions();
const ctx = await chromium.launchPersistentContext(profile, { ...launch, headless: true, viewport: { width: 1000, height: 800 } });
const page = await ctx.newPage();
page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') console.log('page', m.type(), m.text()); });
await page.goto(url);
await page.getByRole('textbox', { name: 'Display name' }).fill('Ada');
await page.getByRole('button', { name: 'Create account' }).click();
const dialog = page.getByRole('dialog', { name: 'Recovery key' });
await dialog.waitFor({ timeout: 20000 });
await dialog.getByRole('button', { name: 'Continue' }).click();
const nav = page.getByRole('navigation', { name: 'Conversations' });
await nav.getByRole('link', { name: 'Notes to self', exact: true }).waitFor();
for (let c = 1; c <= 2; c++) {
	await nav.getByRole('button', { name: 'New conversation' }).click();
	await page.getByRole('textbox', { name: 'Conversation name' }).fill(`Conv ${c}`);
	await page.getByRole('button', { name: 'Create', exact: true }).click();
	await page.getByRole('heading', { level: 1, name: `Conv ${c}`, exact: true }).waitFor();
	const t = performance.now();
	await sendMany(page, `c${c}`, 1000);
	const t1 = performance.now();
	const last = page.getByRole('log', { name: 'Messages' }).getByRole('article').filter({ has: page.getByText(`c${c} 1000`, { exact: true }) });
	await last.getByText('Sent', { exact: true }).waitFor({ timeout: 60000 });
	console.log(`conv ${c}: composer ${Math.round(t1 - t)} ms, Sent at ${Math.round(performance.now() - t)} ms`);
}
await ctx.close();
child.kill('SIGTERM');
