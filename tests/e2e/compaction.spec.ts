/**
 * Delete for everyone, all the way down: after a message is deleted, the
 * owner's device compacts — a new generation seeded with what survives —
 * every member device moves and retires the old one, and the relay drops it
 * once they all have. Then the deleted message's envelope is gone from the
 * relay's database and from every browser's IndexedDB, and nothing either
 * browser holds, opened with every key it has, yields the deleted text.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { article, inviteAndJoin, personAt, send } from './helpers';
import { relayPerTest } from './support/relay-process';
import {
	deviceSecrets,
	envelopesHolding,
	holdsBytes,
	keysOf,
	localRecords,
	openEverything,
	openLocal,
	relayRooms
} from './support/holdings';
import { fromBase64Url } from '../../src/lib/crypto';

test.describe.configure({ timeout: 150_000 });

const relays = relayPerTest();

test('a deleted message leaves the relay and every device once the old generation is retired', async ({
	browser
}) => {
	const relay = relays.current;
	const secret = `SECRET-${crypto.randomUUID()}`;
	const ada = await personAt(browser, relay.origin, 'Ada');
	const bob = await personAt(browser, relay.origin, 'Bob');
	await inviteAndJoin(ada, bob, 'Erase');
	await send(bob, 'Bob keeps this');
	await send(ada, `${secret} is going away`);
	await send(ada, 'Ada keeps this');
	for (const text of [`${secret} is going away`, 'Ada keeps this']) {
		await expect(article(bob, text)).toBeVisible({ timeout: 20_000 });
	}

	// The envelope that carries the text, as the relay stores it.
	const adaSecrets = await deviceSecrets(ada);
	const before = await keysOf(adaSecrets, relayRooms(relay.dataDir));
	const erase = before.conversations.find((c) => c.name === 'Erase');
	const oldRoom = erase?.roomId ?? '';
	expect(relayRooms(relay.dataDir).get(oldRoom)?.length ?? 0).toBeGreaterThan(0);
	const carriers = await envelopesHolding(
		relayRooms(relay.dataDir),
		erase?.keys.get(0) as Uint8Array,
		secret
	);
	expect(carriers).toHaveLength(1);
	const carrier = carriers[0] as Uint8Array;
	expect(holdsBytes(await localRecords(bob), carrier)).toBe(true);

	// Ada deletes it for everyone.
	const mine = article(ada, `${secret} is going away`);
	await mine.hover();
	await mine.getByRole('button', { name: 'Delete' }).click();
	await ada
		.getByRole('dialog', { name: 'Delete this message for everyone?' })
		.getByRole('button', { name: 'Delete' })
		.click();
	for (const page of [ada, bob]) {
		await expect(article(page, 'This message was deleted')).toBeVisible({ timeout: 20_000 });
	}

	// Ada's device compacts; both move and retire; the relay drops the old room.
	await expect
		.poll(() => relayRooms(relay.dataDir).get(oldRoom)?.length ?? 0, { timeout: 60_000 })
		.toBe(0);
	const database = readFileSync(join(relay.dataDir, 'relay.sqlite'));
	expect(database.includes(Buffer.from(carrier))).toBe(false);

	// The conversation reads the same, minus the text, on both sides, and goes on.
	for (const page of [ada, bob]) {
		await expect(article(page, 'This message was deleted')).toBeVisible();
		await expect(article(page, 'Bob keeps this')).toBeVisible();
		await expect(article(page, 'Ada keeps this')).toBeVisible();
		await expect(page.getByText(secret)).toHaveCount(0);
	}
	await send(bob, 'Still talking');
	await expect(article(ada, 'Still talking')).toBeVisible({ timeout: 20_000 });

	// Nothing either replica holds yields the text, with every key it has.
	for (const page of [ada, bob]) {
		const secrets = await deviceSecrets(page);
		const held = await keysOf(secrets, relayRooms(relay.dataDir));
		const keys = [
			...held.conversations.flatMap((c) => [...c.keys.values()]),
			fromBase64Url(secrets.account)
		];
		// The relay's refusal of the retired room ends it on each device too.
		await expect
			.poll(async () => holdsBytes(await localRecords(page), carrier), { timeout: 30_000 })
			.toBe(false);
		const records = await localRecords(page);
		const local = await openLocal(records, keys, fromBase64Url(secrets.local));
		expect(local.join('\n')).toContain('Ada keeps this');
		expect(local.join('\n')).not.toContain(secret);
		const remote = await openEverything(relayRooms(relay.dataDir), keys);
		expect(remote.join('\n')).toContain('Bob keeps this');
		expect(remote.join('\n')).not.toContain(secret);
	}
	expect(relay.output).not.toContain(secret);
});
