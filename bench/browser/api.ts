/**
 * What the benchmark page returns to bench/run.ts (JSON through Playwright).
 * Times are milliseconds from `performance.now()` unless a name says µs.
 */

/** Label of the largest conversation: grown by benchmark 1, cold-opened by benchmark 2. */
export const BIG_CONVERSATION = 'big';

export interface GrowResult {
	messages: number;
	envelopes: number;
	ms: number;
	/** Growing the core-path doc (a DocSession alone) to the same size. */
	coreMs: number;
}

export interface AppendPrepared {
	/** Messages held when the measurement starts. */
	size: number;
	envelopes: number;
	/** One envelope sealed (pad, AES-GCM, Ed25519, SHA-256); µs, median of 15. */
	sealUs: number;
	/** A bare strict IndexedDB commit of 64 bytes to the conversation's database; µs, median of 15. */
	commitUs: number;
	/** JavaScript heap in use (Chromium's `performance.memory`), MB. */
	heapMB: number;
}

export interface AppendRep {
	/** Every single send, in µs: `send()` called → resolved, i.e. the message is "Saved". */
	sendUs: number[];
	/** Wall time of the repetition / messages sent, in µs. */
	repUs: number;
	/**
	 * Per message, the core path only, in µs: operation + envelope + DocSession
	 * + storage, on a doc of the same size that has no ConversationSession.
	 */
	coreUs: number;
	/**
	 * The compaction (the app's own, incremental) run right after the
	 * repetition, outside its timing, on the whole-path doc, in ms. The app runs
	 * one every DEFAULT_COMPACT_THRESHOLD stored updates; its amortised cost is
	 * measured apart (CompactionCycle).
	 */
	compactMs: number;
	compactThreshold: number;
}

/**
 * Compaction over one whole period of its tiers, at a given size: a doc of
 * that many real envelopes (copied from the core-path doc, new ids), its own
 * DocPersistence, compacted in full once; then `messages` single-entry
 * updates in `compactions` rounds, each stored (as one record) and
 * compacted with the app's policy. Times are of `compact()` alone.
 */
export interface CompactionCycle {
	size: number;
	messages: number;
	compactions: number;
	/** Compactions that rewrote the whole doc. */
	full: number;
	/** Sum of the compaction times, ms. */
	totalMs: number;
	/** totalMs / messages, in µs: the amortised compaction cost of one message. */
	perMessageUs: number;
	maxMs: number;
	/** Largest record one compaction wrote, bytes. */
	maxBytes: number;
	/** The full compaction of the whole doc at the start, ms (the old policy's cost every 500 updates). */
	fullMs: number;
	/** Stored records and bytes at the end. */
	records: number;
	storedBytes: number;
}

export interface SnapshotResult {
	messages: number;
	envelopes: number;
	/** `serialize()` + `saveSnapshot` (JSON, AES-GCM, IndexedDB put), as the app's timer does. */
	saveMs: number;
	ciphertextBytes: number;
	/** Stored doc: state after compaction. */
	storedBytes: number;
	storedRecords: number;
}

export interface BaselinePrepared {
	messages: number;
	updateBytes: number;
}

export interface BaselineOpen {
	messages: number;
	applyMs: number;
}

/** Frame times of one scripted scroll (ms between animation frames). */
export interface ScrollRun {
	frameMs: number[];
	/** Rows in the DOM at the end (the view renders a window of the history). */
	rows: number;
	/** How far up the history the scroll got: index of the first rendered message. */
	reached: number;
}

export interface ScrollResult {
	messages: number;
	kith: ScrollRun;
	/** The same scroll over a static copy of the rows first rendered: no app code runs. */
	baseline: ScrollRun;
}

export interface ColdOpenResult {
	messages: number;
	/** `unlockKeyring` (app start, before any conversation), for context. */
	unlockMs: number;
	/** `loadSnapshot` alone (IndexedDB read, AES-GCM, UTF-8, JSON.parse). */
	loadSnapshotMs: number;
	/** `loadSnapshot` → session with restored reducer → last 80 MessageViews in hand. */
	firstScreenMs: number;
	/** …plus the real ConversationView mounted and a frame painted. */
	renderedMs: number | null;
	/** Rows in the DOM at that frame. */
	renderedRows: number;
	/** …until `DocSession.loaded`: every stored update read, checked and applied (when waited for). */
	fullLoadMs: number | null;
	snapshotFound: boolean;
}

export interface ColdOpenSplits {
	messages: number;
	/** IndexedDB get of the stored snapshot (structured clone of the ciphertext). */
	readMs: number;
	decryptMs: number;
	/** UTF-8 decode + JSON.parse. */
	parseMs: number;
	/** Zod `ReducerSnapshot.safeParse` inside `ConversationReducer.deserialize`. */
	validateMs: number;
	/** `ConversationReducer.add` of every item. */
	reduceMs: number;
	snapshotBytes: number;
}

export interface NoSnapshotOpenResult {
	messages: number;
	envelopes: number;
	/** Until `DocSession.loaded`: every stored update read, every signature verified, applied. */
	loadedMs: number;
	/** Until every envelope is decrypted and reduced: the first screen without a snapshot. */
	viewMs: number;
}

export interface RateResult {
	count: number;
	ms: number;
	perSecond: number;
	/** Transaction durability used for the writes ('relaxed' is Chromium's default). */
	durability?: string;
}

export interface EnvelopeRates {
	count: number;
	sealPerSecond: number;
	openPerSecond: number;
}

export interface BenchApi {
	appendGrow(label: string, to: number, chunk: number): Promise<GrowResult>;
	appendPrepare(label: string): Promise<AppendPrepared>;
	appendRep(label: string, count: number): Promise<AppendRep>;
	compactionCycle(label: string, messages: number): Promise<CompactionCycle>;
	snapshotSave(): Promise<SnapshotResult>;
	baselinePrepare(messages: number): Promise<BaselinePrepared>;
	baselineColdOpen(): Promise<BaselineOpen>;
	kithColdOpen(render: boolean, waitForFullLoad: boolean): Promise<ColdOpenResult>;
	kithColdOpenSplits(): Promise<ColdOpenSplits>;
	kithColdOpenNoSnapshot(): Promise<NoSnapshotOpenResult>;
	kithScroll(frames: number, stepPx: number): Promise<ScrollResult>;
	burstKith(count: number): Promise<RateResult>;
	burstYIndexeddb(count: number): Promise<RateResult>;
	burstDocPersistence(count: number): Promise<RateResult>;
	envelopeRates(count: number): Promise<EnvelopeRates>;
}

declare global {
	interface Window {
		kithBench?: BenchApi;
	}
}
