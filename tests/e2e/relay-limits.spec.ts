/**
 * The relay's limits, as the person writing meets them: a relay run with a
 * small frame size or room quota refuses what is over it, and the app says
 * so, naming the relay's reason. Nothing refused is lost: the message stays
 * "Saved" on the device and goes out by itself once the relay takes it.
 */
import { expect, test, type Page } from '@playwright/test';
import { article, createConversation, personAt, send, status } from './helpers';
import { RelayProcess } from './support/relay-process';

test.describe.configure({ timeout: 120_000 });

let relay: RelayProcess | null = null;
test.afterEach(async () => {
	await relay?.stop();
	relay?.remove();
	relay = null;
});

async function started(env: Record<string, string>): Promise<RelayProcess> {
	relay = new RelayProcess(env);
	await relay.start();
	return relay;
}

/** How many updates or frames the relay refused for `reason` (its /metrics). */
async function refusals(relay: RelayProcess, reason: string): Promise<number> {
	const text = await (await fetch(`${relay.origin}/metrics`)).text();
	const line = text
		.split('\n')
		.find((l) => l.startsWith(`kith_refusals_total{reason="${reason}"}`));
	return Number(line?.split(' ')[1] ?? 0);
}

function alertNaming(page: Page, reason: string) {
	return page.getByRole('alert').filter({ hasText: `(${reason})` });
}

test('a message over the relay’s frame size is refused by name, stays Saved, and goes out once the relay takes it', async ({
	browser
}) => {
	// 4 KiB frames: a message of 6,000 characters does not fit in one.
	const relay = await started({ KITH_MAX_FRAME_BYTES: '4096' });
	const ada = await personAt(browser, relay.origin, 'Ada');
	await createConversation(ada, 'Long reads');
	const short = await send(ada, 'A short one first');
	await expect(status(short, 'Sent')).toBeVisible({ timeout: 20_000 });

	const long = `Chapter one. ${'The whole of it, word for word. '.repeat(190)}`;
	const message = await send(ada, long.trim());
	const alert = alertNaming(ada, 'frame-too-large');
	await expect(alert).toBeVisible({ timeout: 20_000 });
	await expect(alert).toContainText('too large for the relay');
	await expect(status(message, 'Saved')).toBeVisible();
	expect(relay.output).toContain('frame-too-large');

	// The operator raises the limit: the same message goes out by itself.
	await relay.restartWith({});
	await expect(status(message, 'Sent')).toBeVisible({ timeout: 60_000 });
});

test('a conversation over the relay’s room quota is refused by name; its messages stay Saved on the device', async ({
	browser
}) => {
	// 24 KiB per room: a few long messages fill the conversation before the
	// account's own data (its vault room, which every message read also writes) fills.
	const relay = await started({ KITH_ROOM_QUOTA_BYTES: String(24 * 1024) });
	const ada = await personAt(browser, relay.origin, 'Ada');
	await createConversation(ada, 'Small room');
	const alert = alertNaming(ada, 'room-quota');
	const page = (i: number) => `Page ${i}: ${'a long letter, '.repeat(200).trim()}`;
	for (let i = 1; i <= 12 && !(await alert.isVisible()); i++) await send(ada, page(i));
	await expect(alert).toBeVisible({ timeout: 20_000 });
	await expect(alert).toContainText('This conversation is full on the relay');

	// A message the relay has no room for: refused again, and kept here, not claimed as sent.
	const before = await refusals(relay, 'room-quota');
	const overText = `One too many: ${'more words '.repeat(300).trim()}`;
	const over = await send(ada, overText);
	await expect
		.poll(() => refusals(relay, 'room-quota'), { timeout: 20_000 })
		.toBeGreaterThan(before);
	await expect(status(over, 'Saved')).toBeVisible();
	await ada.reload();
	await expect(status(article(ada, overText), 'Saved')).toBeVisible({ timeout: 20_000 });
});
