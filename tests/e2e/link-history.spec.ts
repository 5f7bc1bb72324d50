/**
 * The history a linked device starts from (docs/protocol.md §8c, "History"): when Ada
 * links a second browser, her first device hands over its view of her
 * conversations, encrypted under a key only the link's grant carries, through
 * the relay's blob store. The new device shows the history from it, and its
 * own storage still gets every envelope, checked, from the relay. The relay
 * never holds the text. A history that does not check out is dropped for the
 * envelopes.
 */
import Database from 'better-sqlite3';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test, type Browser, type Page } from '@playwright/test';
import {
	article,
	articles,
	createConversation,
	expectMessages,
	linkDevice,
	openConversation,
	personAt,
	send,
	stored,
	unique
} from './helpers';
import { relayPerTest } from './support/relay-process';
import { deviceSecrets, keysOf, localRecords, openLocal, relayRooms } from './support/holdings';

test.describe.configure({ timeout: 120_000 });

const relays = relayPerTest();

/** Files in the relay's blob store. */
function blobFiles(dataDir: string): number {
	try {
		return (readdirSync(join(dataDir, 'blobs'), { recursive: true }) as string[]).filter((name) =>
			/\/[A-Za-z0-9_-]{43}$/.test(name)
		).length;
	} catch {
		return 0;
	}
}

/** Expiry times (ms since the epoch) the relay's blob index holds. */
function blobExpiries(dataDir: string): number[] {
	const db = new Database(join(dataDir, 'blobs.sqlite'), { readonly: true });
	try {
		return db
			.prepare<[], { expires: number }>('SELECT expires FROM blob_expiry')
			.all()
			.map((row) => row.expires);
	} finally {
		db.close();
	}
}

/** Ada, on the test's relay, with a conversation `title` holding `texts`, all stored. */
async function adaWith(browser: Browser, title: string, texts: string[]): Promise<Page> {
	const ada = await personAt(browser, relays.current.origin, 'Ada');
	await createConversation(ada, title);
	for (const text of texts) await send(ada, text);
	await expect(stored(article(ada, texts.at(-1) as string))).toBeVisible({ timeout: 30_000 });
	return ada;
}

test("a linked device starts from the history its other device handed over; the relay cannot read it, and every envelope still reaches the new device's storage", async ({
	browser
}) => {
	const relay = relays.current;
	const title = unique('Diary');
	const texts = Array.from(
		{ length: 12 },
		(_, i) => `Heliotrope ${String(i + 1).padStart(2, '0')}`
	);
	const ada = await adaWith(browser, title, texts);
	const blobsBefore = blobFiles(relay.dataDir);
	const room = (
		await keysOf(await deviceSecrets(ada), relayRooms(relay.dataDir))
	).conversations.find((c) => c.name === title)?.roomId;
	expect(room).toBeTruthy();

	// The new browser gets nothing of the conversation's envelopes for now: no direct
	// path to Ada's device, and what the relay sends on the conversation's socket is held.
	const context = await browser.newContext();
	await context.route('**/p2p/info', (route) => route.abort());
	let holding = true;
	const held: Array<() => void> = [];
	await context.routeWebSocket(new RegExp(`/sync/${room}\\?`), (ws) => {
		const server = ws.connectToServer();
		server.onMessage((message) => (holding ? held.push(() => ws.send(message)) : ws.send(message)));
	});
	const second = await linkDevice(browser, ada, context);
	await openConversation(second, title);
	// The whole history shows from what Ada's device handed over.
	await expect(article(second, texts.at(-1) as string)).toBeVisible({ timeout: 30_000 });
	expect(await articles(second).allInnerTexts()).toHaveLength(texts.length);
	for (const text of texts) await expect(article(second, text)).toBeVisible();

	// The relay's frames go through again: the envelopes come, and the history is the same.
	holding = false;
	for (const send of held.splice(0)) send();
	await expectMessages(second, texts);

	// The history went through the relay's blob store, and nothing there (or anywhere the relay keeps) reads.
	expect(blobFiles(relay.dataDir)).toBeGreaterThan(blobsBefore);
	// Only for as long as a link needs it: its chunks are the ones set to go, in about an hour.
	const expiries = blobExpiries(relay.dataDir);
	expect(expiries).toHaveLength(blobFiles(relay.dataDir) - blobsBefore);
	for (const expires of expiries) {
		expect(expires - Date.now()).toBeGreaterThan(50 * 60_000);
		expect(expires - Date.now()).toBeLessThanOrEqual(60 * 60_000);
	}
	expect(relay.storedBytes()).not.toContain('Heliotrope');
	expect(relay.output).not.toContain('Heliotrope');

	// The new device's conversation storage holds every envelope, opened with the keys it holds.
	const secrets = await deviceSecrets(second);
	await expect
		.poll(
			async () => {
				const held = await keysOf(secrets, relayRooms(relay.dataDir));
				const keys = held.conversations.flatMap((c) => [...c.keys.values()]);
				const docs = (await localRecords(second)).filter((r) => r.database.startsWith('kith-doc:'));
				const opened = (await openLocal(docs, keys, new Uint8Array(32))).join('\n');
				return texts.filter((text) => opened.includes(text));
			},
			{ timeout: 30_000 }
		)
		.toEqual(texts);

	// Offline and reloaded, it still shows all of it; and it writes on.
	await second.context().setOffline(true);
	await second.reload();
	await openConversation(second, title);
	await expectMessages(second, texts);
	await second.context().setOffline(false);
	await send(second, 'Written after the link');
	await openConversation(ada, title);
	await expect(article(ada, 'Written after the link')).toBeVisible({ timeout: 30_000 });
});

test('a handed-over history that does not check out is dropped, and the new device reads the envelopes instead', async ({
	browser
}) => {
	const title = unique('Ledger');
	const texts = ['Tamarind one', 'Tamarind two', 'Tamarind three'];
	const ada = await adaWith(browser, title, texts);

	// Every file chunk the new browser fetches comes back with other bytes (a tampering relay).
	const context = await browser.newContext();
	let tampered = 0;
	await context.route('**/blobs/*', async (route) => {
		if (route.request().method() !== 'GET' || route.request().url().endsWith('/limits')) {
			return route.fallback();
		}
		tampered++;
		const response = await route.fetch();
		const body = Buffer.from(await response.body());
		body[body.length - 1] = (body[body.length - 1] ?? 0) ^ 0xff;
		return route.fulfill({ response, body });
	});
	const second = await linkDevice(browser, ada, context);
	await openConversation(second, title);
	await expectMessages(second, texts);
	expect(tampered).toBeGreaterThan(0);
	await expect(second.getByRole('alert')).toHaveCount(0);
});
