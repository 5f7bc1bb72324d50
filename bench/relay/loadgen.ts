/**
 * The fan-out load generator: a child process (forked with an IPC channel by
 * bench/relay/fanout.ts) holding the single writer and every receiver, so that
 * the relay's process does nothing but relay. The writer runs in one worker
 * thread, the receivers in `threads` others, and this thread only
 * coordinates. All share one clock (./clock.ts) and the writer's send times
 * (a SharedArrayBuffer), so each receiver measures each delivery's latency as
 * it arrives.
 *
 * Protocol (process messages): `init` → `ready`; `connect` → `connected`;
 * `step` → `step-result`; `disconnect` → `disconnected`; `exit`.
 */
import type { Worker } from 'node:worker_threads';
import { deriveRoomCapability, challengeMessage } from '../../src/lib/sync';
import { toBase64Url } from '../../src/lib/crypto';
import { BUCKETS, histogramPercentile } from './clock';
import type { ReceiverCommand, ReceiverReport } from './loadgen-receivers';
import type { WriterCommand, WriterReport } from './loadgen-writer';
import { procCpuMs, procStatus, type RelayKind } from './servers';
import { makeStream, type MessageStream } from './stream';
import { tsWorker } from './ts-worker';

export interface InitRequest {
	type: 'init';
	/** Messages in the writer's stream (the most one relay process is sent). */
	count: number;
	/** Receiver worker threads. */
	threads: number;
}

export interface ConnectRequest {
	type: 'connect';
	kind: RelayKind;
	url: string;
	receivers: number;
	relayPid: number;
}

export interface StepRequest {
	type: 'step';
	/** First seq to send (each relay process starts at 0). */
	from: number;
	rate: number;
	warmMs: number;
	measureMs: number;
	/** Stop the step as soon as one delivery is later than this. */
	abortMs: number;
	/** How long to wait after the last send for every receiver to have everything. */
	drainMs: number;
}

export interface StepResult {
	rate: number;
	from: number;
	sent: number;
	aborted: boolean;
	/** Every receiver got every message sent within drainMs. */
	drained: boolean;
	/** Deliveries in the steady window, and how many there should have been. */
	delivered: number;
	expected: number;
	/** Frames that carried the deliveries (a relay that merges sends fewer). */
	frames: number;
	p50Ms: number;
	p99Ms: number;
	maxMs: number;
	/** Receivers the relay closed (or lost) during the step. */
	closed: number;
	/** Relay process: CPU used while sending (% of one core), RSS at the end of sending. */
	relayCpuPct: number;
	relayRss: number;
	/** This process (writer, receivers, coordinator): CPU while sending (% of one core). */
	loadgenCpuPct: number;
	/** Worst receiver thread's event-loop delay over the step. */
	loopP99Ms: number;
	loopMaxMs: number;
	writerMaxLagMs: number;
	writerMaxBuffered: number;
	sendMs: number;
}

type Request = InitRequest | ConnectRequest | StepRequest | { type: 'disconnect' | 'exit' };

const send = (message: unknown): void => {
	process.send!(message);
};

let stream: MessageStream;
let sendTimes: SharedArrayBuffer;
let writer: Worker;
let receivers: Worker[] = [];
let receiverCount = 0;
let relayPid = 0;
let kind: RelayKind = 'plain';

/** The next message of a worker matching `type` (an `error` message rejects). */
function reply<T>(worker: Worker, type: string): Promise<T> {
	return new Promise((resolve, reject) => {
		const onMessage = (message: { type: string; message?: string }) => {
			if (message.type === type) {
				worker.off('message', onMessage);
				resolve(message as T);
			} else if (message.type === 'error') {
				worker.off('message', onMessage);
				reject(new Error(message.message));
			}
		};
		worker.on('message', onMessage);
	});
}

function ask<T>(
	worker: Worker,
	command: ReceiverCommand | WriterCommand,
	type: string
): Promise<T> {
	const answer = reply<T>(worker, type);
	worker.postMessage(command);
	return answer;
}

async function init(request: InitRequest): Promise<void> {
	stream = await makeStream(request.count);
	sendTimes = new SharedArrayBuffer(8 * stream.count);
	const bytes = stream.bytes.slice().buffer;
	writer = tsWorker(new URL('./loadgen-writer.ts', import.meta.url), {
		workerData: { bytes, offsets: stream.offsets, sendTimes },
		transferList: [bytes]
	});
	receivers = Array.from({ length: request.threads }, () =>
		tsWorker(new URL('./loadgen-receivers.ts', import.meta.url), { workerData: { sendTimes } })
	);
	const sizes = Array.from(stream.offsets.subarray(1), (end, i) => end - stream.offsets[i]!);
	sizes.sort((a, b) => a - b);
	send({ type: 'ready', frameBytes: sizes[sizes.length >> 1], messages: stream.count });
}

async function socketUrl(base: string, writing: boolean): Promise<string> {
	const ws = base.replace(/^http/, 'ws');
	if (kind !== 'kith') return `${ws}/${stream.roomId}`;
	const res = await fetch(`${base}/sync/challenge?room=${stream.roomId}`);
	if (!res.ok) throw new Error(`challenge: HTTP ${res.status}`);
	const { nonce } = (await res.json()) as { nonce: string };
	const cap = await capability();
	const sig = await cap.sign(challengeMessage(stream.roomId, nonce));
	const params = new URLSearchParams({
		cap: toBase64Url(cap.publicKey),
		nonce,
		sig: toBase64Url(sig)
	});
	// A writing Kith client asks for acknowledgements, as the app does.
	if (writing) params.set('ack', '1');
	return `${ws}/sync/${stream.roomId}?${params}`;
}

let cap: ReturnType<typeof deriveRoomCapability> | null = null;
const capability = () => (cap ??= deriveRoomCapability(stream.epochKey, stream.roomId));

async function connect(request: ConnectRequest): Promise<void> {
	kind = request.kind;
	relayPid = request.relayPid;
	receiverCount = request.receivers;
	// Kith admits with its step 1, the stock server greets with its step 1; the plain one says nothing.
	const waitForFrame = kind !== 'plain';
	const urls: string[] = [];
	for (let i = 0; i < request.receivers; i += 25) {
		const batch = Math.min(25, request.receivers - i);
		urls.push(
			...(await Promise.all(Array.from({ length: batch }, () => socketUrl(request.url, false))))
		);
	}
	const share = <T>(list: T[], t: number): T[] => list.filter((_, i) => i % receivers.length === t);
	await Promise.all(
		receivers.map((worker, t) =>
			ask(worker, { type: 'connect', urls: share(urls, t), waitForFrame }, 'connected')
		)
	);
	await ask(
		writer,
		{ type: 'connect', url: await socketUrl(request.url, true), waitForFrame },
		'connected'
	);
	send({ type: 'connected' });
}

async function step(request: StepRequest): Promise<void> {
	const { from, rate, warmMs, measureMs } = request;
	const count = Math.max(1, Math.round((rate * (warmMs + measureMs)) / 1000));
	const warm = Math.round((rate * warmMs) / 1000);
	if (from + count > stream.count) {
		throw new Error(`the stream holds ${stream.count} messages; the step needs ${from + count}`);
	}
	await Promise.all(
		receivers.map((w) =>
			ask(
				w,
				{ type: 'window', from: from + warm, to: from + count, abortMs: request.abortMs },
				'ok'
			)
		)
	);
	let aborted = false;
	const onSlow = (message: { type: string }) => {
		if (message.type === 'slow' && !aborted) {
			aborted = true;
			writer.postMessage({ type: 'stop' } satisfies WriterCommand);
		}
	};
	for (const w of receivers) w.on('message', onSlow);
	const cpu0 = procCpuMs('self');
	const relayCpu0 = procCpuMs(relayPid);
	const t0 = performance.now();
	let report: WriterReport;
	try {
		({ report } = await ask<{ report: WriterReport }>(
			writer,
			{ type: 'run', from, count, rate },
			'done'
		));
	} finally {
		for (const w of receivers) w.off('message', onSlow);
	}
	const sendMs = performance.now() - t0;
	const loadgenCpuPct = ((procCpuMs('self') - cpu0) / sendMs) * 100;
	const relayCpuPct = ((procCpuMs(relayPid) - relayCpu0) / sendMs) * 100;
	const relayRss = procStatus(relayPid, 'VmRSS');

	// Drain: every receiver has the last message sent, or time is up.
	const last = from + report.sent - 1;
	const deadline = performance.now() + request.drainMs;
	let drained = false;
	let closed = 0;
	for (;;) {
		const progress = await Promise.all(
			receivers.map((w) =>
				ask<{ minSeen: number; closed: number }>(w, { type: 'progress' }, 'progress')
			)
		);
		closed = progress.reduce((sum, p) => sum + p.closed, 0);
		if (progress.every((p) => p.minSeen >= last)) {
			drained = true;
			break;
		}
		if (performance.now() > deadline || closed > 0) break;
		await new Promise((resolve) => setTimeout(resolve, 50));
	}
	const reports = await Promise.all(
		receivers.map((w) =>
			ask<{ report: ReceiverReport }>(w, { type: 'collect' }, 'report').then((r) => r.report)
		)
	);
	const hist = new Uint32Array(BUCKETS + 1);
	let delivered = 0;
	let frames = 0;
	let maxMs = 0;
	for (const r of reports) {
		for (let b = 0; b < hist.length; b++) hist[b]! += r.hist[b]!;
		delivered += r.count;
		frames += r.frames;
		maxMs = Math.max(maxMs, r.maxMs);
	}
	const windowEnd = Math.min(count, report.sent);
	const expected = Math.max(0, windowEnd - warm) * receiverCount;
	// A delivery that never came counts as late.
	const total = Math.max(delivered, expected);
	hist[BUCKETS]! += total - delivered;
	const result: StepResult = {
		rate,
		from,
		sent: report.sent,
		aborted,
		drained,
		delivered,
		expected,
		frames,
		p50Ms: histogramPercentile(hist, total, 50),
		p99Ms: histogramPercentile(hist, total, 99),
		maxMs: delivered < expected ? Number.POSITIVE_INFINITY : maxMs,
		closed,
		relayCpuPct,
		relayRss,
		loadgenCpuPct,
		loopP99Ms: Math.max(...reports.map((r) => r.loopP99Ms)),
		loopMaxMs: Math.max(...reports.map((r) => r.loopMaxMs)),
		writerMaxLagMs: report.maxLagMs,
		writerMaxBuffered: report.maxBuffered,
		sendMs
	};
	send({ type: 'step-result', result });
}

async function disconnect(): Promise<void> {
	await Promise.all(receivers.map((w) => ask(w, { type: 'close' }, 'ok')));
	await ask(writer, { type: 'close' }, 'ok');
	send({ type: 'disconnected' });
}

process.on('message', (request: Request) => {
	const run = async () => {
		switch (request.type) {
			case 'init':
				return init(request);
			case 'connect':
				return connect(request);
			case 'step':
				return step(request);
			case 'disconnect':
				return disconnect();
			case 'exit':
				process.exit(0);
		}
	};
	run().catch((error: unknown) =>
		send({
			type: 'error',
			message: error instanceof Error ? (error.stack ?? error.message) : String(error)
		})
	);
});
