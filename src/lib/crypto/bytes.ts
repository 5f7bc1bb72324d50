/**
 * Byte helpers shared by every layer. Encodings come from @scure/base (audited,
 * constant shapes) rather than hand-rolled loops.
 */
import { base64urlnopad } from '@scure/base';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function utf8Encode(text: string): Uint8Array {
	return encoder.encode(text);
}

/** Strict UTF-8 decoding: invalid sequences throw instead of becoming U+FFFD. */
export function utf8Decode(bytes: Uint8Array): string {
	return decoder.decode(bytes);
}

/**
 * 32 bytes (a SHA-256, an Ed25519 public key) as canonical unpadded
 * base64url: 43 characters, the last one carrying 2 zero bits.
 */
export const BASE64URL_32 = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

export function toBase64Url(bytes: Uint8Array): string {
	return base64urlnopad.encode(bytes);
}

export function fromBase64Url(text: string): Uint8Array {
	return base64urlnopad.decode(text);
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
	let length = 0;
	for (const part of parts) length += part.length;
	const out = new Uint8Array(length);
	let offset = 0;
	for (const part of parts) {
		out.set(part, offset);
		offset += part.length;
	}
	return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
	if (a.length !== b.length) return false;
	let diff = 0;
	for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
	return diff === 0;
}

export function randomBytes(length: number): Uint8Array {
	const out = new Uint8Array(length);
	crypto.getRandomValues(out);
	return out;
}

/** WebCrypto wants an ArrayBuffer-backed view; copies only when it must. */
export function asBufferSource(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
	return bytes.buffer instanceof ArrayBuffer
		? (bytes as Uint8Array<ArrayBuffer>)
		: (new Uint8Array(bytes) as Uint8Array<ArrayBuffer>);
}
