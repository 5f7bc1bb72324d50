/**
 * Length hiding. Plaintexts are padded to a bucket before encryption so that
 * the relay sees a handful of sizes, not message lengths. Layout:
 * u32 big-endian length || plaintext || zero bytes up to the bucket.
 * Buckets: powers of two from 256 B to 64 KiB, then multiples of 64 KiB.
 */
export const MIN_BUCKET = 256;
const STEP = 64 * 1024;

export function bucketSize(length: number): number {
	const needed = length + 4;
	if (needed > STEP) return Math.ceil(needed / STEP) * STEP;
	let size = MIN_BUCKET;
	while (size < needed) size *= 2;
	return size;
}

export function pad(plaintext: Uint8Array): Uint8Array {
	const out = new Uint8Array(bucketSize(plaintext.length));
	new DataView(out.buffer).setUint32(0, plaintext.length);
	out.set(plaintext, 4);
	return out;
}

export class PaddingError extends Error {
	static readonly NAME = 'PaddingError';
	override name = PaddingError.NAME;
}

export function unpad(padded: Uint8Array): Uint8Array {
	if (padded.length < 4) throw new PaddingError('padded data is too short');
	const length = new DataView(padded.buffer, padded.byteOffset, padded.byteLength).getUint32(0);
	if (length > padded.length - 4) throw new PaddingError('padding length is out of range');
	for (let i = 4 + length; i < padded.length; i++) {
		if (padded[i] !== 0) throw new PaddingError('padding bytes are not zero');
	}
	return padded.subarray(4, 4 + length);
}
