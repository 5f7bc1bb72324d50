/**
 * Web Push at the relay (docs/protocol.md, "Push (v1)"). The app registers
 * its browser push subscription for rooms it proves access to, exactly as a
 * WebSocket admission does; when a connection sends a notification envelope
 * (kith-notify), the relay pushes those bytes — encrypted for the browser by
 * RFC 8291, and under a conversation key inside — to every subscription of
 * the room that is not muted there, not the sender's device, and not a device
 * connected to the room right now. The relay cannot read what it pushes.
 *
 *   GET    /push/key            the VAPID public key (applicationServerKey)
 *   PUT    /push/subscription   register a subscription for proven rooms
 *   DELETE /push/subscription   forget one (notifications off, sign-out)
 *
 * Bad requests get a JSON error naming what is wrong; nothing a client sends
 * is logged. The body schemas (zod, bodies.ts) load with the first request.
 */
import { createECDH } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Agent } from 'node:https';
import { fromBase64Url } from '../../../src/lib/crypto/bytes.ts';
import type { Config } from '../config.ts';
import { silentLogger, type Logger } from '../log.ts';
import type { Relay } from '../relay/index.ts';
import { TokenBucket } from '../relay/rate-limit.ts';
import type { KithServer } from '../server.ts';
import { BadRequest, parseBody, readJsonBody } from '../http-body.ts';
import type { DeleteSubscriptionBody, PutSubscriptionBody } from './bodies.ts';
import { PushMetrics } from './metrics.ts';
import { PushSender } from './sender.ts';
import { PushStore, type SubscribedRoom } from './store.ts';
import { loadVapidKeys } from './vapid.ts';

export const PUSH_KEY_PATH = '/push/key';
export const PUSH_SUBSCRIPTION_PATH = '/push/subscription';
/**
 * Enough for MAX_ROOMS proofs (about 260 bytes of JSON each): a body cap of
 * 64 KiB would have cut registrations at about 250 rooms.
 */
export const MAX_BODY_BYTES = 320 * 1024;
export const MAX_ROOMS = 1000;
export const MAX_ENDPOINT_CHARS = 2048;
/**
 * Notifications one room may fan out per second, and its burst. Every member
 * device sends one per message, so a busy group stays well below; beyond it a
 * flood from one member is dropped here instead of filling the shared queue.
 */
export const NOTIFY_RATE_PER_SEC = 10;
export const NOTIFY_BURST = 30;
/** Rooms whose notify rate is tracked at once; beyond, the tracking starts over. */
const MAX_TRACKED_ROOMS = 10_000;

export interface PushOptions {
	logger?: Logger;
	/** HTTPS agent for requests to push services (tests: a private CA). */
	agent?: Agent;
	/** Retry delays (tests shorten them); see sender.ts. */
	retryDelaysMs?: readonly number[];
	concurrency?: number;
	/** Per-room notify rate and burst (tests lower them). */
	notifyRate?: { perSec: number; burst: number };
	/** Wall clock (tests). */
	now?: () => number;
}

export interface Push {
	readonly store: PushStore;
	readonly sender: PushSender;
	readonly metrics: PushMetrics;
	/** The VAPID public key, base64url. */
	readonly publicKey: string;
	/** Drops pending pushes, waits briefly for those in flight, closes the database. */
	close(): Promise<void>;
}

/**
 * Opens `KITH_DATA/vapid.json` (made on first start) and `KITH_DATA/push.db`,
 * adds the push routes to `server`, listens for kith-notify on `relay`, and
 * adds push counters to /metrics. Throws if the keys or database are unusable.
 */
export function attachPush(
	server: KithServer,
	relay: Relay,
	config: Config,
	options: PushOptions = {}
): Push {
	const log = (options.logger ?? silentLogger).child({ component: 'push' });
	const now = options.now ?? Date.now;
	const vapid = loadVapidKeys(config.dataDir);
	const store = new PushStore(config.dataDir);
	const metrics = new PushMetrics();
	const sender = new PushSender({
		vapid,
		subject: config.vapidSubject,
		store,
		metrics,
		log,
		...(options.agent ? { agent: options.agent } : {}),
		...(options.retryDelaysMs ? { retryDelaysMs: options.retryDelaysMs } : {}),
		...(options.concurrency ? { concurrency: options.concurrency } : {})
	});
	let closing: Promise<void> | undefined;
	const notifyRate = options.notifyRate ?? { perSec: NOTIFY_RATE_PER_SEC, burst: NOTIFY_BURST };
	const notifyBuckets = new Map<string, TokenBucket>();

	relay.metrics.sections.push(() => metrics.render(store.count));

	server.addRoute({
		methods: ['GET'],
		path: PUSH_KEY_PATH,
		handler: (_req, res) => json(res, 200, { publicKey: vapid.publicKey })
	});

	server.addRoute({
		methods: ['PUT', 'DELETE', 'OPTIONS'],
		path: PUSH_SUBSCRIPTION_PATH,
		handler: async (req, res) => {
			if (req.method === 'OPTIONS') return preflight(res);
			try {
				if (closing) return json(res, 503, { error: 'unavailable', message: 'shutting down' });
				const body = await readJsonBody(req, MAX_BODY_BYTES);
				const schemas = await import('./bodies.ts');
				if (req.method === 'PUT') await put(res, parseBody(schemas.PutSubscriptionBody, body));
				else remove(res, parseBody(schemas.DeleteSubscriptionBody, body));
			} catch (err) {
				if (!(err instanceof Error) || err.name !== BadRequest.NAME) throw err;
				log.info('push request refused', { reason: 'bad-request', method: req.method });
				json(res, 400, { error: 'bad-request', message: err.message });
			}
		}
	});

	relay.onNotify((room, envelope, device) => {
		if (closing) return;
		let bucket = notifyBuckets.get(room);
		if (!bucket) {
			if (notifyBuckets.size >= MAX_TRACKED_ROOMS) notifyBuckets.clear();
			bucket = new TokenBucket(notifyRate.perSec, notifyRate.burst);
			notifyBuckets.set(room, bucket);
		}
		if (!bucket.take()) {
			metrics.limited++;
			return;
		}
		try {
			const live = relay.liveDevices(room);
			let queued = 0;
			for (const sub of store.targets(room)) {
				if (sub.device === device || live.has(sub.device)) continue;
				sender.send(sub, envelope);
				queued++;
			}
			log.debug('notify', { room, bytes: envelope.length, queued });
		} catch (err) {
			log.error('push fan-out failed', { room, err });
		}
	});

	server.onClose(() => close());

	async function put(res: ServerResponse, body: PutSubscriptionBody): Promise<void> {
		const { endpoint, keys } = body.subscription;
		checkEndpoint(endpoint, config.pushHosts);
		checkKeys(keys.p256dh, keys.auth);
		const seen = new Set<string>();
		for (const { room } of body.rooms) {
			if (seen.has(room)) throw new BadRequest(`room ${room} is listed twice`);
			seen.add(room);
		}
		// Every proof is checked (and its nonce redeemed) before anything changes.
		const failures = await Promise.all(
			body.rooms.map((r) => relay.proveAccess(r.room, r.cap, r.nonce, r.sig))
		);
		const i = failures.findIndex((f) => f !== null);
		if (i !== -1) {
			const reason = failures[i]!;
			const room = body.rooms[i]!.room;
			log.info('push registration denied', { reason, room });
			return json(res, 403, { error: reason, message: denial(reason), room });
		}
		const rooms: SubscribedRoom[] = body.rooms.map((r) => ({ room: r.room, muted: r.muted }));
		store.replace(
			{ endpoint, p256dh: unpad(keys.p256dh), auth: unpad(keys.auth), device: body.device },
			rooms,
			now()
		);
		log.info('push subscription registered', { rooms: rooms.length });
		json(res, 200, { rooms: rooms.length });
	}

	function remove(res: ServerResponse, { endpoint }: DeleteSubscriptionBody): void {
		if (store.remove(endpoint)) log.info('push subscription removed');
		res.writeHead(204, { 'Cache-Control': 'no-store', 'Access-Control-Allow-Origin': '*' });
		res.end();
	}

	function close(): Promise<void> {
		closing ??= (async () => {
			await sender.close();
			store.close();
		})();
		return closing;
	}

	return { store, sender, metrics, publicKey: vapid.publicKey, close };
}

function checkEndpoint(endpoint: string, hosts: readonly string[]): void {
	let url: URL;
	try {
		url = new URL(endpoint);
	} catch {
		throw new BadRequest('subscription.endpoint: not a URL');
	}
	if (url.protocol !== 'https:') throw new BadRequest('subscription.endpoint: must be https:');
	if (url.username || url.password) {
		throw new BadRequest('subscription.endpoint: must not carry credentials');
	}
	if (!pushHostAllowed(url.hostname, hosts)) {
		throw new BadRequest(
			`subscription.endpoint: ${url.hostname} is not a push service this relay sends to (KITH_PUSH_HOSTS)`
		);
	}
}

/** Whether `hostname` is one of `hosts` (exact), under one of its `.suffix`es, or `*` is listed. */
export function pushHostAllowed(hostname: string, hosts: readonly string[]): boolean {
	const host = hostname.toLowerCase().replace(/\.$/, '');
	return hosts.some((h) =>
		h === '*' ? true : h.startsWith('.') ? host.endsWith(h) && host.length > h.length : host === h
	);
}

/** The keys as RFC 8291 needs them: a P-256 point the relay can agree a key with, 16 auth bytes. */
function checkKeys(p256dh: string, auth: string): void {
	let point: Uint8Array;
	let secret: Uint8Array;
	try {
		point = fromBase64Url(unpad(p256dh));
		secret = fromBase64Url(unpad(auth));
	} catch {
		throw new BadRequest('subscription.keys: not base64url');
	}
	if (secret.length !== 16) throw new BadRequest('subscription.keys.auth: must be 16 bytes');
	try {
		if (point.length !== 65) throw new Error('length');
		const ecdh = createECDH('prime256v1');
		ecdh.generateKeys();
		ecdh.computeSecret(point);
	} catch {
		throw new BadRequest('subscription.keys.p256dh: must be an uncompressed P-256 public key');
	}
}

function unpad(text: string): string {
	return text.replace(/=+$/, '');
}

function denial(reason: string): string {
	switch (reason) {
		case 'wrong-capability':
			return 'this room is not registered at the relay with this capability';
		case 'expired-challenge':
			return 'the challenge expired; fetch a fresh one for each room';
		case 'replayed-challenge':
			return 'a challenge was used before; fetch a fresh one for each room';
		case 'bad-challenge':
			return 'the nonce is not a challenge this relay issued for this room';
		default:
			return 'the proof of access to this room does not verify';
	}
}

function json(res: ServerResponse, status: number, body: unknown): void {
	const text = JSON.stringify(body);
	res.writeHead(status, {
		'Content-Type': 'application/json; charset=utf-8',
		'Content-Length': Buffer.byteLength(text),
		'Cache-Control': 'no-store',
		// Registration is authorised by the room proofs and removal by knowing
		// the endpoint, not by origin: the app may use a relay on another origin.
		'Access-Control-Allow-Origin': '*'
	});
	res.end(text);
}

function preflight(res: ServerResponse): void {
	res.writeHead(204, {
		'Access-Control-Allow-Origin': '*',
		'Access-Control-Allow-Methods': 'PUT, DELETE',
		'Access-Control-Allow-Headers': 'Content-Type',
		'Access-Control-Max-Age': '600',
		'Cache-Control': 'no-store'
	});
	res.end();
}
