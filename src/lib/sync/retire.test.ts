/**
 * retireRoom, reportMoved and movedTag against the real relay (sync-server),
 * started in-process on port 0 with a temporary data directory, with
 * RelayConnections in the room to see it retired.
 *
 * The server modules are loaded by path at run time, as in relay.test.ts:
 * they are written for the server's TypeScript settings, so only their shape
 * is declared here.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConversationDoc } from '../conversation';
import { newRoomId, newSecretKey, type RoomId, type SecretKey } from '../crypto';
import { RelayConnection } from './relay-connection';
import { movedTag, reportMoved, RetireError, retireRoom } from './retire';
import { captureLogger, docFor, newDevice, until, WebSocketImpl, write } from './test-support';

// ---- the server, by shape ------------------------------------------------------

interface ServerLike {
	listen(): Promise<{ port: number; url: string }>;
	close(): Promise<void>;
}

const serverSource = (path: string) =>
	fileURLToPath(new URL(`../../../sync-server/src/${path}`, import.meta.url));

const [configModule, serverModule, relayModule] = (await Promise.all([
	import(/* @vite-ignore */ serverSource('config.ts')),
	import(/* @vite-ignore */ serverSource('server.ts')),
	import(/* @vite-ignore */ serverSource('relay/index.ts'))
])) as [
	{ loadConfig(env: Record<string, string>, cwd: string): unknown },
	{ createServer(config: unknown): ServerLike },
	{ attachRelay(server: ServerLike, config: unknown): unknown }
];

const DAY_MS = 86_400_000;
const dirs: string[] = [];
const servers: ServerLike[] = [];
const connections: RelayConnection[] = [];
const docs: ConversationDoc[] = [];

afterEach(async () => {
	for (const connection of connections.splice(0)) connection.destroy();
	for (const cdoc of docs.splice(0)) cdoc.destroy();
	await Promise.all(servers.splice(0).map((server) => server.close()));
	await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function startRelay(): Promise<string> {
	const dir = await mkdtemp(join(tmpdir(), 'kith-retire-client-'));
	dirs.push(dir);
	const config = configModule.loadConfig(
		{ HOST: '127.0.0.1', PORT: '0', KITH_DATA: dir, KITH_STATIC: dir, LOG_LEVEL: 'silent' },
		dir
	);
	const server = serverModule.createServer(config);
	relayModule.attachRelay(server, config);
	servers.push(server);
	return (await server.listen()).url;
}

/** A device connected to the room, which wrote one message into it. */
async function member(relayUrl: string, room: RoomId, key: SecretKey, text: string) {
	const device = await newDevice();
	const cdoc = docFor(room, device);
	docs.push(cdoc);
	const connection = new RelayConnection({
		relayUrl,
		roomId: room,
		cdoc,
		capabilityIkm: key,
		WebSocketImpl,
		logger: captureLogger(),
		networkEvents: null,
		backoff: { initialMs: 50, maxMs: 400 }
	});
	connections.push(connection);
	await write(cdoc, device, key, text);
	await until(() => connection.status === 'connected', 'connected');
	return { cdoc, connection };
}

/** A fetch that records every URL it is asked for, and may rewrite answers. */
function recordingFetch(rewrite?: (url: URL, response: Response) => Promise<Response>) {
	const urls: URL[] = [];
	const impl = (async (input: string | URL | Request, init?: RequestInit) => {
		const url = new URL(typeof input === 'string' ? input : input.toString());
		urls.push(url);
		const response = await fetch(url, init);
		return rewrite ? rewrite(url, response) : response;
	}) as typeof fetch;
	return { impl, urls };
}

async function rejection(promise: Promise<unknown>): Promise<RetireError> {
	const err = await promise.then(
		() => undefined,
		(e: unknown) => e
	);
	expect(err).toBeInstanceOf(Error);
	expect((err as Error).name).toBe(RetireError.NAME);
	return err as RetireError;
}

describe('movedTag', () => {
	it('is base64url(SHA-256("kith/moved\\0" || room || "\\0" || device))', async () => {
		const room = newRoomId();
		const expected = createHash('sha256')
			.update(`kith/moved\0${room}\0device-1`)
			.digest('base64url');
		expect(await movedTag(room, 'device-1')).toBe(expected);
		expect(expected).toMatch(/^[A-Za-z0-9_-]{43}$/);
		// One device's tags differ from room to room; a room's from device to device.
		expect(await movedTag(newRoomId(), 'device-1')).not.toBe(expected);
		expect(await movedTag(room, 'device-2')).not.toBe(expected);
	});
});

describe('retireRoom and reportMoved against the real relay', () => {
	it('retire with two tags, both move: the room is retired and its connections refused', async () => {
		const relayUrl = await startRelay();
		const room = newRoomId();
		const key = newSecretKey();
		const alice = await member(relayUrl, room, key, 'from alice');
		const bob = await member(relayUrl, room, key, 'from bob');
		await until(() => alice.cdoc.size === 2 && bob.cdoc.size === 2, 'both messages everywhere');

		const tags = [await movedTag(room, 'alice-device'), await movedTag(room, 'bob-device')];
		const deadline = Date.now() + DAY_MS;
		expect(await retireRoom(relayUrl, room, key, tags, deadline)).toEqual({
			retired: false,
			retainUntil: deadline,
			devices: 2,
			pending: 2
		});
		expect(await reportMoved(relayUrl, room, key, tags[0]!)).toMatchObject({
			retired: false,
			pending: 1
		});
		// Not yet: the room still serves both.
		expect(alice.connection.status).toBe('connected');
		expect(alice.connection.lastRefusal).toBeNull();

		expect(await reportMoved(relayUrl, room, key, tags[1]!)).toEqual({ retired: true });
		for (const { connection } of [alice, bob]) {
			await until(() => connection.lastRefusal !== null, 'the denial');
			expect(connection.lastRefusal).toMatchObject({
				kind: 'denied',
				code: 'room-retired',
				final: true
			});
			await until(() => connection.status === 'offline', 'offline');
		}
		// The local copies stay; the relay's is gone.
		expect(alice.cdoc.size).toBe(2);

		// Already retired (410) counts as done, for both calls.
		expect(await reportMoved(relayUrl, room, key, tags[1]!)).toEqual({ retired: true });
		expect(await retireRoom(relayUrl, room, key, tags, deadline)).toEqual({ retired: true });
	});

	it('a deadline in the past retires at once; the relay clamps a far one', async () => {
		const relayUrl = await startRelay();
		const key = newSecretKey();
		const far = newRoomId();
		await member(relayUrl, far, key, 'kept a while');
		const tag = await movedTag(far, 'device');
		const before = Date.now();
		const planned = await retireRoom(relayUrl, far, key, [tag], before + 3650 * DAY_MS);
		expect(planned.retired).toBe(false);
		expect(planned.retainUntil).toBeGreaterThanOrEqual(before + 30 * DAY_MS);
		expect(planned.retainUntil).toBeLessThanOrEqual(Date.now() + 30 * DAY_MS);

		const past = newRoomId();
		const { connection } = await member(relayUrl, past, key, 'gone soon');
		const tags = [await movedTag(past, 'a'), await movedTag(past, 'b')];
		expect(await retireRoom(relayUrl, past, key, tags, Date.now() - 1)).toEqual({ retired: true });
		await until(() => connection.lastRefusal?.code === 'room-retired', 'the denial');
	});

	it('keeps the relay URL’s path prefix and retries once with a fresh challenge', async () => {
		const relayUrl = await startRelay();
		const room = newRoomId();
		const key = newSecretKey();
		await member(relayUrl, room, key, 'hello');
		// A relay behind /kith/: the stand-in fetch strips the prefix on the way.
		let spoiled = false;
		const { impl, urls } = recordingFetch(async (url, response) => {
			if (url.pathname.endsWith('/sync/challenge') && !spoiled) {
				spoiled = true; // the first challenge is not one the relay issued
				return Response.json({ nonce: 'AAAA', expiresAt: 0 });
			}
			return response;
		});
		const prefixed = (async (input: string | URL | Request, init?: RequestInit) => {
			const url = new URL(typeof input === 'string' ? input : input.toString());
			expect(url.pathname.startsWith('/kith/sync/')).toBe(true);
			url.pathname = url.pathname.slice('/kith'.length);
			return impl(url, init);
		}) as typeof fetch;
		const tag = await movedTag(room, 'device');
		expect(await reportMoved(`${relayUrl}/kith`, room, key, tag, prefixed)).toEqual({
			retired: false,
			retainUntil: null,
			devices: null,
			pending: null
		});
		expect(urls.map((u) => u.pathname)).toEqual([
			'/sync/challenge',
			'/sync/moved',
			'/sync/challenge',
			'/sync/moved'
		]);
		expect(urls.every((u) => u.searchParams.get('room') === room)).toBe(true);
		// With a trailing slash too.
		expect((await retireRoom(`${relayUrl}/kith/`, room, key, [tag], 0, prefixed)).retired).toBe(
			true
		);
	});

	it('throws a RetireError naming the refusal', async () => {
		const relayUrl = await startRelay();
		const room = newRoomId();
		const key = newSecretKey();
		await member(relayUrl, room, key, 'hello');
		const tag = await movedTag(room, 'device');

		// Another key: the room is registered with another capability.
		const wrong = await rejection(reportMoved(relayUrl, room, newSecretKey(), tag));
		expect({ status: wrong.status, code: wrong.code }).toEqual({
			status: 403,
			code: 'wrong-capability'
		});
		expect(wrong.message).toContain('403 wrong-capability');

		// A room the relay never held.
		const unknown = await rejection(retireRoom(relayUrl, newRoomId(), key, [tag], 0));
		expect({ status: unknown.status, code: unknown.code }).toEqual({
			status: 404,
			code: 'unknown-room'
		});

		// Bad arguments never reach the relay.
		const { impl, urls } = recordingFetch();
		for (const call of [
			retireRoom(relayUrl, room, key, [], 0, impl),
			retireRoom(relayUrl, room, key, [tag, tag], 0, impl),
			retireRoom(relayUrl, room, key, ['not-a-tag'], 0, impl),
			retireRoom(relayUrl, room, key, [tag], -1, impl),
			retireRoom(relayUrl, room, key, [tag], 1.5, impl),
			reportMoved(relayUrl, room, key, `${tag}A`, impl),
			reportMoved(relayUrl, 'not-a-room', key, tag, impl)
		]) {
			await rejection(call);
		}
		expect(urls).toEqual([]);

		// A relay that cannot be reached.
		const down = await rejection(reportMoved('http://127.0.0.1:1', room, key, tag));
		expect(down.status).toBeUndefined();
		expect(down.message).toContain('cannot be reached');
	});
});
