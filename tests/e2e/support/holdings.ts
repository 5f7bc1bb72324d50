/**
 * What one account really holds, read from raw data with that account's real
 * keys — not through the app's UI, which only shows what the app chose to.
 * Used to show that a member removed from a group, holding every key it ever
 * had, cannot read anything written after the removal:
 *
 *   - `deviceSecrets`: the account's secrets, from the browser's own keyring
 *     record (IndexedDB `kith-local`, store `kv`, key `keyring`), unwrapped
 *     with the record's non-extractable wrap key (docs/protocol.md §6);
 *   - `relayRooms` / `roomEnvelopes`: every room the relay stores and every
 *     envelope in it, straight from its SQLite database;
 *   - `keysOf`: every conversation and every epoch key the account's vault
 *     lists (the vault read from the relay with the account key);
 *   - `openEverything`: every envelope on the relay that any of some keys opens;
 *   - `relayRefuses`: whether the relay admits a client that holds a key.
 *
 * Runs in the Playwright runner (Node); the envelope, doc, vault and
 * capability code is the app's own.
 */
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { ed25519 } from '@noble/curves/ed25519.js';
import Database from 'better-sqlite3';
import { WebSocket } from 'ws';
import * as Y from 'yjs';
import { DATABASE_FILE } from '../../../sync-server/src/relay/store';
import {
	applyTrustedUpdate,
	ConversationDoc,
	encodeBatch,
	type Operation
} from '../../../src/lib/conversation';
import { createSigner } from '../../../src/lib/crypto/sign';
import { aeadDecrypt } from '../../../src/lib/crypto';
import { snapshotAad } from '../../../src/lib/app/snapshot';
import { clientIdFor, openEnvelope, sealEnvelope } from '../../../src/lib/envelope';
import { RelayConnection } from '../../../src/lib/sync/relay-connection';
import {
	asSecretKey,
	fromBase64Url,
	toBase64Url,
	utf8Decode,
	type RoomId
} from '../../../src/lib/crypto';
import { challengeMessage, deriveRoomCapability } from '../../../src/lib/sync/capability';
import { readRelayMessage } from '../../../src/lib/sync/messages';
import {
	decodeVaultChanges,
	decodeVaultMove,
	Vault,
	vaultRoomId,
	type ConversationKind
} from '../../../src/lib/vault';

/** The keyring's secrets (docs/protocol.md §6, layer 1): base64url 32-byte values. */
export interface KeyringSecrets {
	v: 1;
	/** Master Ed25519 seed (absent on a linked device: then userIdOf cannot be used). */
	master: string;
	/** Self-signing key's Ed25519 seed. */
	ssk: string;
	/** This device's Ed25519 seed. */
	device: string;
	/** This device's X25519 secret. */
	dh: string;
	/** The account key: the vault's key (and its room's capability ikm). */
	account: string;
	/** The device-local key (view snapshots). */
	local: string;
}

/** Where the app keeps the wrapped keyring (src/lib/storage/local-store.ts, src/lib/app/kith.svelte.ts). */
const LOCAL_DB = 'kith-local';
const LOCAL_STORE = 'kv';
const KEYRING_KEY = 'keyring';
/** The device layer's associated data (src/lib/identity/keyring.ts, OUTER_AAD). */
const KEYRING_OUTER_AAD = 'kith/keyring/device\0';

/**
 * The secrets of the account signed in on `page`, read from its stored keyring
 * and unwrapped inside the page with the record's own wrap key. Only for
 * accounts without a passphrase (throws otherwise), and only once the account
 * exists (throws when the page's origin holds no keyring).
 */
export async function deviceSecrets(page: Page): Promise<KeyringSecrets> {
	const json = await page.evaluate(
		async ({ dbName, storeName, key, aad }) => {
			const db = await new Promise<IDBDatabase>((resolve, reject) => {
				const request = indexedDB.open(dbName);
				let creating = false;
				request.onupgradeneeded = () => {
					// Never leave an empty database behind: this origin has no keyring.
					creating = true;
					request.transaction?.abort();
				};
				request.onerror = (event) => {
					if (creating) event.preventDefault();
					reject(
						new Error(
							creating
								? `this origin has no "${dbName}" database: no account was created here`
								: `cannot open "${dbName}": ${String(request.error)}`
						)
					);
				};
				request.onsuccess = () => resolve(request.result);
			});
			let record: unknown;
			try {
				record = await new Promise<unknown>((resolve, reject) => {
					if (!db.objectStoreNames.contains(storeName)) {
						reject(new Error(`"${dbName}" has no "${storeName}" store`));
						return;
					}
					const request = db.transaction(storeName, 'readonly').objectStore(storeName).get(key);
					request.onsuccess = () => resolve(request.result);
					request.onerror = () => reject(new Error(`cannot read the keyring: ${request.error}`));
				});
			} finally {
				db.close();
			}
			if (typeof record !== 'object' || record === null) {
				throw new Error(`"${dbName}"/"${storeName}" holds no "${key}" record`);
			}
			const stored = record as {
				wrapKey?: unknown;
				passphrase?: unknown;
				nonce?: unknown;
				ciphertext?: unknown;
			};
			if (stored.passphrase !== null && stored.passphrase !== undefined) {
				throw new Error(
					'this keyring is protected by a passphrase; deviceSecrets reads only accounts without one'
				);
			}
			if (
				!(stored.wrapKey instanceof CryptoKey) ||
				!(stored.nonce instanceof Uint8Array) ||
				!(stored.ciphertext instanceof Uint8Array)
			) {
				throw new Error('the keyring record lacks its wrapKey, nonce or ciphertext');
			}
			const plaintext = await crypto.subtle.decrypt(
				{
					name: 'AES-GCM',
					iv: stored.nonce as Uint8Array<ArrayBuffer>,
					additionalData: new TextEncoder().encode(aad)
				},
				stored.wrapKey,
				stored.ciphertext as Uint8Array<ArrayBuffer>
			);
			return new TextDecoder().decode(plaintext);
		},
		{ dbName: LOCAL_DB, storeName: LOCAL_STORE, key: KEYRING_KEY, aad: KEYRING_OUTER_AAD }
	);
	const secrets = JSON.parse(json) as Partial<KeyringSecrets>;
	for (const field of ['master', 'ssk', 'device', 'dh', 'account', 'local'] as const) {
		const value = secrets[field];
		// A linked device holds no master key (protocol.md §8c).
		if (field === 'master' && value === undefined) continue;
		if (typeof value !== 'string' || fromBase64Url(value).length !== 32) {
			throw new Error(`the keyring's secrets have no 32-byte "${field}"`);
		}
	}
	if (secrets.v !== 1) throw new Error(`the keyring's secrets are version ${String(secrets.v)}`);
	return secrets as KeyringSecrets;
}

/**
 * Every room the relay stores (its `rooms` table, even one without updates)
 * → its stored Yjs updates, in storage order. `dataDir` is the relay's
 * KITH_DATA (for the e2e server: `process.env.KITH_E2E_DATA`). Opens the
 * database read-only, while the relay keeps running; one query, so one
 * consistent snapshot. The relay stores an update before it acknowledges it:
 * wait for a message's "Sent" before looking for it here.
 */
export function relayRooms(dataDir: string): Map<string, Uint8Array[]> {
	const db = new Database(join(dataDir, DATABASE_FILE), { readonly: true, fileMustExist: true });
	try {
		const rows = db
			.prepare<[], { id: string; bytes: Buffer | null }>(
				`SELECT rooms.id AS id, updates.bytes AS bytes
				 FROM rooms LEFT JOIN updates ON updates.room = rooms.id
				 ORDER BY rooms.id, updates.seq`
			)
			.all();
		const rooms = new Map<string, Uint8Array[]>();
		for (const { id, bytes } of rows) {
			let updates = rooms.get(id);
			if (!updates) rooms.set(id, (updates = []));
			if (bytes) updates.push(new Uint8Array(bytes));
		}
		return rooms;
	} finally {
		db.close();
	}
}

/**
 * Every envelope in a room's stored updates: the updates applied to a fresh
 * conversation doc, then the doc's entries. Items Yjs keeps pending (a gap in
 * a device's clocks on the relay) are not entries of the doc yet; their
 * envelopes are returned too, so nothing the relay holds is left out.
 */
export function roomEnvelopes(updates: Uint8Array[]): Uint8Array[] {
	// Nothing is inserted locally, so the doc's room id and client id do not matter.
	const cdoc = new ConversationDoc('AAAAAAAAAAAAAAAAAAAAAA' as RoomId, 0);
	try {
		for (const update of updates) applyTrustedUpdate(cdoc, update, 'relay');
		const envelopes = [...cdoc.entries()].map((entry) => entry.bytes);
		// Yjs keeps pending structs as one update in format v2.
		const pending = cdoc.doc.store.pendingStructs;
		if (pending) {
			for (const struct of Y.decodeUpdateV2(pending.update).structs) {
				if (struct instanceof Y.Item && struct.content instanceof Y.ContentBinary) {
					envelopes.push(struct.content.content);
				}
			}
		}
		return envelopes;
	} finally {
		cdoc.destroy();
	}
}

export interface HeldConversation {
	id: string;
	name: string;
	kind: ConversationKind;
	roomId: string;
	/** The current epoch, as the vault says. */
	epoch: number;
	/** Every epoch key the vault holds: epoch → key. */
	keys: Map<number, Uint8Array>;
	/**
	 * Every generation the vault lists: epoch → its room (the current one is
	 * `roomId`). A conversation never rotated has one, at `epoch`.
	 */
	rooms: Map<number, string>;
	/** Rooms of the current epoch it followed before another generation won, not yet forgotten. */
	abandoned: string[];
}

/**
 * Every conversation the account's vault lists, with all its epoch keys. The
 * vault is read from the relay (`rooms`, from relayRooms): its room
 * (vaultRoomId of the account key), its envelopes opened with the account key
 * (epoch 0), their Automerge changes applied to the app's own Vault. Throws
 * when the relay holds no vault for the account or a vault envelope does not
 * open.
 */
export async function keysOf(
	secrets: Pick<KeyringSecrets, 'account'>,
	rooms: Map<string, Uint8Array[]>
): Promise<{ displayName: string; conversations: HeldConversation[] }> {
	const accountKey = asSecretKey(fromBase64Url(secrets.account));
	const roomId = vaultRoomId(accountKey);
	const updates = rooms.get(roomId);
	if (!updates) throw new Error(`the relay holds no vault room (${roomId}) for this account`);
	const changes: Uint8Array[] = [];
	for (const bytes of roomEnvelopes(updates)) {
		const opened = await openEnvelope(bytes, {
			roomId,
			keyForEpoch: (epoch) => (epoch === 0 ? accountKey : undefined)
		});
		// A device removal's move (vault/move.ts) holds no vault changes.
		if (decodeVaultMove(opened.plaintext)) continue;
		changes.push(...decodeVaultChanges(opened.plaintext));
	}
	const vault = await Vault.open();
	vault.applyChanges(changes);
	if (!vault.isInitialised) throw new Error(`the vault in room ${roomId} is empty`);
	return {
		displayName: vault.displayName,
		conversations: vault.conversations().map((entry) => {
			// Read structurally: vaults without key rotation have no generations.
			const generations = (entry as { generations?: Map<number, { room: string }> }).generations;
			const rooms = new Map<number, string>(
				[...(generations ?? [])].map(([epoch, generation]) => [epoch, generation.room])
			);
			if (!rooms.has(entry.epoch)) rooms.set(entry.epoch, entry.roomId);
			return {
				id: entry.id,
				name: entry.name,
				kind: entry.kind,
				roomId: entry.roomId,
				epoch: entry.epoch,
				keys: new Map(entry.keys),
				rooms,
				abandoned: [...(entry.abandoned?.keys() ?? [])]
			};
		})
	};
}

/**
 * Try every envelope of every room with every key, for whatever epoch the
 * envelope names, and return the plaintexts (UTF-8) of those that opened:
 * everything in `rooms` that a holder of `keys` can read. Envelopes no key
 * opens (other rooms' keys, later epochs, newer versions) are skipped.
 */
export async function openEverything(
	rooms: Map<string, Uint8Array[]>,
	keys: Uint8Array[]
): Promise<string[]> {
	const secretKeys = keys.map((key) => asSecretKey(key));
	const plaintexts: string[] = [];
	for (const [roomId, updates] of rooms) {
		for (const bytes of roomEnvelopes(updates)) {
			for (const key of secretKeys) {
				const opened = await openEnvelope(bytes, {
					roomId: roomId as RoomId,
					keyForEpoch: () => key,
					// Whether a key decrypts does not depend on the signature (and the
					// relay checked every signature before storing).
					verified: true
				}).catch(() => null);
				if (opened) {
					plaintexts.push(utf8Decode(opened.plaintext));
					break;
				}
			}
		}
	}
	return plaintexts;
}

/**
 * Act as a client holding `key` (an epoch key, or the account key for the
 * vault room): derive the room's access capability from it, answer a fresh
 * challenge and open the room's sync socket. Resolves with the relay's
 * refusal reason (e.g. 'wrong-capability'), or null when the relay admitted
 * the connection (which is then closed). Rejects after 10 s without an
 * answer, or when the relay closes without one.
 *
 * Careful: a room the relay does not hold yet is claimed by the first valid
 * capability, so this registers `key` for a room that does not exist.
 */
export async function relayRefuses(
	baseURL: string,
	roomId: string,
	key: Uint8Array
): Promise<string | null> {
	const deadline = AbortSignal.timeout(10_000);
	const capability = await deriveRoomCapability(asSecretKey(key.slice()), roomId as RoomId);
	const challengeUrl = new URL('/sync/challenge', baseURL);
	challengeUrl.searchParams.set('room', roomId);
	const response = await fetch(challengeUrl, { signal: deadline });
	if (!response.ok) {
		throw new Error(`the relay answered the challenge with ${response.status}`);
	}
	const { nonce } = (await response.json()) as { nonce?: unknown };
	if (typeof nonce !== 'string') throw new Error('the relay’s challenge has no nonce');
	const signature = await capability.sign(challengeMessage(roomId, nonce));
	const url = new URL(`/sync/${roomId}`, baseURL);
	url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
	url.searchParams.set('cap', toBase64Url(capability.publicKey));
	url.searchParams.set('nonce', nonce);
	url.searchParams.set('sig', toBase64Url(signature));
	url.searchParams.set('ack', '1');

	return new Promise<string | null>((resolve, reject) => {
		const ws = new WebSocket(url);
		let settled = false;
		const settle = (outcome: () => void): void => {
			if (settled) return;
			settled = true;
			deadline.removeEventListener('abort', onTimeout);
			outcome();
		};
		const onTimeout = (): void => {
			settle(() => reject(new Error(`the relay did not answer for room ${roomId} within 10 s`)));
			ws.terminate();
		};
		if (deadline.aborted) {
			onTimeout();
			return;
		}
		deadline.addEventListener('abort', onTimeout);
		ws.binaryType = 'nodebuffer';
		ws.on('message', (data: Buffer, isBinary: boolean) => {
			if (settled || !isBinary) return;
			let message: ReturnType<typeof readRelayMessage>;
			try {
				message = readRelayMessage(new Uint8Array(data));
			} catch {
				return; // not a frame a client reads; the decision is still to come
			}
			if (message.type === 'permission-denied') {
				settle(() => resolve(message.reason));
			} else {
				// Anything else (its sync step1 first) comes only after admission.
				settle(() => resolve(null));
				ws.close(1000, 'done');
			}
		});
		ws.on('close', (code: number, reason: Buffer) => {
			settle(() =>
				code === 4403
					? resolve(reason.toString() || 'unauthorized')
					: reject(new Error(`the relay closed the socket (${code}) before deciding`))
			);
		});
		ws.on('error', (error: Error) => {
			settle(() => reject(error));
			ws.terminate();
		});
	});
}

/**
 * Write operations into a room as a device would, straight to the relay:
 * `ops` sealed under `key` and signed with the device seed, one envelope at
 * the device's next clock in the room. For forgeries: a member's device
 * writing what its user has no right to. Resolves once the relay stored it.
 */
export async function forge(
	baseURL: string,
	room: { roomId: string; epoch: number; key: Uint8Array },
	deviceSeed: Uint8Array,
	ops: Operation[]
): Promise<void> {
	const signer = await createSigner(deviceSeed);
	const roomId = room.roomId as RoomId;
	const key = asSecretKey(room.key.slice());
	const cdoc = new ConversationDoc(roomId, clientIdFor(signer.publicKey));
	const connection = new RelayConnection({
		relayUrl: baseURL,
		roomId,
		cdoc,
		capabilityIkm: key,
		WebSocketImpl: WebSocket as unknown as typeof globalThis.WebSocket,
		networkEvents: null,
		logger: { debug() {}, info() {}, warn: console.warn, error: console.error }
	});
	try {
		// Caught up first: the envelope must take the device's next free clock.
		await new Promise<void>((resolve, reject) => {
			const timer = setTimeout(() => reject(new Error('the relay did not sync the room')), 15_000);
			connection.on('synced', () => {
				clearTimeout(timer);
				resolve();
			});
		});
		const clock = cdoc.nextClock();
		const entry = await sealEnvelope({
			clock,
			roomId,
			epoch: room.epoch,
			key,
			signer,
			plaintext: encodeBatch({ ops })
		});
		const client = clientIdFor(signer.publicKey);
		const stored = new Promise<void>((resolve, reject) => {
			const timer = setTimeout(() => reject(new Error('the relay did not store it')), 15_000);
			connection.on('stored', ({ relayState }) => {
				if ((relayState.get(client) ?? 0) > clock) {
					clearTimeout(timer);
					resolve();
				}
			});
		});
		cdoc.insertLocal([entry]);
		await stored;
	} finally {
		connection.destroy();
	}
}

/** The account's user id: its master Ed25519 public key (docs/protocol.md §2). */
export function userIdOf(secrets: Pick<KeyringSecrets, 'master'>): string {
	return toBase64Url(ed25519.getPublicKey(fromBase64Url(secrets.master)));
}

/** One IndexedDB record's binary parts, as the page stores them (base64url). */
export interface LocalRecord {
	database: string;
	store: string;
	key: string;
	/** Every byte array found in the value, base64url. */
	blobs: string[];
	/** A snapshot record (kv `snapshot:<room>`): its fields, base64url. */
	snapshot?: { nonce: string; ciphertext: string; stateVector: string };
}

/** Every record of every IndexedDB database of the page's origin, with its byte arrays. */
export async function localRecords(page: Page): Promise<LocalRecord[]> {
	const raw = await page.evaluate(async () => {
		const b64 = (bytes: Uint8Array) => {
			let text = '';
			for (let i = 0; i < bytes.length; i += 8192) {
				text += String.fromCharCode(...bytes.subarray(i, i + 8192));
			}
			return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
		};
		const request = <T>(req: IDBRequest<T>) =>
			new Promise<T>((resolve, reject) => {
				req.onsuccess = () => resolve(req.result);
				req.onerror = () => reject(req.error);
			});
		const out: Array<{
			database: string;
			store: string;
			key: string;
			blobs: string[];
			snapshot?: { nonce: string; ciphertext: string; stateVector: string };
		}> = [];
		const collect = (value: unknown, blobs: string[], depth = 0): void => {
			if (depth > 32 || value === null || typeof value !== 'object') return;
			if (value instanceof ArrayBuffer) blobs.push(b64(new Uint8Array(value)));
			else if (ArrayBuffer.isView(value)) {
				blobs.push(b64(new Uint8Array(value.buffer, value.byteOffset, value.byteLength)));
			} else if (Array.isArray(value)) value.forEach((v) => collect(v, blobs, depth + 1));
			else for (const v of Object.values(value)) collect(v, blobs, depth + 1);
		};
		for (const info of await indexedDB.databases()) {
			if (!info.name) continue;
			const db = await request(indexedDB.open(info.name));
			for (const storeName of Array.from(db.objectStoreNames)) {
				const tx = db.transaction(storeName, 'readonly');
				const store = tx.objectStore(storeName);
				const keys = await request(store.getAllKeys());
				const values = await request(store.getAll());
				keys.forEach((key, i) => {
					const value = values[i] as Record<string, unknown> | undefined;
					const blobs: string[] = [];
					collect(value, blobs);
					const record: (typeof out)[number] = {
						database: info.name as string,
						store: storeName,
						key: String(key),
						blobs
					};
					if (String(key).startsWith('snapshot:') && value) {
						const { nonce, ciphertext, stateVector } = value as Record<string, Uint8Array>;
						if (nonce && ciphertext && stateVector) {
							record.snapshot = {
								nonce: b64(nonce),
								ciphertext: b64(ciphertext),
								stateVector: b64(stateVector)
							};
						}
					}
					out.push(record);
				});
			}
			db.close();
		}
		return out;
	});
	return raw;
}

/**
 * Everything a replica's storage yields with every key it has: each
 * conversation doc's envelopes opened with `keys`, and each view snapshot
 * decrypted with the device-local key. Plaintexts as UTF-8 text.
 */
export async function openLocal(
	records: LocalRecord[],
	keys: Uint8Array[],
	localKey: Uint8Array
): Promise<string[]> {
	const docs = new Map<string, Uint8Array[]>();
	for (const record of records) {
		if (!record.database.startsWith('kith-doc:')) continue;
		const list = docs.get(record.database) ?? [];
		for (const blob of record.blobs) list.push(fromBase64Url(blob));
		docs.set(record.database, list);
	}
	const rooms = new Map<string, Uint8Array[]>();
	for (const [database, updates] of docs) {
		const valid = updates.filter((update) => {
			try {
				Y.decodeUpdate(update);
				return true;
			} catch {
				return false;
			}
		});
		rooms.set(database.slice('kith-doc:'.length), valid);
	}
	const texts = await openEverything(rooms, keys);
	for (const record of records) {
		if (!record.snapshot) continue;
		const room = record.key.slice('snapshot:'.length) as RoomId;
		const stateVector = fromBase64Url(record.snapshot.stateVector);
		try {
			const plaintext = await aeadDecrypt(
				asSecretKey(localKey.slice()),
				fromBase64Url(record.snapshot.nonce),
				fromBase64Url(record.snapshot.ciphertext),
				snapshotAad(room, stateVector)
			);
			texts.push(utf8Decode(plaintext));
		} catch {
			// not openable with this key
		}
	}
	return texts;
}

/** Whether `needle` occurs anywhere in the page's stored bytes. */
export function holdsBytes(records: LocalRecord[], needle: Uint8Array): boolean {
	const target = Buffer.from(needle);
	return records.some((record) =>
		record.blobs.some((blob) => Buffer.from(fromBase64Url(blob)).includes(target))
	);
}

/** The envelopes on the relay whose plaintext (opened with `key`) contains `needle`. */
export async function envelopesHolding(
	rooms: Map<string, Uint8Array[]>,
	key: Uint8Array,
	needle: string
): Promise<Uint8Array[]> {
	const found: Uint8Array[] = [];
	for (const [roomId, updates] of rooms) {
		for (const bytes of roomEnvelopes(updates)) {
			const opened = await openEnvelope(bytes, {
				roomId: roomId as RoomId,
				keyForEpoch: () => asSecretKey(key.slice()),
				verified: true
			}).catch(() => null);
			if (opened && utf8Decode(opened.plaintext).includes(needle)) found.push(bytes);
		}
	}
	return found;
}
