/**
 * The recovery key: the master key's backup form, shown once at account
 * creation. Format follows Matrix's recovery key: base58 of
 * 0x8B 0x01 || 32-byte seed || parity (XOR of all previous bytes), written in
 * groups of four characters. The parity byte catches most typing mistakes.
 */
import { base58 } from '@scure/base';

const PREFIX = [0x8b, 0x01];

export class RecoveryKeyError extends Error {
	static readonly NAME = 'RecoveryKeyError';
	override name = RecoveryKeyError.NAME;
}

export function encodeRecoveryKey(seed: Uint8Array): string {
	if (seed.length !== 32) throw new RangeError('the master seed is 32 bytes');
	const bytes = new Uint8Array(PREFIX.length + seed.length + 1);
	bytes.set(PREFIX, 0);
	bytes.set(seed, PREFIX.length);
	let parity = 0;
	for (let i = 0; i < bytes.length - 1; i++) parity ^= bytes[i] as number;
	bytes[bytes.length - 1] = parity;
	return (
		base58
			.encode(bytes)
			.match(/.{1,4}/g)
			?.join(' ') ?? ''
	);
}

export function decodeRecoveryKey(text: string): Uint8Array {
	let bytes: Uint8Array;
	try {
		bytes = base58.decode(text.replace(/\s+/g, ''));
	} catch {
		throw new RecoveryKeyError('That is not a recovery key: check for typing mistakes.');
	}
	if (bytes.length !== PREFIX.length + 32 + 1 || bytes[0] !== PREFIX[0] || bytes[1] !== PREFIX[1]) {
		throw new RecoveryKeyError('That is not a recovery key: check for typing mistakes.');
	}
	let parity = 0;
	for (const byte of bytes) parity ^= byte;
	if (parity !== 0) throw new RecoveryKeyError('The recovery key has a typing mistake.');
	return bytes.slice(PREFIX.length, PREFIX.length + 32);
}
