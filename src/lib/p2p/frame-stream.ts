/**
 * Length-prefixed frames over a libp2p 3 stream, with a size cap and real
 * backpressure.
 *
 * A frame is an unsigned varint byte count (LEB128, as every libp2p protocol
 * and `it-length-prefixed` write it) followed by that many bytes. A count of
 * zero, a count over `maxFrameBytes`, or a count that does not fit in the
 * varint bytes `maxFrameBytes` needs is a FrameStreamError: the caller closes
 * that stream, never the node.
 *
 * Why not `lpStream` from @libp2p/utils: its byte buffer has no backpressure
 * (it aborts the stream once 4 MiB are unread) and its decoder buffers a
 * whole incoming chunk before checking sizes. Here the stream is paused while
 * more than `highWaterBytes` of frames wait to be handled, which (with yamux)
 * stops window updates, so a fast peer waits for a slow verifier instead of
 * being cut off; and a frame's body is filled in place, without re-copying.
 */
import type { Stream } from '@libp2p/interface';

export class FrameStreamError extends Error {
	static readonly NAME = 'FrameStreamError';
	constructor(
		/**
		 * `frame-too-large` or `malformed-frame` (docs/protocol.md, P2P refusal
		 * reasons), or `slow-reader`: more than `maxPendingBytes` waited to be sent.
		 */
		readonly reason: 'frame-too-large' | 'malformed-frame' | 'slow-reader',
		message: string
	) {
		super(message);
		this.name = FrameStreamError.NAME;
	}
}

/** Byte count of the unsigned varint for `value`. */
function varintLength(value: number): number {
	let length = 1;
	while (value >= 0x80) {
		value = Math.floor(value / 0x80);
		length++;
	}
	return length;
}

export function encodeFrame(body: Uint8Array): Uint8Array {
	const out = new Uint8Array(varintLength(body.length) + body.length);
	let value = body.length;
	let i = 0;
	while (value >= 0x80) {
		out[i++] = (value & 0x7f) | 0x80;
		value = Math.floor(value / 0x80);
	}
	out[i++] = value;
	out.set(body, i);
	return out;
}

/** Incremental decoder: bytes in, whole frames out. Throws FrameStreamError. */
export class FrameDecoder {
	readonly #max: number;
	readonly #maxLengthBytes: number;
	#length = 0;
	#lengthBytes = 0;
	#body: Uint8Array | null = null;
	#filled = 0;

	constructor(maxFrameBytes: number) {
		this.#max = maxFrameBytes;
		this.#maxLengthBytes = varintLength(maxFrameBytes);
	}

	/** Feed `chunk`; returns the frames it completed, in order. */
	push(chunk: Uint8Array): Uint8Array[] {
		const frames: Uint8Array[] = [];
		let i = 0;
		while (i < chunk.length) {
			if (this.#body === null) {
				const byte = chunk[i++] as number;
				this.#length += (byte & 0x7f) * 2 ** (7 * this.#lengthBytes);
				this.#lengthBytes++;
				if (byte & 0x80) {
					if (this.#lengthBytes >= this.#maxLengthBytes) {
						throw new FrameStreamError('frame-too-large', 'frame length prefix is too long');
					}
					continue;
				}
				if (this.#length === 0) throw new FrameStreamError('malformed-frame', 'empty frame');
				if (this.#length > this.#max) {
					throw new FrameStreamError(
						'frame-too-large',
						`frame of ${this.#length} bytes is over the ${this.#max}-byte limit`
					);
				}
				this.#body = new Uint8Array(this.#length);
				this.#filled = 0;
				continue;
			}
			const take = Math.min(this.#body.length - this.#filled, chunk.length - i);
			this.#body.set(chunk.subarray(i, i + take), this.#filled);
			this.#filled += take;
			i += take;
			if (this.#filled === this.#body.length) {
				frames.push(this.#body);
				this.#body = null;
				this.#length = 0;
				this.#lengthBytes = 0;
			}
		}
		return frames;
	}
}

export interface FrameStreamOptions {
	maxFrameBytes: number;
	/** Pause the stream while more than this many bytes of frames wait to be read. */
	highWaterBytes?: number;
	/**
	 * Bytes waiting to be sent after which the stream is reset (`slow-reader`):
	 * a peer that does not read must not make this side buffer without end. It
	 * catches up by step1/step2 on its next stream. Default 32 MiB.
	 */
	maxPendingBytes?: number;
}

type Queued = { frame: Uint8Array } | { error: Error } | { end: true };

/**
 * A libp2p stream as a sequence of frames: `next()` for the one reader,
 * `send()` for writers (serialised, waiting for the muxer to drain).
 */
export class FrameStream {
	readonly #stream: Stream;
	readonly #decoder: FrameDecoder;
	readonly #highWater: number;
	readonly #maxPending: number;
	#pendingBytes = 0;
	readonly #queue: Queued[] = [];
	#queuedBytes = 0;
	#waiter: (() => void) | null = null;
	#finished = false;
	#writing: Promise<void> = Promise.resolve();

	constructor(stream: Stream, options: FrameStreamOptions) {
		this.#stream = stream;
		this.#decoder = new FrameDecoder(options.maxFrameBytes);
		this.#highWater = options.highWaterBytes ?? 2 * options.maxFrameBytes;
		this.#maxPending = options.maxPendingBytes ?? 32 * 1024 * 1024;
		// What arrives while paused is held by the stream itself: allow a full
		// muxer window on top of what is queued here, so a pause never overflows it.
		stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, 4 * this.#highWater);
		stream.addEventListener('message', this.#onMessage);
		stream.addEventListener('end', this.#onEnd);
		stream.addEventListener('close', this.#onClose);
		if (stream.readableEnded || stream.status !== 'open') this.#onEnd();
	}

	get stream(): Stream {
		return this.#stream;
	}

	/** The next frame; null when the remote closed its end. Rejects on bad framing or a reset. */
	async next(): Promise<Uint8Array | null> {
		for (;;) {
			const item = this.#queue.shift();
			if (item) {
				if ('frame' in item) {
					this.#queuedBytes -= item.frame.length;
					this.#maybeResume();
					return item.frame;
				}
				// Terminal: keep it for any later call.
				this.#queue.unshift(item);
				if ('error' in item) throw item.error;
				return null;
			}
			await new Promise<void>((resolve) => (this.#waiter = resolve));
		}
	}

	/** Send one frame body; resolves once the muxer took it. Writes keep their call order. */
	send(body: Uint8Array): Promise<void> {
		const bytes = encodeFrame(body);
		this.#pendingBytes += bytes.length;
		if (this.#pendingBytes > this.#maxPending) {
			const error = new FrameStreamError('slow-reader', 'the peer does not read what is sent');
			this.abort(error);
			return Promise.reject(error);
		}
		const write = this.#writing
			.then(async () => {
				const stream = this.#stream;
				if (stream.writeStatus !== 'writable') throw new Error(`stream is ${stream.writeStatus}`);
				if (!stream.send(bytes)) await stream.onDrain();
			})
			.finally(() => {
				this.#pendingBytes -= bytes.length;
			});
		// A failed write fails its caller; the chain goes on for the next one.
		this.#writing = write.catch(() => undefined);
		return write;
	}

	/** Close our writable end once queued writes went out (the remote may still send). */
	async close(): Promise<void> {
		await this.#writing;
		if (this.#stream.status === 'open') await this.#stream.close();
	}

	/** Close both ends at once, discarding what is unsent or unread. */
	abort(error: Error): void {
		this.#finish({ error });
		if (this.#stream.status === 'open' || this.#stream.status === 'closing') {
			this.#stream.abort(error);
		}
	}

	readonly #onMessage = (event: { data: Uint8Array | { subarray(): Uint8Array } }): void => {
		if (this.#finished) return;
		const data = event.data instanceof Uint8Array ? event.data : event.data.subarray();
		let frames: Uint8Array[];
		try {
			frames = this.#decoder.push(data);
		} catch (error) {
			this.#finish({ error: error as Error });
			return;
		}
		for (const frame of frames) {
			this.#queue.push({ frame });
			this.#queuedBytes += frame.length;
		}
		if (this.#queuedBytes > this.#highWater && this.#stream.readStatus === 'readable') {
			this.#stream.pause();
		}
		this.#wake();
	};

	readonly #onEnd = (): void => this.#finish({ end: true });

	readonly #onClose = (event: Event & { error?: Error }): void => {
		this.#finish(event.error ? { error: event.error } : { end: true });
	};

	#finish(item: { error: Error } | { end: true }): void {
		if (this.#finished) return;
		this.#finished = true;
		this.#queue.push(item);
		this.#stream.removeEventListener('message', this.#onMessage);
		this.#wake();
	}

	#maybeResume(): void {
		if (this.#queuedBytes <= this.#highWater / 2 && this.#stream.readStatus === 'paused') {
			this.#stream.resume();
		}
	}

	#wake(): void {
		const waiter = this.#waiter;
		this.#waiter = null;
		waiter?.();
	}
}
