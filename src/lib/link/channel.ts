/**
 * The pairing room as either side sees it: an in-memory envelope doc synced
 * with the relay (nothing of it is stored: a pairing lasts minutes), where
 * this device posts signed messages and reads the other side's.
 */
import { ConversationDoc } from '../conversation';
import { type RoomId, type SecretKey, type Signer, toBase64Url } from '../crypto';
import { clientIdFor, openEnvelope, sealEnvelope } from '../envelope';
import { RelayConnection } from '../sync';
import { decodeLinkMessage, encodeLinkMessage, type LinkMessage } from './pairing';

export class PairingChannel {
	readonly roomId: RoomId;
	readonly #key: SecretKey;
	readonly #signer: Signer;
	readonly #doc: ConversationDoc;
	readonly #connection: RelayConnection;
	readonly #seen = new Set<string>();
	#sending: Promise<unknown> = Promise.resolve();

	constructor(
		relayUrl: string,
		room: { roomId: RoomId; key: SecretKey },
		signer: Signer,
		onMessage: (message: LinkMessage, signer: string) => void
	) {
		this.roomId = room.roomId;
		this.#key = room.key;
		this.#signer = signer;
		this.#doc = new ConversationDoc(room.roomId, clientIdFor(signer.publicKey));
		this.#doc.onEntries((entries) => {
			for (const entry of entries) {
				if (this.#seen.has(entry.id)) continue;
				this.#seen.add(entry.id);
				void openEnvelope(entry.bytes, {
					roomId: room.roomId,
					keyForEpoch: (epoch) => (epoch === 0 ? room.key : undefined),
					verified: true
				})
					.then((opened) => {
						const from = toBase64Url(opened.signer);
						if (from === toBase64Url(signer.publicKey)) return;
						onMessage(decodeLinkMessage(opened.plaintext), from);
					})
					.catch((error: unknown) => console.warn('kith:link dropped a message', error));
			}
		});
		this.#connection = new RelayConnection({
			relayUrl,
			roomId: room.roomId,
			cdoc: this.#doc,
			capabilityIkm: room.key
		});
	}

	/** Post a message, signed by this device. */
	send(message: LinkMessage): Promise<void> {
		const step = this.#sending.then(async () => {
			const entry = await sealEnvelope({
				clock: this.#doc.nextClock(),
				roomId: this.roomId,
				epoch: 0,
				key: this.#key,
				signer: this.#signer,
				plaintext: encodeLinkMessage(message)
			});
			this.#seen.add(entry.id);
			this.#doc.insertLocal([entry]);
		});
		this.#sending = step.catch(() => undefined);
		return step;
	}

	close(): void {
		this.#connection.destroy();
		this.#doc.destroy();
	}
}
