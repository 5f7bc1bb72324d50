/**
 * Test support for the p2p layer (Node only; imported by *.test.ts, never by
 * the app): real libp2p nodes on 127.0.0.1 TCP, a peer per node with its
 * PeerSync, and a raw /kith/sync client that speaks the protocol by hand, to
 * do what a correct peer never does (bad proofs, forged updates, junk frames).
 */
import type { Libp2p } from '@libp2p/interface';
import type { ConversationDoc } from '../conversation';
import { newRoomId, newSecretKey, randomBytes, type RoomId, type SecretKey } from '../crypto';
import { deriveRoomCapability, type RoomCapability } from '../sync/capability';
import { captureLogger, docFor, newDevice, type Device, type LogLine } from '../sync/test-support';
import { FrameStream } from './frame-stream';
import { createKithNode } from './node';
import { PeerSync, type ChunkSource } from './peer-sync';
import { signProof } from './proof';
import { KITH_SYNC_PROTOCOL, MAX_FRAME_BYTES } from './sync-protocol';
import { readP2PMessage, writeHello, writeProof, type P2PMessage } from './wire';

export { ids, sleep, until, write } from '../sync/test-support';

/** A room: id and epoch key, as the members hold them. */
export interface Room {
	roomId: RoomId;
	key: SecretKey;
}

export function newRoom(): Room {
	return { roomId: newRoomId(), key: newSecretKey() };
}

const nodes: Libp2p[] = [];
const syncs: PeerSync[] = [];

/** A started node listening on 127.0.0.1 (TCP unless told), no mDNS (unless asked). */
export async function startNode(
	mdns: false | { interval: number } = false,
	listen = ['/ip4/127.0.0.1/tcp/0']
): Promise<Libp2p> {
	const node = await createKithNode({ listen, mdns });
	nodes.push(node);
	return node;
}

/** A device with a node, a PeerSync and its docs. */
export interface Peer {
	node: Libp2p;
	sync: PeerSync;
	device: Device;
	docs: Map<RoomId, ConversationDoc>;
	log: LogLine[];
}

export async function startPeer(
	rooms: Room[] = [],
	options: { mdns?: false | { interval: number }; listen?: string[]; chunks?: ChunkSource } = {}
): Promise<Peer> {
	const node = await startNode(options.mdns ?? false, options.listen);
	const logger = captureLogger();
	const sync = new PeerSync(node, {
		logger,
		...(options.chunks ? { chunks: options.chunks } : {})
	});
	syncs.push(sync);
	const device = await newDevice();
	const peer: Peer = { node, sync, device, docs: new Map(), log: logger.lines };
	for (const room of rooms) join(peer, room);
	await sync.start();
	return peer;
}

/** Hold a room (with `ikm` instead of the room's key, to hold a wrong one). */
export function join(peer: Peer, room: Room, ikm: Uint8Array = room.key): ConversationDoc {
	const cdoc = docFor(room.roomId, peer.device);
	peer.docs.set(room.roomId, cdoc);
	peer.sync.addRoom({ roomId: room.roomId, cdoc, capabilityIkm: ikm });
	return cdoc;
}

export function doc(peer: Peer, room: Room): ConversationDoc {
	const cdoc = peer.docs.get(room.roomId);
	if (!cdoc) throw new Error('the peer does not hold the room');
	return cdoc;
}

export async function connect(a: Libp2p, b: Libp2p): Promise<void> {
	const address = b.getMultiaddrs()[0];
	if (!address) throw new Error('the node listens nowhere');
	await a.dial(address);
}

/** Stop every node started since the last call. */
export async function stopAll(): Promise<void> {
	await Promise.all(syncs.splice(0).map((sync) => sync.stop().catch(() => undefined)));
	await Promise.all(
		nodes.splice(0).map((node) => Promise.resolve(node.stop()).catch(() => undefined))
	);
}

// ---- a raw /kith/sync client ------------------------------------------------------

export interface RawClient {
	frames: FrameStream;
	/** Every frame body received, in order, raw. */
	received: Uint8Array[];
	/** The next message; null once the stream ended. */
	read(timeoutMs?: number): Promise<P2PMessage | null>;
	send(body: Uint8Array): Promise<void>;
	/** Resolves when the stream closed, either way. */
	closed: Promise<void>;
}

/** Open a raw stream from `from` to `to` on /kith/sync. */
export async function rawClient(from: Libp2p, to: Libp2p): Promise<RawClient> {
	const address = to.getMultiaddrs()[0];
	if (!address) throw new Error('the node listens nowhere');
	const stream = await from.dialProtocol(address, KITH_SYNC_PROTOCOL);
	const frames = new FrameStream(stream, { maxFrameBytes: 8 * MAX_FRAME_BYTES });
	const received: Uint8Array[] = [];
	const closed = new Promise<void>((resolve) => {
		if (stream.status !== 'open') resolve();
		stream.addEventListener('close', () => resolve(), { once: true });
	});
	return {
		frames,
		received,
		closed,
		async read(timeoutMs = 5_000) {
			let timer: ReturnType<typeof setTimeout> | undefined;
			const timeout = new Promise<never>((_, reject) => {
				timer = setTimeout(() => reject(new Error('no frame in time')), timeoutMs);
			});
			try {
				const bytes = await Promise.race([frames.next(), timeout]);
				if (bytes === null) return null;
				received.push(bytes);
				return readP2PMessage(bytes);
			} catch (error) {
				if (error instanceof Error && error.message === 'no frame in time') throw error;
				return null; // reset: the stream is gone
			} finally {
				clearTimeout(timer);
			}
		},
		send: (body) => frames.send(body)
	};
}

/**
 * Run the dialer's half of the handshake by hand. With `capability`, a real
 * proof; without, 64 random bytes. Returns the listener's answer to the proof.
 */
export async function rawHandshake(
	client: RawClient,
	from: Libp2p,
	to: Libp2p,
	roomId: RoomId,
	capability: RoomCapability | null
): Promise<P2PMessage | null> {
	await client.send(writeHello(roomId, randomBytes(32)));
	const challenge = await client.read();
	if (challenge?.type !== 'challenge')
		throw new Error(`expected a challenge, got ${challenge?.type}`);
	const signature = capability
		? await signProof(capability, {
				role: 'dialer',
				roomId,
				nonce: challenge.nonce,
				prover: from.peerId.toMultihash().bytes,
				verifier: to.peerId.toMultihash().bytes
			})
		: randomBytes(64);
	await client.send(writeProof(signature));
	return client.read();
}

export function capabilityOf(room: Room, ikm: Uint8Array = room.key): Promise<RoomCapability> {
	return deriveRoomCapability(ikm, room.roomId);
}

export { newDevice, type Device };
