/**
 * Remote awareness (typing) of one room, merged over every path that carries
 * it: the relay, other browsers (P2PLink) and `kith serve` peers (LanLink).
 * Each path reports its whole current set of remote states (awareness client
 * id → encrypted state); the merged view holds each client id once. When two
 * paths hold different states for one client, the one that arrived last wins
 * (a sender publishes the same state on every path, so the other path
 * catches up with it). A client leaves the view when no path holds it any
 * more: a path that went (a peer that left, a relay that dropped) reports an
 * empty set.
 */

interface Held {
	state: Uint8Array;
	/** When this path last brought a different state for the client (a counter). */
	at: number;
}

export class AwarenessMerge {
	/** path → client id → what the path holds. */
	readonly #paths = new Map<string, Map<number, Held>>();
	#tick = 0;
	#merged: ReadonlyMap<number, Uint8Array> = new Map();

	/** The merged remote states (a new map after each change: safe to keep). */
	get states(): ReadonlyMap<number, Uint8Array> {
		return this.#merged;
	}

	/** A path's whole set of remote states; true when the merged view changed. */
	set(path: string, states: ReadonlyMap<number, Uint8Array>): boolean {
		const before = this.#paths.get(path);
		const next = new Map<number, Held>();
		for (const [client, state] of states) {
			const held = before?.get(client);
			next.set(client, held && sameBytes(held.state, state) ? held : { state, at: ++this.#tick });
		}
		if (next.size === 0) this.#paths.delete(path);
		else this.#paths.set(path, next);
		return this.#recompute();
	}

	/** Forget a path (it closed); true when the merged view changed. */
	drop(path: string): boolean {
		if (!this.#paths.delete(path)) return false;
		return this.#recompute();
	}

	#recompute(): boolean {
		const newest = new Map<number, Held>();
		for (const states of this.#paths.values()) {
			for (const [client, held] of states) {
				const other = newest.get(client);
				if (!other || other.at < held.at) newest.set(client, held);
			}
		}
		const merged = new Map<number, Uint8Array>();
		for (const [client, held] of newest) merged.set(client, held.state);
		if (sameStates(merged, this.#merged)) return false;
		this.#merged = merged;
		return true;
	}
}

function sameStates(a: ReadonlyMap<number, Uint8Array>, b: ReadonlyMap<number, Uint8Array>) {
	if (a.size !== b.size) return false;
	for (const [client, state] of a) {
		const other = b.get(client);
		if (!other || !sameBytes(state, other)) return false;
	}
	return true;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
	if (a === b) return true;
	if (a.length !== b.length) return false;
	for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
	return true;
}
