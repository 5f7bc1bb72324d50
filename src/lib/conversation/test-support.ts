/**
 * Fixtures shared by the conversation tests: signing devices, a room to seal
 * their envelopes for, and raw Yjs docs as an attacker could build them.
 * Test-only; nothing in the app imports it.
 */
import * as encoding from 'lib0/encoding';
import * as Y from 'yjs';
import {
	concatBytes,
	createSigner,
	equalBytes,
	newRoomId,
	newSecretKey,
	newSigningSeed,
	utf8Encode,
	type RoomId,
	type SecretKey,
	type Signer
} from '../crypto';
import { clientIdFor, sealEnvelope } from '../envelope';
import type { ConversationDoc } from './conversation-doc';

/** A device: its signer and the Yjs client id bound to its public key. */
export interface Device {
	signer: Signer;
	client: number;
}

export async function device(): Promise<Device> {
	const signer = await createSigner(newSigningSeed());
	return { signer, client: clientIdFor(signer.publicKey) };
}

/** A room with a fresh id and key (epoch 0), for sealing envelopes of devices. */
export class TestRoom {
	readonly roomId: RoomId = newRoomId();
	readonly key: SecretKey = newSecretKey();

	/** An envelope of `from`, sealed for the Yjs clock `clock` of its device. */
	envelope(from: Device, text: string, clock: number) {
		return sealEnvelope({
			clock,
			roomId: this.roomId,
			epoch: 0,
			key: this.key,
			signer: from.signer,
			plaintext: utf8Encode(text)
		});
	}

	/** Envelopes of `from` for the next clocks of `doc`, in order, for one insertLocal. */
	nextEnvelopes(doc: ConversationDoc, from: Device, texts: string[]) {
		const base = doc.nextClock();
		return Promise.all(texts.map((text, i) => this.envelope(from, text, base + i)));
	}
}

/**
 * A plain Yjs doc (no rules) pinned to a client id, as an attacker could
 * build; optionally starting from what `from` holds.
 */
export function rawDoc(client: number, from?: ConversationDoc): Y.Doc {
	const doc = new Y.Doc({ gc: false });
	if (from) Y.applyUpdate(doc, from.encodeState());
	doc.clientID = client;
	return doc;
}

/**
 * The same update with its delete set replaced by an empty one, so a test can
 * reach the struct rules behind the delete-set rule. Throws if the v1 layout
 * it relies on (the delete set last) does not hold.
 */
export function withoutDeleteSet(update: Uint8Array): Uint8Array {
	const { ds } = Y.decodeUpdate(update);
	const encoder = encoding.createEncoder();
	const clients = [...ds.clients.entries()].sort((a, b) => b[0] - a[0]);
	encoding.writeVarUint(encoder, clients.length);
	for (const [client, ranges] of clients) {
		encoding.writeVarUint(encoder, client);
		encoding.writeVarUint(encoder, ranges.length);
		for (const range of ranges) {
			encoding.writeVarUint(encoder, range.clock);
			encoding.writeVarUint(encoder, range.len);
		}
	}
	const dsBytes = encoding.toUint8Array(encoder);
	const tail = update.subarray(update.length - dsBytes.length);
	if (!equalBytes(tail, dsBytes)) throw new Error('the update does not end with its delete set');
	const stripped = concatBytes(
		update.subarray(0, update.length - dsBytes.length),
		new Uint8Array([0])
	);
	if (Y.decodeUpdate(stripped).ds.clients.size !== 0) throw new Error('delete set not removed');
	return stripped;
}

/** mulberry32: a small seeded PRNG, so a failing delivery order replays from its seed. */
export function prng(seed: number): () => number {
	let a = seed >>> 0;
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

/**
 * How a network might deliver `items` to a replica: shuffled, some sent
 * twice (`duplicates` of them, about), cut into batches of one to four.
 */
export function deliveries<T>(items: readonly T[], seed: number, duplicates = 0.25): T[][] {
	const random = prng(seed);
	const order = [...items];
	for (const item of items) if (random() < duplicates) order.push(item);
	for (let i = order.length - 1; i > 0; i--) {
		const j = Math.floor(random() * (i + 1));
		[order[i], order[j]] = [order[j] as T, order[i] as T];
	}
	const batches: T[][] = [];
	for (let i = 0; i < order.length;) {
		const size = 1 + Math.floor(random() * 4);
		batches.push(order.slice(i, i + size));
		i += size;
	}
	return batches;
}
