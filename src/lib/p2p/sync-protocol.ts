/**
 * `/kith/sync/1.0.0`: one conversation doc (one room) over one libp2p stream
 * (docs/protocol.md, "P2P sync"). Shared by every Kith peer — the `kith` CLI,
 * the Kith server's node and the browser's — so sync is implemented once.
 *
 *   1. Handshake, mutual. The dialer names the room and a fresh nonce
 *      (hello); the listener answers with its own fresh nonce (challenge)
 *      whatever the room; the dialer signs the listener's nonce with the
 *      room's access capability (proof, ./proof.ts); the listener checks it
 *      with the capability public key it derives from ITS OWN copy of the room
 *      key, and either refuses `unauthorized` (the same answer whether it does
 *      not hold the room or the proof is wrong) or signs the dialer's nonce in
 *      turn, which the dialer checks the same way. No room data moves before
 *      both proofs passed, so a peer without the capability can neither read
 *      nor write, and learns nothing about the room, not even that it exists.
 *   2. Sync, as on the relay path: each side sends step1 (its state vector)
 *      and answers the other's with step2 (what it lacks, split under the
 *      frame limit, ../sync/split-update.ts). Then live updates both ways.
 *      Every incoming update goes through `ConversationDoc.applyRemote` (the
 *      doc rules, ../conversation/doc-rules.ts, as the relay checks them) and
 *      is applied whole or refused whole (`doc-rules:<reason>`, stream kept),
 *      one at a time in arrival order. Updates are applied with the session as
 *      origin: never echoed to the peer they came from, but forwarded through
 *      the doc to every other session. The session is a `PeerOrigin`: a relay
 *      connection of the same doc does not upload them one by one (their
 *      writer does), only what the relay still lacks after a grace period.
 *   3. Awareness rides the same stream, states encrypted by the caller (the
 *      relay protocol's `{ e: <ciphertext> }`), shared per room across
 *      sessions so typing reaches peers several hops away.
 *   4. Media chunks too: either side may ask for a chunk by its id (the hash
 *      of its ciphertext) and is sent the blob, or told it is not there. The
 *      asker checks the hash (PeerSync.fetchChunk); the answering side may
 *      pass the request on one hop (a `kith serve` between two browsers).
 *      Only a peer that passed the room's handshake can ask.
 *
 * Nothing from a peer is trusted: a frame that does not decode or is over the
 * limit closes THAT stream with a named reason (./errors.ts, wire refused
 * frame); it never throws out of a handler and never stops the node.
 */
import type { Stream } from '@libp2p/interface';
import {
	applyAwarenessUpdate,
	encodeAwarenessUpdate,
	removeAwarenessStates,
	type Awareness
} from 'y-protocols/awareness';
import {
	encodeStateVector,
	updateSince,
	type ConversationDoc,
	type RuleViolation
} from '../conversation';
import { randomBytes, type RoomId } from '../crypto';
import { PEER_CHUNK_TIMEOUT_MS } from '../media/chunks';
import type { ChunkId } from '../media/manifest';
import type { RoomCapability } from '../sync/capability';
import { Emitter } from '../sync/emitter';
import type { PeerOrigin, SyncLogger } from '../sync/relay-connection';
import { MAX_UPDATE_BYTES } from '../sync/relay-connection';
import { splitUpdate } from '../sync/split-update';
import { P2PRefusedError } from './errors';
import { Slots } from './slots';
import { FrameStream, FrameStreamError } from './frame-stream';
import { signProof, verifyProof } from './proof';
import {
	NONCE_BYTES,
	PROTOCOL_VERSION,
	readP2PMessage,
	writeAwareness,
	writeChallenge,
	writeChunk,
	writeChunkNone,
	writeChunkWant,
	writeHello,
	writeP2PRefused,
	writeProof,
	writeSyncStep1,
	writeSyncStep2,
	writeSyncUpdate,
	type P2PMessage
} from './wire';

export const KITH_SYNC_PROTOCOL = '/kith/sync/1.0.0';

/** Largest frame either side accepts (length prefix excluded). */
export const MAX_FRAME_BYTES = 2 * 1024 * 1024;
/** The whole handshake must finish within this, or the stream is closed. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Doc-rule refusals after which a peer's stream is closed (`too-many-refusals`). */
export const MAX_RULE_REFUSALS = 16;
/** How long a refusing side waits for the peer to close before cutting the stream. */
const CLOSE_GRACE_MS = 2_000;
/**
 * Chunk requests one side keeps open on a stream at once; the other side
 * answers "none" to any past that many. Eight 256 KiB chunks in flight keep
 * a LAN busy without starving the room's live updates on the same stream.
 */
export const MAX_CHUNK_REQUESTS = 8;
/** A chunk request unanswered this long counts as "not there". */
export const CHUNK_TIMEOUT_MS = PEER_CHUNK_TIMEOUT_MS;

/** Refusal reasons of /kith/sync (docs/protocol.md, "P2P sync"). All but doc-rules close the stream. */
export type P2PRefusalReason =
	| 'unauthorized'
	| 'unsupported-version'
	| 'malformed-frame'
	| 'frame-too-large'
	| 'unexpected-message'
	| 'handshake-timeout'
	| 'too-many-refusals'
	| 'duplicate'
	| 'shutting-down'
	| `doc-rules:${RuleViolation}`;

const REFUSAL_MESSAGES: Record<string, string> = {
	unauthorized: 'This peer does not serve that conversation to you.',
	'unsupported-version': 'This peer speaks another version of /kith/sync.',
	'malformed-frame': 'A frame did not decode.',
	'frame-too-large': `A frame was over the ${MAX_FRAME_BYTES}-byte limit.`,
	'unexpected-message': 'A message came at a point of the protocol where it has no place.',
	'handshake-timeout': 'The handshake did not finish in time.',
	'too-many-refusals': 'Too many updates broke the conversation rules.',
	duplicate: 'Another stream already syncs this conversation with this peer.',
	'shutting-down': 'This peer is shutting down.'
};

/** One room a peer serves: its doc, its capability and its shared awareness. */
export interface SyncRoom {
	readonly roomId: RoomId;
	readonly cdoc: ConversationDoc;
	/** The room's access capability (../sync/capability.ts), derived from this peer's own room key. */
	readonly capability: RoomCapability | Promise<RoomCapability>;
	/** Awareness of the room, shared by every session of it (and its client id is the doc's). */
	readonly awareness: Awareness;
}

/** Who is on each end of a stream: peer ids as multihash bytes (authenticated by noise). */
export interface StreamPeers {
	local: Uint8Array;
	remote: Uint8Array;
	/** The remote peer id as text, for logs and events. */
	remoteName: string;
}

export interface SessionOptions {
	logger?: SyncLogger;
	handshakeTimeoutMs?: number;
	/** Called when an update from the peer passed the doc rules and added something. */
	onRemoteApplied?: (update: Uint8Array, session: SyncSession) => void;
	/**
	 * Answer the peer's request for a chunk: its blob, or undefined when it is
	 * not here. `hops`: how far the request may still be passed on. Without
	 * it, every request is answered "none".
	 */
	serveChunk?: (id: ChunkId, hops: number, session: SyncSession) => Promise<Uint8Array | undefined>;
}

export interface SessionEnd {
	/** Our or the peer's refusal reason, or `closed` (an orderly end), or `reset` (the stream broke). */
	reason: string;
	/** True when the peer refused or closed. */
	byRemote: boolean;
}

export interface SyncSessionEvents {
	/** The peer's step2 was applied: this doc holds everything the peer held when the session began. */
	synced: Record<string, never>;
	/** An update from the peer broke the doc rules and was refused whole. */
	'remote-refused': { reason: RuleViolation; detail: string };
	/** The peer refused one of our frames without closing (a doc-rules refusal). */
	refused: { reason: string; message: string };
	closed: SessionEnd;
}

const silentLogger: SyncLogger = {
	debug: () => undefined,
	info: () => undefined,
	warn: () => undefined,
	error: () => undefined
};

/** An update with nothing in it is two zero bytes (no structs, no deletes). */
const EMPTY_UPDATE_LENGTH = 2;

/** Which session last told us each awareness client's state, per room awareness. */
const awarenessSources = new WeakMap<Awareness, Map<number, SyncSession>>();

// ---- handshake ---------------------------------------------------------------

/**
 * Dialer side: run the handshake for `room` on a fresh outbound stream and
 * start syncing. Rejects with P2PRefusedError when either side refuses (the
 * stream is closed by then).
 */
export async function openSyncSession(
	stream: Stream,
	peers: StreamPeers,
	room: SyncRoom,
	options: SessionOptions = {}
): Promise<SyncSession> {
	const frames = new FrameStream(stream, { maxFrameBytes: MAX_FRAME_BYTES });
	const log = options.logger ?? silentLogger;
	const timeout = handshakeTimer(frames, options.handshakeTimeoutMs);
	try {
		const ourNonce = randomBytes(NONCE_BYTES);
		await frames.send(writeHello(room.roomId, ourNonce));
		const challenge = await readHandshake(frames, 'challenge');
		const capability = await room.capability;
		const signature = await signProof(capability, {
			role: 'dialer',
			roomId: room.roomId,
			nonce: challenge.nonce,
			prover: peers.local,
			verifier: peers.remote
		});
		await frames.send(writeProof(signature));
		const theirs = await readHandshake(frames, 'proof');
		const ok = await verifyProof(
			capability.publicKey,
			{
				role: 'listener',
				roomId: room.roomId,
				nonce: ourNonce,
				prover: peers.remote,
				verifier: peers.local
			},
			theirs.signature
		);
		if (!ok) throw new P2PRefusedError('unauthorized', 'the peer’s proof does not verify', false);
		timeout.clear();
		log.info('p2p session open', { room: room.roomId, peer: peers.remoteName, as: 'dialer' });
		return new SyncSession(frames, peers, room, options);
	} catch (error) {
		timeout.clear();
		throw await failHandshake(frames, error, log, room.roomId, peers.remoteName);
	}
}

/**
 * Listener side: answer an inbound stream. `lookup` gives the room this peer
 * holds under an id, or undefined. Resolves with the session, or with null
 * when the handshake failed (the peer was refused and the stream closed).
 */
export async function acceptSyncSession(
	stream: Stream,
	peers: StreamPeers,
	lookup: (roomId: RoomId) => SyncRoom | undefined,
	options: SessionOptions = {}
): Promise<SyncSession | null> {
	const frames = new FrameStream(stream, { maxFrameBytes: MAX_FRAME_BYTES });
	const log = options.logger ?? silentLogger;
	const timeout = handshakeTimer(frames, options.handshakeTimeoutMs);
	let roomId: RoomId | undefined;
	try {
		const hello = await readHandshake(frames, 'hello');
		roomId = hello.roomId;
		if (hello.version !== PROTOCOL_VERSION) {
			throw new P2PRefusedError('unsupported-version', `version ${hello.version}`, false);
		}
		// Sent whatever the room: nothing yet says whether this peer holds it.
		const ourNonce = randomBytes(NONCE_BYTES);
		await frames.send(writeChallenge(ourNonce));
		const proof = await readHandshake(frames, 'proof');
		const room = lookup(hello.roomId);
		const capability = room ? await room.capability : null;
		const ok = await verifyProof(
			capability?.publicKey ?? null,
			{
				role: 'dialer',
				roomId: hello.roomId,
				nonce: ourNonce,
				prover: peers.remote,
				verifier: peers.local
			},
			proof.signature
		);
		if (!ok || !room || !capability) {
			throw new P2PRefusedError('unauthorized', 'no valid proof of access', false);
		}
		const signature = await signProof(capability, {
			role: 'listener',
			roomId: hello.roomId,
			nonce: hello.nonce,
			prover: peers.local,
			verifier: peers.remote
		});
		await frames.send(writeProof(signature));
		timeout.clear();
		log.info('p2p session open', { room: room.roomId, peer: peers.remoteName, as: 'listener' });
		return new SyncSession(frames, peers, room, options);
	} catch (error) {
		timeout.clear();
		const failure = await failHandshake(frames, error, log, roomId, peers.remoteName);
		log.debug('p2p stream refused', { peer: peers.remoteName, reason: failure.reason });
		return null;
	}
}

type HandshakeMessage<T extends P2PMessage['type']> = Extract<P2PMessage, { type: T }>;

async function readHandshake<T extends 'hello' | 'challenge' | 'proof'>(
	frames: FrameStream,
	expected: T
): Promise<HandshakeMessage<T>> {
	const message = await readMessage(frames);
	if (message === null) throw new P2PRefusedError('closed', 'the peer closed the stream', true);
	if (message.type === 'refused') {
		throw new P2PRefusedError(message.reason, message.message || message.reason, true);
	}
	if (message.type !== expected) {
		throw new P2PRefusedError(
			'unexpected-message',
			`${message.type} instead of ${expected}`,
			false
		);
	}
	return message as HandshakeMessage<T>;
}

/** The next message; bad framing becomes a refusal of ours. */
async function readMessage(frames: FrameStream): Promise<P2PMessage | null> {
	let bytes: Uint8Array | null;
	try {
		bytes = await frames.next();
	} catch (error) {
		if (error instanceof FrameStreamError) {
			throw new P2PRefusedError(error.reason, error.message, false);
		}
		throw new P2PRefusedError('reset', describe(error), true, { cause: error });
	}
	if (bytes === null) return null;
	try {
		return readP2PMessage(bytes);
	} catch (error) {
		throw new P2PRefusedError('malformed-frame', describe(error), false, { cause: error });
	}
}

function handshakeTimer(frames: FrameStream, ms = HANDSHAKE_TIMEOUT_MS): { clear(): void } {
	const timer = setTimeout(() => {
		void refuseAndClose(frames, 'handshake-timeout', REFUSAL_MESSAGES['handshake-timeout'] ?? '');
	}, ms);
	return { clear: () => clearTimeout(timer) };
}

/** Turn any handshake failure into a P2PRefusedError, refusing the peer when the fault is theirs. */
async function failHandshake(
	frames: FrameStream,
	error: unknown,
	log: SyncLogger,
	roomId: RoomId | undefined,
	peer: string
): Promise<P2PRefusedError> {
	const refusal =
		error instanceof P2PRefusedError
			? error
			: new P2PRefusedError('reset', describe(error), true, { cause: error });
	if (refusal.byRemote) {
		frames.abort(refusal);
	} else {
		await refuseAndClose(frames, refusal.reason, REFUSAL_MESSAGES[refusal.reason] ?? '');
	}
	log.warn('p2p handshake failed', {
		room: roomId,
		peer,
		reason: refusal.reason,
		byRemote: refusal.byRemote,
		detail: refusal.message
	});
	return refusal;
}

/**
 * Send a refusal, close our end, and cut the stream if the peer has not
 * closed its end within a grace period. Never throws.
 */
async function refuseAndClose(frames: FrameStream, reason: string, message: string): Promise<void> {
	const stream = frames.stream;
	const cut = setTimeout(() => frames.abort(new Error(`refused: ${reason}`)), CLOSE_GRACE_MS);
	stream.addEventListener('close', () => clearTimeout(cut), { once: true });
	try {
		await frames.send(writeP2PRefused(reason, message));
		await frames.close();
	} catch {
		clearTimeout(cut);
		frames.abort(new Error(`refused: ${reason}`));
	}
}

// ---- the session ------------------------------------------------------------

/** One authenticated /kith/sync stream syncing one room with one peer. */
export class SyncSession implements PeerOrigin {
	/** Transactions of this session bring a peer's updates (../sync/relay-connection.ts). */
	readonly peerOrigin = true;
	readonly roomId: RoomId;
	readonly room: SyncRoom;
	/** The peer's id as text. */
	readonly remotePeer: string;
	readonly direction: 'inbound' | 'outbound';
	/** Resolves once the session ended, with why. */
	readonly closed: Promise<SessionEnd>;

	readonly #frames: FrameStream;
	readonly #log: SyncLogger;
	readonly #events: Emitter<SyncSessionEvents>;
	readonly #onRemoteApplied: SessionOptions['onRemoteApplied'];
	readonly #serveChunk: SessionOptions['serveChunk'];
	readonly #heard = new Set<number>();
	/** Our chunk requests awaiting an answer, by request id. */
	readonly #wants = new Map<number, (blob: Uint8Array | null) => void>();
	/** Our chunk requests open at once (more wait their turn). */
	readonly #wanting = new Slots(MAX_CHUNK_REQUESTS);
	#nextRequest = 0;
	/** The peer's chunk requests being answered. */
	#serving = 0;
	#resolveClosed!: (end: SessionEnd) => void;
	#synced = false;
	#refusals = 0;
	#ended: SessionEnd | null = null;

	constructor(frames: FrameStream, peers: StreamPeers, room: SyncRoom, options: SessionOptions) {
		this.#frames = frames;
		this.room = room;
		this.roomId = room.roomId;
		this.remotePeer = peers.remoteName;
		this.direction = frames.stream.direction;
		this.#log = options.logger ?? silentLogger;
		this.#onRemoteApplied = options.onRemoteApplied;
		this.#serveChunk = options.serveChunk;
		this.#events = new Emitter((error) =>
			this.#log.error('a p2p session listener failed', { error: describe(error) })
		);
		this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));

		room.cdoc.doc.on('update', this.#onDocUpdate);
		room.awareness.on('update', this.#onAwarenessUpdate);
		void this.#send(writeSyncStep1(encodeStateVector(room.cdoc)));
		const known = [...room.awareness.getStates().keys()];
		if (known.length > 0) {
			void this.#send(writeAwareness(encodeAwarenessUpdate(room.awareness, known)));
		}
		void this.#readLoop();
	}

	/** True once the peer's step2 was applied. */
	get synced(): boolean {
		return this.#synced;
	}

	get isOpen(): boolean {
		return this.#ended === null;
	}

	on<K extends keyof SyncSessionEvents>(
		type: K,
		listener: (payload: SyncSessionEvents[K]) => void
	): () => void {
		return this.#events.on(type, listener);
	}

	/** End the session: with a reason, the peer is told why (e.g. `duplicate`, `shutting-down`). */
	async close(reason: P2PRefusalReason | 'closed' = 'closed'): Promise<void> {
		if (this.#ended) return;
		this.#end({ reason, byRemote: false });
		if (reason === 'closed') {
			await this.#frames.close().catch(() => this.#frames.abort(new Error('closed')));
		} else {
			await refuseAndClose(this.#frames, reason, REFUSAL_MESSAGES[reason] ?? '');
		}
	}

	async #readLoop(): Promise<void> {
		for (;;) {
			let message: P2PMessage | null;
			try {
				message = await readMessage(this.#frames);
			} catch (error) {
				const refusal = error as P2PRefusedError;
				if (this.#ended) return;
				this.#log.warn('p2p stream failed', {
					room: this.roomId,
					peer: this.remotePeer,
					reason: refusal.reason,
					detail: refusal.message
				});
				if (refusal.byRemote) {
					this.#end({ reason: refusal.reason, byRemote: true });
					this.#frames.abort(refusal);
				} else {
					void this.close(refusal.reason as P2PRefusalReason);
				}
				return;
			}
			if (this.#ended) return;
			if (message === null) {
				// The peer closed its end: an orderly goodbye. Close ours.
				this.#end({ reason: 'closed', byRemote: true });
				void this.#frames.close().catch(() => undefined);
				return;
			}
			try {
				// Updates are applied here, one at a time: while one is checked, the
				// next frames wait in the stream, which pauses the sender past 4 MiB.
				await this.#handle(message);
			} catch (error) {
				// A bug here must not take the node down; it is still reported.
				this.#log.error('failed to handle a p2p frame', {
					room: this.roomId,
					type: message.type,
					error: describe(error)
				});
			}
		}
	}

	async #handle(message: P2PMessage): Promise<void> {
		switch (message.type) {
			case 'sync-step1':
				void this.#answerStep1(message.stateVector);
				return;
			case 'sync-step2':
			case 'sync-update':
				await this.#apply(message.update, message.type === 'sync-step2');
				return;
			case 'awareness':
				this.#applyAwareness(message);
				return;
			case 'refused':
				this.#remoteRefused(message.reason, message.message);
				return;
			case 'chunk-want':
				void this.#answerChunk(message.request, message.id, message.hops);
				return;
			case 'chunk':
			case 'chunk-none': {
				// None for an answer that came after its request timed out.
				this.#wants.get(message.request)?.(message.type === 'chunk' ? message.blob : null);
				return;
			}
			case 'hello':
			case 'challenge':
			case 'proof':
				void this.close('unexpected-message');
				return;
		}
	}

	/**
	 * Step2: what the peer lacks, in pieces under the frame limit, each sent
	 * when the previous one left (a long history never sits whole in the send
	 * queue). Live updates may overtake later pieces: Yjs holds an item whose
	 * predecessors are missing until they come.
	 */
	async #answerStep1(stateVector: Uint8Array): Promise<void> {
		const missing = updateSince(this.room.cdoc, stateVector);
		const pieces =
			missing.length > EMPTY_UPDATE_LENGTH ? splitUpdate(missing, MAX_UPDATE_BYTES) : [missing];
		for (const [i, piece] of pieces.entries()) {
			if (this.#ended) return;
			const sent = this.#send(i === 0 ? writeSyncStep2(piece) : writeSyncUpdate(piece));
			if (!(await sent)) return;
		}
	}

	async #apply(update: Uint8Array, catchUp: boolean): Promise<void> {
		if (this.#ended) return;
		const check = await this.room.cdoc.applyRemote(update, this);
		if (!check.ok) {
			this.#refusals++;
			this.#log.warn('refused an update from a peer that breaks the doc rules', {
				room: this.roomId,
				peer: this.remotePeer,
				reason: check.reason,
				detail: check.detail
			});
			this.#events.emit('remote-refused', { reason: check.reason, detail: check.detail });
			if (this.#refusals >= MAX_RULE_REFUSALS) {
				void this.close('too-many-refusals');
				return;
			}
			void this.#send(writeP2PRefused(`doc-rules:${check.reason}`, check.detail));
			return;
		}
		if (check.entries.length > 0 && this.#onRemoteApplied) {
			try {
				this.#onRemoteApplied(update, this);
			} catch (error) {
				this.#log.error('onRemoteApplied failed', { room: this.roomId, error: describe(error) });
			}
		}
		if (catchUp && !this.#synced) {
			this.#synced = true;
			this.#events.emit('synced', {});
		}
	}

	#remoteRefused(reason: string, message: string): void {
		if (reason.startsWith('doc-rules:')) {
			this.#log.warn('a peer refused an update of ours', { room: this.roomId, reason, message });
			this.#events.emit('refused', { reason, message });
			return;
		}
		// Every other refusal ends the stream.
		this.#log.warn('a peer closed the p2p stream', { room: this.roomId, reason, message });
		this.#end({ reason, byRemote: true });
		void this.#frames.close().catch(() => undefined);
	}

	// ---- out ---------------------------------------------------------------------

	readonly #onDocUpdate = (update: Uint8Array, origin: unknown): void => {
		if (origin === this || this.#ended) return; // the peer's own update, coming back
		for (const piece of splitUpdate(update, MAX_UPDATE_BYTES)) {
			void this.#send(writeSyncUpdate(piece));
		}
	};

	/** Queue a frame; resolves true once sent, false when the stream failed (then it is over). */
	#send(body: Uint8Array): Promise<boolean> {
		if (this.#ended) return Promise.resolve(false);
		return this.#frames.send(body).then(
			() => true,
			(error: unknown) => {
				if (this.#ended) return false;
				const reason = error instanceof FrameStreamError ? error.reason : 'reset';
				this.#log.warn('could not send to a peer', {
					room: this.roomId,
					peer: this.remotePeer,
					reason,
					error: describe(error)
				});
				this.#end({ reason, byRemote: reason === 'reset' });
				this.#frames.abort(error instanceof Error ? error : new Error(String(error)));
				return false;
			}
		);
	}

	// ---- media chunks --------------------------------------------------------------

	/**
	 * Ask the peer for a chunk: its blob as the peer sent it (NOT checked
	 * against the id here: PeerSync.fetchChunk does), or null when the peer
	 * does not have it, did not answer in time, or the session ended. `hops`:
	 * how far the peer may pass the request on. Rejects only when `signal`
	 * aborts.
	 */
	async wantChunk(id: ChunkId, hops = 0, signal?: AbortSignal): Promise<Uint8Array | null> {
		signal?.throwIfAborted();
		return this.#wanting.run(async () => {
			signal?.throwIfAborted();
			if (this.#ended) return null;
			const request = this.#nextRequest;
			this.#nextRequest = (this.#nextRequest + 1) % 0x1_0000_0000;
			return new Promise<Uint8Array | null>((resolve, reject) => {
				const settle = () => {
					clearTimeout(timer);
					signal?.removeEventListener('abort', onAbort);
					this.#wants.delete(request);
				};
				const done = (blob: Uint8Array | null) => {
					settle();
					resolve(blob);
				};
				const onAbort = () => {
					settle();
					reject(signal?.reason);
				};
				const timer = setTimeout(() => {
					this.#log.debug('a peer did not answer a chunk request in time', {
						room: this.roomId,
						peer: this.remotePeer
					});
					done(null);
				}, CHUNK_TIMEOUT_MS);
				signal?.addEventListener('abort', onAbort, { once: true });
				this.#wants.set(request, done);
				void this.#send(writeChunkWant(request, id, hops)).then((sent) => {
					if (!sent) done(null);
				});
			});
		});
	}

	async #answerChunk(request: number, id: ChunkId, hops: number): Promise<void> {
		if (!this.#serveChunk || this.#serving >= MAX_CHUNK_REQUESTS) {
			await this.#send(writeChunkNone(request));
			return;
		}
		this.#serving++;
		let blob: Uint8Array | undefined;
		try {
			blob = await this.#serveChunk(id, hops, this);
		} catch (error) {
			this.#log.warn('could not read a chunk a peer asked for', {
				room: this.roomId,
				error: describe(error)
			});
		} finally {
			this.#serving--;
		}
		await this.#send(blob && blob.length > 0 ? writeChunk(request, blob) : writeChunkNone(request));
	}

	// ---- awareness ---------------------------------------------------------------

	#applyAwareness(message: Extract<P2PMessage, { type: 'awareness' }>): void {
		const awareness = this.room.awareness;
		const own = awareness.clientID;
		const ownClock = awareness.meta.get(own)?.clock ?? 0;
		if (message.entries.some((e) => e.client === own && e.state !== null && e.clock > ownClock)) {
			// Only this device speaks for its client id. Copies of its own state that
			// come back round a mesh carry its own clock, and y-protocols skips them.
			this.#log.warn('dropped an awareness update that speaks for this device', {
				room: this.roomId,
				peer: this.remotePeer
			});
			return;
		}
		let sources = awarenessSources.get(awareness);
		if (!sources) awarenessSources.set(awareness, (sources = new Map()));
		for (const entry of message.entries) {
			if (entry.client === own) continue;
			this.#heard.add(entry.client);
			sources.set(entry.client, this);
		}
		// Checked by readAwarenessUpdate (every state null or { e }): this cannot throw.
		applyAwarenessUpdate(awareness, message.update, this);
	}

	readonly #onAwarenessUpdate = (
		change: { added: number[]; updated: number[]; removed: number[] },
		origin: unknown
	): void => {
		if (origin === this || this.#ended) return;
		const clients = [...change.added, ...change.updated, ...change.removed];
		void this.#send(writeAwareness(encodeAwarenessUpdate(this.room.awareness, clients)));
	};

	/** States this session brought in leave with it, unless another session spoke for them since. */
	#dropHeardAwareness(): void {
		const awareness = this.room.awareness;
		const sources = awarenessSources.get(awareness);
		const gone = [...this.#heard].filter((client) => sources?.get(client) === this);
		for (const client of gone) sources?.delete(client);
		const present = gone.filter((client) => awareness.getStates().has(client));
		if (present.length > 0) removeAwarenessStates(awareness, present, this);
	}

	#end(end: SessionEnd): void {
		if (this.#ended) return;
		this.#ended = end;
		this.room.cdoc.doc.off('update', this.#onDocUpdate);
		this.room.awareness.off('update', this.#onAwarenessUpdate);
		this.#dropHeardAwareness();
		for (const answer of [...this.#wants.values()]) answer(null);
		this.#log.info('p2p session closed', {
			room: this.roomId,
			peer: this.remotePeer,
			reason: end.reason,
			byRemote: end.byRemote
		});
		this.#resolveClosed(end);
		this.#events.emit('closed', end);
		this.#events.clear();
	}
}

function describe(error: unknown): string {
	return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
