/**
 * The proof of access on a /kith/sync stream (docs/protocol.md, "P2P sync":
 * handshake). Each side signs the OTHER side's fresh nonce with the room's
 * access capability key (../sync/capability.ts); the verifier checks it with
 * the capability public key it derives from its own copy of the room key.
 *
 *   message = "kith/p2p-access\0" || role (1 byte: 0 dialer, 1 listener)
 *             || utf8(roomId) (22 bytes) || verifier's nonce (32 bytes)
 *             || varUint length || prover's peer id (multihash bytes)
 *             || varUint length || verifier's peer id (multihash bytes)
 *
 * Why its own context, not the relay's "kith/room-access\0": a signature made
 * for one protocol can never be replayed in the other. Why the peer ids: the
 * libp2p connection (noise) authenticates both peer ids, so a proof names the
 * one connection it was made for. Without them a non-member in the middle
 * could pass a member's nonce on to another member and forward the answer
 * (a relay attack); with them, the forwarded proof names the wrong peers.
 * Why the role: the two proofs of one stream can never stand in for each
 * other.
 */
import * as encoding from 'lib0/encoding';
import { ed25519PublicKey, utf8Encode, verifySignature, type RoomId } from '../crypto';
import type { RoomCapability } from '../sync/capability';

/** Context string of the proof signature (ends with a zero byte, docs/protocol.md §1.3). */
export const P2P_ACCESS_CONTEXT = 'kith/p2p-access\0';

export type ProofRole = 'dialer' | 'listener';

export interface ProofInput {
	role: ProofRole;
	roomId: RoomId;
	/** The nonce the verifier chose. */
	nonce: Uint8Array;
	/** Peer id (multihash bytes) of the side that signs. */
	prover: Uint8Array;
	/** Peer id (multihash bytes) of the side that checks. */
	verifier: Uint8Array;
}

/** The bytes a proof signs. */
export function proofMessage(input: ProofInput): Uint8Array {
	const encoder = encoding.createEncoder();
	encoding.writeUint8Array(encoder, utf8Encode(P2P_ACCESS_CONTEXT));
	encoding.writeUint8(encoder, input.role === 'dialer' ? 0 : 1);
	encoding.writeUint8Array(encoder, utf8Encode(input.roomId));
	encoding.writeUint8Array(encoder, input.nonce);
	encoding.writeVarUint8Array(encoder, input.prover);
	encoding.writeVarUint8Array(encoder, input.verifier);
	return encoding.toUint8Array(encoder);
}

export function signProof(capability: RoomCapability, input: ProofInput): Promise<Uint8Array> {
	return capability.sign(proofMessage(input));
}

/**
 * A public key nothing signs for, checked against when the room is not held,
 * so a refusal takes about as long whether or not the listener holds the room.
 */
let nobody: Uint8Array | null = null;

/** True only when `signature` proves the capability whose public key is `publicKey`. */
export function verifyProof(
	publicKey: Uint8Array | null,
	input: ProofInput,
	signature: Uint8Array
): Promise<boolean> {
	nobody ??= ed25519PublicKey(new Uint8Array(32).fill(0x5a));
	return verifySignature(publicKey ?? nobody, proofMessage(input), signature).then(
		(ok) => ok && publicKey !== null
	);
}
