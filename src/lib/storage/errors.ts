/**
 * Named storage errors. Callers compare `error.name`, not `instanceof`, so the
 * check survives bundling twice and crossing a worker boundary. Each message
 * is written for the person using the app: what happened, what to do, and
 * that nothing already saved was lost (IndexedDB transactions are atomic, so
 * a failed write never damages what an earlier one committed).
 */
export class StorageError extends Error {
	static readonly NAME: string = 'StorageError';
	constructor(message: string, options?: ErrorOptions) {
		super(message, options);
		this.name = (new.target as typeof StorageError).NAME;
	}
}

/** The browser refused a write because this site's storage quota is used up. */
export class StorageQuotaError extends StorageError {
	static override readonly NAME = 'StorageQuotaError';
	constructor(options?: ErrorOptions) {
		super(
			"This device's storage for Kith is full, so the latest changes could not be saved here. " +
				'Free up space (delete large files, or other sites’ data in the browser settings) and Kith will try again. ' +
				'Nothing already saved was lost.',
			options
		);
	}
}

/** A write failed for a reason other than quota (disk error, closed database, data that cannot be stored). */
export class StorageWriteError extends StorageError {
	static override readonly NAME = 'StorageWriteError';
	constructor(detail?: string, options?: ErrorOptions) {
		super(
			`Kith could not save to this device's storage${detail ? ` (${detail})` : ''}. ` +
				'Nothing already saved was lost. Keep this tab open while Kith tries again; ' +
				'if this keeps happening, restart the browser.',
			options
		);
	}
}

/** Stored data could not be read (storage unavailable, blocked, or the check of stored updates failed). */
export class StorageReadError extends StorageError {
	static override readonly NAME = 'StorageReadError';
	constructor(detail?: string, options?: ErrorOptions) {
		super(
			`Kith could not read this device's storage${detail ? ` (${detail})` : ''}. ` +
				'Nothing stored was changed. Reload the page; if this keeps happening, check that the browser allows site storage.',
			options
		);
	}
}
