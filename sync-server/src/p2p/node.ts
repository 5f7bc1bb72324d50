/**
 * The server's libp2p node itself (./index.ts starts it on first use): a
 * WebSockets listener, noise, yamux, identify, a circuit relay v2 server
 * with raised limits, and the meeting service. Imported only when started.
 */
import { noise } from '@chainsafe/libp2p-noise';
import { circuitRelayServer } from '@libp2p/circuit-relay-v2';
import { identify } from '@libp2p/identify';
import type { Libp2p } from '@libp2p/interface';
import { webSockets } from '@libp2p/websockets';
import { yamux } from '@libp2p/yamux';
import { createLibp2p } from 'libp2p';
import { installNodePolyfills } from '../../../src/lib/p2p/node.ts';
import { MAX_EARLY_STREAMS } from '../../../src/lib/p2p/peer-sync.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { P2PConfig } from './config.ts';
import { MeetService } from './meet.ts';

export { MeetService } from './meet.ts';

export interface ServerP2P {
	node: Libp2p;
	meet: MeetService;
	/** The port the WebSockets listener bound. */
	port: number;
	/** `/p2p/info`'s body: {peerId, port, addrs}. */
	info: string;
}

export async function startServerNode(
	config: Config,
	p2p: P2PConfig,
	log: Logger
): Promise<ServerP2P> {
	installNodePolyfills();
	const host = p2p.host ?? config.host;
	const family = host.includes(':') ? 'ip6' : 'ip4';
	const node = await createLibp2p({
		addresses: { listen: [`/${family}/${host}/tcp/${p2p.port}/ws`] },
		transports: [webSockets()],
		connectionEncrypters: [noise()],
		streamMuxers: [yamux({ maxEarlyStreams: MAX_EARLY_STREAMS })],
		// One connection per leader tab (js-libp2p's default is 300 in all).
		connectionManager: { maxConnections: 2 * p2p.maxReservations },
		services: {
			identify: identify(),
			relay: circuitRelayServer({
				reservations: {
					maxReservations: p2p.maxReservations,
					defaultDurationLimit: p2p.relayDurationMs,
					defaultDataLimit: BigInt(p2p.relayDataBytes)
				}
			})
		}
	});
	const meet = new MeetService(node, log);
	await meet.start();
	const listening = node.getMultiaddrs().map((ma) => ma.toString());
	const port = portOf(listening);
	const info = JSON.stringify({
		peerId: node.peerId.toString(),
		port,
		addrs: p2p.announce.map((addr) => `${addr}/p2p/${node.peerId.toString()}`)
	});
	log.info('libp2p node listening', { peerId: node.peerId.toString(), addrs: listening });
	return { node, meet, port, info };
}

function portOf(addrs: readonly string[]): number {
	for (const addr of addrs) {
		const match = /\/tcp\/(\d+)\//.exec(addr);
		if (match?.[1]) return Number(match[1]);
	}
	return 0;
}
