/* eslint-disable svelte/prefer-svelte-reactivity -- bookkeeping collections, deliberately not
   reactive: the UI reads the $state fields derived from them. */
/**
 * The composition root's product: the running app for one browser profile.
 * It owns the keyring, the tab coordinator, the vault and every open
 * conversation, and exposes reactive state and verbs to the UI.
 */
import { BlobClient } from '../media/blob-client';
import {
	MediaManager,
	type PendingRelayRecord,
	type PendingRelayStore
} from '../media/media.svelte';
import { IdbChunkStore } from '../media/chunk-store';
import type { FileManifest } from '../media/manifest';
import { deriveRoomCapability } from '../sync/capability';
import {
	adoptSelfSigning,
	createAccount as makeAccount,
	decodeRecoveryKey,
	dhPublicKey,
	newDeviceKeys,
	encodeRecoveryKey,
	masterChain,
	mastersOf,
	restoreAccount,
	needsPassphrase,
	unlockKeyring,
	type StoredKeyring,
	type UnlockedKeyring
} from '../identity';
import { decodeStateVector, HlcClock, type EnvelopeEntry, type Vouch } from '../conversation';
import { clientIdFor, openEnvelope } from '../envelope';
import {
	createSigner,
	ed25519PublicKey,
	newSigningSeed,
	type ConversationId,
	type RoomId,
	type SecretKey,
	type UserId
} from '../crypto';
import {
	deleteDatabase,
	eraseLocalData,
	isQuotaError,
	requestPersistentStorage,
	type LocalStore
} from '../storage';
import {
	closeNotifications,
	currentSubscription,
	PushError,
	pushState,
	register as registerPush,
	subscribe as subscribePush,
	tellWorker,
	unsubscribe as unsubscribePush,
	type PushRoomInput
} from '../push/client';
import {
	decodeVaultChanges,
	decodeVaultMove,
	encodeVaultChanges,
	encodeVaultMove,
	furthestPosition,
	makeVaultMove,
	newConversationEntry,
	readVaultMove,
	Vault,
	vaultRoomId,
	type ConversationEntry,
	type ReadPosition,
	type VaultMove
} from '../vault';
import { ConversationSession } from './conversation-session.svelte';
import { NetHub } from './net';
import {
	admitJoinRequest,
	createInvitation,
	deriveInviteRoom,
	encodeInviteMessage,
	joinRequest,
	joinRequestWatcher,
	openInviteEntry,
	inviteQrDataUrl,
	admittedEntry,
	openAdmission,
	parseInviteLink,
	type Invitation,
	type InviteId,
	type InviteMessage,
	type JoinRequest
} from '../invite';
import { fromBase64Url, toBase64Url } from '../crypto';
import type { OpId } from '../conversation';
import type { GenerationKey } from '../conversation/generation';
import { DocSession, importDoc, storageName } from './doc-session';
import { openBackup, sealBackup } from '../backup';
import {
	createPairing,
	linkCode,
	openGrant,
	deviceNameFrom,
	PairingChannel,
	PairingError,
	pairingFragment,
	pairingRoom,
	parsePairingFragment,
	sealGrant,
	fitVouches,
	MAX_GRANT_VOUCHES,
	type GrantVouch,
	type LinkRequest,
	type Pairing,
	downloadHistory,
	encodeHistory,
	uploadHistory,
	type HistoryView
} from '../link';
import type { AccountDevice } from '../vault';
import { loadSnapshot, saveSnapshot, snapshotKey } from './snapshot';
import {
	fetchRelayLimits,
	isTransientRefusal,
	maxPlaintextFor,
	movedTag,
	reportMoved,
	retireRoom
} from '../sync';

import { TabCoordinator } from './tabs';
import type {
	ConnectionState,
	ConversationSummary,
	DeviceLinkState,
	LinkingState,
	MentionHit,
	Phase,
	SearchHit
} from './types';
import { MessageSearch } from '../search/message-search';
import { safetyQrText } from '../identity/safety-number';

const KEYRING_KEY = 'keyring';
/** Invite links this device asked to join with and is waiting on (local store key). */
const PENDING_JOINS_KEY = 'pending-joins';
/** How long a read position waits to go to the vault with the ones marked after it. */
const READ_POSITION_DELAY_MS = 1500;
/** How long the notice of a refusal that mends itself (isTransientRefusal) stays. */
const TRANSIENT_ALERT_MS = 6000;

/** How often the leader looks for invitations to watch (new ones, or after becoming leader). */
const INVITE_SCAN_MS = 5000;
/** How long the relay keeps an old generation for devices that have not moved yet. */
const RETAIN_MS = 30 * 24 * 60 * 60 * 1000;
/**
 * How long a device waits, once the seed of the generation it moved to is
 * whole, before it tells the relay it moved: another opener's epoch op of
 * the same epoch (two admins at once) may be arriving (protocol.md,
 * "Following another").
 */
const RETIRE_GRACE_MS = 5000;
/**
 * Resolves once the page has painted what is on screen now: at once where
 * nothing paints (a hidden tab, no DOM), and after 100 ms at the latest
 * (a background tab gets no animation frames).
 */
function afterPaint(): Promise<void> {
	if (typeof requestAnimationFrame !== 'function') return Promise.resolve();
	if (typeof document !== 'undefined' && document.visibilityState === 'hidden') {
		return Promise.resolve();
	}
	return new Promise((resolve) => {
		const latest = setTimeout(resolve, 100);
		requestAnimationFrame(() =>
			setTimeout(() => {
				clearTimeout(latest);
				resolve();
			}, 0)
		);
	});
}

/** Uploads to the relay still owed (files sent to peers while it was away), one record per file. */
const PENDING_RELAY_PREFIX = 'media-relay/';

function pendingRelayStore(store: LocalStore): PendingRelayStore {
	return {
		list: async () => {
			const keys = await store.keys(PENDING_RELAY_PREFIX);
			const records = await Promise.all(
				keys.map(async (key) => [key.slice(PENDING_RELAY_PREFIX.length), await store.get(key)])
			);
			return records as Array<[string, PendingRelayRecord]>;
		},
		put: (fileId, record) => store.put(PENDING_RELAY_PREFIX + fileId, record),
		delete: (fileId) => store.delete(PENDING_RELAY_PREFIX + fileId)
	};
}

/** The conversation list's cache for the next start (snapshot.ts, under the device-local key). */
const LIST_SNAPSHOT = 'list' as RoomId;
/** The list is cached at most this often. */
const LIST_SAVE_MS = 1000;

interface ListSnapshot {
	displayName: string;
	conversations: ConversationSummary[];
}

/** How long "Remove NAME" waits for this device to take the new keys itself. */
const ADOPT_WAIT_MS = 5000;
/** Vault changes per envelope when a device removal seeds the vault's new room. */
const VAULT_SEED_CHANGES = 500;

/** Where a join stands, for the join page. */
export type JoinState =
	| { state: 'waiting' }
	| { state: 'joined'; conversationId: ConversationId }
	| { state: 'failed'; message: string };
const SNAPSHOT_DELAY_MS = 2000;
/**
 * How long confirming a link waits for this device's history to be on the
 * relay (prepared from the moment the request came, while the user compares
 * the codes); past it the grant goes without, and the new device reads every
 * envelope itself.
 */
const HISTORY_UPLOAD_WAIT_MS = 10_000;
/** How long a newly linked device waits for the handed-over history before reading envelopes instead. */
const HISTORY_FETCH_WAIT_MS = 10_000;
/** Where this device keeps its notification choices (LocalStore). */
const PUSH_SETTINGS_KEY = 'push-settings';
/** Where this device keeps the LAN peers it reaches (LocalStore): their addresses. */
const LAN_PEERS_KEY = 'lan-peers';
/** Changes to rooms or mutes are registered with the relay after this pause. */
const PUSH_SYNC_DELAY_MS = 500;

export interface KithAppOptions {
	store: LocalStore;
	/** The relay's base URL (normally the app's own origin); null or absent: no relay. */
	relayUrl?: string | null;
	/** Lower Argon2id cost (tests only). */
	passphraseCost?: { memoryKiB: number; iterations: number; parallelism: number };
}

/** Longest the search index is made in one go, so typing and scrolling stay smooth. */
const SEARCH_SLICE_MS = 25;

export class KithApp {
	phase = $state<Phase>('starting');
	/** A problem the user must know about (storage full, damaged data), for role=alert. */
	alert = $state<string | null>(null);
	/**
	 * While the account opens: the conversation list as it was last shown
	 * here (a local encrypted cache), so the first screen needs neither the
	 * vault nor Automerge. Cleared once the account is open.
	 */
	preview = $state(false);
	/** Shown once right after account creation (or "Make a new recovery key"), then cleared. */
	recoveryKey = $state<string | null>(null);
	/** Whether `recoveryKey` replaces an older one (its dialog says the old one stopped working). */
	recoveryKeyReplaced = $state(false);
	/** Whether this device holds the master key (else a backup needs the recovery key typed). */
	get holdsMasterKey(): boolean {
		return this.#keyring?.masterSeed != null;
	}

	/** This device's id (once the account is open). */
	get deviceId(): string | null {
		return this.#keyring?.identity.deviceId ?? null;
	}

	/** Settings → "Link a device", while a link is open (this device's side). */
	linking = $state<LinkingState | null>(null);
	/** The /link page: this new device's side of a link. */
	joiningAsDevice = $state<DeviceLinkState | null>(null);
	/** The account's devices (Settings → Devices). */
	devices = $state<AccountDevice[]>([]);
	displayName = $state('');
	conversations = $state.raw<ConversationSummary[]>([]);
	/** The app's one connection indicator: every room's relay connection taken together. */
	connection = $state<ConnectionState>('Connecting');
	/** Joins this device asked for, by invitation id. */
	joins = $state<Record<string, JoinState>>({});
	/** Push notifications are on for this device. */
	notifications = $state(false);
	/** Notifications never show who wrote or what ("Private notifications"). */
	privateNotifications = $state(false);
	/** People the user blocked (user id → name), from the vault. */
	blocked = $state.raw<ReadonlyMap<string, string>>(new Map());
	/** Conversations the user muted (no push), from the vault. */
	muted = $state.raw<ReadonlySet<string>>(new Set());
	/** `kith serve` peers this device reaches on the LAN (Settings → LAN peers), this device only. */
	lanPeers = $state.raw<{ address: string; connected: boolean }[]>([]);

	readonly #store: LocalStore;
	readonly #options: KithAppOptions;
	#stored: StoredKeyring | null = null;
	/** Raw state: the UI reads what derives from it (holdsMasterKey), which a new key changes. */
	#keyring = $state.raw<UnlockedKeyring | null>(null);
	#tabs: TabCoordinator | null = null;
	#vault: Vault | null = null;
	#vaultSession: DocSession | null = null;
	#net: NetHub | null = null;
	/** The LAN peer addresses this device keeps (LocalStore `lan-peers`). */
	#lanAddresses: string[] = [];
	/** Invite rooms this device watches (as a member admitting, or as a joiner). */
	readonly #inviteRooms = new Map<RoomId, DocSession>();
	readonly #docSessions = new Map<RoomId, DocSession>();
	readonly #sessions = new Map<ConversationId, ConversationSession>();
	readonly #clock = new HlcClock();
	#summaryScheduled = false;
	readonly #snapshotTimers = new Map<ConversationId, ReturnType<typeof setTimeout>>();

	/** Files: sending, fetching and showing them (null without a relay or outside a browser). */
	readonly media: MediaManager | null;
	/** The relay's blob store (files, and the history handed to a linked device); null without a relay. */
	readonly #blobs: BlobClient | null;

	constructor(options: KithAppOptions) {
		this.#blobs = options.relayUrl ? new BlobClient(options.relayUrl) : null;
		this.media =
			this.#blobs && typeof indexedDB !== 'undefined'
				? new MediaManager({
						client: this.#blobs,
						pending: pendingRelayStore(options.store),
						serviceWorker:
							typeof navigator === 'undefined' ? null : (navigator.serviceWorker ?? null)
					})
				: null;
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

	/**
	 * This (fresh) device becomes a new device of the account in a backup:
	 * the backup is opened with the recovery key (a damaged or tampered file,
	 * or a key that does not open it, throws BackupError or RecoveryKeyError
	 * with a message for a person, and nothing is written), its docs are
	 * stored, then new device keys certified by the account's self-signing
	 * key are made and the app opens. Each conversation's session then adds
	 * this device to its roster (roster.ts rule 6), so others see the same
	 * person; the relay brings what was written since the backup.
	 */
	async restoreFromBackup(backup: Uint8Array, recoveryKey: string): Promise<void> {
		if (this.#stored) throw new Error('This device already has an account.');
		const contents = await openBackup(backup, recoveryKey);
		const restored = await restoreAccount(
			{
				masterSeed: decodeRecoveryKey(recoveryKey),
				sskSeed: fromBase64Url(contents.secrets.ssk),
				accountKey: fromBase64Url(contents.secrets.account) as SecretKey,
				...(contents.masters?.length
					? { replaced: { userId: contents.userId as UserId, chain: contents.masters } }
					: {})
			},
			{ passphraseCost: this.#options.passphraseCost }
		);
		for (const { room, updates } of contents.rooms) await importDoc(room as RoomId, updates);
		// Files the backup carries: their chunks (still encrypted) go where downloads go.
		if (contents.chunks?.length) {
			const store = this.media?.store ?? new IdbChunkStore();
			for (const chunk of contents.chunks) await store.put(chunk.id, chunk.bytes);
		}
		await this.#store.put(KEYRING_KEY, restored.stored);
		this.#stored = restored.stored;
		await this.#open(restored.keyring);
	}

	/**
	 * Everything this device holds of the account, as one file sealed under
	 * the recovery key (backup.ts): the vault and every generation of every
	 * conversation, as stored (encrypted envelopes), with the self-signing
	 * and account keys a restored device needs; with `includeFiles`, the
	 * encrypted chunks of every file in the conversations too.
	 * A linked device does not hold the master key: it needs the recovery
	 * key typed (`recoveryKey`), which must be this account's.
	 */
	/** Files in the account's conversations, each once: what "Include files" adds to a backup. */
	#backupManifests(): FileManifest[] {
		const files = new Map<string, FileManifest>();
		for (const session of this.#sessions.values()) {
			for (const manifest of session.attachments()) files.set(manifest.id, manifest);
		}
		return [...files.values()];
	}

	/** How many files "Include files" would add to a backup, and their size in bytes. */
	backupFiles(): { count: number; bytes: number } {
		const files = this.#backupManifests();
		return { count: files.length, bytes: files.reduce((sum, file) => sum + file.size, 0) };
	}

	/**
	 * The encrypted chunks of every file in the account's conversations: from
	 * this device's store, or fetched from the relay (a file never opened
	 * here). Rejects, naming the file, when one cannot be had.
	 */
	async #backupChunks(): Promise<Array<{ id: string; bytes: Uint8Array }>> {
		const media = this.media;
		if (!media) throw new Error('Files cannot be included: this device has no file store.');
		const chunks = new Map<string, Uint8Array>();
		for (const manifest of this.#backupManifests()) {
			for (const id of manifest.chunks) {
				if (chunks.has(id)) continue;
				let bytes = await media.store.get(id);
				if (!bytes) {
					try {
						bytes = await media.client.get(id);
					} catch (cause) {
						throw new Error(
							`“${manifest.name}” could not be fetched for the backup. Try again online, or export without files.`,
							{ cause }
						);
					}
				}
				chunks.set(id, bytes);
			}
		}
		return [...chunks].map(([id, bytes]) => ({ id, bytes }));
	}

	async exportBackup(
		recoveryKey?: string,
		options: { includeFiles?: boolean } = {}
	): Promise<Uint8Array> {
		const keyring = this.#keyring;
		const vault = this.#vault;
		if (!keyring || !vault) throw new Error('The account is not open.');
		const masterSeed = this.#masterSeed(
			recoveryKey,
			'to seal the backup: this device does not hold it'
		);
		const rooms = new Set<RoomId>([vaultRoomId(keyring.accountKey)]);
		for (const entry of vault.conversations()) {
			rooms.add(entry.roomId);
			for (const generation of entry.generations?.values() ?? []) rooms.add(generation.room);
			for (const room of entry.abandoned?.keys() ?? []) rooms.add(room);
		}
		const docs: Array<{ room: string; updates: Uint8Array[] }> = [];
		for (const room of rooms) {
			const doc = this.#docSession(room);
			await doc.loaded;
			docs.push({ room, updates: [doc.encodeState()] });
		}
		return sealBackup(
			{
				createdAt: Date.now(),
				userId: keyring.identity.userId,
				masters: masterChain(keyring.identity.sskCert),
				displayName: vault.displayName,
				secrets: { ssk: toBase64Url(keyring.sskSeed), account: toBase64Url(keyring.accountKey) },
				rooms: docs,
				chunks: options.includeFiles ? await this.#backupChunks() : []
			},
			masterSeed
		);
	}

	// ---- linking devices ---------------------------------------------------------

	#pairing: {
		pairing: Pairing;
		channel: PairingChannel;
		request: LinkRequest | null;
		/** This device's conversations' views, being put on the relay for the new device. */
		history: Promise<FileManifest | null> | null;
		timer: ReturnType<typeof setTimeout>;
	} | null = null;

	/**
	 * Settings → "Link a device": a one-time link (10 minutes) for a new
	 * device of this account, shown with its QR code. The first device that
	 * opens it and asks shows up with a code; the user checks the code is
	 * the same on both screens and confirms (`confirmLink`).
	 */
	startLinking(): void {
		const keyring = this.#keyring;
		const relayUrl = this.#options.relayUrl;
		if (!keyring) throw new Error('The account is not open.');
		if (!relayUrl) throw new Error('Linking a device needs the relay: it is how they meet.');
		this.cancelLinking();
		const pairing = createPairing(keyring.identity.deviceId);
		const channel = new PairingChannel(
			relayUrl,
			pairingRoom(pairing.secret),
			keyring.deviceSigner,
			(message, signer) => {
				const current = this.#pairing;
				if (current?.channel !== channel || message.type !== 'link-request') return;
				// Single use: the first request that is signed by the device it names.
				if (current.request || signer !== message.device || Date.now() >= pairing.expires) return;
				current.request = message;
				// Encrypted under a fresh key that only the grant carries: nothing is
				// handed to anyone before the user confirms the code.
				current.history = this.#prepareHistory();
				if (this.linking) {
					this.linking = {
						...this.linking,
						state: 'confirm',
						request: {
							name: message.name,
							code: linkCode(pairing.secret, pairing.device, message.device)
						}
					};
				}
			}
		);
		const link = new URL(`/link#${pairingFragment(pairing)}`, relayUrl).href;
		const timer = setTimeout(() => {
			if (this.#pairing?.channel !== channel) return;
			if (this.linking && this.linking.state !== 'linked') {
				this.linking = { ...this.linking, state: 'expired' };
			}
			this.#closePairing();
		}, pairing.expires - Date.now());
		this.#pairing = { pairing, channel, request: null, history: null, timer };
		this.linking = {
			link,
			qr: inviteQrDataUrl(link),
			expires: pairing.expires,
			request: null,
			state: 'waiting'
		};
	}

	/**
	 * The user saw the same code on both devices: hand the new device the
	 * account's keys, sealed to it, and list it among the account's devices.
	 */
	async confirmLink(): Promise<void> {
		const keyring = this.#keyring;
		const current = this.#pairing;
		const request = current?.request;
		if (!keyring || !current || !request || !this.linking) return;
		const { roomId } = pairingRoom(current.pairing.secret);
		const history = await within(current.history ?? Promise.resolve(null), HISTORY_UPLOAD_WAIT_MS);
		const grant = await sealGrant(roomId, request, {
			user: keyring.identity.userId,
			ssk: toBase64Url(keyring.sskSeed),
			account: toBase64Url(keyring.accountKey),
			displayName: this.displayName.slice(0, 64),
			sskCert: keyring.identity.sskCert,
			deviceCert: keyring.identity.deviceCert,
			vouches: this.#vouches(),
			...(history ? { history } : {})
		});
		await current.channel.send(grant);
		await this.#changeVault((vault) =>
			vault.noteDevice(request.device, request.name, Date.now(), request.dh)
		);
		this.linking = { ...this.linking, state: 'linked' };
		// The answer must reach the relay before the room is closed.
		clearTimeout(current.timer);
		current.timer = setTimeout(() => {
			if (this.#pairing === current) this.#closePairing();
		}, 60_000);
	}

	/**
	 * This device's word for the rooms it holds, for a device being linked
	 * (GrantVouch): the largest first, as many as a grant carries. The new
	 * device fetches those rooms without checking again the signatures this
	 * device checked.
	 */
	#vouches(): GrantVouch[] {
		const largest = [...this.#docSessions.values()]
			.filter((session) => session.isLoaded && session.doc.size > 0)
			.sort((a, b) => b.doc.size - a.doc.size)
			.slice(0, MAX_GRANT_VOUCHES);
		return fitVouches(
			largest.map((session) => {
				const { stateVector, digest } = session.doc.vouchFor();
				return { room: session.roomId, sv: toBase64Url(stateVector), digest };
			})
		);
	}

	/** Rooms the device that linked this one vouched for, until each is opened. */
	#vouched = new Map<RoomId, Vouch>();

	/**
	 * The history handed to a device being linked (../link/history.ts): every
	 * conversation whose view is settled, most recent first, as one document
	 * encrypted under a fresh key and uploaded to the relay under the vault
	 * room. Resolves with its manifest (key included), or null when there is
	 * nothing to hand over or the relay cannot take it.
	 */
	async #prepareHistory(): Promise<FileManifest | null> {
		const keyring = this.#keyring;
		const blobs = this.#blobs;
		if (!keyring || !blobs) return null;
		try {
			const sessions = [...this.#sessions.values()].sort((a, b) => b.lastActivity - a.lastActivity);
			const views: HistoryView[] = [];
			for (const session of sessions) {
				const view = await session.settledView();
				if (view) views.push({ room: session.roomId, ...view });
			}
			const { bytes, rooms } = encodeHistory(views);
			if (rooms === 0) return null;
			const vaultRoom = vaultRoomId(keyring.accountKey);
			return await uploadHistory(
				blobs,
				vaultRoom,
				await deriveRoomCapability(keyring.accountKey, vaultRoom),
				bytes
			);
		} catch (error) {
			console.warn('kith:link the history could not be prepared for the new device', error);
			return null;
		}
	}

	/** The history the device that linked this one handed over, by room; null once spent or failed. */
	#handedOver: Promise<Map<RoomId, HistoryView> | null> | null = null;

	async #fetchHistory(manifest: FileManifest): Promise<Map<RoomId, HistoryView> | null> {
		const blobs = this.#blobs;
		if (!blobs) return null;
		try {
			const views = await within(downloadHistory(blobs, manifest), HISTORY_FETCH_WAIT_MS);
			if (!views) throw new Error('it did not arrive in time');
			return views;
		} catch (error) {
			console.warn('kith:link the handed-over history is not used', error);
			return null;
		}
	}

	/** A conversation's handed-over view (once: later opens read the local snapshot). */
	async #takeHandedOver(roomId: RoomId): Promise<HistoryView | null> {
		const views = this.#handedOver ? await this.#handedOver : null;
		const view = views?.get(roomId) ?? null;
		views?.delete(roomId);
		return view;
	}

	/** Close the link (the dialog closed): a device opening it now gets no answer. */
	cancelLinking(): void {
		if (this.linking?.state === 'linked' && this.#pairing) {
			this.linking = null;
			return; // closes itself once the answer is surely out
		}
		this.#closePairing();
		this.linking = null;
	}

	#closePairing(): void {
		const current = this.#pairing;
		if (!current) return;
		this.#pairing = null;
		clearTimeout(current.timer);
		current.channel.close();
	}

	#joinLink: {
		pairing: Pairing;
		channel: PairingChannel;
		keys: { seed: Uint8Array; dhSecret: Uint8Array };
		device: string;
		confirmed: boolean;
		grant: { message: Parameters<typeof openGrant>[1]; signer: string } | null;
	} | null = null;

	/**
	 * The /link page on a browser without an account: make this device's
	 * keys, ask the device that made the link, and show the code. Throws
	 * PairingError (a malformed or expired link) with a message for a person.
	 */
	async beginDeviceLink(fragment: string, name: string): Promise<void> {
		if (this.#stored) {
			throw new PairingError(
				'This browser already has a Kith account. To link it to another one, sign out and erase it first.'
			);
		}
		const relayUrl = this.#options.relayUrl;
		if (!relayUrl) throw new PairingError('Linking a device needs the relay: it is how they meet.');
		const pairing = parsePairingFragment(fragment);
		this.joiningAsDevice = { state: 'connecting' };
		const keys = newDeviceKeys();
		const signer = await createSigner(keys.seed);
		const device = toBase64Url(signer.publicKey);
		const channel = new PairingChannel(
			relayUrl,
			pairingRoom(pairing.secret),
			signer,
			(message, from) => {
				const current = this.#joinLink;
				if (current?.channel !== channel || message.type !== 'link-grant') return;
				if (message.to !== device || from !== pairing.device) return;
				current.grant = { message, signer: from };
				void this.#finishDeviceLink();
			}
		);
		this.#joinLink?.channel.close();
		this.#joinLink = { pairing, channel, keys, device, confirmed: false, grant: null };
		await channel.send({
			type: 'link-request',
			v: 1,
			device,
			dh: toBase64Url(dhPublicKey(keys.dhSecret)),
			name: name.slice(0, 64) || 'Browser',
			at: Date.now()
		});
		this.joiningAsDevice = {
			state: 'confirm',
			code: linkCode(pairing.secret, pairing.device, device)
		};
	}

	/** The user saw the same code on both devices (this new one's side). */
	confirmDeviceLink(): void {
		const current = this.#joinLink;
		const state = this.joiningAsDevice;
		if (!current || state?.state !== 'confirm') return;
		current.confirmed = true;
		this.joiningAsDevice = { state: 'waiting', code: state.code };
		void this.#finishDeviceLink();
	}

	/** Both confirmed: become a device of the account and open it. */
	async #finishDeviceLink(): Promise<void> {
		const current = this.#joinLink;
		if (!current?.confirmed || !current.grant || this.#stored) return;
		try {
			const { roomId } = pairingRoom(current.pairing.secret);
			const secrets = await openGrant(
				roomId,
				current.grant.message,
				{ device: current.device, dhSecret: current.keys.dhSecret },
				current.grant.signer,
				current.pairing.device
			);
			// Fetched while the account is restored and opened; conversations wait for it.
			this.#handedOver = secrets.history ? this.#fetchHistory(secrets.history) : null;
			const restored = await restoreAccount(
				{
					masterSeed: null,
					userId: secrets.user as UserId,
					sskCert: secrets.sskCert,
					sskSeed: fromBase64Url(secrets.ssk),
					accountKey: fromBase64Url(secrets.account) as SecretKey
				},
				{ passphraseCost: this.#options.passphraseCost, device: current.keys }
			);
			if (this.#stored) return;
			await this.#store.put(KEYRING_KEY, restored.stored);
			this.#stored = restored.stored;
			this.#vouched = new Map(
				(secrets.vouches ?? []).map((v) => [
					v.room as RoomId,
					{ stateVector: decodeStateVector(fromBase64Url(v.sv)), digest: v.digest }
				])
			);
			current.channel.close();
			this.#joinLink = null;
			this.joiningAsDevice = null;
			await this.#open(restored.keyring);
		} catch (error) {
			this.joiningAsDevice = {
				state: 'failed',
				message:
					error instanceof Error ? error.message : 'This device could not be linked. Try again.'
			};
		}
	}

	/** Throws WrongPassphraseError (by name) on a bad passphrase; nothing changes. */
	async unlock(passphrase: string): Promise<void> {
		if (!this.#stored) throw new Error('There is no account on this device.');
		const keyring = await unlockKeyring(this.#stored, passphrase);
		await this.#open(keyring);
	}

	acknowledgeRecoveryKey(): void {
		this.recoveryKey = null;
		this.recoveryKeyReplaced = false;
	}

	dismissAlert(): void {
		this.alert = null;
	}

	#alertTimer: ReturnType<typeof setTimeout> | null = null;

	/** Show `message`; a transient one (it mends itself) goes by itself after a while. */
	#showAlert(message: string, transient = false): void {
		this.alert = message;
		if (this.#alertTimer) clearTimeout(this.#alertTimer);
		this.#alertTimer = transient
			? setTimeout(() => {
					this.#alertTimer = null;
					if (this.alert === message) this.alert = null;
				}, TRANSIENT_ALERT_MS)
			: null;
	}

	conversation(id: string): ConversationSession | undefined {
		return this.#sessions.get(id as ConversationId);
	}

	/** Made on the first search, kept up to date before each one; memory only. */
	#search: MessageSearch | null = null;
	#indexTimer: ReturnType<typeof setTimeout> | null = null;
	/** While the search index is being made: messages indexed, of how many; else null. */
	searchIndexing = $state<{ indexed: number; total: number } | null>(null);
	/** Bumped as indexing goes on, so results on screen are searched again. */
	searchRevision = $state(0);

	/** Indexes for at most SEARCH_SLICE_MS; true when the index is up to date. */
	#indexSlice(index: MessageSearch): boolean {
		const deadline = performance.now() + SEARCH_SLICE_MS;
		for (const session of this.#sessions.values()) {
			if (!index.update(session.searchSource, deadline)) return false;
		}
		for (const id of index.conversations()) {
			if (!this.#sessions.has(id as ConversationId)) index.remove(id);
		}
		return true;
	}

	/** Goes on indexing in slices between other work, until the index is up to date. */
	#keepIndexing(index: MessageSearch): void {
		if (this.#indexTimer) return;
		let slices = 0;
		const step = () => {
			this.#indexTimer = null;
			const done = this.#indexSlice(index);
			slices++;
			this.searchIndexing = done
				? null
				: index.progress([...this.#sessions.values()].map((s) => s.searchSource));
			// Results on screen are searched again now and then, and once at the end.
			if (done || slices % 8 === 0) this.searchRevision++;
			if (!done) this.#indexTimer = setTimeout(step, 0);
		};
		this.#indexTimer = setTimeout(step, 0);
	}

	/**
	 * Messages of every conversation that match all words of `query`, best
	 * first. The index is brought up to date with what the conversations hold
	 * now, for a slice of time: a big history is indexed in the background
	 * (`searchIndexing`), and callers search again when `searchRevision` or
	 * `conversations` changes.
	 */
	search(query: string): SearchHit[] {
		if (query.trim() === '') return [];
		const index = (this.#search ??= new MessageSearch());
		if (!this.#indexSlice(index)) this.#keepIndexing(index);
		const hits: SearchHit[] = [];
		for (const hit of index.search(query)) {
			const session = this.#sessions.get(hit.conversation as ConversationId);
			if (!session) continue;
			hits.push({
				conversation: session.id,
				conversationName: session.name,
				message: hit.message,
				authorName: session.authorName(hit.author),
				text: hit.text,
				time: hit.time,
				terms: hit.terms
			});
		}
		return hits;
	}

	/**
	 * Messages of every conversation that mention the user, newest first.
	 * Callers ask again when `conversations` changes.
	 */
	mentions(): MentionHit[] {
		const hits: MentionHit[] = [];
		for (const session of this.#sessions.values()) {
			for (const m of session.mentionsOfMe()) {
				hits.push({
					conversation: session.id,
					conversationName: session.name,
					message: m.id,
					authorName: session.authorName(m.author),
					text: m.text,
					time: m.hlc.wall
				});
			}
		}
		return hits.sort((a, b) => b.time - a.time);
	}

	async createConversation(name: string): Promise<ConversationId> {
		if (this.phase !== 'ready') await this.#whenReady;
		const trimmed = name.trim();
		if (!trimmed) throw new Error('Enter a name for the conversation.');
		if (trimmed.length > 100) throw new Error('Keep the name under 100 characters.');
		const entry = newConversationEntry(trimmed, 'group', this.#keyring?.identity.userId);
		await this.#changeVault((vault) => vault.addConversation(entry));
		this.#syncConversations();
		return entry.id;
	}

	// ---- invitations ---------------------------------------------------------

	/**
	 * Make an invite link for a conversation (DESIGN: Invitations). The
	 * invitation is recorded in the conversation, so any admin device that is
	 * online admits the joiner; its secret opens the invite room where join
	 * requests and admissions meet.
	 */
	async makeInvite(id: string): Promise<{ id: string; link: string; qr: string; expires: number }> {
		const keyring = this.#keyring;
		const session = this.#sessions.get(id as ConversationId);
		if (!keyring || !session) throw new Error('This conversation is not open.');
		if (session.kind === 'notes') throw new Error('Notes to self has no other members.');
		await this.#ensureInRoster(session);
		if (!session.canAdmit) {
			throw new Error('Only the owner and admins of this conversation can invite.');
		}
		const created = await createInvitation({
			signer: keyring.deviceSigner,
			inviterUser: keyring.identity.userId,
			inviterName: this.displayName || 'Someone',
			conversationName: session.name,
			appUrl: this.#appUrl()
		});
		await session.recordInvite({
			invite: created.invitation.id as string as OpId,
			secret: toBase64Url(created.secret),
			expires: created.invitation.expires
		});
		await this.#watchInvites();
		return {
			id: created.invitation.id as string,
			link: created.link,
			qr: inviteQrDataUrl(created.link),
			expires: created.invitation.expires
		};
	}

	/** Revoke an invite link of a conversation: no device lets anyone in with it any more. */
	async revokeInvite(conversation: string, invite: string): Promise<void> {
		const session = this.#sessions.get(conversation as ConversationId);
		if (!session) throw new Error('This conversation is not open.');
		await session.revokeInvite(invite);
	}

	/** What an invite link says, checked (signature, expiry). Throws a user-facing error. */
	async previewInvite(link: string): Promise<{
		id: string;
		conversationName: string;
		inviterName: string;
		expires: number;
	}> {
		const { invitation } = await parseInviteLink(link);
		return {
			id: invitation.id,
			conversationName: invitation.conversation.name,
			inviterName: invitation.inviter.name,
			expires: invitation.expires
		};
	}

	/**
	 * Ask to join with an invite link. Returns at once; `joins[id]` is
	 * 'waiting' until a member's device admits this one, then 'joined'.
	 */
	async join(link: string): Promise<string> {
		const keyring = this.#keyring;
		if (!keyring) throw new Error('The account is not open.');
		const { invitation, secret } = await parseInviteLink(link);
		const pending = await this.#pendingJoins();
		if (!pending.some((p) => p.invite === invitation.id)) {
			await this.#store.put(PENDING_JOINS_KEY, [...pending, { invite: invitation.id, link }]);
		}
		await this.#startJoin(invitation, secret);
		return invitation.id;
	}

	#appUrl(): string {
		return typeof location === 'undefined' ? 'http://localhost:8787' : location.origin;
	}

	async #pendingJoins(): Promise<Array<{ invite: string; link: string }>> {
		return (
			(await this.#store.get<Array<{ invite: string; link: string }>>(PENDING_JOINS_KEY)) ?? []
		);
	}

	async #resumeJoins(): Promise<void> {
		for (const { invite, link } of await this.#pendingJoins()) {
			try {
				const { invitation, secret } = await parseInviteLink(link);
				await this.#startJoin(invitation, secret);
			} catch (error) {
				// Expired or damaged: forget it.
				console.warn('kith:join dropped a pending join', error);
				await this.#forgetJoin(invite);
			}
		}
	}

	async #forgetJoin(invite: string): Promise<void> {
		const pending = await this.#pendingJoins();
		await this.#store.put(
			PENDING_JOINS_KEY,
			pending.filter((p) => p.invite !== invite)
		);
	}

	async #startJoin(invitation: Invitation, secret: Uint8Array): Promise<void> {
		const keyring = this.#keyring;
		if (!keyring) return;
		const inviteId = invitation.id as string;
		if (this.joins[inviteId]?.state === 'joined') return;
		this.joins = { ...this.joins, [inviteId]: { state: 'waiting' } };
		const room = await deriveInviteRoom(secret);
		const { identity } = keyring;
		const session = this.#openInviteRoom(room.roomId, room.key, (message, signer) => {
			if (message.type !== 'admit' || message.to !== identity.deviceId) return;
			void this.#acceptAdmission(message, invitation, signer, keyring);
		});
		await session.loaded;
		// One request per device: it is kept in the invite room until admitted.
		if (!this.#sentJoin.has(inviteId)) {
			this.#sentJoin.add(inviteId);
			const request = joinRequest(identity, inviteId, this.displayName);
			await session.commit({ epoch: 0, key: room.key, plaintexts: [encodeInviteMessage(request)] });
		}
	}

	readonly #sentJoin = new Set<string>();

	/**
	 * Anyone holding the invite link can write to the invite room, so an
	 * admission is a claim. One signed by the inviter's device (named in the
	 * signed invitation) is taken at its word; one from another device is
	 * taken too (any admin may admit), but the conversation stays unconfirmed
	 * until it shows the invitation recorded by the inviter's device, and the
	 * user is warned if it does not (ConversationSession.expectInvite).
	 */
	async #acceptAdmission(
		message: Extract<InviteMessage, { type: 'admit' }>,
		invitation: Invitation,
		signer: string,
		keyring: UnlockedKeyring
	): Promise<void> {
		const inviteId = invitation.id as string;
		if (this.joins[inviteId]?.state === 'joined') return;
		try {
			const secret = await openAdmission(message, keyring.dhSecret, inviteId as InviteId);
			const admitted = admittedEntry(secret, invitation, signer);
			const id = admitted.id;
			if (!this.#vault?.conversations().some((held) => held.id === id)) {
				await this.#changeVault((vault) => vault.addConversation(admitted));
			}
			await this.#syncConversations();
			this.joins = { ...this.joins, [inviteId]: { state: 'joined', conversationId: id } };
			await this.#forgetJoin(inviteId);
		} catch (error) {
			console.warn('kith:join an admission could not be opened', error);
		}
	}

	/** Open (once) an invite room's doc and its relay connection; `onMessage` sees each message. */
	#openInviteRoom(
		roomId: RoomId,
		key: Uint8Array,
		onMessage: (message: InviteMessage, signer: string) => void
	): DocSession {
		const existing = this.#inviteRooms.get(roomId);
		if (existing) return existing;
		const session = this.#docSession(roomId);
		this.#inviteRooms.set(roomId, session);
		session.onEntries((entries) => {
			for (const entry of entries) {
				void openInviteEntry(entry.bytes, roomId, key).then(
					({ message, signer }) => onMessage(message, signer),
					(error: unknown) =>
						console.warn('kith:invite dropped an unreadable or malformed entry', error)
				);
			}
		});
		this.#net?.attach(roomId, session, key);
		return session;
	}

	/**
	 * Leader, member side: watch the invite room of every live invitation in
	 * conversations this device may admit to, and admit each joiner whose
	 * request checks out (not expired; certified device).
	 */
	async #watchInvites(): Promise<void> {
		const keyring = this.#keyring;
		if (!keyring || !this.#tabs?.isLeader) return;
		for (const session of this.#sessions.values()) {
			if (session.kind === 'notes' || !session.canAdmit) continue;
			for (const invite of session.invites()) {
				let room;
				try {
					room = await deriveInviteRoom(fromBase64Url(invite.secret));
				} catch {
					continue;
				}
				if (this.#inviteRooms.has(room.roomId)) continue;
				const key = room.key;
				const inviteRoom: DocSession = this.#openInviteRoom(
					room.roomId,
					key,
					joinRequestWatcher(invite.invite, (request, admitted) => {
						void this.#admit(session, request, { session: inviteRoom, key }, admitted).catch(
							(error: unknown) => console.warn('kith:invite could not admit a joiner', error)
						);
					})
				);
			}
		}
	}

	async #admit(
		session: ConversationSession,
		request: JoinRequest,
		room: { session: DocSession; key: Uint8Array },
		admitted: Set<string>
	): Promise<void> {
		const keyring = this.#keyring;
		const entry = this.#vault?.conversations().find((c) => c.id === session.id);
		if (!keyring || !entry || !this.#tabs?.isLeader) return;
		await admitJoinRequest(request, admitted, {
			entry,
			creator: keyring.identity.userId,
			stillInvited: (invite) => session.invites().some((live) => live.invite === invite),
			addMember: (member) => session.addMember(member),
			post: (plaintext) => room.session.commit({ epoch: 0, key: room.key, plaintexts: [plaintext] })
		});
	}

	// ---- opening -----------------------------------------------------------

	async #open(keyring: UnlockedKeyring, newAccountName?: string): Promise<void> {
		this.#keyring = keyring;
		// With a cached list to show, Automerge's wasm (a fetch and a compile that
		// compete for the CPU) waits until that first screen is painted; without
		// one it compiles while the tab lock is taken and the vault's envelopes
		// are read from storage, not after.
		const previewing = this.phase === 'starting' ? this.#showPreview(keyring) : null;
		const vaultOpening = (previewing ?? Promise.resolve(false))
			.then((shown) => (shown ? afterPaint() : undefined))
			.then(() => Vault.open());
		const tabs = new TabCoordinator(keyring.identity.userId);
		this.#tabs = tabs;
		await tabs.start();
		tabs.setInsertHandler((room, request, onSealed) =>
			this.#docSession(room as RoomId).sealAndInsert(request, keyring.deviceSigner, onSealed)
		);
		tabs.onUpdate((room, update) => this.#docSessions.get(room as RoomId)?.applyFromTab(update));
		tabs.onErase(() => {
			this.#stop('erased');
			void this.#release();
		});
		const net = new NetHub({
			tabs,
			relayUrl: this.#options.relayUrl ?? null,
			device: keyring.identity.deviceId,
			onRefused: (room, refusal) => {
				if (refusal.code === 'room-retired' && this.#retiredAtRelay(room)) return;
				if (refusal.code === 'room-retired' && room === this.#vaultSession?.roomId) {
					// The vault room is retired only when a device removal moved every
					// remaining device out of it: this one was not among them.
					void this.#removedHere();
					return;
				}
				// The vault is not a conversation: the relay's sentence for a full room would mislead.
				const message =
					refusal.code === 'room-quota' && room === this.#vaultSession?.roomId
						? 'Your account’s data is full on the relay: changes are kept on this device.'
						: refusal.message;
				// The relay's name for the reason goes with the sentence (what to tell an operator).
				this.#showAlert(`${message} (${refusal.code})`, isTransientRefusal(refusal.code));
			},
			onStatusChange: () => this.#updateConnection(),
			onLanPeers: () => this.#showLanPeers(),
			...(this.media ? { chunks: this.media.store } : {}),
			onPeersChange: () => this.media?.peersChanged()
		});
		this.#net = net;
		// Files: downloads ask the conversations' direct peers; sends go to them when the relay is away.
		if (this.media) {
			this.media.peers = net;
			this.media.rooms = (roomId) => {
				for (const session of this.#sessions.values()) {
					if (session.roomId === roomId) return session.mediaRoom();
				}
				return null;
			};
		}
		void this.#loadLanPeers();
		tabs.onBecomeLeader(async () => {
			for (const session of this.#docSessions.values()) await session.becomeWriter();
			await net.becomeLeader();
			void this.#loadLanPeers();
			for (const session of this.#sessions.values()) void this.#ensureInRoster(session);
		});

		const vaultSession = this.#docSession(vaultRoomId(keyring.accountKey));
		this.#vaultSession = vaultSession;
		net.attach(vaultSession.roomId, vaultSession, keyring.accountKey);
		// Vault entries are applied in order, after the vault itself exists.
		this.#vaultIngested = vaultOpening.then((opened) => {
			this.#vault = opened;
		});
		vaultSession.onEntries((entries) =>
			this.#ingestVault(vaultSession, keyring.accountKey, entries)
		);
		await vaultSession.loaded;
		await this.#vaultIngested;
		const vault = await vaultOpening;

		if (newAccountName !== undefined) {
			const notes = newConversationEntry('Notes to self', 'notes', keyring.identity.userId);
			await this.#changeVault((vault) => vault.initialise(newAccountName, notes));
		}
		this.displayName = vault.displayName;
		// This device among the account's devices (Settings → Devices), and when it was last seen.
		// The change is made at once; its commit is not waited for: the conversations open meanwhile.
		const deviceName = deviceNameFrom(typeof navigator === 'undefined' ? '' : navigator.userAgent);
		void this.#changeVault((v) =>
			v.noteDevice(keyring.identity.deviceId, deviceName, Date.now(), keyring.identity.dhPublic)
		).catch((error: unknown) => console.warn('kith:devices could not note this device', error));
		await this.#syncConversations();
		if (this.#removed) {
			// The relay refused the vault room as retired while the account opened.
			this.#stop('removed');
			await this.#release();
			return;
		}
		this.phase = 'ready';
		this.preview = false;
		this.#readyNow();
		void requestPersistentStorage();
		void this.#loadPushSettings();
		void this.#resumeJoins();
		// Lives as long as the tab: the app is never torn down while the page is open.
		setInterval(() => void this.#watchInvites(), INVITE_SCAN_MS);
		void this.#watchInvites();
		if (typeof document !== 'undefined') {
			document.addEventListener('visibilitychange', () => {
				if (document.visibilityState === 'hidden') {
					void this.#writeReadPositions();
					void this.#snapshotAll();
				}
			});
		}
	}

	#vaultIngested: Promise<void> = Promise.resolve();

	#readyNow: () => void = () => undefined;
	/** Resolves when the account is open (phase "ready"). */
	readonly #whenReady = new Promise<void>((resolve) => (this.#readyNow = resolve));

	/** The list as last shown, from the local cache, while the account opens (`preview`). Whether it shows. */
	async #showPreview(keyring: UnlockedKeyring): Promise<boolean> {
		try {
			const cached = await loadSnapshot<ListSnapshot>(this.#store, keyring.localKey, LIST_SNAPSHOT);
			const data = cached?.data;
			if (!data || this.phase !== 'starting' || this.conversations.length > 0) return false;
			if (!Array.isArray(data.conversations) || typeof data.displayName !== 'string') return false;
			this.displayName = data.displayName;
			this.conversations = data.conversations;
			this.preview = true;
			return true;
		} catch (error) {
			console.warn('kith:preview the cached list could not be read', error);
			return false;
		}
	}

	#listSaved = '';
	#listTimer: ReturnType<typeof setTimeout> | null = null;

	/** Keep the list as shown (encrypted under the device-local key) for the next start's preview. */
	#saveListSoon(): void {
		if (this.#listTimer) return;
		this.#listTimer = setTimeout(() => {
			this.#listTimer = null;
			const keyring = this.#keyring;
			if (!keyring || this.phase !== 'ready') return;
			const data: ListSnapshot = {
				displayName: this.displayName,
				conversations: this.conversations
			};
			const json = JSON.stringify(data);
			if (json === this.#listSaved) return;
			this.#listSaved = json;
			void saveSnapshot(
				this.#store,
				keyring.localKey,
				LIST_SNAPSHOT,
				new Uint8Array(0),
				data
			).catch((error: unknown) => console.warn('kith:preview the list could not be cached', error));
		}, LIST_SAVE_MS);
	}

	#ingestVault(session: DocSession, key: SecretKey, entries: EnvelopeEntry[]): void {
		this.#vaultIngested = this.#vaultIngested.then(async () => {
			const vault = this.#vault;
			if (!vault || this.#vaultSession !== session) return;
			const changes: Uint8Array[] = [];
			const moves: VaultMove[] = [];
			for (const entry of entries) {
				try {
					const opened = await openEnvelope(entry.bytes, {
						roomId: session.roomId,
						keyForEpoch: (epoch) => (epoch === 0 ? key : undefined),
						verified: true
					});
					const move = decodeVaultMove(opened.plaintext);
					if (move) moves.push(move);
					else changes.push(...decodeVaultChanges(opened.plaintext));
				} catch (error) {
					console.warn('kith:vault refused an entry', error);
					this.alert = 'Some account data could not be read and was skipped.';
				}
			}
			if (vault.applyChanges(changes)) {
				this.displayName = vault.displayName;
				void this.#syncConversations();
			}
			for (const move of moves) await this.#takeMove(move);
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
			const vouch = this.#vouched.get(roomId);
			if (vouch) {
				this.#vouched.delete(roomId);
				session.doc.vouch(vouch);
			}
			this.#docSessions.set(roomId, session);
		}
		return session;
	}

	/** Make sure every conversation in the vault has a running session. */
	async #syncConversations(): Promise<void> {
		const vault = this.#vault;
		const keyring = this.#keyring;
		if (!vault || !keyring) return;
		this.#updateSettings(vault);
		this.#updateVerified(vault);
		this.#updateBlocked(vault);
		this.devices = vault.devices();
		const opening: Promise<void>[] = [];
		for (const entry of vault.conversations()) {
			const existing = this.#sessions.get(entry.id);
			if (existing && existing.roomId !== entry.roomId) {
				// Moved to a new generation (here, in another tab or on another device).
				this.#sessions.delete(entry.id);
				existing.close();
			} else if (existing) {
				existing.name = entry.name;
				// Read on another device of the account: unread here goes too.
				existing.setReadMark(vault.readPosition(null, entry.id));
				continue;
			}
			opening.push(this.#openConversation(entry, keyring, vault));
		}
		await Promise.all(opening);
		this.#scheduleSummaries();
		this.#schedulePush();
	}

	// ---- push notifications ------------------------------------------------------

	/** Verified contacts from the vault: user id → their safety-number half then. */
	#verified: ReadonlyMap<string, string> = new Map();

	#updateVerified(vault: Vault): void {
		const next = vault.verifiedContacts();
		const same =
			next.size === this.#verified.size &&
			[...next].every(([user, half]) => this.#verified.get(user) === half);
		if (same) return;
		this.#verified = next;
		for (const session of this.#sessions.values()) session.verificationChanged();
	}

	/** The safety number of this account and a member of a conversation, and its QR code. */
	safetyNumber(
		conversation: string,
		user: string
	): { digits: string; qr: string; devices: string[] } | null {
		const session = this.#sessions.get(conversation as ConversationId);
		const digits = session?.safetyNumberWith(user);
		if (!session || !digits) return null;
		// Each device of theirs this conversation knows, by a short fingerprint of its key.
		const devices = [...(session.roster.member(user)?.devices.keys() ?? [])].map((device) =>
			(device.slice(0, 16).match(/.{4}/g) ?? []).join(' ')
		);
		return { digits, qr: inviteQrDataUrl(safetyQrText(digits)), devices };
	}

	/** Marks a member as verified at their current keys (or clears it), on all this account's devices. */
	async setVerified(conversation: string, user: string, verified: boolean): Promise<void> {
		const session = this.#sessions.get(conversation as ConversationId);
		const half = verified ? session?.safetyHalf(user) : null;
		if (half === '' || half === undefined) throw new Error('This person is not a member here.');
		await this.#changeVault((vault) => vault.setVerified(user, half));
		if (this.#vault) this.#updateVerified(this.#vault);
	}

	/** The per-conversation settings from the vault (muted, pinned, archived), as sets of ids. */
	#updateSettings(vault: Vault): void {
		const conversations = vault.conversations();
		const ids = (flag: 'muted' | 'pinned' | 'archived') =>
			new Set(conversations.flatMap((c) => (c[flag] ? [c.id as string] : [])));
		const same = (a: ReadonlySet<string>, b: ReadonlySet<string>) =>
			a.size === b.size && [...a].every((id) => b.has(id));
		const muted = ids('muted');
		const pinned = ids('pinned');
		const archived = ids('archived');
		if (!same(muted, this.muted)) this.muted = muted;
		if (!same(pinned, this.#pinned) || !same(archived, this.#archived)) {
			this.#pinned = pinned;
			this.#archived = archived;
			this.#scheduleSummaries();
		}
	}

	#updateBlocked(vault: Vault): void {
		const blocked = vault.blockedUsers();
		const same =
			blocked.size === this.blocked.size &&
			[...blocked].every(([user, name]) => this.blocked.get(user) === name);
		if (same) return;
		this.blocked = blocked;
		for (const session of this.#sessions.values()) session.blockedChanged();
	}

	/**
	 * Block someone (their messages show as hidden, without their content,
	 * in every conversation and on every device of the account), or unblock
	 * them. They are not told.
	 */
	async setBlocked(user: string, name: string, blocked: boolean): Promise<void> {
		if (user === this.#keyring?.identity.userId) throw new Error('You cannot block yourself.');
		await this.#changeVault((vault) => vault.setBlocked(user, blocked ? name : null));
		if (this.#vault) this.#updateBlocked(this.#vault);
	}

	#pinned: ReadonlySet<string> = new Set();
	#archived: ReadonlySet<string> = new Set();

	async setMuted(id: string, muted: boolean): Promise<void> {
		await this.#changeVault((vault) => vault.setMuted(id as ConversationId, muted));
		if (this.#vault) this.#updateSettings(this.#vault);
		this.#schedulePush();
	}

	/** Pin a conversation to the top of the list (or unpin it), on every device of the account. */
	async setPinned(id: string, pinned: boolean): Promise<void> {
		await this.#changeVault((vault) => vault.setPinned(id as ConversationId, pinned));
		if (this.#vault) this.#updateSettings(this.#vault);
	}

	/** Move a conversation out of the main list into "Archived" (or back), on every device. */
	async setArchived(id: string, archived: boolean): Promise<void> {
		await this.#changeVault((vault) => vault.setArchived(id as ConversationId, archived));
		if (this.#vault) this.#updateSettings(this.#vault);
	}

	/**
	 * Reach a `kith serve` on the LAN at the address it printed, and keep it
	 * (this device only). Throws an Error with a message for the user: a bad
	 * address, or a peer that could not be reached (then nothing is kept).
	 */
	async connectLanPeer(text: string): Promise<void> {
		const net = this.#net;
		if (!net) throw new Error('Kith is not running yet.');
		const address = await net.connectLanPeer(text);
		const saved = await this.#savedLanPeers();
		if (!saved.includes(address)) await this.#store.put(LAN_PEERS_KEY, [...saved, address]);
		await this.#loadLanPeers();
	}

	/** Stop reaching a LAN peer, and forget its address. */
	async forgetLanPeer(address: string): Promise<void> {
		const saved = await this.#savedLanPeers();
		await this.#store.put(
			LAN_PEERS_KEY,
			saved.filter((a) => a !== address)
		);
		await this.#net?.forgetLanPeer(address);
		await this.#loadLanPeers();
	}

	async #savedLanPeers(): Promise<string[]> {
		const saved = await this.#store.get<unknown>(LAN_PEERS_KEY).catch(() => undefined);
		return Array.isArray(saved) ? saved.filter((a): a is string => typeof a === 'string') : [];
	}

	async #loadLanPeers(): Promise<void> {
		this.#lanAddresses = await this.#savedLanPeers();
		this.#net?.keepLanPeers(this.#lanAddresses);
		this.#showLanPeers();
	}

	#showLanPeers(): void {
		const net = this.#net;
		this.lanPeers = this.#lanAddresses.map((address) => ({
			address,
			connected: net?.lanPeerConnected(address) ?? false
		}));
	}

	async #loadPushSettings(): Promise<void> {
		const saved = await this.#store.get<{ enabled: boolean; private: boolean }>(PUSH_SETTINGS_KEY);
		this.notifications = saved?.enabled === true;
		this.privateNotifications = saved?.private === true;
		this.#schedulePush();
	}

	async #savePushSettings(): Promise<void> {
		await this.#store.put(PUSH_SETTINGS_KEY, {
			enabled: this.notifications,
			private: this.privateNotifications
		});
	}

	/**
	 * Turn notifications on (asks for permission, subscribes, registers this
	 * device's rooms with the relay) or off (unsubscribes; the worker forgets
	 * its keys). Throws PushError with a message for the user.
	 */
	async setNotifications(on: boolean): Promise<void> {
		const relayUrl = this.#options.relayUrl;
		if (on) {
			if (!relayUrl) throw new PushError('Notifications need the Kith relay.');
			await subscribePush(relayUrl);
			this.notifications = true;
			await this.#savePushSettings();
			await this.#syncPush();
		} else {
			this.notifications = false;
			this.#pushRegistered = null;
			await this.#savePushSettings();
			await tellWorker({ type: 'kith-push-forget' });
			if (relayUrl) await unsubscribePush(relayUrl);
		}
	}

	// ---- signing out ------------------------------------------------------------

	/**
	 * Signs this device out and erases it. First this device's push
	 * subscription leaves the relay (and the browser); then every other tab of
	 * the profile stops; then every IndexedDB database of the app (keys,
	 * conversations, the vault, media, push keys), Cache Storage other than the
	 * app shell, and the app's web storage are deleted. The other devices of
	 * the account and the conversations' other members are not affected.
	 * Resolves whether the relay confirmed the subscription was removed (false:
	 * it could not be reached; it forgets the subscription when the push
	 * service reports it gone, which it will, since the browser dropped it).
	 * Callers reload afterwards.
	 */
	// ---- removing a device --------------------------------------------------------

	/**
	 * The master key: held here, or from the recovery key the user typed
	 * (checked against the account's current master key: a replaced one is
	 * refused as such).
	 */
	#masterSeed(recoveryKey: string | undefined, why: string): Uint8Array {
		const keyring = this.#keyring;
		if (!keyring) throw new Error('The account is not open.');
		if (keyring.masterSeed) return keyring.masterSeed;
		if (!recoveryKey?.trim()) throw new Error(`Enter your recovery key ${why}.`);
		const masterSeed = decodeRecoveryKey(recoveryKey);
		const key = toBase64Url(ed25519PublicKey(masterSeed));
		const { userId, sskCert } = keyring.identity;
		if (key !== sskCert.signer) {
			throw new Error(
				mastersOf(userId, sskCert).includes(key)
					? 'This recovery key was replaced by a newer one and no longer works.'
					: 'This recovery key is not this account’s.'
			);
		}
		return masterSeed;
	}

	/**
	 * Every device of the account and its X25519 key (this one included):
	 * from the device list, and from the rosters for devices that have not
	 * noted theirs there.
	 */
	#accountDevices(): Map<string, string> {
		const keyring = this.#keyring;
		const vault = this.#vault;
		if (!keyring || !vault) throw new Error('The account is not open.');
		const me = keyring.identity;
		const devices = new Map<string, string>();
		for (const device of vault.devices()) if (device.dh) devices.set(device.id, device.dh);
		for (const conversation of this.#sessions.values()) {
			for (const [device, dh] of conversation.roster.member(me.userId)?.devices ?? []) {
				if (!devices.has(device)) devices.set(device, dh);
			}
		}
		devices.set(me.deviceId, me.dhPublic);
		return devices;
	}

	/**
	 * Write a vault move (docs/protocol.md §8d) and wait until this device
	 * took it (false: not yet, after a few seconds; it will): the relay drops
	 * the vault room being left once every device in `remaining` has moved.
	 * Throws only when the move could not be written.
	 */
	async #writeMove(move: VaultMove, remaining: ReadonlyMap<string, string>): Promise<boolean> {
		const keyring = this.#keyring;
		const session = this.#vaultSession;
		if (!keyring || !session) throw new Error('The account is not open.');
		const adopted = new Promise<void>((resolve) => (this.#adopted = resolve));
		const oldRoom = session.roomId;
		const oldKey = keyring.accountKey;
		try {
			await session.commit({ epoch: 0, key: oldKey, plaintexts: [encodeVaultMove(move)] });
		} catch (error) {
			this.#reportWriteError(error);
			throw error;
		}
		const relayUrl = this.#options.relayUrl;
		if (relayUrl) {
			const tags = await Promise.all([...remaining.keys()].map((d) => movedTag(oldRoom, d)));
			await retireRoom(relayUrl, oldRoom, oldKey, tags, Date.now() + RETAIN_MS).catch(
				(error: unknown) => console.warn('kith:devices the old vault room stays for now', error)
			);
		}
		// This device takes its own move like every other (#takeMove), from this
		// tab's ingest queue (or, in a tab that is not the leader, once the
		// leader's write comes back): wait for it, a few seconds at most.
		await within(adopted, ADOPT_WAIT_MS);
		return this.#vaultSession?.roomId !== oldRoom;
	}

	/**
	 * Settings → Recovery key → "Make a new recovery key": a new master key
	 * replaces the one the current recovery key holds, which from then on
	 * certifies nothing that counts (certificates.ts `compareSsk`), opens no
	 * backup made after, and is refused where a recovery key is asked for. A
	 * vault move that removes nobody hands every device a new self-signing
	 * key (certified by the new master key, with the chain of master
	 * certificates) and a new account key, like a device removal; each
	 * conversation takes the new certificates. The new recovery key is shown
	 * once (`recoveryKey`). Returns it. Rejects when the current master key
	 * is neither here nor typed.
	 */
	async makeNewRecoveryKey(recoveryKey?: string): Promise<string> {
		const keyring = this.#keyring;
		if (!keyring || !this.#vault) throw new Error('The account is not open.');
		const masterSeed = this.#masterSeed(recoveryKey, 'to replace it: this device does not hold it');
		const me = keyring.identity;
		const remaining = this.#accountDevices();
		const successor = newSigningSeed();
		const { move } = await makeVaultMove(
			{ user: me.userId, masterSeed, chain: masterChain(me.sskCert), successor },
			remaining,
			[]
		);
		// Only a device that held the master key keeps the new one (#takeMove).
		this.#successor = keyring.masterSeed ? successor : null;
		try {
			await this.#writeMove(move, remaining);
		} catch (error) {
			this.#successor = null; // not written: the old key stays the account's
			throw error;
		}
		// Written: the new key is the account's from now on, so it is shown even
		// if this device has not taken the move yet (it will, keeping the key).
		const text = encodeRecoveryKey(successor);
		this.recoveryKeyReplaced = true;
		this.recoveryKey = text;
		return text;
	}

	/** The new master key, while this device replaces it and held the old one (#takeMove keeps it). */
	#successor: Uint8Array | null = null;

	/**
	 * Settings → Devices → "Remove NAME" (docs/protocol.md §8d). A new
	 * self-signing key, certified by the master key, and a new account key
	 * go to every other device in a lockbox, in a move written into the vault
	 * room being left; each remaining device (this one first) takes them, moves
	 * the vault to its new room and certifies itself again in every
	 * conversation, whose first owner or admin then opens a new generation
	 * without the removed device. The relay drops the old vault room once
	 * every remaining device left it. Rejects when the device is this one, is
	 * not the account's, or the master key is neither here nor typed.
	 */
	async removeDevice(deviceId: string, recoveryKey?: string): Promise<void> {
		const keyring = this.#keyring;
		const vault = this.#vault;
		const session = this.#vaultSession;
		if (!keyring || !vault || !session) throw new Error('The account is not open.');
		const me = keyring.identity;
		if (deviceId === me.deviceId) {
			throw new Error('To remove this device, use “Sign out and erase this device”.');
		}
		if (!vault.devices().some((d) => d.id === deviceId)) {
			throw new Error('That device is not one of this account’s.');
		}
		const masterSeed = this.#masterSeed(
			recoveryKey,
			'to remove a device: this device does not hold it'
		);
		const remaining = this.#accountDevices();
		remaining.delete(deviceId);
		const { move } = await makeVaultMove(
			{ user: me.userId, masterSeed, chain: masterChain(me.sskCert) },
			remaining,
			[deviceId]
		);
		if (!(await this.#writeMove(move, remaining))) {
			throw new Error('The device was removed, but this device has not taken the new keys yet.');
		}
	}

	/**
	 * A move read in the vault room: this device takes the new keys, or learns
	 * that it was removed. One not signed by the account's master key is
	 * dropped (a removed device cannot write one).
	 */
	async #takeMove(move: VaultMove): Promise<void> {
		const keyring = this.#keyring;
		if (!keyring || this.phase === 'removed' || this.phase === 'erased') return;
		let outcome: Awaited<ReturnType<typeof readVaultMove>>;
		try {
			outcome = await readVaultMove(move, {
				user: keyring.identity.userId,
				device: keyring.identity.deviceId,
				dhSecret: keyring.dhSecret,
				current: keyring.identity.sskCert
			});
		} catch (error) {
			console.warn('kith:devices dropped a vault move', error);
			return;
		}
		if (outcome.kind === 'removed') return this.#removedHere();
		if (outcome.kind !== 'adopt') return;
		const stored = this.#stored;
		const vault = this.#vault;
		const old = this.#vaultSession;
		const net = this.#net;
		const tabs = this.#tabs;
		if (!stored || !vault || !old || !tabs) return;
		const successor = this.#successor;
		const next = await adoptSelfSigning(stored, keyring, {
			...outcome.keys,
			...(successor ? { masterSeed: successor } : {})
		});
		const kept = next.keyring.masterSeed;
		if (successor && kept && toBase64Url(kept) === toBase64Url(successor)) this.#successor = null;
		if (tabs.isLeader) await this.#store.put(KEYRING_KEY, next.stored);
		this.#stored = next.stored;
		this.#keyring = next.keyring;
		const key = next.keyring.accountKey;
		const fresh = this.#docSession(vaultRoomId(key));
		fresh.onEntries((entries) => this.#ingestVault(fresh, key, entries));
		this.#vaultSession = fresh;
		net?.attach(fresh.roomId, fresh, key);
		net?.detach(old.roomId);
		this.#updateConnection();
		await fresh.loaded;
		if (tabs.isLeader) {
			// Every remaining device seeds the new room with the whole vault (Automerge
			// drops what it holds already), so it does not hang on one device.
			const all = vault.allChanges();
			for (let i = 0; i < all.length; i += VAULT_SEED_CHANGES) {
				await fresh.commit({
					epoch: 0,
					key,
					plaintexts: [encodeVaultChanges(all.slice(i, i + VAULT_SEED_CHANGES))]
				});
			}
			await this.#changeVault((v) => v.forgetDevices(outcome.removed));
			const relayUrl = this.#options.relayUrl;
			if (relayUrl) {
				const oldKey = keyring.accountKey;
				await movedTag(old.roomId, keyring.identity.deviceId)
					.then((tag) => reportMoved(relayUrl, old.roomId, oldKey, tag))
					.catch((error: unknown) =>
						console.warn('kith:devices could not tell the relay the vault moved', error)
					);
			}
			// Each conversation takes this device's new certificate; where this
			// account is the first owner or admin, the new generation opens now
			// (elsewhere that one does, as after a leave).
			for (const conversation of this.#sessions.values()) {
				void this.#ensureInRoster(conversation)
					.then(() => conversation.rotateIfNeeded())
					.catch((error: unknown) => this.#reportWriteError(error));
			}
		}
		this.#docSessions.delete(old.roomId);
		await old.close().catch(() => undefined);
		if (tabs.isLeader) await deleteDatabase(storageName(old.roomId), 0).catch(() => undefined);
		this.devices = vault.devices();
		this.#adopted?.();
		this.#adopted = null;
	}

	/** Resolves removeDevice's wait once this device took the new keys (#takeMove). */
	#adopted: (() => void) | null = null;

	/** Set when this device learns it was removed while the account is still opening. */
	#removed = false;

	/** This device was removed by another of the account: it stops, and offers to wipe itself. */
	async #removedHere(): Promise<void> {
		this.#removed = true;
		if (this.phase !== 'ready') return;
		this.#stop('removed');
		await this.#release();
	}

	async signOutAndErase(): Promise<{ relayConfirmed: boolean }> {
		const relayUrl = this.#options.relayUrl;
		let relayConfirmed = true;
		try {
			await tellWorker({ type: 'kith-push-forget' });
			if (relayUrl) relayConfirmed = await unsubscribePush(relayUrl);
		} catch (error) {
			console.warn('kith:signout could not drop the push subscription', error);
			relayConfirmed = false;
		}
		this.#tabs?.broadcastErase();
		this.#stop('erased');
		await this.#release();
		await eraseLocalData();
		return { relayConfirmed };
	}

	/** Stops using storage and the network: signed out here or in another tab. */
	#stop(phase: 'erased' | 'removed'): void {
		for (const timer of this.#snapshotTimers.values()) clearTimeout(timer);
		this.#snapshotTimers.clear();
		if (this.#indexTimer) clearTimeout(this.#indexTimer);
		// A push sync still pending would hand the worker notification keys
		// again, after the erase: it would write them back to storage.
		if (this.#pushTimer) clearTimeout(this.#pushTimer);
		this.#pushTimer = null;
		this.#search = null;
		this.#net?.close();
		this.#tabs?.close();
		this.#net = null;
		this.#tabs = null;
		this.phase = phase;
	}

	/**
	 * Close every conversation and every doc's storage. A storage connection
	 * closed by a database's deletion reopens on its next write (and so would
	 * make the database again): after sign-out nothing may write.
	 */
	async #release(): Promise<void> {
		for (const session of this.#sessions.values()) session.close();
		this.#sessions.clear();
		const docs = [...this.#docSessions.values(), this.#vaultSession];
		this.#docSessions.clear();
		this.#vaultSession = null;
		await Promise.all(docs.map((doc) => doc?.close().catch(() => undefined)));
	}

	async setPrivateNotifications(on: boolean): Promise<void> {
		this.privateNotifications = on;
		await this.#savePushSettings();
		await this.#syncPush();
	}

	#pushTimer: ReturnType<typeof setTimeout> | null = null;

	#schedulePush(): void {
		if (!this.notifications || this.#pushTimer) return;
		this.#pushTimer = setTimeout(() => {
			this.#pushTimer = null;
			this.#syncPush().catch((error: unknown) => console.warn('kith:push', error));
		}, PUSH_SYNC_DELAY_MS);
	}

	/** Hand the worker the notification keys; the leader also re-registers the rooms. */
	async #syncPush(): Promise<void> {
		const vault = this.#vault;
		const keyring = this.#keyring;
		if (!this.notifications || !vault || !keyring) return;
		if (this.phase === 'erased' || this.phase === 'removed') return;
		const rooms: PushRoomInput[] = vault
			.conversations()
			.filter((c) => c.kind !== 'notes')
			.map((c) => ({
				roomId: c.roomId,
				conversation: c.id,
				name: c.name,
				epoch: c.epoch,
				keys: c.keys,
				muted: c.muted === true
			}));
		await tellWorker({
			type: 'kith-push-state',
			state: pushState(rooms, this.privateNotifications),
			persist: !(this.#stored && needsPassphrase(this.#stored))
		});
		const relayUrl = this.#options.relayUrl;
		if (!relayUrl || !this.#tabs?.isLeader) return;
		const subscription = await currentSubscription();
		if (!subscription) return;
		// Vault changes (read positions, names) mostly leave the registration as it
		// was: ask the relay again only when the endpoint, rooms or mutes changed.
		const registration = JSON.stringify([
			subscription.endpoint,
			rooms.map((room) => [room.roomId, room.epoch, room.muted])
		]);
		if (registration === this.#pushRegistered) return;
		const refused = await registerPush(relayUrl, subscription, keyring.identity.deviceId, rooms);
		// A room the relay refused (not synced there yet) is tried again on the next change.
		this.#pushRegistered = refused === 0 ? registration : null;
	}

	/** What the relay last accepted from this tab (see #syncPush). */
	#pushRegistered: string | null = null;

	async #openConversation(
		entry: ConversationEntry,
		keyring: UnlockedKeyring,
		vault: Vault
	): Promise<void> {
		if (this.#sessions.has(entry.id)) return;
		// Older generations are read too (a snapshot covers one doc: none then).
		const history = [...(entry.generations ?? new Map<number, never>())]
			.filter(([epoch]) => epoch < entry.epoch && entry.keys.has(epoch))
			.sort(([a], [b]) => a - b)
			.map(([, g]) => ({ session: this.#docSession(g.room), opener: g.opener, room: g.room }));
		const fresh = !this.#docSessions.has(entry.roomId) && history.length === 0;
		// Just linked: the view the linking device handed over, kept as this device's snapshot too.
		const handed = fresh ? await this.#takeHandedOver(entry.roomId) : null;
		let snapshot: { stateVector: Uint8Array; data: unknown } | null =
			handed ??
			(fresh ? await loadSnapshot<unknown>(this.#store, keyring.localKey, entry.roomId) : null);
		// Snapshots from before membership (a bare reducer state) are ignored: rebuilt from the doc.
		if (snapshot && !isSessionSnapshot(snapshot.data)) snapshot = null;
		if (this.#sessions.has(entry.id)) return;
		const docSession = this.#docSession(entry.roomId, snapshot?.stateVector ?? null);
		const net = this.#net;
		const tabs = this.#tabs;
		const session = new ConversationSession({
			maxPlaintextBytes: () => this.#relayMaxPlaintext,
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
			// Conversations from before membership existed were all this account's own.
			creator: entry.creator ?? keyring.identity.userId,
			myName: () => this.displayName || vault.displayName,
			isLeader: () => tabs?.isLeader ?? false,
			publishAwareness: (state) => net?.setLocalAwareness(entry.roomId, state),
			media: this.media,
			publishNotification: (envelope) => net?.notify(entry.roomId, envelope),
			...(entry.invite ? { expectInvite: entry.invite } : {}),
			restored: snapshot?.data,
			onChange: () => {
				this.#scheduleSummaries();
				this.#scheduleSnapshot(entry.id);
			},
			onMarkRead: (opened) => this.#markRead(opened),
			onReadElsewhere: () => void closeNotifications(entry.id),
			verifiedContacts: () => this.#verified,
			blockedUsers: () => this.blocked,
			onReport: (error) => this.#reportWriteError(error),
			history,
			abandoned: [...(entry.abandoned ?? [])].map(([room, key]) => ({
				session: this.#docSession(room),
				key
			})),
			opener: entry.generations?.get(entry.epoch)?.opener ?? null,
			dhSecret: keyring.dhSecret,
			onGeneration: (next) => void this.#move(entry.id, next),
			onRetire: (expected) => void this.#retire(entry.id, expected)
		});
		session.setReadMark(vault.readPosition(null, entry.id));
		this.#sessions.set(entry.id, session);
		// Kept as this device's own snapshot, once the session settles (not in its first moments).
		if (handed) this.#scheduleSnapshot(entry.id);
		const key = entry.keys.get(entry.epoch);
		// A room another generation of this epoch won over is read, not synced.
		for (const room of entry.abandoned?.keys() ?? []) net?.detach(room);
		// The generation before stays synced too: its epoch op (and what an
		// offline member wrote there before moving) must still travel.
		const previous = history.at(-1);
		const previousKey = entry.keys.get(entry.epoch - 1);
		if (net && previous && previousKey) net.attach(previous.room, previous.session, previousKey);
		if (net && key) {
			net.attach(entry.roomId, docSession, key);
			net.listen(entry.roomId, {
				onNet: (status, relayState) => session.setNet(status, relayState),
				onAwareness: (states) => void session.setAwareness(states)
			});
		}
		void this.#ensureInRoster(session);
		void this.#generationChores(session);
	}

	/**
	 * This device found its lockbox of a conversation's next generation: record
	 * the new room and key in the vault (every tab and device of the account
	 * then moves; the new session re-publishes what the seed does not cover).
	 */
	async #move(id: ConversationId, next: GenerationKey): Promise<void> {
		if (!this.#tabs?.isLeader) return;
		try {
			await this.#changeVault((vault) => vault.moveConversation(id, next));
			await this.#syncConversations();
		} catch (error) {
			this.#reportWriteError(error);
		}
	}

	/**
	 * The current generation's seed covers what this device held: retire the
	 * generations before it. The relay hears that this device moved (and, from
	 * the opener, which devices it waits for before dropping the old room);
	 * then their keys leave the vault and their envelopes this device's
	 * storage, and the conversation reopens on the current generation alone.
	 * If the relay cannot be told now, nothing is retired: the next open tries
	 * again.
	 */
	async #retire(id: ConversationId, expected: string[] | null): Promise<void> {
		const keyring = this.#keyring;
		const vault = this.#vault;
		if (!keyring || !vault || !this.#tabs?.isLeader) return;
		let entry = vault.conversations().find((c) => c.id === id);
		if (!entry) return;
		const relayUrl = this.#options.relayUrl;
		if (relayUrl) {
			// Another opener's generation of this epoch may still be on its way
			// through the old room: give it a moment before telling the relay.
			await new Promise((resolve) => setTimeout(resolve, RETIRE_GRACE_MS));
			const session = this.#sessions.get(id);
			if (!session || session.roomId !== entry.roomId || !(await session.stillCurrent())) return;
			entry = vault.conversations().find((c) => c.id === id);
			if (!entry || entry.roomId !== session.roomId) return;
		}
		const epoch = entry.epoch;
		const old = [...(entry.generations ?? new Map<number, never>())].filter(([e]) => e < epoch);
		const keys = entry.keys;
		try {
			if (relayUrl) {
				for (const [e, generation] of old) {
					const key = keys.get(e);
					if (!key) continue;
					if (expected && e === epoch - 1) {
						const tags = await Promise.all(expected.map((d) => movedTag(generation.room, d)));
						await retireRoom(relayUrl, generation.room, key, tags, Date.now() + RETAIN_MS);
					}
					const tag = await movedTag(generation.room, keyring.identity.deviceId);
					await reportMoved(relayUrl, generation.room, key, tag);
				}
			}
		} catch (error) {
			console.warn(`kith:conversation ${id}: the old generations stay for now`, error);
			return;
		}
		// What this device wrote in an abandoned room is re-published: it goes now.
		// The generations before stay, synced, until the relay retires them (every
		// device it waits for moved, so no other opener's epoch op can still come
		// through them): its refusal ends them here (#retiredAtRelay). Without a
		// relay there is nobody to wait for.
		await this.#forgetGenerations(id, relayUrl ? [] : old.map(([e]) => e));
	}

	/**
	 * The relay refused a room as retired: when it is a generation before a
	 * conversation's current one, this device forgets it and every older one
	 * (no alert: it is the end of a move).
	 */
	#retiredAtRelay(room: RoomId): boolean {
		const vault = this.#vault;
		if (!vault) return false;
		for (const entry of vault.conversations()) {
			for (const [epoch, generation] of entry.generations ?? []) {
				if (generation.room !== room || epoch >= entry.epoch) continue;
				const older = [...(entry.generations ?? [])].filter(([e]) => e <= epoch).map(([e]) => e);
				void this.#forgetGenerations(entry.id, older).catch((error: unknown) =>
					console.warn(
						`kith:conversation ${entry.id}: could not forget a retired generation`,
						error
					)
				);
				return true;
			}
		}
		return false;
	}

	/**
	 * Forget generations (by epoch) of a conversation, and its abandoned
	 * rooms: their keys and rooms leave the vault, their docs and view
	 * snapshots this device's storage; the conversation reopens on what is left.
	 */
	async #forgetGenerations(id: ConversationId, epochs: number[]): Promise<void> {
		const vault = this.#vault;
		const entry = vault?.conversations().find((c) => c.id === id);
		if (!vault || !entry || !this.#tabs?.isLeader) return;
		const rooms = [
			...epochs.flatMap((e) => {
				const room = entry.generations?.get(e)?.room;
				return room && e < entry.epoch ? [room] : [];
			}),
			...(entry.abandoned?.keys() ?? [])
		];
		if (rooms.length === 0) return;
		const below = epochs.length > 0 ? Math.max(...epochs) + 1 : 0;
		await this.#changeVault((v) => [...v.retireGenerations(id, below), ...v.forgetAbandoned(id)]);
		const session = this.#sessions.get(id);
		if (session) {
			this.#sessions.delete(id);
			session.close();
		}
		for (const room of rooms) {
			this.#net?.detach(room);
			const doc = this.#docSessions.get(room);
			this.#docSessions.delete(room);
			await doc?.close().catch(() => undefined);
			await this.#store.delete(snapshotKey(room)).catch(() => undefined);
			// Another tab may hold it open for a moment: the deletion stays queued until it closes.
			await deleteDatabase(storageName(room), 0).catch(() => undefined);
		}
		await this.#syncConversations();
	}

	/** Leader: a generation's opener seeds it; an admin rotates after someone left, or compacts. */
	async #generationChores(session: ConversationSession): Promise<void> {
		if (!this.#tabs?.isLeader) return;
		try {
			await session.ensureSeed();
			await session.rotateIfNeeded();
			await session.compactIfDue();
		} catch (error) {
			this.#reportWriteError(error);
		}
	}

	/** This device enters each conversation's roster: the genesis, or its own add (roster.ts, rules 1 and 6). */
	async #ensureInRoster(session: ConversationSession): Promise<void> {
		const keyring = this.#keyring;
		if (!keyring || !this.#tabs?.isLeader) return;
		try {
			await session.ensureInRoster(this.#memberRecord(keyring));
		} catch (error) {
			this.#reportWriteError(error);
		}
	}

	/** This account and device as a conversation member (name, certified device). */
	#memberRecord(keyring: UnlockedKeyring) {
		const { identity } = keyring;
		return {
			user: identity.userId as string,
			devices: [identity.deviceId as string],
			name: (this.displayName || 'Someone').slice(0, 64),
			ssk: identity.sskCert,
			certs: [identity.deviceCert]
		};
	}

	/**
	 * The indicator follows the vault's connection: every account has it, and
	 * it rides the same relay and network as the conversations. (A room that
	 * is refused shows an alert; a room just opened does not make the
	 * indicator flicker to "Connecting".)
	 */
	#updateConnection(): void {
		const vault = this.#vaultSession;
		const status = vault ? this.#net?.status(vault.roomId) : null;
		const next: ConnectionState =
			status === 'connected' ? 'Connected' : status === 'connecting' ? 'Connecting' : 'Offline';
		if (this.connection === next) return;
		this.connection = next;
		if (next === 'Connected') {
			this.media?.relayBack();
			void this.#loadRelayLimits();
		}
	}

	/**
	 * The largest encoded batch whose envelope the relay's frame limit takes
	 * (sync/limits.ts); null until the relay said (then nothing is refused up
	 * front). Asked again on every reconnection: the operator may change it.
	 */
	#relayMaxPlaintext: number | null = null;
	#limitsLoading = false;

	async #loadRelayLimits(): Promise<void> {
		const relayUrl = this.#options.relayUrl;
		if (!relayUrl || this.#limitsLoading) return;
		this.#limitsLoading = true;
		try {
			const limits = await fetchRelayLimits(relayUrl);
			if (limits) this.#relayMaxPlaintext = maxPlaintextFor(limits.maxFrameBytes);
		} finally {
			this.#limitsLoading = false;
		}
	}

	/**
	 * Read positions marked and not yet in the vault, by conversation: they go
	 * as one vault change READ_POSITION_DELAY_MS after the first, not one per
	 * message read (each would be an envelope of its own on the relay and on
	 * every device of the account).
	 */
	readonly #unwrittenReads = new Map<ConversationSession, ReadPosition>();
	#readTimer: ReturnType<typeof setTimeout> | null = null;

	#markRead(session: ConversationSession): void {
		const vault = this.#vault;
		const position = session.newestPosition();
		if (!vault || !this.#keyring || !position) return;
		// This device shows it read at once; the vault, and so the other devices, a moment later.
		session.setReadMark(furthestPosition(vault.readPosition(null, session.id), position));
		this.#unwrittenReads.set(
			session,
			furthestPosition(this.#unwrittenReads.get(session), position)
		);
		void closeNotifications(session.id);
		this.#readTimer ??= setTimeout(() => void this.#writeReadPositions(), READ_POSITION_DELAY_MS);
	}

	async #writeReadPositions(): Promise<void> {
		if (this.#readTimer) clearTimeout(this.#readTimer);
		this.#readTimer = null;
		const vault = this.#vault;
		const keyring = this.#keyring;
		if (!vault || !keyring || this.#unwrittenReads.size === 0) return;
		const reads = [...this.#unwrittenReads];
		this.#unwrittenReads.clear();
		// setReadPosition makes no change (and nothing is stored) unless the mark moves forward.
		await this.#changeVault((v) =>
			reads.flatMap(([session, position]) =>
				v.setReadPosition(keyring.identity.deviceId, session.id, position)
			)
		).catch(() => undefined); // reported by #changeVault; the next mark writes it again
		for (const [session] of reads) session.setReadMark(vault.readPosition(null, session.id));
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
					preview: session.preview,
					pinned: this.#pinned.has(session.id),
					archived: this.#archived.has(session.id)
				});
			}
			list.sort(
				(a, b) =>
					Number(b.pinned) - Number(a.pinned) ||
					b.lastActivity - a.lastActivity ||
					a.name.localeCompare(b.name)
			);
			this.conversations = list;
			this.#saveListSoon();
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
		if (!keyring) return;
		const view = await session.settledView();
		if (!view) return;
		try {
			await saveSnapshot(
				this.#store,
				keyring.localKey,
				session.roomId,
				view.stateVector,
				view.data
			);
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

function isSessionSnapshot(data: unknown): boolean {
	return (
		typeof data === 'object' &&
		data !== null &&
		'r' in data &&
		Array.isArray((data as { m?: unknown }).m)
	);
}

/** `promise`'s value, or null if it takes longer than `ms` (it is left to finish unheard). */
function within<T>(promise: Promise<T>, ms: number): Promise<T | null> {
	let timer: ReturnType<typeof setTimeout> | undefined;
	const late = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)));
	return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
