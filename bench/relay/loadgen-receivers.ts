/**
 * Worker thread of the load generator: a share of the receivers. Each is a
 * WebSocket client that only reads (./raw-client.ts). For every message `seq`
 * a frame carries (one, or several when the relay merged queued updates) it
 * takes `now - sendTimes[seq]` (the writer thread stores the send time in
 * shared memory before sending) into a histogram, if `seq` is in the current
 * steady window. It also keeps, per receiver, the highest seq seen
 * (to know when the relay has drained) and the event-loop delay of this
 * thread (to tell whether the load generator itself is the bottleneck).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { bucketOf, BUCKETS, nowMs } from './clock';
import { rawConnect, type RawClient } from './raw-client';
import { seqRangeOf } from './stream';

export type ReceiverCommand =
	| { type: 'connect'; urls: string[]; waitForFrame: boolean }
	| { type: 'window'; from: number; to: number; abortMs: number }
	| { type: 'progress' }
	| { type: 'collect' }
	| { type: 'close' };

export interface ReceiverReport {
	hist: Uint32Array;
	count: number;
	/** Frames that carried those deliveries (fewer than `count` when a relay merges). */
	frames: number;
	maxMs: number;
	/** Receivers closed by the relay (or failed) since connecting. */
	closed: number;
	loopP99Ms: number;
	loopMaxMs: number;
}

const port = parentPort!;
const sendTimes = new Float64Array(workerData.sendTimes as SharedArrayBuffer);

let sockets: RawClient[] = [];
/** Highest seq seen by each receiver (-1: none). */
let seen = new Int32Array(0);
let closed = 0;
let from = 0;
let to = 0;
let abortMs = Number.POSITIVE_INFINITY;
let slowReported = false;
let hist = new Uint32Array(BUCKETS + 1);
let count = 0;
let frames = 0;
let maxMs = 0;
const loop = monitorEventLoopDelay({ resolution: 5 });
loop.enable();

const frameCount = new Uint32Array(1);

function onFrame(index: number, data: Buffer): void {
	const t = nowMs();
	const first = seqRangeOf(data, frameCount);
	if (first < 0) return;
	// Every message the frame carries counts as one delivery (a relay may merge).
	const end = first + frameCount[0]!;
	if (end - 1 > seen[index]!) seen[index] = end - 1;
	if (first < to && end > from) frames++;
	for (let seq = Math.max(first, from); seq < end && seq < to; seq++) {
		const ms = t - sendTimes[seq]!;
		hist[bucketOf(ms)]!++;
		count++;
		if (ms > maxMs) maxMs = ms;
		if (ms > abortMs && !slowReported) {
			slowReported = true;
			port.postMessage({ type: 'slow', ms });
		}
	}
}

async function connect(urls: string[], waitForFrame: boolean): Promise<void> {
	seen = new Int32Array(urls.length).fill(-1);
	closed = 0;
	sockets = [];
	const admitted: Promise<void>[] = [];
	// A few at a time: hundreds of simultaneous handshakes overflow the listen backlog.
	for (let i = 0; i < urls.length; i += 50) {
		const batch = urls.slice(i, i + 50);
		sockets.push(
			...(await Promise.all(
				batch.map((url, k) => {
					const index = i + k;
					let first: () => void = () => {};
					admitted.push(new Promise<void>((resolve) => (first = resolve)));
					return rawConnect(
						url,
						(payload) => {
							first();
							onFrame(index, payload);
						},
						() => closed++
					);
				})
			))
		);
	}
	// Admitted (Kith) or greeted (stock) once the relay's first frame came.
	if (waitForFrame) await Promise.all(admitted);
}

port.on('message', (command: ReceiverCommand) => {
	switch (command.type) {
		case 'connect':
			connect(command.urls, command.waitForFrame).then(
				() => port.postMessage({ type: 'connected' }),
				(error: unknown) => port.postMessage({ type: 'error', message: String(error) })
			);
			return;
		case 'window':
			from = command.from;
			to = command.to;
			abortMs = command.abortMs;
			slowReported = false;
			hist = new Uint32Array(BUCKETS + 1);
			count = 0;
			frames = 0;
			maxMs = 0;
			loop.reset();
			port.postMessage({ type: 'ok' });
			return;
		case 'progress': {
			let min = Number.POSITIVE_INFINITY;
			for (const s of seen) if (s < min) min = s;
			port.postMessage({ type: 'progress', minSeen: min, closed });
			return;
		}
		case 'collect': {
			const report: ReceiverReport = {
				hist,
				count,
				frames,
				maxMs,
				closed,
				loopP99Ms: loop.percentile(99) / 1e6,
				loopMaxMs: loop.max / 1e6
			};
			port.postMessage({ type: 'report', report }, [hist.buffer]);
			hist = new Uint32Array(BUCKETS + 1);
			return;
		}
		case 'close':
			for (const socket of sockets) socket.close();
			sockets = [];
			port.postMessage({ type: 'ok' });
			return;
	}
});
