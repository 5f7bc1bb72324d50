import { x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { aeadDecrypt, asSecretKey, concatBytes, utf8Encode } from '../crypto';
import { fromHex, nameOf } from '../crypto/test-support';
import { LockboxError } from './errors';
import { LOCKBOX_OVERHEAD, openLockbox, sealLockbox } from './lockbox';

function keyPair() {
	const secret = x25519.utils.randomSecretKey();
	return { secret, publicKey: x25519.getPublicKey(secret) };
}

const context = utf8Encode('kith/test\0room-1');

/** X25519 public keys of small order (and non-canonical forms of them): each gives an all-zero secret. */
const SMALL_ORDER_POINTS = [
	'0000000000000000000000000000000000000000000000000000000000000000',
	'0100000000000000000000000000000000000000000000000000000000000000',
	'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
	'5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
	'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
	'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
	'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'
].map(fromHex);

describe('lockbox', () => {
	it('round-trips any plaintext under any context', async () => {
		const recipient = keyPair();
		await fc.assert(
			fc.asyncProperty(
				fc.uint8Array({ maxLength: 2048 }),
				fc.uint8Array({ maxLength: 64 }),
				async (plaintext, ctx) => {
					const box = await sealLockbox(recipient.publicKey, plaintext, ctx);
					expect(box.length).toBe(LOCKBOX_OVERHEAD + plaintext.length);
					expect(await openLockbox(recipient.secret, box, ctx)).toEqual(plaintext);
				}
			),
			{ numRuns: 100 }
		);
	});

	it('is 0x01 || ephemeral public || nonce || AES-GCM(HKDF(X25519, E || R, info || context))', async () => {
		const recipient = keyPair();
		const plaintext = utf8Encode('the epoch key');
		const box = await sealLockbox(recipient.publicKey, plaintext, context);
		expect(box[0]).toBe(1);
		const ephemeral = box.subarray(1, 33);
		const nonce = box.subarray(33, 45);
		// Derived here independently, from the protocol text.
		const shared = x25519.getSharedSecret(recipient.secret, ephemeral);
		const key = hkdf(
			sha256,
			shared,
			concatBytes(ephemeral, recipient.publicKey),
			concatBytes(utf8Encode('kith/lockbox/v1'), new Uint8Array([0]), context),
			32
		);
		expect(await aeadDecrypt(asSecretKey(key), nonce, box.subarray(45), context)).toEqual(
			plaintext
		);
	});

	it('uses a fresh ephemeral key and nonce for every box', async () => {
		const recipient = keyPair();
		const a = await sealLockbox(recipient.publicKey, new Uint8Array(8), context);
		const b = await sealLockbox(recipient.publicKey, new Uint8Array(8), context);
		expect(a.subarray(1, 33)).not.toEqual(b.subarray(1, 33));
		expect(a).not.toEqual(b);
	});

	it('does not open for another recipient', async () => {
		const box = await sealLockbox(keyPair().publicKey, utf8Encode('secret'), context);
		expect(await nameOf(openLockbox(keyPair().secret, box, context))).toBe(LockboxError.NAME);
	});

	it('does not open under another context', async () => {
		const recipient = keyPair();
		const box = await sealLockbox(recipient.publicKey, utf8Encode('secret'), context);
		expect(await nameOf(openLockbox(recipient.secret, box, utf8Encode('kith/test\0room-2')))).toBe(
			LockboxError.NAME
		);
		expect(await nameOf(openLockbox(recipient.secret, box, new Uint8Array()))).toBe(
			LockboxError.NAME
		);
	});

	it('refuses a box with any one byte altered', async () => {
		const recipient = keyPair();
		const box = await sealLockbox(recipient.publicKey, utf8Encode('secret'), context);
		await fc.assert(
			fc.asyncProperty(
				fc.nat({ max: box.length - 1 }),
				fc.integer({ min: 1, max: 255 }),
				async (index, delta) => {
					const altered = box.slice();
					altered[index] = ((altered[index] as number) + delta) & 0xff;
					expect(await nameOf(openLockbox(recipient.secret, altered, context))).toBe(
						LockboxError.NAME
					);
				}
			),
			{ numRuns: 150 }
		);
	});

	it('refuses truncated and extended boxes, and other versions', async () => {
		const recipient = keyPair();
		const box = await sealLockbox(recipient.publicKey, utf8Encode('secret'), context);
		for (const bad of [
			box.subarray(0, box.length - 1),
			box.subarray(0, LOCKBOX_OVERHEAD - 1),
			new Uint8Array(),
			concatBytes(box, new Uint8Array(1)),
			concatBytes(new Uint8Array([2]), box.subarray(1))
		]) {
			expect(await nameOf(openLockbox(recipient.secret, bad, context))).toBe(LockboxError.NAME);
		}
	});

	it('refuses keys of the wrong length', async () => {
		const recipient = keyPair();
		const box = await sealLockbox(recipient.publicKey, utf8Encode('secret'), context);
		expect(await nameOf(sealLockbox(new Uint8Array(31), new Uint8Array(1), context))).toBe(
			LockboxError.NAME
		);
		expect(await nameOf(sealLockbox(new Uint8Array(33), new Uint8Array(1), context))).toBe(
			LockboxError.NAME
		);
		expect(await nameOf(openLockbox(recipient.secret.subarray(0, 31), box, context))).toBe(
			LockboxError.NAME
		);
	});

	it('refuses to seal to a small-order public key (the shared secret would be zero)', async () => {
		for (const point of SMALL_ORDER_POINTS) {
			const error = await sealLockbox(point, utf8Encode('secret'), context).catch((e) => e);
			expect(error).toMatchObject({ name: LockboxError.NAME });
		}
	});

	it('refuses to open a box whose ephemeral key has small order', async () => {
		const recipient = keyPair();
		const box = await sealLockbox(recipient.publicKey, utf8Encode('secret'), context);
		for (const point of SMALL_ORDER_POINTS) {
			const forged = box.slice();
			forged.set(point, 1);
			expect(await nameOf(openLockbox(recipient.secret, forged, context))).toBe(LockboxError.NAME);
		}
	});

	it('fails with LockboxError, never anything else, on random boxes', async () => {
		const recipient = keyPair();
		await fc.assert(
			fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), async (bytes) => {
				expect(await nameOf(openLockbox(recipient.secret, bytes, context))).toBe(LockboxError.NAME);
			}),
			{ numRuns: 200 }
		);
	});
});
