/**
 * `kith` on one data dir, no network: the real binary in child processes.
 */
import { existsSync, statSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
	authorsAndTexts,
	cleanup,
	freeUdpPort,
	kith,
	ServeProcess,
	tempDir,
	until
} from './test-support';

afterAll(cleanup);

describe('kith on a local data dir', { timeout: 120_000 }, () => {
	const root = tempDir();
	const data = join(root, 'alice');

	it('init prints a recovery key and keeps the keys owner-only, encrypted', async () => {
		const init = await kith(['--data', data, 'init', '--name', 'Alice']);
		expect(init.code).toBe(0);
		expect(init.lines).toHaveLength(1);
		expect(init.lines[0]).toMatch(/^[0-9A-Za-z]{4}( [0-9A-Za-z]{4}){5,}$/);
		expect(statSync(data).mode & 0o777).toBe(0o700);
		expect(statSync(join(data, 'device.key')).mode & 0o777).toBe(0o600);
		const again = await kith(['--data', data, 'init', '--name', 'Alice']);
		expect(again.code).toBe(1);
		expect(again.stderr).toContain('already holds an account');
	});

	it('new, send, read and list round trip, in order, with --json', async () => {
		const created = await kith(['--data', data, 'new', 'Garden club']);
		expect(created.code).toBe(0);
		const id = created.lines[0];
		expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
		for (const text of ['first', 'second\twith a tab', 'third\non two lines']) {
			const sent = await kith(['--data', data, 'send', 'Garden club', text]);
			expect(sent.code, sent.stderr).toBe(0);
		}
		const read = await kith(['--data', data, 'read', id!]);
		expect(read.code).toBe(0);
		expect(authorsAndTexts(read.lines)).toEqual([
			'Alice\tfirst',
			'Alice\tsecond\\twith a tab',
			'Alice\tthird\\non two lines'
		]);
		for (const line of read.lines) {
			expect(new Date(line.split('\t')[0]!).toISOString()).toBe(line.split('\t')[0]);
		}
		const json = await kith(['--data', data, '--json', 'read', 'Garden club']);
		expect(json.lines.map((l) => JSON.parse(l).text)).toEqual([
			'first',
			'second\twith a tab',
			'third\non two lines'
		]);
		const list = await kith(['--data', data, 'list']);
		expect(list.lines).toContain(`${id}\tGarden club`);
		expect(list.lines.some((l) => l.endsWith('\tNotes to self'))).toBe(true);
		const listJson = await kith(['--data', data, 'list', '--json']);
		const garden = listJson.lines.map((l) => JSON.parse(l)).find((c) => c.id === id);
		expect(garden).toMatchObject({ name: 'Garden club', members: ['Alice'], messages: 3 });
	});

	it('stores no plaintext: the database holds only envelopes', async () => {
		await kith(['--data', data, 'send', 'Garden club', 'a very secret plaintext marker']);
		const bytes = readFileSync(join(data, 'kith.db'));
		const wal = existsSync(join(data, 'kith.db-wal'))
			? readFileSync(join(data, 'kith.db-wal'))
			: Buffer.alloc(0);
		for (const file of [bytes, wal]) {
			expect(file.includes('very secret plaintext')).toBe(false);
			expect(file.includes('Garden club')).toBe(false);
		}
	});

	it('exit 1: bad arguments and bad input, with a one-line reason', async () => {
		const cases: string[][] = [
			['--data', data, 'frobnicate'],
			['--data', data, 'read'],
			['--data', data, 'read', 'No such conversation'],
			['--data', data, 'send', 'Garden club', '   '],
			['--data', data, 'list', '--timeout', 'soon'],
			['--data', data, '--relay', 'ftp://example.org', 'list'],
			['--data', data, 'join', 'https://example.org/join#garbage'],
			['--data', data, 'invite', 'Notes to self'],
			['--bogus-option']
		];
		for (const args of cases) {
			const result = await kith(args);
			expect(result.code, args.join(' ')).toBe(1);
			expect(result.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
			expect(result.stderr).toMatch(/^kith: /);
		}
	});

	it('exit 3: a missing data dir, and a locked account without its passphrase', async () => {
		const missing = await kith(['--data', join(root, 'nobody'), 'list']);
		expect(missing.code).toBe(3);
		expect(missing.stderr).toContain('kith init');

		const lockedDir = join(root, 'locked');
		const init = await kith(['--data', lockedDir, 'init', '--name', 'Carol'], {
			KITH_PASSPHRASE: 'correct horse'
		});
		expect(init.code).toBe(0);
		const noPassphrase = await kith(['--data', lockedDir, 'list']);
		expect(noPassphrase.code).toBe(3);
		const wrong = await kith(['--data', lockedDir, 'list'], { KITH_PASSPHRASE: 'wrong' });
		expect(wrong.code).toBe(3);
		const right = await kith(['--data', lockedDir, 'list'], { KITH_PASSPHRASE: 'correct horse' });
		expect(right.code).toBe(0);
		expect(right.lines.some((l) => l.endsWith('\tNotes to self'))).toBe(true);
	});

	it('serve prints the WebRTC-Direct addresses browsers dial, the same after a restart', async () => {
		const dir = join(root, 'server');
		expect((await kith(['--data', dir, 'init', '--name', 'Sam'])).code).toBe(0);
		const port = await freeUdpPort();
		const addresses = async () => {
			const serve = new ServeProcess([
				'--data',
				dir,
				'--json',
				'--no-mdns',
				'--listen',
				'/ip4/127.0.0.1/tcp/0',
				'--webrtc-port',
				String(port)
			]);
			await serve.ready;
			await until(() => serve.lines.some((l) => 'browserAddresses' in JSON.parse(l)));
			const line = serve.lines.find((l) => 'browserAddresses' in JSON.parse(l))!;
			expect(serve.stderr).toContain('a browser can connect (Settings → LAN peers) to /ip4/');
			await serve.stop();
			return JSON.parse(line).browserAddresses as string[];
		};
		const first = await addresses();
		expect(first.length).toBeGreaterThan(0);
		for (const address of first) {
			expect(address).toMatch(
				new RegExp(`^/ip4/[\\d.]+/udp/${port}/webrtc-direct/certhash/u[\\w-]+/p2p/12D3KooW\\w+$`)
			);
			expect(address.startsWith('/ip4/0.0.0.0/')).toBe(false);
		}
		expect(first.at(-1)).toMatch(/^\/ip4\/127\./);
		expect(statSync(join(dir, 'p2p.json')).mode & 0o777).toBe(0o600);
		expect(await addresses()).toEqual(first);
	});

	it('--help prints the commands', async () => {
		const help = await kith(['--help']);
		expect(help.code).toBe(0);
		for (const command of [
			'init --name NAME',
			'new NAME',
			'invite CONVERSATION',
			'join INVITE_LINK',
			'list',
			'send CONVERSATION TEXT',
			'read CONVERSATION',
			'serve'
		]) {
			expect(help.stdout).toContain(command);
		}
	});
});
