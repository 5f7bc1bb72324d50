/**
 * The local socket of `kith serve` (`kith.sock` in the data dir, owner
 * only): while serve runs, other commands on the same dir send it their
 * invocation and it runs the command on its open account and network.
 *
 * Protocol, one JSON object per line: the client sends
 * `{"invocation": Invocation}`; the server answers with any number of
 * `{"out": string}` (a stdout line) and `{"err": string}` (a stderr line),
 * then `{"exit": code}` and closes.
 */
import { chmodSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { SOCKET_FILE } from '../lib/node/account';
import type { Invocation } from './args';

/** Largest request accepted (an invite link is at most 8 KiB; a message 64 KiB). */
const MAX_REQUEST_BYTES = 512 * 1024;

export type RemoteRunner = (
	invocation: Invocation,
	write: (message: { out: string } | { err: string }) => void
) => Promise<number>;

export function socketPath(dir: string): string {
	return join(dir, SOCKET_FILE);
}

export async function serveControl(dir: string, run: RemoteRunner): Promise<Server> {
	const path = socketPath(dir);
	rmSync(path, { force: true }); // left by a serve that died; we hold the lock
	const server = createServer((socket) => handle(socket, run));
	await new Promise<void>((resolve, reject) => {
		server.once('error', reject);
		server.listen(path, () => resolve());
	});
	chmodSync(path, 0o600);
	return server;
}

function handle(socket: Socket, run: RemoteRunner): void {
	let buffer = '';
	let started = false;
	const send = (message: object) => {
		if (!socket.destroyed) socket.write(`${JSON.stringify(message)}\n`);
	};
	socket.setEncoding('utf8');
	socket.on('error', () => undefined);
	socket.on('data', (chunk: string) => {
		if (started) return;
		buffer += chunk;
		if (buffer.length > MAX_REQUEST_BYTES) {
			send({ err: 'kith: request too large' });
			send({ exit: 1 });
			socket.end();
			started = true;
			return;
		}
		const newline = buffer.indexOf('\n');
		if (newline < 0) return;
		started = true;
		let invocation: Invocation;
		try {
			invocation = (JSON.parse(buffer.slice(0, newline)) as { invocation: Invocation }).invocation;
			if (!invocation || typeof invocation.command !== 'string') throw new Error('no invocation');
		} catch {
			send({ err: 'kith: malformed request' });
			send({ exit: 1 });
			socket.end();
			return;
		}
		void run(invocation, send).then(
			(code) => {
				send({ exit: code });
				socket.end();
			},
			(error: unknown) => {
				send({ err: `kith: ${error instanceof Error ? error.message : String(error)}` });
				send({ exit: 1 });
				socket.end();
			}
		);
	});
}

/**
 * Run an invocation in the serve that holds `dir`, if one is listening.
 * Returns null when nobody listens (the caller opens the dir itself).
 */
export function runRemote(
	dir: string,
	invocation: Invocation,
	stdout: (line: string) => void,
	stderr: (line: string) => void
): Promise<number | null> {
	return new Promise((resolve) => {
		const socket = createConnection(socketPath(dir));
		let connected = false;
		let exit: number | null = null;
		let buffer = '';
		socket.setEncoding('utf8');
		socket.on('connect', () => {
			connected = true;
			socket.write(`${JSON.stringify({ invocation })}\n`);
		});
		socket.on('data', (chunk: string) => {
			buffer += chunk;
			for (let newline = buffer.indexOf('\n'); newline >= 0; newline = buffer.indexOf('\n')) {
				const line = buffer.slice(0, newline);
				buffer = buffer.slice(newline + 1);
				let message: { out?: string; err?: string; exit?: number };
				try {
					message = JSON.parse(line) as typeof message;
				} catch {
					continue;
				}
				if (typeof message.out === 'string') stdout(message.out);
				if (typeof message.err === 'string') stderr(message.err);
				if (typeof message.exit === 'number') exit = message.exit;
			}
		});
		socket.on('error', () => {
			if (!connected) resolve(null);
		});
		socket.on('close', () => {
			if (!connected) return;
			if (exit === null) stderr('kith: kith serve closed the connection before answering');
			resolve(exit ?? 1);
		});
	});
}
