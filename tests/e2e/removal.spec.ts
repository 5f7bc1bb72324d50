/**
 * Removing a member rotates the conversation to a new generation: a new
 * key and a new room, sealed to every remaining member device. Three
 * browsers through a relay of the test's own (so its database can be read):
 * Ada (owner) removes Bob while Cy is cut off. Bob, holding every key he
 * ever had, can open nothing written after, and the relay will not let him
 * into the new room; Cy comes back, finds her lockbox, moves, and what she
 * wrote offline arrives. A forged membership change from a plain member
 * changes nothing anywhere.
 */
import { expect, test, type Page } from '@playwright/test';
import { article, composer, invite, inviteAndJoin, personAt, send, status } from './helpers';
import { relayPerTest } from './support/relay-process';
import { TcpProxy } from './support/tcp-proxy';
import {
	deviceSecrets,
	forge,
	keysOf,
	localRecords,
	openLocal,
	openEverything,
	relayRefuses,
	relayRooms,
	userIdOf
} from './support/holdings';
import { HlcClock, makeMemberRemove, makeMemberRole, makeSend } from '../../src/lib/conversation';
import { fromBase64Url } from '../../src/lib/crypto';

test.describe.configure({ timeout: 180_000 });

const relays = relayPerTest();

function log(page: Page) {
	return page.getByRole('log', { name: 'Messages' });
}

function connection(page: Page) {
	return page.getByRole('status', { name: 'Connection' });
}

async function members(page: Page) {
	await page.getByRole('button', { name: 'Members' }).click();
	return page.getByRole('dialog', { name: 'Members' });
}

/** Every text any of `keys` opens on the relay. */
async function readable(keys: Uint8Array[]): Promise<string> {
	return (await openEverything(relayRooms(relays.current.dataDir), keys)).join('\n');
}

test('a removed member reads nothing after; an offline member moves; forgeries change nothing; leaving rotates too', async ({
	browser
}) => {
	const relay = relays.current;
	const proxy = new TcpProxy({ host: '127.0.0.1', port: relay.port });
	await proxy.start();
	const ada = await personAt(browser, relay.origin, 'Ada');
	const bob = await personAt(browser, relay.origin, 'Bob');
	const cy = await personAt(browser, proxy.origin, 'Cy');
	await inviteAndJoin(ada, bob, 'Crew');

	// Cy joins through the proxy, so the test can cut her off.
	await invite(ada, cy, 'Crew', proxy.origin);

	await send(bob, 'Bob was here');
	for (const page of [ada, cy]) {
		await expect(article(page, 'Bob was here')).toBeVisible({ timeout: 20_000 });
	}

	// With the keys in his vault, Bob can open his era on the relay (the method works).
	const bobSecrets = await deviceSecrets(bob);
	const bobBefore = await keysOf(bobSecrets, relayRooms(relay.dataDir));
	expect(await readable(bobBefore.conversations.flatMap((c) => [...c.keys.values()]))).toContain(
		'Bob was here'
	);

	// Cy is cut off, and writes anyway: "Saved" on her device only.
	await proxy.stop();
	await expect(connection(cy)).not.toHaveText('Connected', { timeout: 10_000 });
	await send(cy, 'Cy wrote this offline');
	await expect(status(article(cy, 'Cy wrote this offline'), 'Saved')).toBeVisible();

	// Ada removes Bob.
	const adasMembers = await members(ada);
	await adasMembers.getByRole('button', { name: 'Remove Bob' }).click();
	await expect(adasMembers.getByRole('listitem').filter({ hasText: 'Bob' })).toHaveCount(0, {
		timeout: 15_000
	});
	await adasMembers.getByRole('button', { name: 'Close' }).click();
	await expect(log(ada).getByText('You removed Bob', { exact: true })).toBeVisible();
	await expect(log(bob).getByText('Ada removed you', { exact: true })).toBeVisible({
		timeout: 20_000
	});
	await expect(bob.getByRole('status').filter({ hasText: 'You were removed' })).toBeVisible();
	await expect(composer(bob)).toHaveCount(0);

	// Ada writes in the new generation.
	await send(ada, 'After Bob left');
	await expect(status(article(ada, 'After Bob left'), 'Sent')).toBeVisible({ timeout: 20_000 });

	// Cy comes back: she moves, Ada gets what Cy wrote offline, Cy gets Ada's.
	await proxy.start();
	await expect(article(cy, 'After Bob left')).toBeVisible({ timeout: 40_000 });
	await expect(article(ada, 'Cy wrote this offline')).toBeVisible({ timeout: 30_000 });
	await expect(log(cy).getByText('Ada removed Bob', { exact: true })).toBeVisible();
	await send(cy, 'Cy after the move');
	await expect(article(ada, 'Cy after the move')).toBeVisible({ timeout: 20_000 });
	const moved = article(cy, 'Cy after the move');
	await expect(
		status(moved, 'Sent').or(status(moved, 'Delivered')).or(status(moved, 'Read'))
	).toBeVisible({ timeout: 20_000 });
	for (const text of ['After Bob left', 'Cy after the move']) {
		await expect(article(bob, text)).toHaveCount(0);
	}

	// Raw data: Bob, with every key his vault holds, opens nothing written after —
	// neither on the relay nor in his own browser's storage.
	const rooms = relayRooms(relay.dataDir);
	const bobs = await keysOf(bobSecrets, rooms);
	const bobCrew = bobs.conversations.find((c) => c.name === 'Crew');
	expect(bobCrew?.keys.size).toBe(1);
	const bobKeys = bobs.conversations.flatMap((c) => [...c.keys.values()]);
	const bobReads = await readable(bobKeys);
	expect(bobReads).not.toContain('After Bob left');
	expect(bobReads).not.toContain('Cy after the move');
	const bobLocal = (
		await openLocal(await localRecords(bob), bobKeys, fromBase64Url(bobSecrets.local))
	).join('\n');
	expect(bobLocal).toContain('Bob was here');
	expect(bobLocal).not.toContain('After Bob left');
	expect(bobLocal).not.toContain('Cy after the move');
	// Once Ada and Cy have both moved, the relay drops the old room: Bob's key opens no room.
	await expect
		.poll(() => relayRefuses(relay.origin, bobCrew?.roomId ?? '', bobKeys[0] as Uint8Array), {
			timeout: 20_000
		})
		.toBe('room-retired');

	// Ada's vault knows both generations; the new room is real and holds the text.
	const adaSecrets = await deviceSecrets(ada);
	const adas = await keysOf(adaSecrets, rooms);
	const adaCrew = adas.conversations.find((c) => c.name === 'Crew');
	expect(adaCrew?.epoch).toBe(1);
	const newRoom = adaCrew?.rooms.get(1) ?? adaCrew?.roomId ?? '';
	const newKey = adaCrew?.keys.get(1);
	expect(newRoom).not.toBe(bobCrew?.roomId);
	expect(newKey).toBeDefined();
	expect(await readable([newKey as Uint8Array])).toContain('After Bob left');
	// The relay refuses Bob's key for the new room, and still admits the right one.
	const bobOldKey = bobCrew?.keys.get(0) as Uint8Array;
	expect(await relayRefuses(relay.origin, newRoom, bobOldKey)).toBe('wrong-capability');
	expect(await relayRefuses(relay.origin, newRoom, newKey as Uint8Array)).toBeNull();

	// Cy, a plain member, forges "Cy removes Ada" and "Cy is now the owner" in the new room.
	const cySecrets = await deviceSecrets(cy);
	const cys = await keysOf(cySecrets, relayRooms(relay.dataDir));
	const cyCrew = cys.conversations.find((c) => c.name === 'Crew');
	expect(cyCrew?.epoch).toBe(1);
	const clock = new HlcClock();
	const adaUser = userIdOf(adaSecrets);
	await forge(
		relay.origin,
		{ roomId: cyCrew?.roomId ?? '', epoch: 1, key: cyCrew?.keys.get(1) as Uint8Array },
		fromBase64Url(cySecrets.device),
		[
			makeMemberRemove(clock, adaUser),
			makeMemberRole(clock, userIdOf(cySecrets), 'owner'),
			// In the same envelope, so its arrival shows the forgery was delivered and read.
			makeSend(clock, 'Sent with the forgery')
		]
	);
	for (const page of [ada, cy]) {
		await expect(article(page, 'Sent with the forgery')).toBeVisible({ timeout: 20_000 });
	}
	await send(ada, 'Still the owner');
	await expect(article(cy, 'Still the owner')).toBeVisible({ timeout: 20_000 });
	for (const page of [ada, cy]) {
		await expect(log(page).getByText(/removed Ada|removed you|made Cy|made you/)).toHaveCount(0);
		const list = await members(page);
		await expect(list.getByRole('listitem').filter({ hasText: 'Ada' })).toContainText('Owner');
		await expect(list.getByRole('listitem').filter({ hasText: 'Cy' })).toContainText('Member');
		await list.getByRole('button', { name: 'Close' }).click();
	}

	// Cy leaves: Ada's device, the owner's, rotates again; Cy reads nothing after.
	const cysMembers = await members(cy);
	await cysMembers.getByRole('button', { name: 'Leave conversation' }).click();
	await expect(cy.getByRole('status').filter({ hasText: 'You left' })).toBeVisible({
		timeout: 15_000
	});
	await cy.keyboard.press('Escape');
	await expect(composer(cy)).toHaveCount(0);
	await expect(log(ada).getByText('Cy left', { exact: true })).toBeVisible({ timeout: 20_000 });
	await expect
		.poll(
			async () =>
				(await keysOf(adaSecrets, relayRooms(relay.dataDir))).conversations.find(
					(c) => c.name === 'Crew'
				)?.epoch,
			{ timeout: 20_000 }
		)
		.toBe(2);
	await send(ada, 'After Cy left');
	await expect(status(article(ada, 'After Cy left'), 'Sent')).toBeVisible({ timeout: 20_000 });
	await expect(article(cy, 'After Cy left')).toHaveCount(0);
	const cyKeys = (await keysOf(cySecrets, relayRooms(relay.dataDir))).conversations.flatMap((c) => [
		...c.keys.values()
	]);
	expect(await readable(cyKeys)).not.toContain('After Cy left');
	const cyLocal = (
		await openLocal(await localRecords(cy), cyKeys, fromBase64Url(cySecrets.local))
	).join('\n');
	expect(cyLocal).toContain('Still the owner');
	expect(cyLocal).not.toContain('After Cy left');

	// Dee joins the third generation: its seed gives her the same membership.
	const dee = await personAt(browser, relay.origin, 'Dee');
	await invite(ada, dee, 'Crew');
	await expect(article(dee, 'After Cy left')).toBeVisible({ timeout: 30_000 });
	await expect(log(dee).getByText('Ada added you', { exact: true })).toBeVisible();
	await send(dee, 'Dee is in');
	await expect(article(ada, 'Dee is in')).toBeVisible({ timeout: 20_000 });
	const deesMembers = await members(dee);
	await expect(deesMembers.getByRole('listitem')).toHaveCount(2);
	await expect(deesMembers.getByRole('listitem').filter({ hasText: 'Ada' })).toContainText('Owner');
	await proxy.stop();
});
