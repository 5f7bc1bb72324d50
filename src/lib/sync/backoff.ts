/**
 * Reconnection delays: exponential from `initialMs`, capped at `maxMs`, with
 * "equal jitter" (half the delay fixed, half random) so that the clients of a
 * restarted relay do not all come back in the same instant, while none waits
 * less than half its step.
 */
export interface BackoffOptions {
	/** First delay after a failure. Default 500 ms. */
	initialMs: number;
	/** Largest delay. Default 30 s. */
	maxMs: number;
	/** A connection admitted at least this long resets the backoff when it drops. Default 10 s. */
	stableMs: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = {
	initialMs: 500,
	maxMs: 30_000,
	stableMs: 10_000
};

/** Delay before retry number `attempt` (0 for the first retry). `random` is in [0, 1). */
export function backoffDelay(
	attempt: number,
	options: Pick<BackoffOptions, 'initialMs' | 'maxMs'> = DEFAULT_BACKOFF,
	random: number = Math.random()
): number {
	const step = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(attempt, 30));
	return Math.round(step / 2 + (step / 2) * random);
}
