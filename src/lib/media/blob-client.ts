/**
 * The relay's blob store, from the client side (docs/protocol.md, "Media
 * blobs"): limits, upload grants (signed with the room's access capability),
 * chunk uploads, and verified chunk downloads. A fetched chunk whose bytes do
 * not hash to its id is refused here (ChunkError `hash-mismatch`) and never
 * reaches storage.
 */
import { concatBytes, toBase64Url, utf8Encode } from '../crypto/bytes';
import { ChunkError, verifyChunk } from './chunks';
import { formatBytes } from './manifest';

/** The relay's default per-file limit, used when it cannot be asked. */
export const DEFAULT_MAX_FILE_BYTES = 2 * 1024 ** 3;
const GRANT_CONTEXT = utf8Encode('kith/blob-access\0');

export interface Capability {
	readonly publicKey: Uint8Array;
	sign(message: Uint8Array): Promise<Uint8Array>;
}

/** A file over the relay's per-file limit: refused before anything is uploaded. */
export class FileTooLargeError extends Error {
	static readonly NAME = 'FileTooLargeError';
	override name = FileTooLargeError.NAME;
	constructor(
		readonly fileName: string,
		readonly size: number,
		readonly limit: number
	) {
		// Rounded sizes can read the same ("2.1 GB … at most 2.1 GB"): then exact bytes.
		const [a, b] =
			formatBytes(size) === formatBytes(limit)
				? [`${size.toLocaleString('en-US')} bytes`, `${limit.toLocaleString('en-US')} bytes`]
				: [formatBytes(size), formatBytes(limit)];
		super(
			`“${fileName}” is too large to send: it is ${a}, and files can be at most ${b}. ` +
				'Nothing was uploaded.'
		);
	}
}

/** The relay refused or failed; `code` is its error code, or `network`. */
export class BlobTransferError extends Error {
	static readonly NAME = 'BlobTransferError';
	override name = BlobTransferError.NAME;
	constructor(
		message: string,
		readonly code: string,
		readonly status = 0
	) {
		super(message);
	}
}

export function grantMessage(room: string, nonce: string, size: number): Uint8Array {
	return concatBytes(GRANT_CONTEXT, utf8Encode(room), utf8Encode(nonce), utf8Encode(String(size)));
}

async function failure(res: Response, what: string): Promise<BlobTransferError> {
	let code = `http-${res.status}`;
	let message = `${what} failed (${res.status}).`;
	try {
		const body = (await res.json()) as { error?: string; message?: string };
		if (body.error) code = body.error;
		if (body.message) message = `${what} failed: ${body.message}`;
	} catch {
		// not JSON: the status says enough
	}
	return new BlobTransferError(message, code, res.status);
}

async function send(url: string, init: RequestInit, what: string): Promise<Response> {
	try {
		return await fetch(url, init);
	} catch (error) {
		if ((error as Error).name === 'AbortError') throw error;
		throw new BlobTransferError(`${what} failed: the relay cannot be reached.`, 'network');
	}
}

export class BlobClient {
	readonly #base: string;
	#limits: Promise<{ maxFileBytes: number }> | null = null;

	constructor(base: string) {
		this.#base = base.replace(/\/$/, '');
	}

	/** The relay's limits; its default when it cannot be asked (the grant checks again). */
	limits(): Promise<{ maxFileBytes: number }> {
		this.#limits ??= fetch(`${this.#base}/blobs/limits`)
			.then(async (res) => {
				if (!res.ok) throw new Error(String(res.status));
				const body = (await res.json()) as { maxFileBytes?: unknown };
				if (typeof body.maxFileBytes !== 'number') throw new Error('no limit');
				return { maxFileBytes: body.maxFileBytes };
			})
			.catch(() => {
				this.#limits = null;
				return { maxFileBytes: DEFAULT_MAX_FILE_BYTES };
			});
		return this.#limits;
	}

	/**
	 * A token to upload one file of `size` bytes to `room`. With `keepSeconds`
	 * the relay deletes its chunks that long after they are uploaded (between
	 * a minute and a week); without it they are kept for good.
	 */
	async grant(
		room: string,
		capability: Capability,
		size: number,
		signal?: AbortSignal,
		keepSeconds?: number
	): Promise<string> {
		const what = 'Preparing the upload';
		const challenge = await send(
			`${this.#base}/blobs/challenge?room=${encodeURIComponent(room)}`,
			{ signal: signal ?? null, cache: 'no-store' },
			what
		);
		if (!challenge.ok) throw await failure(challenge, what);
		const { nonce } = (await challenge.json()) as { nonce: string };
		const sig = await capability.sign(grantMessage(room, nonce, size));
		const res = await send(
			`${this.#base}/blobs/grant`,
			{
				method: 'POST',
				signal: signal ?? null,
				headers: { 'Content-Type': 'application/json' },
				body: JSON.stringify({
					room,
					cap: toBase64Url(capability.publicKey),
					nonce,
					sig: toBase64Url(sig),
					size,
					...(keepSeconds === undefined ? {} : { keepSeconds })
				})
			},
			what
		);
		if (!res.ok) throw await failure(res, what);
		return ((await res.json()) as { token: string }).token;
	}

	async put(token: string, id: string, blob: Uint8Array, signal?: AbortSignal): Promise<void> {
		const res = await send(
			`${this.#base}/blobs/${id}`,
			{
				method: 'PUT',
				signal: signal ?? null,
				headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/octet-stream' },
				body: blob as Uint8Array<ArrayBuffer>
			},
			'Uploading'
		);
		if (!res.ok) throw await failure(res, 'Uploading');
	}

	/** Fetch a chunk and check it against its id; throws ChunkError `hash-mismatch` for wrong bytes. */
	async get(id: string, signal?: AbortSignal): Promise<Uint8Array> {
		const res = await send(`${this.#base}/blobs/${id}`, { signal: signal ?? null }, 'Downloading');
		if (!res.ok) throw await failure(res, 'Downloading');
		const blob = new Uint8Array(await res.arrayBuffer());
		if (!(await verifyChunk(id, blob))) {
			throw new ChunkError('a downloaded chunk does not match its address', 'hash-mismatch');
		}
		return blob;
	}
}
