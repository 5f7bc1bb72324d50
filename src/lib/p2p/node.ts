/**
 * A Kith peer's libp2p node on Node (the `kith` CLI, the Kith server): TCP
 * and WebSockets listeners, a WebRTC-Direct transport when it listens there
 * (`kith serve`: UDP, what a browser can dial, ./lan-peer.ts — a page on
 * https cannot open plain ws:// to a LAN address), noise, yamux, identify,
 * and mDNS on the LAN under Kith's own service tag (so only Kith peers
 * answer). Node only: it pulls in TCP, mDNS, `ws` and, for WebRTC-Direct,
 * node-datachannel. Run PeerSync (./peer-sync.ts) on it to sync rooms.
 */
import { noise } from '@chainsafe/libp2p-noise';
import { identify } from '@libp2p/identify';
import type { Libp2p, PrivateKey } from '@libp2p/interface';
import { mdns } from '@libp2p/mdns';
import { tcp } from '@libp2p/tcp';
import { webSockets } from '@libp2p/websockets';
import { yamux } from '@libp2p/yamux';
import { createLibp2p } from 'libp2p';
import { MAX_EARLY_STREAMS } from './peer-sync';
import { WebSocket as NodeWebSocket } from 'ws';

/** mDNS service tag of Kith peers (not libp2p's generic `_p2p._udp.local`). */
export const KITH_MDNS_TAG = '_kith._udp.local';

/**
 * libp2p 3 wants `Promise.withResolvers` (Node 22) and a global `WebSocket`
 * (Node 22) for dialing ws addresses. Node 20 has neither; install both once.
 */
export function installNodePolyfills(): void {
	const promise = Promise as unknown as { withResolvers?: unknown };
	if (typeof promise.withResolvers !== 'function') {
		promise.withResolvers = function withResolvers<T>() {
			let resolve!: (value: T | PromiseLike<T>) => void;
			let reject!: (reason?: unknown) => void;
			const p = new Promise<T>((res, rej) => {
				resolve = res;
				reject = rej;
			});
			return { promise: p, resolve, reject };
		};
	}
	const scope = globalThis as { WebSocket?: unknown };
	if (typeof scope.WebSocket !== 'function') scope.WebSocket = NodeWebSocket;
}

export interface KithNodeOptions {
	/** Listen addresses; default TCP and WebSockets on every interface, ports chosen by the OS. */
	listen?: string[];
	/** mDNS discovery on the LAN (default on); an object tunes it. */
	mdns?: boolean | { interval?: number; serviceTag?: string };
	/** The node's identity; a new one each start when absent (persist it for a stable peer id). */
	privateKey?: PrivateKey;
	/**
	 * The WebRTC-Direct DTLS certificate (its hash is in the listen address);
	 * a new one each start when absent. Listen with an address like
	 * `/ip4/0.0.0.0/udp/0/webrtc-direct` (see `webrtcDirectListen`).
	 */
	certificate?: { privateKey: string; pem: string; certhash: string };
	/**
	 * Load the WebRTC-Direct transport (node-datachannel, about half a second
	 * to import). Default: when a listen address is a WebRTC-Direct one.
	 */
	webrtcDirect?: boolean;
}

/** The WebRTC-Direct listen address on every IPv4 interface; port 0: any free one. */
export function webrtcDirectListen(port = 0): string {
	return `/ip4/0.0.0.0/udp/${port}/webrtc-direct`;
}

/** A libp2p node for a Kith peer on Node. Started. */
export async function createKithNode(options: KithNodeOptions = {}): Promise<Libp2p> {
	installNodePolyfills();
	const mdnsOptions = options.mdns ?? true;
	const listen = options.listen ?? ['/ip4/0.0.0.0/tcp/0', '/ip4/0.0.0.0/tcp/0/ws'];
	const direct =
		options.webrtcDirect ?? listen.some((address) => address.includes('/webrtc-direct'));
	const webRTCDirect = direct ? (await import('@libp2p/webrtc')).webRTCDirect : null;
	const node = await createLibp2p({
		// Started below, so a start that fails (a port taken) releases what it bound.
		start: false,
		...(options.privateKey ? { privateKey: options.privateKey } : {}),
		addresses: { listen },
		transports: [
			tcp(),
			webSockets(),
			...(webRTCDirect
				? [
						webRTCDirect({
							maxEarlyStreams: MAX_EARLY_STREAMS,
							...(options.certificate ? { certificate: options.certificate } : {})
						})
					]
				: [])
		],
		connectionEncrypters: [noise()],
		streamMuxers: [yamux({ maxEarlyStreams: MAX_EARLY_STREAMS })],
		services: { identify: identify() },
		peerDiscovery: mdnsOptions
			? [
					mdns({
						serviceTag: KITH_MDNS_TAG,
						...(typeof mdnsOptions === 'object' ? mdnsOptions : {})
					})
				]
			: []
	});
	try {
		await node.start();
	} catch (error) {
		await Promise.resolve(node.stop()).catch(() => undefined);
		throw error;
	}
	return node;
}
