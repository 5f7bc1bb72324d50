/**
 * What the relay knows about one room's document, without a Y.Doc: its state
 * vector, and how many update rows and bytes it has stored. The updates
 * themselves stay in the database: a client's sync step 1 is answered from a
 * merge of the stored rows, read when it is needed and kept only until the
 * room's next write, so a busy room's memory does not grow with its history.
 *
 * The state vector is kept incrementally, because the hot path — check,
 * store, acknowledge, forward one update — must not cost O(room). Like
 * `Y.encodeStateVectorFromUpdate`, it counts for each client only the
 * contiguous run of clocks from 0: an item stored beyond a gap (sent before
 * the items below it) is held in `#beyond` until the gap fills. Every item of
 * a conversation doc carries one envelope, so every item has length 1.
 *
 * `Y.mergeUpdates` is superlinear in the number of updates (20k small ones
 * take 14–19 s here), so merging always goes in chunks, yielding to the event
 * loop between them.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import * as Y from 'yjs';

/** An update with no structs and an empty delete set. */
export const EMPTY_UPDATE: Uint8Array = Y.encodeStateAsUpdate(new Y.Doc());

/** Most updates merged by one `Y.mergeUpdates` call (~35 ms for 500 here). */
export const MERGE_CHUNK = 500;

/** Merges updates in chunks of at most `chunk`, then the results, until one is left. */
export async function mergeInChunks(
	updates: readonly Uint8Array[],
	chunk: number = MERGE_CHUNK
): Promise<Uint8Array> {
	if (updates.length === 0) return EMPTY_UPDATE;
	let level = updates;
	while (level.length > 1) {
		const next: Uint8Array[] = [];
		for (let i = 0; i < level.length; i += chunk) {
			if (i > 0) await yieldToLoop();
			const part = level.slice(i, i + chunk);
			next.push(part.length === 1 ? part[0]! : Y.mergeUpdates(part));
		}
		level = next;
	}
	return level[0]!;
}

export class RoomState {
	/** Reads every stored update of the room, oldest first. */
	readonly #read: () => readonly Uint8Array[];
	/** Merge of the stored updates, until the next write makes it stale. */
	#merged: Uint8Array | undefined;
	/** Contiguous state vector: what `known` means to the doc rules. */
	readonly sv: Map<number, number>;
	/** Clocks held above a gap, per client. */
	readonly #beyond = new Map<number, Set<number>>();
	#encoded: Uint8Array | undefined;
	/** Update rows the room has in the database, and their bytes. */
	rows: number;
	bytes: number;

	private constructor(
		merged: Uint8Array,
		rows: number,
		bytes: number,
		read: () => readonly Uint8Array[]
	) {
		this.#read = read;
		this.#merged = merged;
		this.rows = rows;
		this.bytes = bytes;
		this.sv = Y.decodeStateVector(Y.encodeStateVectorFromUpdate(merged));
		const { to } = Y.parseUpdateMeta(merged);
		let gaps = false;
		for (const [client, end] of to) if (end > (this.sv.get(client) ?? 0)) gaps = true;
		if (gaps) {
			// Rare (a client sent items out of order): find what lies beyond the gaps.
			for (const struct of Y.decodeUpdate(merged).structs) {
				if (!(struct instanceof Y.Item)) continue;
				for (let k = 0; k < struct.length; k++) this.#hold(struct.id.client, struct.id.clock + k);
			}
		}
	}

	/**
	 * Builds the state of a room from its stored updates, which `read` returns
	 * (oldest first) now and whenever a client needs them later.
	 */
	static async load(read: () => readonly Uint8Array[], bytes: number): Promise<RoomState> {
		const updates = read();
		return new RoomState(await mergeInChunks(updates), updates.length, bytes, read);
	}

	/** Records an update that was just stored, with the items it added. */
	add(stored: Uint8Array, items: Iterable<{ client: number; clock: number }>): void {
		this.rows++;
		this.bytes += stored.length;
		for (const { client, clock } of items) this.#hold(client, clock);
		this.#encoded = undefined;
		this.#merged = undefined;
	}

	/** The encoded state vector (as in sync step 1 and `kith-stored`). */
	stateVector(): Uint8Array {
		this.#encoded ??= Y.encodeStateVector(this.sv);
		return this.#encoded;
	}

	/** Everything the room holds as one update. */
	async merged(): Promise<Uint8Array> {
		this.#merged ??= await mergeInChunks(this.#read());
		return this.#merged;
	}

	/** What a client with state vector `sv` lacks. */
	async diff(stateVector: Uint8Array): Promise<Uint8Array> {
		return Y.diffUpdate(await this.merged(), stateVector);
	}

	#hold(client: number, clock: number): void {
		const next = this.sv.get(client) ?? 0;
		if (clock < next) return;
		let held = this.#beyond.get(client);
		if (clock > next) {
			if (!held) this.#beyond.set(client, (held = new Set()));
			held.add(clock);
			return;
		}
		let end = next + 1;
		while (held?.delete(end)) end++;
		if (held?.size === 0) this.#beyond.delete(client);
		this.sv.set(client, end);
	}
}
