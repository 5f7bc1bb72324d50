/**
 * Benchmarks: peer to peer (`/kith/sync/1.0.0`, src/lib/p2p) between Kith
 * peers built as the `kith` command builds them (src/lib/node/net.ts): a
 * libp2p node from `createKithNode` (TCP on 127.0.0.1, noise, yamux,
 * identify; mDNS off), `PeerSync` on it, and per conversation a `NodeDoc` in
 * a `NodeStore` (SQLite on disk, synchronous = FULL) with a `NodeConversation`
 * (roster gate, reducer) on top. Identities come from `createAccount`; the
 * conversation is shared by handing the receiving peers its entry (room id
 * and key), as an admission would: no invitation round is timed.
 *
 * - P1, message latency: peer A sends one message (`NodeConversation.send`:
 *   seal, insert, store), time until it is visible in peer B's reducer (the
 *   update crosses /kith/sync, passes B's doc rules — signature included —
 *   is stored, opened and reduced). Baseline: a one-way send of a payload
 *   the size of that Yjs update over a bare libp2p stream between the same
 *   two nodes (same connection), timed until B's stream handler has read all
 *   of it. Kith and baseline alternate, one message each; p50 and p95.
 * - P2, initial history sync: a new peer C (fresh node, store and doc)
 *   dials A, which holds a conversation of `history` messages (one envelope
 *   each); time from the connection being up until all of them are visible
 *   in C's reducer, and MB/s of envelope bytes. Baseline, on the same
 *   connection right after: A sends the conversation's whole Yjs update (the
 *   bytes that carry the envelopes) over a bare libp2p stream to C, timed
 *   from opening the stream until C has read the last byte. A new C per run.
 * - P3, a file's chunks between peers: A holds a file's encrypted chunks
 *   (256 KiB each, made by the app's `encryptFile`); B fetches every one
 *   with `PeerSync.fetchChunk` over the room's /kith/sync stream, four at a
 *   time as the app's downloads do, each checked against its id (SHA-256).
 *   Baseline: the same bytes over a bare libp2p stream on the same
 *   connection. No target in the issues: the figure says what the P2P path
 *   for files costs.
 *
 * Every peer runs in this one process, on one event loop: work the sender
 * does after sending (storing, reducing its own message) delays the
 * receiver, which separate processes would overlap.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Libp2p, Stream } from '@libp2p/interface';
import { messageText } from '../browser/texts';
import { fmt, ratio, type Row } from '../lib/report';
import { median, percentile } from '../lib/stats';
import { encodeBatch, HlcClock, makeSend, type Message } from '../../src/lib/conversation';
import { newRoomId, newSecretKey, type ConversationId, type SecretKey } from '../../src/lib/crypto';
import { clientIdFor } from '../../src/lib/envelope';
import { createAccount, type UnlockedKeyring } from '../../src/lib/identity';
import { NodeConversation } from '../../src/lib/node/conversation';
import { NodeDoc } from '../../src/lib/node/doc';
import { NodeStore } from '../../src/lib/node/store';
import { MemoryChunkStore } from '../../src/lib/media/chunk-store';
import { encryptFile, sourceFromBytes } from '../../src/lib/media/encrypt-file';
import type { ChunkId } from '../../src/lib/media/manifest';
import { createKithNode } from '../../src/lib/p2p/node';
import { PeerSync } from '../../src/lib/p2p/peer-sync';
import type { ConversationEntry } from '../../src/lib/vault';

export interface P2PConfig {
	/** Measured messages of P1 (each also sends one baseline payload). */
	messages: number;
	/** P1 messages sent first and not counted. */
	warmup: number;
	/** Messages in the conversation P2 syncs. */
	history: number;
	/** P2 runs, each with a new receiving peer. */
	syncReps: number;
	/** Envelopes sealed per commit while growing the history (as benchmark 1 grows its docs). */
	growChunk: number;
	/** P3: bytes of the file, and runs. */
	fileBytes: number;
	fileReps: number;
}

export function p2pConfig(quick: boolean): P2PConfig {
	return quick
		? {
				messages: 50,
				warmup: 10,
				history: 2_000,
				syncReps: 3,
				growChunk: 1_000,
				fileBytes: 16e6,
				fileReps: 3
			}
		: {
				messages: 200,
				warmup: 20,
				history: 10_000,
				syncReps: 5,
				growChunk: 1_000,
				fileBytes: 64e6,
				fileReps: 5
			};
}

/** The bare protocol of both baselines: bytes in, counted, nothing else. */
const RAW_PROTOCOL = '/kith-bench/raw/1.0.0';
/** Chunk size of the P2 baseline's writes (yamux splits frames at 256 KiB anyway). */
const RAW_CHUNK = 64 * 1024;
const MESSAGE_TIMEOUT_MS = 10_000;
const SYNC_TIMEOUT_MS = 180_000;
const STOP_TIMEOUT_MS = 5_000;

interface Peer {
	name: string;
	keyring: UnlockedKeyring;
	clock: HlcClock;
	store: NodeStore;
	node: Libp2p;
	sync: PeerSync;
	/** Media chunks this peer serves (P3). */
	chunks: MemoryChunkStore;
	docs: NodeDoc[];
	/** Bytes read by the bare protocol's handler, and who waits for a count. */
	raw: { total: number; waiting: { bytes: number; resolve: (at: number) => void } | null };
}

function timeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
	let timer: ReturnType<typeof setTimeout> | undefined;
	return Promise.race([
		promise,
		new Promise<never>((_, reject) => {
			timer = setTimeout(() => reject(new Error(`p2p bench: timed out waiting for ${what}`)), ms);
		})
	]).finally(() => clearTimeout(timer));
}

async function startPeer(dir: string, name: string): Promise<Peer> {
	const { keyring } = await createAccount();
	const store = new NodeStore(join(dir, `${name}.db`));
	const node = await createKithNode({ listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false });
	const chunks = new MemoryChunkStore();
	const sync = new PeerSync(node, { chunks });
	await sync.start();
	const peer: Peer = {
		name,
		keyring,
		clock: new HlcClock(),
		store,
		node,
		sync,
		chunks,
		docs: [],
		raw: { total: 0, waiting: null }
	};
	await node.handle(RAW_PROTOCOL, (stream: Stream) => {
		stream.addEventListener('message', (event) => {
			peer.raw.total += event.data.byteLength;
			const waiting = peer.raw.waiting;
			if (waiting && peer.raw.total >= waiting.bytes) {
				peer.raw.waiting = null;
				waiting.resolve(performance.now());
			}
		});
	});
	return peer;
}

/** Resolves with the time at which `peer` has read `bytes` more bare-protocol bytes. */
function rawArrival(peer: Peer, bytes: number): Promise<number> {
	const target = peer.raw.total + bytes;
	return new Promise((resolve) => (peer.raw.waiting = { bytes: target, resolve }));
}

async function send(stream: Stream, bytes: Uint8Array): Promise<void> {
	for (let at = 0; at < bytes.length; at += RAW_CHUNK) {
		if (!stream.send(bytes.subarray(at, at + RAW_CHUNK))) await stream.onDrain();
	}
}

async function stopPeer(peer: Peer): Promise<void> {
	const quietly = (work: Promise<unknown>) =>
		timeout(work, STOP_TIMEOUT_MS, `${peer.name} to stop`).catch(() => undefined);
	await quietly(peer.sync.stop());
	await quietly(Promise.resolve(peer.node.stop()));
	for (const doc of peer.docs) doc.destroy();
	peer.store.close();
}

function newEntry(creator: Peer, name: string): ConversationEntry {
	const roomId = newRoomId();
	return {
		id: roomId as string as ConversationId,
		name,
		kind: 'group',
		roomId,
		epoch: 0,
		keys: new Map([[0, newSecretKey()]]),
		createdAt: Date.now(),
		creator: creator.keyring.identity.userId
	};
}

function memberRecord(peer: Peer) {
	const { identity } = peer.keyring;
	return {
		user: identity.userId as string,
		devices: [identity.deviceId as string],
		name: peer.name,
		ssk: identity.sskCert,
		certs: [identity.deviceCert]
	};
}

/** Open a conversation on a peer as `NodeAccount` does, and sync it as `NodeNet` does. */
async function openConversation(
	peer: Peer,
	entry: ConversationEntry,
	onMessages?: (messages: Message[]) => void
): Promise<NodeConversation> {
	const doc = await NodeDoc.open(
		peer.store,
		entry.roomId,
		clientIdFor(peer.keyring.deviceSigner.publicKey)
	);
	peer.docs.push(doc);
	const conversation = new NodeConversation({
		entry: { ...entry, keys: new Map(entry.keys) },
		doc,
		signer: peer.keyring.deviceSigner,
		clock: peer.clock,
		myUserId: peer.keyring.identity.userId,
		...(onMessages ? { onMessages } : {})
	});
	await conversation.settled();
	if (entry.creator === peer.keyring.identity.userId) {
		await conversation.ensureGenesis(memberRecord(peer));
	}
	peer.sync.addRoom({ roomId: entry.roomId, cdoc: doc.cdoc, capabilityIkm: keyOf(entry) });
	return conversation;
}

function keyOf(entry: ConversationEntry): SecretKey {
	const key = entry.keys.get(entry.epoch);
	if (!key) throw new Error('no key');
	return key;
}

async function connect(from: Peer, to: Peer): Promise<void> {
	const address = to.node.getMultiaddrs()[0];
	if (!address) throw new Error(`${to.name} listens nowhere`);
	await from.node.dial(address);
}

// ---- P1: message latency ----------------------------------------------------------

export interface LatencySample {
	/** Send called → visible in the receiver's reducer. */
	kithMs: number;
	/** Send called → the sender's doc emitted the update (sealed, inserted, stored). */
	sealedMs: number;
	/** Send called → the receiver's doc took the entry (doc rules, signature, apply, store). */
	appliedMs: number;
	/** Bare stream, one way. */
	rawMs: number;
	/** Bytes of the Yjs update (and of the bare payload). */
	updateBytes: number;
}

/** Watches a conversation on the receiving side: when a text becomes visible, when entries arrive. */
interface Watch {
	waiting: { text: string; resolve: (at: number) => void } | null;
	appliedAt: number;
	onMessages(messages: Message[]): void;
}

function watch(): Watch {
	const w: Watch = {
		waiting: null,
		appliedAt: 0,
		onMessages(messages) {
			const now = performance.now();
			const waiting = w.waiting;
			if (waiting && messages.some((m) => m.text === waiting.text)) {
				w.waiting = null;
				waiting.resolve(now);
			}
		}
	};
	return w;
}

/**
 * Messages from `a` to `b` in `sender`'s conversation, each followed by a
 * bare one-way send of the same size over `raw` (a stream from a to b).
 */
async function latencyLoop(
	b: Peer,
	sender: NodeConversation,
	receiver: { conversation: NodeConversation; watch: Watch },
	raw: Stream,
	count: number,
	warmup: number,
	firstText: number
): Promise<LatencySample[]> {
	let sealedAt = 0;
	let lastUpdate = 0;
	const onUpdate = (update: Uint8Array): void => {
		sealedAt = performance.now();
		lastUpdate = update.length;
	};
	const { watch } = receiver;
	const applied = receiver.conversation.doc.onEntries((_, source) => {
		if (source === 'remote') watch.appliedAt = performance.now();
	});
	sender.doc.cdoc.doc.on('update', onUpdate);
	const samples: LatencySample[] = [];
	try {
		for (let i = 0; i < warmup + count; i++) {
			const text = messageText(firstText + i);
			const visible = new Promise<number>((resolve) => (watch.waiting = { text, resolve }));
			const t0 = performance.now();
			const sent = sender.send(text);
			const visibleAt = await timeout(visible, MESSAGE_TIMEOUT_MS, `message ${i} on ${b.name}`);
			await sent;
			await receiver.conversation.settled();
			const payload = new Uint8Array(lastUpdate || 1);
			const arrived = rawArrival(b, payload.length);
			const r0 = performance.now();
			await send(raw, payload);
			const rawAt = await timeout(arrived, MESSAGE_TIMEOUT_MS, `bare payload ${i} on ${b.name}`);
			if (i < warmup) continue;
			samples.push({
				kithMs: visibleAt - t0,
				sealedMs: sealedAt - t0,
				appliedMs: watch.appliedAt - t0,
				rawMs: rawAt - r0,
				updateBytes: lastUpdate
			});
		}
	} finally {
		sender.doc.cdoc.doc.off('update', onUpdate);
		applied();
	}
	return samples;
}

async function measureLatency(
	cfg: P2PConfig,
	a: Peer,
	b: Peer,
	log: (text: string) => void
): Promise<{ samples: LatencySample[]; entry: ConversationEntry }> {
	const entry = newEntry(a, 'latency');
	const sender = await openConversation(a, entry);
	await sender.addMember(memberRecord(b));
	const w = watch();
	const receiver = await openConversation(b, entry, w.onMessages);
	await connect(a, b);
	await timeout(
		(async () => {
			while (receiver.roster.members().length < 2 || a.sync.status(entry.roomId).peers.length === 0)
				await new Promise((resolve) => setTimeout(resolve, 10));
		})(),
		MESSAGE_TIMEOUT_MS,
		'the latency session and roster'
	);
	const raw = await a.node.dialProtocol(b.node.peerId, RAW_PROTOCOL);
	log(
		`p2p: ${cfg.warmup + cfg.messages} messages A → B (${cfg.warmup} warm-up), each followed by a bare send`
	);
	try {
		const samples = await latencyLoop(
			b,
			sender,
			{ conversation: receiver, watch: w },
			raw,
			cfg.messages,
			cfg.warmup,
			0
		);
		return { samples, entry };
	} finally {
		await raw.close().catch(() => undefined);
	}
}

// ---- P2: initial history sync -------------------------------------------------------

export interface SyncRun {
	/** Dial until the connection is up. */
	dialMs: number;
	/** Connection up → C's session of the room open (handshake done). */
	sessionMs: number;
	/** Connection up → every envelope in C's doc (doc rules passed, applied, stored). */
	docMs: number;
	/** Connection up → every message visible in C's reducer. */
	kithMs: number;
	/** Bare stream: open, send the whole update, C read the last byte. */
	rawMs: number;
}

async function measureSync(
	cfg: P2PConfig,
	dir: string,
	a: Peer,
	log: (text: string) => void
): Promise<{
	runs: SyncRun[];
	envelopeBytes: number;
	updateBytes: number;
	envelopes: number;
	growMs: number;
	storeAppendMs: number[];
	/** P1 again, A → the last new peer, in the synced conversation. */
	bigLatency: LatencySample[];
}> {
	const entry = newEntry(a, 'history');
	const source = await openConversation(a, entry);
	log(`p2p: growing a conversation to ${fmt(cfg.history)} messages on A`);
	const grown = performance.now();
	const key = keyOf(entry);
	for (let at = 0; at < cfg.history; at += cfg.growChunk) {
		const count = Math.min(cfg.growChunk, cfg.history - at);
		const plaintexts = Array.from({ length: count }, (_, i) =>
			encodeBatch({ ops: [makeSend(a.clock, messageText(at + i))] })
		);
		await source.doc.commit({ epoch: entry.epoch, key, plaintexts }, a.keyring.deviceSigner);
	}
	await source.settled();
	const growMs = performance.now() - grown;
	if (source.messages().length !== cfg.history) {
		throw new Error(`A holds ${source.messages().length} messages, not ${cfg.history}`);
	}
	const entries = source.doc.entries();
	const envelopeBytes = entries.reduce((sum, e) => sum + e.bytes.length, 0);
	const update = source.doc.cdoc.encodeState();

	const runs: SyncRun[] = [];
	let bigLatency: LatencySample[] = [];
	for (let rep = 0; rep < cfg.syncReps; rep++) {
		const c = await startPeer(dir, `c${rep}`);
		try {
			let visibleAt = 0;
			let docAt = 0;
			let sessionAt = 0;
			let seen = 0;
			let resolveVisible!: () => void;
			const visible = new Promise<void>((resolve) => (resolveVisible = resolve));
			const w = watch();
			const conversation = await openConversation(c, entry, (messages) => {
				seen += messages.length;
				if (seen >= cfg.history && !visibleAt) {
					visibleAt = performance.now();
					resolveVisible();
				}
				w.onMessages(messages);
			});
			const complete = conversation.doc.onEntries(() => {
				if (conversation.doc.cdoc.size < entries.length) return;
				docAt = performance.now();
				complete();
			});
			c.sync.on('session', () => {
				if (!sessionAt) sessionAt = performance.now();
			});
			const t0 = performance.now();
			await connect(c, a);
			const up = performance.now();
			await timeout(visible, SYNC_TIMEOUT_MS, `${fmt(cfg.history)} messages on the new peer`);
			const arrived = rawArrival(c, update.length);
			const r0 = performance.now();
			const stream = await a.node.dialProtocol(c.node.peerId, RAW_PROTOCOL);
			await send(stream, update);
			const rawAt = await timeout(arrived, SYNC_TIMEOUT_MS, 'the bare history bytes');
			await stream.close().catch(() => undefined);
			const run: SyncRun = {
				dialMs: up - t0,
				sessionMs: sessionAt - up,
				docMs: docAt - up,
				kithMs: visibleAt - up,
				rawMs: rawAt - r0
			};
			runs.push(run);
			log(
				`p2p: sync run ${rep + 1}/${cfg.syncReps}: ${fmt(run.kithMs)} ms (doc complete at ${fmt(run.docMs)} ms), bare ${fmt(run.rawMs, 1)} ms`
			);
			if (rep === cfg.syncReps - 1) {
				log(
					`p2p: ${cfg.warmup + cfg.messages} messages A → the new peer in the ${fmt(cfg.history)}-message conversation`
				);
				const raw = await a.node.dialProtocol(c.node.peerId, RAW_PROTOCOL);
				try {
					bigLatency = await latencyLoop(
						c,
						source,
						{ conversation, watch: w },
						raw,
						cfg.messages,
						cfg.warmup,
						cfg.history
					);
				} finally {
					await raw.close().catch(() => undefined);
				}
			}
		} finally {
			await stopPeer(c);
		}
		// Let A notice the closed connection before the next peer dials.
		await new Promise((resolve) => setTimeout(resolve, 200));
	}

	// What one synchronous SQLite append of an update this size costs here (fsync).
	const scratch = newRoomId();
	const one = update.subarray(0, Math.max(1, Math.round(update.length / entries.length)));
	const storeAppendMs: number[] = [];
	for (let i = 0; i < 50; i++) {
		const t = performance.now();
		a.store.appendUpdate(scratch, one);
		storeAppendMs.push(performance.now() - t);
	}
	return {
		runs,
		envelopeBytes,
		updateBytes: update.length,
		envelopes: entries.length,
		growMs,
		storeAppendMs,
		bigLatency
	};
}

// ---- P3: a file's chunks between peers -------------------------------------------------

export interface FileRun {
	/** Every chunk fetched and checked, four at a time. */
	kithMs: number;
	/** The same bytes over a bare stream. */
	rawMs: number;
}

async function measureFile(
	cfg: P2PConfig,
	a: Peer,
	b: Peer,
	roomId: ConversationEntry['roomId'],
	log: (text: string) => void
): Promise<{ runs: FileRun[]; bytes: number; chunks: number }> {
	const plain = new Uint8Array(cfg.fileBytes).map((_, i) => (i * 31 + (i >> 11)) & 0xff);
	const manifest = await encryptFile(
		sourceFromBytes(plain),
		{ name: 'bench.bin', type: 'application/octet-stream' },
		(_i, id, blob) => a.chunks.put(id, blob)
	);
	const bytes = manifest.chunks.reduce(
		(sum, id) => sum + (a.chunks.chunks.get(id)?.length ?? 0),
		0
	);
	const runs: FileRun[] = [];
	for (let rep = 0; rep < cfg.fileReps; rep++) {
		const t0 = performance.now();
		let next = 0;
		const worker = async () => {
			while (next < manifest.chunks.length) {
				const id = manifest.chunks[next++] as ChunkId;
				const blob = await b.sync.fetchChunk(roomId, id);
				if (!blob) throw new Error(`p2p bench: B could not fetch chunk ${id}`);
			}
		};
		await timeout(Promise.all(Array.from({ length: 4 }, worker)), SYNC_TIMEOUT_MS, 'the file on B');
		const kithMs = performance.now() - t0;
		const arrived = rawArrival(b, bytes);
		const r0 = performance.now();
		const stream = await a.node.dialProtocol(b.node.peerId, RAW_PROTOCOL);
		for (const id of manifest.chunks) await send(stream, a.chunks.chunks.get(id) as Uint8Array);
		const rawAt = await timeout(arrived, SYNC_TIMEOUT_MS, 'the bare file bytes');
		await stream.close().catch(() => undefined);
		runs.push({ kithMs, rawMs: rawAt - r0 });
		log(
			`p2p: file run ${rep + 1}/${cfg.fileReps}: ${fmt(kithMs)} ms for ${fmt(bytes / 1e6)} MB in ${manifest.chunks.length} chunks, bare ${fmt(rawAt - r0, 1)} ms`
		);
	}
	return { runs, bytes, chunks: manifest.chunks.length };
}

// ---- the section ----------------------------------------------------------------------

export interface P2PResults {
	latency: LatencySample[];
	sync: Awaited<ReturnType<typeof measureSync>>;
	file: Awaited<ReturnType<typeof measureFile>>;
}

export async function runP2P(
	cfg: P2PConfig,
	log: (text: string) => void
): Promise<{ rows: Row[]; results: P2PResults }> {
	const dir = mkdtempSync(join(tmpdir(), 'kith-bench-p2p-'));
	const peers: Peer[] = [];
	try {
		const a = await startPeer(dir, 'a');
		peers.push(a);
		const b = await startPeer(dir, 'b');
		peers.push(b);
		const latency = await measureLatency(cfg, a, b, log);
		log(`p2p: a ${fmt(cfg.fileBytes / 1e6)} MB file's chunks A → B, ${cfg.fileReps} runs`);
		const file = await measureFile(cfg, a, b, latency.entry.roomId, log);
		// B leaves; A stops serving the latency room, so the new peers see one room only.
		await stopPeer(peers.pop() as Peer);
		await a.sync.removeRoom(latency.entry.roomId);
		const sync = await measureSync(cfg, dir, a, log);
		return {
			rows: rows(cfg, latency.samples, sync, file),
			results: { latency: latency.samples, sync, file }
		};
	} finally {
		for (const peer of peers) await stopPeer(peer);
		rmSync(dir, { recursive: true, force: true });
	}
}

function rows(
	cfg: P2PConfig,
	samples: LatencySample[],
	sync: P2PResults['sync'],
	file: P2PResults['file']
): Row[] {
	const kith = samples.map((s) => s.kithMs);
	const raw = samples.map((s) => s.rawMs);
	const p50 = median(kith);
	const rawP50 = median(raw);
	const r1 = p50 / rawP50;
	const p95 = percentile(kith, 95);
	const rawP95 = percentile(raw, 95);
	const sealed = median(samples.map((s) => s.sealedMs));
	const applied = median(samples.map((s) => s.appliedMs));

	const MB = 1e6;
	const kithMs = median(sync.runs.map((r) => r.kithMs));
	const rawMs = median(sync.runs.map((r) => r.rawMs));
	const kithRate = sync.envelopeBytes / MB / (kithMs / 1000);
	const rawRate = sync.updateBytes / MB / (rawMs / 1000);
	const r2 = kithRate / rawRate;
	const n = `${fmt(cfg.history / 1000)}k`;
	const big = sync.bigLatency;
	const bigP50 = median(big.map((s) => s.kithMs));
	const bigRaw = median(big.map((s) => s.rawMs));
	const fileRate = file.bytes / MB / (median(file.runs.map((r) => r.kithMs)) / 1000);
	const fileRaw = file.bytes / MB / (median(file.runs.map((r) => r.rawMs)) / 1000);
	return [
		{
			name: 'P1 Message latency A → B, p50',
			value: `${fmt(p50, 2)} ms`,
			baseline: `${fmt(rawP50, 2)} ms`,
			ratio: ratio(r1),
			target: '≤ 1.30×',
			result: r1 <= 1.3 ? 'PASS' : 'MISS',
			note: `${samples.length} messages after ${cfg.warmup} warm-up; until visible in B's reducer; medians from send: sealed + stored on A ${fmt(sealed, 2)} ms, applied on B (rules, signature, store) ${fmt(applied, 2)} ms; baseline: one-way bare libp2p stream, ${fmt(median(samples.map((s) => s.updateBytes)))}-byte payload (the Yjs update), same connection`
		},
		{
			name: '  …p95',
			value: `${fmt(p95, 2)} ms`,
			baseline: `${fmt(rawP95, 2)} ms`,
			ratio: ratio(p95 / rawP95),
			note: `max ${fmt(Math.max(...kith), 2)} vs ${fmt(Math.max(...raw), 2)} ms`
		},
		{
			name: `  …in the ${n}-message conversation, p50`,
			value: `${fmt(bigP50, 2)} ms`,
			baseline: `${fmt(bigRaw, 2)} ms`,
			ratio: ratio(bigP50 / bigRaw),
			note: `${big.length} messages A → the last new peer after its sync; p95 ${fmt(
				percentile(
					big.map((s) => s.kithMs),
					95
				),
				2
			)} ms; sealed + stored on A ${fmt(median(big.map((s) => s.sealedMs)), 2)} ms, applied on the receiver ${fmt(median(big.map((s) => s.appliedMs)), 2)} ms`
		},
		{
			name: `P2 History sync ${n} messages to a new peer`,
			value: `${fmt(kithRate, 2)} MB/s`,
			baseline: `${fmt(rawRate, 1)} MB/s`,
			ratio: ratio(r2),
			target: '≥ 0.50×',
			result: r2 >= 0.5 ? 'PASS' : 'MISS',
			note: `median of ${sync.runs.length} new peers: ${fmt(kithMs)} ms from connection up to all visible (session open ${fmt(median(sync.runs.map((r) => r.sessionMs)))} ms, doc complete ${fmt(median(sync.runs.map((r) => r.docMs)))} ms; dial ${fmt(median(sync.runs.map((r) => r.dialMs)), 1)} ms before); ${fmt(sync.envelopeBytes / MB, 2)} MB in ${fmt(sync.envelopes)} envelopes; baseline: the ${fmt(sync.updateBytes / MB, 2)} MB Yjs update over a bare stream, ${fmt(rawMs, 1)} ms`
		},
		{
			name: `P3 A file's chunks A → B (${fmt(file.bytes / MB)} MB)`,
			value: `${fmt(fileRate, 1)} MB/s`,
			baseline: `${fmt(fileRaw, 1)} MB/s`,
			ratio: ratio(fileRate / fileRaw),
			note: `median of ${file.runs.length} runs: ${file.chunks} chunks fetched with PeerSync.fetchChunk over the room's /kith/sync stream, 4 at a time, each hash-checked; baseline: the same bytes over a bare stream, same connection`
		},
		{
			name: '  SQLite append (fsync), one update',
			value: `${fmt(median(sync.storeAppendMs), 2)} ms`,
			note: `NodeStore.appendUpdate of a ${fmt(sync.updateBytes / sync.envelopes)}-byte row, median of ${sync.storeAppendMs.length}: every peer stores each update it applies before it goes on`
		}
	];
}
