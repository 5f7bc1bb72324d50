/**
 * One profile, many tabs (DESIGN: "One profile, many tabs").
 *
 * Exactly one tab — the leader, holder of a Web Lock — writes to storage and
 * inserts into docs. It also seals: an envelope names the Yjs clock of the
 * item that carries it, and only the inserting tab knows that clock. Every
 * tab keeps its own in-memory docs and views. The protocol on a
 * BroadcastChannel (same origin, same profile, never leaves the browser):
 *
 *   follower → all:  {t:'insert', req, room, epoch, key, plaintexts}
 *   leader   → all:  {t:'sealed', req, ids}     envelopes made and inserted
 *   leader   → all:  {t:'saved', req}           their transaction committed
 *   leader   → all:  {t:'update', room, update} a committed Yjs update
 *   leader   → all:  {t:'hello'}                a new leader took over
 *   leader   → all:  {t:'net', room, status, relay, peer}  the leader's relay connection:
 *                    status and what the relay acknowledged storing; and its
 *                    direct path to peers ('direct', 'LAN peer' or '')
 *   leader   → all:  {t:'aware', room, states}  remote encrypted awareness states
 *   any      → all:  {t:'notify', room, envelope}  a notification envelope for the relay
 *                    (the leader sends it),
 *   any      → all:  {t:'typing', room, state}  a tab's own encrypted awareness state,
 *                    which the leader publishes
 *   follower → all:  {t:'ask'}                  a new tab asks for 'net' and 'aware'
 *   follower → all:  {t:'chunk-want', req, room, id, reach}  a media chunk from the
 *                    leader's peers of `reach` ('lan', 'far' or 'any'; only the
 *                    leader reaches them)
 *   leader   → all:  {t:'chunk', req, blob}     its answer (null: no peer has it)
 *
 * Only the leader holds network connections (DESIGN: one set of connections).
 *
 * The leader broadcasts an update only after its transaction committed, so
 * every tab may show whatever it receives as "Saved". A follower keeps its
 * requests until a leader answers, re-sending on 'hello' and on a timer. A
 * re-sent request may be sealed twice if the old leader died between commit
 * and answer; both envelopes carry the same operation ids, which the reducer
 * counts once. Without Web Locks every tab is its own leader.
 */
import { z } from 'zod';
import type { SealRequest } from '../conversation';
import { PEER_CHUNK_TIMEOUT_MS } from '../media/chunks';
import { ChunkId } from '../media/manifest';
import type { PeerReach } from '../media/media.svelte';
import type { PathLabel } from './paths.svelte';

const Bytes = z.custom<Uint8Array>((value) => value instanceof Uint8Array, 'expected bytes');

const TabMessage = z.discriminatedUnion('t', [
	z.object({
		t: z.literal('insert'),
		req: z.string(),
		room: z.string(),
		epoch: z.number().int().nonnegative(),
		key: Bytes,
		plaintexts: z.array(Bytes)
	}),
	z.object({ t: z.literal('sealed'), req: z.string(), ids: z.array(z.string()) }),
	z.object({
		t: z.literal('saved'),
		req: z.string(),
		// A failed store keeps its error name (e.g. StorageQuotaError) across tabs.
		error: z.object({ name: z.string(), message: z.string() }).optional()
	}),
	z.object({ t: z.literal('update'), room: z.string(), update: Bytes }),
	z.object({ t: z.literal('hello') }),
	z.object({
		t: z.literal('net'),
		room: z.string(),
		status: z.enum(['connecting', 'connected', 'offline']),
		relay: z.array(z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()])),
		peer: z.enum(['', 'direct', 'LAN peer']).default('')
	}),
	z.object({
		t: z.literal('aware'),
		room: z.string(),
		states: z.array(z.tuple([z.number().int().nonnegative(), Bytes]))
	}),
	z.object({ t: z.literal('typing'), room: z.string(), state: Bytes.nullable() }),
	z.object({ t: z.literal('notify'), room: z.string(), envelope: Bytes }),
	z.object({ t: z.literal('ask') }),
	z.object({
		t: z.literal('chunk-want'),
		req: z.string(),
		room: z.string(),
		id: ChunkId,
		reach: z.enum(['lan', 'far', 'any'])
	}),
	z.object({ t: z.literal('chunk'), req: z.string(), blob: Bytes.nullable() }),
	z.object({ t: z.literal('erase') })
]);
type TabMessage = z.infer<typeof TabMessage>;

/** Leader side: seal, insert (calling onSealed with the ids right then), commit. */
export type InsertHandler = (
	room: string,
	request: SealRequest,
	onSealed: (ids: string[]) => void
) => Promise<string[]>;
export type UpdateHandler = (room: string, update: Uint8Array) => void;

export type NetStatus = 'connecting' | 'connected' | 'offline';
/** The leader's connection of one room, as the other tabs see it. */
export interface NetMessage {
	room: string;
	status: NetStatus;
	/** client id → clock below which the relay has stored every item. */
	relay: Array<[number, number]>;
	/** The leader's direct path to the room's peers. */
	peer: Exclude<PathLabel, 'via relay'>;
}

/** Leader side: a media chunk from this tab's peers in a room (null: none has it). */
export type ChunkWantHandler = (
	room: string,
	id: ChunkId,
	reach: PeerReach
) => Promise<Uint8Array | null>;
export interface AwarenessMessage {
	room: string;
	/** Remote client id → encrypted state. */
	states: Array<[number, Uint8Array]>;
}

const RESEND_MS = 1500;
/** A follower waits this long for the leader's chunk (one of its peers may take PEER_CHUNK_TIMEOUT_MS). */
const CHUNK_WAIT_MS = PEER_CHUNK_TIMEOUT_MS + 5_000;

interface Pending {
	room: string;
	request: SealRequest;
	onSealed: (ids: string[]) => void;
	resolve: () => void;
	reject: (error: Error) => void;
}

export class TabCoordinator {
	readonly #channel: BroadcastChannel | null;
	readonly #lockName: string;
	#leader = false;
	#insertHandler: InsertHandler | null = null;
	readonly #updateHandlers = new Set<UpdateHandler>();
	readonly #leaderHandlers = new Set<() => void | Promise<void>>();
	readonly #netHandlers = new Set<(message: NetMessage) => void>();
	readonly #awareHandlers = new Set<(message: AwarenessMessage) => void>();
	readonly #typingHandlers = new Set<(room: string, state: Uint8Array | null) => void>();
	readonly #notifyHandlers = new Set<(room: string, envelope: Uint8Array) => void>();
	readonly #askHandlers = new Set<() => void>();
	readonly #pending = new Map<string, Pending>();
	#chunkHandler: ChunkWantHandler | null = null;
	/** Chunk requests of this tab awaiting the leader's answer. */
	readonly #chunkWants = new Map<string, (blob: Uint8Array | null) => void>();
	#timer: ReturnType<typeof setInterval> | null = null;
	#releaseLock: (() => void) | null = null;
	#closed = false;

	constructor(profile: string) {
		this.#lockName = `kith-writer:${profile}`;
		this.#channel =
			typeof BroadcastChannel === 'undefined' ? null : new BroadcastChannel(`kith:${profile}`);
		this.#channel?.addEventListener('message', (event: MessageEvent) =>
			this.#onMessage(event.data)
		);
	}

	get isLeader(): boolean {
		return this.#leader;
	}

	/**
	 * Try to become the leader at once; if another tab leads, queue for the lock
	 * and become leader when it is released (that tab closed).
	 */
	async start(): Promise<boolean> {
		const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
		if (!locks) {
			this.#leader = true;
			return true;
		}
		const hold = () =>
			new Promise<void>((resolve) => {
				this.#releaseLock = resolve;
			});
		const immediately = await new Promise<boolean>((resolve) => {
			void locks.request(this.#lockName, { ifAvailable: true }, (lock) => {
				if (!lock) {
					resolve(false);
					return undefined;
				}
				resolve(true);
				return hold();
			});
		});
		if (immediately) {
			this.#leader = true;
			this.#post({ t: 'hello' });
			return true;
		}
		void locks.request(this.#lockName, async () => {
			if (this.#closed) return;
			for (const handler of this.#leaderHandlers) await handler();
			this.#leader = true;
			this.#post({ t: 'hello' });
			// Our own queued requests now go straight to storage.
			for (const [req, pending] of this.#pending) void this.#runLocally(req, pending);
			await hold();
		});
		return false;
	}

	/** Called once when this tab takes over as leader after starting as a follower. */
	onBecomeLeader(handler: () => void | Promise<void>): void {
		this.#leaderHandlers.add(handler);
	}

	setInsertHandler(handler: InsertHandler): void {
		this.#insertHandler = handler;
	}

	onUpdate(handler: UpdateHandler): () => void {
		this.#updateHandlers.add(handler);
		return () => this.#updateHandlers.delete(handler);
	}

	/**
	 * Leader: tell the other tabs about a committed update — if there are any.
	 * Every other tab of the profile queues for the writer lock in `start`,
	 * before it loads a doc, so when none is queued now, a tab that comes
	 * later loads this update from storage (it is committed already). Asked
	 * per update, not remembered: that reasoning holds only for a check made
	 * after the commit. Without Web Locks every tab is told.
	 */
	async broadcastUpdate(room: string, update: Uint8Array): Promise<void> {
		if (!(await this.#othersQueued())) return;
		this.#post({ t: 'update', room, update });
	}

	async #othersQueued(): Promise<boolean> {
		const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
		if (!locks || !this.#leader) return true;
		try {
			const { pending } = await locks.query();
			return (pending ?? []).some((lock) => lock.name === this.#lockName);
		} catch {
			return true;
		}
	}

	/** Leader: the state of a room's connection, for the other tabs. */
	broadcastNet(message: NetMessage): void {
		this.#post({ t: 'net', ...message });
	}

	onNet(handler: (message: NetMessage) => void): () => void {
		this.#netHandlers.add(handler);
		return () => this.#netHandlers.delete(handler);
	}

	/** Leader: remote awareness states of a room, for the other tabs. */
	broadcastAwareness(message: AwarenessMessage): void {
		this.#post({ t: 'aware', ...message });
	}

	onAwareness(handler: (message: AwarenessMessage) => void): () => void {
		this.#awareHandlers.add(handler);
		return () => this.#awareHandlers.delete(handler);
	}

	/** A tab's own encrypted awareness state; the leader publishes it. */
	sendTyping(room: string, state: Uint8Array | null): void {
		this.#post({ t: 'typing', room, state });
	}

	/** Leader: another tab set its awareness state. */
	onTyping(handler: (room: string, state: Uint8Array | null) => void): () => void {
		this.#typingHandlers.add(handler);
		return () => this.#typingHandlers.delete(handler);
	}

	/** A tab's notification envelope for the relay; the leader sends it. */
	sendNotify(room: string, envelope: Uint8Array): void {
		this.#post({ t: 'notify', room, envelope });
	}

	/** Leader: another tab has a notification envelope for the relay. */
	onNotify(handler: (room: string, envelope: Uint8Array) => void): () => void {
		this.#notifyHandlers.add(handler);
		return () => this.#notifyHandlers.delete(handler);
	}

	/** A new tab asks the leader for the connection and awareness state of every room. */
	/** This device is being erased: every other tab must stop using its storage. */
	broadcastErase(): void {
		this.#post({ t: 'erase' });
	}

	onErase(handler: () => void): () => void {
		this.#eraseHandlers.add(handler);
		return () => this.#eraseHandlers.delete(handler);
	}

	readonly #eraseHandlers = new Set<() => void>();

	askForNet(): void {
		this.#post({ t: 'ask' });
	}

	onAsk(handler: () => void): () => void {
		this.#askHandlers.add(handler);
		return () => this.#askHandlers.delete(handler);
	}

	/** Leader: answer other tabs' requests for media chunks from this tab's peers. */
	setChunkHandler(handler: ChunkWantHandler): void {
		this.#chunkHandler = handler;
	}

	/**
	 * Follower: a media chunk from the leader's peers (as the leader's
	 * handler answers), or null when none has it or no leader answers in time.
	 */
	askChunk(room: string, id: ChunkId, reach: PeerReach): Promise<Uint8Array | null> {
		const req = crypto.randomUUID();
		return new Promise((resolve) => {
			const timer = setTimeout(() => answer(null), CHUNK_WAIT_MS);
			const answer = (blob: Uint8Array | null) => {
				clearTimeout(timer);
				this.#chunkWants.delete(req);
				resolve(blob);
			};
			this.#chunkWants.set(req, answer);
			this.#post({ t: 'chunk-want', req, room, id, reach });
		});
	}

	/**
	 * Seal and store: directly when leading, through the leader otherwise.
	 * `onSealed` gets the envelope ids as soon as they exist; the promise
	 * resolves once they are committed to storage.
	 */
	insert(room: string, request: SealRequest, onSealed: (ids: string[]) => void): Promise<void> {
		const req = crypto.randomUUID();
		return new Promise<void>((resolve, reject) => {
			const pending: Pending = { room, request, onSealed, resolve, reject };
			this.#pending.set(req, pending);
			if (this.#leader) {
				void this.#runLocally(req, pending);
			} else {
				this.#send(req, pending);
				this.#ensureTimer();
			}
		});
	}

	async #runLocally(req: string, pending: Pending): Promise<void> {
		if (!this.#pending.has(req)) return;
		if (!this.#insertHandler) {
			this.#pending.delete(req);
			pending.reject(new Error('storage is not ready'));
			return;
		}
		// Taken off the queue first: a leader never runs one request twice.
		this.#pending.delete(req);
		try {
			await this.#insertHandler(pending.room, pending.request, pending.onSealed);
			pending.resolve();
		} catch (error) {
			pending.reject(error instanceof Error ? error : new Error(String(error)));
		}
	}

	#send(req: string, pending: Pending): void {
		this.#post({ t: 'insert', req, room: pending.room, ...pending.request });
	}

	#ensureTimer(): void {
		if (this.#timer) return;
		this.#timer = setInterval(() => {
			if (this.#pending.size === 0 || this.#leader) {
				if (this.#timer) clearInterval(this.#timer);
				this.#timer = null;
				return;
			}
			this.#resendAll();
		}, RESEND_MS);
	}

	#resendAll(): void {
		for (const [req, pending] of this.#pending) this.#send(req, pending);
	}

	/** Requests this leader is working on, so a re-send is not sealed twice. */
	readonly #serving = new Set<string>();

	#onMessage(data: unknown): void {
		const parsed = TabMessage.safeParse(data);
		if (!parsed.success) {
			console.warn('kith:tabs dropped a malformed message');
			return;
		}
		const message = parsed.data;
		switch (message.t) {
			case 'insert': {
				if (!this.#leader || !this.#insertHandler || this.#serving.has(message.req)) return;
				this.#serving.add(message.req);
				const { req, room, epoch, key, plaintexts } = message;
				this.#insertHandler(room, { epoch, key, plaintexts }, (ids) =>
					this.#post({ t: 'sealed', req, ids })
				)
					.finally(() => setTimeout(() => this.#serving.delete(req), 60_000))
					.then(
						() => this.#post({ t: 'saved', req }),
						(error: unknown) =>
							this.#post({
								t: 'saved',
								req,
								error:
									error instanceof Error
										? { name: error.name, message: error.message }
										: { name: 'Error', message: String(error) }
							})
					);
				return;
			}
			case 'sealed': {
				this.#pending.get(message.req)?.onSealed(message.ids);
				return;
			}
			case 'saved': {
				const pending = this.#pending.get(message.req);
				if (!pending) return;
				this.#pending.delete(message.req);
				if (message.error) {
					pending.reject(
						Object.assign(new Error(message.error.message), { name: message.error.name })
					);
				} else pending.resolve();
				return;
			}
			case 'update':
				for (const handler of this.#updateHandlers) handler(message.room, message.update);
				return;
			case 'hello':
				if (!this.#leader) this.#resendAll();
				return;
			case 'net':
				if (this.#leader) return;
				for (const handler of this.#netHandlers) handler(message);
				return;
			case 'aware':
				if (this.#leader) return;
				for (const handler of this.#awareHandlers) handler(message);
				return;
			case 'typing':
				if (!this.#leader) return;
				for (const handler of this.#typingHandlers) handler(message.room, message.state);
				return;
			case 'notify':
				if (!this.#leader) return;
				for (const handler of this.#notifyHandlers) handler(message.room, message.envelope);
				return;
			case 'ask':
				if (!this.#leader) return;
				for (const handler of this.#askHandlers) handler();
				return;
			case 'erase':
				for (const handler of this.#eraseHandlers) handler();
				return;
			case 'chunk-want': {
				const handler = this.#chunkHandler;
				if (!this.#leader || !handler) return;
				const { req } = message;
				handler(message.room, message.id, message.reach).then(
					(blob) => this.#post({ t: 'chunk', req, blob }),
					() => this.#post({ t: 'chunk', req, blob: null })
				);
				return;
			}
			case 'chunk':
				this.#chunkWants.get(message.req)?.(message.blob);
				return;
		}
	}

	#post(message: TabMessage): void {
		this.#channel?.postMessage(message);
	}

	close(): void {
		this.#closed = true;
		if (this.#timer) clearInterval(this.#timer);
		for (const answer of [...this.#chunkWants.values()]) answer(null);
		this.#releaseLock?.();
		this.#channel?.close();
	}
}
