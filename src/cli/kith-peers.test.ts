/**
 * `kith` peers talking: two `kith serve` processes find each other by mDNS
 * (no addresses given) inside a network namespace the test makes (only a
 * loopback interface: no multicast leaves the machine), one invites, the
 * other joins, and messages go both ways; a third peer joins later and
 * receives the whole history. Then a CLI peer and the real relay
 * (sync-server in its own process) interoperate with no p2p path at all.
 *
 * Namespaces need root. Where there is none the LAN test is skipped with a
 * line saying why, except in CI (CI set), where that is a failure.
 */
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { RelayProcess } from '../../tests/e2e/support/relay-process';
import {
	authorsAndTexts,
	cleanup,
	kith as kithHere,
	Netns,
	ServeProcess,
	tempDir,
	until
} from './test-support';

const LOOPBACK = ['--listen', '/ip4/127.0.0.1/tcp/0'];

afterAll(cleanup);

async function account(dir: string, name: string): Promise<void> {
	const init = await kith(['--data', dir, 'init', '--name', name]);
	expect(init.code, init.stderr).toBe(0);
}

const noNamespaces = Netns.unavailable();
if (noNamespaces !== null && !process.env.CI) {
	console.warn(`kith-peers: LAN tests skipped: ${noNamespaces}`);
}
/** In CI the LAN tests must run: a missing capability fails them. */
const lanTests = noNamespaces !== null && !process.env.CI ? describe.skip : describe;

/** The LAN: every kith process of a test runs in its namespace. */
let lan: Netns | undefined;
const kith = (args: string[]) => kithHere(args, {}, lan);
const serve = (args: string[]) => new ServeProcess(args, {}, lan);

lanTests('two kith serve peers on one LAN, no relay', { timeout: 240_000 }, () => {
	afterEach(async () => {
		await cleanup();
		lan = undefined;
	});

	it('invite, join, messages both ways, a late third peer gets the history', async () => {
		lan = Netns.create();
		const root = tempDir();
		const alice = join(root, 'alice');
		const bob = join(root, 'bob');
		const carol = join(root, 'carol');
		await Promise.all([account(alice, 'Alice'), account(bob, 'Bob'), account(carol, 'Carol')]);
		const created = await kith(['--data', alice, 'new', 'Picnic']);
		const id = created.lines[0]!;
		await kith(['--data', alice, 'send', 'Picnic', 'before anyone joined']);

		const aliceServe = serve(['--data', alice, ...LOOPBACK]);
		const bobServe = serve(['--data', bob, ...LOOPBACK]);
		await Promise.all([aliceServe.ready, bobServe.ready]);

		// Other commands on a served dir go through its socket.
		const invite = await kith([
			'--data',
			alice,
			'invite',
			'Picnic',
			'--app-url',
			'https://kith.example'
		]);
		expect(invite.code, invite.stderr).toBe(0);
		const link = invite.lines[0]!;
		expect(link).toMatch(/^https:\/\/kith\.example\/join#.+/);

		const joined = await kith(['--data', bob, 'join', link, '--timeout', '60']);
		expect(joined.code, joined.stderr).toBe(0);
		expect(joined.lines).toEqual([id]);
		expect(joined.stderr).toContain('Waiting for a member to let you in to "Picnic"');

		const fromBob = await kith(['--data', bob, 'send', id, 'hello from Bob', '--timeout', '30']);
		expect(fromBob.code, fromBob.stderr).toBe(0);
		await until(() => aliceServe.lines.some((l) => l.endsWith('\tBob\thello from Bob')));

		const fromAlice = await kith([
			'--data',
			alice,
			'send',
			'Picnic',
			'hello from Alice',
			'--timeout',
			'30'
		]);
		expect(fromAlice.code, fromAlice.stderr).toBe(0);
		await until(() => bobServe.lines.some((l) => l.endsWith('\tAlice\thello from Alice')));

		const expected = [
			'Alice\tbefore anyone joined',
			'Bob\thello from Bob',
			'Alice\thello from Alice'
		];
		for (const dir of [alice, bob]) {
			const read = await kith(['--data', dir, 'read', 'Picnic']);
			expect(authorsAndTexts(read.lines)).toEqual(expected);
		}

		// A third peer, later, with a one-off join (no serve of its own): the whole history.
		const late = await kith(['--data', carol, 'join', link, '--timeout', '60', ...LOOPBACK]);
		expect(late.code, late.stderr).toBe(0);
		const carolRead = await kith(['--data', carol, 'read', 'Picnic']);
		expect(authorsAndTexts(carolRead.lines)).toEqual(expected);
		const members = await kith(['--data', carol, 'list', '--json']);
		const picnic = members.lines.map((l) => JSON.parse(l)).find((c) => c.id === id);
		expect(picnic.members.sort()).toEqual(['Alice', 'Bob', 'Carol']);

		expect(await aliceServe.stop()).toBe(0);
		expect(await bobServe.stop()).toBe(0);
	});

	it('exit 2 when nobody is reachable: the message is stored and goes out later', async () => {
		lan = Netns.create();
		const root = tempDir();
		const alice = join(root, 'alice');
		const bob = join(root, 'bob');
		await Promise.all([account(alice, 'Alice'), account(bob, 'Bob')]);
		await kith(['--data', alice, 'new', 'Later']);
		const aliceServe = serve(['--data', alice, ...LOOPBACK]);
		await aliceServe.ready;
		const link = (await kith(['--data', alice, 'invite', 'Later'])).lines[0]!;
		const joined = await kith(['--data', bob, 'join', link, '--timeout', '60', ...LOOPBACK]);
		expect(joined.code, joined.stderr).toBe(0);
		await aliceServe.stop();

		const sent = await kith([
			'--data',
			bob,
			'send',
			'Later',
			'while Alice is away',
			'--timeout',
			'3',
			...LOOPBACK
		]);
		expect(sent.code).toBe(2);
		expect(sent.stderr).toContain('stored');
		expect(authorsAndTexts((await kith(['--data', bob, 'read', 'Later'])).lines)).toEqual([
			'Bob\twhile Alice is away'
		]);

		// Both come online: the stored message goes out.
		const again = serve(['--data', alice, ...LOOPBACK]);
		const bobServe = serve(['--data', bob, ...LOOPBACK]);
		await Promise.all([again.ready, bobServe.ready]);
		await until(() => again.lines.some((l) => l.endsWith('\tBob\twhile Alice is away')), 60_000);
	});
});

describe('a kith peer and the real relay', { timeout: 240_000 }, () => {
	it('joins and exchanges messages through the relay only (no mDNS)', async () => {
		const relay = new RelayProcess();
		await relay.start();
		try {
			const root = tempDir();
			const alice = join(root, 'alice');
			const bob = join(root, 'bob');
			await Promise.all([account(alice, 'Alice'), account(bob, 'Bob')]);
			await kith(['--data', alice, 'new', 'Relayed']);
			const relayArgs = ['--relay', relay.origin, '--no-mdns', ...LOOPBACK];
			const aliceServe = new ServeProcess(['--data', alice, ...relayArgs]);
			await aliceServe.ready;
			const invite = await kith(['--data', alice, '--relay', relay.origin, 'invite', 'Relayed']);
			const link = invite.lines[0]!;
			// The link points at the relay (which serves the app).
			expect(link.startsWith(`${relay.origin}/join#`)).toBe(true);

			const joined = await kith(['--data', bob, 'join', link, '--timeout', '60', ...relayArgs]);
			expect(joined.code, joined.stderr).toBe(0);
			const sent = await kith([
				'--data',
				bob,
				'send',
				'Relayed',
				'via the relay',
				'--timeout',
				'30',
				...relayArgs
			]);
			expect(sent.code, sent.stderr).toBe(0);
			await until(() => aliceServe.lines.some((l) => l.endsWith('\tBob\tvia the relay')));

			const reply = await kith([
				'--data',
				alice,
				'send',
				'Relayed',
				'relay reply',
				'--timeout',
				'30'
			]);
			expect(reply.code, reply.stderr).toBe(0);
			await aliceServe.stop();
			// Alice is gone: Bob reads the reply from the relay.
			const read = await kith(['--data', bob, 'read', 'Relayed', ...relayArgs]);
			expect(authorsAndTexts(read.lines)).toEqual(['Bob\tvia the relay', 'Alice\trelay reply']);
			// The relay holds no plaintext.
			expect(relay.output).not.toContain('via the relay');
		} finally {
			await relay.stop();
		}
	});
});
