/**
 * Receipts and own-message status, as pure data (DESIGN: receipts are
 * operations; STYLE: status from real acknowledgements only).
 *
 * A receipt op carries the sender's Yjs state vector (`sv`): what its
 * device held when it made the receipt. Each message sits in an envelope at
 * one Yjs item (client, clock), so "user U holds message M" is exactly
 * `U's sv[client(M)] > clock(M)`. A read mark is a position in the message
 * order; "U read M" needs both: U's read mark is at or past M, and U held M
 * when marking. So a message that arrives late — written offline long ago,
 * sorted before the mark — is not counted as read by a mark made before it
 * arrived. Both parts only grow (max-merge), so receipts never go backwards
 * and the result does not depend on arrival order.
 */
import { compareHlc, type Hlc } from '../conversation';
import type { MessageStatus } from './types';

export interface Mark {
	hlc: Hlc;
	id: string;
}

function compareMarks(a: Mark, b: Mark): number {
	return compareHlc(a.hlc, b.hlc) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function mergeMax(into: Map<number, number>, from: Iterable<readonly [number, number]>): void {
	for (const [client, clock] of from) {
		if ((into.get(client) ?? 0) < clock) into.set(client, clock);
	}
}

/** What one user has acknowledged, merged over all their receipts (forward only). */
export class ReceiptBook {
	/** Merged state vector of all their receipts: what their devices held. */
	readonly held = new Map<number, number>();
	/** Greatest read mark, and the merged state vector of their read receipts. */
	read: (Mark & { sv: Map<number, number> }) | null = null;

	note(kind: 'delivered' | 'read', upTo: Mark, sv: ReadonlyArray<readonly [number, number]>): void {
		mergeMax(this.held, sv);
		if (kind !== 'read') return;
		if (!this.read) {
			this.read = { ...upTo, sv: new Map(sv) };
			return;
		}
		if (compareMarks(upTo, this.read) > 0) {
			this.read.hlc = upTo.hlc;
			this.read.id = upTo.id;
		}
		mergeMax(this.read.sv, sv);
	}

	holds(client: number, clock: number): boolean {
		return (this.held.get(client) ?? 0) > clock;
	}

	hasRead(message: Mark, client: number, clock: number): boolean {
		const read = this.read;
		return read !== null && (read.sv.get(client) ?? 0) > clock && compareMarks(read, message) >= 0;
	}
}

export interface OwnMessage extends Mark {
	/** The Yjs item of its envelope. */
	client: number;
	clock: number;
}

/**
 * An own message's status: "Sent" once the relay stored it (or another
 * member holds it), "Delivered" once every other member holds it, "Read"
 * once every other member read it; with the names of those who read it.
 */
export function ownStatus(
	message: OwnMessage,
	others: ReadonlyArray<{ name: string; book: ReceiptBook | undefined }>,
	relayAck: number
): { status: Exclude<MessageStatus, 'Saving'>; readBy: string[] } {
	let delivered = 0;
	const readBy: string[] = [];
	for (const { name, book } of others) {
		if (!book) continue;
		if (book.holds(message.client, message.clock)) delivered++;
		if (book.hasRead(message, message.client, message.clock)) readBy.push(name);
	}
	const n = others.length;
	if (n > 0 && readBy.length === n) return { status: 'Read', readBy };
	if (n > 0 && delivered === n) return { status: 'Delivered', readBy };
	if (relayAck > message.clock || delivered > 0) return { status: 'Sent', readBy };
	return { status: 'Saved', readBy };
}
