/**
 * One profile, many tabs (DESIGN: "One profile, many tabs").
 *
 * Exactly one tab — the leader, holder of a Web Lock — writes to storage. Every
 * tab keeps its own in-memory docs and view. The protocol on a
 * BroadcastChannel:
 *
 *   follower → all:  {t:'insert', req, room, entries}   ask the leader to store
 *   leader   → all:  {t:'saved', req}                   stored (transaction committed)
 *   leader   → all:  {t:'update', room, update}         a committed Yjs update
 *   leader   → all:  {t:'hello'}                        a new leader took over
 *
 * The leader broadcasts an update only after its transaction committed, so
 * every tab may show whatever it receives as "Saved". A follower keeps its
 * inserts until a leader answers, re-sending on 'hello' and on a timer: inserts
 * are idempotent (an envelope's key is its hash), so a re-send is harmless.
 * Without Web Locks (very old browsers) every tab is its own leader.
 */
import { z } from 'zod';

const Bytes = z.custom<Uint8Array>((value) => value instanceof Uint8Array, 'expected bytes');
const Entry = z.object({ id: z.string(), bytes: Bytes });

const TabMessage = z.discriminatedUnion('t', [
	z.object({ t: z.literal('insert'), req: z.string(), room: z.string(), entries: z.array(Entry) }),
	z.object({ t: z.literal('saved'), req: z.string(), error: z.string().optional() }),
	z.object({ t: z.literal('update'), room: z.string(), update: Bytes }),
	z.object({ t: z.literal('hello') })
]);
type TabMessage = z.infer<typeof TabMessage>;

export interface TabEntry {
	id: string;
	bytes: Uint8Array;
}

export type InsertHandler = (room: string, entries: TabEntry[]) => Promise<void>;
export type UpdateHandler = (room: string, update: Uint8Array) => void;

const RESEND_MS = 1500;

interface Pending {
	room: string;
	entries: TabEntry[];
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
	readonly #pending = new Map<string, Pending>();
	#timer: ReturnType<typeof setInterval> | null = null;
	#releaseLock: (() => void) | null = null;
	#closed = false;

	constructor(profile: string) {
		this.#lockName = `kith-writer:${profile}`;
		this.#channel =
			typeof BroadcastChannel === 'undefined' ? null : new BroadcastChannel(`kith:${profile}`);
		this.#channel?.addEventListener('message', (event: MessageEvent) => this.#onMessage(event.data));
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
			this.#leader = true;
			for (const handler of this.#leaderHandlers) await handler();
			this.#post({ t: 'hello' });
			// Our own queued inserts now go straight to storage.
			for (const [req, pending] of this.#pending) void this.#runLocally(req, pending);
			await hold();
		});
		return false;
	}

	/** Called once when this tab takes over as leader after starting as a follower. */
	onBecomeLeader(handler: () => void | Promise<void>): void {
		this.#leaderHandlers.add(handler);
	}

	/** The leader's way to store inserts (its own and followers'). */
	setInsertHandler(handler: InsertHandler): void {
		this.#insertHandler = handler;
	}

	onUpdate(handler: UpdateHandler): () => void {
		this.#updateHandlers.add(handler);
		return () => this.#updateHandlers.delete(handler);
	}

	/** Leader: tell the other tabs about a committed update. */
	broadcastUpdate(room: string, update: Uint8Array): void {
		this.#post({ t: 'update', room, update });
	}

	/** Store entries: directly when leading, through the leader otherwise. Resolves once committed. */
	insert(room: string, entries: TabEntry[]): Promise<void> {
		const req = crypto.randomUUID();
		return new Promise<void>((resolve, reject) => {
			const pending: Pending = { room, entries, resolve, reject };
			this.#pending.set(req, pending);
			if (this.#leader) {
				void this.#runLocally(req, pending);
			} else {
				this.#post({ t: 'insert', req, room, entries });
				this.#ensureTimer();
			}
		});
	}

	async #runLocally(req: string, pending: Pending): Promise<void> {
		if (!this.#insertHandler) {
			pending.reject(new Error('storage is not ready'));
			this.#pending.delete(req);
			return;
		}
		try {
			await this.#insertHandler(pending.room, pending.entries);
			this.#pending.delete(req);
			pending.resolve();
		} catch (error) {
			// Stays pending: a quota error is retried when the next write succeeds.
			pending.reject(error instanceof Error ? error : new Error(String(error)));
			this.#pending.delete(req);
		}
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
		for (const [req, pending] of this.#pending) {
			this.#post({ t: 'insert', req, room: pending.room, entries: pending.entries });
		}
	}

	#onMessage(data: unknown): void {
		const parsed = TabMessage.safeParse(data);
		if (!parsed.success) {
			console.warn('kith:tabs dropped a malformed message');
			return;
		}
		const message = parsed.data;
		switch (message.t) {
			case 'insert': {
				if (!this.#leader || !this.#insertHandler) return;
				const handler = this.#insertHandler;
				handler(message.room, message.entries).then(
					() => this.#post({ t: 'saved', req: message.req }),
					(error: unknown) =>
						this.#post({
							t: 'saved',
							req: message.req,
							error: error instanceof Error ? `${error.name}: ${error.message}` : String(error)
						})
				);
				return;
			}
			case 'saved': {
				const pending = this.#pending.get(message.req);
				if (!pending) return;
				this.#pending.delete(message.req);
				if (message.error) pending.reject(new Error(message.error));
				else pending.resolve();
				return;
			}
			case 'update':
				for (const handler of this.#updateHandlers) handler(message.room, message.update);
				return;
			case 'hello':
				if (!this.#leader) this.#resendAll();
				return;
		}
	}

	#post(message: TabMessage): void {
		this.#channel?.postMessage(message);
	}

	close(): void {
		this.#closed = true;
		if (this.#timer) clearInterval(this.#timer);
		this.#releaseLock?.();
		this.#channel?.close();
	}
}
