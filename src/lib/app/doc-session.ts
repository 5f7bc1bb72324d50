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
	updateSince,
	type EnvelopeEntry
} from '../conversation';
import type { RoomId } from '../crypto';
import { DocPersistence } from '../storage';
import type { TabCoordinator } from './tabs';

export const TAB_ORIGIN = Symbol('kith-tab');

export type EntrySource = 'load' | 'local' | 'tab';

export interface DocSessionOptions {
	roomId: RoomId;
	clientId: number;
	tabs: TabCoordinator;
	/** Encoded state vector up to which a trusted local snapshot already covers the doc. */
	trusted?: Uint8Array | null;
	/** Called when refused stored data is found (kept on disk, never applied). */
	onRefused?: (reason: string) => void;
}

export type EntriesHandler = (entries: EnvelopeEntry[], source: EntrySource) => void;

export function storageName(roomId: RoomId): string {
	return `kith-doc:${roomId}`;
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
		const trusted = options.trusted ? decodeStateVector(options.trusted) : new Map<number, number>();
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
			const source: EntrySource = origin === TAB_ORIGIN ? 'tab' : 'local';
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

	onEntries(handler: EntriesHandler): () => void {
		this.#handlers.add(handler);
		return () => this.#handlers.delete(handler);
	}

	/** Store envelopes; resolves when committed to IndexedDB (here or by the leader tab). */
	commit(entries: EnvelopeEntry[]): Promise<void> {
		return this.#tabs.insert(this.roomId, entries);
	}

	/** Leader only: insert, wait for the commit, then tell the other tabs. */
	async insertAsLeader(entries: EnvelopeEntry[]): Promise<void> {
		await this.loaded;
		// The update is taken before awaiting, so it holds exactly these entries:
		// other tabs must only ever hear of committed data.
		const before = encodeStateVector(this.doc);
		this.doc.insertLocal(entries);
		const update = updateSince(this.doc, before);
		await this.#persistence.flush();
		if (update.length > 2) this.#tabs.broadcastUpdate(this.roomId, update);
	}

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
		await this.#persistence.destroy();
		this.doc.destroy();
	}
}

export { LOCAL_ORIGIN };
