/**
 * The stock Yjs relay, `@y/websocket-server` (the `y-websocket` server),
 * exactly as its own bin/server.js wires it: an HTTP server whose upgrades go
 * to `setupWSConnection`, one in-memory `Y.Doc` per room (the URL path), no
 * persistence (YPERSISTENCE unset), every update applied to the room's doc and
 * broadcast to all of the room's connections. Run as its own process by
 * bench/relay/servers.ts; prints `listening on <url>` once ready.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setupWSConnection } from '@y/websocket-server/utils';
import { WebSocketServer } from 'ws';

const wss = new WebSocketServer({ noServer: true });
const server = createServer((_req, res) => {
	res.writeHead(200, { 'Content-Type': 'text/plain' });
	res.end('okay');
});
wss.on('connection', setupWSConnection);
server.on('upgrade', (request, socket, head) => {
	wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
});

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
	const { port } = server.address() as AddressInfo;
	process.stdout.write(`listening on http://127.0.0.1:${port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
