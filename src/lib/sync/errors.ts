/**
 * Named errors of the sync layer. Callers compare `error.name` with the
 * class's static NAME, never `instanceof` (bundles may hold two copies).
 */

/** A room capability cannot be derived from what was given (wrong key size, bad room id). */
export class CapabilityError extends Error {
	static readonly NAME = 'CapabilityError';
	constructor(message: string, options?: ErrorOptions) {
		super(message, options);
		this.name = CapabilityError.NAME;
	}
}

/** The relay's challenge could not be fetched or did not parse; the attempt is retried. */
export class ChallengeError extends Error {
	static readonly NAME = 'ChallengeError';
	/** HTTP status when the relay answered, else undefined (network failure, bad body). */
	readonly status: number | undefined;
	constructor(message: string, options?: ErrorOptions & { status?: number }) {
		super(message, options);
		this.name = ChallengeError.NAME;
		this.status = options?.status;
	}
}

/** A frame from the relay does not decode as a message of the relay protocol; it is dropped. */
export class RelayFrameError extends Error {
	static readonly NAME = 'RelayFrameError';
	constructor(message: string, options?: ErrorOptions) {
		super(message, options);
		this.name = RelayFrameError.NAME;
	}
}
