/**
 * A DocSession is one envelope doc (a conversation generation or the vault)
 * with its storage: load with the doc rules enforced, inserts written in
 * batched transactions, committed updates shared with the other tabs.
 *
 * It knows nothing of keys or plaintext; ConversationSession and the vault
 * sit on top and decrypt what `onEntries` hands them.
 */
import {
	applyTrustedUpdate,
	checkUpdate,
	ConversationDoc,
	decodeStateVector,
	encodeStateVector,
	entriesSince,
	LOCAL_ORIGIN,
	type EnvelopeEntry,
	type SealRequest
} from '../conversation';
import type { EnvelopeId, RoomId, Signer } from '../crypto';
import * as Y from 'yjs';
import { DocPersistence } from '../storage';
import type { TabCoordinator } from './tabs';

export const TAB_ORIGIN = Symbol('kith-tab');

/** 'remote': applied from another replica (the relay, a peer) after the doc rules passed. */
export type EntrySource = 'load' | 'local' | 'tab' | 'remote';

export interface DocSessionOptions {
	roomId: RoomId;
	clientId: number;
	tabs: TabCoordinator;
	/**
	 * Encoded state vector up to which a trusted view (a local snapshot, or
	 * one handed over when this device was linked) already covers the doc.
	 */
	trusted?: Uint8Array | null;
	/** Called when refused stored data is found (kept on disk, never applied). */
	onRefused?: (reason: string) => void;
}

export type EntriesHandler = (entries: EnvelopeEntry[], source: EntrySource) => void;

export function storageName(roomId: RoomId): string {
	return `kith-doc:${roomId}`;
}

/**
 * Store a doc's updates (from a backup) in this device's storage for
 * `roomId`, before anything opens it: merged with what is there (Yjs
 * updates merge), checked by the doc rules when a DocSession loads it.
 */
export async function importDoc(roomId: RoomId, updates: readonly Uint8Array[]): Promise<void> {
	const doc = new Y.Doc();
	try {
		for (const update of updates) Y.applyUpdate(doc, update);
		const persistence = new DocPersistence(storageName(roomId), doc);
		await persistence.whenLoaded;
		await persistence.flush();
		await persistence.destroy();
	} finally {
		doc.destroy();
	}
}

export class DocSession {
	readonly roomId: RoomId;
	readonly doc: ConversationDoc;
	readonly #tabs: TabCoordinator;
	readonly #persistence: DocPersistence;
	readonly #handlers = new Set<EntriesHandler>();
	readonly loaded: Promise<void>;
	#isLoaded = false;

	constructor(options: DocSessionOptions) {
		this.roomId = options.roomId;
		this.#tabs = options.tabs;
		this.doc = new ConversationDoc(options.roomId, options.clientId);
		const trusted = options.trusted
			? decodeStateVector(options.trusted)
			: new Map<number, number>();
		// What the trusted view covers is not reported again when it arrives from
		// elsewhere (a handed-over view's room fetched from the relay).
		this.doc.cover(trusted);
		this.#persistence = new DocPersistence(storageName(options.roomId), this.doc.doc, {
			readOnly: !options.tabs.isLeader,
			// The doc rules, on load too. Items a verified snapshot already covers skip
			// the signature check (they were checked before the snapshot was taken).
			validate: async (updates) =>
				Promise.all(updates.map(async (update) => (await checkUpdate(update, trusted)).ok)),
			onRefused: (info) => options.onRefused?.(info.reason)
		});
		this.doc.onEntries((entries, origin) => {
			if (origin === this.#persistence) return; // load is reported once, below
			const source: EntrySource =
				origin === TAB_ORIGIN ? 'tab' : origin === LOCAL_ORIGIN ? 'local' : 'remote';
			for (const handler of this.#handlers) handler(entries, source);
		});
		this.loaded = this.#persistence.whenLoaded.then(() => {
			this.#isLoaded = true;
			const fresh = entriesSince(this.doc, options.trusted ?? null);
			if (fresh.length > 0) for (const handler of this.#handlers) handler(fresh, 'load');
		});
	}

	get isLoaded(): boolean {
		return this.#isLoaded;
	}

	/** The whole doc as one Yjs update (for a backup). */
	encodeState(): Uint8Array {
		return Y.encodeStateAsUpdate(this.doc.doc);
	}

	/** Every entry held now (for a reader that starts after the load was reported). */
	entries(): EnvelopeEntry[] {
		return entriesSince(this.doc, null);
	}

	onEntries(handler: EntriesHandler): () => void {
		this.#handlers.add(handler);
		return () => this.#handlers.delete(handler);
	}

	/**
	 * Seal plaintexts into envelopes and store them; resolves when committed
	 * to IndexedDB (here, or by the leader tab). `onSealed` gets the envelope
	 * ids as soon as they exist, before the commit.
	 */
	commit(request: SealRequest, onSealed: (ids: EnvelopeId[]) => void = () => {}): Promise<void> {
		return this.#tabs.insert(this.roomId, request, (ids) => onSealed(ids as EnvelopeId[]));
	}

	/**
	 * Leader only. Seals for the clocks the items will get, inserts, then waits
	 * for the commit and tells the other tabs. Seal+insert runs one request at a
	 * time (the clocks must not interleave); commits overlap freely.
	 */
	async sealAndInsert(
		request: SealRequest,
		signer: Signer,
		onSealed: (ids: EnvelopeId[]) => void
	): Promise<EnvelopeId[]> {
		await this.loaded;
		// The update is the insert's own, taken before awaiting the commit, so it
		// holds exactly these entries: other tabs only ever hear of committed data.
		const { entries, update } = await this.doc.sealAndInsert(request, signer, (sealed) =>
			onSealed(sealed.map((entry) => entry.id))
		);
		const ids = entries.map((entry) => entry.id);
		await this.#persistence.flush();
		if (update.length > 2) await this.#tabs.broadcastUpdate(this.roomId, update);
		return ids;
	}

	/**
	 * Leader only. Call after an update from another replica was checked and
	 * applied to `doc` — a RelayConnection's `onRemoteApplied`: the connection
	 * applies it through `doc.applyRemote` (doc rules enforced) and hands over
	 * the bytes. The update is already queued for storage (DocPersistence
	 * stores every doc update it did not make itself); this waits until it is
	 * committed, then tells the other tabs, which only ever hear of committed
	 * data. A failed write stays queued and is retried by the persistence: the
	 * tabs hear of the update once a write succeeds. Rejects only when the
	 * session closed before that.
	 */
	async commitRemoteUpdate(update: Uint8Array): Promise<void> {
		for (;;) {
			try {
				await this.#persistence.flush();
				break;
			} catch (error) {
				if (this.#closed) throw error;
				await new Promise<void>((resolve) => {
					const wake = () => {
						off();
						this.#onClose.delete(wake);
						resolve();
					};
					const off = this.#persistence.on('write-recovered', wake);
					this.#onClose.add(wake);
				});
			}
		}
		if (update.length > 2) await this.#tabs.broadcastUpdate(this.roomId, update);
	}

	#closed = false;
	readonly #onClose = new Set<() => void>();

	applyFromTab(update: Uint8Array): void {
		applyTrustedUpdate(this.doc, update, TAB_ORIGIN);
	}

	async becomeWriter(): Promise<void> {
		await this.loaded;
		await this.#persistence.becomeWriter();
	}

	stateVector(): Uint8Array {
		return encodeStateVector(this.doc);
	}

	get persistence(): DocPersistence {
		return this.#persistence;
	}

	async close(): Promise<void> {
		this.#closed = true;
		for (const wake of [...this.#onClose]) wake();
		await this.#persistence.destroy();
		this.doc.destroy();
	}
}

export { LOCAL_ORIGIN };
