/**
 * One envelope doc (a conversation generation, the vault or an invite room)
 * on the Node peer: the shared ConversationDoc, loaded from and written to
 * NodeStore. The doc rules are checked on load too (as the browser does), so
 * damaged or foreign rows are refused and kept, never applied. Every update
 * the doc takes afterwards — this device's inserts, or remote updates that a
 * RelayConnection or a p2p session checked and applied — is written before
 * the call that applied it returns.
 */
import * as Y from 'yjs';
import {
	ConversationDoc,
	LOCAL_ORIGIN,
	type EnvelopeEntry,
	type SealRequest
} from '../conversation';
import type { EnvelopeId, RoomId, Signer } from '../crypto';
import type { NodeStore } from './store';

const LOAD_ORIGIN = Symbol('kith-node-load');

export type NodeEntrySource = 'load' | 'local' | 'remote';
export type NodeEntriesHandler = (entries: EnvelopeEntry[], source: NodeEntrySource) => void;

export class NodeDoc {
	readonly cdoc: ConversationDoc;
	readonly #store: NodeStore;
	readonly #handlers = new Set<NodeEntriesHandler>();
	/** Stored rows that broke the doc rules (kept on disk, never applied). */
	refused = 0;

	private constructor(store: NodeStore, roomId: RoomId, clientId: number) {
		this.#store = store;
		this.cdoc = new ConversationDoc(roomId, clientId);
		this.cdoc.onEntries((entries, origin) => {
			const source: NodeEntrySource =
				origin === LOAD_ORIGIN ? 'load' : origin === LOCAL_ORIGIN ? 'local' : 'remote';
			for (const handler of this.#handlers) handler(entries, source);
		});
	}

	get roomId(): RoomId {
		return this.cdoc.roomId;
	}

	static async open(store: NodeStore, roomId: RoomId, clientId: number): Promise<NodeDoc> {
		const doc = new NodeDoc(store, roomId, clientId);
		await doc.#load();
		doc.cdoc.doc.on('update', (update: Uint8Array, origin: unknown) => {
			if (origin !== LOAD_ORIGIN) store.appendUpdate(roomId, update);
		});
		return doc;
	}

	async #load(): Promise<void> {
		const rows = this.#store.updates(this.roomId);
		if (rows.length === 0) return;
		const merged = rows.length === 1 ? rows[0]!.data : Y.mergeUpdates(rows.map((row) => row.data));
		const check = await this.cdoc.applyRemote(merged, LOAD_ORIGIN);
		if (check.ok) {
			if (rows.length > NodeStoreLimits.compactAfter) {
				this.#store.compact(this.roomId, rows[rows.length - 1]!.seq, merged);
			}
			return;
		}
		// One bad row: apply the good ones, keep the bad ones where they are.
		for (const row of rows) {
			const one = await this.cdoc.applyRemote(row.data, LOAD_ORIGIN);
			if (!one.ok) this.refused += 1;
		}
	}

	/** Handlers see entries as they arrive; call `replay` to have them see what was loaded. */
	onEntries(handler: NodeEntriesHandler): () => void {
		this.#handlers.add(handler);
		return () => this.#handlers.delete(handler);
	}

	entries(): EnvelopeEntry[] {
		return [...this.cdoc.entries()];
	}

	/**
	 * Seal plaintexts into envelopes for the clocks their items will get and
	 * insert them in one transaction (stored before this resolves). One
	 * request at a time: the clocks must not interleave.
	 */
	async commit(request: SealRequest, signer: Signer): Promise<EnvelopeId[]> {
		const { entries } = await this.cdoc.sealAndInsert(request, signer);
		return entries.map((entry) => entry.id);
	}

	destroy(): void {
		this.#handlers.clear();
		this.cdoc.destroy();
	}
}

const NodeStoreLimits = { compactAfter: 256 };
