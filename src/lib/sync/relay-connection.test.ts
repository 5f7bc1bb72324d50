/**
 * RelayConnection against a scripted stand-in relay on loopback (real HTTP,
 * real WebSockets): what a correct relay never does — forged updates, bad
 * frames, odd denials — and the client's own timing (backoff, timeouts,
 * network events). The real relay is in relay.test.ts.
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import {
	ENVELOPE_MAP,
	updateSince,
	type ConversationDoc,
	type EnvelopeEntry
} from '../conversation';
import {
	fromBase64Url,
	newRoomId,
	newSecretKey,
	toBase64Url,
	utf8Encode,
	verifySignature,
	type RoomId,
	type SecretKey
} from '../crypto';
import { envelopeId, sealEnvelope } from '../envelope';
import { challengeMessage, deriveRoomCapability } from './capability';
import {
	readAwarenessUpdate,
	writePermissionDenied,
	writeRefused,
	writeStateVector,
	writeStored,
	writeSyncStep1,
	writeSyncStep2,
	writeSyncUpdate
} from './messages';
import { RelayConnection, type RelayConnectionOptions } from './relay-connection';
import {
	captureLogger,
	docFor,
	ids,
	newDevice,
	sleep,
	startFakeRelay,
	until,
	WebSocketImpl,
	write,
	type Device,
	type FakeRelay,
	type FakeSocket
} from './test-support';

const EMPTY_STATE = writeStateVector(new Map());

let relay: FakeRelay;
let room: RoomId;
let key: SecretKey;
let me: Device;
let other: Device;
const open: RelayConnection[] = [];
const docs: ConversationDoc[] = [];

beforeEach(async () => {
	relay = await startFakeRelay();
	room = newRoomId();
	key = newSecretKey();
	me = await newDevice();
	other = await newDevice();
});

afterEach(async () => {
	for (const connection of open.splice(0)) connection.destroy();
	for (const cdoc of docs.splice(0)) cdoc.destroy();
	await relay.close();
});

function connect(overrides: Partial<RelayConnectionOptions> = {}) {
	const cdoc = docFor(room, me);
	docs.push(cdoc);
	const logger = captureLogger();
	const applied: Uint8Array[] = [];
	const connection = new RelayConnection({
		relayUrl: relay.url,
		roomId: room,
		cdoc,
		capabilityIkm: key,
		WebSocketImpl,
		logger,
		networkEvents: null,
		backoff: { initialMs: 20, maxMs: 200 },
		onRemoteApplied: (update) => void applied.push(update),
		...overrides
	});
	open.push(connection);
	return { connection, cdoc, logger, applied };
}

/** Admit every connection with an empty relay state. */
function admitAll(): void {
	relay.onConnection = (socket) => socket.send(writeSyncStep1(EMPTY_STATE));
}

function nthSocket(n: number): FakeSocket {
	const socket = relay.sockets[n];
	if (!socket) throw new Error(`no socket ${n}`);
	return socket;
}

/** An update from another device's replica, holding `texts` as valid entries. */
async function validUpdate(
	...texts: string[]
): Promise<{ update: Uint8Array; entries: EnvelopeEntry[] }> {
	const theirs = docFor(room, other);
	docs.push(theirs);
	const entries = await write(theirs, other, key, ...texts);
	return { update: updateSince(theirs, EMPTY_STATE), entries };
}

/** The update (or state vector) inside a sync frame the client sent. */
function syncPayload(frame: Uint8Array | undefined): Uint8Array {
	if (!frame) throw new Error('no such frame');
	const decoder = decoding.createDecoder(frame);
	expect(decoding.readVarUint(decoder)).toBe(0);
	decoding.readVarUint(decoder);
	return decoding.readVarUint8Array(decoder);
}

/** The envelope ids an update holds. */
async function entryIds(update: Uint8Array): Promise<string[]> {
	const doc = rawDoc(1);
	Y.applyUpdate(doc, update);
	return [...doc.getMap(ENVELOPE_MAP).keys()];
}

/** The awareness update inside an awareness frame the client sent. */
function awarenessPayload(frame: Uint8Array | undefined): Uint8Array {
	if (!frame) throw new Error('no such frame');
	const decoder = decoding.createDecoder(frame);
	expect(decoding.readVarUint(decoder)).toBe(1);
	return decoding.readVarUint8Array(decoder);
}

function rawDoc(client: number): Y.Doc {
	const doc = new Y.Doc({ gc: false });
	doc.clientID = client;
	return doc;
}

async function sealedByOther(clock = 0) {
	return sealEnvelope({
		clock,
		roomId: room,
		epoch: 0,
		key,
		signer: other.signer,
		plaintext: utf8Encode('forged?')
	});
}

const forgeries: Array<[string, () => Promise<Uint8Array>]> = [
	[
		'key-mismatch',
		async () => {
			const doc = rawDoc(other.client);
			doc.getMap(ENVELOPE_MAP).set('not-the-hash', (await sealedByOther()).bytes);
			return Y.encodeStateAsUpdate(doc);
		}
	],
	[
		'client-mismatch',
		async () => {
			const sealed = await sealedByOther();
			const doc = rawDoc(me.client); // another device's envelope under my client id
			doc.getMap(ENVELOPE_MAP).set(sealed.id, sealed.bytes);
			return Y.encodeStateAsUpdate(doc);
		}
	],
	[
		'delete-set',
		async () => {
			const sealed = await sealedByOther();
			const doc = rawDoc(other.client);
			doc.getMap(ENVELOPE_MAP).set(sealed.id, sealed.bytes);
			doc.getMap(ENVELOPE_MAP).delete(sealed.id);
			return Y.encodeStateAsUpdate(doc);
		}
	],
	[
		'bad-signature',
		async () => {
			const bytes = (await sealedByOther()).bytes.slice();
			bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
			const doc = rawDoc(other.client);
			doc.getMap(ENVELOPE_MAP).set(envelopeId(bytes), bytes);
			return Y.encodeStateAsUpdate(doc);
		}
	]
];

describe('RelayConnection (scripted relay)', () => {
	it('answers the challenge with the room capability and syncs both ways on admission', async () => {
		admitAll();
		const { connection, cdoc } = connect();
		const statuses: string[] = [];
		connection.on('status', ({ status }) => statuses.push(status));
		const [mine] = await write(cdoc, me, key, 'written before connecting');
		await until(() => connection.status === 'connected', 'admission');

		const socket = nthSocket(0);
		const params = socket.url.searchParams;
		const capability = await deriveRoomCapability(key, room);
		expect(socket.url.pathname).toBe(`/sync/${room}`);
		expect(params.get('cap')).toBe(toBase64Url(capability.publicKey));
		expect(params.get('nonce')).toBe(relay.nonces[0]);
		expect(params.get('ack')).toBe('1');
		const signed = challengeMessage(room, relay.nonces[0] ?? '');
		expect(
			await verifySignature(capability.publicKey, signed, fromBase64Url(params.get('sig') ?? ''))
		).toBe(true);

		// Its step1 first, then the step2 answering ours, carrying what it wrote offline.
		await until(() => socket.frames.length >= 2, 'step1 and step2');
		expect(socket.frames[0]?.slice(0, 2)).toEqual(new Uint8Array([0, 0]));
		expect(socket.frames[1]?.slice(0, 2)).toEqual(new Uint8Array([0, 1]));
		const relayDoc = rawDoc(1);
		Y.applyUpdate(relayDoc, syncPayload(socket.frames[1]));
		expect(relayDoc.getMap(ENVELOPE_MAP).has(mine!.id)).toBe(true);

		// The relay's step2 is applied and reported.
		const { update, entries } = await validUpdate('from the relay');
		let synced = false;
		connection.on('synced', () => (synced = true));
		socket.send(writeSyncStep2(update));
		await until(() => synced, 'synced');
		expect(cdoc.has(entries[0]!.id)).toBe(true);
		expect(statuses).toEqual(['connected']);

		// Local writes after admission go out as updates.
		await write(cdoc, me, key, 'live');
		await until(() => socket.frames.length >= 3, 'live update');
		expect(socket.frames[2]?.slice(0, 2)).toEqual(new Uint8Array([0, 2]));
	});

	it.each(forgeries)(
		'drops a forged update (%s), applies the next valid one',
		async (reason, forge) => {
			admitAll();
			const { connection, cdoc, logger, applied } = connect();
			const refusals: string[] = [];
			connection.on('remote-refused', (event) => refusals.push(event.reason));
			await until(() => connection.status === 'connected', 'admission');

			nthSocket(0).send(writeSyncUpdate(await forge()));
			await until(() => refusals.length === 1, 'the refusal');
			expect(refusals).toEqual([reason]);
			expect(cdoc.size).toBe(0);
			expect(applied).toEqual([]);
			expect(
				logger.lines.some((line) => line.level === 'warn' && line.fields?.['reason'] === reason)
			).toBe(true);

			const { update, entries } = await validUpdate('genuine');
			nthSocket(0).send(writeSyncUpdate(update));
			await until(() => cdoc.size === 1, 'the valid update');
			expect(ids(cdoc)).toEqual([entries[0]!.id]);
			expect(applied).toEqual([update]);
			expect(connection.status).toBe('connected');
		}
	);

	it('drops malformed frames without throwing and stays connected', async () => {
		admitAll();
		const { connection, cdoc, logger } = connect();
		await until(() => connection.status === 'connected', 'admission');
		const socket = nthSocket(0);
		const awareness = (json: string, client = other.client) => {
			const encoder = encoding.createEncoder();
			encoding.writeVarUint(encoder, 1);
			const inner = encoding.createEncoder();
			encoding.writeVarUint(inner, 1);
			encoding.writeVarUint(inner, client);
			encoding.writeVarUint(inner, 1);
			encoding.writeVarString(inner, json);
			encoding.writeVarUint8Array(encoder, encoding.toUint8Array(inner));
			return encoding.toUint8Array(encoder);
		};
		const bad: Array<Uint8Array | string> = [
			new Uint8Array(),
			new Uint8Array([77, 1, 2]),
			new Uint8Array([0, 9, 0]),
			new Uint8Array([0, 2, 50, 1, 2]),
			new Uint8Array([0, 2, 2, 0, 0, 7]),
			new Uint8Array([100, 3, 1, 2]),
			crypto.getRandomValues(new Uint8Array(512)),
			'a text frame',
			awareness('not json'),
			awareness('{"cursor":1}'),
			awareness('{"e":"AAAA"}', me.client), // speaks for this device
			writeSyncUpdate(new Uint8Array([1, 2, 3])) // decodes as a frame, not as an update
		];
		for (const frame of bad) socket.send(frame);
		const { update } = await validUpdate('after the noise');
		socket.send(writeSyncUpdate(update));
		await until(() => cdoc.size === 1, 'the valid update');
		expect(connection.status).toBe('connected');
		expect(connection.remoteStates().size).toBe(0);
		expect(relay.sockets).toHaveLength(1);
		const drops = logger.lines.filter((line) => line.level === 'warn');
		expect(drops.length).toBeGreaterThanOrEqual(bad.length);
		expect(logger.lines.filter((line) => line.level === 'error')).toEqual([]);
	});

	it('stops retrying after a final denial, with the refusal surfaced', async () => {
		const { update } = await validUpdate('secret');
		relay.onConnection = (socket) => {
			// Even if a broken relay sent data after denying, the client must not take it.
			socket.send(writePermissionDenied('wrong-capability'));
			socket.send(writeSyncStep2(update));
			socket.close(4403, 'wrong-capability');
		};
		const { connection, cdoc } = connect();
		await until(() => connection.lastRefusal !== null && connection.status === 'offline', 'denial');
		expect(connection.lastRefusal).toMatchObject({
			kind: 'denied',
			code: 'wrong-capability',
			final: true
		});
		await sleep(300); // several backoff periods
		expect(relay.sockets).toHaveLength(1);
		expect(connection.status).toBe('offline');
		expect(cdoc.size).toBe(0);

		// An explicit retry (say, the app has a new key) tries again.
		connection.reconnectNow();
		await until(() => relay.sockets.length === 2, 'a second attempt');
		await until(() => connection.status === 'offline', 'denied again');
		expect(cdoc.size).toBe(0);
	});

	it('treats a 4403 close without an auth message as a denial', async () => {
		relay.onConnection = (socket) => socket.close(4403, 'bad-room');
		const { connection } = connect();
		await until(() => connection.lastRefusal !== null, 'denial');
		expect(connection.lastRefusal).toMatchObject({ code: 'bad-room', final: true });
		await sleep(200);
		expect(relay.sockets).toHaveLength(1);
	});

	it('retries a denied challenge with a fresh nonce', async () => {
		relay.onConnection = (socket) => {
			if (relay.sockets.length === 1) {
				socket.send(writePermissionDenied('expired-challenge'));
				socket.close(4403, 'expired-challenge');
			} else {
				socket.send(writeSyncStep1(EMPTY_STATE));
			}
		};
		const { connection } = connect();
		await until(() => connection.status === 'connected', 'admission on the second attempt');
		expect(connection.lastRefusal).toMatchObject({ code: 'expired-challenge', final: false });
		expect(new Set(relay.nonces).size).toBe(2);
	});

	it('reconnects with backoff when the relay is unreachable or drops the socket', async () => {
		relay.challengeStatus = 503;
		admitAll();
		const { connection, cdoc } = connect();
		await sleep(150);
		expect(connection.status).not.toBe('connected');
		relay.challengeStatus = 200;
		await until(() => connection.status === 'connected', 'admission');

		nthSocket(0).close(1001, 'going away');
		await until(() => connection.status !== 'connected', 'the drop');
		await write(cdoc, me, key, 'written while disconnected');
		await until(() => connection.status === 'connected' && relay.sockets.length === 2, 'back');
		// What was written meanwhile goes out in the step2 answering the relay's step1.
		const socket = nthSocket(1);
		await until(() => socket.frames.length >= 2, 'step2');
		const relayDoc = rawDoc(1);
		Y.applyUpdate(relayDoc, syncPayload(socket.frames[1]));
		expect([...relayDoc.getMap(ENVELOPE_MAP).keys()]).toEqual(ids(cdoc));
	});

	it('gives up on an attempt the relay never admits', async () => {
		relay.onConnection = () => {}; // accepts the socket, says nothing
		const { connection } = connect({ handshakeTimeoutMs: 100 });
		await until(() => relay.sockets.length >= 2, 'a second attempt');
		expect(nthSocket(0).closed || connection.status !== 'connected').toBe(true);
	});

	it('keeps the largest acknowledged clock per client', async () => {
		admitAll();
		const { connection } = connect();
		const events: number[] = [];
		connection.on('stored', ({ relayState }) => events.push(relayState.get(7) ?? -1));
		await until(() => connection.status === 'connected', 'admission');
		nthSocket(0).send(writeStored(writeStateVector(new Map([[7, 5]]))));
		nthSocket(0).send(writeStored(writeStateVector(new Map([[7, 3]]))));
		nthSocket(0).send(writeStored(writeStateVector(new Map([[7, 9]]))));
		await until(() => events.length === 2, 'two acknowledgements that grew');
		expect(events).toEqual([5, 9]);
		expect(connection.relayState.get(7)).toBe(9);
	});

	it('sends again what the relay lacks after a rate-limited refusal', async () => {
		admitAll();
		const { connection, cdoc } = connect();
		await until(() => connection.status === 'connected', 'admission');
		const socket = nthSocket(0);
		await until(() => socket.frames.length >= 2, 'step1 and step2');
		const [entry] = await write(cdoc, me, key, 'too fast');
		await until(() => socket.frames.length >= 3, 'the live update');
		socket.send(writeRefused('rate-limited', 'slow down'));
		await until(() => socket.frames.length >= 4, 'the resend', 5000);
		expect(connection.lastRefusal).toMatchObject({ kind: 'refused', code: 'rate-limited' });
		const relayDoc = rawDoc(1);
		Y.applyUpdate(relayDoc, syncPayload(socket.frames[3]));
		expect(relayDoc.getMap(ENVELOPE_MAP).has(entry!.id)).toBe(true);
	});

	it('does not upload a peer’s updates one by one: after the grace period, only what the relay did not pass on', async () => {
		admitAll();
		const { connection, cdoc } = connect({ bridgeDelayMs: 1000 });
		await until(() => connection.status === 'connected', 'admission');
		const socket = nthSocket(0);
		await until(() => socket.frames.length >= 2, 'step1 and step2');
		// Another device writes 30 messages, one update each; they reach this doc
		// over a p2p session (a PeerOrigin).
		const peer = { peerOrigin: true as const };
		const theirs = docFor(room, other);
		docs.push(theirs);
		const updates: Uint8Array[] = [];
		for (let i = 0; i < 30; i++) {
			const before = Y.encodeStateVector(theirs.doc);
			await write(theirs, other, key, `burst ${i}`);
			updates.push(Y.encodeStateAsUpdate(theirs.doc, before));
		}
		for (const update of updates) expect((await cdoc.applyRemote(update, peer)).ok).toBe(true);
		// Their writer uploaded the first 20: the relay passes them on here.
		for (const update of updates.slice(0, 20)) socket.send(writeSyncUpdate(update));
		await sleep(200);
		expect(socket.frames.length).toBe(2); // nothing yet: not one frame per peer update
		await until(() => socket.frames.length === 3, 'the bridge round', 5000);
		// One update, with the 10 messages the relay never showed it holds.
		const relayDoc = rawDoc(1);
		Y.applyUpdate(relayDoc, syncPayload(socket.frames[2]));
		const sent = [...relayDoc.getMap(ENVELOPE_MAP).keys()].sort();
		const lacking = (await Promise.all(updates.slice(20).map((u) => entryIds(u)))).flat().sort();
		expect(sent).toEqual(lacking);
		await sleep(1500);
		expect(socket.frames.length).toBe(3);
		// A local write still goes out at once, alone.
		await write(cdoc, me, key, 'mine');
		await until(() => socket.frames.length === 4, 'the local update');
	});

	it('sends nothing for a peer’s updates the relay acknowledged or passed on', async () => {
		admitAll();
		const { connection, cdoc } = connect({ bridgeDelayMs: 500 });
		await until(() => connection.status === 'connected', 'admission');
		const socket = nthSocket(0);
		await until(() => socket.frames.length >= 2, 'step1 and step2');
		const peer = { peerOrigin: true as const };
		const { update } = await validUpdate('one', 'two', 'three');
		expect((await cdoc.applyRemote(update, peer)).ok).toBe(true);
		socket.send(writeStored(writeStateVector(new Map([[other.client, 3]]))));
		await sleep(1000);
		expect(socket.frames.length).toBe(2);
		// Passed on by the relay instead (no acknowledgement to this connection).
		const { update: more } = await validUpdate('four');
		const second = connect({ bridgeDelayMs: 500 });
		await until(() => second.connection.status === 'connected', 'admission');
		const socket2 = nthSocket(1);
		await until(() => socket2.frames.length >= 2, 'step1 and step2');
		expect((await second.cdoc.applyRemote(more, peer)).ok).toBe(true);
		socket2.send(writeSyncUpdate(more));
		await sleep(1000);
		expect(socket2.frames.length).toBe(2);
	});

	it('keeps live frames to its own pace: a burst past it goes out merged, every message included', async () => {
		admitAll();
		const { connection, cdoc } = connect();
		await until(() => connection.status === 'connected', 'admission');
		const socket = nthSocket(0);
		await until(() => socket.frames.length >= 2, 'step1 and step2');
		const count = 600;
		const base = cdoc.nextClock();
		const entries = await Promise.all(
			Array.from({ length: count }, (_, i) =>
				sealEnvelope({
					clock: base + i,
					roomId: room,
					epoch: 0,
					key,
					signer: me.signer,
					plaintext: utf8Encode(`burst ${i}`)
				})
			)
		);
		// Each message alone, with its notification, as fast as the app can: three
		// times the relay's default rate limit's burst in frames if sent one by one.
		const start = Date.now();
		for (const entry of entries) {
			cdoc.insertLocal([entry]);
			connection.notify(utf8Encode(`push ${entry.id}`));
		}
		await sleep(50);
		// No more than the pace allows: a burst of 100 live frames, then 50 a
		// second (far under the relay's 400 and 200 a second).
		const allowed = 100 + Math.ceil((Date.now() - start) / 20) + 1;
		expect(socket.frames.length - 2).toBeLessThanOrEqual(allowed);
		expect(socket.frames.length - 2).toBeLessThan(2 * count);
		const relayDoc = rawDoc(1);
		let updates = 0;
		const received = () => {
			for (const frame of socket.frames.splice(2)) {
				if (frame[0] !== 0 || frame[1] !== 2) continue;
				updates++;
				Y.applyUpdate(relayDoc, syncPayload(frame));
			}
			return relayDoc.getMap(ENVELOPE_MAP).size;
		};
		await until(() => received() === count, 'every message on the relay', 10_000);
		// Those past the pace went merged: fewer updates than messages.
		expect(updates).toBeLessThan(count);
	});

	it('carries encrypted awareness states as { e: base64url }, and says goodbye', async () => {
		admitAll();
		const { connection } = connect();
		const changes: number[][] = [];
		connection.on('awareness', (change) => changes.push([...change.states.keys()]));
		await until(() => connection.status === 'connected', 'admission');
		const socket = nthSocket(0);
		const before = socket.frames.length;
		connection.setLocalState(new Uint8Array([1, 2, 3]));
		await until(() => socket.frames.length > before, 'the awareness update');
		const frame = socket.frames.at(-1)!;
		expect(frame[0]).toBe(1);
		const [entry] = readAwarenessUpdate(awarenessPayload(frame));
		expect(entry).toMatchObject({ client: me.client, state: new Uint8Array([1, 2, 3]) });

		// A remote state arrives; the disconnect forgets it.
		const encoder = encoding.createEncoder();
		encoding.writeVarUint(encoder, 1);
		const inner = encoding.createEncoder();
		encoding.writeVarUint(inner, 1);
		encoding.writeVarUint(inner, other.client);
		encoding.writeVarUint(inner, 1);
		encoding.writeVarString(inner, JSON.stringify({ e: toBase64Url(new Uint8Array([9])) }));
		encoding.writeVarUint8Array(encoder, encoding.toUint8Array(inner));
		socket.send(encoding.toUint8Array(encoder));
		await until(() => connection.remoteStates().size === 1, 'the remote state');
		expect(connection.remoteStates().get(other.client)).toEqual(new Uint8Array([9]));
		expect(changes).toEqual([[other.client]]);

		const count = socket.frames.length;
		connection.destroy();
		await until(() => socket.closed, 'the close');
		// The last frame says this client left (state null).
		expect(socket.frames.length).toBe(count + 1);
		const [goodbye] = readAwarenessUpdate(awarenessPayload(socket.frames.at(-1)));
		expect(goodbye).toMatchObject({ client: me.client, state: null });
		expect(connection.status).toBe('offline');
	});

	it('pauses retries while the network is down and retries at once when it is back', async () => {
		const network = new EventTarget();
		relay.challengeStatus = 503;
		admitAll();
		const { connection } = connect({
			networkEvents: network,
			backoff: { initialMs: 60_000, maxMs: 60_000 }
		});
		await until(() => connection.status === 'offline', 'the first failure');
		network.dispatchEvent(new Event('offline'));
		relay.challengeStatus = 200;
		network.dispatchEvent(new Event('online'));
		await until(() => connection.status === 'connected', 'the nudge', 3000);
	});

	it('ignores a destroyed doc and a destroy during the handshake', async () => {
		admitAll();
		const { connection, cdoc } = connect();
		connection.destroy();
		await sleep(100);
		expect(connection.status).toBe('offline');
		expect(relay.sockets.every((socket) => socket.closed)).toBe(true);
		const second = connect().connection;
		await until(() => second.status === 'connected', 'admission');
		docs.at(-1)!.destroy(); // the doc going away closes its connection
		expect(second.status).toBe('offline');
		expect(cdoc.size).toBe(0);
	});
});
