/**
 * The devices benchmark's code inside a page of the relay's origin (bundled
 * by bench/devices/devices.ts and evaluated in a `/healthz` document, which
 * runs no app of its own):
 *
 * - `seed`: the first device's history, made through the app's own
 *   composition root (`createApp`: the KithApp the UI drives, with its
 *   IndexedDB storage and relay connections), minus the UI. Each
 *   conversation gets its messages one `send` at a time, each awaited until
 *   accepted, as the composer sends them (one envelope per message), until
 *   every one is "Sent" (the relay stored it).
 * - `copyRooms`: the baseline of benchmark D1. The same rooms' bytes from
 *   the same relay over the same WebSocket protocol (admission with the
 *   room's capability, sync step 1, the relay's step 2), applied to empty
 *   Yjs docs: no decryption, no doc rules, no storage, no app.
 */
import * as Y from 'yjs';
import { createApp } from '../../src/lib/app/create-app';
import { fromBase64Url, toBase64Url, type RoomId } from '../../src/lib/crypto';
import { challengeMessage, deriveRoomCapability } from '../../src/lib/sync/capability';
import { readRelayMessage, writeSyncStep1 } from '../../src/lib/sync/messages';
import { messageText } from '../browser/texts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface SeedOptions {
	displayName: string;
	/** Conversation names, in order. */
	names: string[];
	/** Messages per conversation. */
	messages: number;
	/** The word in each conversation's first and last message (and in no other). */
	marker: string;
}

export interface SeedResult {
	/** Sending every message (each accepted, i.e. sealed and shown as "Saving"). */
	sendMs: number;
	/** Until every message is "Sent". */
	sentMs: number;
	messages: number;
}

/** The text of message `i` of conversation `c` (0-based): markers first and last. */
export function seedText(options: SeedOptions, c: number, i: number): string {
	const name = options.names[c] ?? `#${c}`;
	if (i === 0) return `${options.marker} first of ${name}`;
	if (i === options.messages - 1) return `${options.marker} last of ${name}`;
	return messageText(c * 1_000_000 + i);
}

export async function seed(options: SeedOptions): Promise<SeedResult> {
	const app = createApp();
	await app.start();
	if (app.phase !== 'onboarding') throw new Error(`seed: the profile is not new (${app.phase})`);
	await app.createAccount(options.displayName, '');
	app.acknowledgeRecoveryKey();
	const ids: string[] = [];
	for (const name of options.names) ids.push(await app.createConversation(name));
	// A new conversation's session opens just after `createConversation` returns.
	for (let waited = 0; !ids.every((id) => app.conversation(id)); waited += 10) {
		if (waited > 30_000) throw new Error('seed: the new conversations did not open');
		await sleep(10);
	}
	const sessions = ids.map(
		(id) => app.conversation(id) as NonNullable<ReturnType<typeof app.conversation>>
	);
	const t0 = performance.now();
	// Conversations side by side; within each, one message at a time.
	await Promise.all(
		sessions.map(async (session, c) => {
			for (let i = 0; i < options.messages; i++) await session.send(seedText(options, c, i));
		})
	);
	const sendMs = performance.now() - t0;
	const sent = new Set(['Sent', 'Delivered', 'Read']);
	for (let waited = 0; ; waited += 100) {
		const done = sessions.every((session) => {
			const own = session.messages.filter((m) => m.status !== null);
			return own.length >= options.messages && own.every((m) => sent.has(m.status as string));
		});
		if (done) break;
		if (waited > 300_000) throw new Error('seed: the messages were not all "Sent" within 5 min');
		await sleep(100);
	}
	const sentMs = performance.now() - t0;
	// The app writes each conversation's view snapshot 2 s after its last change.
	await sleep(3000);
	return { sendMs, sentMs, messages: options.names.length * options.messages };
}

// ---- the baseline: bytes over the relay protocol into empty Yjs docs ----------------

export interface CopyRoom {
	roomId: string;
	/** The room's capability key material (base64url): the epoch key, or the account key (vault). */
	ikm: string;
}

export interface CopyResult {
	/** Start → every room's doc holds what the relay's step 1 said it holds. */
	ms: number;
	/** Bytes of the sync updates received (step 2 and any live update), all rooms. */
	updateBytes: number;
	/** Per room: admitted (relay's step 1) and complete, ms from the start; update bytes. */
	rooms: { roomId: string; admittedMs: number; doneMs: number; bytes: number }[];
}

/** Every (client, clock) of `want` is covered by `have`. */
function covers(have: Map<number, number>, want: Map<number, number>): boolean {
	for (const [client, clock] of want) if ((have.get(client) ?? 0) < clock) return false;
	return true;
}

async function copyRoom(origin: string, room: CopyRoom, t0: number) {
	const roomId = room.roomId as RoomId;
	const capability = await deriveRoomCapability(fromBase64Url(room.ikm), roomId);
	const challenge = new URL('/sync/challenge', origin);
	challenge.searchParams.set('room', roomId);
	const { nonce } = (await (await fetch(challenge)).json()) as { nonce: string };
	const signature = await capability.sign(challengeMessage(roomId, nonce));
	const url = new URL(`/sync/${roomId}`, origin);
	url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
	url.searchParams.set('cap', toBase64Url(capability.publicKey));
	url.searchParams.set('nonce', nonce);
	url.searchParams.set('sig', toBase64Url(signature));
	url.searchParams.set('ack', '1');
	const doc = new Y.Doc();
	const ws = new WebSocket(url);
	ws.binaryType = 'arraybuffer';
	let relayState: Map<number, number> | null = null;
	let bytes = 0;
	let admittedMs = 0;
	try {
		await new Promise<void>((resolve, reject) => {
			const timer = setTimeout(() => reject(new Error(`copy: room ${roomId} timed out`)), 120_000);
			const finish = () => {
				clearTimeout(timer);
				resolve();
			};
			ws.addEventListener('open', () => ws.send(writeSyncStep1(Y.encodeStateVector(doc))));
			ws.addEventListener('message', (event: MessageEvent) => {
				const message = readRelayMessage(new Uint8Array(event.data as ArrayBuffer));
				if (message.type === 'sync-step1') {
					relayState = message.state;
					admittedMs = performance.now() - t0;
				} else if (message.type === 'sync-step2' || message.type === 'sync-update') {
					bytes += message.update.length;
					Y.applyUpdate(doc, message.update);
				} else if (message.type === 'permission-denied') {
					reject(new Error(`copy: room ${roomId} refused: ${message.reason}`));
					return;
				} else return;
				if (relayState && covers(Y.decodeStateVector(Y.encodeStateVector(doc)), relayState))
					finish();
			});
			ws.addEventListener('close', () => reject(new Error(`copy: room ${roomId} closed`)));
		});
	} finally {
		ws.close();
		doc.destroy();
	}
	return { roomId, admittedMs, doneMs: performance.now() - t0, bytes };
}

/** Copies every room at once (as the app opens its rooms), timed from the call. */
export async function copyRooms(origin: string, rooms: CopyRoom[]): Promise<CopyResult> {
	const t0 = performance.now();
	const done = await Promise.all(rooms.map((room) => copyRoom(origin, room, t0)));
	return {
		ms: performance.now() - t0,
		updateBytes: done.reduce((sum, r) => sum + r.bytes, 0),
		rooms: done
	};
}
