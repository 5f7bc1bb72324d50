/* eslint-disable svelte/prefer-svelte-reactivity -- bookkeeping maps; the UI reads the $state fields. */
/**
 * Sending and receiving files, for the page.
 *
 * Sending: the relay's per-file limit is checked first (FileTooLargeError,
 * nothing uploaded); then the file is read one chunk at a time, encrypted,
 * stored in IndexedDB and uploaded under a grant for the conversation's
 * room. The message carrying the manifest is sent only once every chunk is
 * on the relay, so no member is sent a file it cannot fetch. The file's key
 * and the chunks made so far stay in memory: Retry resumes with them
 * (uploaded chunks are skipped); a reload forgets an unfinished upload.
 * When the relay cannot be reached but the conversation reaches a peer
 * directly (another browser, a LAN peer), the file is sent anyway: its
 * peers fetch the chunks from this device, and the upload to the relay goes
 * on in the background until the relay is back (kept in the pending store,
 * so a later page resumes it), so members with no direct path get the file
 * then.
 *
 * Receiving: the chunks this device lacks are fetched (a few at a time),
 * from the conversation's LAN peers first, then the relay, then (when the
 * relay lacks one or is out of reach) its other direct peers; each is
 * checked against its id — a chunk that does not match is refused and
 * fetched again — and stored. What is held is read from IndexedDB, so after
 * a reload or crash a download resumes where it stopped. A download that
 * failed while its room had no peer starts again when one comes.
 *
 * Showing: with the service worker in control, files are served at
 * /media/<id>, decrypted as they are read (src/lib/sw/media.ts); the page
 * answers the worker's questions for manifests. Without it, a finished file
 * becomes a blob: URL.
 */
import { readChunks, encryptFile, newFileSecrets, sourceFromBlob, type FileSecrets } from './index';
import { ChunkError, isChunkIdText } from './chunks';
import { isRoomId, type RoomId } from '../crypto';
import { backoffDelay } from '../sync/backoff';
import { BlobClient, BlobTransferError, FileTooLargeError, type Capability } from './blob-client';
import { IdbChunkStore, type ChunkStore } from './chunk-store';
import { CHUNK_SIZE, chunkLength, mediaKind, type ChunkId, type FileManifest } from './manifest';
import { imageInfo } from './preview';
import { ChunkAnswer, ManifestAnswer, NeedChunk, NeedManifest, mediaUrl } from './sw-protocol';

export type TransferState = 'idle' | 'active' | 'failed' | 'complete' | 'cancelled';

/** Fetch this many chunks at once. */
const PARALLEL = 4;
/** A chunk that fails its hash check is fetched again this many times before the download fails. */
const TAMPER_RETRIES = 3;
/** Files up to this size are fetched as soon as their message is shown; larger ones on request. */
export const AUTO_DOWNLOAD_BYTES = 100 * 1000 * 1000;
/** Background uploads to a relay that was out of reach: first retry after this, doubling. */
const RELAY_RETRY = { initialMs: 5_000, maxMs: 5 * 60_000 };

/** A file sent to peers while the relay was away: what the relay still lacks. */
export interface PendingRelayRecord {
	room: RoomId;
	size: number;
	/** Chunks not yet on the relay. */
	chunks: ChunkId[];
}

/** Where pending relay uploads are kept across reloads (the app's LocalStore). */
export interface PendingRelayStore {
	list(): Promise<Array<[fileId: string, record: PendingRelayRecord]>>;
	put(fileId: string, record: PendingRelayRecord): Promise<void>;
	delete(fileId: string): Promise<void>;
}

interface PendingRelayUpload {
	record: PendingRelayRecord;
	attempt: number;
	/** An attempt is under way (`run` then waits for it). */
	running: boolean;
	/** The next attempt, while waiting for it. */
	timer: ReturnType<typeof setTimeout> | undefined;
	/** Try now (nothing if an attempt is running). */
	run: () => void;
}

/** A record read back from storage: stored by this device, still checked. */
function isPendingRecord(value: unknown): value is PendingRelayRecord {
	const record = value as Partial<PendingRelayRecord> | null;
	return (
		typeof record === 'object' &&
		record !== null &&
		isRoomId(record.room) &&
		typeof record.size === 'number' &&
		Array.isArray(record.chunks) &&
		record.chunks.every(isChunkIdText)
	);
}

/** The relay is out of reach (no answer, or a gateway's 5xx), as opposed to refusing. */
function relayUnreachable(error: unknown): boolean {
	return error instanceof BlobTransferError && (error.code === 'network' || error.status >= 500);
}

export class Transfer {
	done = $state(0);
	state = $state<TransferState>('idle');
	error = $state<string | null>(null);
	/** Whether the file's room had a direct peer when this download last started. */
	hadPeers = false;
	#abort: AbortController | null = null;
	readonly #run: (transfer: Transfer, signal: AbortSignal) => Promise<void>;

	constructor(
		readonly kind: 'upload' | 'download',
		readonly key: string,
		readonly name: string,
		readonly size: number,
		run: (transfer: Transfer, signal: AbortSignal) => Promise<void>,
		readonly conversation: string | null = null
	) {
		this.#run = run;
	}

	/** 0..100. */
	get percent(): number {
		return this.size === 0 ? 100 : Math.min(100, Math.floor((this.done / this.size) * 100));
	}

	start(): void {
		if (this.#abort) return;
		const abort = new AbortController();
		this.#abort = abort;
		this.state = 'active';
		this.error = null;
		this.#run(this, abort.signal).then(
			() => {
				if (this.#abort !== abort) return;
				this.#abort = null;
				this.state = 'complete';
			},
			(error: unknown) => {
				if (this.#abort !== abort) return;
				this.#abort = null;
				if (abort.signal.aborted) return;
				this.state = 'failed';
				this.error = error instanceof Error ? error.message : String(error);
				console.warn(`kith:media ${this.kind} of a file failed: ${this.error}`);
			}
		);
	}

	cancel(): void {
		this.#abort?.abort();
		this.#abort = null;
		if (this.state === 'active') this.state = 'cancelled';
	}

	retry(): void {
		if (this.state === 'failed' || this.state === 'cancelled' || this.state === 'idle')
			this.start();
	}
}

/** What the manager needs from a conversation to send a file into it. */
export interface MediaRoom {
	roomId: RoomId;
	capability(): Promise<Capability>;
	/** Send the message carrying the manifest. */
	send(manifest: FileManifest): Promise<void>;
}

/**
 * Which of a room's direct peers to ask: LAN peers (`kith serve`, close by),
 * other browsers (`far`), or both, LAN first (`any`).
 */
export type PeerReach = 'lan' | 'far' | 'any';

/** A conversation's direct peers (NetHub): they serve chunks, and take files while the relay is away. */
export interface MediaPeers {
	/** Whether the room reaches a peer of `reach` (default any) directly right now. */
	hasPeers(roomId: RoomId, reach?: PeerReach): boolean;
	/** A chunk from the room's peers of `reach` (default any), checked against its id; null when none has it. */
	fetchChunk(
		roomId: RoomId,
		id: ChunkId,
		signal?: AbortSignal,
		reach?: PeerReach
	): Promise<Uint8Array | null>;
}

export interface MediaManagerOptions {
	client: BlobClient;
	store?: ChunkStore;
	/** Keeps uploads to the relay still owed across reloads. */
	pending?: PendingRelayStore;
	/** `navigator.serviceWorker`, when there is one. */
	serviceWorker?: ServiceWorkerContainer | null;
}

export class MediaManager {
	/** Uploads not yet sent (or failed), newest last. */
	uploads = $state.raw<readonly Transfer[]>([]);
	readonly client: BlobClient;
	readonly store: ChunkStore;
	readonly #sw: ServiceWorkerContainer | null;
	readonly #downloads = new Map<string, Transfer>();
	readonly #manifests = new Map<string, FileManifest>();
	readonly #urls = new Map<string, Promise<string>>();
	/** Files sent to peers while the relay was away, still to upload there. */
	readonly #relayPending = new Map<string, PendingRelayUpload>();
	readonly #pendingStore: PendingRelayStore | null;
	/** Whether the uploads kept by an earlier page were picked up. */
	#pendingLoaded = false;
	/** File id → the room its message came in, to ask that room's peers. */
	readonly #fileRooms = new Map<string, RoomId>();
	#uploadCount = 0;
	/** The conversations' direct peers, once the network is up (set by the app). */
	peers: MediaPeers | null = null;
	/** A conversation's room to upload into, by room id (set by the app; null while not open). */
	rooms: ((roomId: RoomId) => MediaRoom | null) | null = null;

	constructor(options: MediaManagerOptions) {
		this.client = options.client;
		this.store = options.store ?? new IdbChunkStore();
		this.#pendingStore = options.pending ?? null;
		this.#sw = options.serviceWorker ?? null;
		this.#sw?.addEventListener('message', (event) => this.#answerWorker(event));
	}

	/** True when files are served by the service worker (/media/<id>, streamed with Range). */
	get streaming(): boolean {
		return Boolean(this.#sw?.controller);
	}

	/**
	 * Send `file` into a conversation. Rejects with FileTooLargeError, before
	 * anything is read or uploaded, when it is over the relay's limit; otherwise
	 * resolves once the upload has started (its Transfer is in `uploads`).
	 */
	async sendFile(conversation: string, room: MediaRoom, file: File): Promise<Transfer> {
		const { maxFileBytes } = await this.client.limits();
		const name = file.name || 'file';
		if (file.size > maxFileBytes) throw new FileTooLargeError(name, file.size, maxFileBytes);
		const secrets: FileSecrets = newFileSecrets();
		const made: ChunkId[] = [];
		/** Chunks on the relay (all of them unless it was out of reach). */
		const onRelay = new Set<ChunkId>();
		let info: Awaited<ReturnType<typeof imageInfo>> | undefined;
		const transfer: Transfer = new Transfer(
			'upload',
			`upload-${++this.#uploadCount}`,
			name,
			file.size,
			async (t, signal) => {
				if (info === undefined && file.type.startsWith('image/')) info = await imageInfo(file);
				/** The relay's grant; null once it proved out of reach and peers take the file instead. */
				let token: string | null = await this.#grant(room, file.size, signal);
				t.done = Math.min(file.size, made.filter(Boolean).length * CHUNK_SIZE);
				const manifest = await encryptFile(
					sourceFromBlob(file),
					{ name, type: file.type, ...(info ?? {}) },
					async (index, id, blob) => {
						await this.store.put(id, blob);
						if (token !== null) {
							try {
								await this.client.put(token, id, blob, signal);
								onRelay.add(id);
							} catch (error) {
								if (!this.#peersTakeOver(room, error)) throw error;
								token = null;
							}
						}
						made[index] = id;
						t.done = Math.min(file.size, t.done + CHUNK_SIZE);
					},
					{ secrets, signal, skip: (index) => made[index] }
				);
				signal.throwIfAborted();
				this.#remember(manifest, room.roomId);
				await room.send(manifest);
				this.uploads = this.uploads.filter((u) => u !== t);
				const owed = manifest.chunks.filter((id) => !onRelay.has(id));
				if (owed.length > 0) {
					this.#uploadLater(
						manifest.id,
						{ room: room.roomId, size: manifest.size, chunks: owed },
						room
					);
				}
			},
			conversation
		);
		this.uploads = [...this.uploads, transfer];
		transfer.start();
		return transfer;
	}

	/**
	 * A grant to upload a file to the room, or null when the relay is out of
	 * reach and the room's peers take the file instead (then it goes to the
	 * relay later).
	 */
	async #grant(room: MediaRoom, size: number, signal: AbortSignal): Promise<string | null> {
		try {
			return await this.client.grant(room.roomId, await room.capability(), size, signal);
		} catch (error) {
			if (this.#peersTakeOver(room, error)) return null;
			throw error;
		}
	}

	/** After `error` from the relay: can the file go to the room's peers instead? */
	#peersTakeOver(room: MediaRoom, error: unknown): boolean {
		if (!relayUnreachable(error) || !this.peers?.hasPeers(room.roomId)) return false;
		console.warn('kith:media the relay is out of reach: the file goes to peers, the relay later');
		return true;
	}

	/**
	 * Upload a sent file's remaining chunks to the relay: after a backoff, or
	 * at once when the app sees the relay back (`relayBack`). Kept in the
	 * pending store until done, so a reload picks it up again; what an attempt
	 * uploaded is written there when it fails (a page closed mid-attempt
	 * uploads those chunks again, and the relay answers "already held").
	 */
	#uploadLater(fileId: string, record: PendingRelayRecord, room?: MediaRoom, now = false): void {
		if (this.#relayPending.has(fileId)) return;
		const save = () => this.#pendingStore?.put(fileId, record).catch(() => undefined);
		const later = () => {
			pending.timer = setTimeout(pending.run, backoffDelay(pending.attempt++, RELAY_RETRY));
		};
		const pending: PendingRelayUpload = {
			record,
			attempt: 0,
			running: false,
			timer: undefined,
			run: () => {
				if (pending.running) return;
				clearTimeout(pending.timer);
				pending.timer = undefined;
				// Its conversation is not open yet: try again later, as when the relay is away.
				const target = room ?? this.rooms?.(record.room);
				if (target) attempt(target);
				else later();
			}
		};
		const attempt = (target: MediaRoom) => {
			pending.running = true;
			let uploaded = 0;
			void (async () => {
				const token = await this.client.grant(
					target.roomId,
					await target.capability(),
					record.size
				);
				for (; uploaded < record.chunks.length; uploaded++) {
					const id = record.chunks[uploaded] as ChunkId;
					const blob = await this.store.get(id);
					if (!blob) throw new Error('a chunk of the file is no longer on this device');
					await this.client.put(token, id, blob);
				}
			})()
				.finally(() => (pending.running = false))
				.then(
					() => this.#forgetPending(fileId),
					(error: unknown) => {
						if (!relayUnreachable(error)) {
							this.#forgetPending(fileId);
							console.warn('kith:media the relay refused a file sent to peers:', error);
							return;
						}
						if (uploaded > 0) {
							record.chunks = record.chunks.slice(uploaded);
							void save();
						}
						later();
					}
				);
		};
		this.#relayPending.set(fileId, pending);
		void save();
		if (now) pending.run();
		else later();
	}

	#forgetPending(fileId: string): void {
		this.#relayPending.delete(fileId);
		void this.#pendingStore?.delete(fileId).catch(() => undefined);
	}

	/**
	 * The relay answers again: upload what files sent to peers still lack
	 * there, now — those of this page, and (the first time) those an earlier
	 * page left.
	 */
	relayBack(): void {
		for (const pending of this.#relayPending.values()) pending.run();
		if (this.#pendingLoaded || !this.#pendingStore) return;
		this.#pendingLoaded = true;
		void this.#pendingStore.list().then(
			(kept) => {
				for (const [fileId, record] of kept) {
					if (isPendingRecord(record)) this.#uploadLater(fileId, record, undefined, true);
					else void this.#pendingStore?.delete(fileId).catch(() => undefined);
				}
			},
			(error: unknown) =>
				console.warn('kith:media could not read the uploads owed to the relay', error)
		);
	}

	/** Forget a failed or cancelled upload. */
	dismiss(transfer: Transfer): void {
		transfer.cancel();
		this.uploads = this.uploads.filter((u) => u !== transfer);
	}

	/**
	 * The download of `manifest` (one per file); started unless `start` is
	 * false. `roomId`: the conversation's room, whose peers may have it.
	 */
	download(manifest: FileManifest, start = true, roomId?: RoomId): Transfer {
		this.#remember(manifest, roomId);
		let transfer = this.#downloads.get(manifest.id);
		if (!transfer) {
			transfer = new Transfer(
				'download',
				manifest.id,
				manifest.name,
				manifest.size,
				(t, signal) => {
					const roomId = this.#fileRooms.get(manifest.id);
					t.hadPeers = Boolean(roomId && this.peers?.hasPeers(roomId));
					return this.#fetchAll(manifest, t, signal);
				}
			);
			this.#downloads.set(manifest.id, transfer);
		}
		if (start && transfer.state !== 'complete') transfer.start();
		return transfer;
	}

	/**
	 * The conversations' direct peers changed: a download that failed while
	 * its room had no peer tries again once it has one (the relay out of
	 * reach, a LAN peer reconnecting after a reload).
	 */
	peersChanged(): void {
		const peers = this.peers;
		if (!peers) return;
		for (const [fileId, transfer] of this.#downloads) {
			if (transfer.state !== 'failed' || transfer.hadPeers) continue;
			const roomId = this.#fileRooms.get(fileId);
			if (roomId && peers.hasPeers(roomId)) transfer.retry();
		}
	}

	async #fetchAll(manifest: FileManifest, t: Transfer, signal: AbortSignal): Promise<void> {
		const held = await this.store.held(manifest.chunks);
		const missing: number[] = [];
		let done = 0;
		manifest.chunks.forEach((id, index) => {
			if (held.has(id)) done += chunkLength(manifest, index);
			else missing.push(index);
		});
		t.done = done;
		let next = 0;
		const worker = async () => {
			while (next < missing.length) {
				signal.throwIfAborted();
				const index = missing[next++] as number;
				const id = manifest.chunks[index] as ChunkId;
				await this.store.put(id, await this.#fetchChunk(manifest, id, signal));
				t.done += chunkLength(manifest, index);
			}
		};
		await Promise.all(Array.from({ length: PARALLEL }, worker));
	}

	/**
	 * Fetch one chunk: from the room's LAN peers first (faster than any
	 * relay), then the relay, refusing (and fetching again) bytes that do not
	 * match its id; when the relay does not have it or cannot be reached, from
	 * any direct peer of the room. Peers' blobs are hash-checked in PeerSync.
	 */
	async #fetchChunk(manifest: FileManifest, id: ChunkId, signal: AbortSignal): Promise<Uint8Array> {
		const roomId = this.#fileRooms.get(manifest.id);
		const peers = roomId ? this.peers : null;
		let lanAsked = false;
		const fromPeers = async (reach: PeerReach): Promise<Uint8Array | null> => {
			if (!peers || !roomId || !peers.hasPeers(roomId, reach)) return null;
			if (reach === 'lan') lanAsked = true;
			return peers.fetchChunk(roomId, id, signal, reach);
		};
		const near = await fromPeers('lan');
		if (near) return near;
		for (let attempt = 0; ; attempt++) {
			try {
				return await this.client.get(id, signal);
			} catch (error) {
				if ((error as Error).name === ChunkError.NAME && attempt < TAMPER_RETRIES) {
					console.warn(
						'kith:media refused a chunk that does not match its address; fetching again'
					);
					continue;
				}
				if (signal.aborted) throw error;
				// The LAN peers, if asked already, did not have it.
				const any = await fromPeers(lanAsked ? 'far' : 'any');
				if (any) return any;
				throw error;
			}
		}
	}

	/**
	 * A URL the page can show the file at: /media/<id> when the service worker
	 * serves files, else (once downloaded) a blob: URL of the decrypted file.
	 */
	url(manifest: FileManifest, download = false): Promise<string> {
		this.#remember(manifest);
		if (this.streaming) return Promise.resolve(mediaUrl(manifest, download));
		let url = this.#urls.get(manifest.id);
		if (!url) {
			url = this.#blobUrl(manifest);
			this.#urls.set(manifest.id, url);
			url.catch(() => this.#urls.delete(manifest.id));
		}
		return url;
	}

	async #blobUrl(manifest: FileManifest): Promise<string> {
		const parts: BlobPart[] = [];
		await readChunks(
			manifest,
			async (id) => {
				const blob = await this.store.get(id);
				if (!blob) throw new Error('the file has not been downloaded yet');
				return blob;
			},
			(plain) => void parts.push(plain as Uint8Array<ArrayBuffer>)
		);
		return URL.createObjectURL(
			new Blob(parts, { type: manifest.type || 'application/octet-stream' })
		);
	}

	/** Hand the manifest to the worker, so /media/<id> works (in memory only there). */
	#remember(manifest: FileManifest, roomId?: RoomId): void {
		if (roomId) this.#fileRooms.set(manifest.id, roomId);
		if (this.#manifests.has(manifest.id)) return;
		this.#manifests.set(manifest.id, manifest);
		this.#sw?.controller?.postMessage({ type: 'kith-media:manifest', manifest });
	}

	#answerWorker(event: MessageEvent): void {
		const port = event.ports[0];
		if (!port) return;
		const need = NeedManifest.safeParse(event.data);
		if (need.success) {
			const answer: ManifestAnswer = { manifest: this.#manifests.get(need.data.id) ?? null };
			port.postMessage(answer);
			return;
		}
		const chunk = NeedChunk.safeParse(event.data);
		if (!chunk.success) return;
		void this.#chunkForWorker(chunk.data).then(
			(blob) => port.postMessage({ blob } satisfies ChunkAnswer),
			(error: unknown) => {
				console.warn('kith:media could not get a chunk for the service worker:', error);
				port.postMessage({ blob: null } satisfies ChunkAnswer);
			}
		);
	}

	/** A chunk the worker could not get from the relay: held here, or from the conversation's peers. */
	async #chunkForWorker(need: NeedChunk): Promise<Uint8Array | null> {
		const manifest = this.#manifests.get(need.file);
		const id = manifest?.chunks[need.index];
		const roomId = this.#fileRooms.get(need.file);
		if (!id) return null;
		const held = await this.store.get(id);
		if (held) return held;
		if (!roomId || !this.peers?.hasPeers(roomId)) return null;
		// The worker checks it against its id and stores it.
		return this.peers.fetchChunk(roomId, id);
	}

	/** Should this attachment be fetched without asking? */
	static autoDownload(manifest: FileManifest): boolean {
		return mediaKind(manifest) === 'image' || manifest.size <= AUTO_DOWNLOAD_BYTES;
	}
}
