/**
 * Fixtures shared by the conversation tests: signing devices, a room to seal
 * their envelopes for, and raw Yjs docs as an attacker could build them.
 * Test-only; nothing in the app imports it.
 */
import * as Y from 'yjs';
import {
	createSigner,
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

/** A plain Yjs doc (no rules) pinned to a client id, as an attacker could build. */
export function rawDoc(client: number): Y.Doc {
	const doc = new Y.Doc({ gc: false });
	doc.clientID = client;
	return doc;
}
