/**
 * A plain-JavaScript stand-in for the part of Automerge the vault uses
 * (src/lib/vault/vault.ts: init, applyChanges, getHeads, change, getChanges,
 * view, getConflicts, save, load, getActorId, ImmutableString), for the "without Automerge" side of benchmark D2
 * only. It cannot decode changes: it holds the account's vault content,
 * read beforehand from the relay with the real Automerge
 * (`serializeVault`), and the first `applyChanges` with any change makes
 * the doc that content. Local changes are applied to a copy and produce no
 * change bytes (nothing is written: a first screen writes nothing to the
 * vault). Never part of the app.
 */

const HEADS = Symbol('heads');

class ImmutableString {
	constructor(readonly val: string) {}
	toString(): string {
		return this.val;
	}
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Value =
	null | boolean | number | string | ImmutableString | Value[] | { [key: string]: Value };
type Doc = { [key: string]: Value } & { [HEADS]?: string[] };

/** JSON of a vault doc: ImmutableStrings as `{"$i": text}`. */
function revive(value: Json): Value {
	if (Array.isArray(value)) return value.map(revive);
	if (value !== null && typeof value === 'object') {
		const keys = Object.keys(value);
		if (keys.length === 1 && keys[0] === '$i' && typeof value.$i === 'string') {
			return new ImmutableString(value.$i);
		}
		return Object.fromEntries(keys.map((key) => [key, revive(value[key] as Json)]));
	}
	return value;
}

function copy(value: Value): Value {
	if (value instanceof ImmutableString || value === null || typeof value !== 'object') return value;
	if (Array.isArray(value)) return value.map(copy);
	return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, copy(v)]));
}

function withHeads(doc: Doc, heads: string[]): Doc {
	Object.defineProperty(doc, HEADS, { value: heads, enumerable: false });
	return doc;
}

let local = 0;

/** The stand-in module, holding the vault content `json` (from `serializeVault`). */
export function stubAutomerge<T>(json: string): T {
	const content = revive(JSON.parse(json) as Json) as Doc;
	const module = {
		ImmutableString,
		init: (): Doc => withHeads({}, []),
		getHeads: (doc: Doc): string[] => doc[HEADS] ?? [],
		applyChanges: (doc: Doc, changes: Uint8Array[]): [Doc] =>
			changes.length === 0 || doc[HEADS]?.[0] === 'content'
				? [doc]
				: [withHeads(copy(content) as Doc, ['content'])],
		change: (doc: Doc, fn: (doc: Doc) => void): Doc => {
			const next = copy(doc) as Doc;
			fn(next);
			return withHeads(next, [`local-${++local}`]);
		},
		getChanges: (): Uint8Array[] => [],
		view: (doc: Doc): Doc => doc,
		// No concurrent writes in a stand-in: nothing is ever in conflict.
		getConflicts: (): undefined => undefined,
		// Vault.applyChanges loads a doc again after a large batch: the same doc.
		save: (doc: Doc): Doc => doc,
		load: (saved: Doc): Doc => saved,
		getActorId: (): string => 'stub'
	};
	return module as unknown as T;
}

/**
 * A vault doc (real Automerge) as JSON for `stubAutomerge`: ImmutableStrings
 * (recognised by `isImmutable`) become `{"$i": text}`.
 */
export function serializeVault(doc: unknown, isImmutable: (value: unknown) => boolean): string {
	const walk = (value: unknown): Json => {
		if (isImmutable(value)) return { $i: String(value) };
		if (Array.isArray(value)) return value.map(walk);
		if (value !== null && typeof value === 'object') {
			return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, walk(v)]));
		}
		if (typeof value === 'number' || typeof value === 'string' || typeof value === 'boolean')
			return value;
		return null;
	};
	return JSON.stringify(walk(doc));
}
