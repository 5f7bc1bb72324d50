/**
 * The relay's limits, as the person writing meets them: a relay run with a
 * small frame size or room quota refuses what is over it, and the app says
 * so, naming the relay's reason. Nothing refused is lost: the message stays
 * "Saved" on the device and goes out by itself once the relay takes it.
 */
import { expect, test, type Browser, type Page } from '@playwright/test';
import { article, composer, createConversation, personAt, send, status } from './helpers';
import { RelayProcess } from './support/relay-process';
import { relayRooms } from './support/holdings';

test.describe.configure({ timeout: 120_000 });

let relay: RelayProcess | null = null;
test.afterEach(async () => {
	await relay?.stop();
	relay?.remove();
	relay = null;
});

/** A relay of this test's own, run with `env`, and Ada on it in a new conversation `title`. */
async function adaOn(
	env: Record<string, string>,
	title: string,
	browser: Browser
): Promise<{ relay: RelayProcess; ada: Page }> {
	relay = new RelayProcess(env);
	await relay.start();
	const ada = await personAt(browser, relay.origin, 'Ada');
	await createConversation(ada, title);
	return { relay, ada };
}

/** Bytes the relay stores per room. */
function roomBytes(relay: RelayProcess): Map<string, number> {
	return new Map(
		[...relayRooms(relay.dataDir)].map(([room, rows]) => [
			room,
			rows.reduce((n, row) => n + row.length, 0)
		])
	);
}

/** roomBytes once it held still for two seconds (a read mark waits 1.5 s to be written). */
async function settledRoomBytes(relay: RelayProcess): Promise<Map<string, number>> {
	let seen = '';
	let bytes = new Map<string, number>();
	await expect
		.poll(
			() => {
				bytes = roomBytes(relay);
				const now = JSON.stringify([...bytes]);
				const still = now === seen;
				seen = now;
				return still;
			},
			{ intervals: [2_000], timeout: 30_000 }
		)
		.toBe(true);
	return bytes;
}

/** How many updates or frames the relay refused for `reason` (its /metrics). */
async function refusals(relay: RelayProcess, reason: string): Promise<number> {
	const text = await (await fetch(`${relay.origin}/metrics`)).text();
	const line = text
		.split('\n')
		.find((l) => l.startsWith(`kith_refusals_total{reason="${reason}"}`));
	return Number(line?.split(' ')[1] ?? 0);
}

/** About 6,000 characters: over a 4 KiB frame once sealed. */
const LONG = `Chapter one. ${'The whole of it, word for word. '.repeat(190)}`.trim();

function alertNaming(page: Page, reason: string) {
	return page.getByRole('alert').filter({ hasText: `(${reason})` });
}

test('a message over the relay’s frame size is refused by name before it is sent, and nothing after it is held back', async ({
	browser
}) => {
	// 4 KiB frames: a message of 6,000 characters does not fit in one.
	const { relay, ada } = await adaOn({ KITH_MAX_FRAME_BYTES: '4096' }, 'Long reads', browser);
	const first = await send(ada, 'A short one first');
	await expect(status(first, 'Sent')).toBeVisible({ timeout: 20_000 });

	// Refused in the composer, by the relay's name for it; the text is kept.
	await composer(ada).fill(LONG);
	await composer(ada).press('Enter');
	const alert = alertNaming(ada, 'frame-too-large');
	await expect(alert).toBeVisible({ timeout: 20_000 });
	await expect(alert).toContainText('too long for the relay');
	await expect(composer(ada)).toHaveValue(LONG);
	await expect(article(ada, LONG)).toHaveCount(0);
	// It did not block the conversation: the next message goes out.
	await composer(ada).fill('');
	const next = await send(ada, 'Shorter, then');
	await expect(status(next, 'Sent')).toBeVisible({ timeout: 20_000 });

	// The operator raises the limit: once reconnected, the long message goes too.
	await relay.restartWith({});
	await expect(ada.getByRole('status', { name: 'Connection' })).toHaveText('Connected', {
		timeout: 30_000
	});
	await composer(ada).fill(LONG);
	await expect(async () => {
		await composer(ada).press('Enter');
		await expect(article(ada, LONG)).toBeVisible({ timeout: 1_000 });
	}).toPass({ timeout: 20_000 });
	await expect(status(article(ada, LONG), 'Sent')).toBeVisible({ timeout: 20_000 });
});

test('a message written before the relay lowered its frame size is refused by name, stays Saved, and goes out once the limit is raised', async ({
	browser
}) => {
	const { relay, ada } = await adaOn({}, 'Offline letters', browser);
	await expect(status(await send(ada, 'Before'), 'Sent')).toBeVisible({ timeout: 20_000 });

	// Written while the relay is away; it comes back with 4 KiB frames.
	await relay.stop();
	const message = await send(ada, LONG);
	await relay.restartWith({ KITH_MAX_FRAME_BYTES: '4096' });
	const alert = alertNaming(ada, 'frame-too-large');
	await expect(alert).toBeVisible({ timeout: 30_000 });
	await expect(alert).toContainText('too large for the relay');
	await expect(status(message, 'Saved')).toBeVisible();
	expect(relay.output).toContain('frame-too-large');

	// The operator raises the limit again: the same message goes out by itself.
	await relay.restartWith({});
	await expect(status(message, 'Sent')).toBeVisible({ timeout: 60_000 });
});

test('a conversation over the relay’s room quota is refused by name; its messages stay Saved on the device', async ({
	browser
}) => {
	// 24 KiB per room: a few long messages fill the conversation before the
	// account's own data (its vault room, which every message read also writes) fills.
	const { relay, ada } = await adaOn(
		{ KITH_ROOM_QUOTA_BYTES: String(24 * 1024) },
		'Small room',
		browser
	);
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

test('sending faster than the relay’s rate is refused by name, and every message still goes out', async ({
	browser
}) => {
	// Two frames a second per connection (bursts of four).
	const { ada } = await adaOn({ KITH_RATE_MSGS_PER_SEC: '2' }, 'Quick fire', browser);
	const texts = Array.from({ length: 10 }, (_, i) => `Quick ${i + 1}`);
	for (const text of texts) await send(ada, text);
	await expect(alertNaming(ada, 'rate-limited')).toBeVisible({ timeout: 20_000 });
	// It mends itself: what was refused is sent again, a little later.
	for (const text of texts) {
		await expect(status(article(ada, text), 'Sent')).toBeVisible({ timeout: 60_000 });
	}
});

test('messages read one after another cost the account’s own data a few writes, not one each', async ({
	browser
}) => {
	const { relay, ada } = await adaOn({}, 'Chatty', browser);
	await send(ada, 'Warming up');
	await expect(status(article(ada, 'Warming up'), 'Sent')).toBeVisible({ timeout: 20_000 });
	const before = await settledRoomBytes(relay);
	for (let i = 1; i <= 20; i++) await send(ada, `Chatty ${i}`);
	await expect(status(article(ada, 'Chatty 20'), 'Sent')).toBeVisible({ timeout: 20_000 });
	// Each message is read as it is shown; the read marks go to the vault together.
	const growth = [...(await settledRoomBytes(relay))].map(
		([room, n]) => n - (before.get(room) ?? 0)
	);
	const conversation = Math.max(...growth);
	const rest = growth.reduce((a, b) => a + b, 0) - conversation;
	expect(rest).toBeGreaterThan(0);
	expect(rest).toBeLessThan(conversation / 2);
});
