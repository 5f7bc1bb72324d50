/**
 * The server's libp2p node with real Node peers over WebSockets: `/p2p/info`
 * says how to reach it, `/kith/meet` introduces peers registered under the
 * same tag (and only those), and junk on the meet protocol closes that
 * stream, never the node.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { multiaddr } from '@multiformats/multiaddr';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameStream } from '../../../src/lib/p2p/frame-stream.ts';
import {
	KITH_MEET_PROTOCOL,
	MAX_MEET_FRAME_BYTES,
	meetTag,
	readMeet,
	writeRegister
} from '../../../src/lib/p2p/meet.ts';
import { createKithNode } from '../../../src/lib/p2p/node.ts';
import { newRoomId, newSecretKey } from '../../../src/lib/crypto/index.ts';
import { DEFAULTS, type Config } from '../config.ts';
import { createServer, type KithServer } from '../server.ts';
import { tempDir, removeTempDirs } from '../test-helpers.ts';
import type { Libp2p } from '@libp2p/interface';
import { attachP2P, loadP2PConfig, P2P_DEFAULTS, type ServerP2P } from './index.ts';

const cleanup: Array<() => Promise<void>> = [];

afterEach(async () => {
	for (const step of cleanup.splice(0).reverse()) await step();
	await removeTempDirs();
});

async function startServer(): Promise<{ server: KithServer; p2p: ServerP2P; url: string }> {
	const dataDir = await tempDir();
	const config: Config = { ...DEFAULTS, port: 0, dataDir, staticDir: dataDir };
	const server = createServer(config);
	const handle = attachP2P(server, config, { p2p: P2P_DEFAULTS });
	if (!handle) throw new Error('no node');
	const p2p = await handle.start();
	const { url } = await server.listen();
	cleanup.push(() => server.close());
	return { server, p2p, url };
}

async function client(): Promise<Libp2p> {
	const node = await createKithNode({ listen: [], mdns: false });
	cleanup.push(async () => {
		await node.stop();
	});
	return node;
}

async function meet(node: Libp2p, info: { peerId: string; port: number }): Promise<FrameStream> {
	const address = multiaddr(`/ip4/127.0.0.1/tcp/${info.port}/ws/p2p/${info.peerId}`);
	const stream = await node.dialProtocol(address, KITH_MEET_PROTOCOL);
	return new FrameStream(stream, { maxFrameBytes: MAX_MEET_FRAME_BYTES });
}

async function nextPeers(frames: FrameStream): Promise<string[]> {
	const body = await frames.next();
	if (!body) throw new Error('meet stream ended');
	const message = readMeet(body);
	if (message.type !== 'peers') throw new Error('expected peers');
	return message.peers;
}

describe('the server libp2p node', () => {
	it('serves /p2p/info and introduces peers under the same tag, and only those', async () => {
		const { url } = await startServer();
		const info = (await (await fetch(`${url}/p2p/info`)).json()) as {
			peerId: string;
			port: number;
			addrs: string[];
		};
		expect(info.port).toBeGreaterThan(0);
		expect(info.addrs).toEqual([]);

		const key = newSecretKey();
		const room = newRoomId();
		const shared = meetTag(key, room);
		const other = meetTag(newSecretKey(), room);
		expect(shared).not.toEqual(other);

		const [a, b, c] = [await client(), await client(), await client()];
		const ma = await meet(a, info);
		await ma.send(writeRegister([shared]));
		expect(await nextPeers(ma)).toEqual([]);

		const mc = await meet(c, info);
		await mc.send(writeRegister([other]));
		expect(await nextPeers(mc)).toEqual([]);

		const mb = await meet(b, info);
		await mb.send(writeRegister([other, shared]));
		expect((await nextPeers(mb)).sort()).toEqual([a.peerId.toString(), c.peerId.toString()].sort());
		expect(await nextPeers(ma)).toEqual([b.peerId.toString()]);
		expect(await nextPeers(mc)).toEqual([b.peerId.toString()]);
	});

	it('closes a meet stream on junk and keeps serving others', async () => {
		const { url, p2p } = await startServer();
		const info = (await (await fetch(`${url}/p2p/info`)).json()) as {
			peerId: string;
			port: number;
		};
		const bad = await client();
		const junk = await meet(bad, info);
		await junk.send(new Uint8Array([9, 9, 9]));
		expect(await junk.next().catch(() => null)).toBeNull();

		const truncated = await meet(bad, info);
		await truncated.send(new Uint8Array([1, 2, 7]));
		expect(await truncated.next().catch(() => null)).toBeNull();

		const good = await client();
		const frames = await meet(good, info);
		await frames.send(writeRegister([meetTag(newSecretKey(), newRoomId())]));
		expect(await nextPeers(frames)).toEqual([]);
		expect(p2p.node.status).toBe('started');
	});

	it('starts its node only when a browser first asks for it, once', async () => {
		const dataDir = await tempDir();
		const config: Config = { ...DEFAULTS, port: 0, dataDir, staticDir: dataDir };
		const server = createServer(config);
		const handle = attachP2P(server, config, { p2p: P2P_DEFAULTS });
		const { url } = await server.listen();
		cleanup.push(() => server.close());
		expect(handle?.started).toBe(false);
		const [first, second] = await Promise.all(
			[1, 2].map(async () => (await (await fetch(`${url}/p2p/info`)).json()) as { port: number })
		);
		expect(handle?.started).toBe(true);
		expect(first?.port).toBeGreaterThan(0);
		expect(second).toEqual(first);
		expect(attachP2P(server, config, { p2p: { ...P2P_DEFAULTS, enabled: false } })).toBeNull();
	});

	it("with KITH_P2P=off, /p2p/info says so (404), not the app's page", async () => {
		const dataDir = await tempDir();
		await writeFile(join(dataDir, 'index.html'), '<!doctype html><title>Kith</title>');
		const config: Config = { ...DEFAULTS, port: 0, dataDir, staticDir: dataDir };
		const server = createServer(config);
		expect(attachP2P(server, config, { p2p: { ...P2P_DEFAULTS, enabled: false } })).toBeNull();
		const { url } = await server.listen();
		cleanup.push(() => server.close());
		const response = await fetch(`${url}/p2p/info`);
		expect(response.status).toBe(404);
		expect(await response.text()).toMatch(/Peer-to-peer is off/);
	});

	it('reads its settings from the environment', () => {
		expect(loadP2PConfig({})).toEqual(P2P_DEFAULTS);
		expect(loadP2PConfig({ KITH_P2P: 'off' }).enabled).toBe(false);
		expect(
			loadP2PConfig({ KITH_P2P_PORT: '4010', KITH_P2P_ANNOUNCE: '/dns4/kith.example/tcp/443/wss' })
		).toMatchObject({ port: 4010, announce: ['/dns4/kith.example/tcp/443/wss'] });
		expect(() => loadP2PConfig({ KITH_P2P_ANNOUNCE: 'https://kith.example' })).toThrow(
			/KITH_P2P_ANNOUNCE/
		);
		expect(() => loadP2PConfig({ KITH_P2P_RELAY_DATA_BYTES: 'lots' })).toThrow(
			/KITH_P2P_RELAY_DATA_BYTES/
		);
	});
});
