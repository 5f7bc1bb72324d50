/**
 * The server side of `/kith/meet/1.0.0` (src/lib/p2p/meet.ts has the frames
 * and the tag): peers register under opaque 32-byte tags and learn who else
 * registered under the same ones. The server keeps the tags in memory only,
 * for as long as the registering stream is open.
 *
 * Bad input — a malformed frame, too many tags, a frame too large — is
 * logged and closes that stream; it never reaches the node or the process.
 */
import type { Connection, Libp2p, Stream } from '@libp2p/interface';
import { FrameStream } from '../../../src/lib/p2p/frame-stream.ts';
import {
	KITH_MEET_PROTOCOL,
	MAX_MEET_FRAME_BYTES,
	readMeet,
	writePeers
} from '../../../src/lib/p2p/meet.ts';
import type { Logger } from '../log.ts';

interface Registrant {
	peer: string;
	frames: FrameStream;
	tags: Set<string>;
}

/** Streams one connection may hold on the meet protocol. */
const MAX_MEET_STREAMS = 4;

export class MeetService {
	readonly #node: Libp2p;
	readonly #log: Logger;
	/** tag (hex) → registrants under it. */
	readonly #byTag = new Map<string, Set<Registrant>>();
	readonly #registrants = new Set<Registrant>();

	constructor(node: Libp2p, log: Logger) {
		this.#node = node;
		this.#log = log;
	}

	async start(): Promise<void> {
		await this.#node.handle(KITH_MEET_PROTOCOL, this.#onStream, {
			maxInboundStreams: MAX_MEET_STREAMS,
			maxOutboundStreams: 1
		});
	}

	stop(): void {
		for (const registrant of [...this.#registrants]) this.#drop(registrant);
	}

	/** Registrations held now (for tests and metrics). */
	get size(): number {
		return this.#registrants.size;
	}

	readonly #onStream = (stream: Stream, connection: Connection): void => {
		const registrant: Registrant = {
			peer: connection.remotePeer.toString(),
			frames: new FrameStream(stream, { maxFrameBytes: MAX_MEET_FRAME_BYTES }),
			tags: new Set()
		};
		this.#registrants.add(registrant);
		this.#serve(registrant)
			.catch((error: unknown) => {
				this.#log.warn('meet stream closed on bad input', {
					peer: registrant.peer,
					err: error instanceof Error ? `${error.name}: ${error.message}` : String(error)
				});
				registrant.frames.abort(error instanceof Error ? error : new Error(String(error)));
			})
			.finally(() => this.#drop(registrant));
	};

	async #serve(registrant: Registrant): Promise<void> {
		for (;;) {
			const body = await registrant.frames.next();
			if (body === null) return;
			const message = readMeet(body);
			if (message.type !== 'register') throw new Error('a peer sent a peers frame');
			this.#register(registrant, message.tags);
		}
	}

	#register(registrant: Registrant, tags: Uint8Array[]): void {
		this.#unindex(registrant);
		registrant.tags = new Set(tags.map(hex));
		const others = new Map<string, Registrant>();
		for (const tag of registrant.tags) {
			let set = this.#byTag.get(tag);
			if (!set) this.#byTag.set(tag, (set = new Set()));
			for (const other of set) if (other.peer !== registrant.peer) others.set(other.peer, other);
			set.add(registrant);
		}
		this.#send(registrant, [...others.keys()]);
		// Each of them learns of the newcomer too; the one with the smaller id dials.
		for (const other of others.values()) this.#send(other, [registrant.peer]);
	}

	#send(registrant: Registrant, peers: string[]): void {
		registrant.frames.send(writePeers(peers)).catch((error: unknown) => {
			this.#log.debug('could not tell a peer of others', {
				peer: registrant.peer,
				err: error instanceof Error ? error.message : String(error)
			});
		});
	}

	#unindex(registrant: Registrant): void {
		for (const tag of registrant.tags) {
			const set = this.#byTag.get(tag);
			if (!set) continue;
			set.delete(registrant);
			if (set.size === 0) this.#byTag.delete(tag);
		}
		registrant.tags.clear();
	}

	#drop(registrant: Registrant): void {
		if (!this.#registrants.delete(registrant)) return;
		this.#unindex(registrant);
		void registrant.frames.close().catch(() => undefined);
	}
}

function hex(bytes: Uint8Array): string {
	let out = '';
	for (const b of bytes) out += b.toString(16).padStart(2, '0');
	return out;
}
