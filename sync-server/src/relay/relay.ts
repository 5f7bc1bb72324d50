/**
 * The relay: y-websocket–compatible rooms at `/sync/<roomId>`, admission by a
 * signed challenge (`GET /sync/challenge`), room retirement (`POST
 * /sync/retire`, `POST /sync/moved`) and `/metrics`. The protocol is
 * docs/protocol.md, "Relay protocol" and "Room retirement"; this module is its
 * server half.
 *
 * It holds no Y.Doc. A room's stored updates are merged into one update and a
 * state vector (room-state.ts), kept in memory while the room has connections
 * or was used within `KITH_ROOM_IDLE_MS`. An incoming update is checked
 * against the doc rules with that state vector as `known`, forwarded to the
 * room's other connections (as the bytes that arrived), appended to SQLite in
 * one transaction and then acknowledged (`kith-stored`). All work on one room
 * runs on one queue, so checks, stores and acknowledgements never interleave.
 * Updates that queued up while the room was busy are taken as one batch:
 * each checked and refused whole on its own, the accepted ones forwarded as
 * one merged update per receiver, stored in one transaction and acknowledged
 * once per sender. An idle room (no update for IDLE_ROOM_MS) takes an update
 * alone and at once, in its frame's handler: the checks are synchronous
 * (Node's Ed25519 and SHA-256, verify.ts), so a chat message is checked and
 * forwarded without waiting for a turn of the event loop.
 *
 * Nothing a client sends is logged: log lines carry reason codes, room ids,
 * connection ids and sizes. No input may take the process down: every event
 * handler is guarded, and a frame whose framing is broken closes only its own
 * connection.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import * as Y from 'yjs';
import { checkUpdateSync } from '../../../src/lib/conversation/doc-rules.ts';
import { equalBytes } from '../../../src/lib/crypto/bytes.ts';
import { isRoomId } from '../../../src/lib/crypto/ids.ts';
import type { Config } from '../config.ts';
import { silentLogger, type Logger } from '../log.ts';
import type { KithServer, RequestTarget } from '../server.ts';
import {
	accessMessage,
	Challenges,
	loadRelaySecret,
	movedMessage,
	retireMessage,
	verifyProof
} from './challenge.ts';
import { RelayMetrics } from './metrics.ts';
import { TokenBucket } from './rate-limit.ts';
import { installNodeVerifier } from './verify.ts';
import { MERGE_CHUNK, RoomState } from './room-state.ts';
import { RelayStore } from './store.ts';
import {
	BadRequest,
	DAY_MS,
	MAX_MOVED_TAGS,
	MAX_RETIRE_BODY_BYTES,
	MOVED_PATH,
	type MovedBody,
	parseBody,
	readJsonBody,
	RETIRE_CHECK_MS,
	RETIRE_PATH,
	type RetireBody,
	retireDenial,
	sendJson,
	sendPreflight
} from './retire.ts';
import {
	FrameError,
	KEEPALIVE_FRAME,
	QUERY_AWARENESS_FRAME,
	readClientFrame,
	writePermissionDenied,
	writeRefused,
	writeStored,
	writeSyncStep1,
	writeSyncStep2,
	writeSyncUpdate,
	MAX_NOTIFY_BYTES,
	type AuthFailure,
	type RefusalReason
} from './wire.ts';

export const SYNC_PATH = '/sync/';
export const CHALLENGE_PATH = '/sync/challenge';
/** The limits a client must fit its frames in, so it can refuse what would never be stored. */
export const LIMITS_PATH = '/sync/limits';
export const METRICS_PATH = '/metrics';
export { MOVED_PATH, RETIRE_PATH };

/** Close codes the relay uses. */
export const CLOSE = {
	goingAway: 1001,
	protocolError: 1002,
	tooLarge: 1009,
	internalError: 1011,
	tryAgainLater: 1013,
	denied: 4403
} as const;

const MiB = 1024 * 1024;
/** Frames a client may send before its admission is decided (a stock client sends two). */
const MAX_EARLY_FRAMES = 32;
/** A receiver this far behind is disconnected; it catches up by syncing when it reconnects. */
const MAX_BUFFERED_BYTES = 32 * MiB;
/** Rows at least this big are already compacted enough and are not merged again. */
const COMPACT_MAX_ROW_BYTES = 256 * 1024;
/**
 * Upper bound on the bytes one compaction step reads and merges. Merging
 * decodes every item of the chunk, several times its size in memory: at
 * 8 MiB a busy room's compaction put ~50 MiB on the relay's RSS and 50–80 ms
 * on its delivery p99 (docs/benchmarks.md, fan-out). Small steps cost the
 * same work in total, spread out.
 */
const COMPACT_MAX_CHUNK_BYTES = 1 * MiB;
/** A room compacts once it had no update for this long (see maybeCompact). */
const COMPACT_QUIET_MS = 1000;
/** Rows past its mark at which a room that is never quiet compacts anyway... */
const COMPACT_OVERDUE_ROWS = 4000;
/** ...one step each this often. */
const COMPACT_BUSY_STEP_MS = 100;
/** How long shutdown waits for clients to answer the close handshake. */
const CLOSE_GRACE_MS = 2000;

export interface RelayOptions {
	logger?: Logger;
	/** Update rows a room may gather before they are merged in the background. */
	compactAfterRows?: number;
	/** How long a room must be without updates before it compacts (COMPACT_QUIET_MS). */
	compactQuietMs?: number;
	/** Interval of pings, and of keepalive frames to connections that heard nothing. */
	keepaliveMs?: number;
	/** Wall clock for challenges and retirement deadlines (tests). */
	now?: () => number;
	/** Interval of the check for retirement plans whose deadline passed. */
	retireCheckMs?: number;
	/** A room idle this long takes an update at once (IDLE_ROOM_MS; tests: Infinity, never). */
	idleRoomMs?: number;
}

export interface Relay {
	readonly metrics: RelayMetrics;
	/** Rooms held in memory. */
	readonly roomsActive: number;
	/** Closes every connection (1001), finishes queued work, closes the database. */
	close(): Promise<void>;
	/**
	 * Checks a proof of access made as for a connection (challenge, signature)
	 * against a room that must already be registered with `cap`; never claims
	 * one. Redeems the nonce. Null when it holds (push registration).
	 */
	proveAccess(room: string, cap: string, nonce: string, sig: string): Promise<AuthFailure | null>;
	/** The `device` ids of the room's open connections right now. */
	liveDevices(room: string): Set<string>;
	/** Called with every kith-notify a connection sends (docs/protocol.md, "Push (v1)"). */
	onNotify(handler: NotifyHandler): void;
}

/** A notification envelope from an admitted connection of `room`, whose device is `device`. */
export type NotifyHandler = (
	room: string,
	envelope: Uint8Array,
	device: string | undefined
) => void;

/** What a `device` query parameter may be (an opaque id the client chooses). */
const DEVICE_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** An update of a batch that passed the checks and the quota. */
interface Accepted {
	conn: Connection;
	/** What is stored and relayed of it: the part the relay lacked. */
	stored: Uint8Array;
	entries: readonly { client: number; clock: number }[];
	/** The frame as it came, when it can be forwarded unchanged. */
	raw: Uint8Array | undefined;
}

type ConnectionState = 'authenticating' | 'open' | 'closing' | 'closed';

class Connection {
	state: ConnectionState = 'authenticating';
	room: Room | undefined;
	early: Uint8Array[] = [];
	alive = true;
	lastSent = Date.now();
	lastRateNotice = 0;
	/** The client's opaque device id (`device=`), for push: no push to a device that is here. */
	device: string | undefined;

	constructor(
		readonly id: string,
		readonly ws: WebSocket,
		readonly roomId: string,
		readonly ack: boolean,
		readonly frames: TokenBucket,
		readonly bytes: TokenBucket
	) {}

	close(code: number, reason: string): void {
		if (this.state === 'closing' || this.state === 'closed') return;
		this.state = 'closing';
		this.early = [];
		try {
			this.ws.close(code, reason);
		} catch {
			this.ws.terminate();
		}
	}
}

/** An update frame waiting on its room's queue. */
interface UpdateTask {
	kind: 'update';
	conn: Connection;
	/** The Yjs update (v1) the frame carries. */
	update: Uint8Array;
	/** The whole frame, when it is a sync update that may be forwarded as it came. */
	raw: Uint8Array | undefined;
}

interface WorkTask {
	kind: 'work';
	run: () => Promise<void> | void;
}

type RoomTask = UpdateTask | WorkTask;

/** Most updates one batch takes from a room's queue. */
export const MAX_BATCH_UPDATES = 128;
/**
 * A room whose last update was processed at least this long ago (ms) takes
 * the next one at once, inside the frame's handler; a busier room queues it
 * for the next batch. At chat rates every update takes the short way; under
 * load the gap between batches is far shorter, so batching is as before.
 */
export const IDLE_ROOM_MS = 1;
/** Most update bytes one batch takes (a single larger update goes alone). */
export const MAX_BATCH_BYTES = 1024 * 1024;

class Room {
	readonly conns = new Set<Connection>();
	state: RoomState | undefined;
	/** Compact when the room holds this many rows. */
	compactAt: number;
	compactScheduled = false;
	/** The room was retired: its data is gone; queued work does nothing. */
	retired = false;
	readonly #tasks: RoomTask[] = [];
	#draining: Promise<void> | undefined;
	#idleTimer: NodeJS.Timeout | undefined;
	/** When the last update (batch) was processed, performance.now(). */
	#lastUpdateAt = Number.NEGATIVE_INFINITY;

	constructor(
		readonly id: string,
		compactAt: number,
		readonly idleMs: number,
		/** Processes a batch taken from the queue (loading the room's state first if need be). */
		readonly processUpdates: (room: Room, batch: UpdateTask[]) => Promise<void>,
		/** Processes one update at once; only called while the room's state is loaded. */
		readonly processUpdateNow: (room: Room, task: UpdateTask) => void,
		readonly onTaskError: (err: unknown) => void
	) {
		this.compactAt = compactAt;
	}

	/** Queues `task` after every task queued before it. Never rejects. */
	run(task: () => Promise<void> | void): void {
		this.#push({ kind: 'work', run: task });
	}

	/**
	 * Takes an update: at once when the room is idle (nothing queued or running,
	 * its state loaded, no update for IDLE_ROOM_MS), else on the queue, where
	 * updates queued back to back are processed as one batch.
	 */
	update(conn: Connection, update: Uint8Array, raw: Uint8Array | undefined): void {
		const task: UpdateTask = { kind: 'update', conn, update, raw };
		const t = performance.now();
		if (
			this.#draining === undefined &&
			this.#tasks.length === 0 &&
			this.state !== undefined &&
			this.idleMs !== Number.POSITIVE_INFINITY &&
			t - this.#lastUpdateAt >= this.idleMs
		) {
			try {
				this.processUpdateNow(this, task);
			} catch (err) {
				this.onTaskError(err);
			}
			this.#lastUpdateAt = performance.now();
			return;
		}
		this.#push(task);
	}

	/** Puts updates taken for a batch back at the head of the queue, in order. */
	requeue(batch: readonly UpdateTask[]): void {
		this.#tasks.unshift(...batch);
	}

	#push(task: RoomTask): void {
		this.#tasks.push(task);
		this.#draining ??= this.#drain();
	}

	async #drain(): Promise<void> {
		// One microtask: the other frames of the same socket read join the queue first.
		await Promise.resolve();
		for (;;) {
			const first = this.#tasks[0];
			if (!first) break;
			try {
				if (first.kind === 'work') {
					this.#tasks.shift();
					await first.run();
				} else {
					await this.processUpdates(this, this.#takeBatch());
					this.#lastUpdateAt = performance.now();
				}
			} catch (err) {
				this.onTaskError(err);
			}
		}
		this.#draining = undefined;
	}

	/** The updates at the head of the queue, up to the batch limits (at least one). */
	#takeBatch(): UpdateTask[] {
		let n = 0;
		let bytes = 0;
		for (const task of this.#tasks) {
			if (task.kind !== 'update' || n >= MAX_BATCH_UPDATES) break;
			if (n > 0 && bytes + task.update.length > MAX_BATCH_BYTES) break;
			bytes += task.update.length;
			n++;
		}
		return this.#tasks.splice(0, n) as UpdateTask[];
	}

	get busy(): boolean {
		return this.#draining !== undefined;
	}

	/** How long since the last update was processed, ms (busy rooms: 0). */
	get quietMs(): number {
		return this.busy ? 0 : performance.now() - this.#lastUpdateAt;
	}

	drained(): Promise<void> {
		return this.#draining ?? Promise.resolve();
	}

	join(conn: Connection): void {
		this.conns.add(conn);
		clearTimeout(this.#idleTimer);
		this.#idleTimer = undefined;
	}

	leave(conn: Connection, idleMs: number, evict: (room: Room) => void): void {
		if (!this.conns.delete(conn) || this.conns.size > 0) return;
		this.armIdle(idleMs, evict);
	}

	armIdle(idleMs: number, evict: (room: Room) => void): void {
		clearTimeout(this.#idleTimer);
		this.#idleTimer = setTimeout(() => {
			this.#idleTimer = undefined;
			if (this.conns.size > 0) return;
			if (this.busy) this.armIdle(idleMs, evict);
			else evict(this);
		}, idleMs);
		this.#idleTimer.unref();
	}

	stopTimers(): void {
		clearTimeout(this.#idleTimer);
	}
}

/**
 * Opens the relay's database and secret under `config.dataDir` and plugs the
 * relay into `server`: the challenge and metrics routes, the `/sync/`
 * upgrade, and a close hook. Throws if the database or secret cannot be used.
 */
export function attachRelay(server: KithServer, config: Config, options: RelayOptions = {}): Relay {
	const log = (options.logger ?? silentLogger).child({ component: 'relay' });
	const now = options.now ?? Date.now;
	installNodeVerifier();
	const compactAfterRows = options.compactAfterRows ?? 1000;
	const compactQuietMs = options.compactQuietMs ?? COMPACT_QUIET_MS;
	const idleRoomMs = options.idleRoomMs ?? IDLE_ROOM_MS;
	const keepaliveMs = options.keepaliveMs ?? 15_000;
	const challenges = new Challenges(loadRelaySecret(config.dataDir), now);
	const store = new RelayStore(config.dataDir);
	const metrics = new RelayMetrics();
	const rooms = new Map<string, Room>();
	const connections = new Set<Connection>();
	// Frames up to twice the limit are read, so the client can be told why it is
	// closed; beyond that the WebSocket layer closes with 1009 on its own.
	const wss = new WebSocketServer({
		noServer: true,
		maxPayload: 2 * config.maxFrameBytes,
		perMessageDeflate: false,
		clientTracking: false
	});
	let nextConnection = 0;
	let closing: Promise<void> | undefined;
	let allClosed: (() => void) | undefined;
	let notifyHandler: NotifyHandler | undefined;

	const heartbeat = setInterval(() => guard('heartbeat', beat), keepaliveMs);
	heartbeat.unref();
	const retainMaxMs = config.retainMaxDays * DAY_MS;
	/** A retirement's log checkpoint could not finish yet (a reader was in the way). */
	let checkpointPending = false;
	const retireTimer = setInterval(
		() => guard('retirement check', retireDue),
		options.retireCheckMs ?? RETIRE_CHECK_MS
	);
	retireTimer.unref();
	// Plans that came due while the relay was down, or a retirement a crash cut short.
	guard('retirement check', retireDue);

	server.addRoute({
		methods: ['GET'],
		path: CHALLENGE_PATH,
		handler: (_req, res, target) => {
			const room = new URLSearchParams(target.search).get('room');
			// Open to any origin: a challenge is worthless without the room's capability key.
			if (isRoomId(room)) sendJson(res, 200, challenges.issue(room));
			else
				sendJson(res, 400, {
					error: 'bad-room',
					message: 'room must be a 22-character base64url room id'
				});
		}
	});

	server.addRoute({
		methods: ['GET'],
		path: LIMITS_PATH,
		handler: (_req, res) =>
			sendJson(res, 200, {
				maxFrameBytes: config.maxFrameBytes,
				roomQuotaBytes: config.roomQuotaBytes
			})
	});

	server.addRoute({
		methods: ['GET'],
		path: METRICS_PATH,
		handler: (_req, res) => {
			const text = metrics.render({ roomsActive: rooms.size, storageBytes: store.totalBytes });
			res.writeHead(200, {
				'Content-Type': 'text/plain; version=0.0.4; charset=utf-8',
				'Content-Length': Buffer.byteLength(text),
				'Cache-Control': 'no-store'
			});
			res.end(text);
		}
	});

	for (const [path, kind] of [
		[RETIRE_PATH, 'retire'],
		[MOVED_PATH, 'moved']
	] as const) {
		server.addRoute({
			methods: ['POST', 'OPTIONS'],
			path,
			handler: (req, res, target) => retirementRequest(kind, req, res, target)
		});
	}

	server.addUpgradeHandler({
		path: SYNC_PATH,
		prefix: true,
		handler: (req: IncomingMessage, socket: Duplex, head: Buffer, target: RequestTarget) => {
			wss.handleUpgrade(req, socket, head, (ws) => guard('connection', () => open(ws, target)));
		}
	});

	server.onClose(() => close());

	// --- connections ---------------------------------------------------------

	function open(ws: WebSocket, target: RequestTarget): void {
		const params = new URLSearchParams(target.search);
		const conn = new Connection(
			`c${++nextConnection}`,
			ws,
			target.pathname.slice(SYNC_PATH.length),
			params.get('ack') === '1',
			new TokenBucket(config.rateMsgsPerSec, 2 * config.rateMsgsPerSec),
			new TokenBucket(config.rateBytesPerSec, 2 * config.rateBytesPerSec)
		);
		const device = params.get('device');
		if (device !== null && DEVICE_ID.test(device)) conn.device = device;
		connections.add(conn);
		metrics.connections++;
		ws.on('message', (data: RawData, isBinary: boolean) =>
			guard('frame', () => onFrame(conn, data, isBinary), conn)
		);
		ws.on('error', (err: Error & { code?: string }) =>
			guard('socket error', () => onError(conn, err))
		);
		ws.on('close', (code: number) => guard('close', () => onClosed(conn, code)));
		ws.on('pong', () => (conn.alive = true));
		if (closing) {
			conn.close(CLOSE.goingAway, 'relay shutting down');
			return;
		}
		log.debug('connection opened', { conn: conn.id });
		admit(conn, params).catch((err: unknown) => {
			log.error('admission failed', { conn: conn.id, err });
			conn.close(CLOSE.internalError, 'server-error');
		});
	}

	async function admit(conn: Connection, params: URLSearchParams): Promise<void> {
		const result = await authenticate(conn.roomId, params);
		if (conn.state !== 'authenticating') return; // closed meanwhile
		if (closing) return conn.close(CLOSE.goingAway, 'relay shutting down');
		if (typeof result === 'string') return deny(conn, result);
		// Retired while the signature was checked: never claim it again.
		if (store.isRetired(conn.roomId)) return deny(conn, 'room-retired');
		const registered = store.claim(conn.roomId, result, now());
		if (!equalBytes(registered, result)) return deny(conn, 'wrong-capability');

		let room = rooms.get(conn.roomId);
		if (!room) {
			room = new Room(
				conn.roomId,
				compactAfterRows,
				idleRoomMs,
				receiveUpdates,
				(room, task) => {
					if (!room.retired && room.state) processBatch(room, [task], room.state);
				},
				(err) => log.error('room task failed', { room: conn.roomId, err })
			);
			rooms.set(room.id, room);
		}
		// Those already here answer with their awareness states, which reach the newcomer.
		for (const other of room.conns) send(other, QUERY_AWARENESS_FRAME);
		conn.room = room;
		conn.state = 'open';
		room.join(conn);
		log.debug('admitted', { conn: conn.id, room: room.id, ack: conn.ack });
		const joined = room;
		joined.run(() =>
			task(conn, async () => send(conn, writeSyncStep1((await load(joined)).stateVector())))
		);
		const early = conn.early;
		conn.early = [];
		for (const frame of early) dispatch(conn, frame);
	}

	/** The capability public key that signed a fresh challenge, or why not. */
	async function authenticate(
		roomId: string,
		params: URLSearchParams
	): Promise<Uint8Array | AuthFailure> {
		if (!isRoomId(roomId)) return 'bad-room';
		if (store.isRetired(roomId)) return 'room-retired';
		const nonce = params.get('nonce');
		const cap = params.get('cap');
		const sig = params.get('sig');
		if (!nonce || !cap || !sig) return 'unauthorized';
		return prove(roomId, nonce, cap, sig, accessMessage(roomId, nonce));
	}

	/**
	 * Checks a signed challenge (admission table rows 3–7): the nonce is this
	 * relay's, for this room, fresh and unused; `sig` is `cap`'s signature over
	 * `message`; then the nonce is redeemed. The public key, or why not.
	 */
	async function prove(
		roomId: string,
		nonce: string,
		cap: string,
		sig: string,
		message: Uint8Array
	): Promise<Uint8Array | AuthFailure> {
		const checked = challenges.check(roomId, nonce);
		if (!checked.ok) return checked.reason;
		const key = await verifyProof(message, cap, sig);
		if (!key) return 'unauthorized';
		if (!challenges.redeem(nonce, checked.expiresAt)) return 'replayed-challenge';
		return key;
	}

	function deny(conn: Connection, reason: AuthFailure): void {
		metrics.refused(reason);
		log.info('access denied', {
			reason,
			room: isRoomId(conn.roomId) ? conn.roomId : undefined,
			conn: conn.id
		});
		sendDenial(conn, reason);
	}

	/** The auth frame (permission denied + reason), then close 4403. */
	function sendDenial(conn: Connection, reason: AuthFailure): void {
		send(conn, writePermissionDenied(reason));
		conn.close(CLOSE.denied, reason);
	}

	function onFrame(conn: Connection, data: RawData, isBinary: boolean): void {
		if (closing || conn.state === 'closing' || conn.state === 'closed') return;
		metrics.framesIn++;
		const bytes = toBytes(data);
		if (bytes.length > config.maxFrameBytes) {
			refuse(
				conn,
				'frame-too-large',
				`frames are limited to ${config.maxFrameBytes} bytes; this one had ${bytes.length}`
			);
			conn.close(CLOSE.tooLarge, 'frame-too-large');
			return;
		}
		if (!conn.frames.take(1) || !conn.bytes.take(bytes.length)) return rateLimited(conn);
		if (!isBinary) {
			refuse(conn, 'malformed-frame', 'text frames are not part of the protocol');
			conn.close(CLOSE.protocolError, 'malformed-frame');
			return;
		}
		if (conn.state === 'authenticating') {
			if (conn.early.length >= MAX_EARLY_FRAMES) return rateLimited(conn);
			conn.early.push(bytes);
			return;
		}
		dispatch(conn, bytes);
	}

	function dispatch(conn: Connection, bytes: Uint8Array): void {
		const room = conn.room;
		if (!room || conn.state !== 'open') return;
		let frame;
		try {
			frame = readClientFrame(bytes);
		} catch (err) {
			refuse(conn, 'malformed-frame', err instanceof FrameError ? err.message : 'malformed frame');
			conn.close(CLOSE.protocolError, 'malformed-frame');
			return;
		}
		switch (frame.kind) {
			case 'sync-step1': {
				const { stateVector } = frame;
				room.run(() => task(conn, () => answerStep1(conn, room, stateVector)));
				return;
			}
			case 'sync-step2':
			case 'sync-update': {
				const { update } = frame;
				room.update(conn, update, frame.kind === 'sync-update' ? bytes : undefined);
				return;
			}
			case 'awareness':
			case 'query-awareness':
				// Opaque: forwarded as it came.
				for (const other of room.conns) if (other !== conn) forward(other, bytes);
				return;
			case 'notify': {
				// Push (push/): opaque bytes, handed over outside the room's queue.
				const size = frame.envelope.length;
				if (size === 0) return refuse(conn, 'notify-empty', 'the notification envelope is empty');
				if (size > MAX_NOTIFY_BYTES) {
					return refuse(
						conn,
						'notify-too-large',
						`notifications are limited to ${MAX_NOTIFY_BYTES} bytes; this one had ${size}`
					);
				}
				notifyHandler?.(room.id, frame.envelope, conn.device);
				return;
			}
			case 'unsupported':
				refuse(
					conn,
					'unsupported-message',
					`message type ${frame.messageType} is not handled by this relay`
				);
				return;
		}
	}

	function onError(conn: Connection, err: Error & { code?: string }): void {
		// The WebSocket layer has already closed the connection.
		const reason: RefusalReason =
			err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'frame-too-large' : 'malformed-frame';
		metrics.refused(reason);
		log.info('refused', { reason, room: conn.room?.id, conn: conn.id, code: err.code });
	}

	function onClosed(conn: Connection, code: number): void {
		if (conn.state === 'closed') return;
		conn.state = 'closed';
		conn.early = [];
		connections.delete(conn);
		metrics.connections--;
		conn.room?.leave(conn, config.roomIdleMs, evict);
		log.debug('connection closed', { conn: conn.id, room: conn.room?.id, code });
		if (closing && connections.size === 0) allClosed?.();
	}

	// --- room work (always on the room's queue) ------------------------------

	async function load(room: Room): Promise<RoomState> {
		if (!room.state) {
			const stored = store.room(room.id);
			room.state = await RoomState.load(() => store.updates(room.id), stored?.bytes ?? 0);
			log.debug('room loaded', { room: room.id, rows: room.state.rows, bytes: room.state.bytes });
			maybeCompact(room, room.state);
		}
		return room.state;
	}

	async function answerStep1(conn: Connection, room: Room, stateVector: Uint8Array): Promise<void> {
		if (conn.state !== 'open' || room.retired) return;
		const state = await load(room);
		const diff = await state.diff(stateVector);
		if (!room.retired) send(conn, writeSyncStep2(diff));
	}

	/**
	 * Checks, forwards, stores and acknowledges a batch of updates: what was
	 * queued back to back (one update when the room is not busy). Each update is
	 * judged on its own, refused whole if it breaks a rule; the accepted ones are
	 * forwarded (one merged update per receiver), then stored in ONE transaction,
	 * then acknowledged once per sender. An acknowledgement never precedes the
	 * commit; a forward may (receivers store what they receive themselves).
	 */
	async function receiveUpdates(room: Room, batch: UpdateTask[]): Promise<void> {
		if (room.retired) return;
		const state = await load(room);
		// Retired meanwhile: nothing more is stored, forwarded or acknowledged.
		if (room.retired) return;
		processBatch(room, batch, state);
	}

	/**
	 * `receiveUpdates` once the room's state is loaded: synchronous from the
	 * checks to the acknowledgements, so nothing else runs on the room meanwhile
	 * (the checks verify with Node's synchronous Ed25519, verify.ts). An idle
	 * room's update comes here straight from its frame's handler.
	 */
	function processBatch(room: Room, batch: UpdateTask[], state: RoomState): void {
		// Each checked against the state before the batch (nothing changes it
		// until the commit below).
		const checks = batch.map(({ update }) => {
			try {
				return checkUpdateSync(update, state.sv);
			} catch (err) {
				return { ok: 'error' as const, err };
			}
		});
		const accepted: Accepted[] = [];
		const acks = new Set<Connection>();
		/** Items accepted in this batch so far, per client. */
		const added = new Map<number, Set<number>>();
		let addedBytes = 0;
		for (let i = 0; i < batch.length; i++) {
			const { conn, update, raw } = batch[i]!;
			const check = checks[i]!;
			if (check.ok === 'error') {
				log.error('relay task failed', { conn: conn.id, room: room.id, err: check.err });
				refuse(conn, 'server-error', 'the relay could not process this; nothing was stored');
				continue;
			}
			if (!check.ok) {
				refuse(conn, `doc-rules:${check.reason}`, check.detail);
				continue;
			}
			if (check.entries.length === 0) {
				acks.add(conn);
				continue;
			}
			if (check.entries.some((e) => added.get(e.client)?.has(e.clock))) {
				// Repeats an item accepted earlier in this batch (not yet in the state
				// vector): this update and the rest wait for the next batch.
				room.requeue(batch.slice(i));
				break;
			}
			// Items the relay already holds were skipped by the checks, unread: never
			// store or relay them. Only the part the relay lacks goes on.
			const whole = !check.held;
			const stored = whole ? update : Y.diffUpdate(update, state.stateVector());
			if (state.bytes + addedBytes + stored.length > config.roomQuotaBytes) {
				refuse(
					conn,
					'room-quota',
					`this conversation has reached the relay's limit of ${config.roomQuotaBytes} bytes`
				);
				continue;
			}
			addedBytes += stored.length;
			for (const { client, clock } of check.entries) {
				let clocks = added.get(client);
				if (!clocks) added.set(client, (clocks = new Set()));
				clocks.add(clock);
			}
			accepted.push({ conn, stored, entries: check.entries, raw: whole ? raw : undefined });
		}
		if (accepted.length > 0) {
			const row =
				accepted.length === 1 ? accepted[0]!.stored : Y.mergeUpdates(accepted.map((a) => a.stored));
			forwardBatch(room, accepted, row);
			try {
				store.append(room.id, row);
			} catch (err) {
				// Nothing of the batch was stored: its senders hear so, and get no
				// acknowledgement of it (the state vector below is still the old one).
				log.error('storing updates failed', { room: room.id, updates: accepted.length, err });
				const failed = new Set(accepted.map((a) => a.conn));
				for (const conn of failed) {
					refuse(conn, 'server-error', 'the relay could not store this; nothing was stored');
				}
				for (const conn of acks) if (!failed.has(conn)) acknowledge(conn, state);
				return;
			}
			state.add(
				row,
				accepted.flatMap((a) => a.entries)
			);
			metrics.updatesStored += accepted.length;
			for (const { conn } of accepted) acks.add(conn);
		}
		for (const conn of acks) acknowledge(conn, state);
		if (accepted.length > 0) maybeCompact(room, state);
	}

	/**
	 * Sends a batch's accepted updates to the room's other connections: the
	 * frame as it came for a lone update that was relayed whole, else one sync
	 * update of `merged`; a connection that sent some of the batch gets the
	 * merge of the others' only.
	 */
	function forwardBatch(room: Room, accepted: readonly Accepted[], merged: Uint8Array): void {
		const senders = new Set(accepted.map((a) => a.conn));
		const frameOf = (parts: readonly Accepted[], update: Uint8Array): Uint8Array =>
			parts.length === 1 && parts[0]!.raw ? parts[0]!.raw : writeSyncUpdate(update);
		let all: Uint8Array | undefined;
		for (const other of room.conns) {
			if (other.state !== 'open') continue;
			if (!senders.has(other)) {
				all ??= frameOf(accepted, merged);
				forward(other, all);
				continue;
			}
			const others = accepted.filter((a) => a.conn !== other);
			if (others.length === 0) continue;
			forward(
				other,
				frameOf(
					others,
					others.length === 1 ? others[0]!.stored : Y.mergeUpdates(others.map((a) => a.stored))
				)
			);
		}
	}

	/**
	 * Compaction is background work that no client waits for, so it waits for
	 * the room to be quiet (no update for compactQuietMs): merging decodes
	 * every item of a chunk, and in a busy room that time and memory would
	 * land on the live deliveries. A room that never goes quiet still compacts
	 * once COMPACT_OVERDUE_ROWS rows past its mark, one step at a time.
	 */
	function maybeCompact(room: Room, state: RoomState): void {
		if (room.compactScheduled || closing || state.rows < room.compactAt) return;
		room.compactScheduled = true;
		const gone = (): boolean => {
			if (!closing && rooms.get(room.id) === room && room.state) return false;
			room.compactScheduled = false;
			return true;
		};
		const step = (): void => {
			if (!gone()) room.run(() => compact(room));
		};
		const check = (): void => {
			if (gone()) return;
			const quietFor = room.quietMs;
			if (quietFor >= compactQuietMs) step();
			else if (state.rows >= room.compactAt + COMPACT_OVERDUE_ROWS) {
				setTimeout(step, COMPACT_BUSY_STEP_MS).unref();
			} else setTimeout(check, compactQuietMs - quietFor).unref();
		};
		setImmediate(check);
	}

	/** Merges a chunk of a room's small update rows into one row, in one transaction. */
	function compact(room: Room): void {
		room.compactScheduled = false;
		const state = room.state;
		if (closing || !state || room.retired) return;
		const chunk = store.compactable(
			room.id,
			COMPACT_MAX_ROW_BYTES,
			COMPACT_MAX_CHUNK_BYTES,
			MERGE_CHUNK
		);
		const total = chunk.reduce((sum, row) => sum + row.bytes.length, 0);
		if (chunk.length < 2) {
			room.compactAt = state.rows + compactAfterRows;
			return;
		}
		const merged = Y.mergeUpdates(chunk.map((row) => row.bytes));
		store.replace(
			room.id,
			chunk.map((row) => row.seq),
			total,
			merged
		);
		state.rows -= chunk.length - 1;
		state.bytes += merged.length - total;
		log.debug('compacted', {
			room: room.id,
			rows: chunk.length,
			bytesBefore: total,
			bytesAfter: merged.length
		});
		maybeCompact(room, state);
	}

	function evict(room: Room): void {
		if (rooms.get(room.id) !== room) return;
		rooms.delete(room.id);
		log.debug('room evicted', { room: room.id });
	}

	/** Runs room work for a connection; a failure is refused to it, never thrown. */
	async function task(conn: Connection, work: () => Promise<void>): Promise<void> {
		try {
			await work();
		} catch (err) {
			log.error('relay task failed', { conn: conn.id, room: conn.room?.id, err });
			refuse(conn, 'server-error', 'the relay could not process this; nothing was stored');
		}
	}

	// --- retirement (docs/protocol.md, "Room retirement") -----------------------

	/** `POST /sync/retire` and `POST /sync/moved`: a signed request about one room. */
	async function retirementRequest(
		kind: 'retire' | 'moved',
		req: IncomingMessage,
		res: ServerResponse,
		target: RequestTarget
	): Promise<void> {
		if (req.method === 'OPTIONS') return sendPreflight(res);
		const unavailable = () =>
			sendJson(res, 503, { error: 'unavailable', message: 'the relay is shutting down' });
		if (closing) {
			req.resume();
			return unavailable();
		}
		const roomId = new URLSearchParams(target.search).get('room');
		if (!isRoomId(roomId)) {
			req.resume();
			return sendJson(res, 400, { error: 'bad-room', message: retireDenial('bad-room') });
		}
		let body: RetireBody | MovedBody;
		try {
			const raw = await readJsonBody(req, MAX_RETIRE_BODY_BYTES);
			const schemas = await import('./retire-bodies.ts');
			body =
				kind === 'retire' ? parseBody(schemas.RetireBody, raw) : parseBody(schemas.MovedBody, raw);
		} catch (err) {
			if (!(err instanceof Error) || err.name !== BadRequest.NAME) throw err;
			log.info('retirement request refused', { kind, reason: 'bad-request', room: roomId });
			return sendJson(res, 400, { error: 'bad-request', message: err.message });
		}
		const refuse = (status: number, reason: Parameters<typeof retireDenial>[0]) => {
			log.info('retirement request refused', { kind, reason, room: roomId });
			sendJson(res, status, { error: reason, message: retireDenial(reason) });
		};
		if (store.isRetired(roomId)) return refuse(410, 'room-retired');
		const message =
			'tag' in body
				? movedMessage(roomId, body.nonce, body.tag)
				: retireMessage(roomId, body.nonce);
		const key = await prove(roomId, body.nonce, body.cap, body.sig, message);
		if (closing) return unavailable();
		if (typeof key === 'string') return refuse(403, key);
		// Everything below is synchronous: nothing can retire the room in between.
		if (store.isRetired(roomId)) return refuse(410, 'room-retired');
		const registered = store.capOf(roomId);
		if (!registered) return refuse(404, 'unknown-room');
		if (!equalBytes(registered, key)) return refuse(403, 'wrong-capability');
		const t = now();
		if ('tag' in body) {
			if (!store.markMoved(roomId, body.tag, t, MAX_MOVED_TAGS)) {
				return refuse(409, 'too-many-tags');
			}
			log.debug('device moved', { room: roomId });
		} else {
			const retainUntil = Math.min(body.retainUntil, t + retainMaxMs);
			store.plan(roomId, body.devices, retainUntil, t);
			log.info('retirement planned', { room: roomId, devices: body.devices.length, retainUntil });
		}
		retireDue();
		if (store.isRetired(roomId)) return sendJson(res, 200, { retired: true });
		const plan = store.planOf(roomId);
		sendJson(res, 200, {
			retired: false,
			retainUntil: plan?.retainUntil ?? null,
			devices: plan?.devices ?? null,
			pending: plan?.pending ?? null
		});
	}

	/** Retires every room whose plan is fulfilled, then finishes the log checkpoint. */
	function retireDue(): void {
		if (closing) return;
		const t = now();
		for (const id of store.due(t)) retire(id, t);
		if (checkpointPending) {
			checkpointPending = !store.checkpoint();
			if (checkpointPending) log.warn('log checkpoint after a retirement is busy; retrying later');
		}
	}

	/**
	 * Deletes the room's updates and leaves its tombstone (store.retire), then
	 * closes its connections with `room-retired`. Work still queued on the room
	 * sees `retired` and does nothing.
	 */
	function retire(id: string, t: number): void {
		const plan = store.planOf(id);
		const bytes = store.retire(id, t);
		checkpointPending = true;
		metrics.roomsRetired++;
		const room = rooms.get(id);
		let closed = 0;
		if (room) {
			room.retired = true;
			room.state = undefined;
			room.stopTimers();
			rooms.delete(id);
			for (const conn of room.conns) {
				sendDenial(conn, 'room-retired');
				closed++;
			}
		}
		log.info('room retired', {
			room: id,
			why: plan && plan.pending === 0 ? 'moved' : 'deadline',
			bytes,
			closed
		});
	}

	// --- output ----------------------------------------------------------------

	function send(conn: Connection, frame: Uint8Array): void {
		if (conn.ws.readyState !== WebSocket.OPEN) return;
		conn.ws.send(frame, { binary: true });
		conn.lastSent = Date.now();
		metrics.framesOut++;
	}

	function forward(conn: Connection, frame: Uint8Array): void {
		if (conn.state !== 'open') return;
		if (conn.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
			log.warn('receiver too slow, disconnecting', { conn: conn.id, room: conn.room?.id });
			conn.close(CLOSE.tryAgainLater, 'too slow');
			return;
		}
		send(conn, frame);
	}

	function acknowledge(conn: Connection, state: RoomState): void {
		if (conn.ack && conn.state === 'open') send(conn, writeStored(state.stateVector()));
	}

	function refuse(conn: Connection, reason: RefusalReason, message: string): void {
		metrics.refused(reason);
		log.info('refused', { reason, room: conn.room?.id, conn: conn.id });
		if (conn.ack) send(conn, writeRefused(reason, message));
	}

	/** Over the rate: the frame is dropped; the client hears about it at most once a second. */
	function rateLimited(conn: Connection): void {
		metrics.refused('rate-limited');
		const t = Date.now();
		if (t - conn.lastRateNotice < 1000) return;
		conn.lastRateNotice = t;
		log.info('refused', { reason: 'rate-limited', room: conn.room?.id, conn: conn.id });
		if (conn.ack) {
			send(conn, writeRefused('rate-limited', 'too many frames or bytes per second; slow down'));
		}
	}

	function beat(): void {
		const t = Date.now();
		for (const conn of connections) {
			if (conn.state !== 'open') continue;
			if (!conn.alive) {
				log.debug('no pong, dropping connection', { conn: conn.id });
				conn.ws.terminate();
				continue;
			}
			conn.alive = false;
			conn.ws.ping();
			if (t - conn.lastSent >= keepaliveMs) send(conn, KEEPALIVE_FRAME);
		}
	}

	function guard(what: string, fn: () => void, conn?: Connection): void {
		try {
			fn();
		} catch (err) {
			log.error(`relay ${what} handler failed`, { conn: conn?.id, err });
			conn?.close(CLOSE.internalError, 'server-error');
		}
	}

	// --- shutdown --------------------------------------------------------------

	function close(): Promise<void> {
		closing ??= shutdown();
		return closing;
	}

	async function shutdown(): Promise<void> {
		clearInterval(heartbeat);
		clearInterval(retireTimer);
		const gone = new Promise<void>((resolve) => {
			allClosed = resolve;
			if (connections.size === 0) resolve();
		});
		for (const conn of connections) conn.close(CLOSE.goingAway, 'relay shutting down');
		for (const room of rooms.values()) room.stopTimers();
		// Work already queued (a check, a store) finishes; nothing new is queued.
		await Promise.all([...rooms.values()].map((room) => room.drained()));
		let timer: NodeJS.Timeout | undefined;
		await Promise.race([
			gone,
			new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS)))
		]);
		clearTimeout(timer);
		for (const conn of connections) conn.ws.terminate();
		rooms.clear();
		store.close();
		log.info('relay closed');
	}

	return {
		metrics,
		get roomsActive() {
			return rooms.size;
		},
		close,
		async proveAccess(room, cap, nonce, sig) {
			const key = await authenticate(room, new URLSearchParams({ cap, nonce, sig }));
			if (typeof key === 'string') return key;
			const registered = store.capOf(room);
			return registered && equalBytes(registered, key) ? null : 'wrong-capability';
		},
		liveDevices(room) {
			const live = new Set<string>();
			for (const conn of rooms.get(room)?.conns ?? []) {
				if (conn.state === 'open' && conn.device) live.add(conn.device);
			}
			return live;
		},
		onNotify(handler) {
			notifyHandler = handler;
		}
	};
}

function toBytes(data: RawData): Uint8Array {
	if (Array.isArray(data)) return Buffer.concat(data);
	if (data instanceof ArrayBuffer) return new Uint8Array(data);
	return data;
}
