/**
 * `/kith/meet/1.0.0`: how browsers that share a conversation find each other
 * through the Kith server's libp2p node without telling it anything readable
 * (docs/protocol.md, "P2P sync": "Meeting peers").
 *
 * A peer opens one stream to the server's node and registers under a tag per
 * room it holds: 32 bytes of HKDF-SHA256 of the room's key material (the
 * epoch key, or the account key for the vault) with info
 * `kith/p2p-meet/<roomId>`. Only holders of the key can compute a tag, the
 * server cannot link it to a room id or a relay room, and it changes with
 * every generation. The server answers each registration with the peers
 * registered under any of the same tags, and tells those peers of the
 * newcomer; the peer with the smaller id dials (over
 * `/p2p-circuit/webrtc`). A stream that closes takes its registration with it.
 *
 * Frames travel length-prefixed (./frame-stream.ts) and are lib0 encoded:
 *
 *   1  register  peer→server  varUint count (≤ MAX_MEET_TAGS), count × 32-byte tag
 *                             (replaces this stream's registration)
 *   2  peers     server→peer  varUint count (≤ MAX_MEET_PEERS), count × varString
 *                             peer id (base58btc text, as noise authenticated it)
 *
 * Anything else is malformed: the server logs it and closes that stream.
 * Meeting proves nothing: the peers still prove the room's capability on
 * /kith/sync before any room data moves.
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { deriveKey } from '../crypto/hash';
import type { RoomId } from '../crypto';
import { P2PFrameError } from './errors';

export const KITH_MEET_PROTOCOL = '/kith/meet/1.0.0';
export const MEET_REGISTER = 1;
export const MEET_PEERS = 2;
export const MEET_TAG_BYTES = 32;
/** Tags one stream may register (one per room held). */
export const MAX_MEET_TAGS = 4096;
/** Peers named in one `peers` frame. */
export const MAX_MEET_PEERS = 256;
/** Largest meet frame: a full registration and a little more. */
export const MAX_MEET_FRAME_BYTES = 8 + MAX_MEET_TAGS * MEET_TAG_BYTES;
/** Info of the tag's HKDF; the room id follows. */
export const MEET_TAG_INFO = 'kith/p2p-meet/';

/** The tag a room's holders meet under (see the module comment). */
export function meetTag(capabilityIkm: Uint8Array, roomId: RoomId | string): Uint8Array {
	return deriveKey(capabilityIkm, `${MEET_TAG_INFO}${roomId}`, MEET_TAG_BYTES);
}

export function writeRegister(tags: readonly Uint8Array[]): Uint8Array {
	if (tags.length > MAX_MEET_TAGS) throw new RangeError('too many meet tags');
	const encoder = encoding.createEncoder();
	encoding.writeVarUint(encoder, MEET_REGISTER);
	encoding.writeVarUint(encoder, tags.length);
	for (const tag of tags) {
		if (tag.length !== MEET_TAG_BYTES) throw new RangeError('a meet tag is 32 bytes');
		encoding.writeUint8Array(encoder, tag);
	}
	return encoding.toUint8Array(encoder);
}

/** A peer id's text (base58btc, `12D3KooW…` or `Qm…`). */
const PEER_ID_TEXT = /^[1-9A-HJ-NP-Za-km-z]{32,100}$/;

export function writePeers(peers: readonly string[]): Uint8Array {
	const encoder = encoding.createEncoder();
	encoding.writeVarUint(encoder, MEET_PEERS);
	const some = peers.slice(0, MAX_MEET_PEERS);
	encoding.writeVarUint(encoder, some.length);
	for (const peer of some) encoding.writeVarString(encoder, peer);
	return encoding.toUint8Array(encoder);
}

export type MeetMessage =
	{ type: 'register'; tags: Uint8Array[] } | { type: 'peers'; peers: string[] };

/** Read one meet frame; a P2PFrameError when it is malformed. */
export function readMeet(body: Uint8Array): MeetMessage {
	try {
		const decoder = decoding.createDecoder(body);
		const type = decoding.readVarUint(decoder);
		let message: MeetMessage;
		if (type === MEET_REGISTER) {
			const count = decoding.readVarUint(decoder);
			if (count > MAX_MEET_TAGS) throw new P2PFrameError('too many meet tags');
			if (body.length - decoder.pos !== count * MEET_TAG_BYTES) {
				throw new P2PFrameError('meet tags do not fill the frame');
			}
			const tags: Uint8Array[] = [];
			for (let i = 0; i < count; i++) tags.push(decoding.readUint8Array(decoder, MEET_TAG_BYTES));
			message = { type: 'register', tags };
		} else if (type === MEET_PEERS) {
			const count = decoding.readVarUint(decoder);
			if (count > MAX_MEET_PEERS) throw new P2PFrameError('too many peers');
			const peers: string[] = [];
			for (let i = 0; i < count; i++) {
				const peer = decoding.readVarString(decoder);
				if (!PEER_ID_TEXT.test(peer)) throw new P2PFrameError('bad peer id');
				peers.push(peer);
			}
			message = { type: 'peers', peers };
		} else {
			throw new P2PFrameError(`unknown meet message type ${type}`);
		}
		if (decoding.hasContent(decoder)) throw new P2PFrameError('bytes after the meet message');
		return message;
	} catch (error) {
		if (error instanceof P2PFrameError) throw error;
		throw new P2PFrameError('the meet frame does not decode', { cause: error });
	}
}
