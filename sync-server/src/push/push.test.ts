/**
 * Push, relay side (docs/protocol.md, "Push (v1)"): a real relay with push
 * attached, a real HTTPS push service that checks VAPID and opens the body
 * as a browser would (http_ece), and real sealed notification envelopes.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toBase64Url } from '../../../src/lib/crypto/index.ts';
import {
	notifyKeyFor,
	openNotification,
	sealNotification
} from '../../../src/lib/push/notification.ts';
import { writeNotify } from '../../../src/lib/sync/messages.ts';
import { createLogger } from '../log.ts';
import {
	accessParams,
	cleanUp,
	Conversation,
	Member,
	metricsText,
	RelayClient,
	startRelay,
	type RunningRelay
} from '../relay/test-support.ts';
import { attachPush, MAX_BODY_BYTES, pushHostAllowed, type Push } from './push.ts';
import { PUSH_TTL_SECONDS } from './sender.ts';
import { checkVapid, TestPushService, type Subscriber } from './test-push-service.ts';
import { VAPID_FILE } from './vapid.ts';

const MARKER = 'PUSH-MARKER-plaintext-7f3a9c';
/** The test push service listens on loopback, which no default lists. */
const TEST_PUSH_HOSTS = ['127.0.0.1'];

let service: TestPushService;
let relay: RunningRelay;
let push: Push;

beforeEach(async () => {
	service = await TestPushService.start();
	relay = await startRelay({ config: { pushHosts: TEST_PUSH_HOSTS } });
	push = mount(relay);
});

afterEach(async () => {
	await cleanUp();
	await service.close();
});

function mount(r: RunningRelay): Push {
	const logger = createLogger({
		level: 'debug',
		write: (line) => r.logs.push(JSON.parse(line) as Record<string, unknown>)
	});
	return attachPush(r.server, r.relay, r.config, {
		logger,
		agent: service.agent,
		retryDelaysMs: [50, 100, 200]
	});
}

/** A conversation whose room the relay already holds (a member connected once). */
async function registeredConversation(): Promise<Conversation> {
	const conversation = new Conversation();
	const first = await RelayClient.join(relay.base, conversation);
	await first.next((f) => f.kind === 'sync-step1');
	await first.close();
	return conversation;
}

/** Connects as `device` (the app's `device=` parameter). */
async function connect(conversation: Conversation, device: string): Promise<RelayClient> {
	const params = new URLSearchParams(
		await accessParams(relay.base, conversation.roomId, await conversation.capability())
	);
	params.set('ack', '1');
	params.set('device', device);
	const client = RelayClient.raw(relay.base, `/sync/${conversation.roomId}?${params}`);
	await client.opened();
	await client.next((f) => f.kind === 'sync-step1');
	return client;
}

async function proof(conversation: Conversation, muted = false) {
	const cap = await conversation.capability();
	return {
		room: conversation.roomId,
		...(await accessParams(relay.base, conversation.roomId, cap)),
		muted
	};
}

function putSubscription(body: unknown): Promise<Response> {
	return fetch(`${relay.base}/push/subscription`, {
		method: 'PUT',
		headers: { 'Content-Type': 'application/json' },
		body: typeof body === 'string' ? body : JSON.stringify(body)
	});
}

async function register(
	subscriber: Subscriber,
	device: string,
	rooms: Array<{ conversation: Conversation; muted?: boolean }>
): Promise<void> {
	const res = await putSubscription({
		subscription: subscriber.json,
		device,
		rooms: await Promise.all(rooms.map((r) => proof(r.conversation, r.muted)))
	});
	expect(res.status, await res.clone().text()).toBe(200);
	expect(await res.json()).toEqual({ rooms: rooms.length });
}

async function envelopeFor(conversation: Conversation, preview: string): Promise<Uint8Array> {
	const member = await Member.create(conversation);
	return sealNotification({
		roomId: conversation.roomId,
		epoch: 0,
		key: notifyKeyFor(conversation.epochKey, conversation.roomId),
		signer: member.signer,
		body: { c: conversation.roomId, t: 'The group', n: 'Alice', p: preview }
	});
}

function metric(text: string, name: string): number {
	const m = new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\d+)$`, 'm').exec(text);
	return m ? Number(m[1]) : 0;
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 400));

describe('push: delivery', () => {
	it('pushes the envelope, VAPID-signed and RFC 8291-encrypted, only to offline, unmuted, other devices', async () => {
		const conversation = await registeredConversation();
		const offline = service.subscriber('/offline');
		const muted = service.subscriber('/muted');
		const own = service.subscriber('/own');
		const live = service.subscriber('/live');
		await register(offline, 'dev-offline', [{ conversation }]);
		await register(muted, 'dev-muted', [{ conversation, muted: true }]);
		await register(own, 'dev-sender', [{ conversation }]);
		await register(live, 'dev-live', [{ conversation }]);
		await connect(conversation, 'dev-live');
		const sender = await connect(conversation, 'dev-sender');

		const envelope = await envelopeFor(conversation, MARKER);
		sender.send(writeNotify(envelope));

		const [request] = await service.received('/offline');
		await settle();
		expect(service.requests.map((r) => r.path)).toEqual(['/offline']);
		expect(sender.refusals()).toEqual([]);

		const { publicKey } = (await (await fetch(`${relay.base}/push/key`)).json()) as {
			publicKey: string;
		};
		const claims = checkVapid(request!.headers, publicKey);
		expect(claims.aud).toBe(service.origin);
		expect(claims.sub).toBe('mailto:admin@localhost');
		const nowSec = Date.now() / 1000;
		expect(claims.exp).toBeGreaterThan(nowSec);
		expect(claims.exp).toBeLessThanOrEqual(nowSec + 24 * 3600);
		expect(request!.headers['content-encoding']).toBe('aes128gcm');
		expect(request!.headers.ttl).toBe(String(PUSH_TTL_SECONDS));
		expect(request!.headers.urgency).toBe('high');

		const body = offline.open(request!.body);
		expect(new Uint8Array(body)).toEqual(envelope);
		expect(body.includes(MARKER)).toBe(false);
		expect(request!.body.includes(MARKER)).toBe(false);
		// It is the real notification: a member's device opens it.
		const opened = await openNotification(body, (room) =>
			notifyKeyFor(conversation.epochKey, room)
		);
		expect(opened.p).toBe(MARKER);

		// Nothing readable, and no endpoint, in logs or the push database.
		const logs = JSON.stringify(relay.logs);
		expect(logs).not.toContain(MARKER);
		expect(logs).not.toContain('/offline');
		for (const file of ['push.db', 'push.db-wal']) {
			const bytes = await readFile(join(relay.dataDir, file)).catch(() => Buffer.alloc(0));
			expect(bytes.includes(MARKER)).toBe(false);
		}
		const metrics = await metricsText(relay.base);
		expect(metric(metrics, 'kith_push_sent_total')).toBe(1);
		expect(metric(metrics, 'kith_push_subscriptions')).toBe(4);
	});

	it('drops a subscription the push service says is gone (410), and sends it nothing more', async () => {
		const conversation = await registeredConversation();
		const gone = service.subscriber('/gone');
		await register(gone, 'dev-gone', [{ conversation }]);
		service.statuses.set('/gone', [410]);
		const sender = await connect(conversation, 'dev-sender');
		sender.send(writeNotify(await envelopeFor(conversation, MARKER)));
		await service.received('/gone');
		await sender.until(() => push.store.get(gone.json.endpoint) === undefined, 5000, 'removal');
		expect(push.store.rooms(gone.json.endpoint)).toEqual([]);

		sender.send(writeNotify(await envelopeFor(conversation, 'again')));
		await settle();
		expect(service.to('/gone')).toHaveLength(1);
		const metrics = await metricsText(relay.base);
		expect(metric(metrics, 'kith_push_failed_total{reason="gone"}')).toBe(1);
		expect(metric(metrics, 'kith_push_subscriptions')).toBe(0);
	});

	it('retries after a 500 and delivers', async () => {
		const conversation = await registeredConversation();
		const flaky = service.subscriber('/flaky');
		await register(flaky, 'dev-flaky', [{ conversation }]);
		service.statuses.set('/flaky', [500]);
		const sender = await connect(conversation, 'dev-sender');
		const envelope = await envelopeFor(conversation, MARKER);
		sender.send(writeNotify(envelope));
		const requests = await service.received('/flaky', 2);
		for (const r of requests) expect(new Uint8Array(flaky.open(r.body))).toEqual(envelope);
		await settle();
		expect(service.to('/flaky')).toHaveLength(2);
		const metrics = await metricsText(relay.base);
		expect(metric(metrics, 'kith_push_sent_total')).toBe(1);
		expect(metric(metrics, 'kith_push_failed_total{reason="server"}')).toBe(1);
		expect(metric(metrics, 'kith_push_retries_total')).toBe(1);
		expect(push.store.get(flaky.json.endpoint)).toBeDefined();
	});

	it('gives up after the retries when the push service cannot be reached', async () => {
		const conversation = await registeredConversation();
		const unreachable = service.subscriber('/x');
		unreachable.json.endpoint = 'https://127.0.0.1:1/x';
		await register(unreachable, 'dev-x', [{ conversation }]);
		const sender = await connect(conversation, 'dev-sender');
		sender.send(writeNotify(await envelopeFor(conversation, MARKER)));
		await sender.until(() => push.metrics.dropped === 1, 5000, 'giving up');
		expect(push.metrics.failures.get('network')).toBe(4);
		expect(push.store.get(unreachable.json.endpoint)).toBeDefined();
		expect(JSON.stringify(relay.logs)).not.toContain('127.0.0.1:1/x');
	});

	it("drops notifications over the room's notify rate", async () => {
		await relay.close();
		relay = await startRelay({ config: { pushHosts: TEST_PUSH_HOSTS } });
		push = attachPush(relay.server, relay.relay, relay.config, {
			agent: service.agent,
			notifyRate: { perSec: 0, burst: 2 }
		});
		const conversation = await registeredConversation();
		await register(service.subscriber('/offline'), 'dev-offline', [{ conversation }]);
		const sender = await connect(conversation, 'dev-sender');
		const envelope = await envelopeFor(conversation, MARKER);
		for (let i = 0; i < 5; i++) sender.send(writeNotify(envelope));
		await service.received('/offline', 2);
		await settle();
		expect(service.to('/offline')).toHaveLength(2);
		expect(metric(await metricsText(relay.base), 'kith_push_limited_total')).toBe(3);
	});

	it('refuses notify frames that are too large or empty without closing; a broken one closes', async () => {
		const conversation = await registeredConversation();
		const offline = service.subscriber('/offline');
		await register(offline, 'dev-offline', [{ conversation }]);
		const sender = await connect(conversation, 'dev-sender');
		sender.send(writeNotify(new Uint8Array(3073)));
		sender.send(writeNotify(new Uint8Array(0)));
		await sender.until(() => sender.refusals().length === 2, 5000, 'refusals');
		expect(sender.refusals()).toEqual(['notify-too-large', 'notify-empty']);
		sender.send(writeNotify(new Uint8Array(3072).fill(7)));
		const [request] = await service.received('/offline');
		expect(offline.open(request!.body)).toEqual(Buffer.alloc(3072, 7));

		// type 102, then a length prefix that runs past the end
		sender.send(new Uint8Array([102, 10, 1, 2]));
		expect((await sender.closed).code).toBe(1002);
		expect((await fetch(`${relay.base}/healthz`)).status).toBe(200);
	});
});

describe('push: registration', () => {
	it('serves the VAPID public key and keeps it in vapid.json (0600) across restarts', async () => {
		const res = await fetch(`${relay.base}/push/key`);
		expect(res.headers.get('cache-control')).toBe('no-store');
		const { publicKey } = (await res.json()) as { publicKey: string };
		expect(Buffer.from(publicKey, 'base64url')).toHaveLength(65);
		const file = join(relay.dataDir, VAPID_FILE);
		expect((await stat(file)).mode & 0o777).toBe(0o600);
		expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ publicKey });

		const conversation = await registeredConversation();
		const kept = service.subscriber('/kept');
		await register(kept, 'dev-kept', [{ conversation, muted: true }]);
		await relay.close();
		relay = await startRelay({ dataDir: relay.dataDir, config: { pushHosts: TEST_PUSH_HOSTS } });
		push = mount(relay);
		expect(push.publicKey).toBe(publicKey);
		expect(push.store.rooms(kept.json.endpoint)).toEqual([
			{ room: conversation.roomId, muted: true }
		]);
	});

	it('replaces the rooms of a subscription, and DELETE forgets it', async () => {
		const a = await registeredConversation();
		const b = await registeredConversation();
		const sub = service.subscriber('/s');
		await register(sub, 'dev-s', [{ conversation: a }, { conversation: b, muted: true }]);
		expect(push.store.rooms(sub.json.endpoint)).toHaveLength(2);
		await register(sub, 'dev-s', [{ conversation: b }]);
		expect(push.store.rooms(sub.json.endpoint)).toEqual([{ room: b.roomId, muted: false }]);
		const res = await fetch(`${relay.base}/push/subscription`, {
			method: 'DELETE',
			body: JSON.stringify({ endpoint: sub.json.endpoint })
		});
		expect(res.status).toBe(204);
		expect(push.store.get(sub.json.endpoint)).toBeUndefined();
		expect(push.store.count).toBe(0);
	});

	it('refuses a failing proof with 403 and changes nothing', async () => {
		const a = await registeredConversation();
		const b = await registeredConversation();
		const sub = service.subscriber('/s');
		await register(sub, 'dev-s', [{ conversation: a }]);
		const before = push.store.rooms(sub.json.endpoint);

		const badSig = { ...(await proof(b)), sig: toBase64Url(new Uint8Array(64)) };
		const stranger = new Conversation();
		const strangerCap = await stranger.capability();
		const wrongCap = {
			room: b.roomId,
			...(await accessParams(relay.base, b.roomId, strangerCap)),
			muted: false
		};
		// A room nobody registered is never claimed here.
		const unclaimed = await proof(stranger);
		const replayed = await proof(b);
		await register(sub, 'dev-s', [{ conversation: a }]); // (uses fresh nonces)
		const cases: Array<[unknown[], string, string]> = [
			[[await proof(a), badSig], 'unauthorized', b.roomId],
			[[wrongCap], 'wrong-capability', b.roomId],
			[[unclaimed], 'wrong-capability', stranger.roomId],
			[[{ ...(await proof(b)), nonce: 'x'.repeat(54) }], 'bad-challenge', b.roomId]
		];
		for (const [rooms, error, room] of cases) {
			const res = await putSubscription({ subscription: sub.json, device: 'dev-s', rooms });
			expect(res.status).toBe(403);
			expect(await res.json()).toMatchObject({ error, room });
		}
		const first = await putSubscription({
			subscription: sub.json,
			device: 'dev-s',
			rooms: [replayed]
		});
		expect(first.status).toBe(200);
		const again = await putSubscription({
			subscription: sub.json,
			device: 'dev-s',
			rooms: [replayed]
		});
		expect(again.status).toBe(403);
		expect(await again.json()).toMatchObject({ error: 'replayed-challenge' });
		expect(push.store.rooms(sub.json.endpoint)).toEqual([{ room: b.roomId, muted: false }]);
		expect(before).toEqual([{ room: a.roomId, muted: false }]);

		// The unclaimed room is still free for its real first writer.
		const claimer = await RelayClient.join(relay.base, stranger);
		await claimer.next((f) => f.kind === 'sync-step1');
	});

	it('answers malformed bodies with 400 bad-request and stays up', async () => {
		const conversation = await registeredConversation();
		const sub = service.subscriber('/s');
		const good = { subscription: sub.json, device: 'dev-s', rooms: [await proof(conversation)] };
		const bad: Array<[unknown, RegExp]> = [
			['{not json', /not JSON/],
			[[], /body/],
			[{ ...good, device: '' }, /device/],
			[{ ...good, device: 'a/b' }, /device/],
			[{ ...good, subscription: { ...sub.json, endpoint: 'http://127.0.0.1/x' } }, /https/],
			[{ ...good, subscription: { ...sub.json, endpoint: 'nope' } }, /URL/],
			// Only the listed push services: the relay would send requests wherever an endpoint says.
			[
				{ ...good, subscription: { ...sub.json, endpoint: 'https://169.254.169.254/latest' } },
				/not a push service/
			],
			[
				{ ...good, subscription: { ...sub.json, endpoint: 'https://localhost:8443/x' } },
				/KITH_PUSH_HOSTS/
			],
			[
				{ ...good, subscription: { ...sub.json, keys: { ...sub.json.keys, p256dh: 'AAAA' } } },
				/p256dh/
			],
			[
				{ ...good, subscription: { ...sub.json, keys: { ...sub.json.keys, auth: 'AAAA' } } },
				/auth/
			],
			[{ ...good, rooms: [{ ...good.rooms[0], room: 'short' }] }, /room/],
			[{ ...good, rooms: [good.rooms[0], good.rooms[0]] }, /twice/],
			[{ ...good, rooms: Array.from({ length: 1001 }, () => good.rooms[0]) }, /1000/],
			['x'.repeat(MAX_BODY_BYTES + 1), new RegExp(String(MAX_BODY_BYTES))]
		];
		for (const [body, message] of bad) {
			const res = await putSubscription(body);
			expect(res.status).toBe(400);
			const json = (await res.json()) as { error: string; message: string };
			expect(json.error).toBe('bad-request');
			expect(json.message).toMatch(message);
		}
		const del = await fetch(`${relay.base}/push/subscription`, { method: 'DELETE', body: '{}' });
		expect(del.status).toBe(400);
		expect(push.store.count).toBe(0);
		expect((await fetch(`${relay.base}/healthz`)).status).toBe(200);
		// The unused proof still works.
		await register(sub, 'dev-s', []);
		expect((await putSubscription(good)).status).toBe(200);
	});
});

describe('push hosts', () => {
	it('match exactly, by .suffix below the suffix only, or all with *', () => {
		const hosts = ['fcm.googleapis.com', '.push.apple.com'];
		expect(pushHostAllowed('fcm.googleapis.com', hosts)).toBe(true);
		expect(pushHostAllowed('FCM.googleapis.com.', hosts)).toBe(true);
		expect(pushHostAllowed('evil-fcm.googleapis.com', hosts)).toBe(false);
		expect(pushHostAllowed('web.push.apple.com', hosts)).toBe(true);
		expect(pushHostAllowed('push.apple.com', hosts)).toBe(false);
		expect(pushHostAllowed('push.apple.com.evil.example', hosts)).toBe(false);
		expect(pushHostAllowed('127.0.0.1', hosts)).toBe(false);
		expect(pushHostAllowed('anything.example', ['*'])).toBe(true);
	});
});
