/**
 * The fan-out baseline: a plain `ws` broadcaster of opaque binary frames.
 * Every binary frame a client sends is sent as it came to every other client
 * of the same room (the URL path). No auth, no parsing, no storage, no
 * acknowledgements: the least work a relay can do. Run as its own process by
 * bench/relay/servers.ts; prints `listening on <url>` once ready.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer, type RawData } from 'ws';

const rooms = new Map<string, Set<WebSocket>>();
const server = createServer((_req, res) => res.writeHead(404).end());
const wss = new WebSocketServer({ server, perMessageDeflate: false, clientTracking: false });

wss.on('connection', (ws, req) => {
	const name = (req.url ?? '/').split('?')[0] ?? '/';
	let room = rooms.get(name);
	if (!room) rooms.set(name, (room = new Set()));
	const members = room;
	members.add(ws);
	ws.on('message', (data: RawData, isBinary: boolean) => {
		if (!isBinary) return;
		for (const other of members) {
			if (other !== ws && other.readyState === WebSocket.OPEN) other.send(data, { binary: true });
		}
	});
	ws.on('close', () => {
		members.delete(ws);
		if (members.size === 0) rooms.delete(name);
	});
	ws.on('error', () => {});
});

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
	const { port } = server.address() as AddressInfo;
	process.stdout.write(`listening on http://127.0.0.1:${port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
