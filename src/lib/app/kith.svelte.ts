/* eslint-disable svelte/prefer-svelte-reactivity -- bookkeeping collections, deliberately not
   reactive: the UI reads the $state fields derived from them. */
/**
 * The composition root's product: the running app for one browser profile.
 * It owns the keyring, the tab coordinator, the vault and every open
 * conversation, and exposes reactive state and verbs to the UI.
 */
import {
	createAccount as makeAccount,
	needsPassphrase,
	unlockKeyring,
	type StoredKeyring,
	type UnlockedKeyring
} from '../identity';
import { HlcClock, type EnvelopeEntry } from '../conversation';
import { clientIdFor, openEnvelope } from '../envelope';
import { newRoomId, newSecretKey, type ConversationId, type RoomId } from '../crypto';
import { isQuotaError, requestPersistentStorage, type LocalStore } from '../storage';
import {
	decodeVaultChanges,
	encodeVaultChanges,
	Vault,
	vaultRoomId,
	type ConversationEntry
} from '../vault';
import { ConversationSession, type Author } from './conversation-session.svelte';
import { DocSession } from './doc-session';
import { loadSnapshot, saveSnapshot } from './snapshot';
import { TabCoordinator } from './tabs';
import type { ConversationSummary, Phase } from './types';

const KEYRING_KEY = 'keyring';
const SNAPSHOT_DELAY_MS = 2000;

export interface KithAppOptions {
	store: LocalStore;
	/** Lower Argon2id cost (tests only). */
	passphraseCost?: { memoryKiB: number; iterations: number; parallelism: number };
}

export class KithApp {
	phase = $state<Phase>('starting');
	/** A problem the user must know about (storage full, damaged data), for role=alert. */
	alert = $state<string | null>(null);
	/** Shown once right after account creation, then cleared. */
	recoveryKey = $state<string | null>(null);
	displayName = $state('');
	conversations = $state.raw<ConversationSummary[]>([]);

	readonly #store: LocalStore;
	readonly #options: KithAppOptions;
	#stored: StoredKeyring | null = null;
	#keyring: UnlockedKeyring | null = null;
	#tabs: TabCoordinator | null = null;
	#vault: Vault | null = null;
	#vaultSession: DocSession | null = null;
	readonly #docSessions = new Map<RoomId, DocSession>();
	readonly #sessions = new Map<ConversationId, ConversationSession>();
	readonly #clock = new HlcClock();
	#summaryScheduled = false;
	readonly #snapshotTimers = new Map<ConversationId, ReturnType<typeof setTimeout>>();

	constructor(options: KithAppOptions) {
		this.#options = options;
		this.#store = options.store;
	}

	async start(): Promise<void> {
		try {
			this.#stored = (await this.#store.get<StoredKeyring>(KEYRING_KEY)) ?? null;
			if (!this.#stored) {
				this.phase = 'onboarding';
				return;
			}
			this.displayName = '';
			if (needsPassphrase(this.#stored)) {
				this.phase = 'locked';
				return;
			}
			await this.#open(await unlockKeyring(this.#stored));
		} catch (error) {
			this.#fail(error);
		}
	}

	async createAccount(displayName: string, passphrase: string): Promise<void> {
		const name = displayName.trim();
		if (!name) throw new Error('Enter a display name.');
		const created = await makeAccount({
			passphrase: passphrase || undefined,
			passphraseCost: this.#options.passphraseCost
		});
		await this.#store.put(KEYRING_KEY, created.stored);
		this.#stored = created.stored;
		this.recoveryKey = created.recoveryKey;
		await this.#open(created.keyring, name);
	}

	/** Throws WrongPassphraseError (by name) on a bad passphrase; nothing changes. */
	async unlock(passphrase: string): Promise<void> {
		if (!this.#stored) throw new Error('There is no account on this device.');
		const keyring = await unlockKeyring(this.#stored, passphrase);
		await this.#open(keyring);
	}

	acknowledgeRecoveryKey(): void {
		this.recoveryKey = null;
	}

	dismissAlert(): void {
		this.alert = null;
	}

	conversation(id: string): ConversationSession | undefined {
		return this.#sessions.get(id as ConversationId);
	}

	async createConversation(name: string): Promise<ConversationId> {
		const trimmed = name.trim();
		if (!trimmed) throw new Error('Enter a name for the conversation.');
		if (trimmed.length > 100) throw new Error('Keep the name under 100 characters.');
		const entry = this.#newConversationEntry(trimmed, 'group');
		await this.#changeVault((vault) => vault.addConversation(entry));
		this.#syncConversations();
		return entry.id;
	}

	#newConversationEntry(name: string, kind: 'notes' | 'group'): ConversationEntry {
		const roomId = newRoomId();
		return {
			id: roomId as string as ConversationId,
			name,
			kind,
			roomId,
			epoch: 0,
			keys: new Map([[0, newSecretKey()]]),
			createdAt: Date.now()
		};
	}

	// ---- opening -----------------------------------------------------------

	async #open(keyring: UnlockedKeyring, newAccountName?: string): Promise<void> {
		this.#keyring = keyring;
		// Automerge's wasm compiles while the tab lock is taken and the vault's
		// envelopes are read from storage, not after.
		const vaultOpening = Vault.open();
		const tabs = new TabCoordinator(keyring.identity.userId);
		this.#tabs = tabs;
		await tabs.start();
		tabs.setInsertHandler((room, request, onSealed) =>
			this.#docSession(room as RoomId).sealAndInsert(request, keyring.deviceSigner, onSealed)
		);
		tabs.onUpdate((room, update) => this.#docSessions.get(room as RoomId)?.applyFromTab(update));
		tabs.onBecomeLeader(async () => {
			for (const session of this.#docSessions.values()) await session.becomeWriter();
		});

		const vaultSession = this.#docSession(vaultRoomId(keyring.accountKey));
		this.#vaultSession = vaultSession;
		// Vault entries are applied in order, after the vault itself exists.
		this.#vaultIngested = vaultOpening.then((opened) => {
			this.#vault = opened;
		});
		vaultSession.onEntries((entries) => void this.#ingestVault(entries));
		await vaultSession.loaded;
		await this.#vaultIngested;
		const vault = await vaultOpening;

		if (newAccountName !== undefined) {
			const notes = this.#newConversationEntry('Notes to self', 'notes');
			await this.#changeVault((vault) => vault.initialise(newAccountName, notes));
		}
		this.displayName = vault.displayName;
		await this.#syncConversations();
		this.phase = 'ready';
		void requestPersistentStorage();
		if (typeof document !== 'undefined') {
			document.addEventListener('visibilitychange', () => {
				if (document.visibilityState === 'hidden') void this.#snapshotAll();
			});
		}
	}

	#vaultIngested: Promise<void> = Promise.resolve();

	#ingestVault(entries: EnvelopeEntry[]): void {
		const keyring = this.#keyring;
		const session = this.#vaultSession;
		if (!keyring || !session) return;
		this.#vaultIngested = this.#vaultIngested.then(async () => {
			const vault = this.#vault;
			if (!vault) return;
			const changes: Uint8Array[] = [];
			for (const entry of entries) {
				try {
					const opened = await openEnvelope(entry.bytes, {
						roomId: session.roomId,
						keyForEpoch: (epoch) => (epoch === 0 ? keyring.accountKey : undefined),
						verified: true
					});
					changes.push(...decodeVaultChanges(opened.plaintext));
				} catch (error) {
					console.warn('kith:vault refused an entry', error);
					this.alert = 'Some account data could not be read and was skipped.';
				}
			}
			if (vault.applyChanges(changes)) {
				this.displayName = vault.displayName;
				void this.#syncConversations();
			}
		});
	}

	async #changeVault(change: (vault: Vault) => Uint8Array[]): Promise<void> {
		const keyring = this.#keyring;
		const vault = this.#vault;
		const session = this.#vaultSession;
		if (!keyring || !vault || !session) throw new Error('The account is not open.');
		const changes = change(vault);
		if (changes.length === 0) return;
		try {
			await session.commit({
				epoch: 0,
				key: keyring.accountKey,
				plaintexts: [encodeVaultChanges(changes)]
			});
		} catch (error) {
			this.#reportWriteError(error);
			throw error;
		}
	}

	#docSession(roomId: RoomId, trusted?: Uint8Array | null): DocSession {
		let session = this.#docSessions.get(roomId);
		if (!session) {
			const keyring = this.#keyring;
			const tabs = this.#tabs;
			if (!keyring || !tabs) throw new Error('The account is not open.');
			session = new DocSession({
				roomId,
				clientId: clientIdFor(keyring.deviceSigner.publicKey),
				tabs,
				trusted,
				onRefused: (reason) => {
					console.warn(`kith:storage refused stored data in ${roomId}: ${reason}`);
				}
			});
			this.#docSessions.set(roomId, session);
		}
		return session;
	}

	/** Make sure every conversation in the vault has a running session. */
	async #syncConversations(): Promise<void> {
		const vault = this.#vault;
		const keyring = this.#keyring;
		if (!vault || !keyring) return;
		const opening: Promise<void>[] = [];
		for (const entry of vault.conversations()) {
			const existing = this.#sessions.get(entry.id);
			if (existing) {
				existing.name = entry.name;
				continue;
			}
			opening.push(this.#openConversation(entry, keyring, vault));
		}
		await Promise.all(opening);
		this.#scheduleSummaries();
	}

	async #openConversation(
		entry: ConversationEntry,
		keyring: UnlockedKeyring,
		vault: Vault
	): Promise<void> {
		if (this.#sessions.has(entry.id)) return;
		const snapshot = this.#docSessions.has(entry.roomId)
			? null
			: await loadSnapshot<unknown>(this.#store, keyring.localKey, entry.roomId);
		if (this.#sessions.has(entry.id)) return;
		const docSession = this.#docSession(entry.roomId, snapshot?.stateVector ?? null);
		const me: Author = { userId: keyring.identity.userId, name: vault.displayName, mine: true };
		const session = new ConversationSession({
			id: entry.id,
			name: entry.name,
			kind: entry.kind,
			createdAt: entry.createdAt,
			epoch: entry.epoch,
			keys: entry.keys,
			session: docSession,
			signer: keyring.deviceSigner,
			clock: this.#clock,
			myUserId: keyring.identity.userId,
			// Until membership arrives, a conversation admits only this account's own device.
			resolveAuthor: (device) =>
				device === keyring.identity.deviceId ? { ...me, name: this.displayName || me.name } : null,
			restored: snapshot?.data,
			onChange: () => {
				this.#scheduleSummaries();
				this.#scheduleSnapshot(entry.id);
			},
			onMarkRead: (opened) => void this.#markRead(opened),
			onReport: (error) => this.#reportWriteError(error)
		});
		session.setReadMark(vault.readPosition(null, entry.id));
		this.#sessions.set(entry.id, session);
	}

	async #markRead(session: ConversationSession): Promise<void> {
		const vault = this.#vault;
		const keyring = this.#keyring;
		const position = session.newestPosition();
		if (!vault || !keyring || !position) return;
		// setReadPosition makes no change (and nothing is stored) unless the mark moves forward.
		await this.#changeVault((v) =>
			v.setReadPosition(keyring.identity.deviceId, session.id, position)
		);
		session.setReadMark(vault.readPosition(null, session.id));
	}

	#scheduleSummaries(): void {
		if (this.#summaryScheduled) return;
		this.#summaryScheduled = true;
		queueMicrotask(() => {
			this.#summaryScheduled = false;
			const list: ConversationSummary[] = [];
			for (const session of this.#sessions.values()) {
				list.push({
					id: session.id,
					name: session.name,
					kind: session.kind,
					lastActivity: session.lastActivity,
					unread: session.unread,
					preview: session.preview
				});
			}
			list.sort((a, b) => b.lastActivity - a.lastActivity || a.name.localeCompare(b.name));
			this.conversations = list;
		});
	}

	#scheduleSnapshot(id: ConversationId): void {
		if (!this.#tabs?.isLeader) return;
		const existing = this.#snapshotTimers.get(id);
		if (existing) clearTimeout(existing);
		this.#snapshotTimers.set(
			id,
			setTimeout(() => {
				this.#snapshotTimers.delete(id);
				const session = this.#sessions.get(id);
				if (session) void this.#snapshot(session);
			}, SNAPSHOT_DELAY_MS)
		);
	}

	async #snapshot(session: ConversationSession): Promise<void> {
		const keyring = this.#keyring;
		if (!keyring || !session.settled) return;
		const stateVector = session.session.stateVector();
		const data = session.snapshotData();
		try {
			await saveSnapshot(this.#store, keyring.localKey, session.roomId, stateVector, data);
		} catch (error) {
			// A snapshot is a cache: failing to write one loses nothing.
			console.warn('kith:snapshot not written', error);
		}
	}

	async #snapshotAll(): Promise<void> {
		if (!this.#tabs?.isLeader) return;
		await Promise.all([...this.#sessions.values()].map((session) => this.#snapshot(session)));
	}

	#reportWriteError(error: unknown): void {
		if (isQuotaError(error) || (error instanceof Error && error.name === 'StorageQuotaError')) {
			this.alert =
				'Storage is full: new messages cannot be saved on this device. Free up space; everything already saved is safe, and unsaved messages will be retried.';
		} else if (error instanceof Error && error.name !== 'MessageTooLongError') {
			this.alert = `Could not save: ${error.message}`;
		}
	}

	#fail(error: unknown): void {
		console.error('kith:app failed to start', error);
		this.alert = error instanceof Error ? error.message : String(error);
		this.phase = 'failed';
	}
}
