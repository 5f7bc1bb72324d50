/**
 * Named errors of the peer-to-peer layer. Callers compare `error.name` with
 * the class's static NAME, never `instanceof` (bundles may hold two copies).
 */

/** A frame from a peer does not decode as a message of /kith/sync; its stream is closed. */
export class P2PFrameError extends Error {
	static readonly NAME = 'P2PFrameError';
	constructor(message: string, options?: ErrorOptions) {
		super(message, options);
		this.name = P2PFrameError.NAME;
	}
}

/**
 * A /kith/sync stream ended in a refusal, sent or received. `reason` is the
 * protocol's reason code (docs/protocol.md, "P2P sync": refusal reasons).
 */
export class P2PRefusedError extends Error {
	static readonly NAME = 'P2PRefusedError';
	constructor(
		readonly reason: string,
		message: string,
		/** True when the peer refused us; false when we refused the peer. */
		readonly byRemote: boolean,
		options?: ErrorOptions
	) {
		super(message, options);
		this.name = P2PRefusedError.NAME;
	}
}
