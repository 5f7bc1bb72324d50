/**
 * The rules of a conversation doc, checked by every receiver before a Yjs
 * update is applied: on load from disk, from the relay, from a peer.
 *
 *   1. Insert only: the update carries no delete set and no GC'd ranges.
 *   2. Every item is a top-level entry of the map `e` holding binary content
 *      (one envelope), and is the first value for its key (no left origin:
 *      a second value for a key would overwrite the first).
 *   3. The key is base64url(SHA-256(envelope bytes)).
 *   4. The item's Yjs client id is clientIdFor(envelope signer), and its clock
 *      is the clock the envelope's signed frame names (so nobody can replant
 *      an envelope at a clock its device has not used yet).
 *   5. The envelope's signature verifies.
 *
 * An update that breaks any rule is refused whole. Items the doc already holds
 * are skipped without re-verifying, which keeps re-delivery cheap. The checks
 * need no keys, so the relay runs the very same function.
 */
import * as Y from 'yjs';
import {
	clientIdFor,
	envelopeId,
	EnvelopeError,
	parseFrame,
	verifyFrame,
	verifyFrameNow,
	type EnvelopeFrame
} from '../envelope';
import { toBase64Url, utf8Encode } from '../crypto/bytes';
import { sha256 } from '../crypto/hash';
import { type EnvelopeId } from '../crypto/ids';

/** Name of the root Y.Map that holds envelopes keyed by id. */
export const ENVELOPE_MAP = 'e';

export type RuleViolation =
	| 'malformed-update'
	| 'delete-set'
	| 'gc'
	| 'nested-type'
	| 'wrong-root'
	| 'not-binary'
	| 'overwrite'
	| 'key-mismatch'
	| 'client-mismatch'
	| 'clock-mismatch'
	| 'malformed-envelope'
	| 'bad-signature';

export interface AcceptedEntry {
	id: EnvelopeId;
	bytes: Uint8Array;
	frame: EnvelopeFrame;
	/** The Yjs item id (client, clock) that carries the entry. */
	client: number;
	clock: number;
}

export type RuleCheck =
	| {
			ok: true;
			entries: AcceptedEntry[];
			/**
			 * Some struct of the update lies below `known`: already held, skipped
			 * unread (so the update is not new as a whole).
			 */
			held: boolean;
			/**
			 * Every item range the update carries (held ones too), flat:
			 * client, clock, end clock, … — for a caller tracking what the sender
			 * holds, without decoding the update again.
			 */
			spans: number[];
	  }
	| { ok: false; reason: RuleViolation; detail: string };

type Refusal = Extract<RuleCheck, { ok: false }>;

function refuse(reason: RuleViolation, detail: string): Refusal {
	return { ok: false, reason, detail };
}

/**
 * Check a Yjs update (v1 encoding) against the doc rules. `known` is the state
 * vector of the receiving doc (items below it are already held and skipped).
 */
export async function checkUpdate(
	update: Uint8Array,
	known: KnownClocks = new Map<number, number>()
): Promise<RuleCheck> {
	// Each verification starts as soon as its frame is read, so WebCrypto works
	// while the other rules are checked; its answer counts only once they all hold.
	const verifying: Promise<boolean>[] = [];
	const check = checkStructure(update, known, (frame) => verifying.push(verifyFrame(frame)));
	if (!check.ok) return check;
	const { entries } = check;
	// One entry (a live message) is awaited alone: fewer turns than Promise.all.
	const results = verifying.length === 1 ? [await verifying[0]!] : await Promise.all(verifying);
	const bad = results.indexOf(false);
	if (bad >= 0) return badSignature(entries[bad]!);
	return check;
}

/**
 * `checkUpdate` without waiting: the signatures are verified by the platform's
 * synchronous verifier (`useSyncEd25519Verifier`; the relay installs Node's),
 * or by noble where none is installed (slow: for a server, not a page). Same
 * rules, same answers.
 */
export function checkUpdateSync(
	update: Uint8Array,
	known: KnownClocks = new Map<number, number>()
): RuleCheck {
	const check = checkStructure(update, known);
	if (!check.ok) return check;
	for (const entry of check.entries) if (!verifyFrameNow(entry.frame)) return badSignature(entry);
	return check;
}

/**
 * A trusted device's word for what a doc held (docs/protocol.md, "Linking a
 * device": the device that links another hands it one per room): the state
 * vector it had and `vouchDigest` of every envelope id below it. Its own doc
 * held only envelopes that passed every rule there.
 */
export interface Vouch {
	stateVector: Map<number, number>;
	digest: string;
}

/** SHA-256 of the ids, sorted, one per line (base64url): the same set gives the same digest. */
export function vouchDigest(ids: Iterable<string>): string {
	return toBase64Url(sha256(utf8Encode([...ids].sort().join('\n'))));
}

/**
 * `checkUpdate` for a doc that holds a vouch and nothing below its state
 * vector (ConversationDoc sees to that). Rules 1–4 are checked for every
 * entry as always. If the entries below the vouched
 * state vector are exactly the vouched set (same digest), their signatures
 * are not checked again: each id is the hash of its bytes (rule 3), so these
 * are the very envelopes the vouching device verified. The entries above it
 * are verified, and so is everything when the sets differ (a relay that
 * added, dropped or swapped one). With the word of a device whose doc held
 * only valid envelopes, the answers are `checkUpdate`'s.
 */
export async function checkVouchedUpdate(
	update: Uint8Array,
	known: KnownClocks,
	vouch: Vouch
): Promise<RuleCheck> {
	const check = checkStructure(update, known);
	if (!check.ok) return check;
	const covered: string[] = [];
	const beyond: AcceptedEntry[] = [];
	for (const entry of check.entries) {
		if (entry.clock < (vouch.stateVector.get(entry.client) ?? 0)) covered.push(entry.id);
		else beyond.push(entry);
	}
	const vouched = covered.length > 0 && vouchDigest(covered) === vouch.digest;
	const unchecked = vouched ? beyond : check.entries;
	const results = await Promise.all(unchecked.map((entry) => verifyFrame(entry.frame)));
	const bad = results.indexOf(false);
	if (bad >= 0) return badSignature(unchecked[bad]!);
	return check;
}

function badSignature(entry: AcceptedEntry): Refusal {
	return refuse('bad-signature', `envelope ${entry.id} is not signed validly`);
}

/**
 * Rules 1–4: everything but the signatures, which the caller verifies for
 * every entry (`parsed` hears of each entry's frame as soon as it is read, in
 * the order of the entries; it must not throw).
 */
function checkStructure(
	update: Uint8Array,
	known: KnownClocks,
	parsed?: (frame: EnvelopeFrame) => void
): RuleCheck {
	let decoded: ReturnType<typeof Y.decodeUpdate>;
	try {
		decoded = Y.decodeUpdate(update);
	} catch (error) {
		return refuse('malformed-update', String(error));
	}
	if (decoded.ds.clients.size > 0) {
		for (const ranges of decoded.ds.clients.values()) {
			if (ranges.length > 0) return refuse('delete-set', 'updates may not delete');
		}
	}
	const entries: AcceptedEntry[] = [];
	const keys = new Set<string>();
	let held = false;
	const spans: number[] = [];
	for (const struct of decoded.structs) {
		const clock = known.get(struct.id.client) ?? 0;
		if (struct.id.clock < clock) held = true;
		if (struct instanceof Y.Skip) continue;
		if (struct instanceof Y.GC) return refuse('gc', 'garbage-collected ranges are not allowed');
		spans.push(struct.id.client, struct.id.clock, struct.id.clock + struct.length);
		const item = struct as Y.Item;
		if (item.id.clock + item.length <= clock) continue; // already held
		// Before the parent checks: an item with an origin is encoded without its parent.
		if (item.origin !== null || item.rightOrigin !== null) {
			return refuse('overwrite', `a second value for ${item.parentSub ?? 'an entry'}`);
		}
		if (typeof item.parent !== 'string') return refuse('nested-type', 'only top-level entries');
		if (item.parent !== ENVELOPE_MAP) return refuse('wrong-root', `unexpected root ${item.parent}`);
		if (typeof item.parentSub !== 'string') return refuse('nested-type', 'entries must be keyed');
		if (keys.has(item.parentSub)) return refuse('overwrite', `two values for ${item.parentSub}`);
		keys.add(item.parentSub);
		if (!(item.content instanceof Y.ContentBinary)) {
			return refuse('not-binary', 'entries must hold envelope bytes');
		}
		const bytes = item.content.content;
		let frame: EnvelopeFrame;
		try {
			frame = parseFrame(bytes);
		} catch (error) {
			const detail = error instanceof EnvelopeError ? error.message : String(error);
			return refuse('malformed-envelope', detail);
		}
		parsed?.(frame);
		const id = envelopeId(bytes);
		if (id !== item.parentSub) return refuse('key-mismatch', `key ${item.parentSub} is not ${id}`);
		if (clientIdFor(frame.signer) !== item.id.client) {
			return refuse('client-mismatch', `client ${item.id.client} is not bound to the signer`);
		}
		if (frame.clock !== item.id.clock) {
			return refuse(
				'clock-mismatch',
				`clock ${item.id.clock} is not the signed clock ${frame.clock}`
			);
		}
		entries.push({ id, bytes, frame, client: item.id.client, clock: item.id.clock });
	}
	return { ok: true, entries, held, spans };
}

/** What `checkUpdate` reads of a state vector: the next clock of a client. */
export interface KnownClocks {
	get(client: number): number | undefined;
}

/**
 * A doc's state vector for `checkUpdate`'s `known`: a live view (it reads the
 * doc's current clocks when asked), not a copy, so no update pays O(clients)
 * for encoding and decoding the whole vector.
 */
export function knownState(doc: Y.Doc): KnownClocks {
	return { get: (client) => Y.getState(doc.store, client) };
}
