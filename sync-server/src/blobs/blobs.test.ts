/**
 * The blob store over real HTTP: grants need the room's capability, chunks
 * are stored only under the hash of their bytes, limits refuse with their
 * codes, and what lands on disk is ciphertext only.
 */
import Database from 'better-sqlite3';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
	createSigner,
	randomBytes,
	toBase64Url,
	utf8Encode
} from '../../../src/lib/crypto/index.ts';
import { encryptFile, sourceFromBytes } from '../../../src/lib/media/index.ts';
import { DEFAULTS, type Config } from '../config.ts';
import { RelayStore } from '../relay/store.ts';
import { createServer, type KithServer } from '../server.ts';
import { removeTempDirs, tempDir } from '../test-helpers.ts';
import {
	attachBlobs,
	BLOB_DATABASE_FILE,
	BlobStore,
	blobIdOf,
	grantMessage,
	relayRoomCaps,
	type BlobConfig
} from './index.ts';
import { loadBlobConfig } from './config.ts';

const running: KithServer[] = [];
afterEach(async () => {
	await Promise.all(running.splice(0).map((s) => s.close()));
	await removeTempDirs();
});

const ROOM = toBase64Url(new Uint8Array(16).fill(3));

async function start(limits: Partial<BlobConfig> = {}, now?: () => number) {
	const dataDir = await tempDir('kith-blobs-');
	const config: Config = { ...DEFAULTS, port: 0, dataDir, staticDir: join(dataDir, 'none') };
	const server = createServer(config);
	running.push(server);
	const signer = await createSigner(randomBytes(32));
	const caps = new Map([[ROOM, signer.publicKey]]);
	const blobs = attachBlobs(server, config, {
		roomCap: (room) => caps.get(room),
		limits: { maxFileBytes: 2 * 1024 ** 3, quotaBytes: 1e12, roomQuotaBytes: 1e12, ...limits },
		...(now ? { now } : {})
	});
	const { url } = await server.listen();
	return { url, dataDir, signer, blobs };
}

async function grant(
	url: string,
	signer: { publicKey: Uint8Array; sign(m: Uint8Array): Promise<Uint8Array> },
	size: number,
	room = ROOM,
	extra: { keepSeconds?: unknown } = {}
) {
	const { nonce } = (await (await fetch(`${url}/blobs/challenge?room=${room}`)).json()) as {
		nonce: string;
	};
	const sig = await signer.sign(grantMessage(room, nonce, size));
	const body = {
		room,
		cap: toBase64Url(signer.publicKey),
		nonce,
		sig: toBase64Url(sig),
		size,
		...extra
	};
	const res = await fetch(`${url}/blobs/grant`, { method: 'POST', body: JSON.stringify(body) });
	return { res, json: (await res.json()) as { token?: string; error?: string }, body };
}

function put(url: string, id: string, bytes: Uint8Array, token?: string) {
	return fetch(`${url}/blobs/${id}`, {
		method: 'PUT',
		body: bytes as Uint8Array<ArrayBuffer>,
		headers: token ? { Authorization: `Bearer ${token}` } : {}
	});
}

describe('blob store', () => {
	it('stores a chunk under its hash for a room member, and serves it to anyone with the id', async () => {
		const { url, signer } = await start();
		const chunk = randomBytes(5000);
		const id = blobIdOf(chunk);
		const { res, json } = await grant(url, signer, chunk.length);
		expect(res.status).toBe(200);
		expect((await put(url, id, chunk)).status).toBe(401);
		expect((await put(url, id, chunk, json.token)).status).toBe(201);
		expect((await put(url, id, chunk, json.token)).status).toBe(200); // a retry: already held
		const got = await fetch(`${url}/blobs/${id}`);
		expect(got.status).toBe(200);
		expect(got.headers.get('cache-control')).toContain('immutable');
		expect(new Uint8Array(await got.arrayBuffer())).toEqual(chunk);
		expect((await fetch(`${url}/blobs/${blobIdOf(randomBytes(9))}`)).status).toBe(404);
		const metrics = await (await fetch(`${url}/blobs/metrics`)).text();
		expect(metrics).toContain('kith_blobs_served_total 1');
	});

	it('refuses bytes that do not hash to the address', async () => {
		const { url, signer } = await start();
		const chunk = randomBytes(100);
		const { json } = await grant(url, signer, 100);
		const res = await put(url, blobIdOf(randomBytes(100)), chunk, json.token);
		expect(res.status).toBe(400);
		expect(((await res.json()) as { error: string }).error).toBe('hash-mismatch');
	});

	it('grants only with the room capability, a fresh nonce, and a size within the limit', async () => {
		const { url, signer } = await start({ maxFileBytes: 1000 });
		const stranger = await createSigner(randomBytes(32));
		expect((await grant(url, stranger, 10)).json.error).toBe('wrong-capability');
		const other = toBase64Url(new Uint8Array(16).fill(9));
		expect((await grant(url, signer, 10, other)).json.error).toBe('unknown-room');
		const tooBig = await grant(url, signer, 1001);
		expect(tooBig.res.status).toBe(413);
		expect(tooBig.json.error).toBe('file-too-large');
		// A nonce is single use.
		const first = await grant(url, signer, 10);
		expect(first.res.status).toBe(200);
		const again = await fetch(`${url}/blobs/grant`, {
			method: 'POST',
			body: JSON.stringify(first.body)
		});
		expect(((await again.json()) as { error: string }).error).toBe('replayed-challenge');
		// The signature covers the size: a grant for 10 bytes is not one for 999.
		const tampered = { ...(await grant(url, signer, 10)).body };
		const { nonce } = (await (await fetch(`${url}/blobs/challenge?room=${ROOM}`)).json()) as {
			nonce: string;
		};
		const sig = await signer.sign(grantMessage(ROOM, nonce, 10));
		const res = await fetch(`${url}/blobs/grant`, {
			method: 'POST',
			body: JSON.stringify({ ...tampered, nonce, sig: toBase64Url(sig), size: 999 })
		});
		expect(((await res.json()) as { error: string }).error).toBe('unauthorized');
	});

	it('limits a grant to its declared size, and the store to its quotas', async () => {
		const { url, signer } = await start({ roomQuotaBytes: 3000 });
		const { json } = await grant(url, signer, 1000);
		const big = randomBytes(2500);
		expect((await put(url, blobIdOf(big), big, json.token)).status).toBe(403); // grant-used-up
		const g2 = await grant(url, signer, 5000);
		expect((await put(url, blobIdOf(big), big, g2.json.token)).status).toBe(201);
		const more = randomBytes(1000);
		const res = await put(url, blobIdOf(more), more, g2.json.token);
		expect(res.status).toBe(507);
		expect(((await res.json()) as { error: string }).error).toBe('room-quota');
	});

	it('deletes the chunks of a limited-life upload once their time has passed, and no others', async () => {
		let clock = Date.parse('2026-11-30T10:00:00Z');
		const { url, signer, blobs } = await start({}, () => clock);
		const get = (id: string) => fetch(`${url}/blobs/${id}`).then((r) => r.status);
		const metric = async (name: string) =>
			Number(
				new RegExp(`^${name} (\\d+)$`, 'm').exec(
					await (await fetch(`${url}/blobs/metrics`)).text()
				)?.[1]
			);
		const [brief, forGood, both] = [randomBytes(3000), randomBytes(2000), randomBytes(1000)];
		const ids = [brief, forGood, both].map(blobIdOf) as [string, string, string];
		const hour = await grant(url, signer, 10_000, ROOM, { keepSeconds: 3600 });
		expect(hour.res.status).toBe(200);
		expect((await put(url, ids[0], brief, hour.json.token)).status).toBe(201);
		expect((await put(url, ids[2], both, hour.json.token)).status).toBe(201);
		const always = await grant(url, signer, 10_000);
		expect((await put(url, ids[1], forGood, always.json.token)).status).toBe(201);
		// The same chunk uploaded again for good is kept for good.
		expect((await put(url, ids[2], both, always.json.token)).status).toBe(200);
		expect(await metric('kith_blobs_bytes')).toBe(6000);

		clock += 3599 * 1000;
		expect(await blobs.sweep()).toBe(0);
		expect(await get(ids[0])).toBe(200);

		clock += 2000;
		expect(await blobs.sweep()).toBe(1);
		expect(await get(ids[0])).toBe(404);
		expect(await get(ids[1])).toBe(200);
		expect(await get(ids[2])).toBe(200);
		expect(statSync(blobs.store.pathOf(ids[0]), { throwIfNoEntry: false })).toBeUndefined();
		expect(await metric('kith_blobs_bytes')).toBe(3000);
		expect(await metric('kith_blobs_expired_total')).toBe(1);
		// The quota it took is free again: the room can store it anew.
		const again = await grant(url, signer, 10_000);
		expect((await put(url, ids[0], brief, again.json.token)).status).toBe(201);
		expect(blobs.store.expiresAt(ids[0])).toBeUndefined();
	});

	it('remembers an expiry across a restart, and takes a schema-1 index as it is', async () => {
		const dataDir = await tempDir('kith-blobs-restart-');
		const limits = { quotaBytes: 1e12, roomQuotaBytes: 1e12 };
		// An index written before expiries existed (schema 1) opens and keeps its chunks.
		const old = new Database(join(dataDir, BLOB_DATABASE_FILE));
		old.exec(
			'CREATE TABLE blobs (id TEXT PRIMARY KEY, size INTEGER NOT NULL, room TEXT NOT NULL, created INTEGER NOT NULL); PRAGMA user_version = 1;'
		);
		old.close();
		const chunk = randomBytes(500);
		const kept = randomBytes(400);
		let store = new BlobStore(dataDir, limits);
		expect(await store.put(blobIdOf(kept), kept, ROOM)).toBe('stored');
		expect(await store.put(blobIdOf(chunk), chunk, ROOM, 5_000)).toBe('stored');
		store.close();
		store = new BlobStore(dataDir, limits);
		expect(store.totalBytes).toBe(900);
		expect(store.expiresAt(blobIdOf(chunk))).toBe(5_000);
		expect(await store.sweep(5_000)).toBe(1);
		expect(await store.get(blobIdOf(chunk))).toBeUndefined();
		expect(await store.get(blobIdOf(kept))).toEqual(kept);
		expect(store.totalBytes).toBe(400);
		store.close();
	});

	it('refuses a limited life outside a minute to a week', async () => {
		const { url, signer } = await start();
		for (const keepSeconds of [59, 7 * 86400 + 1, 1.5, '3600', null]) {
			const { res, json } = await grant(url, signer, 10, ROOM, { keepSeconds });
			expect(res.status, String(keepSeconds)).toBe(400);
			expect(json.error).toBe('bad-request');
		}
		expect((await grant(url, signer, 10, ROOM, { keepSeconds: 60 })).res.status).toBe(200);
	});

	it('holds ciphertext only: no marker plaintext on disk', async () => {
		const { url, signer, dataDir } = await start();
		const marker = `kith-media-marker-${toBase64Url(randomBytes(9))}`;
		const plain = utf8Encode(marker.repeat(20_000)); // ~600 KB: three chunks
		const { json } = await grant(url, signer, plain.length);
		const manifest = await encryptFile(
			sourceFromBytes(plain),
			{ name: `${marker}.txt`, type: 'text/plain' },
			async (_i, id, blob) => {
				expect((await put(url, id, blob, json.token)).status).toBe(201);
			}
		);
		expect(manifest.chunks).toHaveLength(3);
		const files: string[] = [];
		const walk = (dir: string) => {
			for (const name of readdirSync(dir)) {
				const path = join(dir, name);
				if (statSync(path).isDirectory()) walk(path);
				else files.push(path);
			}
		};
		walk(dataDir);
		let chunkFiles = 0;
		for (const file of files) {
			const bytes = readFileSync(file);
			expect(bytes.includes(Buffer.from(marker)), file).toBe(false);
			expect(bytes.includes(Buffer.from(manifest.key)), file).toBe(false);
			if (manifest.chunks.includes(file.split('/').pop() as never)) chunkFiles++;
		}
		expect(chunkFiles).toBe(3);
	});

	it('reads room capabilities from the relay database', async () => {
		const dataDir = await tempDir('kith-blobs-relay-');
		const relay = new RelayStore(dataDir);
		const cap = randomBytes(32);
		relay.claim(ROOM, cap, Date.now());
		const lookup = relayRoomCaps(dataDir);
		expect(lookup(ROOM)).toEqual(cap);
		expect(lookup(toBase64Url(new Uint8Array(16)))).toBeUndefined();
		relay.close();
	});

	it('reads its limits from the environment and names a bad one', () => {
		expect(loadBlobConfig({}).maxFileBytes).toBe(2 * 1024 ** 3);
		expect(loadBlobConfig({ KITH_BLOB_MAX_FILE_BYTES: '1000' }).maxFileBytes).toBe(1000);
		expect(() => loadBlobConfig({ KITH_BLOB_QUOTA_BYTES: 'lots' })).toThrow(
			/KITH_BLOB_QUOTA_BYTES/
		);
	});
});
