/**
 * Admission: the signed challenge and the room capability (docs/protocol.md,
 * "Access capability and the signed challenge"). A refused client gets one
 * auth frame naming the reason, then close 4403, and never any room data.
 */
import { createHmac, randomFillSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { toBase64Url } from '../../../src/lib/crypto/index.ts';
import { accessMessage, RELAY_SECRET_FILE } from './challenge.ts';
import {
	accessParams,
	cleanUp,
	Conversation,
	fetchChallenge,
	Member,
	metricsText,
	refusalCount,
	RelayClient,
	roomCapability,
	startRelay,
	type RunningRelay
} from './test-support.ts';

afterEach(cleanUp);

/** A nonce built from the spec's text, with the relay's own secret. */
function specNonce(dataDir: string, roomId: string, issuedAt: number): string {
	const secret = readFileSync(join(dataDir, RELAY_SECRET_FILE));
	const head = Buffer.alloc(24);
	head.writeBigUInt64BE(BigInt(issuedAt));
	randomFillSync(head, 8);
	const tag = createHmac('sha256', secret).update(roomId).update(head).digest().subarray(0, 16);
	return toBase64Url(Buffer.concat([head, tag]));
}

async function signed(roomId: string, nonce: string, conversation: Conversation) {
	const cap = await conversation.capability();
	return new URLSearchParams({
		cap: toBase64Url(cap.publicKey),
		nonce,
		sig: toBase64Url(await cap.sign(accessMessage(roomId, nonce))),
		ack: '1'
	});
}

async function expectDenied(client: RelayClient, reason: string): Promise<void> {
	const closed = await Promise.race([
		client.closed,
		new Promise<{ code: number }>((resolve) => setTimeout(() => resolve({ code: 0 }), 5000))
	]);
	expect({ code: closed.code, frames: client.kinds() }).toEqual({
		code: 4403,
		frames: [`permission-denied(${reason})`]
	});
}

/** A room claimed by a member who wrote one envelope into it. */
async function claimedRoom(relay: RunningRelay) {
	const conversation = new Conversation();
	const owner = await Member.create(conversation);
	const client = await RelayClient.join(relay.base, conversation, { doc: owner.doc });
	const { update } = await owner.write(['already here']);
	client.sendUpdate(update);
	await client.acked(owner.client, 1);
	return { conversation, owner, client };
}

describe('relay admission', () => {
	it('lets the first valid writer claim a new room, and admits others holding its capability', async () => {
		const relay = await startRelay();
		const { conversation, owner } = await claimedRoom(relay);
		// A second device of another member: same capability, derived from the epoch key.
		const other = await Member.create(conversation);
		const second = await RelayClient.join(relay.base, conversation, { doc: other.doc });
		await second.pull();
		expect(other.doc.get([...owner.doc.entries()][0]!.id)).toBeDefined();
		expect(second.frames[0]?.kind).toBe('sync-step1');
		// The capability is a function of the epoch key and room id only.
		const again = await roomCapability(conversation.epochKey, conversation.roomId);
		expect(again.publicKey).toEqual((await conversation.capability()).publicKey);
	});

	it('accepts a nonce built exactly as the protocol describes it', async () => {
		const relay = await startRelay();
		const conversation = new Conversation();
		const nonce = specNonce(relay.dataDir, conversation.roomId, Date.now());
		const params = await signed(conversation.roomId, nonce, conversation);
		const client = RelayClient.raw(relay.base, `/sync/${conversation.roomId}?${params}`);
		await client.next((f) => f.kind === 'sync-step1');
	});

	it('answers a challenge as JSON, and 400 for a bad room id', async () => {
		const relay = await startRelay();
		const conversation = new Conversation();
		const before = Date.now();
		const { nonce, expiresAt } = await fetchChallenge(relay.base, conversation.roomId);
		expect(nonce).toMatch(/^[A-Za-z0-9_-]{54}$/);
		expect(expiresAt).toBeGreaterThanOrEqual(before + 60_000);
		expect(expiresAt).toBeLessThanOrEqual(Date.now() + 60_000);
		for (const room of ['', 'short', conversation.roomId + 'x', 'a'.repeat(21) + '!']) {
			const res = await fetch(`${relay.base}/sync/challenge?room=${encodeURIComponent(room)}`);
			expect(res.status).toBe(400);
			expect(((await res.json()) as { error: string }).error).toBe('bad-room');
		}
	});

	it('tells any client its frame and room limits, as configured', async () => {
		const relay = await startRelay({ config: { maxFrameBytes: 4096, roomQuotaBytes: 65_536 } });
		const res = await fetch(`${relay.base}/sync/limits`);
		expect(res.status).toBe(200);
		expect(res.headers.get('access-control-allow-origin')).toBe('*');
		expect(res.headers.get('cache-control')).toBe('no-store');
		expect(await res.json()).toEqual({ maxFrameBytes: 4096, roomQuotaBytes: 65_536 });
	});

	it('refuses every bad credential with its named reason, 4403, and no room data', async () => {
		const relay = await startRelay();
		const { conversation } = await claimedRoom(relay);
		const room = conversation.roomId;
		const cap = await conversation.capability();
		const capText = toBase64Url(cap.publicKey);
		const deny = async (path: string, reason: string) =>
			expectDenied(RelayClient.raw(relay.base, path), reason);

		// No credentials, or some missing.
		await deny(`/sync/${room}`, 'unauthorized');
		const good = await signed(room, (await fetchChallenge(relay.base, room)).nonce, conversation);
		for (const drop of ['nonce', 'cap', 'sig']) {
			const params = new URLSearchParams(good);
			params.delete(drop);
			await deny(`/sync/${room}?${params}`, 'unauthorized');
		}

		// Invalid nonces: garbage, wrong length, tampered, or issued for another room.
		const { nonce } = await fetchChallenge(relay.base, room);
		const tampered = nonce.slice(0, 30) + (nonce[30] === 'A' ? 'B' : 'A') + nonce.slice(31);
		const otherRoom = new Conversation().roomId;
		const foreign = (await fetchChallenge(relay.base, otherRoom)).nonce;
		for (const bad of ['!!!', 'AAAA', toBase64Url(new Uint8Array(40)), tampered, foreign]) {
			await deny(`/sync/${room}?${await signed(room, bad, conversation)}`, 'bad-challenge');
		}

		// Expired: issued 61 s ago (authentic, built with the relay's secret).
		const old = specNonce(relay.dataDir, room, Date.now() - 61_000);
		await deny(`/sync/${room}?${await signed(room, old, conversation)}`, 'expired-challenge');

		// Wrong signatures: by another key, over another room, or not a signature at all.
		const fresh = (await fetchChallenge(relay.base, room)).nonce;
		const stranger = await roomCapability(new Uint8Array(32), room);
		const forged = new URLSearchParams({
			cap: capText,
			nonce: fresh,
			sig: toBase64Url(await stranger.sign(accessMessage(room, fresh)))
		});
		await deny(`/sync/${room}?${forged}`, 'unauthorized');
		const elsewhere = new URLSearchParams({
			cap: capText,
			nonce: fresh,
			sig: toBase64Url(await cap.sign(accessMessage(otherRoom, fresh)))
		});
		await deny(`/sync/${room}?${elsewhere}`, 'unauthorized');
		await deny(`/sync/${room}?cap=${capText}&nonce=${fresh}&sig=AAAA`, 'unauthorized');
		await deny(`/sync/${room}?cap=AAAA&nonce=${fresh}&sig=${good.get('sig')}`, 'unauthorized');

		// Replayed: the same valid credentials twice (the first use admits).
		const once = await signed(room, (await fetchChallenge(relay.base, room)).nonce, conversation);
		const first = RelayClient.raw(relay.base, `/sync/${room}?${once}`);
		await first.next((f) => f.kind === 'sync-step1');
		await deny(`/sync/${room}?${once}`, 'replayed-challenge');

		// A valid signature by a key that is not this room's capability.
		const intruder = new Conversation();
		const intruderCap = await roomCapability(intruder.epochKey, room);
		await deny(
			`/sync/${room}?${new URLSearchParams(await accessParams(relay.base, room, intruderCap))}`,
			'wrong-capability'
		);

		// Room ids that are not room ids (including the challenge path itself).
		await deny(`/sync/short?${good}`, 'bad-room');
		await deny(`/sync/challenge?${good}`, 'bad-room');
		await deny(`/sync/${room}/x?${good}`, 'bad-room');

		const metrics = await metricsText(relay.base);
		expect(refusalCount(metrics, 'unauthorized')).toBe(8);
		expect(refusalCount(metrics, 'bad-challenge')).toBe(5);
		expect(refusalCount(metrics, 'expired-challenge')).toBe(1);
		expect(refusalCount(metrics, 'replayed-challenge')).toBe(1);
		expect(refusalCount(metrics, 'wrong-capability')).toBe(1);
		expect(refusalCount(metrics, 'bad-room')).toBe(3);
		// Each refusal is logged with its reason and connection, never with the credentials.
		const denials = relay.logs.filter((l) => l.msg === 'access denied');
		expect(denials).toHaveLength(19);
		expect(denials.every((l) => typeof l.conn === 'string' && typeof l.reason === 'string')).toBe(
			true
		);
		expect(JSON.stringify(relay.logs)).not.toContain(fresh);
		expect(JSON.stringify(relay.logs)).not.toContain(capText);
	});

	it('does not honour a challenge issued before a restart (single use survives restarts)', async () => {
		const relay = await startRelay();
		const conversation = new Conversation();
		const params = new URLSearchParams(
			await accessParams(relay.base, conversation.roomId, await conversation.capability())
		);
		await relay.close();
		const restarted = await startRelay({ dataDir: relay.dataDir });
		await expectDenied(
			RelayClient.raw(restarted.base, `/sync/${conversation.roomId}?${params}`),
			'expired-challenge'
		);
		// A fresh one works, and it claims the room.
		await RelayClient.join(restarted.base, conversation);
	});
});
