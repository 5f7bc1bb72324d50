/**
 * The app's parts wired the way the composition root (kith.svelte.ts,
 * `#open` and `#openConversation`) wires them, minus the vault and the UI:
 * a real keyring from `createAccount`, the LocalStore, a TabCoordinator that
 * leads (one tab), one DocSession per room in IndexedDB and a
 * ConversationSession on top. Benchmarks drive these objects; nothing on the
 * measured path is replaced.
 *
 * What a fresh page needs to reopen the same conversation (the stored
 * keyring, the room id and its key) is kept in the LocalStore under
 * `bench/…` keys: the app keeps conversation keys in the vault instead.
 */
import { ConversationSession } from '$lib/app/conversation-session.svelte';
import { DocSession } from '$lib/app/doc-session';
import { TabCoordinator } from '$lib/app/tabs';
import { HlcClock } from '$lib/conversation';
import {
	asSecretKey,
	newRoomId,
	newSecretKey,
	type ConversationId,
	type RoomId,
	type SecretKey
} from '$lib/crypto';
import { clientIdFor } from '$lib/envelope';
import {
	createAccount,
	unlockKeyring,
	type StoredKeyring,
	type UnlockedKeyring
} from '$lib/identity';
import { LocalStore } from '$lib/storage';

const KEYRING_KEY = 'keyring';

export interface Profile {
	store: LocalStore;
	keyring: UnlockedKeyring;
	tabs: TabCoordinator;
	clock: HlcClock;
	docs: Map<RoomId, DocSession>;
}

export interface ConversationRecord {
	roomId: RoomId;
	key: SecretKey;
	createdAt: number;
}

export interface OpenConversation {
	record: ConversationRecord;
	doc: DocSession;
	session: ConversationSession;
	/** Resolves once `predicate()` holds, checked after every change of the session. */
	until(predicate: () => boolean): Promise<void>;
	close(): Promise<void>;
}

/** Create the account on first use (stored like the app stores it), unlock it on later pages. */
export async function openProfile(): Promise<Profile> {
	const store = new LocalStore();
	let keyring: UnlockedKeyring;
	const stored = await store.get<StoredKeyring>(KEYRING_KEY);
	if (stored) {
		keyring = await unlockKeyring(stored);
	} else {
		const created = await createAccount();
		await store.put(KEYRING_KEY, created.stored);
		keyring = created.keyring;
	}
	const tabs = new TabCoordinator(keyring.identity.userId);
	// A page closed just before may still hold the writer lock for a moment.
	if (!(await tabs.start())) {
		const deadline = Date.now() + 10_000;
		while (!tabs.isLeader) {
			if (Date.now() > deadline) throw new Error('another page holds the writer lock');
			await new Promise((resolve) => setTimeout(resolve, 10));
		}
	}
	const docs = new Map<RoomId, DocSession>();
	tabs.setInsertHandler((room, request, onSealed) => {
		const doc = docs.get(room as RoomId);
		if (!doc) return Promise.reject(new Error(`no open doc for room ${room}`));
		return doc.sealAndInsert(request, keyring.deviceSigner, onSealed);
	});
	tabs.onUpdate((room, update) => docs.get(room as RoomId)?.applyFromTab(update));
	return { store, keyring, tabs, clock: new HlcClock(), docs };
}

export async function newConversation(
	profile: Profile,
	label: string
): Promise<ConversationRecord> {
	const record: ConversationRecord = {
		roomId: newRoomId(),
		key: newSecretKey(),
		createdAt: Date.now()
	};
	await profile.store.put(`bench/conversation/${label}`, record);
	return record;
}

export async function findConversation(
	profile: Profile,
	label: string
): Promise<ConversationRecord> {
	const record = await profile.store.get<ConversationRecord>(`bench/conversation/${label}`);
	if (!record) throw new Error(`no benchmark conversation "${label}" in this browser profile`);
	return { ...record, key: asSecretKey(record.key) };
}

export interface OpenOptions {
	/** Reducer state from `loadSnapshot`, as the app passes it. */
	restored?: unknown;
	/** The snapshot's state vector: entries it covers skip the signature check on load. */
	trusted?: Uint8Array | null;
}

/** Open a conversation as `#openConversation` does (given the snapshot it would have loaded). */
export function openConversation(
	profile: Profile,
	record: ConversationRecord,
	options: OpenOptions = {}
): OpenConversation {
	const { keyring } = profile;
	const doc = new DocSession({
		roomId: record.roomId,
		clientId: clientIdFor(keyring.deviceSigner.publicKey),
		tabs: profile.tabs,
		trusted: options.trusted ?? null,
		onRefused: (reason) => console.warn(`bench: stored data refused: ${reason}`)
	});
	profile.docs.set(record.roomId, doc);
	const waiters = new Set<{ predicate: () => boolean; resolve: () => void }>();
	const session = new ConversationSession({
		id: record.roomId as string as ConversationId,
		name: 'Benchmark',
		kind: 'group',
		createdAt: record.createdAt,
		epoch: 0,
		keys: new Map([[0, record.key]]),
		session: doc,
		signer: keyring.deviceSigner,
		clock: profile.clock,
		myUserId: keyring.identity.userId,
		creator: keyring.identity.userId,
		myName: () => 'Bench',
		isLeader: () => true,
		restored: options.restored,
		onChange: () => {
			for (const waiter of waiters) {
				if (waiter.predicate()) {
					waiters.delete(waiter);
					waiter.resolve();
				}
			}
		},
		onReport: (error) =>
			console.error(`bench: conversation reported ${error.name}: ${error.message}`)
	});
	return {
		record,
		doc,
		session,
		until(predicate) {
			if (predicate()) return Promise.resolve();
			return new Promise((resolve) => waiters.add({ predicate, resolve }));
		},
		async close() {
			profile.docs.delete(record.roomId);
			await doc.close();
		}
	};
}
