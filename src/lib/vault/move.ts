/**
 * A vault move: how removing a device reaches the account's other devices
 * (docs/protocol.md §8d).
 *
 * The device that removes another (it holds the master key, or the user
 * typed the recovery key) makes a new self-signing key (SSK), certified by
 * the master key, and a new account key (so a new vault room, which the
 * removed device cannot derive). It writes one move into the vault room
 * being left: a lockbox per remaining device, sealed to its X25519 key,
 * holding the new SSK seed and account key. The whole move is signed by the
 * master key, which no linked device holds: a removed device cannot forge
 * one, nor strip a device's lockbox from it.
 *
 *   move      = { body: string, sig: base64url }
 *   body      = canonical JSON {"v":1,"type":"vault-move","user","ssk","removed","boxes","issued"}
 *               ssk: the new SSK's certificate (signed by the master key)
 *               removed: the device ids removed, boxes: device id → lockbox (base64url)
 *   sig       = Ed25519(master, "kith/vault-move\0" || UTF-8(body))
 *   lockbox   = invite/lockbox.ts, context "kith/vault-move\0" || user || "\0" || ssk key || "\0" || device
 *   contents  = JSON {"ssk": SSK seed, "account": account key} (base64url)
 *
 * A device that reads a move newer than its own SSK either finds its
 * lockbox and takes the new keys (identity/keyring.ts `adoptSelfSigning`)
 * or, listed in `removed`, learns that it was removed.
 *
 * "Make a new recovery key" is a move that removes nobody and replaces the
 * master key: the move is still signed by the master key being replaced
 * (the one every device knows), and the new SSK's certificate, signed by
 * the new master key, carries the chain of master certificates
 * (certificates.ts), the last one naming the new master key.
 */
import { z } from 'zod';
import {
	concatBytes,
	createSigner,
	ed25519PublicKey,
	fromBase64Url,
	newSecretKey,
	newSigningSeed,
	toBase64Url,
	utf8Decode,
	utf8Encode,
	verifySignature,
	asSecretKey,
	type SecretKey
} from '../crypto';
import {
	certify,
	Certificate,
	compareSsk,
	masterChain,
	SskCertBody,
	sskRank,
	verifySskCert
} from '../identity/certificates';
import { openLockbox, sealLockbox } from '../invite/lockbox';

const CONTEXT = 'kith/vault-move\0';
const B64 = z.string().regex(/^[A-Za-z0-9_-]+$/);
/** More devices than an account could sensibly have: a bound on what is parsed. */
const MAX_DEVICES = 256;

const MoveBody = z.strictObject({
	v: z.literal(1),
	type: z.literal('vault-move'),
	user: B64,
	ssk: z.strictObject(Certificate.shape),
	removed: z.array(B64).max(MAX_DEVICES),
	boxes: z.record(B64, B64).refine((boxes) => Object.keys(boxes).length <= MAX_DEVICES),
	issued: z.number().int().nonnegative()
});
type MoveBody = z.infer<typeof MoveBody>;

export const VaultMove = z.strictObject({ body: z.string(), sig: B64 });
export type VaultMove = z.infer<typeof VaultMove>;

const BoxContents = z.strictObject({ ssk: B64, account: B64 });

export class VaultMoveError extends Error {
	static readonly NAME = 'VaultMoveError';
	override name = VaultMoveError.NAME;
}

function boxContext(user: string, sskKey: string, device: string): Uint8Array {
	return utf8Encode(`${CONTEXT}${user}\0${sskKey}\0${device}`);
}

/** The plaintext of the envelope that carries a move in the vault room. */
export function encodeVaultMove(move: VaultMove): Uint8Array {
	return utf8Encode(JSON.stringify({ vaultMove: 1, ...move }));
}

/** A vault envelope's plaintext as a move, or null when it is not one (vault changes). */
export function decodeVaultMove(plaintext: Uint8Array): VaultMove | null {
	let value: unknown;
	try {
		value = JSON.parse(utf8Decode(plaintext));
	} catch {
		return null;
	}
	if (typeof value !== 'object' || value === null || !('vaultMove' in value)) return null;
	const { vaultMove, ...rest } = value as { vaultMove: unknown };
	if (vaultMove !== 1) throw new VaultMoveError('This vault move has an unknown version.');
	const parsed = VaultMove.safeParse(rest);
	if (!parsed.success) throw new VaultMoveError('This vault move is malformed.');
	return parsed.data;
}

/** The new keys a move hands to each remaining device. */
export interface MovedKeys {
	sskSeed: Uint8Array;
	sskCert: Certificate;
	accountKey: SecretKey;
}

/** Who makes a move: the account, its current master key and that key's chain of master certificates. */
export interface MoveSigner {
	user: string;
	masterSeed: Uint8Array;
	/** The master certificates of the account's current SSK certificate (`masterChain`). */
	chain: readonly Certificate[];
	/** A new master key to replace `masterSeed` ("Make a new recovery key"). */
	successor?: Uint8Array;
}

/**
 * Make a move that removes `removed` and hands new keys to `remaining`
 * (device id → X25519 public key, base64url; the remover included); with
 * `successor`, one that also replaces the master key.
 */
export async function makeVaultMove(
	signer: MoveSigner,
	remaining: ReadonlyMap<string, string>,
	removed: readonly string[],
	now = Date.now()
): Promise<{ move: VaultMove; keys: MovedKeys }> {
	if (removed.length === 0 && !signer.successor) {
		throw new VaultMoveError('A move removes a device or replaces the master key.');
	}
	const { user } = signer;
	const master = await createSigner(signer.masterSeed);
	const chain = [...signer.chain];
	let sskSigner = master;
	if (signer.successor) {
		const successor = await createSigner(signer.successor);
		const key = toBase64Url(successor.publicKey);
		chain.push(await certify({ v: 1, type: 'master', user, key, issued: now }, master));
		sskSigner = successor;
	}
	const sskSeed = newSigningSeed();
	const sskKey = toBase64Url(ed25519PublicKey(sskSeed));
	const sskCert = await certify(
		{
			v: 1,
			type: 'ssk',
			user,
			key: sskKey,
			issued: now,
			...(chain.length > 0 ? { masters: chain } : {})
		},
		sskSigner
	);
	const accountKey = newSecretKey();
	const contents = utf8Encode(
		JSON.stringify({ ssk: toBase64Url(sskSeed), account: toBase64Url(accountKey) })
	);
	const boxes: Record<string, string> = {};
	for (const [device, dh] of remaining) {
		if (removed.includes(device)) continue;
		const box = await sealLockbox(fromBase64Url(dh), contents, boxContext(user, sskKey, device));
		boxes[device] = toBase64Url(box);
	}
	const body = JSON.stringify(
		MoveBody.parse({
			v: 1,
			type: 'vault-move',
			user,
			ssk: sskCert,
			removed: [...removed],
			boxes,
			issued: now
		})
	);
	const sig = await master.sign(concatBytes(utf8Encode(CONTEXT), utf8Encode(body)));
	return { move: { body, sig: toBase64Url(sig) }, keys: { sskSeed, sskCert, accountKey } };
}

/** What a move means to one device. */
export type MoveOutcome =
	| { kind: 'adopt'; keys: MovedKeys; issued: number; removed: string[] }
	| { kind: 'removed'; issued: number }
	/** Not newer than this device's self-signing key, or not about it. */
	| { kind: 'none' };

/**
 * Read a move as device `device` of `user`, whose self-signing key's
 * certificate is `current`. Throws VaultMoveError when the move is not
 * signed by the master key that signed `current` or does not hold together.
 */
export async function readVaultMove(
	move: VaultMove,
	me: { user: string; device: string; dhSecret: Uint8Array; current: Certificate }
): Promise<MoveOutcome> {
	const ok = await verifySignature(
		fromBase64Url(me.current.signer),
		concatBytes(utf8Encode(CONTEXT), utf8Encode(move.body)),
		fromBase64Url(move.sig)
	).catch(() => false);
	if (!ok) throw new VaultMoveError('This vault move is not signed by the account.');
	let body: MoveBody;
	let ssk: SskCertBody;
	try {
		body = MoveBody.parse(JSON.parse(move.body));
		if (body.user !== me.user) throw new Error('another account');
		ssk = await verifySskCert(me.user, body.ssk);
		// A new master key must follow on from the one that signed the move.
		const chain = masterChain(body.ssk);
		const before = masterChain(me.current);
		if (
			body.ssk.signer !== me.current.signer &&
			(chain.length !== before.length + 1 || chain.at(-1)?.signer !== me.current.signer)
		) {
			throw new Error('a master key that does not follow on');
		}
	} catch {
		throw new VaultMoveError('This vault move does not hold together.');
	}
	let currentRank;
	try {
		currentRank = sskRank(SskCertBody.parse(JSON.parse(me.current.body)));
	} catch {
		throw new VaultMoveError('This device’s self-signing certificate cannot be read.');
	}
	if (compareSsk(sskRank(ssk), currentRank) <= 0) return { kind: 'none' };
	const box = body.boxes[me.device];
	if (box === undefined) {
		return body.removed.includes(me.device)
			? { kind: 'removed', issued: ssk.issued }
			: { kind: 'none' };
	}
	let contents: z.infer<typeof BoxContents>;
	try {
		const plaintext = await openLockbox(
			me.dhSecret,
			fromBase64Url(box),
			boxContext(me.user, ssk.key, me.device)
		);
		contents = BoxContents.parse(JSON.parse(utf8Decode(plaintext)));
	} catch {
		throw new VaultMoveError('This device’s lockbox in a vault move does not open.');
	}
	const sskSeed = fromBase64Url(contents.ssk);
	if (toBase64Url(ed25519PublicKey(sskSeed)) !== ssk.key) {
		throw new VaultMoveError('The self-signing key in a vault move is not the certified one.');
	}
	return {
		kind: 'adopt',
		issued: ssk.issued,
		removed: body.removed,
		keys: { sskSeed, sskCert: body.ssk, accountKey: asSecretKey(fromBase64Url(contents.account)) }
	};
}
