/**
 * The blob store's HTTP face (docs/protocol.md, "Media blobs"): encrypted
 * media chunks, by content address.
 *
 *   GET  /blobs/limits                 {maxFileBytes, maxChunkBytes}
 *   GET  /blobs/challenge?room=R       {nonce, expiresAt}
 *   POST /blobs/grant                  {room, cap, nonce, sig, size, keepSeconds?} → {token, expiresAt, bytes}
 *   PUT  /blobs/<id>                   Authorization: Bearer <token>; body = the chunk
 *   GET  /blobs/<id>                   the chunk (immutable)
 *   GET  /blobs/metrics                Prometheus counters (no ids)
 *
 * Reading needs no token: an id is the SHA-256 of ciphertext made under a
 * random per-file key, as unguessable as a key, and known only to holders of
 * the message that carries the manifest. Writing needs a grant, so only a
 * room member can spend the store's quota. A grant with `keepSeconds` uploads
 * chunks that are deleted that long after their upload (store.ts, `sweep`,
 * every BLOB_SWEEP_MS); without it they are kept for good.
 */
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { Config } from '../config.ts';
import { silentLogger, type Logger } from '../log.ts';
import type { KithServer } from '../server.ts';
import { loadBlobConfig, type BlobConfig } from './config.ts';
import { Grants, type GrantFailure } from './grants.ts';
import { BlobStore, isBlobId } from './store.ts';

export { BlobStore, blobIdOf, isBlobId, BLOB_DIR, BLOB_DATABASE_FILE } from './store.ts';
export { grantMessage, GRANT_TTL_MS } from './grants.ts';
export { BLOB_DEFAULTS, loadBlobConfig, type BlobConfig } from './config.ts';

/** Shortest and longest limited life an upload may ask for (`keepSeconds`). */
export const MIN_KEEP_SECONDS = 60;
export const MAX_KEEP_SECONDS = 7 * 24 * 60 * 60;
/** How often expired chunks are deleted. */
export const BLOB_SWEEP_MS = 60 * 1000;

/** Largest chunk body: a 1 MiB plaintext chunk plus its 29 bytes of framing and tag. */
export const MAX_CHUNK_BYTES = 1024 * 1024 + 29;
/** Allowance per byte of declared file: chunk framing at the smallest chunk size (1 KiB). */
function allowance(size: number): number {
	return size + (Math.ceil(size / 1024) + 1) * 29;
}

const ROOM_PATTERN = /^[A-Za-z0-9_-]{21}[AQgw]$/;

const MESSAGES: Record<GrantFailure | string, string> = {
	'bad-challenge': 'The challenge was not issued by this relay for this room.',
	'expired-challenge': 'The challenge expired; ask for a new one.',
	'replayed-challenge': 'The challenge was already used; ask for a new one.',
	unauthorized: 'The signature does not prove access to this room.',
	'unknown-room': 'This relay does not know the room yet; connect to it first.',
	'wrong-capability': 'The signature does not prove access to this room.',
	'file-too-large': 'The file is larger than this relay accepts.',
	'bad-request': 'The request is malformed.',
	'hash-mismatch': 'The chunk does not hash to its address.',
	'chunk-too-large': 'The chunk is larger than a chunk may be.',
	'no-grant': 'Uploading needs a valid grant (POST /blobs/grant).',
	'grant-used-up': 'The grant is used up: the file is larger than declared.',
	quota: 'The relay’s media storage is full.',
	'room-quota': 'This conversation’s media storage on the relay is full.',
	'not-found': 'No such chunk.'
};

export interface BlobOptions {
	logger?: Logger;
	/** The capability a room is registered with at the relay; reads relay.sqlite by default. */
	roomCap?: (room: string) => Uint8Array | undefined;
	/** Limits; read from the environment (config.ts here) by default. */
	limits?: BlobConfig;
	/** The clock chunks expire by (tests move it). */
	now?: () => number;
}

export interface Blobs {
	store: BlobStore;
	metrics: { stored: number; served: number; expired: number; refused: Map<string, number> };
	/** Delete the chunks whose time has passed now (also runs every BLOB_SWEEP_MS). */
	sweep(): Promise<number>;
}

export function attachBlobs(server: KithServer, config: Config, options: BlobOptions = {}): Blobs {
	const log = (options.logger ?? silentLogger).child({ component: 'blobs' });
	const limits = options.limits ?? loadBlobConfig();
	const store = new BlobStore(config.dataDir, limits);
	const grants = new Grants(config.dataDir);
	const roomCap = options.roomCap ?? relayRoomCaps(config.dataDir);
	const now = options.now ?? Date.now;
	const metrics = { stored: 0, served: 0, expired: 0, refused: new Map<string, number>() };
	let sweeping: Promise<number> | null = null;
	function sweep(): Promise<number> {
		sweeping ??= store
			.sweep(now())
			.then((n) => {
				metrics.expired += n;
				if (n > 0) log.info('expired chunks deleted', { chunks: n });
				return n;
			})
			.catch((error: unknown) => {
				log.error('deleting expired chunks failed', { error: String(error) });
				return 0;
			})
			.finally(() => (sweeping = null));
		return sweeping;
	}
	void sweep();
	const sweeper = setInterval(() => void sweep(), BLOB_SWEEP_MS);
	sweeper.unref();
	server.onClose(async () => {
		clearInterval(sweeper);
		await sweeping;
		store.close();
	});

	function refuse(res: ServerResponse, status: number, error: string): void {
		metrics.refused.set(error, (metrics.refused.get(error) ?? 0) + 1);
		json(res, status, { error, message: MESSAGES[error] ?? error });
	}

	server.addRoute({
		methods: ['GET'],
		path: '/blobs/limits',
		handler: (_req, res) =>
			json(res, 200, { maxFileBytes: limits.maxFileBytes, maxChunkBytes: MAX_CHUNK_BYTES })
	});

	server.addRoute({
		methods: ['GET'],
		path: '/blobs/challenge',
		handler: (_req, res, target) => {
			const room = new URLSearchParams(target.search).get('room');
			if (!room || !ROOM_PATTERN.test(room)) return refuse(res, 400, 'bad-request');
			json(res, 200, grants.challenges.issue(room));
		}
	});

	server.addRoute({
		methods: ['GET'],
		path: '/blobs/metrics',
		handler: (_req, res) => {
			const lines = [
				'# TYPE kith_blobs_stored_total counter',
				`kith_blobs_stored_total ${metrics.stored}`,
				'# TYPE kith_blobs_served_total counter',
				`kith_blobs_served_total ${metrics.served}`,
				'# TYPE kith_blobs_expired_total counter',
				`kith_blobs_expired_total ${metrics.expired}`,
				'# TYPE kith_blobs_bytes gauge',
				`kith_blobs_bytes ${store.totalBytes}`,
				'# TYPE kith_blobs_refusals_total counter',
				...[...metrics.refused].map(([r, n]) => `kith_blobs_refusals_total{reason="${r}"} ${n}`)
			];
			res.writeHead(200, {
				'Content-Type': 'text/plain; version=0.0.4',
				'Cache-Control': 'no-store'
			});
			res.end(lines.join('\n') + '\n');
		}
	});

	server.addRoute({
		methods: ['POST'],
		path: '/blobs/grant',
		handler: async (req, res) => {
			const body = await readBody(req, 4096);
			let request: {
				room: string;
				cap: string;
				nonce: string;
				sig: string;
				size: number;
				keepSeconds?: number;
			};
			try {
				request = JSON.parse(Buffer.from(body ?? []).toString('utf8'));
			} catch {
				return refuse(res, 400, 'bad-request');
			}
			const { room, cap, nonce, sig, size, keepSeconds } = request ?? {};
			if (
				typeof room !== 'string' ||
				!ROOM_PATTERN.test(room) ||
				typeof cap !== 'string' ||
				typeof nonce !== 'string' ||
				typeof sig !== 'string' ||
				!Number.isSafeInteger(size) ||
				size < 0 ||
				(keepSeconds !== undefined &&
					(!Number.isSafeInteger(keepSeconds) ||
						keepSeconds < MIN_KEEP_SECONDS ||
						keepSeconds > MAX_KEEP_SECONDS))
			) {
				return refuse(res, 400, 'bad-request');
			}
			// Refused before anything else: the client checks the same limit first.
			if (size > limits.maxFileBytes) return refuse(res, 413, 'file-too-large');
			const result = await grants.issue(
				request,
				roomCap(room),
				allowance(size),
				keepSeconds === undefined ? undefined : keepSeconds * 1000
			);
			if (!result.ok)
				return refuse(res, result.reason === 'unknown-room' ? 404 : 403, result.reason);
			json(res, 200, { token: result.token, expiresAt: result.expiresAt, bytes: allowance(size) });
		}
	});

	server.addRoute({
		methods: ['GET', 'PUT'],
		path: '/blobs/',
		prefix: true,
		handler: async (req, res, target) => {
			const id = target.pathname.slice('/blobs/'.length);
			if (!isBlobId(id)) return refuse(res, 404, 'not-found');
			if (req.method === 'PUT') return put(req, res, id);
			const bytes = await store.get(id);
			if (!bytes) return refuse(res, 404, 'not-found');
			metrics.served++;
			res.writeHead(200, {
				'Content-Type': 'application/octet-stream',
				'Content-Length': bytes.length,
				// Content-addressed: the bytes under an id never change.
				'Cache-Control': 'private, max-age=31536000, immutable'
			});
			res.end(req.method === 'HEAD' ? undefined : bytes);
		}
	});

	async function put(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
		const token = /^Bearer ([A-Za-z0-9_-]{43})$/.exec(req.headers.authorization ?? '')?.[1];
		const grant = token ? grants.get(token) : undefined;
		if (!grant) return refuse(res, 401, 'no-grant');
		const body = await readBody(req, MAX_CHUNK_BYTES);
		if (body === undefined) return refuse(res, 413, 'chunk-too-large');
		const expires = grant.keepMs === undefined ? undefined : now() + grant.keepMs;
		if (store.has(id)) {
			// Already held (a retry, or the same chunk from another upload): nothing is
			// charged; an upload for good makes it kept for good (store.ts, `keep`).
			store.keep(id, expires);
			return json(res, 200, { id, stored: false });
		}
		if (body.length > grant.bytes) return refuse(res, 403, 'grant-used-up');
		const result = await store.put(id, body, grant.room, expires);
		if (result === 'hash-mismatch') return refuse(res, 400, 'hash-mismatch');
		if (result === 'quota' || result === 'room-quota') {
			log.warn('blob store full', { reason: result });
			return refuse(res, 507, result);
		}
		if (result === 'stored') {
			grant.bytes -= body.length;
			metrics.stored++;
		}
		json(res, result === 'stored' ? 201 : 200, { id, stored: result === 'stored' });
	}

	return { store, metrics, sweep };
}

/** The room capabilities the relay registered, read from its database (read-only, opened on first use). */
export function relayRoomCaps(dataDir: string): (room: string) => Uint8Array | undefined {
	let statement: Database.Statement<[string], { cap: Buffer }> | undefined;
	return (room) => {
		if (!statement) {
			const path = join(dataDir, 'relay.sqlite');
			if (!existsSync(path)) return undefined;
			const db = new Database(path, { readonly: true, fileMustExist: true });
			statement = db.prepare('SELECT cap FROM rooms WHERE id = ?');
		}
		const row = statement.get(room);
		return row ? new Uint8Array(row.cap) : undefined;
	};
}

function json(res: ServerResponse, status: number, body: unknown): void {
	const text = JSON.stringify(body);
	res.writeHead(status, {
		'Content-Type': 'application/json; charset=utf-8',
		'Content-Length': Buffer.byteLength(text),
		'Cache-Control': 'no-store'
	});
	res.end(text);
}

/** The request body, or undefined when it is over `limit` bytes (the rest is drained). */
async function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array | undefined> {
	const declared = Number(req.headers['content-length'] ?? NaN);
	if (declared > limit) {
		req.resume();
		return undefined;
	}
	const parts: Buffer[] = [];
	let total = 0;
	for await (const part of req as AsyncIterable<Buffer>) {
		total += part.length;
		if (total > limit) {
			req.resume();
			return undefined;
		}
		parts.push(part);
	}
	return new Uint8Array(Buffer.concat(parts));
}
