import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HlcClock, HLC_MAX_COUNTER, HLC_MAX_WALL } from './hlc';
import {
	decodeBatch,
	encodeBatch,
	encodeBatches,
	isOpId,
	makeDelete,
	makeEdit,
	makeReact,
	makeReceipt,
	makeSend,
	MalformedOperationError,
	MAX_TEXT_BYTES,
	MessageTooLongError,
	newOpId,
	opHlc,
	Operation,
	parseOperationBatch,
	utf8ByteLength,
	type OperationBatch,
	type OpId
} from './operations';

const T0 = 1_732_000_000_000;
const ID = 'AAAAAAAAAAAAAAAAAAAAAA'; // 16 zero bytes
const ID2 = 'qqqqqqqqqqqqqqqqqqqqqg';
const USER = 'u'.repeat(43);
const DEVICE = 'd'.repeat(43);
const BOX = 'b'.repeat(82);

function clock() {
	return new HlcClock(() => T0);
}

function send(fields: Record<string, unknown> = {}): Record<string, unknown> {
	return { v: 1, id: ID, hlc: [T0, 0], type: 'send', text: 'hi', ...fields };
}

function batchOf(...ops: unknown[]) {
	return { ops };
}

/** The error thrown by `fn`, asserting it was thrown. */
function thrown(fn: () => unknown): Error {
	try {
		fn();
	} catch (error) {
		return error as Error;
	}
	throw new Error('expected a throw');
}

describe('op ids', () => {
	it('newOpId is 16 random bytes in canonical base64url', () => {
		const ids = new Set<string>();
		for (let i = 0; i < 1000; i++) {
			const id = newOpId();
			expect(id).toMatch(/^[A-Za-z0-9_-]{21}[AQgw]$/);
			expect(isOpId(id)).toBe(true);
			ids.add(id);
		}
		expect(ids.size).toBe(1000);
	});

	it('isOpId refuses other lengths and non-canonical encodings', () => {
		expect(isOpId(ID)).toBe(true);
		expect(isOpId(ID.slice(1))).toBe(false);
		expect(isOpId(ID + 'A')).toBe(false);
		expect(isOpId('AAAAAAAAAAAAAAAAAAAAAB')).toBe(false); // spare bits set
		expect(isOpId('AAAAAAAAAAAAAAAAAAAA+A')).toBe(false); // base64, not base64url
		expect(isOpId(42)).toBe(false);
	});
});

describe('utf8ByteLength', () => {
	it('matches TextEncoder for any UTF-16 string, lone surrogates included', () => {
		const anyUnit = fc.integer({ min: 0, max: 0xffff }).map((u) => String.fromCharCode(u));
		const encoder = new TextEncoder();
		fc.assert(
			fc.property(fc.string({ unit: fc.oneof(anyUnit, fc.string({ unit: 'binary' })) }), (text) => {
				expect(utf8ByteLength(text)).toBe(encoder.encode(text).length);
			})
		);
	});
});

describe('the 64 KiB text limit', () => {
	// Each case: text, its UTF-8 size. The limit is in bytes, not characters.
	const exactly = [
		['ASCII', 'a'.repeat(65_536)],
		['2-byte é', 'é'.repeat(32_768)],
		['3-byte €', '€'.repeat(21_845) + 'a'],
		['4-byte 😀', '😀'.repeat(16_384)]
	] as const;

	it.each(exactly)('accepts exactly 65536 bytes (%s)', (_label, text) => {
		expect(utf8ByteLength(text)).toBe(MAX_TEXT_BYTES);
		const op = makeSend(clock(), text);
		expect(op.text).toBe(text);
		expect(parseOperationBatch(batchOf(send({ text }))).ops).toHaveLength(1);
		expect(decodeBatch(encodeBatch({ ops: [op] })).ops[0]).toEqual(op);
	});

	it.each(exactly)('refuses 65537 bytes (%s + 1 byte)', (_label, base) => {
		const text = base + 'a';
		const error = thrown(() => makeSend(clock(), text));
		expect(error.name).toBe(MessageTooLongError.NAME);
		expect(error).toBeInstanceOf(MessageTooLongError);
		expect((error as MessageTooLongError).bytes).toBe(65_537);
		// A message the user can act on.
		expect(error.message).toMatch(/too long/);
		expect(error.message).toMatch(/Shorten it/);

		// From the network, the same text is a malformed op, not a crash.
		const remote = thrown(() => parseOperationBatch(batchOf(send({ text }))));
		expect(remote.name).toBe('MalformedOperationError');
	});

	it('counts a multi-byte character that crosses the limit as a whole', () => {
		// 65535 bytes of ASCII + a 2-byte char = 65537 bytes in 65536 UTF-16 units.
		const text = 'a'.repeat(65_535) + 'é';
		expect(text.length).toBe(65_536);
		expect(() => makeSend(clock(), text)).toThrow(MessageTooLongError);
	});

	it('applies to edits as well', () => {
		expect(() => makeEdit(clock(), ID as OpId, 'a'.repeat(65_537))).toThrow(MessageTooLongError);
		expect(makeEdit(clock(), ID as OpId, 'a'.repeat(65_536)).text).toHaveLength(65_536);
	});

	it('refuses a huge remote text', () => {
		expect(() => parseOperationBatch(batchOf(send({ text: 'x'.repeat(4_000_000) })))).toThrow(
			MalformedOperationError
		);
	});
});

describe('builders', () => {
	it('stamp a fresh id and the clock time, and produce valid ops', () => {
		const c = clock();
		const a = makeSend(c, 'hello');
		const b = makeSend(c, 'reply', a.id);
		expect(a).toEqual({ v: 1, id: a.id, hlc: [T0, 0], type: 'send', text: 'hello' });
		expect('replyTo' in a).toBe(false);
		expect(b.replyTo).toBe(a.id);
		expect(opHlc(b)).toEqual({ wall: T0, counter: 1 });
		expect(a.id).not.toBe(b.id);

		const ops = [
			makeEdit(c, a.id, 'hello!'),
			makeDelete(c, a.id),
			makeReact(c, a.id, '👍', true),
			makeReceipt(c, 'read', { hlc: opHlc(b), id: b.id })
		];
		for (const op of ops) expect(Operation.parse(op)).toEqual(op);
		expect(ops[3]).toMatchObject({ kind: 'read', upTo: [T0, 1], upToId: b.id });
	});

	it('replace lone surrogates in user text rather than refuse it', () => {
		const op = makeSend(clock(), 'broken \ud83d paste');
		expect(op.text).toBe('broken \ufffd paste');
	});

	it('refuse what peers would refuse', () => {
		expect(thrown(() => makeReact(clock(), ID as OpId, '', true)).name).toBe(
			'MalformedOperationError'
		);
		expect(thrown(() => makeReact(clock(), ID as OpId, '👍'.repeat(17), true)).name).toBe(
			'MalformedOperationError'
		);
		expect(thrown(() => makeDelete(clock(), 'nope' as OpId)).name).toBe('MalformedOperationError');
	});
});

describe('parseOperationBatch', () => {
	const valid: Array<[string, Record<string, unknown>]> = [
		['send', send()],
		['send, empty text', send({ text: '' })],
		['send with replyTo', send({ replyTo: ID2 })],
		['edit', { v: 1, id: ID, hlc: [T0, 1], type: 'edit', target: ID2, text: 'x' }],
		['delete', { v: 1, id: ID, hlc: [T0, 1], type: 'delete', target: ID2 }],
		['react', { v: 1, id: ID, hlc: [T0, 1], type: 'react', target: ID2, emoji: '👍🏽', on: true }],
		[
			'react off',
			{ v: 1, id: ID, hlc: [T0, 1], type: 'react', target: ID2, emoji: '❤️', on: false }
		],
		[
			'react, 64-byte emoji',
			{ v: 1, id: ID, hlc: [T0, 1], type: 'react', target: ID2, emoji: '😀'.repeat(16), on: true }
		],
		[
			'react, __proto__ as emoji',
			{ v: 1, id: ID, hlc: [T0, 1], type: 'react', target: ID2, emoji: '__proto__', on: true }
		],
		[
			'receipt',
			{ v: 1, id: ID, hlc: [T0, 1], type: 'receipt', kind: 'read', upTo: [T0, 0], upToId: ID2 }
		],
		[
			'member.add',
			{
				v: 1,
				id: ID,
				hlc: [0, 0],
				type: 'member.add',
				user: USER,
				devices: [DEVICE],
				role: 'admin'
			}
		],
		['member.remove', { v: 1, id: ID, hlc: [0, 0], type: 'member.remove', user: USER }],
		['member.role', { v: 1, id: ID, hlc: [0, 0], type: 'member.role', user: USER, role: 'owner' }],
		['epoch', { v: 1, id: ID, hlc: [0, 0], type: 'epoch', epoch: 3, boxes: { [DEVICE]: BOX } }],
		[
			'seed',
			{
				v: 1,
				id: ID,
				hlc: [0, 0],
				type: 'seed',
				epoch: 1,
				part: 0,
				parts: 1,
				devices: [DEVICE],
				ops: [{ d: 0, op: { v: 1, id: ID2, hlc: [0, 0], type: 'member.remove', user: USER } }]
			}
		],
		['extreme hlc', send({ hlc: [HLC_MAX_WALL, HLC_MAX_COUNTER] })]
	];

	it.each(valid)('accepts %s', (_label, op) => {
		const parsed = parseOperationBatch(batchOf(op));
		expect(parsed).toEqual({ ops: [op], unknown: 0 });
	});

	const invalid: Array<[string, unknown]> = [
		['a non-object op', 'send'],
		['an op without v', { ...send(), v: undefined }],
		['v: 0', send({ v: 0 })],
		['v as a string', send({ v: '1' })],
		['fractional v', send({ v: 1.5 })],
		['a missing id', send({ id: undefined })],
		['a 21-char id', send({ id: ID.slice(1) })],
		['a non-canonical id', send({ id: 'AAAAAAAAAAAAAAAAAAAAAB' })],
		['an hlc object', send({ hlc: { wall: T0, counter: 0 } })],
		['a negative wall', send({ hlc: [-1, 0] })],
		['a fractional wall', send({ hlc: [T0 + 0.5, 0] })],
		['a 14-digit wall', send({ hlc: [HLC_MAX_WALL + 1, 0] })],
		['a 7-digit counter', send({ hlc: [T0, HLC_MAX_COUNTER + 1] })],
		['a 3-element hlc', send({ hlc: [T0, 0, 0] })],
		['an unknown v1 type', send({ type: 'poll' })],
		['a missing type', send({ type: undefined })],
		['text not a string', send({ text: 42 })],
		['a lone surrogate in text', send({ text: 'a\udc00b' })],
		['a bad replyTo', send({ replyTo: 'x' })],
		['an edit without target', { v: 1, id: ID, hlc: [T0, 1], type: 'edit', text: 'x' }],
		[
			'an empty emoji',
			{ v: 1, id: ID, hlc: [T0, 1], type: 'react', target: ID2, emoji: '', on: true }
		],
		[
			'a 65-byte emoji',
			{
				v: 1,
				id: ID,
				hlc: [T0, 1],
				type: 'react',
				target: ID2,
				emoji: '😀'.repeat(16) + 'a',
				on: true
			}
		],
		[
			'react with on as a string',
			{ v: 1, id: ID, hlc: [T0, 1], type: 'react', target: ID2, emoji: '👍', on: 'yes' }
		],
		[
			'an unknown receipt kind',
			{ v: 1, id: ID, hlc: [T0, 1], type: 'receipt', kind: 'seen', upTo: [T0, 0], upToId: ID2 }
		],
		[
			'an unknown role',
			{ v: 1, id: ID, hlc: [0, 0], type: 'member.add', user: USER, devices: [], role: 'god' }
		],
		['a short user id', { v: 1, id: ID, hlc: [0, 0], type: 'member.remove', user: 'alice' }],
		['epoch 0', { v: 1, id: ID, hlc: [0, 0], type: 'epoch', epoch: 0, boxes: { [DEVICE]: BOX } }],
		['an epoch without boxes', { v: 1, id: ID, hlc: [0, 0], type: 'epoch', epoch: 1, boxes: {} }],
		[
			'a box for something not a device',
			{ v: 1, id: ID, hlc: [0, 0], type: 'epoch', epoch: 1, boxes: { bob: BOX } }
		],
		[
			'a seed without ops',
			{
				v: 1,
				id: ID,
				hlc: [0, 0],
				type: 'seed',
				epoch: 1,
				part: 0,
				parts: 1,
				devices: [DEVICE],
				ops: []
			}
		],
		[
			'a seed carrying an epoch op',
			{
				v: 1,
				id: ID,
				hlc: [0, 0],
				type: 'seed',
				epoch: 1,
				part: 0,
				parts: 1,
				devices: [DEVICE],
				ops: [
					{
						d: 0,
						op: { v: 1, id: ID2, hlc: [0, 0], type: 'epoch', epoch: 2, boxes: { [DEVICE]: BOX } }
					}
				]
			}
		]
	];

	it.each(invalid)('refuses %s with MalformedOperationError', (_label, op) => {
		const error = thrown(() => parseOperationBatch(batchOf(send({ id: ID2 }), op)));
		expect(error.name).toBe('MalformedOperationError');
		expect((error as MalformedOperationError).index).toBe(1);
		expect((error as MalformedOperationError).issues.length).toBeGreaterThan(0);
	});

	it.each([
		['null', null],
		['an array', []],
		['no ops', {}],
		['ops not an array', { ops: send() }],
		['an empty batch', { ops: [] }]
	])('refuses %s as a batch', (_label, json) => {
		const error = thrown(() => parseOperationBatch(json));
		expect(error.name).toBe('MalformedOperationError');
		expect((error as MalformedOperationError).index).toBeNull();
	});

	it('never quotes the input in its error message', () => {
		const secret = 'my bank PIN is 4921';
		const error = thrown(() =>
			parseOperationBatch(batchOf(send({ text: secret, replyTo: secret, hlc: secret })))
		);
		expect(error.message).not.toContain('4921');
		expect(JSON.stringify((error as MalformedOperationError).issues)).not.toContain('4921');
	});

	it('skips and counts ops of a newer version instead of failing', () => {
		const future = [
			{ v: 2, id: ID, hlc: [T0, 0], type: 'poll', question: '?' },
			{ v: 2, type: 'send', text: 42 }, // known type, newer meaning: not validated
			{ v: 7 }
		];
		const parsed = parseOperationBatch(batchOf(send(), ...future, send({ id: ID2 })));
		expect(parsed.unknown).toBe(3);
		expect(parsed.ops.map((op) => op.id)).toEqual([ID, ID2]);

		// A batch of only newer ops is fine too: the envelope is kept for later.
		expect(parseOperationBatch(batchOf(...future))).toEqual({ ops: [], unknown: 3 });
	});

	it('ignores fields it does not know', () => {
		const parsed = parseOperationBatch(batchOf(send({ mood: 'happy' })));
		expect(parsed.ops[0]).toEqual(send());
		expect(parseOperationBatch({ ops: [send()], compression: 'none' }).ops).toHaveLength(1);
	});
});

describe('encodeBatch / decodeBatch', () => {
	it('encodes built ops without validating them again, to the same bytes', () => {
		const c = clock();
		const op = makeSend(c, 'built once');
		expect(Object.isFrozen(op)).toBe(true);
		expect(Object.isFrozen(op.hlc)).toBe(true);
		// A plain copy is not a built op: it goes through validation, with the same result.
		expect(encodeBatch({ ops: [op] })).toEqual(encodeBatch({ ops: [{ ...op }] }));
		// A copy altered into something invalid is still refused.
		expect(() => encodeBatch({ ops: [{ ...op, text: 5 } as unknown as Operation] })).toThrow(
			MalformedOperationError
		);
	});

	it('round-trip a batch of every builder', () => {
		const c = clock();
		const first = makeSend(c, 'Grüße 👋');
		const batch: OperationBatch = {
			ops: [
				first,
				makeSend(c, 'second', first.id),
				makeEdit(c, first.id, 'Grüße! 👋'),
				makeReact(c, first.id, '🎉', true),
				makeReceipt(c, 'delivered', { hlc: opHlc(first), id: first.id }),
				makeDelete(c, first.id)
			]
		};
		const bytes = encodeBatch(batch);
		expect(bytes).toBeInstanceOf(Uint8Array);
		expect(JSON.parse(new TextDecoder().decode(bytes))).toEqual(batch);
		expect(decodeBatch(bytes)).toEqual({ ...batch, unknown: 0 });
	});

	it('encodeBatch refuses a batch other devices would refuse, and drops stray fields', () => {
		const tooLong = { ...makeSend(clock(), 'x'), text: 'x'.repeat(65_537) };
		expect(thrown(() => encodeBatch({ ops: [tooLong] })).name).toBe('MalformedOperationError');
		expect(thrown(() => encodeBatch({ ops: [] })).name).toBe('MalformedOperationError');
		const stray = { ...makeSend(clock(), 'x'), local: 'pending' } as Operation;
		expect(new TextDecoder().decode(encodeBatch({ ops: [stray] }))).not.toContain('pending');
	});

	it.each([
		['invalid UTF-8', new Uint8Array([0x7b, 0xff, 0x7d])],
		['a byte-order mark', new TextEncoder().encode('\ufeff' + JSON.stringify(batchOf(send())))],
		['not JSON', new TextEncoder().encode('{ops:')],
		['empty input', new Uint8Array(0)],
		['JSON that is not a batch', new TextEncoder().encode('[1,2]')]
	])('decodeBatch refuses %s with MalformedOperationError', (_label, bytes) => {
		expect(thrown(() => decodeBatch(bytes)).name).toBe('MalformedOperationError');
	});
});

describe('send with an attachment', () => {
	const manifest = {
		v: 1,
		id: 'AAAAAAAAAAAAAAAAAAAAAA',
		name: 'photo.jpg',
		type: 'image/jpeg',
		size: 3,
		chunkSize: 262144,
		chunks: ['A'.repeat(43)],
		key: 'A'.repeat(43)
	};

	it('round-trips, and an old op without one still reads', () => {
		const clock = { now: () => ({ wall: 1, counter: 0 }) };
		const op = makeSend(clock, '', undefined, manifest as never);
		const batch = decodeBatch(encodeBatch({ ops: [op] }));
		expect(batch.ops[0]).toEqual(op);
		const plain = makeSend(clock, 'hi');
		expect(decodeBatch(encodeBatch({ ops: [plain] })).ops[0]).toEqual(plain);
	});

	it('makes the batch malformed when the manifest is', () => {
		const clock = { now: () => ({ wall: 1, counter: 0 }) };
		const op = { ...makeSend(clock, 'x'), attachment: { ...manifest, chunks: [] } };
		expect(() => parseOperationBatch({ ops: [op] })).toThrow(MalformedOperationError);
	});
});

describe('encodeBatches', () => {
	it('keeps every batch within the limit, whatever the ops, and every op in order once', () => {
		fc.assert(
			fc.property(
				fc.array(
					fc.record({
						edit: fc.boolean(),
						// Control characters take six bytes of JSON each: estimates fall short.
						text: fc.string({
							unit: fc.constantFrom('a', 'é', '\u0001', '"', '😀'),
							maxLength: 900
						})
					}),
					{ minLength: 1, maxLength: 40 }
				),
				fc.integer({ min: 2_000, max: 20_000 }),
				(specs, limit) => {
					const c = clock();
					const ops = specs.map(({ edit, text }) =>
						edit ? makeEdit(c, ID as OpId, text) : makeSend(c, text)
					);
					const batches = encodeBatches(ops, limit);
					for (const { ops: batch, plaintext } of batches) {
						expect(plaintext).toEqual(encodeBatch({ ops: batch }));
						if (batch.length > 1) expect(plaintext.length).toBeLessThanOrEqual(limit);
					}
					expect(batches.flatMap((b) => b.ops)).toEqual(ops);
				}
			)
		);
	});

	it('splits a run of long edits that the estimate takes for small ones', () => {
		const c = clock();
		const edits = Array.from({ length: 12 }, (_, i) =>
			makeEdit(c, ID as OpId, `${i} ${'x'.repeat(3000)}`)
		);
		const batches = encodeBatches(edits, 8_192);
		expect(batches.length).toBeGreaterThan(4);
		for (const { plaintext } of batches) expect(plaintext.length).toBeLessThanOrEqual(8_192);
	});
});
