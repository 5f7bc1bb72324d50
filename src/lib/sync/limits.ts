/**
 * The relay's frame limit, as a client has to know it (docs/protocol.md,
 * "Limits"). A frame over `KITH_MAX_FRAME_BYTES` is refused
 * (`frame-too-large`), and an envelope once in the doc can never be taken
 * back: a Yjs item that the relay cannot store holds back every later item of
 * the same device in that room. So the client learns the limit
 * (`GET /sync/limits`) and never seals an envelope whose frame would not fit:
 * a message too long for the relay is refused in the composer, and a burst is
 * batched into envelopes that fit.
 */
import { MIN_BUCKET } from '../crypto/padding';

const PADDING_STEP = 64 * 1024;
import { ENVELOPE_OVERHEAD_MAX, sealedLengthAtMost } from '../envelope';
import { relayEndpoint } from './endpoint';

/**
 * Bytes a sync-update frame adds to the one envelope it carries, at most: the
 * Yjs update (its item's client and clock, the map and key it sits under —
 * the envelope id —, the content's length, an empty delete set) and the sync
 * message header. Measured 63–65 bytes; limits.test.ts checks the bound.
 */
export const FRAME_OVERHEAD_MAX = 96;

/** The most bytes the frame carrying one envelope of `plaintextLength` plaintext bytes can take. */
export function frameBytesFor(plaintextLength: number): number {
	return sealedLengthAtMost(plaintextLength) + FRAME_OVERHEAD_MAX;
}

/**
 * The largest plaintext (an encoded operation batch) whose envelope's frame
 * fits in `maxFrameBytes`; 0 when not even the smallest one does.
 */
export function maxPlaintextFor(maxFrameBytes: number): number {
	const room = maxFrameBytes - ENVELOPE_OVERHEAD_MAX - FRAME_OVERHEAD_MAX;
	if (room < MIN_BUCKET) return 0;
	// The largest padding bucket that fits (powers of two up to 64 KiB, then
	// multiples of 64 KiB: crypto/padding.ts), less its 4-byte length prefix.
	let bucket = MIN_BUCKET;
	if (room >= PADDING_STEP) bucket = Math.floor(room / PADDING_STEP) * PADDING_STEP;
	else while (bucket * 2 <= room) bucket *= 2;
	return bucket - 4;
}

export interface RelayLimits {
	maxFrameBytes: number;
}

/**
 * The relay's limits, or null when it cannot say (unreachable, or a relay
 * from before `/sync/limits`): then nothing is refused up front, as before.
 */
export async function fetchRelayLimits(
	relayUrl: string,
	fetcher: typeof fetch = fetch
): Promise<RelayLimits | null> {
	try {
		const url = relayEndpoint(relayUrl, 'sync/limits');
		const response = await fetcher(url.toString(), { cache: 'no-store' });
		if (!response.ok) return null;
		const body = (await response.json()) as { maxFrameBytes?: unknown };
		const max = body?.maxFrameBytes;
		return typeof max === 'number' && Number.isSafeInteger(max) && max > 0
			? { maxFrameBytes: max }
			: null;
	} catch {
		return null;
	}
}

/** A message whose envelope would be over the relay's frame limit: refused before it is sealed. */
export class TooLargeForRelayError extends Error {
	override readonly name = 'TooLargeForRelayError';
	constructor(readonly plaintextBytes: number) {
		super(
			'This message is too long for the relay to accept (frame-too-large). Shorten it, or send it as a file.'
		);
	}
}
