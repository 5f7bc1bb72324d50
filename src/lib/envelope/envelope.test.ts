import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
	aeadEncrypt,
	asBufferSource,
	bucketSize,
	concatBytes,
	createSigner,
	newRoomId,
	newSecretKey,
	newSigningSeed,
	pad,
	toBase64Url,
	unpad,
	utf8Decode,
	utf8Encode,
	type RoomId,
	type SecretKey,
	type Signer
} from '../crypto';
import {
	clientIdFor,
	ENVELOPE_VERSION,
	EnvelopeError,
	envelopeId,
	MAX_ENVELOPE_BYTES,
	openEnvelope,
	parseEnvelope,
	parseFrame,
	sealEnvelope,
	verifyFrame,
	verifyFrameSync,
	type EnvelopeErrorCode,
	type OpenContext
} from '.';

// An independent encoder of the documented wire format (docs/protocol.md), so the
// tests pin the bytes rather than re-using the code under test.
const CONTEXT = utf8Encode('kith/envelope\0');

function varUint(n: number): Uint8Array {
	const out: number[] = [];
	while (n > 0x7f) {
		out.push(0x80 | (n % 128));
		n = Math.floor(n / 128);
	}
	out.push(n);
	return new Uint8Array(out);
}

function varBytes(bytes: Uint8Array): Uint8Array {
	return concatBytes(varUint(bytes.length), bytes);
}

function v1Body(roomId: string, epoch: number, nonce: Uint8Array, ciphertext: Uint8Array) {
	return concatBytes(varBytes(utf8Encode(roomId)), varUint(epoch), nonce, varBytes(ciphertext));
}

/**
 * version || varUint clock || body || signer || Ed25519(context || everything before
 * the signature).
 */
async function frame(
	version: number,
	clock: number,
	body: Uint8Array,
	signer: Signer,
	claimed = signer.publicKey
) {
	const signed = concatBytes(new Uint8Array([version]), varUint(clock), body, claimed);
	return concatBytes(signed, await signer.sign(concatBytes(CONTEXT, signed)));
}

function aad(roomId: string, epoch: number, signer: Uint8Array): Uint8Array {
	return concatBytes(new Uint8Array([1]), varBytes(utf8Encode(roomId)), varUint(epoch), signer);
}

/** The error code an open attempt ends with; anything but an EnvelopeError fails the test. */
async function codeOf(
	attempt: Promise<unknown> | (() => unknown)
): Promise<EnvelopeErrorCode | 'ok'> {
	try {
		await (typeof attempt === 'function' ? attempt() : attempt);
		return 'ok';
	} catch (error) {
		expect((error as Error).name).toBe(EnvelopeError.NAME);
		return (error as EnvelopeError).code;
	}
}

const EPOCH = 300; // two varUint bytes, so multi-byte integers are covered
const CLOCK = 70_000; // three varUint bytes: f0 a2 04
let signer: Signer;
let other: Signer;
let roomId: RoomId;
let key: SecretKey;
let ctx: OpenContext;
let sealed: { id: string; bytes: Uint8Array };

beforeAll(async () => {
	signer = await createSigner(newSigningSeed());
	other = await createSigner(newSigningSeed());
	roomId = newRoomId();
	key = newSecretKey();
	ctx = { roomId, keyForEpoch: (epoch) => (epoch === EPOCH ? key : undefined) };
	sealed = await sealEnvelope({
		clock: CLOCK,
		roomId,
		epoch: EPOCH,
		key,
		signer,
		plaintext: utf8Encode('hello, kith')
	});
});

/**
 * Offsets of the fields of `sealed` (the clock takes three varUint bytes, the epoch and
 * the ciphertext length two).
 */
function layout(bytes: Uint8Array) {
	const clock = 1;
	const room = clock + 3;
	const epoch = room + 1 + 22;
	const nonce = epoch + 2;
	const ctLength = nonce + 12;
	const ciphertext = ctLength + 2;
	const signerAt = bytes.length - 96;
	return {
		clock,
		room,
		epoch,
		nonce,
		ctLength,
		ciphertext,
		signer: signerAt,
		signature: signerAt + 32
	};
}

describe('seal / open', () => {
	it('round-trips', async () => {
		const opened = await openEnvelope(sealed.bytes, ctx);
		expect(utf8Decode(opened.plaintext)).toBe('hello, kith');
		expect(opened.epoch).toBe(EPOCH);
		expect(opened.signer).toEqual(signer.publicKey);
		expect(opened.id).toBe(sealed.id);
	});

	it('round-trips any plaintext and epoch', async () => {
		await fc.assert(
			fc.asyncProperty(
				fc.uint8Array({ maxLength: 5000 }),
				fc.oneof(fc.nat({ max: 200 }), fc.nat(), fc.constant(2 ** 40)),
				async (plaintext, epoch) => {
					const env = await sealEnvelope({ clock: 0, roomId, epoch, key, signer, plaintext });
					const opened = await openEnvelope(env.bytes, { roomId, keyForEpoch: () => key });
					expect(opened.plaintext).toEqual(plaintext);
					expect(opened.epoch).toBe(epoch);
				}
			),
			{ numRuns: 60 }
		);
	});

	it('carries any clock up to 2^32 - 1 in its signed frame', async () => {
		await fc.assert(
			fc.asyncProperty(
				fc.oneof(fc.nat({ max: 300 }), fc.nat({ max: 0xffffffff }), fc.constant(0xffffffff)),
				async (clock) => {
					const plaintext = utf8Encode('x');
					const env = await sealEnvelope({ clock, roomId, epoch: 1, key, signer, plaintext });
					const parsed = parseFrame(env.bytes);
					expect(parsed.clock).toBe(clock);
					expect(parsed.bodyStart).toBe(1 + varUint(clock).length);
					expect(parseEnvelope(env.bytes).clock).toBe(clock);
					expect(await verifyFrame(parsed)).toBe(true);
				}
			),
			{ numRuns: 40 }
		);
	});

	it('has the documented layout, byte for byte', async () => {
		const bytes = sealed.bytes;
		const at = layout(bytes);
		expect(bytes[0]).toBe(ENVELOPE_VERSION);
		expect(ENVELOPE_VERSION).toBe(1);
		expect([...bytes.subarray(at.clock, at.room)]).toEqual([0xf0, 0xa2, 0x04]); // 70000
		expect(parseFrame(bytes)).toMatchObject({ version: 1, clock: CLOCK, bodyStart: at.room });
		expect(bytes[at.room]).toBe(22);
		expect(utf8Decode(bytes.subarray(at.room + 1, at.epoch))).toBe(roomId);
		expect([...bytes.subarray(at.epoch, at.nonce)]).toEqual([0xac, 0x02]); // 300
		const ctLength = bucketSize(11) + 16; // padded to 256, plus the GCM tag
		expect([...bytes.subarray(at.ctLength, at.ciphertext)]).toEqual([...varUint(ctLength)]);
		expect(at.ciphertext + ctLength).toBe(at.signer);
		expect(bytes.subarray(at.signer, at.signature)).toEqual(signer.publicKey);
		const nonce = bytes.subarray(at.nonce, at.ctLength);
		const ciphertext = bytes.subarray(at.ciphertext, at.signer);
		// Rebuild the whole frame with the independent encoder and re-sign: identical bytes
		// (Ed25519 is deterministic).
		expect(await frame(1, CLOCK, v1Body(roomId, EPOCH, nonce, ciphertext), signer)).toEqual(bytes);
		// The id is base64url(SHA-256(bytes)).
		expect(sealed.id).toBe(toBase64Url(createHash('sha256').update(bytes).digest()));
		expect(sealed.id).toBe(envelopeId(bytes));
		expect(sealed.id).toHaveLength(43);
	});

	it('encrypts padded plaintext under AES-256-GCM with the header and signer as AAD (not the clock)', async () => {
		const at = layout(sealed.bytes);
		const nonce = sealed.bytes.slice(at.nonce, at.ctLength);
		const ciphertext = sealed.bytes.slice(at.ciphertext, at.signer);
		const cryptoKey = await crypto.subtle.importKey('raw', key.slice(), 'AES-GCM', false, [
			'decrypt'
		]);
		const padded = new Uint8Array(
			await crypto.subtle.decrypt(
				{
					name: 'AES-GCM',
					iv: asBufferSource(nonce),
					additionalData: asBufferSource(aad(roomId, EPOCH, signer.publicKey))
				},
				cryptoKey,
				asBufferSource(ciphertext)
			)
		);
		expect(padded).toHaveLength(256);
		expect(utf8Decode(unpad(padded))).toBe('hello, kith');
	});

	it('hides the length: 10 and 200 bytes give envelopes of equal size', async () => {
		const seal = (n: number) =>
			sealEnvelope({
				clock: 0,
				roomId,
				epoch: 1,
				key,
				signer,
				plaintext: new Uint8Array(n).fill(65)
			});
		const [a, b, c] = await Promise.all([seal(10), seal(200), seal(300)]);
		expect(a.bytes.length).toBe(b.bytes.length);
		expect(c.bytes.length).toBeGreaterThan(b.bytes.length);
	});

	it('uses a fresh nonce each time: equal plaintexts give different envelopes', async () => {
		const input = { clock: 0, roomId, epoch: 1, key, signer, plaintext: utf8Encode('same') };
		const [a, b] = await Promise.all([sealEnvelope(input), sealEnvelope(input)]);
		expect(a.id).not.toBe(b.id);
	});

	it('refuses to seal without a key (MissingKeyError), never sending plaintext', async () => {
		const attempt = sealEnvelope({
			clock: 0,
			roomId,
			epoch: 1,
			key: undefined as unknown as SecretKey,
			signer,
			plaintext: utf8Encode('x')
		});
		await expect(attempt).rejects.toMatchObject({ name: 'MissingKeyError' });
	});
});

describe('open refuses', () => {
	it("the wrong key: 'decrypt-failed'", async () => {
		const wrong = { roomId, keyForEpoch: () => newSecretKey() };
		expect(await codeOf(openEnvelope(sealed.bytes, wrong))).toBe('decrypt-failed');
	});

	it("a missing epoch key: 'missing-key'", async () => {
		expect(await codeOf(openEnvelope(sealed.bytes, { roomId, keyForEpoch: () => undefined }))).toBe(
			'missing-key'
		);
		const env = await sealEnvelope({
			clock: 0,
			roomId,
			epoch: 7,
			key,
			signer,
			plaintext: utf8Encode('x')
		});
		expect(await codeOf(openEnvelope(env.bytes, ctx))).toBe('missing-key');
	});

	it("a replay into another conversation: 'wrong-room'", async () => {
		const elsewhere = { ...ctx, roomId: newRoomId() };
		expect(await codeOf(openEnvelope(sealed.bytes, elsewhere))).toBe('wrong-room');
	});

	it("the room field rewritten and re-signed by the same key: 'decrypt-failed' (AAD)", async () => {
		const envelope = parseEnvelope(sealed.bytes);
		const target = newRoomId();
		const reframed = await frame(
			1,
			CLOCK,
			v1Body(target, EPOCH, envelope.nonce, envelope.ciphertext),
			signer
		);
		expect(await verifyFrame(parseFrame(reframed))).toBe(true);
		expect(await codeOf(openEnvelope(reframed, { ...ctx, roomId: target }))).toBe('decrypt-failed');
	});

	it("the epoch rewritten and re-signed, under the same key: 'decrypt-failed' (AAD)", async () => {
		const envelope = parseEnvelope(sealed.bytes);
		const reframed = await frame(
			1,
			CLOCK,
			v1Body(roomId, 5, envelope.nonce, envelope.ciphertext),
			signer
		);
		const anyEpoch = { roomId, keyForEpoch: () => key };
		expect(await codeOf(openEnvelope(reframed, anyEpoch))).toBe('decrypt-failed');
	});

	it('a non-minimal varUint epoch re-signed by the signer opens as the same operation, under another id', async () => {
		// The AAD is computed from the decoded values in shortest form, so only the signer
		// can make such a variant, and it says nothing the original did not.
		const envelope = parseEnvelope(sealed.bytes);
		const body = concatBytes(
			varBytes(utf8Encode(roomId)),
			new Uint8Array([0xac, 0x82, 0x00]), // 300, in three bytes
			envelope.nonce,
			varBytes(envelope.ciphertext)
		);
		const variant = await frame(1, CLOCK, body, signer);
		const opened = await openEnvelope(variant, ctx);
		expect(opened.epoch).toBe(EPOCH);
		expect(utf8Decode(opened.plaintext)).toBe('hello, kith');
		expect(opened.id).not.toBe(sealed.id);
	});

	it("re-signed by another device (signature stripped, signer swapped), at any clock: 'decrypt-failed'", async () => {
		const envelope = parseEnvelope(sealed.bytes);
		const body = sealed.bytes.subarray(envelope.bodyStart, sealed.bytes.length - 96);
		expect(envelope.ciphertext.length).toBeGreaterThan(0);
		for (const clock of [CLOCK, 0, CLOCK + 1]) {
			const stolen = await frame(1, clock, body, other);
			expect(await verifyFrame(parseFrame(stolen))).toBe(true);
			expect(parseFrame(stolen).signer).toEqual(other.publicKey);
			expect(parseFrame(stolen).clock).toBe(clock);
			expect(await codeOf(openEnvelope(stolen, ctx))).toBe('decrypt-failed');
		}
	});

	it("a signer field naming another device than the one that signed: 'bad-signature'", async () => {
		const body = sealed.bytes.subarray(layout(sealed.bytes).room, sealed.bytes.length - 96);
		const lying = await frame(1, CLOCK, body, other, signer.publicKey);
		expect(await codeOf(openEnvelope(lying, ctx))).toBe('bad-signature');
	});

	it("the clock rewritten without re-signing: 'bad-signature' (the clock is signed)", async () => {
		const body = sealed.bytes.subarray(layout(sealed.bytes).room, sealed.bytes.length - 64);
		for (const clock of [0, 1, CLOCK - 1, CLOCK + 1, 0xffffffff]) {
			// The same body, signer and signature, only the clock in front replaced.
			const moved = concatBytes(
				new Uint8Array([1]),
				varUint(clock),
				body,
				sealed.bytes.subarray(sealed.bytes.length - 64)
			);
			expect(parseFrame(moved).clock).toBe(clock);
			expect(await verifyFrame(parseFrame(moved))).toBe(false);
			expect(verifyFrameSync(parseFrame(moved))).toBe(false);
			expect(await codeOf(openEnvelope(moved, ctx))).toBe('bad-signature');
		}
	});

	it('the clock re-signed by the signer itself opens (it is not in the AAD), under another id', async () => {
		// Only the signing device can do this: the signature covers the clock, and the
		// signer is in the AAD, so nobody else can re-sign. It says nothing new.
		const body = sealed.bytes.subarray(layout(sealed.bytes).room, sealed.bytes.length - 96);
		const moved = await frame(1, CLOCK + 1, body, signer);
		expect(parseFrame(moved).clock).toBe(CLOCK + 1);
		const opened = await openEnvelope(moved, ctx);
		expect(utf8Decode(opened.plaintext)).toBe('hello, kith');
		expect(opened.id).not.toBe(sealed.id);
	});

	it("a clock that does not decode or exceeds 2^32 - 1: 'malformed', even validly signed", async () => {
		const body = sealed.bytes.subarray(layout(sealed.bytes).room, sealed.bytes.length - 96);
		for (const clock of [2 ** 32, 2 ** 40, Number.MAX_SAFE_INTEGER]) {
			const bytes = await frame(1, clock, body, signer);
			expect(await codeOf(() => parseFrame(bytes))).toBe('malformed');
			expect(await codeOf(openEnvelope(bytes, ctx))).toBe('malformed');
		}
		// A varUint whose continuation bits run into the signer: nothing left to read.
		const unterminated = concatBytes(
			new Uint8Array([1, 0x80, 0x80]),
			signer.publicKey,
			new Uint8Array(64)
		);
		expect(await codeOf(() => parseFrame(unterminated))).toBe('malformed');
	});

	it("a flipped byte in the room, epoch, nonce, ciphertext, signer or signature: 'bad-signature'", async () => {
		const at = layout(sealed.bytes);
		const positions = [
			at.clock,
			at.clock + 1,
			at.clock + 2,
			at.room + 1,
			at.room + 22,
			at.epoch,
			at.epoch + 1,
			at.nonce,
			at.nonce + 11,
			at.ciphertext,
			at.ciphertext + 100,
			at.signer - 1,
			at.signer,
			at.signer + 31,
			at.signature,
			at.signature + 63
		];
		for (const position of positions) {
			const bad = sealed.bytes.slice();
			bad[position] = (bad[position] as number) ^ 0x01;
			expect([position, await codeOf(openEnvelope(bad, ctx))]).toEqual([position, 'bad-signature']);
		}
	});

	it('any flipped byte anywhere: refused with a code, never opened, never a crash', async () => {
		const allowed = new Set(['malformed', 'bad-signature', 'unsupported-version']);
		for (const mask of [0x01, 0x80, 0xff]) {
			for (let position = 0; position < sealed.bytes.length; position++) {
				const bad = sealed.bytes.slice();
				bad[position] = (bad[position] as number) ^ mask;
				const code = await codeOf(openEnvelope(bad, ctx));
				expect(allowed.has(code), `${mask}@${position}: ${code}`).toBe(true);
			}
		}
	});

	it("a flipped version byte: 'malformed' for 0, 'unsupported-version' for a newer one", async () => {
		const zero = sealed.bytes.slice();
		zero[0] = 0;
		expect(await codeOf(openEnvelope(zero, ctx))).toBe('malformed');
		const newer = sealed.bytes.slice();
		newer[0] = 3;
		expect(await codeOf(openEnvelope(newer, ctx))).toBe('unsupported-version');
	});

	it("every truncation: 'malformed' or 'bad-signature', never a crash", async () => {
		for (let length = 0; length < sealed.bytes.length; length++) {
			const code = await codeOf(openEnvelope(sealed.bytes.slice(0, length), ctx));
			expect(['malformed', 'bad-signature'], `length ${length}`).toContain(code);
			if (length < 98) expect(code).toBe('malformed'); // version, clock, signer, signature
		}
	});

	it('random garbage: an EnvelopeError, never anything else', async () => {
		await fc.assert(
			fc.asyncProperty(fc.uint8Array({ maxLength: 600 }), async (bytes) => {
				expect(await codeOf(openEnvelope(bytes, ctx))).not.toBe('ok');
			}),
			{ numRuns: 300 }
		);
	});

	it("oversized: 'too-large', before any other check", async () => {
		const huge = new Uint8Array(MAX_ENVELOPE_BYTES + 1); // version 0 would be 'malformed'
		expect(await codeOf(() => parseFrame(huge))).toBe('too-large');
		expect(await codeOf(openEnvelope(huge, ctx))).toBe('too-large');
		const big = new Uint8Array(MAX_ENVELOPE_BYTES);
		const attempt = sealEnvelope({ clock: 0, roomId, epoch: 1, key, signer, plaintext: big });
		expect(await codeOf(attempt)).toBe('too-large');
	});

	it("a validly signed body with trailing bytes, a short nonce or a non-UTF-8 room: 'malformed'", async () => {
		const envelope = parseEnvelope(sealed.bytes);
		const trailing = concatBytes(
			v1Body(roomId, EPOCH, envelope.nonce, envelope.ciphertext),
			new Uint8Array([0])
		);
		const shortNonce = concatBytes(varBytes(utf8Encode(roomId)), varUint(EPOCH), new Uint8Array(5));
		const badUtf8 = concatBytes(
			varBytes(new Uint8Array([0xff, 0xfe])),
			varUint(EPOCH),
			envelope.nonce,
			varBytes(envelope.ciphertext)
		);
		for (const body of [trailing, shortNonce, badUtf8, new Uint8Array(0)]) {
			expect(await codeOf(openEnvelope(await frame(1, CLOCK, body, signer), ctx))).toBe(
				'malformed'
			);
		}
	});

	it("a validly signed and encrypted plaintext without valid padding: 'malformed'", async () => {
		const raw = utf8Encode('not padded at all');
		const { nonce, ciphertext } = await aeadEncrypt(key, raw, aad(roomId, EPOCH, signer.publicKey));
		const env = await frame(1, CLOCK, v1Body(roomId, EPOCH, nonce, ciphertext), signer);
		expect(await codeOf(openEnvelope(env, ctx))).toBe('malformed');
		// The same bytes padded open fine: only the padding was at fault.
		const ok = await aeadEncrypt(key, pad(raw), aad(roomId, EPOCH, signer.publicKey));
		const good = await frame(1, CLOCK, v1Body(roomId, EPOCH, ok.nonce, ok.ciphertext), signer);
		expect(utf8Decode((await openEnvelope(good, ctx)).plaintext)).toBe('not padded at all');
	});

	it('skips the signature check only when the caller says it already verified the frame', async () => {
		const bad = sealed.bytes.slice();
		bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 0x01;
		expect(await codeOf(openEnvelope(bad, ctx))).toBe('bad-signature');
		const opened = await openEnvelope(bad, { ...ctx, verified: true });
		expect(utf8Decode(opened.plaintext)).toBe('hello, kith');
	});
});

describe('frames of a newer version', () => {
	it('are parsed and verified as frames, and refused (kept) as envelopes', async () => {
		const body = utf8Encode('a body this version cannot read');
		const bytes = await frame(2, 300, body, signer);
		const parsed = parseFrame(bytes);
		expect(parsed.version).toBe(2);
		expect(parsed.clock).toBe(300);
		expect(parsed.bodyStart).toBe(3);
		expect(bytes.subarray(parsed.bodyStart, bytes.length - 96)).toEqual(body);
		expect(parsed.signer).toEqual(signer.publicKey);
		expect(parsed.signed).toEqual(bytes.subarray(0, bytes.length - 64));
		expect(await verifyFrame(parsed)).toBe(true);
		expect(verifyFrameSync(parsed)).toBe(true);
		expect(await codeOf(() => parseEnvelope(bytes))).toBe('unsupported-version');
		expect(await codeOf(openEnvelope(bytes, ctx))).toBe('unsupported-version');
	});

	it('with an empty body still frame correctly; a forged one fails verification', async () => {
		const bytes = await frame(2, 0, new Uint8Array(0), signer);
		expect(bytes).toHaveLength(98);
		expect(parseFrame(bytes)).toMatchObject({ version: 2, clock: 0, bodyStart: 2 });
		expect(await verifyFrame(parseFrame(bytes))).toBe(true);
		for (const position of [1, 5]) {
			const forged = bytes.slice();
			forged[position] = (forged[position] as number) ^ 0x01;
			expect(await verifyFrame(parseFrame(forged))).toBe(false);
			expect(verifyFrameSync(parseFrame(forged))).toBe(false);
		}
	});

	it("without a clock (97 bytes, or a clock over 2^32 - 1): 'malformed', even validly signed", async () => {
		const signed = concatBytes(new Uint8Array([2]), signer.publicKey);
		const bare = concatBytes(signed, await signer.sign(concatBytes(CONTEXT, signed)));
		expect(bare).toHaveLength(97);
		expect(await codeOf(() => parseFrame(bare))).toBe('malformed');
		const huge = await frame(2, 2 ** 32, new Uint8Array(0), signer);
		expect(await codeOf(() => parseFrame(huge))).toBe('malformed');
	});

	it('are signed under the envelope context, not a bare signature', async () => {
		const signed = concatBytes(new Uint8Array([2]), varUint(0), signer.publicKey);
		const bare = concatBytes(signed, await signer.sign(signed));
		expect(await verifyFrame(parseFrame(bare))).toBe(false);
	});
});

describe('clientIdFor', () => {
	it('is the first 4 bytes, big-endian unsigned, of SHA-256("kith/yjs-client\\0" || key)', () => {
		const digest = createHash('sha256')
			.update(Buffer.from('kith/yjs-client\0'))
			.update(signer.publicKey)
			.digest();
		expect(clientIdFor(signer.publicKey)).toBe(digest.readUInt32BE(0));
	});

	it('is a deterministic uint32 that differs between keys', async () => {
		const id = clientIdFor(signer.publicKey);
		expect(Number.isInteger(id) && id >= 0 && id < 2 ** 32).toBe(true);
		expect(clientIdFor(signer.publicKey.slice())).toBe(id);
		expect(clientIdFor(other.publicKey)).not.toBe(id);
		const ids = new Set<number>();
		for (let i = 0; i < 200; i++)
			ids.add(clientIdFor((await createSigner(newSigningSeed())).publicKey));
		expect(ids.size).toBe(200);
		for (const value of ids) expect(value).toBeGreaterThanOrEqual(0);
	});

	it('answers from its cache exactly as from the hash, past the cache size and for odd lengths', () => {
		const expected = (key: Uint8Array) =>
			createHash('sha256')
				.update(Buffer.from('kith/yjs-client\0'))
				.update(key)
				.digest()
				.readUInt32BE(0);
		const keys = Array.from({ length: 5000 }, (_, i) => {
			const key = new Uint8Array(32);
			new DataView(key.buffer).setUint32(0, i);
			return key;
		});
		for (let pass = 0; pass < 2; pass++) {
			for (const key of keys) expect(clientIdFor(key)).toBe(expected(key));
		}
		// The same bytes in another array, then the array changed: the answer follows the bytes.
		const key = keys[1]!.slice();
		expect(clientIdFor(key)).toBe(expected(keys[1]!));
		key[31] = 9;
		expect(clientIdFor(key)).toBe(expected(key));
		for (const odd of [new Uint8Array(31), new Uint8Array(33)]) {
			expect(clientIdFor(odd)).toBe(expected(odd));
		}
	});
});

describe('EnvelopeError', () => {
	it('carries a stable name and code', () => {
		const error = new EnvelopeError('wrong-room', 'x');
		expect(error.name).toBe('EnvelopeError');
		expect(error.code).toBe('wrong-room');
		expect(error).toBeInstanceOf(Error);
	});
});
