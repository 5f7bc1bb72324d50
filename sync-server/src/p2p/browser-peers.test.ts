/**
 * The browser's peer side (src/lib/p2p/browser-node.ts) run on Node against
 * the real server node: two peers that hold a room meet under its tag,
 * connect over WebRTC signalled through the circuit relay (node-datachannel
 * stands in for the browser's RTCPeerConnection), sync the room on that
 * direct connection and keep syncing after the server stops. A third peer
 * holding another room meets nobody.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BrowserPeers } from '../../../src/lib/p2p/browser-node.ts';
import { installNodePolyfills } from '../../../src/lib/p2p/node.ts';
import { docFor, ids, newDevice, until, write } from '../../../src/lib/sync/test-support.ts';
import { newRoomId, newSecretKey } from '../../../src/lib/crypto/index.ts';
import { DEFAULTS, type Config } from '../config.ts';
import { createServer } from '../server.ts';
import { removeTempDirs, tempDir } from '../test-helpers.ts';
import { attachP2P, P2P_DEFAULTS } from './index.ts';

const cleanup: Array<() => Promise<void>> = [];

afterEach(async () => {
	for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
	await removeTempDirs();
});

describe('browser peers through the server node', () => {
	it('meet, go direct over WebRTC, and keep syncing without the server', async () => {
		installNodePolyfills();
		const dataDir = await tempDir();
		const config: Config = { ...DEFAULTS, port: 0, dataDir, staticDir: dataDir };
		const server = createServer(config);
		const p2p = attachP2P(server, config, { p2p: P2P_DEFAULTS });
		expect(p2p).not.toBeNull();
		const { url } = await server.listen();
		let serverUp = true;
		cleanup.push(async () => {
			if (serverUp) await server.close();
		});

		const room = { roomId: newRoomId(), key: newSecretKey() };
		const start = async (roomId = room.roomId, key = room.key) => {
			const device = await newDevice();
			const cdoc = docFor(roomId, device);
			const labels: string[] = [];
			const peers = await BrowserPeers.start({
				origin: url,
				onStatus: (_room, status) => labels.push(status.label)
			});
			if (!peers) throw new Error('the server runs no node');
			cleanup.push(() => peers.stop());
			peers.addRoom({ roomId, cdoc, capabilityIkm: key });
			return { peers, cdoc, device, labels };
		};
		const a = await start();
		const b = await start();
		const stranger = await start(newRoomId(), newSecretKey());

		await until(
			() =>
				a.peers.sync.status(room.roomId).label === 'direct' &&
				b.peers.sync.status(room.roomId).label === 'direct',
			'a direct session both ways',
			30_000
		);
		expect(a.peers.sync.status(room.roomId).peers).toEqual([b.peers.node.peerId.toString()]);
		const direct = a.peers.node
			.getConnections(b.peers.node.peerId)
			.filter((c) => c.remoteAddr.toString().includes('/webrtc'));
		expect(direct.length).toBeGreaterThan(0);

		await write(a.cdoc, a.device, room.key, 'before');
		await until(() => ids(b.cdoc).length === 1, 'the first entry over WebRTC');

		await server.close();
		serverUp = false;
		await write(b.cdoc, b.device, room.key, 'after');
		await until(() => ids(a.cdoc).length === 2, 'an entry with the server gone');
		expect(ids(a.cdoc)).toEqual(ids(b.cdoc));
		expect(stranger.peers.sync.status(stranger.cdoc.roomId).peers).toEqual([]);
		expect(
			stranger.peers.node
				.getConnections()
				.filter((c) => c.remoteAddr.toString().includes('/webrtc'))
		).toEqual([]);
	});
});
