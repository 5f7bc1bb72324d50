/**
 * LAN peers (docs/protocol.md, "P2P sync": "LAN peers"): a browser reaches a
 * `kith serve` on its network by dialing the WebRTC-Direct address that
 * `kith serve` prints (`/ip4/<LAN address>/udp/<port>/webrtc-direct/certhash/
 * <cert>/p2p/<peer id>`). A page on https cannot open plain ws:// to a LAN
 * address, but it can open a WebRTC connection to one: the certhash lets the
 * browser accept the peer's self-signed DTLS certificate, and noise then
 * proves the peer id.
 *
 * A node of its own (WebRTC-Direct, dial only, no listener), so it needs
 * neither the Kith server nor its libp2p node: it keeps working when the
 * relay is gone. PeerSync runs over every connection it makes; the room
 * capability gates each room as for any peer. Every peer reached here is a
 * "LAN peer" for the path indicator.
 *
 * Addresses are checked (`parseLanPeerAddress`) before any dial; a bad one is
 * a LanPeerError with a message for the user, never a crash.
 */
import type { Connection, Libp2p } from '@libp2p/interface';
import { webRTCDirect } from '@libp2p/webrtc';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import type { RoomId } from '../crypto';
import { backoffDelay } from '../sync/backoff';
import type { SyncLogger } from '../sync/relay-connection';
import { createPageNode } from './page-node';
import { MAX_EARLY_STREAMS, PeerSync, type ChunkSource, type PeerSyncRoom } from './peer-sync';

/** How long one dial may take. */
export const LAN_DIAL_TIMEOUT_MS = 15_000;

/** A LAN peer address the user entered is wrong, or the peer could not be reached. */
export class LanPeerError extends Error {
	static readonly NAME = 'LanPeerError';
	override name = LanPeerError.NAME;
}

export const LAN_PEER_EXAMPLE =
	'/ip4/192.168.1.20/udp/9090/webrtc-direct/certhash/uEi…/p2p/12D3KooW…';

export interface LanPeerAddress {
	/** The address as a string, normalised. */
	address: string;
	/** The peer id in it. */
	peerId: string;
}

const HOSTS = new Set(['ip4', 'ip6', 'dns', 'dns4', 'dns6']);
const PEER_ID = /^(12D3KooW|16Uiu2|Qm)[1-9A-HJ-NP-Za-km-z]{30,60}$/;
const CERTHASH = /^u[A-Za-z0-9_-]{43,90}$/;

/**
 * Check a WebRTC-Direct peer address as `kith serve` prints it. Throws
 * LanPeerError saying what is wrong.
 */
export function parseLanPeerAddress(text: string): LanPeerAddress {
	const trimmed = text.trim();
	if (trimmed === '') {
		throw new LanPeerError('Enter the address that kith serve printed.');
	}
	if (trimmed.length > 1000) throw new LanPeerError('That address is far too long.');
	let ma: Multiaddr;
	try {
		ma = multiaddr(trimmed);
	} catch {
		throw new LanPeerError(
			`That is not a peer address. It looks like ${LAN_PEER_EXAMPLE}, as kith serve prints it.`
		);
	}
	const parts = ma.getComponents();
	const names = parts.map((part) => part.name);
	if (!names.includes('webrtc-direct')) {
		throw new LanPeerError(
			'A browser reaches a kith peer over WebRTC-Direct only: enter the address with /udp/…/webrtc-direct/ in it that kith serve printed.'
		);
	}
	const [host, udp, direct, certhash, p2p, ...rest] = parts;
	if (!host || !HOSTS.has(host.name) || !host.value) {
		throw new LanPeerError('The address must begin with the peer’s IP address (/ip4/… or /ip6/…).');
	}
	if (host.value === '0.0.0.0' || host.value === '::') {
		throw new LanPeerError(
			'0.0.0.0 is where the peer listens, not where to reach it: use an address with the peer’s LAN IP.'
		);
	}
	const port = Number(udp?.value);
	if (udp?.name !== 'udp' || !Number.isInteger(port) || port < 1 || port > 65535) {
		throw new LanPeerError('The address needs the peer’s UDP port (/udp/<port>/webrtc-direct).');
	}
	if (direct?.name !== 'webrtc-direct') {
		throw new LanPeerError('After /udp/<port> the address must go on with /webrtc-direct.');
	}
	if (certhash?.name !== 'certhash' || !certhash.value || !CERTHASH.test(certhash.value)) {
		throw new LanPeerError(
			'The address lacks a valid /certhash/… part (the hash of the peer’s certificate): copy the whole address.'
		);
	}
	if (p2p?.name !== 'p2p' || !p2p.value || !PEER_ID.test(p2p.value)) {
		throw new LanPeerError(
			'The address must end with /p2p/<peer id> (the peer’s id): copy the whole address.'
		);
	}
	if (rest.length > 0) throw new LanPeerError('The address goes on after /p2p/<peer id>.');
	return { address: ma.toString(), peerId: p2p.value };
}

export interface LanPeersOptions {
	logger?: SyncLogger;
	/** A room's LAN peers changed (`peers` empty: none). */
	onStatus?: (roomId: RoomId, peers: string[]) => void;
	/** An update from a peer passed the doc rules and was applied (store it). */
	onRemoteApplied?: (roomId: RoomId, update: Uint8Array) => void;
	/** An address's connection opened or closed. */
	onConnections?: () => void;
	/** How long one dial may take (default LAN_DIAL_TIMEOUT_MS). */
	dialTimeoutMs?: number;
	/** This device's media chunks, served to its peers in each room. */
	chunks?: ChunkSource;
}

interface Wanted {
	peerId: string;
	failures: number;
	timer: ReturnType<typeof setTimeout> | null;
}

const silent: SyncLogger = {
	debug: () => undefined,
	info: () => undefined,
	warn: () => undefined,
	error: () => undefined
};

export class LanPeers {
	readonly node: Libp2p;
	readonly sync: PeerSync;
	readonly #options: LanPeersOptions;
	readonly #log: SyncLogger;
	/** Addresses to stay connected to → their peer and redial state. */
	readonly #wanted = new Map<string, Wanted>();
	/** Dials under way: stop waits for them (node-datachannel aborts the process when one is cut short). */
	readonly #dialing = new Set<Promise<unknown>>();
	#stopped = false;

	private constructor(node: Libp2p, sync: PeerSync, options: LanPeersOptions) {
		this.node = node;
		this.sync = sync;
		this.#options = options;
		this.#log = options.logger ?? silent;
	}

	static async start(options: LanPeersOptions = {}): Promise<LanPeers> {
		const log = options.logger ?? silent;
		const node = await createPageNode([], [webRTCDirect({ maxEarlyStreams: MAX_EARLY_STREAMS })]);
		const sync = new PeerSync(node, {
			logger: log,
			dialDiscovered: false,
			lanDiscovery: false,
			...(options.onRemoteApplied ? { onRemoteApplied: options.onRemoteApplied } : {}),
			...(options.chunks ? { chunks: options.chunks } : {})
		});
		const peers = new LanPeers(node, sync, options);
		if (options.onStatus) {
			const onStatus = options.onStatus;
			sync.on('status', ({ roomId, status }) => onStatus(roomId, status.peers));
		}
		await sync.start();
		node.addEventListener('connection:open', peers.#onConnectionOpen);
		node.addEventListener('connection:close', peers.#onConnectionClose);
		return peers;
	}

	addRoom(room: PeerSyncRoom): void {
		this.sync.addRoom(room);
	}

	async removeRoom(roomId: RoomId): Promise<void> {
		await this.sync.removeRoom(roomId);
	}

	/** The peers a room syncs with here (each one a LAN peer). */
	peers(roomId: RoomId): string[] {
		return this.sync.status(roomId).peers;
	}

	/**
	 * Dial an address once and keep it (redialed whenever the connection
	 * goes). Throws LanPeerError for a bad address or a failed dial (then it is
	 * not kept).
	 */
	async connect(text: string): Promise<LanPeerAddress> {
		const parsed = parseLanPeerAddress(text);
		if (this.#stopped) throw new LanPeerError('Kith is shutting down.');
		try {
			await this.#dial(parsed.address);
		} catch (error) {
			throw new LanPeerError(
				`Could not reach that peer (${dialProblem(error)}). Is kith serve running there, and is this device on the same network?`
			);
		}
		this.#keep(parsed);
		return parsed;
	}

	/** Keep an address (a saved one): dial it now and whenever it is not connected, with backoff. */
	add(text: string): void {
		let parsed: LanPeerAddress;
		try {
			parsed = parseLanPeerAddress(text);
		} catch (error) {
			this.#log.warn('a saved LAN peer address is not valid', { error: describe(error) });
			return;
		}
		if (this.#wanted.has(parsed.address)) return;
		this.#keep(parsed);
		this.#redial(parsed.address, 0);
	}

	/** Stop keeping an address, and hang up on its peer (unless another kept address names it). */
	async forget(text: string): Promise<void> {
		let address = text;
		try {
			address = parseLanPeerAddress(text).address;
		} catch {
			// forget what was given, as given
		}
		const wanted = this.#wanted.get(address);
		if (!wanted) return;
		if (wanted.timer) clearTimeout(wanted.timer);
		this.#wanted.delete(address);
		const still = [...this.#wanted.values()].some((w) => w.peerId === wanted.peerId);
		if (!still) {
			await this.node.hangUp(multiaddr(address)).catch(() => undefined);
		}
		this.#options.onConnections?.();
	}

	/** Whether the peer at a kept address is connected now. */
	connected(address: string): boolean {
		const wanted = this.#wanted.get(address);
		return wanted ? this.#isConnected(wanted.peerId) : false;
	}

	async stop(): Promise<void> {
		this.#stopped = true;
		for (const wanted of this.#wanted.values()) if (wanted.timer) clearTimeout(wanted.timer);
		this.#wanted.clear();
		this.node.removeEventListener('connection:open', this.#onConnectionOpen);
		this.node.removeEventListener('connection:close', this.#onConnectionClose);
		await Promise.allSettled([...this.#dialing]);
		await this.sync.stop();
		await this.node.stop();
	}

	#keep(parsed: LanPeerAddress): void {
		if (!this.#wanted.has(parsed.address)) {
			this.#wanted.set(parsed.address, { peerId: parsed.peerId, failures: 0, timer: null });
		}
		this.#options.onConnections?.();
	}

	#isConnected(peerId: string): boolean {
		return this.node
			.getConnections()
			.some((c) => c.remotePeer.toString() === peerId && c.status === 'open');
	}

	async #dial(address: string): Promise<Connection> {
		const dial = this.node.dial(multiaddr(address), {
			signal: AbortSignal.timeout(this.#options.dialTimeoutMs ?? LAN_DIAL_TIMEOUT_MS)
		});
		this.#dialing.add(dial);
		try {
			return await dial;
		} finally {
			this.#dialing.delete(dial);
		}
	}

	#redial(address: string, delay: number): void {
		const wanted = this.#wanted.get(address);
		if (!wanted || this.#stopped || wanted.timer) return;
		wanted.timer = setTimeout(() => {
			wanted.timer = null;
			if (this.#stopped || this.#wanted.get(address) !== wanted) return;
			if (this.#isConnected(wanted.peerId)) return;
			this.#dial(address).then(
				() => {
					wanted.failures = 0;
				},
				(error: unknown) => {
					wanted.failures++;
					this.#log.debug('could not reach a LAN peer', { address, error: describe(error) });
					this.#redial(address, backoffDelay(wanted.failures, { initialMs: 1000, maxMs: 30_000 }));
				}
			);
		}, delay);
	}

	readonly #onConnectionOpen = (): void => {
		this.#options.onConnections?.();
	};

	/** A kept peer's connection went: dial it again (it may be restarting). */
	readonly #onConnectionClose = (event: CustomEvent<Connection>): void => {
		this.#options.onConnections?.();
		const peer = event.detail.remotePeer.toString();
		if (this.#isConnected(peer)) return;
		for (const [address, wanted] of this.#wanted) {
			if (wanted.peerId === peer) this.#redial(address, 1000);
		}
	};
}

/** Why a dial failed, in a few words for the user. */
function dialProblem(error: unknown): string {
	const name = error instanceof Error ? error.name : '';
	if (
		name === 'TimeoutError' ||
		name === 'AbortError' ||
		/abort|timed? ?out/i.test(describe(error))
	) {
		return 'no answer';
	}
	return describe(error);
}

function describe(error: unknown): string {
	return error instanceof Error ? error.message || error.name : String(error);
}
