import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanUp, spawnMain } from '../relay/test-support.ts';
import { removeTempDirs, tempDir } from '../test-helpers.ts';
import { loadVapidKeys, VAPID_FILE, VapidKeysError } from './vapid.ts';

afterEach(async () => {
	await cleanUp();
	await removeTempDirs();
});

describe('loadVapidKeys', () => {
	it('makes a key pair on first start and keeps it', async () => {
		const dir = await tempDir();
		const keys = loadVapidKeys(dir);
		expect(Buffer.from(keys.publicKey, 'base64url')).toHaveLength(65);
		expect(Buffer.from(keys.privateKey, 'base64url')).toHaveLength(32);
		expect(loadVapidKeys(dir)).toEqual(keys);
	});

	it.each([
		['not JSON', '{'],
		['wrong shape', '{"publicKey":"a"}'],
		['not base64url', '{"publicKey":"!!","privateKey":"!!"}'],
		['short key', JSON.stringify({ publicKey: 'AAAA', privateKey: 'AAAA' })]
	])('refuses a damaged file (%s), saying what to do', async (_what, text) => {
		const dir = await tempDir();
		await writeFile(join(dir, VAPID_FILE), text);
		expect(() => loadVapidKeys(dir)).toThrow(VapidKeysError);
		expect(() => loadVapidKeys(dir)).toThrow(/vapid\.json is damaged.*delete it/);
		expect(await readFile(join(dir, VAPID_FILE), 'utf8')).toBe(text);
	});

	it('refuses keys that do not belong together', async () => {
		const a = loadVapidKeys(await tempDir());
		const b = loadVapidKeys(await tempDir());
		const dir = await tempDir();
		await writeFile(
			join(dir, VAPID_FILE),
			JSON.stringify({ publicKey: a.publicKey, privateKey: b.privateKey })
		);
		expect(() => loadVapidKeys(dir)).toThrow(/do not belong together/);
	});

	it('stops the server at start-up with a clear error when vapid.json is damaged', async () => {
		const dir = await tempDir();
		await writeFile(join(dir, VAPID_FILE), '{"publicKey":');
		const main = spawnMain({ KITH_DATA: dir });
		await expect(main.listening).rejects.toThrow(/vapid\.json is damaged/);
		await main.exited;
		expect(main.child.exitCode).toBe(1);
		expect(main.output().stderr).toMatch(/vapid\.json is damaged \(not JSON\)/);
	}, 30_000);
});
