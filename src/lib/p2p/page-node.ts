/**
 * The libp2p node a page runs, for the server-signalled WebRTC peers
 * (./browser-node.ts) and for LAN peers over WebRTC-Direct (./lan-peer.ts):
 * the given listen addresses and transports, with noise, yamux, identify and
 * dialing allowed to private and loopback addresses (the point of both; a
 * browser's libp2p refuses them by default).
 */
import { noise } from '@chainsafe/libp2p-noise';
import { identify } from '@libp2p/identify';
import type { Libp2p } from '@libp2p/interface';
import { yamux } from '@libp2p/yamux';
import { createLibp2p, type Libp2pOptions } from 'libp2p';
import { MAX_EARLY_STREAMS } from './peer-sync';

export function createPageNode(
	listen: string[],
	transports: NonNullable<Libp2pOptions['transports']>
): Promise<Libp2p> {
	return createLibp2p({
		addresses: { listen },
		transports,
		connectionEncrypters: [noise()],
		streamMuxers: [yamux({ maxEarlyStreams: MAX_EARLY_STREAMS })],
		connectionGater: { denyDialMultiaddr: () => false },
		services: { identify: identify() }
	});
}
