/**
 * Worker thread of the load generator: the single writer. Sends the stream's
 * frames on a fixed schedule (message k of a step is due at k / rate seconds),
 * sending whatever is due every millisecond, and stores each frame's send
 * time in shared memory just before `ws.send`. Records how far it fell behind
 * its schedule, and what the socket had buffered (a relay that reads slowly
 * shows there).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { WebSocket } from 'ws';
import { nowMs } from './clock';

export type WriterCommand =
	| { type: 'connect'; url: string; waitForFrame: boolean }
	| { type: 'run'; from: number; count: number; rate: number }
	| { type: 'stop' }
	| { type: 'close' };

export interface WriterReport {
	sent: number;
	/** Most the writer fell behind its schedule, ms. */
	maxLagMs: number;
	/** Largest `bufferedAmount` seen, bytes. */
	maxBuffered: number;
}

const port = parentPort!;
const bytes = new Uint8Array(workerData.bytes as ArrayBuffer);
const offsets = workerData.offsets as Uint32Array;
const sendTimes = new Float64Array(workerData.sendTimes as SharedArrayBuffer);
const frame = (seq: number): Uint8Array => bytes.subarray(offsets[seq], offsets[seq + 1]);

let ws: WebSocket | null = null;
let stopped = false;

function connect(url: string, waitForFrame: boolean): Promise<void> {
	return new Promise((resolve, reject) => {
		const socket = new WebSocket(url, { perMessageDeflate: false });
		socket.binaryType = 'nodebuffer';
		let first = true;
		// Acknowledgements (Kith) and echoes (stock) are read and dropped.
		socket.on('message', () => {
			if (first && waitForFrame) resolve();
			first = false;
		});
		socket.once('open', () => {
			ws = socket;
			if (!waitForFrame) resolve();
		});
		socket.once('error', reject);
		socket.on('error', () => {});
		socket.once('close', () => reject(new Error('writer closed before admission')));
	});
}

async function run(from: number, count: number, rate: number): Promise<WriterReport> {
	const socket = ws;
	if (!socket) throw new Error('writer not connected');
	stopped = false;
	const start = nowMs();
	let sent = 0;
	let maxLagMs = 0;
	let maxBuffered = 0;
	while (sent < count && !stopped) {
		const now = nowMs();
		const due = Math.min(count, Math.floor(((now - start) * rate) / 1000) + 1);
		if (due > sent) {
			// How late the oldest message due now is.
			const lag = now - (start + (sent * 1000) / rate);
			if (lag > maxLagMs) maxLagMs = lag;
		}
		for (; sent < due; sent++) {
			const seq = from + sent;
			sendTimes[seq] = nowMs();
			socket.send(frame(seq), { binary: true });
		}
		if (socket.bufferedAmount > maxBuffered) maxBuffered = socket.bufferedAmount;
		if (socket.readyState !== WebSocket.OPEN) throw new Error('writer socket closed');
		if (sent < count) await new Promise((resolve) => setTimeout(resolve, 1));
	}
	return { sent, maxLagMs, maxBuffered };
}

port.on('message', (command: WriterCommand) => {
	switch (command.type) {
		case 'connect':
			connect(command.url, command.waitForFrame).then(
				() => port.postMessage({ type: 'connected' }),
				(error: unknown) => port.postMessage({ type: 'error', message: String(error) })
			);
			return;
		case 'run':
			run(command.from, command.count, command.rate).then(
				(report) => port.postMessage({ type: 'done', report }),
				(error: unknown) => port.postMessage({ type: 'error', message: String(error) })
			);
			return;
		case 'stop':
			stopped = true;
			return;
		case 'close':
			ws?.terminate();
			ws = null;
			port.postMessage({ type: 'ok' });
			return;
	}
});
