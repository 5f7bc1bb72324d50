/**
 * Splits a large Yjs update into several smaller ones that, applied in order,
 * have the same effect.
 *
 * Why: the relay refuses frames over its size limit (`frame-too-large`, 2 MiB
 * by default) and closes the connection. The step2 that carries what a device
 * wrote offline, or one burst of large envelopes, can be bigger; sent whole it
 * would be refused again after every reconnection, and those messages would
 * never leave the device. Each piece stays under `maxBytes` unless one
 * envelope alone is bigger (an envelope is at most 1 MiB).
 *
 * Conversation-doc updates hold only keyed top-level items with no origins,
 * one per envelope, contiguous per client; any contiguous run of them is a
 * valid update of its own. The pieces are encoded exactly as Yjs encodes an
 * update (v1: per client, the struct count, client, first clock, structs;
 * then an empty delete set). An update this cannot split (a delete set, GC or
 * skip structs) is returned whole: the doc rules refuse it anyway.
 */
import * as encoding from 'lib0/encoding';
import * as Y from 'yjs';

/** Bytes an item adds to an update besides its content and key: info, parent, lengths. */
const ITEM_OVERHEAD = 64;

export function splitUpdate(update: Uint8Array, maxBytes: number): Uint8Array[] {
	if (update.length <= maxBytes) return [update];
	let decoded: ReturnType<typeof Y.decodeUpdate>;
	try {
		decoded = Y.decodeUpdate(update);
	} catch {
		return [update];
	}
	for (const ranges of decoded.ds.clients.values()) if (ranges.length > 0) return [update];
	const pieces: Y.Item[][] = [];
	let piece: Y.Item[] = [];
	let size = 0;
	for (const struct of decoded.structs) {
		if (!(struct instanceof Y.Item)) return [update];
		const content = struct.content instanceof Y.ContentBinary ? struct.content.content.length : 0;
		const bytes = content + (struct.parentSub?.length ?? 0) + ITEM_OVERHEAD;
		if (piece.length > 0 && size + bytes > maxBytes) {
			pieces.push(piece);
			piece = [];
			size = 0;
		}
		piece.push(struct);
		size += bytes;
	}
	if (piece.length > 0) pieces.push(piece);
	return pieces.map(encodeItems);
}

/** One update holding `items` (in update order: contiguous runs per client). */
function encodeItems(items: Y.Item[]): Uint8Array {
	const runs: Y.Item[][] = [];
	for (const item of items) {
		const run = runs.at(-1);
		const last = run?.at(-1);
		if (run && last && last.id.client === item.id.client) run.push(item);
		else runs.push([item]);
	}
	const encoder = new Y.UpdateEncoderV1();
	encoding.writeVarUint(encoder.restEncoder, runs.length);
	for (const run of runs) {
		const first = run[0] as Y.Item;
		encoding.writeVarUint(encoder.restEncoder, run.length);
		encoder.writeClient(first.id.client);
		encoding.writeVarUint(encoder.restEncoder, first.id.clock);
		for (const item of run) item.write(encoder, 0);
	}
	encoding.writeVarUint(encoder.restEncoder, 0); // empty delete set
	return encoder.toUint8Array();
}
