/**
 * The Node peer's account in a data dir: the keyring (the app's format,
 * wrapped by a key kept in an owner-only file, and under a passphrase when
 * one was set), the vault (the app's Automerge vault, in envelopes under the
 * account key), and the conversations the vault lists. Invitations and joins
 * follow the app (src/lib/app/kith.svelte.ts): the same invitation links,
 * invite rooms, join requests, admissions and lockboxes.
 *
 * Rooms (vault, conversations, invite rooms) are announced through
 * `onRoom`, so whatever network runs (p2p, relay) syncs them.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HlcClock, type Message, type OpId } from '../conversation';
import {
	fromBase64Url,
	randomBytes,
	toBase64Url,
	type ConversationId,
	type RoomId
} from '../crypto';
import { clientIdFor, openEnvelope } from '../envelope';
import {
	createAccount,
	needsPassphrase,
	unlockKeyring,
	type StoredKeyring,
	type UnlockedKeyring
} from '../identity';
import {
	admitJoinRequest,
	createInvitation,
	deriveInviteRoom,
	encodeInviteMessage,
	joinRequest,
	joinRequestWatcher,
	openInviteEntry,
	admittedEntry,
	openAdmission,
	parseInviteLink,
	type Admission,
	type Invitation,
	type InviteId,
	type InviteMessage,
	type JoinRequest
} from '../invite';
import {
	decodeVaultChanges,
	encodeVaultChanges,
	newConversationEntry,
	Vault,
	vaultRoomId,
	type ConversationEntry
} from '../vault';
import type { GenerationKey } from '../conversation/generation';
import { NodeConversation } from './conversation';
import { NodeDoc, type NodeEntrySource } from './doc';
import { badInput, locked } from './errors';
import { NodeStore } from './store';

export const DB_FILE = 'kith.db';
export const WRAP_KEY_FILE = 'device.key';
export const SOCKET_FILE = 'kith.sock';

const KEYRING_KEY = 'keyring';
const PENDING_JOINS_KEY = 'pending-joins';

/** The keyring as JSON: bytes in base64url, no wrap key (that lives in its own file). */
interface StoredKeyringJson {
	v: 1;
	identity: StoredKeyring['identity'];
	passphrase: StoredKeyring['passphrase'];
	nonce: string;
	ciphertext: string;
	createdAt: number;
}

interface PendingJoin {
	invite: string;
	link: string;
	/** The join request is in the invite room already (written once per device). */
	sent: boolean;
}

export interface AccountEvents {
	/** A room to sync: its doc and key material (for the access capability). */
	onRoom?(doc: NodeDoc, ikm: Uint8Array): void;
	/** New visible messages of a conversation (remote ones, and own ones). */
	onMessages?(conversation: NodeConversation, messages: Message[], source: NodeEntrySource): void;
	/** A join this device asked for was admitted. */
	onJoined?(invite: string, conversation: NodeConversation): void;
	/**
	 * An older generation's room was retired here (its keys are about to go):
	 * tell the relay this device moved (docs/protocol.md, Room retirement).
	 */
	onRetired?(roomId: RoomId, key: Uint8Array, deviceId: string): Promise<void>;
	/** Stop syncing a retired room. */
	onRoomGone?(roomId: RoomId): void;
	onWarning?(message: string): void;
}

export interface CreateOptions {
	passphrase?: string;
	passphraseCost?: { memoryKiB: number; iterations: number; parallelism: number };
}

function keyringToJson(stored: StoredKeyring): StoredKeyringJson {
	return {
		v: 1,
		identity: stored.identity,
		passphrase: stored.passphrase,
		nonce: toBase64Url(stored.nonce),
		ciphertext: toBase64Url(stored.ciphertext),
		createdAt: stored.createdAt
	};
}

function keyringFromJson(json: StoredKeyringJson, wrapKey: CryptoKey): StoredKeyring {
	return {
		v: 1,
		identity: json.identity,
		wrapKey,
		passphrase: json.passphrase,
		nonce: fromBase64Url(json.nonce),
		ciphertext: fromBase64Url(json.ciphertext),
		createdAt: json.createdAt
	};
}

async function importWrapKey(raw: Uint8Array): Promise<CryptoKey> {
	return crypto.subtle.importKey('raw', raw as BufferSource, 'AES-GCM', false, [
		'encrypt',
		'decrypt'
	]);
}

export function hasAccount(dir: string): boolean {
	return existsSync(join(dir, DB_FILE)) && existsSync(join(dir, WRAP_KEY_FILE));
}

export class NodeAccount {
	readonly dir: string;
	readonly store: NodeStore;
	readonly keyring: UnlockedKeyring;
	readonly clock = new HlcClock();
	readonly #events: AccountEvents;
	#vault!: Vault;
	#vaultDoc!: NodeDoc;
	#vaultIngested: Promise<void> = Promise.resolve();
	readonly #conversations = new Map<ConversationId, NodeConversation>();
	readonly #opening = new Map<ConversationId, Promise<NodeConversation>>();
	readonly #inviteRooms = new Map<RoomId, NodeDoc>();
	/** Invitations whose admission this process opened. */
	readonly #joined = new Set<string>();

	private constructor(
		dir: string,
		store: NodeStore,
		keyring: UnlockedKeyring,
		events: AccountEvents
	) {
		this.dir = dir;
		this.store = store;
		this.keyring = keyring;
		this.#events = events;
	}

	/** Create the data dir and a new account in it. Returns the account and its recovery key. */
	static async create(
		dir: string,
		displayName: string,
		options: CreateOptions = {},
		events: AccountEvents = {}
	): Promise<{ account: NodeAccount; recoveryKey: string }> {
		const name = displayName.trim();
		if (!name) throw badInput('--name must not be empty');
		if (name.length > 64) throw badInput('--name must be at most 64 characters');
		if (hasAccount(dir)) throw badInput(`${dir} already holds an account`);
		mkdirSync(dir, { recursive: true, mode: 0o700 });
		chmodSync(dir, 0o700);
		const raw = randomBytes(32);
		const wrapKey = await importWrapKey(raw);
		const created = await createAccount({
			wrapKey,
			...(options.passphrase ? { passphrase: options.passphrase } : {}),
			...(options.passphraseCost ? { passphraseCost: options.passphraseCost } : {})
		});
		const store = new NodeStore(join(dir, DB_FILE));
		chmodSync(join(dir, DB_FILE), 0o600);
		store.putMeta(KEYRING_KEY, keyringToJson(created.stored));
		// Written last: an account exists once both files do.
		writeFileSync(join(dir, WRAP_KEY_FILE), raw, { mode: 0o600 });
		const account = new NodeAccount(dir, store, created.keyring, events);
		await account.#open(name);
		return { account, recoveryKey: created.recoveryKey };
	}

	/** Whether opening the account in `dir` needs a passphrase (exit 3 when there is none). */
	static needsPassphrase(dir: string): boolean {
		if (!hasAccount(dir)) throw locked(`no Kith account in ${dir} (run: kith init --name NAME)`);
		const store = new NodeStore(join(dir, DB_FILE));
		try {
			const json = store.getMeta<StoredKeyringJson>(KEYRING_KEY);
			return json?.passphrase != null;
		} finally {
			store.close();
		}
	}

	static async open(
		dir: string,
		passphrase: string | undefined,
		events: AccountEvents = {}
	): Promise<NodeAccount> {
		if (!hasAccount(dir)) throw locked(`no Kith account in ${dir} (run: kith init --name NAME)`);
		const store = new NodeStore(join(dir, DB_FILE));
		try {
			const json = store.getMeta<StoredKeyringJson>(KEYRING_KEY);
			if (!json) throw locked(`the data dir ${dir} holds no keyring`);
			const wrapKey = await importWrapKey(new Uint8Array(readFileSync(join(dir, WRAP_KEY_FILE))));
			const stored = keyringFromJson(json, wrapKey);
			if (needsPassphrase(stored) && !passphrase) {
				throw locked('the account is locked: set KITH_PASSPHRASE or run in a terminal');
			}
			let keyring: UnlockedKeyring;
			try {
				keyring = await unlockKeyring(stored, passphrase);
			} catch (error) {
				throw locked(error instanceof Error ? error.message : String(error));
			}
			const account = new NodeAccount(dir, store, keyring, events);
			await account.#open();
			return account;
		} catch (error) {
			store.close();
			throw error;
		}
	}

	get displayName(): string {
		return this.#vault.displayName;
	}

	get userId(): string {
		return this.keyring.identity.userId;
	}

	get #clientId(): number {
		return clientIdFor(this.keyring.deviceSigner.publicKey);
	}

	async #open(newAccountName?: string): Promise<void> {
		const vaultOpening = Vault.open();
		this.#vaultDoc = await NodeDoc.open(
			this.store,
			vaultRoomId(this.keyring.accountKey),
			this.#clientId
		);
		this.#vault = await vaultOpening;
		this.#vaultDoc.onEntries((entries) => {
			this.#vaultIngested = this.#vaultIngested.then(() => this.#ingestVault(entries));
		});
		await this.#ingestVault(this.#vaultDoc.entries());
		if (newAccountName !== undefined) {
			const notes = newConversationEntry('Notes to self', 'notes', this.userId);
			await this.#changeVault((vault) => vault.initialise(newAccountName, notes));
		}
		this.#events.onRoom?.(this.#vaultDoc, this.keyring.accountKey);
		await this.#syncConversations();
	}

	async #ingestVault(entries: { bytes: Uint8Array }[]): Promise<void> {
		const changes: Uint8Array[] = [];
		for (const entry of entries) {
			try {
				const opened = await openEnvelope(entry.bytes, {
					roomId: this.#vaultDoc.roomId,
					keyForEpoch: (epoch) => (epoch === 0 ? this.keyring.accountKey : undefined),
					verified: true
				});
				changes.push(...decodeVaultChanges(opened.plaintext));
			} catch (error) {
				this.#events.onWarning?.(`account data could not be read: ${String(error)}`);
			}
		}
		if (this.#vault.applyChanges(changes)) await this.#syncConversations();
	}

	async #changeVault(change: (vault: Vault) => Uint8Array[]): Promise<void> {
		const changes = change(this.#vault);
		if (changes.length === 0) return;
		await this.#vaultDoc.commit(
			{ epoch: 0, key: this.keyring.accountKey, plaintexts: [encodeVaultChanges(changes)] },
			this.keyring.deviceSigner
		);
	}

	async #syncConversations(): Promise<void> {
		await Promise.all(this.#vault.conversations().map((entry) => this.#openConversation(entry)));
	}

	#openConversation(entry: ConversationEntry): Promise<NodeConversation> {
		const existing = this.#opening.get(entry.id);
		if (existing) return existing;
		const opening = (async () => {
			const doc = await NodeDoc.open(this.store, entry.roomId, this.#clientId);
			const history: Array<{ doc: NodeDoc; opener: string | null; epoch: number }> = [];
			for (const [epoch, generation] of [...(entry.generations ?? [])].sort(([a], [b]) => a - b)) {
				if (epoch >= entry.epoch || !entry.keys.has(epoch)) continue;
				const old = await NodeDoc.open(this.store, generation.room, this.#clientId);
				history.push({ doc: old, opener: generation.opener, epoch });
			}
			const conversation = new NodeConversation({
				entry,
				doc,
				signer: this.keyring.deviceSigner,
				clock: this.clock,
				myUserId: this.userId,
				onMessages: (messages, source) => this.#events.onMessages?.(conversation, messages, source),
				onWarning: (message) => this.#events.onWarning?.(`${entry.name}: ${message}`),
				history,
				dhSecret: this.keyring.dhSecret,
				onGeneration: (next) => void this.#move(entry.id, next),
				onRetire: () => void this.#retire(entry.id, history)
			});
			// The generation before stays synced until retired: its epoch op must travel.
			const previous = history.at(-1);
			const previousKey = previous && entry.keys.get(previous.epoch);
			if (previous && previousKey) this.#events.onRoom?.(previous.doc, previousKey);
			await conversation.settled();
			this.#conversations.set(entry.id, conversation);
			if (entry.kind !== 'notes') await conversation.ensureGenesis(this.#memberRecord());
			const key = entry.keys.get(entry.epoch);
			if (key) this.#events.onRoom?.(doc, key);
			return conversation;
		})();
		this.#opening.set(entry.id, opening);
		return opening;
	}

	/** Found this device's lockbox of the next generation: move there (vault, then reopen). */
	async #move(id: ConversationId, next: GenerationKey): Promise<void> {
		try {
			await this.#changeVault((vault) => vault.moveConversation(id, next));
			const entry = this.#vault.conversations().find((c) => c.id === id);
			if (!entry) return;
			this.#conversations.get(id)?.close();
			this.#conversations.delete(id);
			this.#opening.delete(id);
			await this.#openConversation(entry);
		} catch (error) {
			this.#events.onWarning?.(
				`could not move to the new generation: ${error instanceof Error ? error.message : String(error)}`
			);
		}
	}

	/** The seed covers this device: tell the relay, forget the older generations' keys and docs. */
	async #retire(
		id: ConversationId,
		history: ReadonlyArray<{ doc: NodeDoc; epoch: number }>
	): Promise<void> {
		const entry = this.#vault.conversations().find((c) => c.id === id);
		if (!entry || history.length === 0) return;
		try {
			for (const old of history) {
				const key = entry.keys.get(old.epoch);
				if (key)
					await this.#events.onRetired?.(old.doc.roomId, key, this.keyring.identity.deviceId);
			}
			await this.#changeVault((vault) => vault.retireGenerations(id, entry.epoch));
			for (const old of history) {
				this.#events.onRoomGone?.(old.doc.roomId);
				old.doc.destroy();
				this.store.forget(old.doc.roomId);
			}
		} catch (error) {
			this.#events.onWarning?.(
				`the old generations stay for now: ${error instanceof Error ? error.message : String(error)}`
			);
		}
	}

	#memberRecord() {
		const { identity } = this.keyring;
		return {
			user: identity.userId as string,
			devices: [identity.deviceId as string],
			name: (this.displayName || 'Someone').slice(0, 64),
			ssk: identity.sskCert,
			certs: [identity.deviceCert]
		};
	}

	conversations(): NodeConversation[] {
		return [...this.#conversations.values()].sort(
			(a, b) => a.entry.createdAt - b.entry.createdAt || a.name.localeCompare(b.name)
		);
	}

	/** A conversation by id or unique name (exit 1 otherwise). */
	find(idOrName: string): NodeConversation {
		const byId = this.#conversations.get(idOrName as ConversationId);
		if (byId) return byId;
		const named = this.conversations().filter((c) => c.name === idOrName);
		if (named.length === 1) return named[0]!;
		if (named.length > 1) {
			throw badInput(`more than one conversation is named "${idOrName}": use its id`);
		}
		throw badInput(`no conversation "${idOrName}" (see: kith list)`);
	}

	async createConversation(name: string): Promise<NodeConversation> {
		const trimmed = name.trim();
		if (!trimmed) throw badInput('the conversation name must not be empty');
		if (trimmed.length > 100) throw badInput('keep the conversation name under 100 characters');
		const entry = newConversationEntry(trimmed, 'group', this.userId);
		await this.#changeVault((vault) => vault.addConversation(entry));
		await this.#vaultIngested;
		return this.#openConversation(entry);
	}

	// ---- invitations (as src/lib/app/kith.svelte.ts) ---------------------------

	async makeInvite(conversation: NodeConversation, appUrl: string): Promise<string> {
		if (conversation.entry.kind === 'notes') throw badInput('Notes to self has no other members');
		await conversation.ensureGenesis(this.#memberRecord());
		if (!conversation.canAdmit) {
			throw badInput('only the owner and admins of this conversation can invite');
		}
		let created;
		try {
			created = await createInvitation({
				signer: this.keyring.deviceSigner,
				inviterUser: this.userId,
				inviterName: this.displayName || 'Someone',
				conversationName: conversation.name,
				appUrl
			});
		} catch (error) {
			throw badInput(error instanceof Error ? error.message : String(error));
		}
		await conversation.recordInvite({
			invite: created.invitation.id as string as OpId,
			secret: toBase64Url(created.secret),
			expires: created.invitation.expires
		});
		await this.watchInvites();
		return created.link;
	}

	/** Check an invite link and remember it as a pending join. Returns the invitation. */
	async requestJoin(link: string): Promise<Invitation> {
		let parsed;
		try {
			parsed = await parseInviteLink(link);
		} catch (error) {
			throw badInput(error instanceof Error ? error.message : String(error));
		}
		const pending = this.#pendingJoins();
		if (!pending.some((p) => p.invite === parsed.invitation.id)) {
			this.store.putMeta(PENDING_JOINS_KEY, [
				...pending,
				{ invite: parsed.invitation.id, link, sent: false }
			]);
		}
		return parsed.invitation;
	}

	/** The conversation a join was admitted to, if it was. */
	joinedBy(invite: string): NodeConversation | undefined {
		return this.conversations().find(
			(c) => c.entry.invite?.id === invite || this.#joinedVia.get(invite) === c.id
		);
	}

	readonly #joinedVia = new Map<string, string>();

	#pendingJoins(): PendingJoin[] {
		return this.store.getMeta<PendingJoin[]>(PENDING_JOINS_KEY) ?? [];
	}

	/** Open the invite rooms of pending joins and write each join request once. */
	async resumeJoins(): Promise<void> {
		for (const pending of this.#pendingJoins()) {
			try {
				const { invitation, secret } = await parseInviteLink(pending.link);
				await this.#startJoin(invitation, secret, pending);
			} catch (error) {
				this.#events.onWarning?.(`a pending join was dropped: ${String(error)}`);
				this.#forgetJoin(pending.invite);
			}
		}
	}

	#forgetJoin(invite: string): void {
		this.store.putMeta(
			PENDING_JOINS_KEY,
			this.#pendingJoins().filter((p) => p.invite !== invite)
		);
	}

	async #startJoin(
		invitation: Invitation,
		secret: Uint8Array,
		pending: PendingJoin
	): Promise<void> {
		const { identity } = this.keyring;
		const room = await deriveInviteRoom(secret);
		const doc = await this.#openInviteRoom(room.roomId, room.key, (message, signer) => {
			if (message.type !== 'admit' || message.to !== identity.deviceId) return;
			void this.#acceptAdmission(message, invitation, signer);
		});
		if (pending.sent) return;
		const request = joinRequest(identity, invitation.id, this.displayName);
		await doc.commit(
			{ epoch: 0, key: room.key, plaintexts: [encodeInviteMessage(request)] },
			this.keyring.deviceSigner
		);
		this.store.putMeta(
			PENDING_JOINS_KEY,
			this.#pendingJoins().map((p) => (p.invite === pending.invite ? { ...p, sent: true } : p))
		);
	}

	async #acceptAdmission(
		message: Admission,
		invitation: Invitation,
		signer: string
	): Promise<void> {
		const inviteId = invitation.id as string;
		if (this.#joined.has(inviteId)) return;
		try {
			const secret = await openAdmission(message, this.keyring.dhSecret, inviteId as InviteId);
			this.#joined.add(inviteId);
			const admitted = admittedEntry(secret, invitation, signer);
			const id = admitted.id;
			if (!this.#vault.conversations().some((held) => held.id === id)) {
				await this.#changeVault((vault) => vault.addConversation(admitted));
			}
			await this.#vaultIngested;
			const entry = this.#vault.conversations().find((e) => e.id === id);
			if (!entry) return;
			const conversation = await this.#openConversation(entry);
			this.#joinedVia.set(inviteId, id);
			this.#forgetJoin(inviteId);
			this.#events.onJoined?.(inviteId, conversation);
		} catch (error) {
			this.#events.onWarning?.(`an admission could not be opened: ${String(error)}`);
		}
	}

	async #openInviteRoom(
		roomId: RoomId,
		key: Uint8Array,
		onMessage: (message: InviteMessage, signer: string) => void
	): Promise<NodeDoc> {
		const existing = this.#inviteRooms.get(roomId);
		if (existing) return existing;
		const doc = await NodeDoc.open(this.store, roomId, this.#clientId);
		this.#inviteRooms.set(roomId, doc);
		const read = (entries: { bytes: Uint8Array }[]) => {
			for (const entry of entries) {
				void openInviteEntry(entry.bytes, roomId, key).then(
					({ message, signer }) => onMessage(message, signer),
					(error: unknown) =>
						this.#events.onWarning?.(
							`an unreadable or malformed invite entry was dropped: ${String(error)}`
						)
				);
			}
		};
		doc.onEntries((entries) => read(entries));
		read(doc.entries());
		this.#events.onRoom?.(doc, key);
		return doc;
	}

	/**
	 * Member side: watch the invite room of every live invitation in the
	 * conversations this device may admit to, and admit each joiner whose
	 * request checks out.
	 */
	async watchInvites(): Promise<void> {
		for (const conversation of this.#conversations.values()) {
			if (conversation.entry.kind === 'notes' || !conversation.canAdmit) continue;
			for (const invite of conversation.invites()) {
				let room;
				try {
					room = await deriveInviteRoom(fromBase64Url(invite.secret));
				} catch {
					continue;
				}
				if (this.#inviteRooms.has(room.roomId)) continue;
				const { roomId, key } = room;
				await this.#openInviteRoom(
					roomId,
					key,
					joinRequestWatcher(invite.invite, (request, admitted) => {
						void this.#admit(conversation, request, roomId, key, admitted).catch((error: unknown) =>
							this.#events.onWarning?.(`could not admit a joiner: ${String(error)}`)
						);
					})
				);
			}
		}
	}

	async #admit(
		conversation: NodeConversation,
		request: JoinRequest,
		roomId: RoomId,
		roomKey: Uint8Array,
		admitted: Set<string>
	): Promise<void> {
		const doc = this.#inviteRooms.get(roomId);
		if (!doc) return;
		await admitJoinRequest(request, admitted, {
			entry: conversation.entry,
			creator: this.userId,
			stillInvited: (invite) => conversation.invites().some((live) => live.invite === invite),
			addMember: (member) => conversation.addMember(member),
			post: async (plaintext) => {
				await doc.commit(
					{ epoch: 0, key: roomKey, plaintexts: [plaintext] },
					this.keyring.deviceSigner
				);
			}
		});
	}

	close(): void {
		for (const conversation of this.#conversations.values()) conversation.doc.destroy();
		for (const doc of this.#inviteRooms.values()) doc.destroy();
		this.#vaultDoc?.destroy();
		this.store.close();
	}
}
