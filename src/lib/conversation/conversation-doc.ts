/**
 * One generation of a conversation as a Yjs doc: a grow-only Y.Map from
 * envelope id to envelope bytes (never one ever-growing Y.Array: a Y.Map keyed
 * by id stays flat at 100k entries). This is the only place, with doc-rules,
 * that touches Yjs; everything above sees envelopes.
 *
 * Local inserts use this device's bound client id (clientIdFor). Remote
 * updates go through checkUpdate and are applied only when they pass.
 */
import * as Y from 'yjs';
import { asSecretKey, type EnvelopeId, type RoomId, type SecretKey, type Signer } from '../crypto';
import { parseFrame, sealEnvelope } from '../envelope';
import {
	checkUpdate,
	checkVouchedUpdate,
	ENVELOPE_MAP,
	knownState,
	vouchDigest,
	type RuleCheck,
	type Vouch
} from './doc-rules';

export interface EnvelopeEntry {
	id: EnvelopeId;
	bytes: Uint8Array;
}

export type EntriesListener = (entries: EnvelopeEntry[], origin: unknown) => void;

/** Origin of transactions made by this device's own inserts. */
export const LOCAL_ORIGIN = Symbol('kith-local');

/** Plaintexts to seal and insert in one room, under one epoch key (raw, as tabs pass it). */
export interface SealRequest {
	epoch: number;
	key: Uint8Array;
	plaintexts: Uint8Array[];
}

export class ConversationDoc {
	readonly doc: Y.Doc;
	readonly #map: Y.Map<Uint8Array>;
	readonly #listeners = new Set<EntriesListener>();

	constructor(
		readonly roomId: RoomId,
		readonly clientId: number
	) {
		// gc off: nothing is ever deleted, and GC'd structs would break the rules.
		this.doc = new Y.Doc({ gc: false, guid: roomId });
		this.doc.clientID = clientId;
		// Yjs gives a doc a new random client id when a non-local transaction adds
		// items under its own id (it assumes two writers share one id), and every
		// applyUpdate is non-local. Here that is expected — this device's own
		// envelopes coming back from disk, another tab or the relay — and the id is
		// bound to the device key. So every transaction that is not a local insert
		// runs under a throwaway id (it never creates items), and the bound id is
		// restored afterwards. One writer per device is the tab coordinator's job.
		const throwaway = (clientId ^ 0x5bd1e995) >>> 0;
		this.doc.on('beforeTransaction', (transaction: Y.Transaction) => {
			if (transaction.origin !== LOCAL_ORIGIN) this.doc.clientID = throwaway;
		});
		this.doc.on('afterTransactionCleanup', () => {
			this.doc.clientID = clientId;
		});
		this.#map = this.doc.getMap<Uint8Array>(ENVELOPE_MAP);
		this.#map.observe((event) => {
			const added: EnvelopeEntry[] = [];
			const covered = this.#covered;
			for (const [key, change] of event.changes.keys) {
				if (change.action !== 'add') continue;
				if (covered && isCovered(this.#map, key, covered)) continue;
				const bytes = this.#map.get(key);
				if (bytes) added.push({ id: key as EnvelopeId, bytes });
			}
			if (added.length === 0) return;
			for (const listener of this.#listeners) listener(added, event.transaction.origin);
		});
	}

	#covered: Map<number, number> | null = null;

	/**
	 * Entries below `stateVector` are already in a trusted view of this doc
	 * (a snapshot: this device's, or one the device that linked it handed
	 * over). They are still checked, applied and stored when they arrive, but
	 * not reported to `onEntries` listeners: what they say is in the view.
	 * Exactly those entries: a Yjs state vector names every item below it.
	 */
	cover(stateVector: Map<number, number>): void {
		this.#covered = stateVector.size > 0 ? stateVector : null;
	}

	get size(): number {
		return this.#map.size;
	}

	has(id: EnvelopeId): boolean {
		return this.#map.has(id);
	}

	get(id: EnvelopeId): Uint8Array | undefined {
		return this.#map.get(id);
	}

	*entries(): IterableIterator<EnvelopeEntry> {
		for (const [id, bytes] of this.#map) yield { id: id as EnvelopeId, bytes };
	}

	/** The clock this device's next inserted entry will get. */
	nextClock(): number {
		return Y.getState(this.doc.store, this.clientId);
	}

	/**
	 * Insert this device's own envelopes in one transaction, in order: entry i
	 * must be sealed for clock nextClock() + i (each entry is one Yjs item of
	 * length 1). A mismatch throws before anything is inserted.
	 */
	insertLocal(entries: EnvelopeEntry[]): void {
		const base = this.nextClock();
		entries.forEach((entry, i) => {
			const clock = parseFrame(entry.bytes).clock;
			if (clock !== base + i) {
				throw new Error(`envelope sealed for clock ${clock} cannot go at ${base + i}`);
			}
			if (this.#map.has(entry.id)) throw new Error(`envelope ${entry.id} is already held`);
		});
		this.doc.transact(() => {
			for (const { id, bytes } of entries) this.#map.set(id, bytes);
		}, LOCAL_ORIGIN);
	}

	#sealing: Promise<unknown> = Promise.resolve();

	/**
	 * Seal plaintexts for this doc's next clocks (sealNext) and insert them
	 * (insertLocal), one request at a time per doc, so two requests' clocks
	 * never interleave. `onSealed` sees the entries just before the insert.
	 * Resolves with them and the insert's Yjs update.
	 */
	sealAndInsert(
		request: SealRequest,
		signer: Signer,
		onSealed?: (entries: EnvelopeEntry[]) => void
	): Promise<{ entries: EnvelopeEntry[]; update: Uint8Array }> {
		const step = this.#sealing.then(async () => {
			const entries = await this.sealNext({
				epoch: request.epoch,
				key: asSecretKey(request.key),
				signer,
				plaintexts: request.plaintexts
			});
			onSealed?.(entries);
			// Captured from the insert's own transaction: encoding a diff against a
			// state vector would walk every struct of a large doc.
			let update: Uint8Array = new Uint8Array(0);
			const capture = (bytes: Uint8Array, origin: unknown) => {
				if (origin === LOCAL_ORIGIN) update = bytes;
			};
			this.doc.on('update', capture);
			try {
				this.insertLocal(entries);
			} finally {
				this.doc.off('update', capture);
			}
			return { entries, update };
		});
		this.#sealing = step.catch(() => undefined);
		return step;
	}

	/**
	 * Seal plaintexts into envelopes for the clocks their items will get (this
	 * doc's next ones, in order), ready for one insertLocal. Sealing awaits: if
	 * this device's own items arrive meanwhile (from another replica) the clock
	 * moves, and they are sealed again, up to three times (then insertLocal
	 * refuses the mismatch). The caller runs one at a time per doc
	 * (sealAndInsert does).
	 */
	async sealNext(request: {
		epoch: number;
		key: SecretKey;
		signer: Signer;
		plaintexts: readonly Uint8Array[];
	}): Promise<EnvelopeEntry[]> {
		for (let attempt = 0; ; attempt++) {
			const base = this.nextClock();
			const entries = await Promise.all(
				request.plaintexts.map((plaintext, i) =>
					sealEnvelope({
						clock: base + i,
						roomId: this.roomId,
						epoch: request.epoch,
						key: request.key,
						signer: request.signer,
						plaintext
					})
				)
			);
			if (this.nextClock() === base || attempt >= 3) return entries;
		}
	}

	#vouch: Vouch | null = null;

	/**
	 * A trusted device's word for this doc's contents (see Vouch): used by the
	 * remote updates applied while the doc holds nothing below the vouched state
	 * vector (this device's own first inserts do not count: a device being
	 * linked is in no vouch), dropped once it does.
	 */
	vouch(vouch: Vouch): void {
		this.#vouch = vouch;
		this.#dropSpentVouch();
	}

	#dropSpentVouch(): void {
		const vouch = this.#vouch;
		if (!vouch) return;
		for (const client of vouch.stateVector.keys()) {
			if (Y.getState(this.doc.store, client) > 0) {
				this.#vouch = null;
				return;
			}
		}
	}

	/** What this doc holds, for vouching to a device being linked. */
	vouchFor(): { stateVector: Uint8Array; digest: string } {
		return { stateVector: Y.encodeStateVector(this.doc), digest: vouchDigest(this.#map.keys()) };
	}

	/** Check a remote update against the doc rules; apply it only if it passes. */
	async applyRemote(update: Uint8Array, origin: unknown): Promise<RuleCheck> {
		this.#dropSpentVouch();
		const check = this.#vouch
			? await checkVouchedUpdate(update, knownState(this.doc), this.#vouch)
			: await checkUpdate(update, knownState(this.doc));
		if (!check.ok) return check;
		// A key already held under another item id would be a second value for it:
		// Yjs would delete one of the two, and this doc would then carry a delete set
		// that every other replica refuses. Re-read the state: the check awaited.
		const held = knownState(this.doc);
		for (const entry of check.entries) {
			if (entry.clock < (held.get(entry.client) ?? 0)) continue; // this very item is held
			if (this.#map.has(entry.id)) {
				return { ok: false, reason: 'overwrite', detail: `${entry.id} is already held` };
			}
		}
		Y.applyUpdate(this.doc, update, origin);
		return check;
	}

	/** Check a batch of stored updates (for DocPersistence's `validate`). */
	async checkStored(updates: Uint8Array[]): Promise<boolean[]> {
		const known = knownState(this.doc);
		return Promise.all(updates.map(async (update) => (await checkUpdate(update, known)).ok));
	}

	onEntries(listener: EntriesListener): () => void {
		this.#listeners.add(listener);
		return () => this.#listeners.delete(listener);
	}

	encodeState(): Uint8Array {
		return Y.encodeStateAsUpdate(this.doc);
	}

	destroy(): void {
		this.#listeners.clear();
		this.doc.destroy();
	}
}

/**
 * Entries the doc holds beyond a state vector (encoded), i.e. what a snapshot
 * taken at that state vector has not seen. Null means everything.
 */
export function entriesSince(
	cdoc: ConversationDoc,
	stateVector: Uint8Array | null
): EnvelopeEntry[] {
	if (!stateVector) return [...cdoc.entries()];
	const diff = Y.encodeStateAsUpdate(cdoc.doc, stateVector);
	const out: EnvelopeEntry[] = [];
	for (const struct of Y.decodeUpdate(diff).structs) {
		if (!(struct instanceof Y.Item) || typeof struct.parentSub !== 'string') continue;
		const bytes = cdoc.get(struct.parentSub as EnvelopeId);
		if (bytes) out.push({ id: struct.parentSub as EnvelopeId, bytes });
	}
	return out;
}

export function encodeStateVector(cdoc: ConversationDoc): Uint8Array {
	return Y.encodeStateVector(cdoc.doc);
}

export function decodeStateVector(stateVector: Uint8Array): Map<number, number> {
	return Y.decodeStateVector(stateVector);
}

/** The Yjs update holding what the doc gained since `stateVector`. */
export function updateSince(cdoc: ConversationDoc, stateVector: Uint8Array): Uint8Array {
	return Y.encodeStateAsUpdate(cdoc.doc, stateVector);
}

/** Apply an update from another tab of this profile (already committed by the leader). */
export function applyTrustedUpdate(
	cdoc: ConversationDoc,
	update: Uint8Array,
	origin: unknown
): void {
	Y.applyUpdate(cdoc.doc, update, origin);
}

/** Whether the item now holding `key` is below `stateVector` (see ConversationDoc.cover). */
function isCovered(
	map: Y.Map<Uint8Array>,
	key: string,
	stateVector: ReadonlyMap<number, number>
): boolean {
	const item = map._map.get(key);
	if (!item) return false;
	return item.id.clock < (stateVector.get(item.id.client) ?? 0);
}
