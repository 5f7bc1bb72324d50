/**
 * Generations: how a conversation rotates its key and its room.
 *
 * Removing a member (or a member leaving) must leave them able to read
 * nothing new and to write nowhere anyone reads. Keys alone would not do it:
 * the removed device still holds the room's access capability. So a new
 * generation gets both a fresh epoch key and a fresh random room id, and its
 * opener — an owner or admin device — publishes in the old generation one
 * `epoch` operation holding, for each remaining member device, a lockbox
 * sealed to that device's X25519 key (from its certificate, in the roster):
 *
 *   context = "kith/generation\0" || conversation id || "\0" || decimal epoch
 *   content = UTF-8 JSON {"room": <RoomId>, "epoch": <n>, "key": <base64url 32 bytes>,
 *                         "opener": <DeviceId>}
 *
 * The context binds a box to its conversation and epoch: a box cannot be
 * replayed into another conversation or passed off as another generation.
 * A device that was offline finds its box in the old generation whenever it
 * comes back, so it moves too. The removed member's devices get no box.
 *
 * The new generation starts with `seed` ops from its opener: the surviving
 * ops of the generations before (compaction.ts), as their devices signed
 * them, so the view is the same, a member admitted later replays the same
 * membership as everyone else (membership.ts), and the old generations can
 * be retired. Only the opener's seed counts.
 */
import { fromBase64Url, toBase64Url, utf8Decode, utf8Encode } from '../crypto/bytes';
import { isRoomId, type RoomId, type SecretKey } from '../crypto/ids';
import { openLockbox, sealLockbox } from '../invite/lockbox';
import { compareHlc } from './hlc';
import { roleAt, type MembershipState } from './membership';
import { seededOps, type EpochOp, type Operation, type SeededOp, type SeedOp } from './operations';

const CONTEXT = 'kith/generation\0';

/** What a member device needs to enter a generation. */
export interface GenerationKey {
	room: RoomId;
	epoch: number;
	key: SecretKey;
	/** The device that opened it (only its seed counts). */
	opener: string;
}

function context(conversation: string, epoch: number): Uint8Array {
	return utf8Encode(`${CONTEXT}${conversation}\0${epoch}`);
}

/** Seal a generation's room and key to each device (device id → X25519 public key, base64url). */
export async function sealGeneration(
	conversation: string,
	generation: GenerationKey,
	devices: ReadonlyMap<string, string>
): Promise<Record<string, string>> {
	const plaintext = utf8Encode(
		JSON.stringify({
			room: generation.room,
			epoch: generation.epoch,
			key: toBase64Url(generation.key),
			opener: generation.opener
		})
	);
	const boxes: Record<string, string> = {};
	for (const [device, dh] of devices) {
		const box = await sealLockbox(
			fromBase64Url(dh),
			plaintext,
			context(conversation, generation.epoch)
		);
		boxes[device] = toBase64Url(box);
	}
	return boxes;
}

/**
 * Open this device's box in an epoch op. Returns null when there is none for
 * it (the device was removed, or joined after). Throws LockboxError or a
 * GenerationError when a box is there but cannot be opened or says something
 * else than its op: the caller reports it and stays where it is.
 */
export async function openGeneration(
	conversation: string,
	op: EpochOp,
	device: string,
	dhSecret: Uint8Array
): Promise<GenerationKey | null> {
	const box = Object.hasOwn(op.boxes, device) ? op.boxes[device] : undefined;
	if (box === undefined) return null;
	const plaintext = await openLockbox(
		dhSecret,
		fromBase64Url(box),
		context(conversation, op.epoch)
	);
	let parsed: unknown;
	try {
		parsed = JSON.parse(utf8Decode(plaintext));
	} catch {
		throw new GenerationError('The new generation’s lockbox holds no valid JSON.');
	}
	const { room, epoch, key, opener } = (parsed ?? {}) as Record<string, unknown>;
	if (!isRoomId(room) || epoch !== op.epoch || typeof key !== 'string') {
		throw new GenerationError('The new generation’s lockbox does not match its operation.');
	}
	if (typeof opener !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(opener)) {
		throw new GenerationError('The new generation’s lockbox names no opener.');
	}
	const bytes = fromBase64Url(key);
	if (bytes.length !== 32) throw new GenerationError('The new generation’s key is not 32 bytes.');
	return { room, epoch, key: bytes as SecretKey, opener };
}

/**
 * Op types a device re-publishes in a new generation when its seed does not
 * carry them (written offline, or after the opener moved).
 */
export const CARRIED_TYPES: ReadonlySet<Operation['type']> = new Set<Operation['type']>([
	'send',
	'edit',
	'delete',
	'react',
	'member.add',
	'member.remove',
	'member.role',
	'invite'
]);

export class GenerationError extends Error {
	override name = 'GenerationError';
}

/** An epoch op as a replica holds it: with its signing device and the user behind it. */
export interface HeldEpoch {
	op: EpochOp;
	device: string;
	user: string;
}

/**
 * Of the epoch ops for the next generation a replica holds, the one every
 * replica follows: the least by (hlc, id, device) among those by a device
 * whose user may open it (an owner or admin at that point: `mayOpen`).
 * Concurrent openers therefore agree without talking to each other.
 */
export function winningEpoch(
	held: readonly HeldEpoch[],
	epoch: number,
	mayOpen: (epoch: HeldEpoch) => boolean
): HeldEpoch | null {
	let best: HeldEpoch | null = null;
	for (const candidate of held) {
		if (candidate.op.epoch !== epoch || !mayOpen(candidate)) continue;
		if (best === null || compareEpochs(candidate, best) < 0) best = candidate;
	}
	return best;
}

function compareEpochs(a: HeldEpoch, b: HeldEpoch): number {
	const ha = { wall: a.op.hlc[0], counter: a.op.hlc[1] };
	const hb = { wall: b.op.hlc[0], counter: b.op.hlc[1] };
	return (
		compareHlc(ha, hb) ||
		(a.op.id < b.op.id ? -1 : a.op.id > b.op.id ? 1 : 0) ||
		(a.device < b.device ? -1 : a.device > b.device ? 1 : 0)
	);
}

/** Split the ops a seed carries (compaction.ts) into parts of at most `size`. */
export function seedParts(ops: readonly SeededOp[], size = 256): SeededOp[][] {
	const parts: SeededOp[][] = [];
	for (let i = 0; i < ops.length; i += size) {
		parts.push(ops.slice(i, i + size).map(({ device, op }) => ({ device, op })));
	}
	return parts;
}

/** One opened envelope: its id, signing device and ops (SignedOps' shape). */
interface Opened {
	entryId: string;
	device: string;
	ops: Operation[];
}

/**
 * Split an opened envelope into its own ops and, when its device is the
 * generation's `opener`, the ops its seed carries — each as an envelope of
 * the device that signed it (ids `<entry>:<seed op id>:<index>`). Seeds from
 * anyone else are dropped. `seeds`: the opener's seed ops (for part counts).
 */
export function expandSeeds(
	opened: Opened,
	opener: string | null
): { own: Operation[]; seeded: Opened[]; seeds: SeedOp[] } {
	if (!opened.ops.some((op) => op.type === 'seed')) {
		return { own: opened.ops, seeded: [], seeds: [] };
	}
	const own: Operation[] = [];
	const seeded: Opened[] = [];
	const seeds: SeedOp[] = [];
	for (const op of opened.ops) {
		if (op.type !== 'seed') {
			own.push(op);
			continue;
		}
		if (opener === null || opened.device !== opener) continue;
		seeds.push(op);
		seededOps(op).forEach((s, i) => {
			seeded.push({ entryId: `${opened.entryId}:${op.id}:${i}`, device: s.device, ops: [s.op] });
		});
	}
	return { own, seeded, seeds };
}

/**
 * The epoch op a replica follows out of `membership`'s conversation: the
 * winning one for `epoch` among those whose signer was an owner or admin at
 * its stamp (membership.ts `roleAt`), not what they became after.
 */
export function followedEpoch(
	held: readonly HeldEpoch[],
	epoch: number,
	membership: MembershipState
): HeldEpoch | null {
	return winningEpoch(held, epoch, (candidate) => {
		const role = roleAt(membership, candidate.user, {
			hlc: { wall: candidate.op.hlc[0], counter: candidate.op.hlc[1] },
			id: candidate.op.id,
			signer: candidate.user
		});
		return role === 'owner' || role === 'admin';
	});
}
