/**
 * The backup file: everything a new device needs to become this account
 * again, sealed under the recovery key. "Export backup" writes one; "Restore
 * from backup" opens one with the recovery key the user types.
 *
 * Why the recovery key and not a passphrase: the user already keeps it (it is
 * the account's master seed), it carries 256 bits, so no slow KDF is needed,
 * and a backup is useless without it anyway (the master key is what makes a
 * restored device part of the account).
 *
 * Format, version 3 (version 2 is the same without the master certificates,
 * version 1 without files either; all three are read).
 * All lengths are in bytes; `||` is concatenation.
 *
 *   file   = header || nonce (12) || ciphertext
 *   header = magic (10: ASCII "KITHBACKUP") || version (1: 0x03; 0x02 before a new
 *            recovery key could be made, 0x01 before files)
 *            || salt (16, random per backup) || check (32)
 *
 *   seed       = the 32-byte master seed (the recovery key decoded)
 *   key        = HKDF-SHA256(IKM = seed, salt = salt, info = "kith/backup/v1/key", L = 32)
 *   check      = HKDF-SHA256(IKM = seed, salt = salt, info = "kith/backup/v1/check", L = 32)
 *   ciphertext = AES-256-GCM(key, nonce, plaintext = contents, AAD = header), 16-byte tag
 *                appended (WebCrypto's layout)
 *
 * The header is the AAD, so no byte of it can be changed unnoticed. The check
 * value lets a reader tell "wrong recovery key" (check differs) from "damaged"
 * (check matches, the tag does not): HKDF outputs under distinct labels are
 * independent, so it reveals nothing about the key.
 *
 * contents (the plaintext), where varUint is lib0's (7 bits per byte, least
 * significant group first, high bit set on every byte but the last) and
 * varBytes is varUint length || bytes:
 *
 *   varUint   createdAt: ms since the epoch (a non-negative safe integer)
 *   32        the user id: the account's first master public key (Ed25519), raw
 *   varBytes  displayName, UTF-8
 *   32        ssk: the self-signing key seed
 *   32        account: the account key (the vault's key)
 *   varUint   number of rooms, then for each room:
 *     varBytes  room id, UTF-8 (22 characters of base64url: 16 bytes)
 *     varUint   number of updates, then for each: varBytes the Yjs update as stored
 *   version 2 only:
 *   varUint   number of file chunks, then for each:
 *     32        the chunk id: SHA-256 of the chunk (its address at the relay)
 *     varBytes  the chunk as stored (still encrypted under its file's key,
 *               which only the conversation's messages hold)
 *   version 3 only:
 *   varUint   number of master certificates (0 until "Make a new recovery key"), then
 *             for each: varBytes UTF-8 JSON {"body","signer","signature"}, the chain
 *             from the user id to the master key the recovery key holds
 *             (identity/certificates.ts)
 *
 * Nothing follows. Room ids are distinct, chunk ids too. The secrets travel as
 * raw bytes (base64url only in the API), so an update-heavy backup is barely
 * larger than its updates.
 *
 * Reading, in order (the first failure decides):
 *   1. shorter than the magic, or another magic          → 'not-a-backup'
 *   2. no version byte, or version 0                     → 'damaged'
 *      version above 1                                   → 'unsupported-version'
 *   3. shorter than header + nonce + tag                 → 'damaged'
 *   4. the recovery key text does not decode             → RecoveryKeyError
 *   5. check ≠ HKDF(seed, salt, ".../check")             → 'wrong-recovery-key'
 *   6. the tag does not verify, the contents do not decode exactly (types,
 *      lengths, room ids, trailing bytes, a chunk that is not its id's
 *      hash), or the master key that the user id and the chain lead to is not
 *      the seed's                                        → 'damaged'
 * A reader returns all of the contents or nothing.
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import {
	aeadDecrypt,
	aeadEncrypt,
	asSecretKey,
	concatBytes,
	deriveKey,
	ed25519PublicKey,
	equalBytes,
	fromBase64Url,
	isRoomId,
	NONCE_LENGTH,
	randomBytes,
	toBase64Url,
	utf8Decode,
	utf8Encode,
	type SecretKey
} from '../crypto';
import { decodeRecoveryKey } from '../identity/recovery-key';
import { Certificate, chainKeys, MAX_MASTERS } from '../identity/certificates';
import { sha256 } from '@noble/hashes/sha2.js';

export interface BackupContents {
	/** When the backup was made (ms since epoch). */
	createdAt: number;
	/** The account's user id (base64url of its first master public key) and display name. */
	userId: string;
	/**
	 * The master certificates from the user id to the master key the recovery
	 * key holds: none until the user made a new recovery key. Their
	 * signatures are checked where they are used (keyring.ts `restoreAccount`).
	 */
	masters?: Certificate[];
	displayName: string;
	/** Account secrets a restored device needs, base64url: the self-signing key seed and the account key (the vault's key). The master seed is the recovery key itself and is not stored. */
	secrets: { ssk: string; account: string };
	/** Every doc store the device held, by room id (the vault's room included): its Yjs updates, as stored. */
	rooms: Array<{ room: string; updates: Uint8Array[] }>;
	/** File chunks the user chose to include, by chunk id (base64url SHA-256), still encrypted. */
	chunks?: Array<{ id: string; bytes: Uint8Array }>;
}

export type BackupErrorCode =
	'not-a-backup' | 'unsupported-version' | 'wrong-recovery-key' | 'damaged';

const MESSAGES: Record<BackupErrorCode, string> = {
	'not-a-backup': 'This file is not a Kith backup.',
	'unsupported-version': 'This backup was made by a newer version of Kith.',
	'wrong-recovery-key': 'This recovery key does not open this backup.',
	damaged: 'This backup is damaged or incomplete; nothing was restored.'
};

/** Why a backup did not open. The message is written for the person restoring. */
export class BackupError extends Error {
	static readonly NAME = 'BackupError';
	override name = BackupError.NAME;
	constructor(
		readonly code: BackupErrorCode,
		options?: ErrorOptions
	) {
		super(MESSAGES[code], options);
	}
}

export const BACKUP_VERSION = 3;
const MAGIC = utf8Encode('KITHBACKUP');
const SALT_LENGTH = 16;
const CHECK_LENGTH = 32;
const HEADER_LENGTH = MAGIC.length + 1 + SALT_LENGTH + CHECK_LENGTH;
const TAG_LENGTH = 16;
const KEY_INFO = 'kith/backup/v1/key';
const CHECK_INFO = 'kith/backup/v1/check';
const SEED_LENGTH = 32;
const PUBLIC_KEY_LENGTH = 32;
const SECRET_LENGTH = 32;
const CHUNK_ID_LENGTH = 32;

function backupKeys(
	masterSeed: Uint8Array,
	salt: Uint8Array
): { key: SecretKey; check: Uint8Array } {
	return {
		key: asSecretKey(deriveKey(masterSeed, KEY_INFO, 32, salt)),
		check: deriveKey(masterSeed, CHECK_INFO, CHECK_LENGTH, salt)
	};
}

/** The master key a chain of master certificates leads to from `userId` (signatures unchecked). */
function lastMaster(userId: string, masters: readonly Certificate[]): string {
	try {
		return chainKeys(userId, masters).at(-1) as string;
	} catch (cause) {
		throw new RangeError('a broken master chain', { cause });
	}
}

/** base64url (canonical: @scure/base refuses stray padding bits) of exactly 32 bytes. */
function secretBytes(text: string, what: string): Uint8Array {
	let bytes: Uint8Array;
	try {
		bytes = fromBase64Url(text);
	} catch (cause) {
		throw new RangeError(`${what} is not base64url`, { cause });
	}
	if (bytes.length !== SECRET_LENGTH) throw new RangeError(`${what} is not ${SECRET_LENGTH} bytes`);
	return bytes;
}

/** UTF-8 that decodes back to the same string: a lone surrogate would come back as U+FFFD. */
function exactUtf8(text: string, what: string): Uint8Array {
	if (typeof text !== 'string') throw new TypeError(`${what} is not a string`);
	const bytes = utf8Encode(text);
	if (utf8Decode(bytes) !== text) throw new RangeError(`${what} is not well-formed Unicode`);
	return bytes;
}

/**
 * Encodes the contents, refusing anything that would not come back identical
 * or that a reader would refuse: better an error at export than a backup
 * that cannot be restored.
 */
function encodeContents(contents: BackupContents, publicKey: Uint8Array): Uint8Array {
	if (!Number.isSafeInteger(contents.createdAt) || contents.createdAt < 0) {
		throw new RangeError('createdAt is not a non-negative integer of ms since the epoch');
	}
	const masters = contents.masters ?? [];
	if (masters.length > MAX_MASTERS) throw new RangeError('too many master certificates');
	if (lastMaster(contents.userId, masters) !== toBase64Url(publicKey)) {
		throw new RangeError('userId is not the account of this master seed');
	}
	const encoder = encoding.createEncoder();
	encoding.writeVarUint(encoder, contents.createdAt);
	encoding.writeUint8Array(encoder, secretBytes(contents.userId, 'userId'));
	encoding.writeVarUint8Array(encoder, exactUtf8(contents.displayName, 'displayName'));
	encoding.writeUint8Array(encoder, secretBytes(contents.secrets.ssk, 'secrets.ssk'));
	encoding.writeUint8Array(encoder, secretBytes(contents.secrets.account, 'secrets.account'));
	encoding.writeVarUint(encoder, contents.rooms.length);
	const seen = new Set<string>();
	for (const { room, updates } of contents.rooms) {
		if (!isRoomId(room)) throw new RangeError(`${String(room)} is not a room id`);
		if (seen.has(room)) throw new RangeError(`room ${room} is listed twice`);
		seen.add(room);
		encoding.writeVarUint8Array(encoder, utf8Encode(room));
		encoding.writeVarUint(encoder, updates.length);
		for (const update of updates) {
			if (!(update instanceof Uint8Array)) throw new TypeError(`an update of ${room} is not bytes`);
			encoding.writeVarUint8Array(encoder, update);
		}
	}
	const chunks = contents.chunks ?? [];
	encoding.writeVarUint(encoder, chunks.length);
	const chunkIds = new Set<string>();
	for (const { id, bytes } of chunks) {
		if (!(bytes instanceof Uint8Array)) throw new TypeError(`chunk ${id} is not bytes`);
		if (chunkIds.has(id)) throw new RangeError(`chunk ${id} is listed twice`);
		chunkIds.add(id);
		const hash = sha256(bytes);
		if (toBase64Url(hash) !== id) throw new RangeError(`chunk ${id} is not the hash of its bytes`);
		encoding.writeUint8Array(encoder, hash);
		encoding.writeVarUint8Array(encoder, bytes);
	}
	encoding.writeVarUint(encoder, masters.length);
	for (const link of masters) {
		encoding.writeVarUint8Array(encoder, utf8Encode(JSON.stringify(Certificate.parse(link))));
	}
	return encoding.toUint8Array(encoder);
}

/**
 * Decodes contents written by encodeContents, or throws. Every byte array is
 * copied out of `plaintext`: a view would keep the whole (possibly huge)
 * plaintext alive, and IndexedDB clones a view's entire buffer when storing it.
 * Counts need no bound of their own: every item reads at least one byte, so a
 * count larger than the data ends in an out-of-bounds error, not a long loop.
 */
function decodeContents(
	plaintext: Uint8Array,
	version: number
): {
	contents: BackupContents;
	/** The master key the user id and the chain lead to (base64url). */
	masterKey: string;
} {
	const decoder = decoding.createDecoder(plaintext);
	const createdAt = decoding.readVarUint(decoder);
	if (!Number.isSafeInteger(createdAt)) throw new Error('createdAt is out of range');
	const publicKey = decoding.readUint8Array(decoder, PUBLIC_KEY_LENGTH).slice();
	const displayName = utf8Decode(decoding.readVarUint8Array(decoder));
	const ssk = toBase64Url(decoding.readUint8Array(decoder, SECRET_LENGTH));
	const account = toBase64Url(decoding.readUint8Array(decoder, SECRET_LENGTH));
	const roomCount = decoding.readVarUint(decoder);
	const rooms: BackupContents['rooms'] = [];
	const seen = new Set<string>();
	for (let i = 0; i < roomCount; i++) {
		const room = utf8Decode(decoding.readVarUint8Array(decoder));
		if (!isRoomId(room)) throw new Error('a room id is malformed');
		if (seen.has(room)) throw new Error('a room is listed twice');
		seen.add(room);
		const updateCount = decoding.readVarUint(decoder);
		const updates: Uint8Array[] = [];
		for (let j = 0; j < updateCount; j++) updates.push(decoding.readVarUint8Array(decoder).slice());
		rooms.push({ room, updates });
	}
	const chunks: NonNullable<BackupContents['chunks']> = [];
	if (version >= 2) {
		const chunkCount = decoding.readVarUint(decoder);
		const chunkIds = new Set<string>();
		for (let i = 0; i < chunkCount; i++) {
			const hash = decoding.readUint8Array(decoder, CHUNK_ID_LENGTH);
			const bytes = decoding.readVarUint8Array(decoder).slice();
			if (!equalBytes(sha256(bytes), hash)) throw new Error('a chunk is not its id’s hash');
			const id = toBase64Url(hash);
			if (chunkIds.has(id)) throw new Error('a chunk is listed twice');
			chunkIds.add(id);
			chunks.push({ id, bytes });
		}
	}
	const masters: Certificate[] = [];
	if (version >= 3) {
		const count = decoding.readVarUint(decoder);
		if (count > MAX_MASTERS) throw new Error('too many master certificates');
		for (let i = 0; i < count; i++) {
			masters.push(Certificate.parse(JSON.parse(utf8Decode(decoding.readVarUint8Array(decoder)))));
		}
	}
	if (decoding.hasContent(decoder)) throw new Error('trailing bytes after the contents');
	const userId = toBase64Url(publicKey);
	return {
		contents: {
			createdAt,
			userId,
			...(masters.length > 0 ? { masters } : {}),
			displayName,
			secrets: { ssk, account },
			rooms,
			chunks
		},
		masterKey: lastMaster(userId, masters)
	};
}

/**
 * Seal contents under a key derived from the master seed (32 bytes).
 * Throws RangeError/TypeError for contents that could not be restored as
 * given (see encodeContents), including a userId of another account.
 */
export async function sealBackup(
	contents: BackupContents,
	masterSeed: Uint8Array
): Promise<Uint8Array> {
	if (!(masterSeed instanceof Uint8Array) || masterSeed.length !== SEED_LENGTH) {
		throw new RangeError('the master seed is 32 bytes');
	}
	const plaintext = encodeContents(contents, ed25519PublicKey(masterSeed));
	try {
		const salt = randomBytes(SALT_LENGTH);
		const { key, check } = backupKeys(masterSeed, salt);
		const header = concatBytes(MAGIC, Uint8Array.of(BACKUP_VERSION), salt, check);
		const { nonce, ciphertext } = await aeadEncrypt(key, plaintext, header);
		return concatBytes(header, nonce, ciphertext);
	} finally {
		// Best effort: the plaintext holds the account's secrets.
		plaintext.fill(0);
	}
}

interface Frame {
	version: number;
	header: Uint8Array;
	salt: Uint8Array;
	check: Uint8Array;
	nonce: Uint8Array;
	ciphertext: Uint8Array;
}

/** Steps 1–3 of reading: everything that needs no key. */
function parseFrame(bytes: Uint8Array): Frame {
	if (bytes.length < MAGIC.length || !equalBytes(bytes.subarray(0, MAGIC.length), MAGIC)) {
		throw new BackupError('not-a-backup');
	}
	const version = bytes[MAGIC.length];
	if (version === undefined || version === 0) throw new BackupError('damaged');
	if (version > BACKUP_VERSION) throw new BackupError('unsupported-version');
	if (bytes.length < HEADER_LENGTH + NONCE_LENGTH + TAG_LENGTH) throw new BackupError('damaged');
	const saltStart = MAGIC.length + 1;
	return {
		version,
		header: bytes.subarray(0, HEADER_LENGTH),
		salt: bytes.subarray(saltStart, saltStart + SALT_LENGTH),
		check: bytes.subarray(saltStart + SALT_LENGTH, HEADER_LENGTH),
		nonce: bytes.subarray(HEADER_LENGTH, HEADER_LENGTH + NONCE_LENGTH),
		ciphertext: bytes.subarray(HEADER_LENGTH + NONCE_LENGTH)
	};
}

/** Open a backup with the recovery key text the user typed. Throws BackupError (or RecoveryKeyError for a malformed key) and never returns partial contents. */
export async function openBackup(bytes: Uint8Array, recoveryKey: string): Promise<BackupContents> {
	// The file is judged before the key: "not a backup" is the more useful answer.
	const frame = parseFrame(bytes);
	const masterSeed = decodeRecoveryKey(recoveryKey);
	try {
		const { key, check } = backupKeys(masterSeed, frame.salt);
		if (!equalBytes(check, frame.check)) throw new BackupError('wrong-recovery-key');
		let plaintext: Uint8Array;
		try {
			plaintext = await aeadDecrypt(key, frame.nonce, frame.ciphertext, frame.header);
		} catch (cause) {
			throw new BackupError('damaged', { cause });
		}
		let decoded: ReturnType<typeof decodeContents>;
		try {
			decoded = decodeContents(plaintext, frame.version);
		} catch (cause) {
			throw new BackupError('damaged', { cause });
		} finally {
			plaintext.fill(0);
		}
		// Only a writer that ignored the format could get here with a mismatch:
		// the check value already proved the seed.
		if (decoded.masterKey !== toBase64Url(ed25519PublicKey(masterSeed))) {
			throw new BackupError('damaged');
		}
		return decoded.contents;
	} finally {
		masterSeed.fill(0);
	}
}
