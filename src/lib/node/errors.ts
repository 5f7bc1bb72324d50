/**
 * Errors of the Node peer that end a `kith` command, each with the exit code
 * the command line promises (README, "Command line"): 1 bad arguments or
 * input, 2 not delivered before the timeout, 3 locked or missing data dir.
 */
export type ExitCode = 1 | 2 | 3;

export class KithCliError extends Error {
	static readonly NAME = 'KithCliError';
	override readonly name = KithCliError.NAME;
	constructor(
		message: string,
		readonly code: ExitCode
	) {
		super(message);
	}
}

export const badInput = (message: string) => new KithCliError(message, 1);
export const notDelivered = (message: string) => new KithCliError(message, 2);
export const locked = (message: string) => new KithCliError(message, 3);
