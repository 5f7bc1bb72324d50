/**
 * LAN peers over WebRTC-Direct (node-datachannel): a Kith node listening on
 * UDP (what `kith serve` runs) and a LanPeers node (what a browser runs)
 * dialing the address it prints; the room syncs both ways over PeerSync,
 * the capability still gates it, and bad addresses are refused with a
 * reason, never a crash.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createSocket } from 'node:dgram';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
	createDirectCertificate,
	loadOrCreateP2PIdentity,
	rememberWebrtcPort,
	type P2PIdentity
} from '../node/p2p-identity';
import { browserAddresses, isAddressInUse, NodeNet } from '../node/net';
import { docFor, newDevice } from '../sync/test-support';
import { LanPeerError, LanPeers, parseLanPeerAddress } from './lan-peer';
import { createKithNode, webrtcDirectListen } from './node';
import { PeerSync } from './peer-sync';
import { newRoom, stopAll, until, write } from './test-support';
import type { Libp2p } from '@libp2p/interface';
import type { RoomId } from '../crypto';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
	for (const clean of cleanups.splice(0).reverse()) await clean().catch(() => undefined);
	await stopAll();
});

const PEER = '12D3KooWB9Q6L1qfdo2uMkxGiyEdr73NnZh3kxpXkGSdXQEY2DCM';
const HASH = 'uEiDJeRC8sEdDXZwVyBno5w41AHZKNkQXEusvxescUdziFA';

function tempDir(): string {
	const dir = mkdtempSync(join(tmpdir(), 'kith-lan-'));
	cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
	return dir;
}

async function listeningPeer(identity?: P2PIdentity) {
	const node = await createKithNode({
		listen: [webrtcDirectListen(0)],
		mdns: false,
		...(identity ? { privateKey: identity.privateKey, certificate: identity.certificate } : {})
	});
	const sync = new PeerSync(node);
	await sync.start();
	cleanups.push(async () => {
		await sync.stop();
		await node.stop();
	});
	return { node, sync };
}

function loopbackAddress(node: Libp2p): string {
	const address = browserAddresses(node.getMultiaddrs().map(String)).at(-1);
	if (!address) throw new Error('no WebRTC-Direct address');
	return address;
}

async function lanPeers(statuses: { roomId: RoomId; peers: string[] }[] = []): Promise<LanPeers> {
	const peers = await LanPeers.start({
		onStatus: (roomId, list) => statuses.push({ roomId, peers: list })
	});
	cleanups.push(() => peers.stop());
	return peers;
}

describe('LAN peer addresses', () => {
	it('takes what kith serve prints', () => {
		const text = `  /ip4/192.168.1.20/udp/9090/webrtc-direct/certhash/${HASH}/p2p/${PEER}\n`;
		expect(parseLanPeerAddress(text)).toEqual({ address: text.trim(), peerId: PEER });
	});

	it.each([
		['', /Enter the address/],
		['hello', /not a peer address/],
		['/ip4/999.1.1.1/udp/1/webrtc-direct', /not a peer address/],
		[`/ip4/10.0.0.1/tcp/4001/ws/p2p/${PEER}`, /WebRTC-Direct only/],
		[`/ip4/0.0.0.0/udp/9090/webrtc-direct/certhash/${HASH}/p2p/${PEER}`, /0\.0\.0\.0/],
		[`/ip4/10.0.0.1/udp/9090/webrtc-direct/p2p/${PEER}`, /certhash/],
		[`/ip4/10.0.0.1/udp/9090/webrtc-direct/certhash/xyz/p2p/${PEER}`, /certhash/],
		[`/ip4/10.0.0.1/udp/9090/webrtc-direct/certhash/${HASH}`, /\/p2p\//],
		[`/ip4/10.0.0.1/udp/9090/webrtc-direct/certhash/${HASH}/p2p/nope`, /\/p2p\//],
		[`/ip4/10.0.0.1/udp/0/webrtc-direct/certhash/${HASH}/p2p/${PEER}`, /UDP port/]
	])('refuses %j with a reason', (text, reason) => {
		expect(() => parseLanPeerAddress(text)).toThrow(LanPeerError);
		expect(() => parseLanPeerAddress(text)).toThrow(reason);
	});

	it('lists browser addresses: WebRTC-Direct with certhash and peer id, loopback last', () => {
		const direct = (ip: string) => `/ip4/${ip}/udp/9/webrtc-direct/certhash/${HASH}/p2p/${PEER}`;
		expect(
			browserAddresses([
				direct('127.0.0.1'),
				`/ip4/192.168.1.2/tcp/1/p2p/${PEER}`,
				direct('0.0.0.0'),
				direct('192.168.1.2')
			])
		).toEqual([direct('192.168.1.2'), direct('127.0.0.1')]);
	});
});

describe('a browser-like LanPeers node and a kith node over WebRTC-Direct', () => {
	it('syncs a room both ways over the printed address, as a LAN peer', async () => {
		const room = newRoom();
		const kithDevice = await newDevice();
		const browserDevice = await newDevice();
		const dir = tempDir();
		const identity = await loadOrCreateP2PIdentity(dir);
		const kith = await listeningPeer(identity);
		const kithDoc = docFor(room.roomId, kithDevice);
		kith.sync.addRoom({ roomId: room.roomId, cdoc: kithDoc, capabilityIkm: room.key });

		const statuses: { roomId: RoomId; peers: string[] }[] = [];
		const browser = await lanPeers(statuses);
		const browserDoc = docFor(room.roomId, browserDevice);
		browser.addRoom({ roomId: room.roomId, cdoc: browserDoc, capabilityIkm: room.key });

		const address = loopbackAddress(kith.node);
		expect(address).toContain(`/certhash/${identity.certificate.certhash}/`);
		await browser.connect(address);
		expect(browser.connected(address)).toBe(true);

		await write(kithDoc, kithDevice, room.key, 'from kith');
		await write(browserDoc, browserDevice, room.key, 'from the browser');
		await until(() => kithDoc.size === 2 && browserDoc.size === 2, 'both messages on both sides');
		expect(browser.peers(room.roomId)).toEqual([kith.node.peerId.toString()]);
		expect(statuses.at(-1)).toEqual({
			roomId: room.roomId,
			peers: [kith.node.peerId.toString()]
		});

		// The browser side hangs up first (node-datachannel, standing in for the
		// browser here, may abort the process when a listener goes under a dial).
		await browser.stop();
		await until(() => kith.sync.status(room.roomId).peers.length === 0, 'the kith side saw it go');
	}, 60_000);

	it('a peer without the room key gets no session: the capability gates it', async () => {
		const room = newRoom();
		const other = newRoom();
		const kith = await listeningPeer();
		const kithDoc = docFor(room.roomId, await newDevice());
		kith.sync.addRoom({ roomId: room.roomId, cdoc: kithDoc, capabilityIkm: room.key });
		const browser = await lanPeers();
		const browserDoc = docFor(room.roomId, await newDevice());
		// Same room id, wrong key.
		browser.addRoom({ roomId: room.roomId, cdoc: browserDoc, capabilityIkm: other.key });
		await browser.connect(loopbackAddress(kith.node));
		await write(kithDoc, await newDevice(), room.key, 'secret');
		await new Promise((resolve) => setTimeout(resolve, 1500));
		expect(browser.peers(room.roomId)).toEqual([]);
		expect(browserDoc.size).toBe(0);
	}, 30_000);

	it('a bad address is refused before any dial, and not kept', async () => {
		const browser = await lanPeers();
		await expect(browser.connect('/ip4/1.2.3.4/tcp/1')).rejects.toThrow(LanPeerError);
		browser.add('not an address');
		expect(browser.connected('not an address')).toBe(false);
	});
});

describe('the WebRTC-Direct certificate', () => {
	it('and the peer id stay the same from one start to the next (owner-only file)', async () => {
		const dir = tempDir();
		const first = await loadOrCreateP2PIdentity(dir);
		const second = await loadOrCreateP2PIdentity(dir);
		expect(second.certificate).toEqual(first.certificate);
		expect(second.privateKey.equals(first.privateKey)).toBe(true);
		expect(statSync(join(dir, 'p2p.json')).mode & 0o777).toBe(0o600);
		// A year on, a new certificate (the peer id stays).
		const later = await loadOrCreateP2PIdentity(dir, Date.now() + 400 * 24 * 3600_000);
		expect(later.certificate.certhash).not.toBe(first.certificate.certhash);
		expect(later.privateKey.equals(first.privateKey)).toBe(true);
		expect(later.privateKey.equals((await loadOrCreateP2PIdentity(tempDir())).privateKey)).toBe(
			false
		);
	});

	it('remembers the port kith serve listened on', async () => {
		const dir = tempDir();
		expect((await loadOrCreateP2PIdentity(dir)).port).toBeNull();
		const taken = 40_123;
		rememberWebrtcPort(dir, taken);
		const again = await loadOrCreateP2PIdentity(dir);
		expect(again.port).toBe(taken);
		// A renewed certificate keeps the port.
		const later = await loadOrCreateP2PIdentity(dir, Date.now() + 400 * 24 * 3600_000);
		expect(later.port).toBe(taken);
		expect(later.certificate.certhash).not.toBe(again.certificate.certhash);
	});

	it('listens on any free port when the remembered one was taken since (no failed start)', async () => {
		const socket = createSocket('udp4');
		await new Promise<void>((resolve) => socket.bind(0, '0.0.0.0', resolve));
		cleanups.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
		const taken = socket.address().port;
		// A fixed TCP port too: the failed first start must release it for the second.
		const tcpPort = await freeTcpPort();
		const net = new NodeNet({
			listen: [`/ip4/127.0.0.1/tcp/${tcpPort}`, webrtcDirectListen(taken)],
			listenFallback: [`/ip4/127.0.0.1/tcp/${tcpPort}`, webrtcDirectListen(0)],
			mdns: false
		});
		cleanups.push(() => net.stop());
		await net.start();
		const port = Number(/\/udp\/(\d+)\//.exec(net.browserAddresses()[0] ?? '')?.[1]);
		expect(port).toBeGreaterThan(0);
		expect(port).not.toBe(taken);
		expect(net.addresses().some((a) => a.startsWith(`/ip4/127.0.0.1/tcp/${tcpPort}/`))).toBe(true);
		// Without a fallback the taken port is a clear start failure, as before.
		const strict = new NodeNet({ listen: [webrtcDirectListen(taken)], mdns: false });
		cleanups.push(() => strict.stop());
		await expect(strict.start()).rejects.toSatisfy(isAddressInUse);
	});

	it('is a valid self-signed P-256 certificate whose certhash is its SHA-256', async () => {
		const { X509Certificate, createHash } = await import('node:crypto');
		const made = await createDirectCertificate(Date.UTC(2026, 0, 1));
		const cert = new X509Certificate(made.pem);
		expect(cert.subject).toBe('CN=kith');
		expect(cert.verify(cert.publicKey)).toBe(true);
		expect(new Date(cert.validTo).getTime()).toBe(made.notAfter);
		const digest = createHash('sha256').update(cert.raw).digest();
		expect(made.certhash).toBe(
			`u${Buffer.concat([Buffer.from([0x12, 0x20]), digest]).toString('base64url')}`
		);
	});
});

function freeTcpPort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.once('error', reject);
		server.listen(0, '127.0.0.1', () => {
			const { port } = server.address() as AddressInfo;
			server.close(() => resolve(port));
		});
	});
}
