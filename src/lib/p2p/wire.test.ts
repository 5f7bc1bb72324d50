/**
 * The pure parts of /kith/sync: frame codec (any chunking, limits), message
 * readers (strict), and the proof message (every field bound).
 */
import fc from 'fast-check';
import * as encoding from 'lib0/encoding';
import { describe, expect, it } from 'vitest';
import { concatBytes, equalBytes, newRoomId, randomBytes } from '../crypto';
import { P2PFrameError } from './errors';
import { encodeFrame, FrameDecoder, FrameStreamError } from './frame-stream';
import { proofMessage, type ProofInput } from './proof';
import {
	readP2PMessage,
	writeAwareness,
	writeChallenge,
	writeChunk,
	writeChunkNone,
	writeChunkWant,
	writeHello,
	writeP2PRefused,
	writeProof,
	writeSyncStep1,
	writeSyncStep2,
	writeSyncUpdate
} from './wire';

describe('frames', () => {
	it('any split of a run of frames decodes to the same frames', () => {
		fc.assert(
			fc.property(
				fc.array(fc.uint8Array({ minLength: 1, maxLength: 400 }), { minLength: 1, maxLength: 8 }),
				fc.array(fc.nat(50), { minLength: 1, maxLength: 40 }),
				(bodies, cuts) => {
					const wire = concatBytes(...bodies.map(encodeFrame));
					const decoder = new FrameDecoder(1024);
					const out: Uint8Array[] = [];
					let at = 0;
					for (const cut of cuts) {
						out.push(...decoder.push(wire.subarray(at, at + cut)));
						at = Math.min(wire.length, at + cut);
					}
					out.push(...decoder.push(wire.subarray(at)));
					expect(out.length).toBe(bodies.length);
					out.forEach((body, i) => expect(equalBytes(body, bodies[i] as Uint8Array)).toBe(true));
				}
			)
		);
	});

	it('refuses a frame over the limit from its length alone, an empty frame, and an endless prefix', () => {
		const reason = (bytes: Uint8Array) => {
			try {
				new FrameDecoder(1024).push(bytes);
				return 'accepted';
			} catch (error) {
				return (error as FrameStreamError).reason;
			}
		};
		expect(reason(encodeFrame(new Uint8Array(1024)))).toBe('accepted');
		expect(reason(encoding.encode((e) => encoding.writeVarUint(e, 1025)))).toBe('frame-too-large');
		expect(reason(new Uint8Array([0]))).toBe('malformed-frame');
		expect(reason(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff]))).toBe('frame-too-large');
		// Far over the limit: refused from the prefix, before any body arrives.
		expect(reason(encoding.encode((e) => encoding.writeVarUint(e, 2 ** 21)))).toBe(
			'frame-too-large'
		);
	});
});

describe('messages', () => {
	const roomId = newRoomId();

	it('round-trip', () => {
		const nonce = randomBytes(32);
		expect(readP2PMessage(writeHello(roomId, nonce))).toEqual({
			type: 'hello',
			version: 1,
			roomId,
			nonce
		});
		expect(readP2PMessage(writeChallenge(nonce))).toEqual({ type: 'challenge', nonce });
		const signature = randomBytes(64);
		expect(readP2PMessage(writeProof(signature))).toEqual({ type: 'proof', signature });
		expect(readP2PMessage(writeP2PRefused('unauthorized', 'no'))).toEqual({
			type: 'refused',
			reason: 'unauthorized',
			message: 'no'
		});
		expect(readP2PMessage(writeSyncStep1(new Uint8Array([0])))).toMatchObject({
			type: 'sync-step1'
		});
		expect(readP2PMessage(writeSyncStep2(new Uint8Array([0, 0])))).toMatchObject({
			type: 'sync-step2'
		});
		expect(readP2PMessage(writeSyncUpdate(new Uint8Array([0, 0])))).toMatchObject({
			type: 'sync-update'
		});
		expect(readP2PMessage(writeAwareness(new Uint8Array([0])))).toMatchObject({
			type: 'awareness',
			entries: []
		});
	});

	it('chunk requests and answers round-trip for any request id, chunk id and blob', async () => {
		const { toBase64Url } = await import('../crypto/bytes');
		fc.assert(
			fc.property(
				fc.nat(0xffff_ffff),
				fc.uint8Array({ minLength: 32, maxLength: 32 }),
				fc.nat(1),
				fc.uint8Array({ minLength: 1, maxLength: 300 }),
				(request, digest, hops, blob) => {
					const id = toBase64Url(digest);
					expect(readP2PMessage(writeChunkWant(request, id, hops))).toEqual({
						type: 'chunk-want',
						request,
						id,
						hops
					});
					expect(readP2PMessage(writeChunk(request, blob))).toEqual({
						type: 'chunk',
						request,
						blob
					});
					expect(readP2PMessage(writeChunkNone(request))).toEqual({
						type: 'chunk-none',
						request
					});
				}
			)
		);
	});

	it('is strict: wrong sizes, bad room ids, unknown types, trailing bytes, plaintext awareness', () => {
		const bad = [
			new Uint8Array([]),
			new Uint8Array([99]),
			writeChallenge(randomBytes(31)),
			writeProof(randomBytes(63)),
			writeHello('not a room' as typeof roomId, randomBytes(32)),
			writeHello(roomId, randomBytes(16)),
			concatBytes(writeProof(randomBytes(64)), new Uint8Array([0])),
			writeP2PRefused('x', 'y').subarray(0, 3),
			writeChunkWant(1, 'not a chunk id', 0),
			writeChunkWant(1, 'A'.repeat(43), 2),
			writeChunkWant(2 ** 32, 'A'.repeat(43), 0),
			writeChunk(1, new Uint8Array()),
			concatBytes(writeChunkNone(1), new Uint8Array([0])),
			writeAwareness(
				encoding.encode((e) => {
					encoding.writeVarUint(e, 1);
					encoding.writeVarUint(e, 7);
					encoding.writeVarUint(e, 1);
					encoding.writeVarString(e, JSON.stringify({ typing: true }));
				})
			)
		];
		for (const bytes of bad) {
			expect(() => readP2PMessage(bytes)).toThrow(
				expect.objectContaining({ name: P2PFrameError.NAME })
			);
		}
	});
});

describe('proof message', () => {
	it('changes with every field, so a proof fits one role, room, nonce and pair of peers', () => {
		const base: ProofInput = {
			role: 'dialer',
			roomId: newRoomId(),
			nonce: randomBytes(32),
			prover: randomBytes(34),
			verifier: randomBytes(34)
		};
		const variants: ProofInput[] = [
			{ ...base, role: 'listener' },
			{ ...base, roomId: newRoomId() },
			{ ...base, nonce: randomBytes(32) },
			{ ...base, prover: base.verifier, verifier: base.prover },
			{ ...base, prover: randomBytes(34) }
		];
		const message = proofMessage(base);
		expect(new TextDecoder().decode(message.subarray(0, 16))).toBe('kith/p2p-access\0');
		for (const variant of variants) expect(equalBytes(proofMessage(variant), message)).toBe(false);
	});
});
