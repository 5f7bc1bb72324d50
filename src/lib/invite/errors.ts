/**
 * Named errors of the invite module. Callers compare `error.name` with the
 * class's static NAME, never `instanceof` (bundles may hold two copies).
 *
 * The two link errors carry a fixed message written for the person holding the
 * link; what exactly was wrong is in `reason` (for logs and tests), so a
 * forger probing links learns nothing from the message that the UI shows.
 */

/** A lockbox could not be sealed or opened: wrong length, wrong key, wrong context, altered bytes. */
export class LockboxError extends Error {
	static readonly NAME = 'LockboxError';
	constructor(message: string, options?: ErrorOptions) {
		super(message, options);
		this.name = LockboxError.NAME;
	}
}

/** Why an invite link was refused; never shown to the user. */
export type InvalidInviteReason =
	'too-long' | 'malformed' | 'bad-invitation' | 'bad-signature' | 'wrong-secret';

/** An invite link that is malformed, forged or altered. */
export class InvalidInviteError extends Error {
	static readonly NAME = 'InvalidInviteError';
	static readonly MESSAGE = 'This invite link is damaged or was not made by Kith.';
	readonly reason: InvalidInviteReason;
	constructor(reason: InvalidInviteReason, options?: ErrorOptions) {
		super(InvalidInviteError.MESSAGE, options);
		this.name = InvalidInviteError.NAME;
		this.reason = reason;
	}
}

/** A genuine invite link (its signature verified) whose expiry has passed. */
export class InviteExpiredError extends Error {
	static readonly NAME = 'InviteExpiredError';
	static readonly MESSAGE = 'This invite link has expired. Ask for a new one.';
	/** When the invitation expired, ms since the epoch. */
	readonly expires: number;
	constructor(expires: number, options?: ErrorOptions) {
		super(InviteExpiredError.MESSAGE, options);
		this.name = InviteExpiredError.NAME;
		this.expires = expires;
	}
}

/** Why an invite-room message was refused. */
export type InviteMessageReason =
	| 'too-large'
	| 'malformed'
	| 'bad-certificate'
	| 'key-mismatch'
	| 'unusable-key'
	| 'wrong-invite'
	| 'cannot-open';

/**
 * A join request or admission that does not decode, does not verify, or
 * cannot be opened. Bad input from a stranger in the invite room: the caller
 * drops the message (and may log `reason`); it is never applied.
 */
export class InviteMessageError extends Error {
	static readonly NAME = 'InviteMessageError';
	readonly reason: InviteMessageReason;
	constructor(reason: InviteMessageReason, message: string, options?: ErrorOptions) {
		super(message, options);
		this.name = InviteMessageError.NAME;
		this.reason = reason;
	}
}
