import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
	createSigner,
	ed25519PublicKey,
	hasWebCryptoEd25519,
	newSigningSeed,
	randomBytes,
	utf8Encode,
	verifySignature,
	verifySignatureNow,
	verifySignatureSync
} from '.';
import { fromHex, hex } from './test-support';

// RFC 8032 §7.1, tests 1 and 2.
const RFC8032 = [
	{
		seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
		publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
		message: '',
		signature:
			'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b'
	},
	{
		seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
		publicKey: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
		message: '72',
		signature:
			'92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00'
	}
];

/** Both verification paths, so every rejection is checked on each. */
const verifiers = [
	['verifySignature', verifySignature],
	[
		'verifySignatureSync',
		async (...args: Parameters<typeof verifySignatureSync>) => verifySignatureSync(...args)
	],
	// No platform verifier is installed here: noble (the relay's is tested in sync-server).
	[
		'verifySignatureNow',
		async (...args: Parameters<typeof verifySignatureNow>) => verifySignatureNow(...args)
	]
] as const;

describe('Ed25519 signers', () => {
	it('this runtime has WebCrypto Ed25519, so both paths below are really exercised', async () => {
		expect(await hasWebCryptoEd25519()).toBe(true);
	});

	for (const forceNoble of [false, true]) {
		it(`${forceNoble ? 'noble' : 'WebCrypto'} signer matches the RFC 8032 vectors`, async () => {
			for (const vector of RFC8032) {
				const signer = await createSigner(fromHex(vector.seed), forceNoble);
				expect(hex(signer.publicKey)).toBe(vector.publicKey);
				expect(hex(await signer.sign(fromHex(vector.message)))).toBe(vector.signature);
			}
		});
	}

	it('WebCrypto and noble produce identical signatures that each verifier accepts', async () => {
		await fc.assert(
			fc.asyncProperty(
				fc.uint8Array({ minLength: 32, maxLength: 32 }),
				fc.uint8Array({ maxLength: 300 }),
				async (seed, message) => {
					const web = await createSigner(seed);
					const noble = await createSigner(seed, true);
					expect(web.publicKey).toEqual(noble.publicKey);
					expect(web.publicKey).toEqual(ed25519PublicKey(seed));
					const a = await web.sign(message);
					const b = await noble.sign(message);
					expect(a).toEqual(b);
					expect(await verifySignature(web.publicKey, message, b)).toBe(true);
					expect(verifySignatureSync(noble.publicKey, message, a)).toBe(true);
				}
			),
			{ numRuns: 40 }
		);
	});

	it('the noble signer keeps its own copy of the seed', async () => {
		const seed = newSigningSeed();
		const signer = await createSigner(seed, true);
		const message = utf8Encode('hello');
		const before = await signer.sign(message);
		seed.fill(0);
		expect(await signer.sign(message)).toEqual(before);
	});
});

describe.each(verifiers)('%s', (_name, verify) => {
	const message = utf8Encode('kith test message');

	async function signed() {
		const signer = await createSigner(newSigningSeed());
		return { signer, signature: await signer.sign(message) };
	}

	it('accepts a valid signature', async () => {
		const { signer, signature } = await signed();
		expect(await verify(signer.publicKey, message, signature)).toBe(true);
	});

	it('rejects another key, another message, another signature', async () => {
		const { signer, signature } = await signed();
		const other = await createSigner(newSigningSeed());
		expect(await verify(other.publicKey, message, signature)).toBe(false);
		expect(await verify(signer.publicKey, utf8Encode('kith test messagf'), signature)).toBe(false);
		expect(await verify(signer.publicKey, message, await other.sign(message))).toBe(false);
	});

	it('rejects every single flipped bit of the signature', async () => {
		const { signer, signature } = await signed();
		for (let bit = 0; bit < signature.length * 8; bit += 7) {
			const bad = signature.slice();
			bad[bit >> 3] = (bad[bit >> 3] as number) ^ (1 << (bit & 7));
			expect(await verify(signer.publicKey, message, bad)).toBe(false);
		}
	});

	it('returns false, never throws, for malformed lengths', async () => {
		const { signer, signature } = await signed();
		for (const key of [new Uint8Array(0), signer.publicKey.subarray(0, 31), randomBytes(33)]) {
			expect(await verify(key, message, signature)).toBe(false);
		}
		for (const sig of [new Uint8Array(0), signature.subarray(0, 63), randomBytes(65)]) {
			expect(await verify(signer.publicKey, message, sig)).toBe(false);
		}
	});

	it('returns false for bytes that are not a curve point', async () => {
		const { signature } = await signed();
		// y = 2 is not on edwards25519; y = p (non-canonical) neither decodes strictly.
		const notAPoint = new Uint8Array(32);
		notAPoint[0] = 2;
		const nonCanonical = fromHex(
			'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'
		);
		expect(await verify(notAPoint, message, signature)).toBe(false);
		expect(await verify(nonCanonical, message, signature)).toBe(false);
	});

	it('refuses small-order public keys, for which a secret-free signature would verify', async () => {
		// The identity point as a public key with R = identity, S = 0 satisfies the
		// verification equation for every message.
		const identity = new Uint8Array(32);
		identity[0] = 1;
		const forged = new Uint8Array(64);
		forged[0] = 1;
		expect(await verify(identity, message, forged)).toBe(false);
		expect(await verify(identity, utf8Encode('anything at all'), forged)).toBe(false);
		// The point of order 2, (0, -1).
		const order2 = fromHex('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f');
		expect(await verify(order2, message, forged)).toBe(false);
	});

	it('rejects a non-canonical S (S + L), the classic malleability', async () => {
		const { signer, signature } = await signed();
		// L = 2^252 + 27742317777372353535851937790883648493, little-endian.
		const L = fromHex('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010');
		const malleated = signature.slice();
		let carry = 0;
		for (let i = 0; i < 32; i++) {
			const sum = (malleated[32 + i] as number) + (L[i] as number) + carry;
			malleated[32 + i] = sum & 0xff;
			carry = sum >> 8;
		}
		expect(carry).toBe(0); // S < L < 2^253, so S + L still fits in 32 bytes
		expect(await verify(signer.publicKey, message, malleated)).toBe(false);
	});
});
