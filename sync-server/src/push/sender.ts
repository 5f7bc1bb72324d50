/**
 * Delivers pushes: web-push (VAPID, RFC 8291 aes128gcm) to each
 * subscription's push service, with bounded concurrency and a bounded queue,
 * so a slow push service never holds up a room or eats the process.
 *
 * Outcomes: 2xx is delivered; 404/410 means the subscription expired and it
 * is removed; 429, 5xx and network errors are tried again after 1 s, 4 s and
 * 16 s (then given up and logged); any other status is a refusal and not
 * retried. A retry re-reads the subscription, so one removed or re-keyed
 * meanwhile is honoured. Logs name a subscription by a short hash and its push
 * service's host, never the endpoint URL (a bearer capability) or a payload.
 */
import { createHash } from 'node:crypto';
import type { Agent } from 'node:https';
import webpush from 'web-push';
import type { Logger } from '../log.ts';
import type { PushFailure, PushMetrics } from './metrics.ts';
import type { PushStore, Subscription } from './store.ts';
import type { VapidKeys } from './vapid.ts';

/** How long a push service keeps a push for an unreachable browser. */
export const PUSH_TTL_SECONDS = 86_400;
export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = [1000, 4000, 16_000];

export interface PushSenderOptions {
	vapid: VapidKeys;
	/** VAPID `sub` claim. */
	subject: string;
	store: PushStore;
	metrics: PushMetrics;
	log: Logger;
	/** For push services with a private CA (tests). */
	agent?: Agent;
	/** Requests in flight at once. */
	concurrency?: number;
	/** Delay before each retry; its length is the number of retries. */
	retryDelaysMs?: readonly number[];
	/** Socket timeout of one request. */
	timeoutMs?: number;
	/** Pushes waiting for a slot; more are dropped. */
	maxQueued?: number;
}

interface Job {
	sub: Subscription;
	payload: Buffer;
	/** Attempts made so far. */
	attempts: number;
}

export class PushSender {
	readonly #o: Required<Omit<PushSenderOptions, 'agent'>> & { agent: Agent | undefined };
	readonly #queue: Job[] = [];
	readonly #timers = new Set<NodeJS.Timeout>();
	readonly #inflight = new Set<Promise<void>>();
	#closed = false;

	constructor(options: PushSenderOptions) {
		this.#o = {
			concurrency: 8,
			retryDelaysMs: DEFAULT_RETRY_DELAYS_MS,
			timeoutMs: 10_000,
			maxQueued: 10_000,
			...options,
			agent: options.agent
		};
	}

	/** Queues one push of `payload` to `sub`. Never throws, never waits. */
	send(sub: Subscription, payload: Uint8Array): void {
		this.#enqueue({ sub, payload: Buffer.from(payload), attempts: 0 });
	}

	/** Requests in flight, queued, or waiting to be retried. */
	get pending(): number {
		return this.#inflight.size + this.#queue.length + this.#timers.size;
	}

	/** Drops what is queued or waiting for a retry, and waits (a bounded time) for requests in flight. */
	async close(graceMs = 2000): Promise<void> {
		this.#closed = true;
		for (const timer of this.#timers) clearTimeout(timer);
		this.#timers.clear();
		this.#queue.length = 0;
		let timer: NodeJS.Timeout | undefined;
		await Promise.race([
			Promise.all(this.#inflight),
			new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))
		]);
		clearTimeout(timer);
	}

	#enqueue(job: Job): void {
		if (this.#closed) return;
		if (this.#queue.length >= this.#o.maxQueued) {
			this.#o.metrics.dropped++;
			this.#o.log.warn('push queue full, dropping a push', { ...who(job.sub) });
			return;
		}
		this.#queue.push(job);
		this.#pump();
	}

	#pump(): void {
		while (!this.#closed && this.#inflight.size < this.#o.concurrency) {
			const job = this.#queue.shift();
			if (!job) return;
			const attempt: Promise<void> = this.#attempt(job)
				.catch((err: unknown) => this.#o.log.error('push attempt failed', { err }))
				.finally(() => {
					this.#inflight.delete(attempt);
					this.#pump();
				});
			this.#inflight.add(attempt);
		}
	}

	async #attempt(job: Job): Promise<void> {
		const { store, metrics, log } = this.#o;
		// A retry goes to the subscription as it is now: it may be gone or re-keyed.
		const sub = job.attempts === 0 ? job.sub : store.get(job.sub.endpoint);
		if (!sub) return;
		job.attempts++;
		let failure: { reason: PushFailure; status: number | undefined; code: string | undefined };
		try {
			await webpush.sendNotification(
				{ endpoint: sub.endpoint, keys: { p256dh: sub.p256dh, auth: sub.auth } },
				job.payload,
				{
					vapidDetails: {
						subject: this.#o.subject,
						publicKey: this.#o.vapid.publicKey,
						privateKey: this.#o.vapid.privateKey
					},
					TTL: PUSH_TTL_SECONDS,
					urgency: 'high',
					contentEncoding: 'aes128gcm',
					timeout: this.#o.timeoutMs,
					...(this.#o.agent ? { agent: this.#o.agent } : {})
				}
			);
			metrics.sent++;
			log.debug('push sent', { ...who(sub), attempts: job.attempts });
			return;
		} catch (err) {
			failure = classify(err);
		}
		metrics.failed(failure.reason);
		const fields = { ...who(sub), status: failure.status, code: failure.code };
		if (failure.reason === 'gone') {
			// Only if it is still the same subscription (not re-registered with new keys meanwhile).
			const current = store.get(sub.endpoint);
			if (current && current.p256dh === sub.p256dh) store.remove(sub.endpoint);
			log.info('push subscription expired; removed', fields);
			return;
		}
		const delay = this.#o.retryDelaysMs[job.attempts - 1];
		if (failure.reason !== 'rejected' && delay !== undefined && !this.#closed) {
			metrics.retries++;
			log.debug('push failed; will retry', { ...fields, attempts: job.attempts, delayMs: delay });
			const timer = setTimeout(() => {
				this.#timers.delete(timer);
				this.#enqueue(job);
			}, delay);
			timer.unref();
			this.#timers.add(timer);
			return;
		}
		metrics.dropped++;
		log.warn('push not delivered; giving up', {
			...fields,
			reason: failure.reason,
			attempts: job.attempts
		});
	}
}

function classify(err: unknown): {
	reason: PushFailure;
	status: number | undefined;
	code: string | undefined;
} {
	const status =
		err instanceof webpush.WebPushError && typeof err.statusCode === 'number'
			? err.statusCode
			: undefined;
	const raw = (err as { code?: unknown } | null)?.code;
	const code = typeof raw === 'string' ? raw.slice(0, 40) : undefined;
	if (status === undefined) return { reason: 'network', status, code };
	if (status === 404 || status === 410) return { reason: 'gone', status, code };
	if (status === 429) return { reason: 'throttled', status, code };
	if (status >= 500) return { reason: 'server', status, code };
	return { reason: 'rejected', status, code };
}

/** How a subscription appears in logs: its push service's host and a short hash of the endpoint. */
function who(sub: Subscription): { service: string; sub: string } {
	let service = '?';
	try {
		service = new URL(sub.endpoint).host;
	} catch {
		// stays '?'
	}
	return { service, sub: createHash('sha256').update(sub.endpoint).digest('hex').slice(0, 12) };
}
