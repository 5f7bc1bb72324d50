/**
 * A read-mostly WebSocket client (RFC 6455) over a bare TCP socket, for the
 * fan-out receivers: it does the opening handshake, then parses the relay's
 * frames straight out of each read. Reads go into one buffer shared by every
 * socket of the thread (`net`'s `onread` option: no stream machinery, no
 * allocation per read), so a delivery costs little more than its syscall. It answers pings (both relays drop a client that does not) and hands
 * binary messages to `onMessage`. A frame is assumed unfragmented (neither
 * `ws` server fragments a send); anything unexpected closes the socket.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

const OP_BINARY = 2;
const OP_CLOSE = 8;
const OP_PING = 9;

const READ_BUFFER = Buffer.alloc(256 * 1024);

export interface RawClient {
	socket: Socket;
	close(): void;
}

export function rawConnect(
	url: string,
	onMessage: (payload: Buffer) => void,
	onClose: () => void
): Promise<RawClient> {
	const u = new URL(url);
	return new Promise((resolve, reject) => {
		const socket = connect({
			host: u.hostname,
			port: Number(u.port),
			onread: {
				buffer: READ_BUFFER,
				callback: (size: number, buffer: Uint8Array) => {
					onData(Buffer.from(buffer.buffer, buffer.byteOffset, size));
					return true;
				}
			}
		});
		socket.setNoDelay(true);
		let open = false;
		let pending: Buffer | null = null;
		const client: RawClient = {
			socket,
			close: () => socket.destroy()
		};
		socket.once('connect', () => {
			socket.write(
				`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\n` +
					`Connection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
					'Sec-WebSocket-Version: 13\r\n\r\n'
			);
		});
		const onData = (chunk: Buffer): void => {
			// `chunk` is the shared read buffer: whatever is kept must be copied.
			const buf = pending ? Buffer.concat([pending, chunk]) : chunk;
			pending = null;
			let off = 0;
			if (!open) {
				const end = buf.indexOf('\r\n\r\n');
				if (end < 0) {
					pending = Buffer.from(buf);
					return;
				}
				if (!buf.subarray(0, 12).toString('latin1').startsWith('HTTP/1.1 101')) {
					socket.destroy();
					reject(new Error(`handshake refused: ${buf.subarray(0, end).toString('latin1')}`));
					return;
				}
				open = true;
				resolve(client);
				off = end + 4;
			}
			const len = buf.length;
			while (len - off >= 2) {
				const opcode = buf[off]! & 0x0f;
				let size = buf[off + 1]! & 0x7f;
				let head = 2;
				if (size === 126) {
					if (len - off < 4) break;
					size = buf.readUInt16BE(off + 2);
					head = 4;
				} else if (size === 127) {
					if (len - off < 10) break;
					size = buf.readUInt32BE(off + 6);
					head = 10;
				}
				if (len - off < head + size) break;
				const payload = buf.subarray(off + head, off + head + size);
				off += head + size;
				if (opcode === OP_BINARY) onMessage(payload);
				else if (opcode === OP_PING) socket.write(maskedFrame(0x8a, payload));
				else if (opcode === OP_CLOSE) {
					socket.end();
					return;
				}
			}
			if (off < len) pending = Buffer.from(buf.subarray(off));
		};
		socket.once('error', (error) => {
			if (!open) reject(error);
		});
		socket.once('close', () => {
			if (!open) reject(new Error('closed during the handshake'));
			onClose();
		});
	});
}

/** A client frame (clients must mask), payload under 126 bytes. */
function maskedFrame(first: number, payload: Buffer): Buffer {
	const mask = randomBytes(4);
	const out = Buffer.alloc(6 + payload.length);
	out[0] = first;
	out[1] = 0x80 | payload.length;
	mask.copy(out, 2);
	for (let i = 0; i < payload.length; i++) out[6 + i] = payload[i]! ^ mask[i & 3]!;
	return out;
}
