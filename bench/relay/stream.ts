/**
 * The single writer's messages for the fan-out benchmark, made once per run:
 * real Kith envelopes (a `send` operation of a chat-like text, padded,
 * AES-GCM encrypted, Ed25519 signed by a device key) inserted one per
 * transaction into a ConversationDoc, exactly as the app seals and inserts;
 * each insert's Yjs update becomes one sync-update frame (about 470 bytes).
 * Message `seq` is the item at clock `seq` of the writer's Yjs client, so a
 * receiver tells which messages a frame carries from the update's first
 * struct and the number of structs (`seqRangeOf`), whichever relay
 * re-encoded or merged it. Every relay process starts
 * empty, so the same stream is replayed from seq 0 against each.
 */
import {
	ConversationDoc,
	encodeBatch,
	HlcClock,
	LOCAL_ORIGIN,
	makeSend
} from '../../src/lib/conversation';
import {
	createSigner,
	newRoomId,
	newSecretKey,
	newSigningSeed,
	type RoomId,
	type SecretKey
} from '../../src/lib/crypto';
import { clientIdFor, sealEnvelope, type SealInput } from '../../src/lib/envelope';
import { writeSyncUpdate } from '../../src/lib/sync';
import { messageText } from '../browser/texts';

export interface MessageStream {
	roomId: RoomId;
	epochKey: SecretKey;
	/** Every frame back to back. */
	bytes: Uint8Array;
	/** Frame `seq` is bytes[offsets[seq], offsets[seq + 1]). */
	offsets: Uint32Array;
	count: number;
}

export async function makeStream(count: number): Promise<MessageStream> {
	const roomId = newRoomId();
	const epochKey = newSecretKey();
	const signer = await createSigner(newSigningSeed());
	const clock = new HlcClock();
	const cdoc = new ConversationDoc(roomId, clientIdFor(signer.publicKey));
	const frames: Uint8Array[] = [];
	let update: Uint8Array | null = null;
	cdoc.doc.on('update', (bytes: Uint8Array, origin: unknown) => {
		if (origin === LOCAL_ORIGIN) update = bytes;
	});
	const CHUNK = 256;
	for (let base = 0; base < count; base += CHUNK) {
		const inputs: SealInput[] = [];
		for (let seq = base; seq < Math.min(count, base + CHUNK); seq++) {
			const plaintext = encodeBatch({ ops: [makeSend(clock, messageText(seq))] });
			inputs.push({ clock: seq, roomId, epoch: 0, key: epochKey, signer, plaintext });
		}
		const entries = await Promise.all(inputs.map((input) => sealEnvelope(input)));
		for (const entry of entries) {
			cdoc.insertLocal([entry]);
			if (!update) throw new Error('no update from an insert');
			frames.push(writeSyncUpdate(update));
			update = null;
		}
	}
	cdoc.destroy();
	const offsets = new Uint32Array(count + 1);
	for (let i = 0; i < count; i++) offsets[i + 1] = offsets[i]! + frames[i]!.length;
	const bytes = new Uint8Array(offsets[count]!);
	frames.forEach((frame, i) => bytes.set(frame, offsets[i]));
	return { roomId, epochKey, bytes, offsets, count };
}

/**
 * The writer's messages carried by a sync-update (or step2) frame: the clock
 * of the first struct of its Yjs update, and how many structs follow it in
 * that client's group (v1 encoding: length, client groups, structs, client,
 * clock — all lib0 varUints). Each of the writer's messages is one struct of
 * length 1, so a frame carries messages `seq … seq + count - 1`: one message
 * as the writer sent it, or several when a relay merged queued updates into
 * one frame. Returns the first seq and stores the count in `count[0]`; -1 for
 * any other frame. Read by hand: it runs for every delivery.
 */
export function seqRangeOf(frame: Uint8Array, count: Uint32Array): number {
	if (frame.length < 7 || frame[0] !== 0 || (frame[1] !== 2 && frame[1] !== 1)) return -1;
	let pos = 2;
	for (let field = 0; field < 5; field++) {
		let value = 0;
		let scale = 1;
		let byte: number;
		do {
			if (pos >= frame.length || scale > 2 ** 49) return -1;
			byte = frame[pos++]!;
			value += (byte & 0x7f) * scale;
			scale *= 128;
		} while (byte & 0x80);
		if ((field === 1 || field === 2) && value < 1) return -1;
		if (field === 2) count[0] = value;
		if (field === 4) return value;
	}
	return -1;
}
