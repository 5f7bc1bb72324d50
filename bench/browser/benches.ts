/**
 * The benchmarks, run inside Chromium against real IndexedDB. Each function
 * is called by bench/run.ts through `window.kithBench`; state that must
 * outlive a call (the growing conversation) lives in this module, state that
 * must outlive a page (keys, the stored docs) lives in IndexedDB.
 */
import { mount, tick } from 'svelte';
import * as Y from 'yjs';
import { IndexeddbPersistence } from 'y-indexeddb';
import { DocSession, storageName } from '$lib/app/doc-session';
import {
	loadSnapshot,
	saveSnapshot,
	snapshotAad,
	snapshotKey,
	type StoredSnapshot
} from '$lib/app/snapshot';
import {
	ConversationReducer,
	encodeBatch,
	ENVELOPE_MAP,
	makeSend,
	ReducerSnapshot,
	type ReducerItem
} from '$lib/conversation';
import {
	aeadDecrypt,
	newRoomId,
	newSecretKey,
	toBase64Url,
	utf8Decode,
	utf8Encode
} from '$lib/crypto';
import { clientIdFor, openEnvelope, sealEnvelope } from '$lib/envelope';
import { DEFAULT_COMPACT_THRESHOLD, DocPersistence } from '$lib/storage';
import ConversationView from '$lib/ui/ConversationView.svelte';
import type {
	AppendPrepared,
	AppendRep,
	BaselineOpen,
	BaselinePrepared,
	BenchApi,
	ColdOpenResult,
	ScrollResult,
	ScrollRun,
	CompactionCycle,
	ColdOpenSplits,
	EnvelopeRates,
	GrowResult,
	NoSnapshotOpenResult,
	RateResult,
	SnapshotResult
} from './api';
import { BIG_CONVERSATION } from './api';
import { median } from '../lib/stats';
import {
	findConversation,
	newConversation,
	openConversation,
	openProfile,
	type ConversationRecord,
	type OpenConversation,
	type Profile
} from './profile';
import { messageText, messageTexts } from './texts';

const BASELINE_KEY = 'bench/baseline-update';
/** Key and associated data of a stored snapshot, as src/lib/app/snapshot.ts writes them (for the split timings only). */

const now = (): number => performance.now();

/** Wait for a frame to be produced: rAF runs before paint, the timeout after it. */
const nextFrame = (): Promise<void> =>
	new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));

/**
 * Scrolls `el` up by `stepPx` at every animation frame for `frames` frames
 * (back to the bottom when it reaches the top, for a static list) and
 * records the time between frames.
 */
async function scrollUp(
	el: HTMLElement,
	frames: number,
	stepPx: number,
	reached: () => number
): Promise<ScrollRun> {
	el.scrollTop = el.scrollHeight;
	await new Promise((resolve) => requestAnimationFrame(resolve));
	const frameMs: number[] = [];
	let last = await new Promise<number>((resolve) => requestAnimationFrame(resolve));
	for (let i = 0; i < frames; i++) {
		if (el.scrollTop <= 0) el.scrollTop = el.scrollHeight;
		else el.scrollTop -= stepPx;
		el.dispatchEvent(new Event('scroll'));
		const t = await new Promise<number>((resolve) => requestAnimationFrame(resolve));
		frameMs.push(t - last);
		last = t;
	}
	return { frameMs, rows: el.querySelectorAll('article').length, reached: reached() };
}

/** Index in `messages` of the first message the log renders. */
function firstRendered(log: HTMLElement, messages: readonly { key: string }[]): number {
	const key = log.querySelector<HTMLElement>('article[data-key]')?.dataset.key;
	return key === undefined ? -1 : messages.findIndex((m) => m.key === key);
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let profilePromise: Promise<Profile> | null = null;
const profile = (): Promise<Profile> => (profilePromise ??= openProfile());

/** Conversations this page grows and appends to, by label (BIG_CONVERSATION is cold-opened later). */
const conversations = new Map<string, OpenConversation>();

async function conversation(label: string): Promise<OpenConversation> {
	const held = conversations.get(label);
	if (held) return held;
	const p = await profile();
	const conv = openConversation(p, await newConversation(p, label));
	conversations.set(label, conv);
	await conv.doc.loaded;
	return conv;
}

/**
 * The core path's docs, by the label of the conversation they match in size:
 * a DocSession (doc + DocPersistence) with no ConversationSession on top, so
 * nothing decrypts, reduces or maps what it inserts.
 */
const coreDocs = new Map<string, { doc: DocSession; record: ConversationRecord }>();

async function coreDoc(label: string): Promise<{ doc: DocSession; record: ConversationRecord }> {
	const held = coreDocs.get(label);
	if (held) return held;
	const p = await profile();
	const record = await newConversation(p, `core-${label}`);
	const doc = new DocSession({
		roomId: record.roomId,
		clientId: clientIdFor(p.keyring.deviceSigner.publicKey),
		tabs: p.tabs,
		onRefused: (reason) => console.warn(`bench: stored data refused: ${reason}`)
	});
	p.docs.set(record.roomId, doc);
	await doc.loaded;
	const core = { doc, record };
	coreDocs.set(label, core);
	return core;
}

/** A random id of an envelope's length (base64url of 16 bytes). */
const randomEnvelopeId = (): string => toBase64Url(crypto.getRandomValues(new Uint8Array(16)));

/** Author ids of the baseline: two people, as long as Kith's user ids. */
const BASELINE_AUTHORS = [
	toBase64Url(new Uint8Array(32).fill(1)),
	toBase64Url(new Uint8Array(32).fill(2))
];

/** A readwrite transaction on `store` completes only after every earlier one on it did. */
function afterEarlierWrites(db: IDBDatabase, store: string): Promise<void> {
	return new Promise((resolve, reject) => {
		const tx = db.transaction([store], 'readwrite');
		tx.objectStore(store).count();
		tx.oncomplete = () => resolve();
		tx.onerror = () => reject(tx.error);
	});
}

function openIdb(name: string): Promise<IDBDatabase> {
	return new Promise((resolve, reject) => {
		const request = indexedDB.open(name);
		request.onsuccess = () => resolve(request.result);
		request.onerror = () => reject(request.error);
	});
}

function strictPut(db: IDBDatabase, store: string, key: string, value: unknown): Promise<void> {
	return new Promise((resolve, reject) => {
		const tx = db.transaction([store], 'readwrite', { durability: 'strict' });
		tx.objectStore(store).put(value, key);
		tx.oncomplete = () => resolve();
		tx.onerror = () => reject(tx.error);
	});
}

/** Chromium's non-standard heap figure (0 elsewhere). */
function heapBytes(): number {
	const memory = (performance as { memory?: { usedJSHeapSize?: number } }).memory;
	return memory?.usedJSHeapSize ?? 0;
}

function deleteDatabase(name: string): Promise<void> {
	return new Promise((resolve) => {
		const request = indexedDB.deleteDatabase(name);
		request.onsuccess = request.onerror = request.onblocked = () => resolve();
	});
}

/** What a readwrite transaction gets when it asks for nothing (y-indexeddb asks for nothing). */
function defaultDurability(): Promise<string> {
	const name = 'bench-durability-probe';
	return new Promise<string>((resolve) => {
		const open = indexedDB.open(name);
		open.onupgradeneeded = () => open.result.createObjectStore('s');
		open.onsuccess = () => {
			const db = open.result;
			const durability = db.transaction(['s'], 'readwrite').durability;
			db.close();
			resolve(durability);
		};
		open.onerror = () => resolve('unknown');
	});
}

export const benches: BenchApi = {
	async appendGrow(label, to, chunk): Promise<GrowResult> {
		const conv = await conversation(label);
		const p = await profile();
		const { doc, session, record } = conv;
		let held = session.messages.length;
		const start = now();
		while (held < to) {
			const count = Math.min(chunk, to - held);
			// One operation per envelope, as single sends make them; sealed, inserted and
			// committed by DocSession, then read back (decrypted, reduced) by the session.
			const plaintexts = messageTexts(held, count).map((text) =>
				encodeBatch({ ops: [makeSend(p.clock, text)] })
			);
			const target = held + count;
			await doc.commit({ epoch: 0, key: record.key, plaintexts });
			await conv.until(() => session.messages.length >= target);
			held = target;
		}
		const ms = now() - start;
		// The core path's doc, grown the same way; nothing reads it back.
		const core = await coreDoc(label);
		const coreStart = now();
		for (let size = core.doc.doc.size; size < to;) {
			const count = Math.min(chunk, to - size);
			const plaintexts = messageTexts(size, count).map((text) =>
				encodeBatch({ ops: [makeSend(p.clock, text)] })
			);
			await core.doc.sealAndInsert(
				{ epoch: 0, key: core.record.key, plaintexts },
				p.keyring.deviceSigner,
				() => undefined
			);
			size += count;
		}
		return { messages: held, envelopes: doc.doc.size, ms, coreMs: now() - coreStart };
	},

	async appendPrepare(label): Promise<AppendPrepared> {
		const conv = await conversation(label);
		const p = await profile();
		const { doc, session, record } = conv;
		// Start from storage compacted in full: one record of the whole doc.
		await doc.persistence.compact({ full: true });
		await (await coreDoc(label)).doc.persistence.compact({ full: true });
		// The app keeps a read mark (from the vault); without one, unread counting scans everything.
		session.setReadMark(session.newestPosition());
		const seal: number[] = [];
		const plaintext = encodeBatch({ ops: [makeSend(p.clock, messageText(0))] });
		for (let i = 0; i < 15; i++) {
			const t = now();
			await sealEnvelope({
				clock: i,
				roomId: record.roomId,
				epoch: 0,
				key: record.key,
				signer: p.keyring.deviceSigner,
				plaintext
			});
			seal.push((now() - t) * 1000);
		}
		// A bare strict commit of a few bytes to this doc's database (its unused
		// `custom` store): does IndexedDB itself get slower as the doc grows?
		const db = await openIdb(storageName(record.roomId));
		const commit: number[] = [];
		for (let i = 0; i < 15; i++) {
			const t = now();
			await strictPut(db, 'custom', 'bench-probe', new Uint8Array(64));
			commit.push((now() - t) * 1000);
		}
		db.close();
		return {
			size: session.messages.length,
			envelopes: doc.doc.size,
			sealUs: median(seal),
			commitUs: median(commit),
			heapMB: heapBytes() / 1e6
		};
	},

	async appendRep(label, count): Promise<AppendRep> {
		const conv = await conversation(label);
		const { doc, session } = conv;
		const before = session.messages.length;
		const sendUs: number[] = [];
		const start = now();
		for (let i = 0; i < count; i++) {
			const t = now();
			await session.sendSaved(messageText(before + i));
			sendUs.push((now() - t) * 1000);
		}
		const repUs = ((now() - start) * 1000) / count;
		if (session.messages.length !== before + count || session.messages.at(-1)?.status !== 'Saved') {
			throw new Error(
				`append: expected ${before + count} saved messages, have ${session.messages.length}`
			);
		}
		// The core path — operation + envelope + DocSession + storage — on a doc
		// of the same size with no ConversationSession: build the op, seal it at
		// its clock, insert, commit.
		const p = await profile();
		const core = await coreDoc(label);
		const coreBefore = core.doc.doc.size;
		const coreStart = now();
		for (let i = 0; i < count; i++) {
			const plaintext = encodeBatch({ ops: [makeSend(p.clock, messageText(before + i))] });
			await core.doc.sealAndInsert(
				{ epoch: 0, key: core.record.key, plaintexts: [plaintext] },
				p.keyring.deviceSigner,
				() => undefined
			);
		}
		const coreUs = ((now() - coreStart) * 1000) / count;
		if (core.doc.doc.size !== coreBefore + count) {
			throw new Error(
				`core path: expected ${coreBefore + count} envelopes, have ${core.doc.doc.size}`
			);
		}
		// Compacted here (the app's incremental compaction), timed apart: a
		// compaction must not land in another size's repetition.
		const compactStart = now();
		await doc.persistence.compact();
		const compactMs = now() - compactStart;
		await core.doc.persistence.compact();
		return { sendUs, repUs, coreUs, compactMs, compactThreshold: DEFAULT_COMPACT_THRESHOLD };
	},

	async compactionCycle(label, messages): Promise<CompactionCycle> {
		const core = await coreDoc(label);
		const source = [...core.doc.doc.entries()].map((entry) => entry.bytes);
		const size = source.length;
		// The conversation doc's shape (gc off, one map of envelopes), real envelopes, new ids.
		const doc = new Y.Doc({ gc: false });
		const map = doc.getMap<Uint8Array>(ENVELOPE_MAP);
		doc.transact(() => {
			for (const bytes of source) map.set(randomEnvelopeId(), bytes);
		});
		const name = `bench-compaction-${newRoomId()}`;
		// Compacted by hand below, after each round. A round is stored as one
		// record (the app stores one per send): what a compaction does depends on
		// the bytes stored since the last one, not on how many records hold them.
		const persistence = new DocPersistence(name, doc, {
			compactThreshold: Number.MAX_SAFE_INTEGER
		});
		await persistence.whenLoaded;
		await persistence.flush();
		const fullStart = now();
		await persistence.compact({ full: true });
		const fullMs = now() - fullStart;
		const events: { bytes: number; full: boolean }[] = [];
		persistence.on('compacted', (event) => events.push(event));
		const times: number[] = [];
		let next = 0;
		for (let sent = 0; sent < messages;) {
			const round = Math.min(DEFAULT_COMPACT_THRESHOLD, messages - sent);
			// One doc update (transaction) per message, as single sends make them.
			for (let i = 0; i < round; i++)
				map.set(randomEnvelopeId(), source[next++ % size] as Uint8Array);
			await persistence.flush();
			sent += round;
			const start = now();
			await persistence.compact();
			times.push(now() - start);
		}
		const stats = await DocPersistence.storedStats(name);
		await persistence.clearData();
		doc.destroy();
		const totalMs = times.reduce((a, b) => a + b, 0);
		return {
			size,
			messages,
			compactions: times.length,
			full: events.filter((event) => event.full).length,
			totalMs,
			perMessageUs: (totalMs * 1000) / messages,
			maxMs: Math.max(...times),
			maxBytes: Math.max(...events.map((event) => event.bytes)),
			fullMs,
			records: stats.count,
			storedBytes: stats.bytes
		};
	},

	async snapshotSave(): Promise<SnapshotResult> {
		const conv = await conversation(BIG_CONVERSATION);
		const p = await profile();
		const { doc, session, record } = conv;
		while (!session.settled) await pause(10);
		const start = now();
		await saveSnapshot(
			p.store,
			p.keyring.localKey,
			record.roomId,
			doc.stateVector(),
			session.snapshotData()
		);
		const saveMs = now() - start;
		const stored = await p.store.get<StoredSnapshot>(snapshotKey(record.roomId));
		// One record of the whole doc, as before compaction had tiers: cold open
		// reads the same storage as in earlier runs.
		await doc.persistence.compact({ full: true });
		const stats = await DocPersistence.storedStats(storageName(record.roomId));
		return {
			messages: session.messages.length,
			envelopes: doc.doc.size,
			saveMs,
			ciphertextBytes: stored?.ciphertext.byteLength ?? 0,
			storedBytes: stats.bytes,
			storedRecords: stats.count
		};
	},

	async baselinePrepare(messages): Promise<BaselinePrepared> {
		const p = await profile();
		const doc = new Y.Doc();
		const map = doc.getMap<{ text: string; time: number; author: string }>('messages');
		const base = Date.UTC(2026, 10, 1);
		doc.transact(() => {
			for (let i = 0; i < messages; i++) {
				map.set(toBase64Url(utf8Encode(`msg-${i}`.padStart(16, '0'))), {
					text: messageText(i),
					time: base + i * 1000,
					author: BASELINE_AUTHORS[i % 2] as string
				});
			}
		});
		const update = Y.encodeStateAsUpdate(doc);
		doc.destroy();
		await p.store.put(BASELINE_KEY, update);
		return { messages, updateBytes: update.byteLength };
	},

	async baselineColdOpen(): Promise<BaselineOpen> {
		const p = await profile();
		const update = await p.store.get<Uint8Array>(BASELINE_KEY);
		if (!update) throw new Error('baseline update missing: run baselinePrepare first');
		const start = now();
		const doc = new Y.Doc();
		Y.applyUpdate(doc, update);
		const applyMs = now() - start;
		const messages = doc.getMap('messages').size;
		doc.destroy();
		return { messages, applyMs };
	},

	async kithColdOpen(render, waitForFullLoad): Promise<ColdOpenResult> {
		const unlockStart = now();
		const p = await profile();
		const unlockMs = now() - unlockStart;
		const record = await findConversation(p, BIG_CONVERSATION);

		const start = now();
		const snapshot = await loadSnapshot<unknown>(p.store, p.keyring.localKey, record.roomId);
		const loadSnapshotMs = now() - start;
		const conv = openConversation(p, record, {
			restored: snapshot?.data,
			trusted: snapshot?.stateVector ?? null
		});
		const firstScreen = conv.session.messages.slice(-80);
		const firstScreenMs = now() - start;
		if (snapshot && firstScreen.length === 0)
			throw new Error('cold open: no messages from the snapshot');

		let renderedMs: number | null = null;
		let renderedRows = 0;
		if (render) {
			const target = document.getElementById('app');
			if (!target) throw new Error('bench page has no #app');
			mount(ConversationView, { target, props: { conversation: conv.session } });
			await tick();
			await nextFrame();
			renderedMs = now() - start;
			renderedRows = target.querySelectorAll('article[data-key]').length;
		}
		let fullLoadMs: number | null = null;
		if (waitForFullLoad) {
			await conv.doc.loaded;
			fullLoadMs = now() - start;
		}
		return {
			messages: conv.session.messages.length,
			unlockMs,
			loadSnapshotMs,
			firstScreenMs,
			renderedMs,
			renderedRows,
			fullLoadMs,
			snapshotFound: snapshot !== null
		};
	},

	async kithScroll(frames, stepPx): Promise<ScrollResult> {
		const p = await profile();
		const record = await findConversation(p, BIG_CONVERSATION);
		const snapshot = await loadSnapshot<unknown>(p.store, p.keyring.localKey, record.roomId);
		const conv = openConversation(p, record, {
			restored: snapshot?.data,
			trusted: snapshot?.stateVector ?? null
		});
		await conv.doc.loaded;
		const target = document.getElementById('app');
		if (!target) throw new Error('bench page has no #app');
		target.style.height = '720px';
		target.style.display = 'flex';
		target.style.flexDirection = 'column';
		mount(ConversationView, { target, props: { conversation: conv.session } });
		await tick();
		for (let i = 0; i < 5; i++) await nextFrame();
		const log = target.querySelector<HTMLElement>('[role="log"]');
		if (!log) throw new Error('no message log rendered');
		// The baseline: the rows as first rendered, copied into a plain scroller.
		const copy = document.createElement('div');
		copy.style.cssText = `height:${log.clientHeight}px;overflow-y:auto;position:fixed;top:0;left:0;width:${log.clientWidth}px;visibility:hidden`;
		copy.innerHTML = log.innerHTML;
		const kith = await scrollUp(log, frames, stepPx, () =>
			firstRendered(log, conv.session.messages)
		);
		document.body.append(copy);
		copy.style.visibility = 'visible';
		const baseline = await scrollUp(copy, frames, stepPx, () => 0);
		copy.remove();
		return { messages: conv.session.messages.length, kith, baseline };
	},

	async kithColdOpenSplits(): Promise<ColdOpenSplits> {
		const p = await profile();
		const record = await findConversation(p, BIG_CONVERSATION);
		const t0 = now();
		const stored = await p.store.get<StoredSnapshot>(snapshotKey(record.roomId));
		if (!stored) throw new Error('no snapshot stored');
		const t1 = now();
		const plaintext = await aeadDecrypt(
			p.keyring.localKey,
			stored.nonce,
			stored.ciphertext,
			snapshotAad(record.roomId, stored.stateVector)
		);
		const t2 = now();
		const data: unknown = JSON.parse(utf8Decode(plaintext));
		const t3 = now();
		// The session stores { r: reducer snapshot, m: roster ops }; validate the reducer's part.
		const reducerData =
			typeof data === 'object' && data !== null && 'r' in data ? (data as { r: unknown }).r : data;
		const parsed = ReducerSnapshot.safeParse(reducerData);
		const t4 = now();
		if (!parsed.success) throw new Error('stored snapshot does not parse');
		const items: ReducerItem[] = parsed.data.items.map(([author, device, envelopeId, op]) => ({
			op,
			author,
			device,
			envelopeId
		}));
		const reducer = new ConversationReducer();
		reducer.add(items);
		const t5 = now();
		return {
			messages: reducer.state.messages.length,
			readMs: t1 - t0,
			decryptMs: t2 - t1,
			parseMs: t3 - t2,
			validateMs: t4 - t3,
			reduceMs: t5 - t4,
			snapshotBytes: stored.ciphertext.byteLength
		};
	},

	async kithColdOpenNoSnapshot(): Promise<NoSnapshotOpenResult> {
		const p = await profile();
		const record = await findConversation(p, BIG_CONVERSATION);
		const start = now();
		const conv = openConversation(p, record);
		await conv.doc.loaded;
		const loadedMs = now() - start;
		const envelopes = conv.doc.doc.size;
		// Every envelope of the generator holds one message.
		await conv.until(() => conv.session.messages.length >= envelopes);
		const viewMs = now() - start;
		return { messages: conv.session.messages.length, envelopes, loadedMs, viewMs };
	},

	async burstKith(count): Promise<RateResult> {
		const p = await profile();
		const record = await newConversation(p, `burst-${newRoomId()}`);
		const conv = openConversation(p, record);
		await conv.doc.loaded;
		const texts = messageTexts(0, count);
		const start = now();
		await conv.session.sendMany(texts);
		const ms = now() - start;
		const messages = conv.session.messages;
		if (messages.length !== count || messages.some((m) => m.status !== 'Saved')) {
			throw new Error(`burst: ${messages.length} of ${count} messages, not all saved`);
		}
		await conv.close();
		await deleteDatabase(storageName(record.roomId));
		return { count, ms, perSecond: (count * 1000) / ms, durability: 'strict' };
	},

	async burstYIndexeddb(count): Promise<RateResult> {
		const name = `bench-y-indexeddb-${newRoomId()}`;
		const doc = new Y.Doc();
		const persistence = new IndexeddbPersistence(name, doc);
		await persistence.whenSynced;
		const db = persistence.db;
		if (!db) throw new Error('y-indexeddb did not open its database');
		const map = doc.getMap('messages');
		const texts = messageTexts(0, count);
		const base = Date.now();
		const start = now();
		for (let i = 0; i < count; i++) {
			map.set(`m${i}`, { text: texts[i], time: base + i, author: BASELINE_AUTHORS[0] });
		}
		await afterEarlierWrites(db, 'updates');
		const ms = now() - start;
		await persistence.destroy();
		await deleteDatabase(name);
		return { count, ms, perSecond: (count * 1000) / ms, durability: await defaultDurability() };
	},

	async burstDocPersistence(count): Promise<RateResult> {
		const name = `bench-doc-persistence-${newRoomId()}`;
		const doc = new Y.Doc();
		const persistence = new DocPersistence(name, doc);
		await persistence.whenLoaded;
		const map = doc.getMap('messages');
		const texts = messageTexts(0, count);
		const base = Date.now();
		const start = now();
		for (let i = 0; i < count; i++) {
			map.set(`m${i}`, { text: texts[i], time: base + i, author: BASELINE_AUTHORS[0] });
		}
		await persistence.flush();
		const ms = now() - start;
		await persistence.clearData();
		return { count, ms, perSecond: (count * 1000) / ms, durability: 'strict' };
	},

	async envelopeRates(count): Promise<EnvelopeRates> {
		const p = await profile();
		const roomId = newRoomId();
		const key = newSecretKey();
		const signer = p.keyring.deviceSigner;
		const plaintexts = messageTexts(0, count).map((text) =>
			encodeBatch({ ops: [makeSend(p.clock, text)] })
		);
		const sealStart = now();
		const sealed = await Promise.all(
			plaintexts.map((plaintext, clock) =>
				sealEnvelope({ clock, roomId, epoch: 0, key, signer, plaintext })
			)
		);
		const sealMs = now() - sealStart;
		const openStart = now();
		// Not pre-verified: signature check, room check, AES-GCM, unpadding.
		await Promise.all(
			sealed.map(({ bytes }) => openEnvelope(bytes, { roomId, keyForEpoch: () => key }))
		);
		const openMs = now() - openStart;
		return {
			count,
			sealPerSecond: (count * 1000) / sealMs,
			openPerSecond: (count * 1000) / openMs
		};
	}
};
