import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
	aeadDecrypt,
	aeadEncrypt,
	asSecretKey,
	concatBytes,
	deriveKey,
	ed25519PublicKey,
	equalBytes,
	newRoomId,
	randomBytes,
	toBase64Url,
	utf8Encode
} from '../crypto';
import { encodeRecoveryKey, RecoveryKeyError } from '../identity/recovery-key';
import { certify } from '../identity/certificates';
import { createSigner } from '../crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import { BackupError, openBackup, sealBackup, type BackupContents, type BackupErrorCode } from '.';

/** A file chunk as the backup holds it: its id is the SHA-256 of its bytes. */
function chunk(bytes: Uint8Array): { id: string; bytes: Uint8Array } {
	return { id: toBase64Url(sha256(bytes)), bytes };
}

const MAGIC = utf8Encode('KITHBACKUP');
/** magic (10) + version (1) + salt (16) + check (32), as the format comment says. */
const HEADER = 59;
const NONCE = 12;

interface Account {
	seed: Uint8Array;
	userId: string;
	recoveryKey: string;
}

function newAccount(): Account {
	const seed = randomBytes(32);
	return {
		seed,
		userId: toBase64Url(ed25519PublicKey(seed)),
		recoveryKey: encodeRecoveryKey(seed)
	};
}

function sampleContents(account: Account): BackupContents {
	return {
		createdAt: 1_767_225_600_123,
		userId: account.userId,
		displayName: 'Zoë 🦊 — مرحبا, 山田',
		secrets: { ssk: toBase64Url(randomBytes(32)), account: toBase64Url(randomBytes(32)) },
		rooms: [
			{ room: newRoomId(), updates: [randomBytes(300), new Uint8Array(40), randomBytes(1)] },
			{ room: newRoomId(), updates: [] },
			{ room: newRoomId(), updates: [new Uint8Array(0), Uint8Array.of(0, 0, 0, 1, 0)] },
			{ room: newRoomId(), updates: [randomBytes(5000)] }
		],
		chunks: [chunk(randomBytes(2000)), chunk(new Uint8Array(0)), chunk(pseudoRandomBytes(3000, 7))]
	};
}

/** What a promise rejected with; fails the test if it resolved. */
async function rejection(promise: Promise<unknown>): Promise<Error & { code?: BackupErrorCode }> {
	try {
		await promise;
	} catch (error) {
		return error as Error & { code?: BackupErrorCode };
	}
	throw new Error('expected a rejection, but the promise resolved');
}

async function backupCode(bytes: Uint8Array, recoveryKey: string): Promise<string> {
	const error = await rejection(openBackup(bytes, recoveryKey));
	return error.name === BackupError.NAME
		? (error.code as string)
		: `${error.name}: ${error.message}`;
}

// An independent writer of the documented format, so the tests check the
// doc comment as a spec and not only that the code agrees with itself.

/** The documented varUint: 7 bits a byte, least significant first, high bit = more follows. */
function varUint(n: number): Uint8Array {
	const out: number[] = [];
	while (n >= 0x80) {
		out.push((n % 0x80) | 0x80);
		n = Math.floor(n / 0x80);
	}
	out.push(n);
	return Uint8Array.from(out);
}

const varBytes = (bytes: Uint8Array) => concatBytes(varUint(bytes.length), bytes);

interface SpecFields {
	createdAt: number;
	publicKey: Uint8Array;
	displayName: Uint8Array;
	ssk: Uint8Array;
	account: Uint8Array;
	rooms: Array<[Uint8Array, Uint8Array[]]>;
	roomCount?: number;
	/** Version 2: [SHA-256, bytes] of each file chunk (absent: a version 1 layout). */
	chunks?: Array<[Uint8Array, Uint8Array]>;
	/** Version 3: each master certificate's JSON (absent: a version 2 or 1 layout). */
	masters?: Uint8Array[];
}

function encodeBySpec(fields: SpecFields): Uint8Array {
	const parts = [
		varUint(fields.createdAt),
		fields.publicKey,
		varBytes(fields.displayName),
		fields.ssk,
		fields.account,
		varUint(fields.roomCount ?? fields.rooms.length)
	];
	for (const [room, updates] of fields.rooms) {
		parts.push(varBytes(room), varUint(updates.length), ...updates.map(varBytes));
	}
	if (fields.chunks) {
		parts.push(varUint(fields.chunks.length));
		for (const [id, bytes] of fields.chunks) parts.push(id, varBytes(bytes));
	}
	if (fields.masters) {
		parts.push(varUint(fields.masters.length), ...fields.masters.map(varBytes));
	}
	return concatBytes(...parts);
}

function specFields(contents: BackupContents): SpecFields {
	return {
		createdAt: contents.createdAt,
		publicKey: Uint8Array.from(Buffer.from(contents.userId, 'base64url')),
		displayName: utf8Encode(contents.displayName),
		ssk: Uint8Array.from(Buffer.from(contents.secrets.ssk, 'base64url')),
		account: Uint8Array.from(Buffer.from(contents.secrets.account, 'base64url')),
		rooms: contents.rooms.map(({ room, updates }) => [utf8Encode(room), updates]),
		chunks: (contents.chunks ?? []).map(({ id, bytes }) => [
			Uint8Array.from(Buffer.from(id, 'base64url')),
			bytes
		]),
		masters: (contents.masters ?? []).map((link) => utf8Encode(JSON.stringify(link)))
	};
}

async function sealBySpec(
	plaintext: Uint8Array,
	seed: Uint8Array,
	version = 3
): Promise<Uint8Array> {
	const salt = randomBytes(16);
	const key = asSecretKey(deriveKey(seed, 'kith/backup/v1/key', 32, salt));
	const check = deriveKey(seed, 'kith/backup/v1/check', 32, salt);
	const header = concatBytes(MAGIC, Uint8Array.of(version), salt, check);
	const { nonce, ciphertext } = await aeadEncrypt(key, plaintext, header);
	return concatBytes(header, nonce, ciphertext);
}

/** xorshift32: fast deterministic bytes (getRandomValues stops at 64 KiB a call). */
function pseudoRandomBytes(length: number, seed: number): Uint8Array {
	const words = new Uint32Array(Math.ceil(length / 4));
	let x = seed | 1;
	for (let i = 0; i < words.length; i++) {
		x ^= x << 13;
		x ^= x >>> 17;
		x ^= x << 5;
		words[i] = x;
	}
	return new Uint8Array(words.buffer, 0, length);
}

function indexOfBytes(haystack: Uint8Array, needle: Uint8Array): number {
	return Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).indexOf(
		Buffer.from(needle.buffer, needle.byteOffset, needle.byteLength)
	);
}

const contentsArb = (account: Account) =>
	fc.record({
		createdAt: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
		userId: fc.constant(account.userId),
		displayName: fc.string({ unit: 'binary', maxLength: 40 }),
		secrets: fc.record({
			ssk: fc.uint8Array({ minLength: 32, maxLength: 32 }).map(toBase64Url),
			account: fc.uint8Array({ minLength: 32, maxLength: 32 }).map(toBase64Url)
		}),
		rooms: fc.uniqueArray(
			fc.record({
				room: fc.uint8Array({ minLength: 16, maxLength: 16 }).map(toBase64Url),
				updates: fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 5 })
			}),
			{ maxLength: 5, selector: (entry) => entry.room }
		),
		chunks: fc.uniqueArray(fc.uint8Array({ maxLength: 300 }).map(chunk), {
			maxLength: 4,
			selector: (entry) => entry.id
		})
	});

describe('backup file', () => {
	it('round-trips several rooms, empty rooms, binary updates and a Unicode name', async () => {
		const account = newAccount();
		const contents = sampleContents(account);
		const opened = await openBackup(await sealBackup(contents, account.seed), account.recoveryKey);
		expect(opened).toEqual(contents);
		// Each update is its own copy, not a view on one shared plaintext buffer.
		for (const { updates } of opened.rooms) {
			for (const update of updates) expect(update.buffer.byteLength).toBe(update.byteLength);
		}
	});

	it('round-trips arbitrary contents', async () => {
		const account = newAccount();
		await fc.assert(
			fc.asyncProperty(contentsArb(account), async (contents) => {
				const sealed = await sealBackup(contents, account.seed);
				expect(await openBackup(sealed, account.recoveryKey)).toEqual(contents);
			}),
			{ numRuns: 40 }
		);
	});

	it('is laid out as documented: header as AAD, HKDF key and check, the contents encoding', async () => {
		const account = newAccount();
		const contents = sampleContents(account);
		const sealed = await sealBackup(contents, account.seed);
		expect(sealed.subarray(0, 10)).toEqual(MAGIC);
		expect(sealed[10]).toBe(3);
		const salt = sealed.subarray(11, 27);
		expect(sealed.subarray(27, HEADER)).toEqual(
			deriveKey(account.seed, 'kith/backup/v1/check', 32, salt)
		);
		const key = asSecretKey(deriveKey(account.seed, 'kith/backup/v1/key', 32, salt));
		const plaintext = await aeadDecrypt(
			key,
			sealed.subarray(HEADER, HEADER + NONCE),
			sealed.subarray(HEADER + NONCE),
			sealed.subarray(0, HEADER)
		);
		expect(plaintext).toEqual(encodeBySpec(specFields(contents)));
	});

	it('opens a backup written from the documented format alone', async () => {
		const account = newAccount();
		const contents = sampleContents(account);
		const sealed = await sealBySpec(encodeBySpec(specFields(contents)), account.seed);
		expect(await openBackup(sealed, account.recoveryKey)).toEqual(contents);
	});

	it('opens a version 2 backup (no master certificates)', async () => {
		const account = newAccount();
		const contents = sampleContents(account);
		const v2 = await sealBySpec(
			encodeBySpec({ ...specFields(contents), masters: undefined }),
			account.seed,
			2
		);
		expect(await openBackup(v2, account.recoveryKey)).toEqual(contents);
	});

	it('after a new recovery key: carries the master chain, opens with the new key only', async () => {
		const account = newAccount();
		const successor = randomBytes(32);
		const link = await certify(
			{
				v: 1,
				type: 'master',
				user: account.userId,
				key: toBase64Url(ed25519PublicKey(successor)),
				issued: 5
			},
			await createSigner(account.seed)
		);
		const contents = { ...sampleContents(account), masters: [link] };
		const sealed = await sealBackup(contents, successor);
		const opened = await openBackup(sealed, encodeRecoveryKey(successor));
		expect(opened).toEqual(contents);
		expect(opened.userId).toBe(account.userId);
		// The replaced key does not open it.
		expect((await rejection(openBackup(sealed, account.recoveryKey))).code).toBe(
			'wrong-recovery-key'
		);
		// Sealing refuses a chain that does not lead to the sealing key, or no chain.
		await expect(sealBackup(contents, account.seed)).rejects.toThrow(RangeError);
		await expect(sealBackup(sampleContents(account), successor)).rejects.toThrow(RangeError);
		// A file whose chain does not lead to the key that sealed it is damaged.
		const lying = await sealBySpec(encodeBySpec(specFields(contents)), account.seed);
		expect((await rejection(openBackup(lying, account.recoveryKey))).code).toBe('damaged');
	});

	it('opens a version 1 backup (no files), and refuses a file chunk that is not its id’s hash', async () => {
		const account = newAccount();
		const contents = sampleContents(account);
		const v1 = await sealBySpec(
			encodeBySpec({ ...specFields(contents), chunks: undefined, masters: undefined }),
			account.seed,
			1
		);
		expect(await openBackup(v1, account.recoveryKey)).toEqual({ ...contents, chunks: [] });
		// A writer that lies about a chunk's id: refused when sealing, damaged when read.
		const lying = {
			...contents,
			chunks: [{ id: chunk(randomBytes(10)).id, bytes: randomBytes(10) }]
		};
		await expect(sealBackup(lying, account.seed)).rejects.toThrow(RangeError);
		const fields = specFields(contents);
		const [first] = fields.chunks ?? [];
		const forged = await sealBySpec(
			encodeBySpec({ ...fields, chunks: [[first?.[0] as Uint8Array, randomBytes(10)]] }),
			account.seed
		);
		expect(await backupCode(forged, account.recoveryKey)).toBe('damaged');
	});

	it('uses a fresh salt and nonce for every backup', async () => {
		const account = newAccount();
		const contents = sampleContents(account);
		const a = await sealBackup(contents, account.seed);
		const b = await sealBackup(contents, account.seed);
		expect(equalBytes(a.subarray(11, 27), b.subarray(11, 27))).toBe(false);
		expect(equalBytes(a.subarray(HEADER, HEADER + NONCE), b.subarray(HEADER, HEADER + NONCE))).toBe(
			false
		);
		expect(await openBackup(b, account.recoveryKey)).toEqual(contents);
	});

	it('holds no plaintext: secrets, name, room ids and updates are not in the file', async () => {
		const account = newAccount();
		const contents = sampleContents(account);
		const sealed = await sealBackup(contents, account.seed);
		const secrets = [contents.secrets.ssk, contents.secrets.account].map((text) =>
			Uint8Array.from(Buffer.from(text, 'base64url'))
		);
		for (const needle of [
			...secrets,
			...secrets.map((bytes) => utf8Encode(toBase64Url(bytes))),
			utf8Encode(contents.displayName),
			utf8Encode(contents.rooms[0]?.room ?? ''),
			contents.rooms[3]?.updates[0]?.subarray(0, 16) ?? new Uint8Array(16),
			account.seed
		]) {
			expect(indexOfBytes(sealed, needle)).toBe(-1);
		}
	});

	it('refuses every single flipped byte, with the code of the part it hits', async () => {
		const account = newAccount();
		const sealed = await sealBackup(sampleContents(account), account.seed);
		const expected = (position: number, value: number): BackupErrorCode => {
			if (position < 10) return 'not-a-backup';
			// 0, or an older version (the header is the AAD: the tag fails).
			if (position === 10) return value <= 2 ? 'damaged' : 'unsupported-version';
			if (position < HEADER) return 'wrong-recovery-key';
			return 'damaged';
		};
		const flipped = (position: number, mask: number) => {
			const copy = sealed.slice();
			copy[position] = (copy[position] as number) ^ mask;
			return copy;
		};
		// Every position, once, with every bit flipped.
		for (let position = 0; position < sealed.length; position++) {
			const copy = flipped(position, 0xff);
			expect(await backupCode(copy, account.recoveryKey)).toBe(
				expected(position, copy[position] as number)
			);
		}
		// Any position with any change.
		await fc.assert(
			fc.asyncProperty(
				fc.nat({ max: sealed.length - 1 }),
				fc.integer({ min: 1, max: 255 }),
				async (position, mask) => {
					const copy = flipped(position, mask);
					expect(await backupCode(copy, account.recoveryKey)).toBe(
						expected(position, copy[position] as number)
					);
				}
			),
			{ numRuns: 300 }
		);
	});

	it('refuses every truncation', async () => {
		const account = newAccount();
		const sealed = await sealBackup(sampleContents(account), account.seed);
		for (let length = 0; length < sealed.length; length++) {
			expect(await backupCode(sealed.subarray(0, length), account.recoveryKey)).toBe(
				length < 10 ? 'not-a-backup' : 'damaged'
			);
		}
	});

	it('refuses another valid recovery key as the wrong one', async () => {
		const account = newAccount();
		const sealed = await sealBackup(sampleContents(account), account.seed);
		const error = await rejection(openBackup(sealed, newAccount().recoveryKey));
		expect(error).toBeInstanceOf(BackupError);
		expect(error.code).toBe('wrong-recovery-key');
		expect(error.message).toBe('This recovery key does not open this backup.');
	});

	it('refuses malformed recovery key text with RecoveryKeyError', async () => {
		const account = newAccount();
		const sealed = await sealBackup(sampleContents(account), account.seed);
		const compact = account.recoveryKey.replaceAll(' ', '');
		for (const text of ['', 'not a key', compact.slice(0, -1), compact.slice(0, 10) + '0']) {
			const error = await rejection(openBackup(sealed, text));
			expect(error.name).toBe(RecoveryKeyError.NAME);
			expect(error.message).toMatch(/recovery key/);
		}
	});

	it('calls an empty file, random bytes and other files not a backup', async () => {
		const { recoveryKey } = newAccount();
		expect(await backupCode(new Uint8Array(0), recoveryKey)).toBe('not-a-backup');
		expect(await backupCode(utf8Encode('{"backup": true}'), recoveryKey)).toBe('not-a-backup');
		expect(await backupCode(utf8Encode('KITHBACKUQ\u0001'), recoveryKey)).toBe('not-a-backup');
		await fc.assert(
			fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), async (bytes) => {
				fc.pre(!equalBytes(bytes.subarray(0, 10), MAGIC));
				expect(await backupCode(bytes, recoveryKey)).toBe('not-a-backup');
			}),
			{ numRuns: 200 }
		);
	});

	it('refuses a newer version and calls version 0 damaged', async () => {
		const account = newAccount();
		const sealed = await sealBackup(sampleContents(account), account.seed);
		for (const [version, code] of [
			[4, 'unsupported-version'],
			[255, 'unsupported-version'],
			[0, 'damaged']
		] as const) {
			const copy = sealed.slice();
			copy[10] = version;
			const error = await rejection(openBackup(copy, account.recoveryKey));
			expect(error).toBeInstanceOf(BackupError);
			expect(error.code).toBe(code);
		}
		// Also when written properly by that version (its AAD holds its version byte).
		const newer = await sealBySpec(
			encodeBySpec(specFields(sampleContents(account))),
			account.seed,
			4
		);
		const error = await rejection(openBackup(newer, account.recoveryKey));
		expect(error.code).toBe('unsupported-version');
		expect(error.message).toBe('This backup was made by a newer version of Kith.');
	});

	it('calls correctly sealed but malformed or foreign contents damaged', async () => {
		const account = newAccount();
		const fields = specFields(sampleContents(account));
		const room = fields.rooms[0] as [Uint8Array, Uint8Array[]];
		const plaintext = encodeBySpec(fields);
		const malformed: Record<string, Uint8Array> = {
			'a trailing byte': concatBytes(plaintext, new Uint8Array(1)),
			'a missing byte': plaintext.subarray(0, plaintext.length - 1),
			'nothing at all': new Uint8Array(0),
			"another account's public key": encodeBySpec({
				...fields,
				publicKey: ed25519PublicKey(randomBytes(32))
			}),
			'a room id that is not one': encodeBySpec({
				...fields,
				rooms: [[utf8Encode('not a room'), []]]
			}),
			'a room listed twice': encodeBySpec({ ...fields, rooms: [room, room] }),
			'a name that is not UTF-8': encodeBySpec({ ...fields, displayName: Uint8Array.of(0xc3) }),
			'more rooms than bytes': encodeBySpec({ ...fields, roomCount: 1_000_000 }),
			'a createdAt beyond safe integers': encodeBySpec({ ...fields, createdAt: 2 ** 60 })
		};
		for (const [what, bytes] of Object.entries(malformed)) {
			const sealed = await sealBySpec(bytes, account.seed);
			expect({ what, code: await backupCode(sealed, account.recoveryKey) }).toEqual({
				what,
				code: 'damaged'
			});
		}
	});

	it('refuses to seal contents that could not be restored as given', async () => {
		const account = newAccount();
		const good = sampleContents(account);
		const bad: Array<[RegExp, BackupContents, Uint8Array?]> = [
			[/master seed is 32 bytes/, good, randomBytes(31)],
			[/userId is not the account/, { ...good, userId: newAccount().userId }],
			[/createdAt/, { ...good, createdAt: -1 }],
			[/createdAt/, { ...good, createdAt: 1.5 }],
			[
				/secrets\.ssk is not 32 bytes/,
				{ ...good, secrets: { ...good.secrets, ssk: toBase64Url(randomBytes(31)) } }
			],
			[
				/secrets\.account is not base64url/,
				{ ...good, secrets: { ...good.secrets, account: good.secrets.account + '=' } }
			],
			[/general is not a room id/, { ...good, rooms: [{ room: 'general', updates: [] }] }],
			[
				/listed twice/,
				{ ...good, rooms: [good.rooms[0], good.rooms[0]] as BackupContents['rooms'] }
			],
			[/displayName is not well-formed/, { ...good, displayName: 'a\ud800b' }]
		];
		for (const [reason, contents, seed] of bad) {
			const error = await rejection(sealBackup(contents, seed ?? account.seed));
			expect([error.name, error.message]).toEqual([
				expect.stringMatching(/^(RangeError|TypeError)$/),
				expect.stringMatching(reason)
			]);
		}
		// The same contents, corrected, do seal.
		await expect(sealBackup(good, account.seed)).resolves.toBeInstanceOf(Uint8Array);
	});

	it('opens a backup that is a view into a larger buffer', async () => {
		const account = newAccount();
		const contents = sampleContents(account);
		const sealed = await sealBackup(contents, account.seed);
		const larger = concatBytes(randomBytes(7), sealed, randomBytes(9));
		const view = larger.subarray(7, 7 + sealed.length);
		expect(await openBackup(view, account.recoveryKey)).toEqual(contents);
		// and the bytes around it are not read as part of it
		expect(await backupCode(larger.subarray(7, 7 + sealed.length - 1), account.recoveryKey)).toBe(
			'damaged'
		);
	});

	it('round-trips ~20 MB of updates with little overhead, and refuses its truncations', async () => {
		const account = newAccount();
		const rooms: BackupContents['rooms'] = [];
		let total = 0;
		for (let r = 0; r < 20; r++) {
			const updates: Uint8Array[] = [];
			for (let u = 0; u < 100; u++) {
				const update = pseudoRandomBytes(10_000 - u, r * 1000 + u + 1);
				update.fill(0, 0, u); // leading zeros of varying length
				updates.push(update);
				total += update.length;
			}
			rooms.push({ room: newRoomId(), updates });
		}
		expect(total).toBeGreaterThan(19_900_000);
		const contents: BackupContents = { ...sampleContents(account), rooms, chunks: [] };
		const sealed = await sealBackup(contents, account.seed);
		// Raw bytes, not base64: framing adds a few bytes per update.
		expect(sealed.length - total).toBeLessThan(10_000);
		const opened = await openBackup(sealed, account.recoveryKey);
		expect(opened.rooms.map((entry) => entry.room)).toEqual(rooms.map((entry) => entry.room));
		let mismatched = 0;
		rooms.forEach((entry, r) => {
			const got = opened.rooms[r]?.updates ?? [];
			expect(got).toHaveLength(entry.updates.length);
			entry.updates.forEach((update, u) => {
				if (!equalBytes(update, got[u] ?? new Uint8Array(0))) mismatched++;
			});
		});
		expect(mismatched).toBe(0);
		for (const length of [
			0,
			9,
			10,
			HEADER,
			HEADER + NONCE + 15,
			sealed.length >> 1,
			sealed.length - 1
		]) {
			expect(await backupCode(sealed.subarray(0, length), account.recoveryKey)).toBe(
				length < 10 ? 'not-a-backup' : 'damaged'
			);
		}
	});

	it('gives BackupError a name, a code and a message for a person', () => {
		const messages: Record<BackupErrorCode, string> = {
			'not-a-backup': 'This file is not a Kith backup.',
			'unsupported-version': 'This backup was made by a newer version of Kith.',
			'wrong-recovery-key': 'This recovery key does not open this backup.',
			damaged: 'This backup is damaged or incomplete; nothing was restored.'
		};
		for (const [code, message] of Object.entries(messages) as [BackupErrorCode, string][]) {
			const error = new BackupError(code);
			expect(error).toBeInstanceOf(Error);
			expect([error.name, error.code, error.message]).toEqual(['BackupError', code, message]);
		}
	});
});
