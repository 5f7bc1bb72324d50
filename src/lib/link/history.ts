/**
 * The history a device hands over when it links another (docs/protocol.md
 * §8c, "History"): for each conversation it holds, the reduced view it has
 * (the same data as its local snapshot) and the doc's state vector that view
 * covers.
 * The new device opens each conversation from that view and still fetches
 * every envelope from the relay and its peers, checks, applies and stores
 * them; the ones below the state vector are not decrypted and reduced a
 * second time (ConversationDoc.cover).
 *
 * Travel: one JSON document, encrypted as a file (media/encrypt-file.ts,
 * a fresh key) and uploaded to the relay's blob store under the account's
 * vault room. Its manifest — chunk addresses and the key — rides inside the
 * link grant, which is sealed to the new device: the relay holds ciphertext
 * it cannot read, and nobody but the confirmed device gets the key.
 *
 * Everything here is a cache: a view that is missing, too large, fails to
 * download or to decode is dropped (logged), and the conversation is read
 * from its envelopes as before.
 */
import { z } from 'zod';
import { fromBase64Url, isRoomId, toBase64Url, utf8Decode, utf8Encode } from '../crypto';
import type { RoomId } from '../crypto';
import { utf8ByteLength } from '../conversation/operations';
import type { BlobClient, Capability } from '../media/blob-client';
import { decryptFile, encryptFile, sourceFromBytes } from '../media/encrypt-file';
import type { FileManifest } from '../media/manifest';

/** Bytes of JSON the handed-over history may take; views past it are left out. */
export const MAX_HISTORY_BYTES = 16 * 1024 * 1024;
/** Chunk size of the encrypted history (the largest a chunk may be): at most 16 chunks in the grant. */
export const HISTORY_CHUNK_BYTES = 1024 * 1024;

/**
 * How long the relay keeps the encrypted history: the new device fetches it
 * right after the codes match (a link lives 10 minutes), and after this the
 * chunks are deleted, whether the link was confirmed or not.
 */
export const HISTORY_KEEP_SECONDS = 60 * 60;

/** One conversation's view, as handed over. */
export interface HistoryView {
	room: RoomId;
	/** Encoded Yjs state vector of the doc the view covers. */
	stateVector: Uint8Array;
	/** The reduced view (ConversationSession.snapshotData()). */
	data: unknown;
}

const Wire = z.strictObject({
	v: z.literal(1),
	rooms: z.array(
		z.strictObject({
			room: z.string().refine(isRoomId, 'not a room id'),
			sv: z.string().regex(/^[A-Za-z0-9_-]+$/, 'not a state vector'),
			// What a session snapshot holds: reducer state and its membership ops.
			data: z.looseObject({ r: z.unknown(), m: z.array(z.unknown()) })
		})
	)
});

export class HistoryError extends Error {
	override readonly name = 'HistoryError';
}

/**
 * The views as one document, in the caller's order (most worth handing over
 * first), leaving out any that would take it past `maxBytes`.
 */
export function encodeHistory(
	views: Iterable<HistoryView>,
	maxBytes = MAX_HISTORY_BYTES
): { bytes: Uint8Array; rooms: number } {
	const parts: string[] = [];
	let size = '{"v":1,"rooms":[]}'.length;
	for (const view of views) {
		const part = JSON.stringify({
			room: view.room,
			sv: toBase64Url(view.stateVector),
			data: view.data
		});
		// Counted in UTF-8: the cap bounds the file, and so the chunks the grant lists.
		const added = utf8ByteLength(part) + (parts.length > 0 ? 1 : 0);
		if (size + added > maxBytes) continue;
		size += added;
		parts.push(part);
	}
	return { bytes: utf8Encode(`{"v":1,"rooms":[${parts.join(',')}]}`), rooms: parts.length };
}

/** Read a handed-over history; throws HistoryError on anything malformed. */
export function decodeHistory(bytes: Uint8Array): Map<RoomId, HistoryView> {
	if (bytes.length > MAX_HISTORY_BYTES)
		throw new HistoryError('The handed-over history is too large.');
	let parsed: z.infer<typeof Wire>;
	try {
		parsed = Wire.parse(JSON.parse(utf8Decode(bytes)));
	} catch (error) {
		throw new HistoryError(
			`The handed-over history is malformed: ${error instanceof Error ? error.message : String(error)}`
		);
	}
	const views = new Map<RoomId, HistoryView>();
	for (const { room, sv, data } of parsed.rooms) {
		views.set(room as RoomId, { room: room as RoomId, stateVector: fromBase64Url(sv), data });
	}
	return views;
}

/** What of the relay's blob client the history travels with. */
export type HistoryBlobs = Pick<BlobClient, 'grant' | 'put' | 'get'>;

/**
 * Encrypt an encoded history under a fresh key and upload it to the relay's
 * blob store under a grant of `room` (the account's vault room), to be kept
 * HISTORY_KEEP_SECONDS. The manifest it resolves with carries the key: it goes
 * only into the grant.
 */
export async function uploadHistory(
	blobs: HistoryBlobs,
	room: RoomId,
	capability: Capability,
	bytes: Uint8Array
): Promise<FileManifest> {
	const token = await blobs.grant(room, capability, bytes.length, undefined, HISTORY_KEEP_SECONDS);
	return encryptFile(
		sourceFromBytes(bytes),
		{ name: 'history', type: 'application/json' },
		(_, id, blob) => blobs.put(token, id, blob),
		{ chunkSize: HISTORY_CHUNK_BYTES }
	);
}

/**
 * Download a handed-over history, check and decrypt it (each chunk against
 * its id, then its AEAD tag) and decode it. Throws on any failure: a ChunkError
 * or AEAD error for bytes that are not the uploaded ones, HistoryError for a
 * document that does not decode.
 */
export async function downloadHistory(
	blobs: HistoryBlobs,
	manifest: FileManifest
): Promise<Map<RoomId, HistoryView>> {
	if (manifest.size > MAX_HISTORY_BYTES)
		throw new HistoryError('The handed-over history is too large.');
	return decodeHistory(await decryptFile(manifest, (id) => blobs.get(id)));
}
