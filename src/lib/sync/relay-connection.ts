/**
 * One WebSocket to one room on one relay, syncing one conversation doc
 * (docs/protocol.md, "Relay protocol"). The client side of the protocol:
 *
 *   1. Admission. `GET <relay>/sync/challenge?room=<room>` gives a nonce; the
 *      client signs "kith/room-access\0" || room || nonce with the room's
 *      access capability (./capability.ts) and opens
 *      `ws(s)://<relay>/sync/<room>?cap=…&nonce=…&sig=…&ack=1`. The relay either
 *      refuses (auth "permission denied" + reason, close 4403) or admits by
 *      sending sync step1 (its state vector). Only then is the connection
 *      "connected": an open socket alone proves nothing.
 *   2. Catch-up, both ways. The client sends its step1 as soon as the socket
 *      opens and answers the relay's step1 with step2 (everything the relay
 *      lacks, including whatever was written offline). The relay's step2 is
 *      what the client lacked. Updates over MAX_UPDATE_BYTES are split
 *      (./split-update.ts): the relay closes a connection that sends a frame
 *      over its limit, and a backlog sent whole would be refused after every
 *      reconnection. A large backlog goes out a budget per round, so it does
 *      not run into the relay's rate limit.
 *   3. Live. Local doc updates (any origin but this connection) go out as sync
 *      updates once admitted; before admission the step2 answer carries them.
 *      Updates from a peer (a `PeerOrigin`: a p2p session) are the exception:
 *      the device that wrote them uploads them itself, so they are not sent
 *      one frame each. After a grace period (`bridgeDelayMs`) what of them the
 *      relay still lacks, by its acknowledgements and the updates it relayed
 *      here, goes out in one update: a peer that cannot reach the relay still
 *      gets its writes there through this one, and a burst a peer shares both
 *      ways does not double this connection's frames against the relay's
 *      rate limit. Live frames (updates, awareness, notifications) keep to a
 *      pace of their own, a quarter of the relay's default rate limit: past it, local
 *      updates wait and go out merged, awareness sends only the latest states
 *      and notifications wait (the newest NOTIFY_QUEUE), a round later.
 *      Incoming step2/updates are checked against the doc rules by
 *      `ConversationDoc.applyRemote` and applied whole or not at all, one at a
 *      time in arrival order. A refused update is dropped and logged with its
 *      reason: the relay is not trusted to have checked it.
 *   4. Acknowledgements. `kith-stored` carries the relay's state vector after
 *      a durable write; `relayState` keeps the maximum per client (together
 *      with the relay's step1), so `isSentBy` (./status.ts) can say "Sent".
 *      `kith-refused` is surfaced as `lastRefusal`; after `rate-limited` or
 *      `server-error` nothing was stored, so what the relay lacks (by its
 *      acknowledgements) is sent again after a pause that doubles until an
 *      acknowledgement shows progress.
 *   5. Awareness (typing, presence) rides the same socket with y-protocols'
 *      Awareness. Each state is `{ e: <base64url ciphertext> }`: the caller
 *      encrypts and decrypts; this layer never sees plaintext.
 *   6. Reconnection with exponential backoff and jitter (./backoff.ts), reset
 *      once a connection has been stable. A permission denial for a reason
 *      that retrying cannot fix (wrong capability, bad room, unauthorized)
 *      stops retrying: status "offline" with the refusal surfaced, until
 *      `reconnectNow()`. Denials of the challenge itself (expired, replayed,
 *      not authentic) are retried with a fresh nonce.
 *
 * Nothing from the relay is trusted: a frame that does not decode is dropped
 * and logged, never thrown out of a socket handler.
 */
import {
	applyAwarenessUpdate,
	Awareness,
	encodeAwarenessUpdate,
	removeAwarenessStates
} from 'y-protocols/awareness';
import {
	encodeStateVector,
	updateSince,
	type ConversationDoc,
	type RuleViolation
} from '../conversation';
import { fromBase64Url, isRoomId, toBase64Url, type RoomId } from '../crypto';
import * as Y from 'yjs';
import { DEFAULT_BACKOFF, backoffDelay, type BackoffOptions } from './backoff';
import { challengeMessage, deriveRoomCapability, type RoomCapability } from './capability';
import { Emitter } from './emitter';
import { relayEndpoint } from './endpoint';
import { splitUpdate } from './split-update';
import { CapabilityError, ChallengeError, RelayFrameError } from './errors';
import {
	awarenessStateOf,
	MAX_NOTIFY_BYTES,
	readRelayMessage,
	writeAwareness,
	writeNotify,
	writeStateVector,
	writeSyncStep1,
	writeSyncStep2,
	writeSyncUpdate,
	type AwarenessEntry,
	type RelayMessage
} from './messages';

export type ConnectionStatus = 'connecting' | 'connected' | 'offline';

/** Something the relay refused: admission (`denied`) or a frame/update (`refused`). */
export interface RelayRefusal {
	kind: 'denied' | 'refused';
	/** The relay's reason code, e.g. `wrong-capability`, `rate-limited`, `doc-rules:overwrite`. */
	code: string;
	/** A sentence for the user. */
	message: string;
	/** True when the client stopped retrying because of it. */
	final: boolean;
}

export interface RemoteAwarenessChange {
	/** Every remote client's current encrypted state (own state excluded). */
	states: ReadonlyMap<number, Uint8Array>;
	added: number[];
	updated: number[];
	removed: number[];
}

export interface RelayConnectionEvents {
	status: { status: ConnectionStatus };
	/** The relay's step2 was applied: this doc holds everything the relay had at admission. */
	synced: Record<string, never>;
	/** `relayState` grew (an acknowledgement, or the relay's state at admission). */
	stored: { relayState: ReadonlyMap<number, number> };
	/** The relay refused admission or a frame. */
	refused: RelayRefusal;
	/** An update from the relay broke the doc rules and was dropped (bad or buggy relay). */
	'remote-refused': { reason: RuleViolation; detail: string };
	awareness: RemoteAwarenessChange;
}

export interface SyncLogger {
	debug(message: string, fields?: Record<string, unknown>): void;
	info(message: string, fields?: Record<string, unknown>): void;
	warn(message: string, fields?: Record<string, unknown>): void;
	error(message: string, fields?: Record<string, unknown>): void;
}

export interface RelayConnectionOptions {
	/** The relay's http(s) base URL, e.g. `location.origin`; a path prefix is kept. */
	relayUrl: string;
	roomId: RoomId;
	cdoc: ConversationDoc;
	/** The room's key material: its epoch key, or the account key for the vault room. */
	capabilityIkm: Uint8Array;
	WebSocketImpl?: typeof WebSocket;
	fetchImpl?: typeof fetch;
	/**
	 * Called after an update from the relay passed the doc rules and was
	 * applied (not for updates that added nothing). A returned promise that
	 * rejects is logged.
	 */
	onRemoteApplied?: (update: Uint8Array) => void | Promise<void>;
	logger?: SyncLogger;
	backoff?: Partial<BackoffOptions>;
	/** Where `online`/`offline` events come from; `window` when there is one. Null: none. */
	networkEvents?: EventTarget | null;
	/**
	 * An opaque id of this device for the relay's push (docs/protocol.md, Push):
	 * the relay pushes to a device's subscription only while the device has no
	 * connection to the room.
	 */
	deviceId?: string;
	/** Give up on an attempt (challenge, open, admission) after this long. Default 30 s: a relay loads a large room before it admits. */
	handshakeTimeoutMs?: number;
	/**
	 * How long updates from peers (`PeerOrigin`) wait before what of them the
	 * relay still lacks is sent. Default BRIDGE_DELAY_MS.
	 */
	bridgeDelayMs?: number;
}

/**
 * A transaction origin that stands for another replica reached without the
 * relay: a p2p session (../p2p/sync-protocol.ts). What it brings was written
 * by a device that normally uploads it to the relay itself; a RelayConnection
 * carries it there only when the relay still lacks it after a grace period.
 */
export interface PeerOrigin {
	readonly peerOrigin: true;
}

export function isPeerOrigin(origin: unknown): origin is PeerOrigin {
	return (
		typeof origin === 'object' &&
		origin !== null &&
		(origin as Partial<PeerOrigin>).peerOrigin === true
	);
}

/**
 * Grace period for updates from peers: the device that wrote them uploads
 * them, and the relay passes them on here, well within it on a working link.
 */
export const BRIDGE_DELAY_MS = 2000;

/** Admission denials that a fresh challenge can cure; any other denial stops retrying. */
const RETRYABLE_DENIALS = new Set(['bad-challenge', 'expired-challenge', 'replayed-challenge']);

/** Close codes the relay uses after a denial. */
const DENIAL_CLOSE_CODES = new Set([4401, 4403]);
/** RFC 6455 "Message Too Big": how a WebSocket layer refuses a frame over its size limit. */
const CLOSE_MESSAGE_TOO_BIG = 1009;

const DENIAL_MESSAGES: Record<string, string> = {
	unauthorized: 'The relay did not accept this device’s proof of access to the conversation.',
	'wrong-capability':
		'The relay holds this conversation under another key: this device cannot sync it there.',
	'bad-room': 'The relay does not accept this conversation’s id.',
	'room-retired':
		'This conversation moved on without this device, and the relay dropped its old copy.',
	'bad-challenge': 'The relay did not recognise its own challenge; retrying.',
	'expired-challenge': 'The relay’s challenge expired before it was answered; retrying.',
	'replayed-challenge': 'The relay’s challenge was already used; retrying.'
};

const REFUSAL_MESSAGES: Record<string, string> = {
	'frame-too-large': 'A message was too large for the relay to accept; it stays on this device.',
	'rate-limited': 'Sending too fast for the relay; the rest goes out shortly.',
	'room-quota': 'This conversation is full on the relay: new messages are kept on this device.'
};

/**
 * Largest update sent in one frame (bigger ones are split, ./split-update.ts):
 * well under the relay's default frame limit (2 MiB), above the largest
 * envelope (1 MiB) so that one envelope always fits.
 */
export const MAX_UPDATE_BYTES = 1024 * 1024 + 64 * 1024;
/**
 * Catch-up bytes sent per round; the rest follows a round later. Half the
 * relay's default byte rate (8 MiB/s), so a long offline backlog is not
 * dropped as `rate-limited` and sent again and again.
 */
const CATCH_UP_BUDGET_BYTES = 4 * 1024 * 1024;
/** Pause between catch-up rounds; doubles while the relay acknowledges nothing new. */
/** Notification envelopes kept while offline, per room (the newest). */
const NOTIFY_QUEUE = 16;
const CATCH_UP_INITIAL_MS = 1000;
const CATCH_UP_MAX_MS = 30_000;
/**
 * Live frames sent per second, and at most at once (LIVE_BURST): a quarter of
 * the relay's default rate limit (200 frames per second, bursts of twice
 * that), so that a burst of messages, each an update, an awareness change and
 * a notification, never runs into it, even when a loaded relay or page
 * delivers a second's frames at once on top of the frames that are not paced
 * (sync steps, catch-up). Past it, live frames wait for the next pace round,
 * merged where they can be: updates merge, so a burst goes out a round at a
 * time whatever its size.
 */
const LIVE_FRAMES_PER_SEC = 50;
const LIVE_BURST = 100;
const PACE_ROUND_MS = 100;
/** Refusals after which what the relay lacks is sent again (nothing was stored). */
const RESEND_AFTER = new Set(['rate-limited', 'server-error']);

/** A refusal that mends itself: the connection sends what was refused again. */
export function isTransientRefusal(code: string): boolean {
	return RESEND_AFTER.has(code);
}

/** An update with nothing in it is two zero bytes (no structs, no deletes). */
const EMPTY_UPDATE_LENGTH = 2;

export const consoleLogger: SyncLogger = {
	debug: (message, fields) => console.debug(`kith:sync ${message}`, fields ?? ''),
	info: (message, fields) => console.info(`kith:sync ${message}`, fields ?? ''),
	warn: (message, fields) => console.warn(`kith:sync ${message}`, fields ?? ''),
	error: (message, fields) => console.error(`kith:sync ${message}`, fields ?? '')
};

/** Warnings and errors only, to the console under `kith <prefix>:` (the peer-to-peer paths). */
export function warningsLogger(prefix: string): SyncLogger {
	return {
		debug: () => undefined,
		info: () => undefined,
		warn: (message, fields) => console.warn(`kith ${prefix}: ${message}`, fields),
		error: (message, fields) => console.error(`kith ${prefix}: ${message}`, fields)
	};
}

const NONCE = /^[A-Za-z0-9_-]{1,512}$/;

function parseChallenge(body: unknown): string {
	const nonce =
		typeof body === 'object' && body !== null ? (body as { nonce?: unknown }).nonce : undefined;
	if (typeof nonce !== 'string' || !NONCE.test(nonce)) {
		throw new ChallengeError('the relay’s challenge has no usable nonce');
	}
	return nonce;
}

export class RelayConnection {
	readonly roomId: RoomId;
	readonly cdoc: ConversationDoc;
	/** Awareness of this room over this connection; its client id is the doc's bound client id. */
	readonly awareness: Awareness;

	readonly #relayUrl: string;
	readonly #device: string | undefined;
	/** Notification envelopes waiting for an admitted connection. */
	#notifyQueue: Uint8Array[] = [];
	readonly #WebSocket: typeof WebSocket;
	readonly #fetch: typeof fetch;
	readonly #onRemoteApplied: RelayConnectionOptions['onRemoteApplied'];
	readonly #log: SyncLogger;
	readonly #backoff: BackoffOptions;
	readonly #handshakeTimeoutMs: number;
	readonly #bridgeDelayMs: number;
	readonly #networkEvents: EventTarget | null;
	readonly #capability: Promise<RoomCapability>;
	readonly #events: Emitter<RelayConnectionEvents>;

	#status: ConnectionStatus = 'connecting';
	#ws: WebSocket | null = null;
	/** Bumped whenever an attempt is abandoned, so its late callbacks do nothing. */
	#generation = 0;
	#attemptRunning = false;
	#abort: AbortController | null = null;
	#retryTimer: ReturnType<typeof setTimeout> | null = null;
	#handshakeTimer: ReturnType<typeof setTimeout> | null = null;
	#failures = 0;
	#admittedAt: number | null = null;
	#synced = false;
	/** Stop retrying (a final denial) until reconnectNow(). */
	#stopped = false;
	/** The current attempt was denied: nothing more from its socket counts. */
	#deniedNow = false;
	/** The current socket's relay said `frame-too-large` itself (so its close says nothing new). */
	#tooLargeSaid = false;
	#networkDown = false;
	#destroyed = false;

	/** Monotonic: the most each client is known to be stored on the relay. */
	readonly #relayState = new Map<number, number>();
	/** What the relay holds as seen on this connection (for resending after a refusal). */
	#relayHolds = new Map<number, number>();
	#lastRefusal: RelayRefusal | null = null;
	#applying: Promise<void> = Promise.resolve();
	#catchUpTimer: ReturnType<typeof setTimeout> | null = null;
	#catchUpDelay = CATCH_UP_INITIAL_MS;
	/** Clients whose items came from peers since the last bridge round (see BRIDGE_DELAY_MS). */
	readonly #bridgeClients = new Set<number>();
	/** Pieces of a bridge round over the budget, sent in the next rounds. */
	#bridgeRest: Uint8Array[] = [];
	#bridgeTimer: ReturnType<typeof setTimeout> | null = null;
	/** Live frames this connection may send now (see LIVE_FRAMES_PER_SEC), and when that was counted. */
	#liveTokens = LIVE_BURST;
	#liveTokensAt = Date.now();
	/** Set while live frames wait for a pace round; they are sent in order, merged where they can be. */
	#paceTimer: ReturnType<typeof setTimeout> | null = null;
	/** Local updates waiting for a pace round. */
	#heldUpdates: Uint8Array[] = [];
	/** Awareness clients whose (latest) state waits for a pace round. */
	readonly #heldAwareness = new Set<number>();

	constructor(options: RelayConnectionOptions) {
		if (!isRoomId(options.roomId)) throw new CapabilityError('not a room id');
		if (options.capabilityIkm.length !== 32) {
			throw new CapabilityError('room key material must be 32 bytes');
		}
		this.roomId = options.roomId;
		this.cdoc = options.cdoc;
		this.#relayUrl = options.relayUrl;
		this.#device = options.deviceId;
		const WebSocketImpl = options.WebSocketImpl ?? globalThis.WebSocket;
		if (!WebSocketImpl) throw new TypeError('no WebSocket implementation: pass WebSocketImpl');
		this.#WebSocket = WebSocketImpl;
		// Bound: a detached `fetch` throws "Illegal invocation" in browsers.
		this.#fetch = options.fetchImpl ?? globalThis.fetch.bind(globalThis);
		this.#onRemoteApplied = options.onRemoteApplied;
		this.#log = options.logger ?? consoleLogger;
		this.#events = new Emitter<RelayConnectionEvents>((error) =>
			this.#log.error('a listener failed', { room: this.roomId, error: describe(error) })
		);
		this.#backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
		this.#handshakeTimeoutMs = options.handshakeTimeoutMs ?? 30_000;
		this.#bridgeDelayMs = options.bridgeDelayMs ?? BRIDGE_DELAY_MS;
		this.#networkEvents =
			options.networkEvents !== undefined
				? options.networkEvents
				: typeof window !== 'undefined'
					? window
					: null;
		// Copied: the caller may wipe its key after handing it over.
		this.#capability = deriveRoomCapability(options.capabilityIkm.slice(), options.roomId);
		// Never unhandled: an attempt awaits it and reports the failure.
		this.#capability.catch(() => undefined);

		this.awareness = new Awareness(options.cdoc.doc);
		// y-protocols starts every client with the state {}; Kith states are
		// encrypted, so there is nothing to say until the caller sets one.
		this.awareness.setLocalState(null);
		this.awareness.on('update', this.#onAwarenessUpdate);
		this.awareness.on('change', this.#onAwarenessChange);

		options.cdoc.doc.on('update', this.#onDocUpdate);
		options.cdoc.doc.on('destroy', this.#onDocDestroy);
		this.#networkEvents?.addEventListener('online', this.#onOnline);
		this.#networkEvents?.addEventListener('offline', this.#onOffline);
		this.#connect();
	}

	get status(): ConnectionStatus {
		return this.#status;
	}

	/** True once the relay's catch-up (step2) of the current connection was applied. */
	get synced(): boolean {
		return this.#synced;
	}

	/** client id → clock: every item below it is on the relay's disk. Only grows. */
	get relayState(): ReadonlyMap<number, number> {
		return this.#relayState;
	}

	get lastRefusal(): RelayRefusal | null {
		return this.#lastRefusal;
	}

	/** Subscribe to an event; returns the unsubscribe function. */
	on<K extends keyof RelayConnectionEvents>(
		type: K,
		listener: (payload: RelayConnectionEvents[K]) => void
	): () => void {
		return this.#events.on(type, listener);
	}

	/** Set (or with null, clear) this device's encrypted awareness state. */
	setLocalState(encryptedState: Uint8Array | null): void {
		if (this.#destroyed) return;
		this.awareness.setLocalState(encryptedState ? awarenessStateOf(encryptedState) : null);
	}

	/** Every remote client's current encrypted awareness state. */
	remoteStates(): Map<number, Uint8Array> {
		const states = new Map<number, Uint8Array>();
		for (const [client, state] of this.awareness.getStates()) {
			if (client === this.awareness.clientID) continue;
			// Every remote state passed readAwarenessUpdate: it is { e: base64url }.
			const e: unknown = state['e'];
			if (typeof e === 'string') states.set(client, fromBase64Url(e));
		}
		return states;
	}

	/**
	 * Try now: after a final denial (e.g. the app has a new key), or to skip a
	 * backoff wait. Does nothing while connected or connecting.
	 */
	reconnectNow(): void {
		if (this.#destroyed) return;
		this.#stopped = false;
		this.#nudge();
	}

	/** Close for good: say goodbye on awareness, close the socket, drop every listener. */
	destroy(): void {
		if (this.#destroyed) return;
		// Leave the room's awareness while the socket is still open.
		if (this.#admittedAt !== null && this.awareness.getLocalState() !== null) {
			removeAwarenessStates(this.awareness, [this.awareness.clientID], 'local');
		}
		this.#destroyed = true;
		this.#generation++;
		this.#clearTimers();
		this.#abort?.abort();
		this.#networkEvents?.removeEventListener('online', this.#onOnline);
		this.#networkEvents?.removeEventListener('offline', this.#onOffline);
		this.cdoc.doc.off('update', this.#onDocUpdate);
		this.cdoc.doc.off('destroy', this.#onDocDestroy);
		this.awareness.off('update', this.#onAwarenessUpdate);
		this.awareness.off('change', this.#onAwarenessChange);
		this.awareness.destroy();
		const ws = this.#ws;
		this.#ws = null;
		if (ws) this.#closeSocket(ws, 1000, 'client closed');
		this.#setStatus('offline');
		this.#events.clear();
	}

	// ---- connecting ----------------------------------------------------------

	#connect(): void {
		if (this.#destroyed || this.#stopped || this.#ws || this.#attemptRunning) return;
		const generation = ++this.#generation;
		this.#attemptRunning = true;
		this.#deniedNow = false;
		this.#tooLargeSaid = false;
		this.#setStatus('connecting');
		this.#handshakeTimer = setTimeout(() => {
			this.#handshakeTimer = null;
			if (generation !== this.#generation) return;
			this.#log.warn('connection attempt timed out', { room: this.roomId });
			this.#abandonAttempt();
		}, this.#handshakeTimeoutMs);
		this.#open(generation).then(
			() => undefined,
			(error: unknown) => {
				if (generation !== this.#generation) return;
				this.#log.warn('connection attempt failed', {
					room: this.roomId,
					error: describe(error)
				});
				this.#abandonAttempt();
			}
		);
	}

	async #open(generation: number): Promise<void> {
		const abort = new AbortController();
		this.#abort = abort;
		const capability = await this.#capability;
		const nonce = await this.#challenge(abort.signal);
		if (generation !== this.#generation) return;
		const signature = await capability.sign(challengeMessage(this.roomId, nonce));
		if (generation !== this.#generation) return;
		const url = relayEndpoint(this.#relayUrl, `sync/${this.roomId}`, true);
		url.searchParams.set('cap', toBase64Url(capability.publicKey));
		url.searchParams.set('nonce', nonce);
		url.searchParams.set('sig', toBase64Url(signature));
		url.searchParams.set('ack', '1');
		if (this.#device) url.searchParams.set('device', this.#device);
		const ws = new this.#WebSocket(url.toString());
		ws.binaryType = 'arraybuffer';
		this.#ws = ws;
		this.#attemptRunning = false;
		ws.addEventListener('open', () => {
			if (ws !== this.#ws) return;
			this.#send(writeSyncStep1(encodeStateVector(this.cdoc)));
		});
		ws.addEventListener('message', (event: MessageEvent) => {
			if (ws === this.#ws) this.#onFrame(event.data);
		});
		ws.addEventListener('close', (event: CloseEvent) => this.#onClose(ws, event));
		ws.addEventListener('error', () => {
			// A close event follows; the error event carries no detail worth keeping.
			if (ws === this.#ws) this.#log.debug('socket error', { room: this.roomId });
		});
	}

	async #challenge(signal: AbortSignal): Promise<string> {
		const url = relayEndpoint(this.#relayUrl, 'sync/challenge');
		url.searchParams.set('room', this.roomId);
		let response: Response;
		try {
			response = await this.#fetch(url.toString(), { signal });
		} catch (cause) {
			throw new ChallengeError('the relay cannot be reached', { cause });
		}
		if (!response.ok) {
			throw new ChallengeError(`the relay answered the challenge with ${response.status}`, {
				status: response.status
			});
		}
		let body: unknown;
		try {
			body = await response.json();
		} catch (cause) {
			throw new ChallengeError('the relay’s challenge is not JSON', { cause });
		}
		return parseChallenge(body);
	}

	/** The current attempt failed before admission: drop it and retry later. */
	#abandonAttempt(): void {
		this.#generation++;
		this.#attemptRunning = false;
		this.#abort?.abort();
		this.#abort = null;
		const ws = this.#ws;
		this.#ws = null;
		if (ws) this.#closeSocket(ws, 1000, 'handshake abandoned');
		this.#afterDisconnect();
	}

	#onClose(ws: WebSocket, event: CloseEvent): void {
		if (ws !== this.#ws) return;
		this.#ws = null;
		if (DENIAL_CLOSE_CODES.has(event.code) && this.#admittedAt === null && !this.#deniedNow) {
			// Closed as denied without (or before we read) the auth message.
			this.#denied(event.reason || 'unauthorized');
		}
		if (event.code === CLOSE_MESSAGE_TOO_BIG && !this.#tooLargeSaid) {
			// A frame far over the relay's limit is cut off by its WebSocket layer
			// before the relay reads it: the close code is all that says why.
			this.#refused('frame-too-large', '');
		}
		this.#log.info('disconnected from the relay', {
			room: this.roomId,
			code: event.code,
			reason: event.reason
		});
		this.#afterDisconnect();
	}

	#afterDisconnect(): void {
		if (this.#handshakeTimer) clearTimeout(this.#handshakeTimer);
		this.#handshakeTimer = null;
		if (this.#catchUpTimer) clearTimeout(this.#catchUpTimer);
		this.#catchUpTimer = null;
		this.#dropBridge();
		this.#dropHeld();
		if (this.#admittedAt !== null && Date.now() - this.#admittedAt >= this.#backoff.stableMs) {
			this.#failures = 0;
		}
		this.#admittedAt = null;
		this.#synced = false;
		this.#dropRemoteAwareness();
		if (this.#destroyed) return;
		this.#setStatus('offline');
		this.#scheduleRetry();
	}

	#scheduleRetry(): void {
		if (this.#destroyed || this.#stopped || this.#networkDown || this.#retryTimer) return;
		const delay = backoffDelay(this.#failures++, this.#backoff);
		this.#log.debug('reconnecting later', { room: this.roomId, delayMs: delay });
		this.#retryTimer = setTimeout(() => {
			this.#retryTimer = null;
			this.#connect();
		}, delay);
	}

	/** Retry at once unless connected or connecting; the backoff starts over. */
	#nudge(): void {
		if (this.#destroyed || this.#stopped || this.#ws || this.#attemptRunning) return;
		if (this.#retryTimer) clearTimeout(this.#retryTimer);
		this.#retryTimer = null;
		this.#failures = 0;
		this.#connect();
	}

	readonly #onOnline = (): void => {
		this.#networkDown = false;
		this.#nudge();
	};

	readonly #onOffline = (): void => {
		// No network at all (navigator.onLine is false only then): retrying is
		// pointless until `online`. A socket that is still open stays: it is the
		// better witness, and closes by itself if the path is really gone.
		this.#networkDown = true;
		if (this.#retryTimer) clearTimeout(this.#retryTimer);
		this.#retryTimer = null;
	};

	readonly #onDocDestroy = (): void => this.destroy();

	// ---- frames from the relay -------------------------------------------------

	#onFrame(data: unknown): void {
		if (this.#deniedNow) return; // nothing may follow a denial
		let message: RelayMessage;
		try {
			if (!(data instanceof ArrayBuffer) && !ArrayBuffer.isView(data)) {
				throw new RelayFrameError('text frames are not part of the protocol');
			}
			const bytes =
				data instanceof ArrayBuffer
					? new Uint8Array(data)
					: new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
			message = readRelayMessage(bytes);
		} catch (error) {
			this.#log.warn('dropped a bad frame from the relay', {
				room: this.roomId,
				error: describe(error)
			});
			return;
		}
		try {
			this.#handle(message);
		} catch (error) {
			// A bug here must not take the socket handler down; it is still reported.
			this.#log.error('failed to handle a frame from the relay', {
				room: this.roomId,
				type: message.type,
				error: describe(error)
			});
		}
	}

	#handle(message: RelayMessage): void {
		switch (message.type) {
			case 'sync-step1':
				this.#admitted(message.state);
				this.#sendMissing(true);
				return;
			case 'sync-step2':
			case 'sync-update':
				if (this.#admittedAt === null) {
					this.#log.warn('dropped an update sent before admission', { room: this.roomId });
					return;
				}
				this.#enqueueApply(message.update, message.type === 'sync-step2');
				return;
			case 'awareness':
				this.#applyAwareness(message.entries, message.update);
				return;
			case 'query-awareness':
				this.#sendLocalAwareness();
				return;
			case 'permission-denied':
				this.#denied(message.reason);
				return;
			case 'stored':
				this.#stored(message.state);
				return;
			case 'refused':
				this.#refused(message.reason, message.message);
				return;
		}
	}

	#admitted(relayHolds: Map<number, number>): void {
		if (this.#admittedAt !== null) {
			// A second step1 (not expected): what it names is still stored; it is answered too.
			this.#stored(relayHolds);
			return;
		}
		this.#admittedAt = Date.now();
		if (this.#handshakeTimer) clearTimeout(this.#handshakeTimer);
		this.#handshakeTimer = null;
		this.#relayHolds = new Map(relayHolds);
		this.#catchUpDelay = CATCH_UP_INITIAL_MS;
		// The step2 answering this step1 carries everything the relay lacks.
		this.#dropBridge();
		this.#setStatus('connected');
		this.#log.info('connected to the relay', { room: this.roomId });
		this.#mergeRelayState(relayHolds);
		this.#sendLocalAwareness();
		// After the step2 that carries what was written offline.
		setTimeout(() => this.#flushNotify(), 0);
	}

	/**
	 * Hand the relay a notification envelope to push to the room's offline
	 * devices. Kept (the newest NOTIFY_QUEUE) while not connected, and sent
	 * after the messages they announce.
	 */
	notify(envelope: Uint8Array): void {
		if (envelope.length > MAX_NOTIFY_BYTES) {
			this.#log.warn('notification envelope too large, dropped', { room: this.roomId });
			return;
		}
		this.#notifyQueue.push(envelope);
		if (this.#notifyQueue.length > NOTIFY_QUEUE) this.#notifyQueue.shift();
		if (this.#admittedAt !== null) this.#flushNotify();
	}

	#flushNotify(): void {
		const ws = this.#ws;
		if (this.#admittedAt === null || !ws || ws.readyState !== this.#WebSocket.OPEN) return;
		// After the updates they announce, when those wait for a pace round.
		while (this.#notifyQueue.length > 0) {
			if (this.#paceTimer || !this.#takeLive()) {
				this.#schedulePace();
				return;
			}
			this.#send(writeNotify(this.#notifyQueue.shift() as Uint8Array));
		}
	}

	#enqueueApply(update: Uint8Array, catchUp: boolean): void {
		const generation = this.#generation;
		this.#applying = this.#applying
			.then(() => this.#applyRemote(update, catchUp, generation))
			.catch((error: unknown) => {
				this.#log.error('failed to apply an update from the relay', {
					room: this.roomId,
					error: describe(error)
				});
			});
	}

	async #applyRemote(update: Uint8Array, catchUp: boolean, generation: number): Promise<void> {
		if (this.#destroyed) return;
		const check = await this.cdoc.applyRemote(update, this);
		if (!check.ok) {
			this.#log.warn('dropped an update from the relay that breaks the doc rules', {
				room: this.roomId,
				reason: check.reason,
				detail: check.detail
			});
			this.#events.emit('remote-refused', { reason: check.reason, detail: check.detail });
			return;
		}
		if (generation === this.#generation) this.#noteRelayHolds(check.spans);
		if (check.entries.length > 0) this.#notifyApplied(update);
		if (catchUp && generation === this.#generation && !this.#synced) {
			this.#synced = true;
			this.#events.emit('synced', {});
		}
	}

	#notifyApplied(update: Uint8Array): void {
		if (!this.#onRemoteApplied) return;
		try {
			const result = this.#onRemoteApplied(update);
			if (result) {
				result.catch((error: unknown) =>
					this.#log.error('onRemoteApplied failed', { room: this.roomId, error: describe(error) })
				);
			}
		} catch (error) {
			this.#log.error('onRemoteApplied failed', { room: this.roomId, error: describe(error) });
		}
	}

	#stored(state: Map<number, number>): void {
		for (const [client, clock] of state) {
			if (clock > (this.#relayHolds.get(client) ?? 0)) {
				this.#relayHolds.set(client, clock);
				this.#catchUpDelay = CATCH_UP_INITIAL_MS; // progress
			}
		}
		this.#mergeRelayState(state);
	}

	/**
	 * The relay sent `update`, so it holds its items: `relayHolds` grows over
	 * each run of items that continues what it is known to hold (an update from
	 * the relay may have gaps; those say nothing).
	 */
	#noteRelayHolds(spans: readonly number[]): void {
		for (let i = 0; i < spans.length; i += 3) {
			const client = spans[i]!;
			const held = this.#relayHolds.get(client) ?? 0;
			if (spans[i + 1]! <= held && spans[i + 2]! > held)
				this.#relayHolds.set(client, spans[i + 2]!);
		}
	}

	#mergeRelayState(state: Map<number, number>): void {
		let grew = false;
		for (const [client, clock] of state) {
			if (clock > (this.#relayState.get(client) ?? 0)) {
				this.#relayState.set(client, clock);
				grew = true;
			}
		}
		if (grew) this.#events.emit('stored', { relayState: this.#relayState });
	}

	#denied(reason: string): void {
		this.#deniedNow = true;
		const final = !RETRYABLE_DENIALS.has(reason);
		if (final) this.#stopped = true;
		this.#log.warn('the relay refused this connection', { room: this.roomId, reason, final });
		this.#refusal({
			kind: 'denied',
			code: reason,
			message:
				DENIAL_MESSAGES[reason] ?? `The relay refused access to this conversation (${reason}).`,
			final
		});
		// Nothing may follow a denial: this attempt is over now, whenever the
		// relay gets round to closing.
		const ws = this.#ws;
		if (!ws) return; // denied by the close itself (#onClose finishes)
		this.#ws = null;
		this.#closeSocket(ws, 1000, 'permission denied');
		this.#afterDisconnect();
	}

	#refused(reason: string, message: string): void {
		if (reason === 'frame-too-large') this.#tooLargeSaid = true;
		this.#log.warn('the relay refused a frame', { room: this.roomId, reason, message });
		this.#refusal({
			kind: 'refused',
			code: reason,
			message: REFUSAL_MESSAGES[reason] ?? (message || `The relay refused an update (${reason}).`),
			final: false
		});
		// Not stored, but nothing wrong with it: send what the relay lacks again.
		if (RESEND_AFTER.has(reason)) this.#scheduleCatchUp();
	}

	#refusal(refusal: RelayRefusal): void {
		this.#lastRefusal = refusal;
		this.#events.emit('refused', refusal);
	}

	/**
	 * Send what the relay lacks by what it acknowledged, at most one budget's
	 * worth now and the rest in later rounds. With `answer`, the first piece is
	 * the step2 answering the relay's step1 (sent even when empty).
	 */
	#sendMissing(answer: boolean): boolean {
		const missing = updateSince(this.cdoc, writeStateVector(this.#relayHolds));
		const pieces =
			missing.length > EMPTY_UPDATE_LENGTH ? splitUpdate(missing, MAX_UPDATE_BYTES) : [];
		let budget = CATCH_UP_BUDGET_BYTES;
		if (answer) {
			const first = pieces.shift() ?? missing;
			this.#send(writeSyncStep2(first));
			budget -= first.length;
		}
		while (budget > 0) {
			const piece = pieces.shift();
			if (!piece) break;
			this.#send(writeSyncUpdate(piece));
			budget -= piece.length;
		}
		if (pieces.length > 0) this.#scheduleCatchUp();
		return missing.length > EMPTY_UPDATE_LENGTH;
	}

	#scheduleCatchUp(): void {
		if (this.#catchUpTimer || this.#destroyed) return;
		const delay = backoffDelay(0, { initialMs: this.#catchUpDelay, maxMs: CATCH_UP_MAX_MS });
		// Doubles until an acknowledgement shows progress (#stored resets it).
		this.#catchUpDelay = Math.min(this.#catchUpDelay * 2, CATCH_UP_MAX_MS);
		this.#catchUpTimer = setTimeout(() => {
			this.#catchUpTimer = null;
			// Not admitted: the next admission's step2 carries it all.
			if (this.#admittedAt === null) return;
			// Until the relay holds it all: it names a rate limit once a second and
			// drops the frames in between unsaid, so a resend that met the same
			// limit may get no refusal of its own to come back for.
			if (this.#sendMissing(false)) this.#scheduleCatchUp();
		}, delay);
	}

	// ---- local changes out -----------------------------------------------------

	readonly #onDocUpdate = (update: Uint8Array, origin: unknown): void => {
		if (origin === this) return; // the relay's own update, coming back
		// Before admission the relay is not listening; the step2 that answers
		// its step1 will carry this update.
		if (this.#admittedAt === null) return;
		if (isPeerOrigin(origin)) {
			this.#bridgeLater(update);
			return;
		}
		if (this.#paceTimer || !this.#takeLive()) {
			this.#heldUpdates.push(update);
			this.#schedulePace();
			return;
		}
		this.#sendUpdate(update);
	};

	#sendUpdate(update: Uint8Array): void {
		for (const piece of splitUpdate(update, MAX_UPDATE_BYTES)) this.#send(writeSyncUpdate(piece));
	}

	// ---- pace of live frames ---------------------------------------------------

	/** Take one live frame's allowance, if there is one (see LIVE_FRAMES_PER_SEC). */
	#takeLive(): boolean {
		const now = Date.now();
		const earned = ((now - this.#liveTokensAt) * LIVE_FRAMES_PER_SEC) / 1000;
		this.#liveTokens = Math.min(LIVE_BURST, this.#liveTokens + Math.max(0, earned));
		this.#liveTokensAt = now;
		if (this.#liveTokens < 1) return false;
		this.#liveTokens -= 1;
		return true;
	}

	#schedulePace(): void {
		if (this.#paceTimer || this.#destroyed) return;
		this.#paceTimer = setTimeout(() => {
			this.#paceTimer = null;
			this.#pace();
		}, PACE_ROUND_MS);
	}

	/** A pace round: what waited goes out in order (updates merged into one), as far as the pace allows. */
	#pace(): void {
		if (this.#admittedAt === null) return this.#dropHeld();
		if (this.#heldUpdates.length > 0) {
			if (!this.#takeLive()) return this.#schedulePace();
			const held = this.#heldUpdates;
			this.#heldUpdates = [];
			this.#sendUpdate(held.length === 1 ? (held[0] as Uint8Array) : Y.mergeUpdates(held));
		}
		if (this.#heldAwareness.size > 0) {
			if (!this.#takeLive()) return this.#schedulePace();
			const clients = [...this.#heldAwareness];
			this.#heldAwareness.clear();
			this.#send(writeAwareness(encodeAwarenessUpdate(this.awareness, clients)));
		}
		this.#flushNotify();
	}

	/** Disconnected: the next admission's step2 carries the updates, and the awareness is sent again. */
	#dropHeld(): void {
		if (this.#paceTimer) clearTimeout(this.#paceTimer);
		this.#paceTimer = null;
		this.#heldUpdates = [];
		this.#heldAwareness.clear();
	}

	/** A peer's update: its writer uploads it; what the relay still lacks later goes from here. */
	#bridgeLater(update: Uint8Array): void {
		let clients: Iterable<number>;
		try {
			clients = Y.parseUpdateMeta(update).to.keys();
		} catch {
			return; // applied to the doc, so it decodes
		}
		for (const client of clients) this.#bridgeClients.add(client);
		this.#scheduleBridge();
	}

	#scheduleBridge(): void {
		if (this.#bridgeTimer || this.#destroyed) return;
		if (this.#bridgeClients.size === 0 && this.#bridgeRest.length === 0) return;
		this.#bridgeTimer = setTimeout(() => {
			this.#bridgeTimer = null;
			this.#bridge();
		}, this.#bridgeDelayMs);
	}

	/**
	 * Send what the relay lacks of the peers' clients, by what it acknowledged
	 * or relayed here: usually nothing, as their writers uploaded it. At most
	 * one budget's worth; the rest in a later round.
	 */
	#bridge(): void {
		if (this.#admittedAt === null) return;
		if (this.#bridgeRest.length === 0 && this.#bridgeClients.size > 0) {
			// Everything of the other clients counts as held: only the peers' clients are diffed.
			const state = Y.decodeStateVector(encodeStateVector(this.cdoc));
			for (const client of this.#bridgeClients) {
				state.set(client, this.#relayHolds.get(client) ?? 0);
			}
			this.#bridgeClients.clear();
			const missing = updateSince(this.cdoc, writeStateVector(state));
			if (missing.length <= EMPTY_UPDATE_LENGTH) return;
			this.#log.debug('sending what the relay lacks of updates from peers', {
				room: this.roomId,
				bytes: missing.length
			});
			this.#bridgeRest = splitUpdate(missing, MAX_UPDATE_BYTES);
		}
		let budget = CATCH_UP_BUDGET_BYTES;
		while (budget > 0) {
			const piece = this.#bridgeRest.shift();
			if (!piece) break;
			this.#send(writeSyncUpdate(piece));
			budget -= piece.length;
		}
		this.#scheduleBridge();
	}

	#dropBridge(): void {
		if (this.#bridgeTimer) clearTimeout(this.#bridgeTimer);
		this.#bridgeTimer = null;
		this.#bridgeClients.clear();
		this.#bridgeRest = [];
	}

	#send(bytes: Uint8Array): void {
		const ws = this.#ws;
		if (!ws || ws.readyState !== this.#WebSocket.OPEN) return;
		try {
			ws.send(bytes);
		} catch (error) {
			// The close event that follows starts the reconnection.
			this.#log.warn('could not send to the relay', { room: this.roomId, error: describe(error) });
		}
	}

	#closeSocket(ws: WebSocket, code: number, reason: string): void {
		try {
			ws.close(code, reason);
		} catch (error) {
			this.#log.debug('closing the socket failed', { room: this.roomId, error: describe(error) });
		}
	}

	// ---- awareness -------------------------------------------------------------

	#applyAwareness(entries: AwarenessEntry[], update: Uint8Array): void {
		const own = this.awareness.clientID;
		if (entries.some((entry) => entry.client === own && entry.state !== null)) {
			// Only this device speaks for its client id; y-protocols would let the
			// relay (or any member) replace our local state.
			this.#log.warn('dropped an awareness update that speaks for this device', {
				room: this.roomId
			});
			return;
		}
		// Checked by readAwarenessUpdate (every state null or { e }): this cannot throw.
		applyAwarenessUpdate(this.awareness, update, this);
	}

	#sendLocalAwareness(): void {
		if (this.awareness.getLocalState() === null) return;
		this.#send(writeAwareness(encodeAwarenessUpdate(this.awareness, [this.awareness.clientID])));
	}

	readonly #onAwarenessUpdate = (
		change: { added: number[]; updated: number[]; removed: number[] },
		origin: unknown
	): void => {
		if (origin === this || this.#admittedAt === null) return;
		const clients = [...change.added, ...change.updated, ...change.removed];
		// A goodbye (destroy) goes at once: nothing is sent after it.
		const leaving = change.removed.includes(this.awareness.clientID);
		if (!leaving && (this.#paceTimer || !this.#takeLive())) {
			for (const client of clients) this.#heldAwareness.add(client);
			this.#schedulePace();
			return;
		}
		this.#send(writeAwareness(encodeAwarenessUpdate(this.awareness, clients)));
	};

	readonly #onAwarenessChange = (change: {
		added: number[];
		updated: number[];
		removed: number[];
	}): void => {
		const own = this.awareness.clientID;
		const remote = (clients: number[]) => clients.filter((client) => client !== own);
		const event: RemoteAwarenessChange = {
			states: this.remoteStates(),
			added: remote(change.added),
			updated: remote(change.updated),
			removed: remote(change.removed)
		};
		if (event.added.length + event.updated.length + event.removed.length === 0) return;
		this.#events.emit('awareness', event);
	};

	/** The relay's clients are unknown once disconnected; y-websocket does the same. */
	#dropRemoteAwareness(): void {
		const own = this.awareness.clientID;
		const remote = [...this.awareness.getStates().keys()].filter((client) => client !== own);
		if (remote.length > 0) removeAwarenessStates(this.awareness, remote, this);
	}

	// ---- misc ------------------------------------------------------------------

	#setStatus(status: ConnectionStatus): void {
		if (this.#status === status) return;
		this.#status = status;
		this.#events.emit('status', { status });
	}

	#clearTimers(): void {
		for (const timer of [this.#retryTimer, this.#handshakeTimer, this.#catchUpTimer]) {
			if (timer) clearTimeout(timer);
		}
		this.#retryTimer = null;
		this.#handshakeTimer = null;
		this.#catchUpTimer = null;
		this.#dropBridge();
		this.#dropHeld();
	}
}

function describe(error: unknown): string {
	return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
