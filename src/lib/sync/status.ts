/**
 * "Sent" from real acknowledgements (STYLE: message status from real
 * acknowledgements, never from optimism). The relay acknowledges with its
 * state vector after each durable write (`kith-stored`), and its first sync
 * step1 names what it already holds. Every envelope sits at one Yjs item
 * (client, clock) that its signed frame names (docs/protocol.md §3.1, §5.1),
 * so an envelope is on the relay's disk exactly when the relay's clock for
 * its device's client id is past the envelope's clock.
 */
import { clientIdFor, parseFrame } from '../envelope';

/** Whether the relay has durably stored this envelope, according to `relayState`. */
export function isSentBy(
	relayState: ReadonlyMap<number, number>,
	envelopeBytes: Uint8Array
): boolean {
	let frame;
	try {
		frame = parseFrame(envelopeBytes);
	} catch {
		// Not an envelope: it cannot have been acknowledged as one.
		return false;
	}
	const stored = relayState.get(clientIdFor(frame.signer));
	return stored !== undefined && stored > frame.clock;
}
