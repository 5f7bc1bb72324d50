/**
 * A probe of benchmark 5's hop alone, without browsers: two `ws` clients in
 * this process join one room of a relay process, A sends pre-made frames one
 * every `interval` ms, B notes each arrival (process.hrtime, one clock). Kith:
 * real sealed envelopes (./stream.ts) through sync-server/src/main.ts, the
 * sender asking for acknowledgements; stock: plain Y.Map entries through
 * `@y/websocket-server`. Alternates the two, prints p50/p90 of the hop.
 *
 *   npx tsx bench/relay/hop-probe.ts [messages=300] [interval=20] [reps=3]
 */
import { WebSocket } from 'ws';
import * as Y from 'yjs';
import { toBase64Url } from '../../src/lib/crypto';
import { challengeMessage, deriveRoomCapability, writeSyncUpdate } from '../../src/lib/sync';
import { messageText } from '../browser/texts';
import { percentile } from '../lib/stats';
import { nowMs } from './clock';
import { startRelayProcess, type RelayProcess } from './servers';
import { makeStream, type MessageStream } from './stream';

const [messages = 300, interval = 20, reps = 3] = process.argv.slice(2).map(Number);

function open(url: string): Promise<WebSocket> {
	return new Promise((resolve, reject) => {
		const ws = new WebSocket(url, { perMessageDeflate: false });
		ws.binaryType = 'nodebuffer';
		ws.once('open', () => resolve(ws));
		ws.once('error', reject);
	});
}

async function kithUrl(base: string, stream: MessageStream, ack: boolean): Promise<string> {
	const res = await fetch(`${base}/sync/challenge?room=${stream.roomId}`);
	const { nonce } = (await res.json()) as { nonce: string };
	const cap = await deriveRoomCapability(stream.epochKey, stream.roomId);
	const sig = await cap.sign(challengeMessage(stream.roomId, nonce));
	const params = new URLSearchParams({
		cap: toBase64Url(cap.publicKey),
		nonce,
		sig: toBase64Url(sig)
	});
	if (ack) params.set('ack', '1');
	return `${base.replace(/^http/, 'ws')}/sync/${stream.roomId}?${params}`;
}

function stockFrames(count: number): Uint8Array[] {
	const doc = new Y.Doc();
	const map = doc.getMap('messages');
	const frames: Uint8Array[] = [];
	doc.on('update', (u: Uint8Array) => frames.push(writeSyncUpdate(u)));
	for (let i = 0; i < count; i++) {
		map.set(`${doc.clientID}-${i}`, { text: messageText(i), author: doc.clientID, time: 0 });
	}
	return frames;
}

async function once(kind: 'kith' | 'stock', relay: RelayProcess): Promise<number[]> {
	let frames: Uint8Array[];
	let urlA: string;
	let urlB: string;
	if (kind === 'kith') {
		const stream = await makeStream(messages);
		frames = Array.from({ length: messages }, (_, i) =>
			stream.bytes.subarray(stream.offsets[i], stream.offsets[i + 1])
		);
		urlB = await kithUrl(relay.url, stream, true);
		urlA = await kithUrl(relay.url, stream, true);
	} else {
		frames = stockFrames(messages);
		const room = `probe-${Date.now()}`;
		urlA = urlB = `${relay.url.replace(/^http/, 'ws')}/${room}`;
	}
	const b = await open(urlB);
	const a = await open(urlA);
	await new Promise((r) => setTimeout(r, 300));
	const sent = new Float64Array(messages);
	const got = new Float64Array(messages).fill(Number.NaN);
	let expect = 0;
	b.on('message', () => {
		const t = nowMs();
		// Only update frames count; one at a time, so the next unanswered index.
		if (expect < messages && sent[expect]! > 0 && Number.isNaN(got[expect]!)) got[expect] = t;
	});
	for (let i = 0; i < messages; i++) {
		await new Promise((r) => setTimeout(r, interval));
		expect = i;
		sent[i] = nowMs();
		a.send(frames[i]!);
	}
	await new Promise((r) => setTimeout(r, 200));
	a.close();
	b.close();
	const hops: number[] = [];
	for (let i = 20; i < messages; i++) if (!Number.isNaN(got[i]!)) hops.push(got[i]! - sent[i]!);
	return hops;
}

const relays = { kith: await startRelayProcess('kith'), stock: await startRelayProcess('stock') };
try {
	const all: Record<string, number[][]> = { kith: [], stock: [] };
	for (let rep = 0; rep < reps; rep++) {
		for (const kind of rep % 2 ? (['stock', 'kith'] as const) : (['kith', 'stock'] as const)) {
			const hops = await once(kind, relays[kind]);
			all[kind]!.push(hops);
			console.log(
				`${kind} rep ${rep}: n ${hops.length} p50 ${percentile(hops, 50).toFixed(3)} p90 ${percentile(hops, 90).toFixed(3)} ms`
			);
		}
	}
	for (const kind of ['kith', 'stock']) {
		const flat = all[kind]!.flat();
		console.log(
			`${kind}: p10 ${percentile(flat, 10).toFixed(3)} p50 ${percentile(flat, 50).toFixed(3)} p90 ${percentile(flat, 90).toFixed(3)} ms`
		);
	}
} finally {
	await relays.kith.stop();
	await relays.stock.stop();
}
