/**
 * A TCP proxy a test can cut: `stop()` closes the listener and destroys
 * every open connection (what a dropped network does to a WebSocket, which
 * `context.setOffline` does not), `start()` listens again on the same port.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export class TcpProxy {
	readonly #target: { host: string; port: number };
	readonly #sockets = new Set<Socket>();
	#server: Server | null = null;
	port = 0;

	constructor(target: { host: string; port: number }) {
		this.#target = target;
	}

	get origin(): string {
		return `http://127.0.0.1:${this.port}`;
	}

	async start(): Promise<void> {
		const server = createServer((client) => {
			const upstream = connect(this.#target.port, this.#target.host);
			this.#sockets.add(client);
			this.#sockets.add(upstream);
			const drop = () => {
				client.destroy();
				upstream.destroy();
				this.#sockets.delete(client);
				this.#sockets.delete(upstream);
			};
			client.on('error', drop).on('close', drop);
			upstream.on('error', drop).on('close', drop);
			client.pipe(upstream);
			upstream.pipe(client);
		});
		await new Promise<void>((resolve, reject) => {
			server.once('error', reject);
			server.listen(this.port, '127.0.0.1', () => resolve());
		});
		const address = server.address();
		if (address && typeof address === 'object') this.port = address.port;
		this.#server = server;
	}

	/** Cut: no new connections, and every open one dies at once. */
	async stop(): Promise<void> {
		const server = this.#server;
		this.#server = null;
		for (const socket of this.#sockets) socket.destroy();
		this.#sockets.clear();
		if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
	}
}
