/**
 * RelayConnection against the real relay (sync-server), started in-process on
 * port 0 with a temporary data directory: convergence both ways, "Sent" from
 * acknowledgements, refusal of a client without the capability, and a relay
 * restart on the same data directory while both sides keep writing.
 *
 * The server modules are loaded by path at run time: they are written for the
 * server's TypeScript settings (`.ts` import paths), which the app's compiler
 * settings do not accept, so only their shape is declared here.
 */
import 'fake-indexeddb/auto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { DocSession } from '../app/doc-session';
import { TabCoordinator } from '../app/tabs';
import { ENVELOPE_MAP, type ConversationDoc } from '../conversation';
import { newRoomId, newSecretKey, utf8Encode, type RoomId, type SecretKey } from '../crypto';
import { clientIdFor, parseFrame, sealEnvelope } from '../envelope';
import { RelayConnection, type RelayConnectionOptions } from './relay-connection';
import { isSentBy } from './status';
import {
	captureLogger,
	docFor,
	ids,
	newDevice,
	sleep,
	until,
	WebSocketImpl,
	write,
	type Device
} from './test-support';

// ---- the server, by shape ------------------------------------------------------

interface ServerLike {
	listen(): Promise<{ port: number; url: string }>;
	close(): Promise<void>;
}
interface ServerModules {
	loadConfig(env: Record<string, string | undefined>, cwd?: string): unknown;
	createServer(config: unknown): ServerLike;
	attachRelay(server: ServerLike, config: unknown): unknown;
}

const serverSource = (path: string) =>
	fileURLToPath(new URL(`../../../sync-server/src/${path}`, import.meta.url));

async function loadServer(): Promise<ServerModules> {
	const [config, server, relay] = (await Promise.all([
		import(/* @vite-ignore */ serverSource('config.ts')),
		import(/* @vite-ignore */ serverSource('server.ts')),
		import(/* @vite-ignore */ serverSource('relay/index.ts'))
	])) as [
		Pick<ServerModules, 'loadConfig'>,
		Pick<ServerModules, 'createServer'>,
		Pick<ServerModules, 'attachRelay'>
	];
	return {
		loadConfig: config.loadConfig,
		createServer: server.createServer,
		attachRelay: relay.attachRelay
	};
}

// A relay that fails to load fails these tests; it never skips them.
const modules = await loadServer();

interface RunningRelay {
	url: string;
	port: number;
	dataDir: string;
	stop(): Promise<void>;
}

const dirs: string[] = [];
const relays: RunningRelay[] = [];

async function startRelay(
	dataDir?: string,
	port = 0,
	env: Record<string, string> = {}
): Promise<RunningRelay> {
	const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'kith-sync-relay-')));
	if (!dataDir) dirs.push(dir);
	const config = modules.loadConfig(
		{
			HOST: '127.0.0.1',
			PORT: String(port),
			KITH_DATA: dir,
			KITH_STATIC: dir,
			LOG_LEVEL: 'silent',
			...env
		},
		dir
	);
	const server = modules.createServer(config);
	modules.attachRelay(server, config);
	const { port: bound, url } = await server.listen();
	let stopped = false;
	const running: RunningRelay = {
		url,
		port: bound,
		dataDir: dir,
		stop: async () => {
			if (stopped) return;
			stopped = true;
			await server.close();
		}
	};
	relays.push(running);
	return running;
}

// ---- clients -----------------------------------------------------------------

const connections: RelayConnection[] = [];
const docs: ConversationDoc[] = [];

afterEach(async () => {
	for (const connection of connections.splice(0)) connection.destroy();
	for (const cdoc of docs.splice(0)) cdoc.destroy();
	await Promise.all(relays.splice(0).map((relay) => relay.stop()));
	await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

interface Client {
	device: Device;
	cdoc: ConversationDoc;
	connection: RelayConnection;
	logger: ReturnType<typeof captureLogger>;
}

async function client(
	relay: RunningRelay,
	room: RoomId,
	ikm: SecretKey,
	options: Partial<RelayConnectionOptions> & { device?: Device; cdoc?: ConversationDoc } = {}
): Promise<Client> {
	const device = options.device ?? (await newDevice());
	const cdoc = options.cdoc ?? docFor(room, device);
	docs.push(cdoc);
	const logger = captureLogger();
	const connection = new RelayConnection({
		relayUrl: relay.url,
		roomId: room,
		cdoc,
		capabilityIkm: ikm,
		WebSocketImpl,
		logger,
		networkEvents: null,
		backoff: { initialMs: 50, maxMs: 400 },
		...options
	});
	connections.push(connection);
	return { device, cdoc, connection, logger };
}

const connected = (c: Client) => c.connection.status === 'connected';

/**
 * Whether every envelope `of` wrote is acknowledged to `c`. Acknowledgements
 * go to the connection that sent an update (plus the relay's state at
 * admission), so a device knows "Sent" for its own envelopes.
 */
function allSent(c: Client, of: Client = c): boolean {
	return [...of.cdoc.entries()]
		.filter((entry) => clientIdFor(parseFrame(entry.bytes).signer) === of.device.client)
		.every((entry) => isSentBy(c.connection.relayState, entry.bytes));
}

/** A relay started with `args`, and a new room's id and key. */
async function roomOnRelay(...args: Parameters<typeof startRelay>) {
	return { relay: await startRelay(...args), room: newRoomId(), key: newSecretKey() };
}

/** Alice and Bob, each a device of their own, connected to one new room. */
async function aliceAndBob(...args: Parameters<typeof startRelay>) {
	const { relay, room, key } = await roomOnRelay(...args);
	const alice = await client(relay, room, key);
	const bob = await client(relay, room, key);
	await until(() => connected(alice) && connected(bob), 'both connected');
	return { relay, room, key, alice, bob };
}

describe('RelayConnection against the real relay', () => {
	it('two devices of one conversation converge both ways', async () => {
		const { relay, room, key } = await roomOnRelay();
		const alice = await client(relay, room, key);
		await write(alice.cdoc, alice.device, key, 'a1', 'a2');
		await until(() => connected(alice), 'alice connected');

		// Catch-up: bob joins later and gets what alice wrote before.
		const bob = await client(relay, room, key);
		await until(() => bob.cdoc.size === 2, 'bob caught up');
		await until(() => bob.connection.synced, 'bob synced');

		// Live, both ways.
		await write(bob.cdoc, bob.device, key, 'b1');
		await until(() => alice.cdoc.size === 3, 'alice got b1');
		await write(alice.cdoc, alice.device, key, 'a3');
		await until(() => bob.cdoc.size === 4, 'bob got a3');
		expect(ids(alice.cdoc)).toEqual(ids(bob.cdoc));
		expect(
			alice.logger.lines.filter((line) => line.level !== 'debug' && line.level !== 'info')
		).toEqual([]);
	});

	it('acknowledgements mark envelopes as sent', async () => {
		const { relay, room, key } = await roomOnRelay();
		const alice = await client(relay, room, key);
		const entries = await write(alice.cdoc, alice.device, key, 'one', 'two');
		for (const entry of entries)
			expect(isSentBy(alice.connection.relayState, entry.bytes)).toBe(false);
		await until(() => allSent(alice), 'acknowledged');

		await until(() => connected(alice), 'alice connected');
		const [later] = await write(alice.cdoc, alice.device, key, 'three');
		expect(isSentBy(alice.connection.relayState, later!.bytes)).toBe(false);
		await until(() => isSentBy(alice.connection.relayState, later!.bytes), 'three acknowledged');

		// A second device learns from the relay's state at admission that they are stored.
		const bob = await client(relay, room, key);
		await until(() => connected(bob) && bob.cdoc.size === 3, 'bob caught up');
		expect(allSent(bob, alice)).toBe(true);
	});

	it('refuses a client without the capability; its doc receives nothing', async () => {
		const { relay, room, key } = await roomOnRelay();
		const alice = await client(relay, room, key); // claims the room
		await write(alice.cdoc, alice.device, key, 'members only');
		await until(() => allSent(alice), 'stored');

		const mallory = await client(relay, room, newSecretKey());
		const [forged] = await write(mallory.cdoc, mallory.device, key, 'let me in');
		await until(() => mallory.connection.lastRefusal !== null, 'the denial');
		expect(mallory.connection.lastRefusal).toMatchObject({
			kind: 'denied',
			code: 'wrong-capability',
			final: true
		});
		expect(mallory.connection.status).toBe('offline');
		await sleep(500); // well past several backoff periods: no retry
		expect(mallory.connection.status).toBe('offline');
		expect(ids(mallory.cdoc)).toEqual([forged!.id]);
		expect(alice.cdoc.has(forged!.id)).toBe(false);
		expect(alice.cdoc.size).toBe(1);
	});

	it('surfaces the relay’s refusal of an update that breaks the doc rules', async () => {
		const { room, key, alice, bob } = await aliceAndBob();

		// Alice's doc is made to carry bob's envelope under alice's client id (as a
		// buggy or hostile client would send it): the relay refuses it whole.
		const sealed = await sealEnvelope({
			clock: 0,
			roomId: room,
			epoch: 0,
			key,
			signer: bob.device.signer,
			plaintext: utf8Encode('not yours')
		});
		const raw = new Y.Doc({ gc: false });
		raw.clientID = alice.device.client;
		raw.getMap(ENVELOPE_MAP).set(sealed.id, sealed.bytes);
		Y.applyUpdate(alice.cdoc.doc, Y.encodeStateAsUpdate(raw), 'test');
		await until(() => alice.connection.lastRefusal !== null, 'the refusal');
		expect(alice.connection.lastRefusal).toMatchObject({
			kind: 'refused',
			code: 'doc-rules:client-mismatch'
		});
		await sleep(200);
		expect(bob.cdoc.size).toBe(0);
		expect(connected(alice)).toBe(true);
	});

	it('reconnects after a relay restart; what was written offline goes out', async () => {
		const { relay, room, key } = await roomOnRelay();
		const alice = await client(relay, room, key);
		const bob = await client(relay, room, key);
		await write(alice.cdoc, alice.device, key, 'before');
		await until(() => bob.cdoc.size === 1 && allSent(alice), 'first exchange');

		await relay.stop();
		await until(() => !connected(alice) && !connected(bob), 'both disconnected');
		await write(alice.cdoc, alice.device, key, 'alice offline 1', 'alice offline 2');
		await write(bob.cdoc, bob.device, key, 'bob offline');
		await sleep(300); // a few failed attempts against a relay that is down

		await startRelay(relay.dataDir, relay.port);
		await until(() => connected(alice) && connected(bob), 'both reconnected', 15_000);
		await until(() => alice.cdoc.size === 4 && bob.cdoc.size === 4, 'converged', 15_000);
		expect(ids(alice.cdoc)).toEqual(ids(bob.cdoc));
		await until(() => allSent(alice) && allSent(bob), 'everything acknowledged');
	});

	it('a device that lost its storage gets its own envelopes back and writes on', async () => {
		const { relay, room, key } = await roomOnRelay();
		const alice = await client(relay, room, key);
		await write(alice.cdoc, alice.device, key, 'one', 'two');
		await until(() => allSent(alice), 'stored');
		alice.connection.destroy();

		const restored = await client(relay, room, key, { device: alice.device });
		await until(() => restored.cdoc.size === 2, 'history back');
		expect(restored.cdoc.nextClock()).toBe(2);
		await write(restored.cdoc, alice.device, key, 'three');
		await until(() => allSent(restored), 'the new envelope stored');
		expect(restored.connection.lastRefusal).toBeNull();
	});

	it('sends a backlog bigger than the relay’s frame limit in pieces', async () => {
		const { relay, room, key } = await roomOnRelay();
		const alice = await client(relay, room, key);
		await until(() => connected(alice), 'alice connected');
		alice.connection.destroy();
		// ~3 MiB written offline: 48 envelopes of 64 KiB, more than one 2 MiB frame.
		const texts = Array.from({ length: 48 }, (_, i) => `${i} `.padEnd(60_000, 'x'));
		await write(alice.cdoc, alice.device, key, ...texts);
		const again = await client(relay, room, key, { device: alice.device, cdoc: alice.cdoc });
		await until(() => allSent(again), 'the backlog acknowledged', 20_000);
		expect(again.connection.lastRefusal).toBeNull();
		const bob = await client(relay, room, key);
		await until(() => bob.cdoc.size === 48, 'bob has all of it', 20_000);
		expect(ids(bob.cdoc)).toEqual(ids(alice.cdoc));
	});

	it('sends again what a rate-limited relay dropped', async () => {
		const { key, alice, bob } = await aliceAndBob(undefined, 0, {
			KITH_RATE_MSGS_PER_SEC: '5'
		});
		for (let i = 0; i < 40; i++) await write(alice.cdoc, alice.device, key, `burst ${i}`);
		await until(() => alice.connection.lastRefusal?.code === 'rate-limited', 'the refusal');
		await until(() => allSent(alice), 'all acknowledged', 20_000);
		await until(() => bob.cdoc.size === 40, 'bob has all of it', 20_000);
		expect(ids(bob.cdoc)).toEqual(ids(alice.cdoc));
	});

	it('sends everything again after a rate limit that went on past its one notice a second', async () => {
		// Two frames a second: writing for three seconds runs into the limit again
		// and again, and the relay names it at most once a second (the frames in
		// between are dropped unsaid). A resend that met the limit must be tried again.
		const { key, alice, bob } = await aliceAndBob(undefined, 0, { KITH_RATE_MSGS_PER_SEC: '2' });
		for (let i = 0; i < 20; i++) {
			await write(alice.cdoc, alice.device, key, `steady ${i}`);
			await sleep(150);
		}
		await until(() => alice.connection.lastRefusal?.code === 'rate-limited', 'the refusal');
		await until(() => allSent(alice), 'all acknowledged', 30_000);
		await until(() => bob.cdoc.size === 20, 'bob has all of it', 30_000);
	}, 60_000);

	it('names frame-too-large once per refused frame, whether the relay or its WebSocket layer cut it off', async () => {
		// 1,024 bytes per frame: the relay reads frames up to twice that and refuses
		// them by name; its WebSocket layer cuts off anything larger with close 1009.
		const env = { KITH_MAX_FRAME_BYTES: '1024' };
		const closes = (c: Client) =>
			c.logger.lines.filter((line) => line.message === 'disconnected from the relay').length;
		/** For each refusal, how many closes came before it. */
		const watch = (c: Client) => {
			const seen: number[] = [];
			c.connection.on('refused', (refusal) => {
				expect(refusal).toMatchObject({ kind: 'refused', code: 'frame-too-large', final: false });
				seen.push(closes(c));
			});
			return seen;
		};

		// A padded 1,024-byte plaintext: a frame between 1 and 2 KiB, refused by the relay.
		const first = await aliceAndBob(undefined, 0, env);
		const named = watch(first.alice);
		await write(first.alice.cdoc, first.alice.device, first.key, 'm'.repeat(900));
		await until(() => closes(first.alice) >= 3, 'three refusals and closes');
		first.alice.connection.destroy();
		// One refusal per close (the connection tries again): the close does not repeat it.
		expect(named.slice(0, 3)).toEqual([0, 1, 2]);

		// A 4 KiB one: cut off before the relay reads it, known only by the close code.
		const second = await aliceAndBob(undefined, 0, env);
		const cut = watch(second.alice);
		await write(second.alice.cdoc, second.alice.device, second.key, 'x'.repeat(3000));
		await until(() => cut.length >= 2, 'refusals from the close code');
		expect(cut.slice(0, 2)).toEqual([0, 1]);
		expect(second.alice.connection.lastRefusal?.message).toMatch(/too large/);
		// Bob, in the same room, is not disturbed.
		expect(connected(second.bob)).toBe(true);
	});

	it('a burst of messages, each with its notification and typing state, stays within the relay’s rate limit', async () => {
		const { room, key, alice, bob } = await aliceAndBob();
		const count = 500;
		const base = alice.cdoc.nextClock();
		const entries = await Promise.all(
			Array.from({ length: count }, (_, i) =>
				sealEnvelope({
					clock: base + i,
					roomId: room,
					epoch: 0,
					key,
					signer: alice.device.signer,
					plaintext: utf8Encode(`burst ${i}`)
				})
			)
		);
		// Three frames a message, all at once: 1,500 frames, past the relay's
		// burst of 400 (and its 200 a second) if each went alone.
		for (const [i, entry] of entries.entries()) {
			alice.connection.setLocalState(utf8Encode(`typing ${i}`));
			alice.cdoc.insertLocal([entry]);
			alice.connection.notify(utf8Encode(`push ${i}`));
		}
		await until(() => allSent(alice), 'all acknowledged', 20_000);
		await until(() => bob.cdoc.size === count, 'bob has all of it', 20_000);
		expect(alice.connection.lastRefusal).toBeNull();
	});

	it('relays encrypted awareness states between devices', async () => {
		const { relay, room, key, alice, bob } = await aliceAndBob();
		const seen: Array<Map<number, Uint8Array>> = [];
		bob.connection.on('awareness', ({ states }) => seen.push(new Map(states)));

		alice.connection.setLocalState(new Uint8Array([1, 2, 3]));
		await until(() => seen.length === 1, 'bob sees alice');
		expect(seen[0]).toEqual(new Map([[alice.device.client, new Uint8Array([1, 2, 3])]]));

		alice.connection.setLocalState(null);
		await until(() => seen.length === 2, 'bob sees alice leave');
		expect(seen[1]?.size).toBe(0);

		// A newcomer hears the states of those already in the room.
		bob.connection.setLocalState(new Uint8Array([7]));
		const carol = await client(relay, room, key);
		await until(() => carol.connection.remoteStates().size === 1, 'carol sees bob', 5000);
		expect(carol.connection.remoteStates().get(bob.device.client)).toEqual(new Uint8Array([7]));
	});

	it('DocSession.commitRemoteUpdate stores relay updates and tells the other tabs', async () => {
		const { relay, room, key } = await roomOnRelay();
		const me = await newDevice();
		const profile = `profile-${room}`;
		// Node has BroadcastChannel and no Web Locks: each coordinator leads on its
		// own; the second stands in for another tab that only listens.
		const leaderTabs = new TabCoordinator(profile);
		const otherTab = new TabCoordinator(profile);
		await leaderTabs.start();
		const heard: Uint8Array[] = [];
		otherTab.onUpdate((r, update) => {
			if (r === room) heard.push(update);
		});
		const session = new DocSession({ roomId: room, clientId: me.client, tabs: leaderTabs });
		await session.loaded;
		const sources: string[] = [];
		session.onEntries((_entries, source) => sources.push(source));
		const mine = await client(relay, room, key, {
			device: me,
			cdoc: session.doc,
			onRemoteApplied: (update) => session.commitRemoteUpdate(update)
		});
		const bob = await client(relay, room, key);
		await write(bob.cdoc, bob.device, key, 'from bob');
		await until(() => heard.length === 1, 'the other tab heard of it');
		expect(session.doc.size).toBe(1);
		expect(sources).toEqual(['remote']);
		expect(mine.connection.status).toBe('connected');

		// What the other tab heard applies cleanly to a replica, and it is on disk.
		const replica = docFor(room, await newDevice());
		docs.push(replica);
		await replica.applyRemote(heard[0]!, 'tab');
		expect(ids(replica)).toEqual(ids(bob.cdoc));
		mine.connection.destroy();
		await session.close();
		const reopened = new DocSession({ roomId: room, clientId: me.client, tabs: leaderTabs });
		await reopened.loaded;
		expect(ids(reopened.doc)).toEqual(ids(bob.cdoc));
		await reopened.close();
		leaderTabs.close();
		otherTab.close();
	});
});
