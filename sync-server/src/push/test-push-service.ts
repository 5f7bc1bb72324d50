/**
 * Test-only: a real push service on a local HTTPS server (a self-signed
 * certificate made with openssl), and subscribers made as a browser makes
 * them (a P-256 key pair and a 16-byte auth secret). It checks each request's
 * VAPID JWT (RFC 8292) and opens the body with http_ece, an independent
 * RFC 8291 receiver; a test picks the status each endpoint answers.
 */
import { createECDH, createPublicKey, randomBytes, verify, type ECDH } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, Agent, type Server } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { decrypt } from 'http_ece';
import { tempDir } from '../test-helpers.ts';

export interface PushRequest {
	path: string;
	headers: IncomingHttpHeaders;
	body: Buffer;
}

export interface Subscriber {
	/** As PushSubscription.toJSON() gives it. */
	json: { endpoint: string; expirationTime: null; keys: { p256dh: string; auth: string } };
	/** Opens a request body addressed to this subscriber (throws if it does not open). */
	open(body: Buffer): Buffer;
}

export class TestPushService {
	readonly requests: PushRequest[] = [];
	/** Statuses to answer, per path, in order; 201 once a list runs out. */
	readonly statuses = new Map<string, number[]>();
	#waiters: Array<() => void> = [];

	private constructor(
		readonly server: Server,
		readonly origin: string,
		/** An agent that trusts the service's certificate. */
		readonly agent: Agent
	) {
		server.on('request', (req, res) => {
			const chunks: Buffer[] = [];
			req.on('data', (c: Buffer) => chunks.push(c));
			req.on('end', () => {
				const path = req.url ?? '';
				this.requests.push({ path, headers: req.headers, body: Buffer.concat(chunks) });
				const status = this.statuses.get(path)?.shift() ?? 201;
				res.writeHead(status).end();
				for (const wake of this.#waiters.splice(0)) wake();
			});
		});
	}

	static async start(): Promise<TestPushService> {
		const dir = await tempDir('kith-push-service-');
		const key = join(dir, 'key.pem');
		const cert = join(dir, 'cert.pem');
		execFileSync(
			'/usr/bin/openssl',
			[
				'req',
				'-x509',
				'-newkey',
				'ec',
				'-pkeyopt',
				'ec_paramgen_curve:prime256v1',
				'-nodes',
				'-subj',
				'/CN=127.0.0.1',
				'-addext',
				'subjectAltName=IP:127.0.0.1',
				'-days',
				'1',
				'-keyout',
				key,
				'-out',
				cert
			],
			{ stdio: 'ignore' }
		);
		const pem = { key: readFileSync(key), cert: readFileSync(cert) };
		const server = createServer(pem);
		await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
		const { port } = server.address() as AddressInfo;
		return new TestPushService(
			server,
			`https://127.0.0.1:${port}`,
			new Agent({ ca: pem.cert, keepAlive: false })
		);
	}

	/** A browser's subscription whose endpoint is `path` on this service. */
	subscriber(path: string): Subscriber {
		const ecdh: ECDH = createECDH('prime256v1');
		ecdh.generateKeys();
		const auth = randomBytes(16);
		return {
			json: {
				endpoint: `${this.origin}${path}`,
				expirationTime: null,
				keys: {
					p256dh: ecdh.getPublicKey().toString('base64url'),
					auth: auth.toString('base64url')
				}
			},
			open: (body) => decrypt(body, { version: 'aes128gcm', privateKey: ecdh, authSecret: auth })
		};
	}

	to(path: string): PushRequest[] {
		return this.requests.filter((r) => r.path === path);
	}

	/** Waits until `count` requests reached `path`. */
	async received(path: string, count = 1, timeoutMs = 10_000): Promise<PushRequest[]> {
		const deadline = Date.now() + timeoutMs;
		while (this.to(path).length < count) {
			const left = deadline - Date.now();
			if (left <= 0) throw new Error(`${path}: ${this.to(path).length} of ${count} requests`);
			await new Promise<void>((resolve) => {
				const timer = setTimeout(resolve, Math.min(left, 100));
				this.#waiters.push(() => {
					clearTimeout(timer);
					resolve();
				});
			});
		}
		return this.to(path);
	}

	close(): Promise<void> {
		this.agent.destroy();
		this.server.closeAllConnections();
		return new Promise((resolve) => this.server.close(() => resolve()));
	}
}

export interface VapidClaims {
	aud: string;
	exp: number;
	sub: string;
}

/**
 * Checks `Authorization: vapid t=<JWT>, k=<key>` (RFC 8292): `k` is
 * `publicKey`, the JWT is ES256 over it; returns the claims.
 */
export function checkVapid(headers: IncomingHttpHeaders, publicKey: string): VapidClaims {
	const m = /^vapid t=([\w-]+\.[\w-]+\.[\w-]+), k=([\w-]+)$/.exec(headers.authorization ?? '');
	if (!m) throw new Error(`not a VAPID authorization: ${headers.authorization}`);
	const [, jwt, k] = m as unknown as [string, string, string];
	if (k !== publicKey) throw new Error('k is not the relay VAPID key');
	const [h, p, s] = jwt.split('.') as [string, string, string];
	const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { alg: string };
	if (header.alg !== 'ES256') throw new Error(`alg ${header.alg}`);
	const point = Buffer.from(k, 'base64url');
	const key = createPublicKey({
		format: 'jwk',
		key: {
			kty: 'EC',
			crv: 'P-256',
			x: point.subarray(1, 33).toString('base64url'),
			y: point.subarray(33, 65).toString('base64url')
		}
	});
	const ok = verify(
		'sha256',
		Buffer.from(`${h}.${p}`),
		{ key, dsaEncoding: 'ieee-p1363' },
		Buffer.from(s, 'base64url')
	);
	if (!ok) throw new Error('the VAPID signature does not verify');
	return JSON.parse(Buffer.from(p, 'base64url').toString()) as VapidClaims;
}
