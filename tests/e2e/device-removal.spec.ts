/**
 * Removing a device (Settings → Devices → "Remove NAME"): Ada has two
 * devices and a conversation with Bob. Her first device removes the second
 * while it is closed. The conversation moves to a new generation without
 * it; what Ada writes after reaches Bob; when the removed device opens
 * again, the relay refuses it and it shows "This device was removed", then
 * wipes itself. A device that stays open while it is removed learns it at
 * once.
 */
import { expect, test, type Page } from '@playwright/test';
import {
	article,
	inviteAndJoin,
	linkDevice,
	openConversation,
	personAt,
	send,
	unique,
	expectDevicesOf
} from './helpers';
import { relayPerTest } from './support/relay-process';
import {
	deviceSecrets,
	keysOf,
	openEverything,
	relayRefuses,
	relayRooms
} from './support/holdings';
import { fromBase64Url } from '../../src/lib/crypto';

test.describe.configure({ timeout: 180_000 });

const relays = relayPerTest();

/** Settings → Devices → "Remove NAME" for the one other device, confirmed. Returns NAME. */
async function removeOtherDevice(page: Page): Promise<string> {
	await page.getByRole('link', { name: 'Settings' }).click();
	const devices = page.getByRole('list', { name: 'Devices' });
	await expect(devices.getByRole('listitem')).toHaveCount(2, { timeout: 30_000 });
	const button = devices.getByRole('button', { name: /^Remove / });
	const name = ((await button.textContent()) ?? '').replace(/^Remove /, '').trim();
	await expect(devices.getByRole('button', { name: `Remove ${name}` })).toBeVisible();
	await button.click();
	const dialog = page.getByRole('dialog', { name: `Remove ${name}?` });
	await dialog.getByRole('button', { name: 'Remove device' }).click();
	await expect(page.getByRole('status').filter({ hasText: `${name} was removed` })).toBeVisible({
		timeout: 30_000
	});
	await expect(devices.getByRole('listitem')).toHaveCount(1);
	return name;
}

test('a removed device reads nothing written after, the relay refuses it, and it offers to wipe itself', async ({
	browser
}) => {
	const relay = relays.current;
	const rooms = () => relayRooms(relay.dataDir);
	const ada = await personAt(browser, relay.origin, 'Ada');
	const bob = await personAt(browser, relay.origin, 'Bob');
	const title = unique('Plans');
	await inviteAndJoin(ada, bob, title);
	await send(ada, 'Before the removal');
	await expect(article(bob, 'Before the removal')).toBeVisible({ timeout: 30_000 });

	const second = await linkDevice(browser, ada);
	await openConversation(second, title);
	await expect(article(second, 'Before the removal')).toBeVisible({ timeout: 60_000 });
	// Every key the second device holds: its account key and, through the vault, each conversation's.
	const removedSecrets = await deviceSecrets(second);
	const removedKeys = async () => [
		fromBase64Url(removedSecrets.account),
		...(await keysOf(removedSecrets, rooms())).conversations.flatMap((c) => [...c.keys.values()])
	];
	const heldBefore = await removedKeys();
	expect((await openEverything(rooms(), heldBefore)).join('\n')).toContain('Before the removal');
	// The second device goes away (its browser closed), its data kept.
	const secondContext = second.context();
	await second.close();

	await removeOtherDevice(ada);

	// The conversation goes on without it: Ada's first device opened a new generation.
	await openConversation(ada, title);
	await send(ada, 'After the removal');
	await expect(article(bob, 'After the removal')).toBeVisible({ timeout: 60_000 });
	await send(bob, 'Bob still hears Ada');
	await expect(article(ada, 'Bob still hears Ada')).toBeVisible({ timeout: 30_000 });
	// Bob sees one device of Ada's now.
	await expectDevicesOf(bob, 'Ada', 1);

	// Nothing written after opens with any key the removed device held; Ada's new keys open it.
	const adaSecrets = await deviceSecrets(ada);
	const adaHeld = await keysOf(adaSecrets, rooms());
	const adaKeys = adaHeld.conversations.flatMap((c) => [...c.keys.values()]);
	expect((await openEverything(rooms(), adaKeys)).join('\n')).toContain('After the removal');
	expect((await openEverything(rooms(), heldBefore)).join('\n')).not.toContain('After the removal');
	// The relay refuses it the rooms written in now, even knowing their ids.
	const conversation = adaHeld.conversations.find((c) => c.name === title);
	expect(conversation?.epoch).toBeGreaterThan(0);
	for (const key of heldBefore) {
		expect(await relayRefuses(relay.origin, conversation?.roomId as string, key)).toBe(
			'wrong-capability'
		);
	}
	expect(adaSecrets.account).not.toBe(removedSecrets.account);

	// The removed device opens again: the relay refuses its vault room, and it says so.
	const again = await secondContext.newPage();
	await again.goto(relay.origin);
	await expect(again.getByRole('heading', { name: 'This device was removed' })).toBeVisible({
		timeout: 60_000
	});
	await again.getByRole('button', { name: 'Wipe this device' }).click();
	await expect(again.getByRole('heading', { name: 'Signed out' })).toBeVisible({
		timeout: 30_000
	});
	// No conversation or vault database is left, and no keyring: it starts as a new browser.
	const left = await again.evaluate(async () =>
		(await indexedDB.databases()).map((db) => db.name ?? '')
	);
	expect(left.filter((name) => name !== 'kith-local')).toEqual([]);
	await again.reload();
	await expect(again.getByRole('button', { name: 'Create account' })).toBeVisible();
	expect(relay.output).not.toContain('After the removal');
});

test('a device removed while it is open learns it at once; the other devices take the new keys and go on', async ({
	browser
}) => {
	const ada = await personAt(browser, relays.current.origin, 'Ada');
	const second = await linkDevice(browser, ada);
	const third = await linkDevice(browser, ada);
	for (const page of [second, third]) {
		await expect(page.getByRole('link', { name: /Notes to self/ })).toBeVisible({
			timeout: 60_000
		});
	}
	// Three browsers of one kind: the list numbers them.
	await ada.getByRole('link', { name: 'Settings' }).click();
	const devices = ada.getByRole('list', { name: 'Devices' });
	await expect(devices.getByRole('listitem')).toHaveCount(3, { timeout: 30_000 });
	const names = (await devices.getByRole('button', { name: /^Remove / }).allTextContents()).map(
		(text) => text.replace(/^Remove /, '').trim()
	);
	expect(new Set(names).size).toBe(2);
	// The third device linked last: its name is the highest numbered.
	const removed = names.sort().at(-1) as string;
	await devices.getByRole('button', { name: `Remove ${removed}`, exact: true }).click();
	await ada
		.getByRole('dialog', { name: `Remove ${removed}?` })
		.getByRole('button', { name: 'Remove device' })
		.click();
	await expect(ada.getByRole('status').filter({ hasText: `${removed} was removed` })).toBeVisible({
		timeout: 30_000
	});
	await expect(third.getByRole('heading', { name: 'This device was removed' })).toBeVisible({
		timeout: 30_000
	});
	await expect(devices.getByRole('listitem')).toHaveCount(2);

	// The second device took the new keys: it writes, Ada reads, after a reload of both.
	await openConversation(second, 'Notes to self');
	await send(second, 'From the second device, after');
	await openConversation(ada, 'Notes to self');
	await expect(article(ada, 'From the second device, after')).toBeVisible({ timeout: 30_000 });
	for (const page of [ada, second]) await page.reload();
	await openConversation(ada, 'Notes to self');
	await send(ada, 'Still here');
	await openConversation(second, 'Notes to self');
	await expect(article(second, 'Still here')).toBeVisible({ timeout: 30_000 });
	await expect(second.getByRole('heading', { name: 'This device was removed' })).toHaveCount(0);
});
