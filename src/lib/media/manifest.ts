/**
 * The manifest of an encrypted file: everything a member needs to fetch,
 * check and decrypt it. It travels inside a `send` operation (the envelope
 * encrypts it), never on its own: it holds the file key.
 *
 *   {
 *     "v": 1,
 *     "id": <22 chars: 16 random bytes, base64url>,   names the file in /media/<id>
 *     "name": <1..255 chars>, "type": <MIME type, at most 127 chars>,
 *     "size": <bytes, integer ≥ 0>, "chunkSize": <bytes, 1 KiB..1 MiB>,
 *     "chunks": [<chunk id>, ...],                    ceil(size / chunkSize) ids, in file order
 *     "key": <base64url of the 32-byte file key>,
 *     "width"?: <px>, "height"?: <px>,                 images and videos, when known
 *     "preview"?: <data:image/jpeg;base64,... at most 16 KiB>
 *   }
 *
 * A chunk id is base64url(SHA-256(chunk blob)) — the address of the chunk's
 * ciphertext at the relay (chunks.ts has the blob format). The schema is the
 * trust boundary: a manifest from another member is parsed before use.
 */
import { z } from 'zod';
import { CHUNK_ID_PATTERN } from './chunks';

export const MANIFEST_VERSION = 1;
/** Chunk size the app writes: 256 KiB (small enough to retry, large enough to amortise a request). */
export const CHUNK_SIZE = 256 * 1024;
export const MIN_CHUNK_SIZE = 1024;
export const MAX_CHUNK_SIZE = 1024 * 1024;
/** Largest file a manifest can describe (the relay's default per-file limit is 2 GiB). */
export const MAX_FILE_SIZE = 16 * 1024 ** 3;
/** A preview is a small JPEG as a data URL; anything larger is refused. */
export const MAX_PREVIEW_CHARS = 16 * 1024;
export const MAX_NAME_CHARS = 255;

const B64 = /^[A-Za-z0-9_-]+$/;
/** 32 bytes, base64url without padding. */
const ID32 = CHUNK_ID_PATTERN;
/** 16 bytes, base64url without padding (canonical). */
const ID16 = /^[A-Za-z0-9_-]{21}[AQgw]$/;

export const ChunkId = z.string().regex(ID32, 'not a chunk id').brand<'ChunkId'>();
export type ChunkId = z.infer<typeof ChunkId>;

export const FileId = z.string().regex(ID16, 'not a file id').brand<'FileId'>();
export type FileId = z.infer<typeof FileId>;

export function isFileId(value: unknown): value is FileId {
	return typeof value === 'string' && ID16.test(value);
}

export const FileManifest = z
	.object({
		v: z.literal(MANIFEST_VERSION),
		id: FileId,
		name: z
			.string()
			.min(1)
			.max(MAX_NAME_CHARS)
			.refine((s) => s.isWellFormed(), 'name is not well-formed Unicode'),
		type: z
			.string()
			.max(127)
			.regex(/^(?:[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+)?$/, 'not a MIME type'),
		size: z.int().min(0).max(MAX_FILE_SIZE),
		chunkSize: z.int().min(MIN_CHUNK_SIZE).max(MAX_CHUNK_SIZE),
		chunks: z.array(ChunkId),
		key: z.string().regex(ID32, 'not a 32-byte key').regex(B64),
		width: z.int().min(1).max(100_000).optional(),
		height: z.int().min(1).max(100_000).optional(),
		preview: z
			.string()
			.max(MAX_PREVIEW_CHARS)
			.regex(/^data:image\/jpeg;base64,[A-Za-z0-9+/]+=*$/, 'not a JPEG data URL')
			.optional()
	})
	.refine((m) => m.chunks.length === chunkCount(m.size, m.chunkSize), {
		message: 'the chunk list does not match the size',
		path: ['chunks']
	});
export type FileManifest = z.infer<typeof FileManifest>;

/** Number of chunks of a file of `size` bytes (an empty file has none). */
export function chunkCount(size: number, chunkSize: number): number {
	return Math.ceil(size / chunkSize);
}

/** Plaintext bytes of chunk `index`. */
export function chunkLength(m: Pick<FileManifest, 'size' | 'chunkSize'>, index: number): number {
	return Math.max(0, Math.min(m.chunkSize, m.size - index * m.chunkSize));
}

export class ManifestError extends Error {
	static readonly NAME = 'ManifestError';
	override name = ManifestError.NAME;
}

/** Parse a manifest at a trust boundary; throws ManifestError naming the problems (never the input). */
export function parseManifest(value: unknown): FileManifest {
	const result = FileManifest.safeParse(value);
	if (!result.success) {
		const issues = result.error.issues.map((i) => `${i.path.map(String).join('.')}: ${i.message}`);
		throw new ManifestError(`the file's manifest is malformed (${issues.join('; ')})`);
	}
	return result.data;
}

/** What the UI shows of a file: image, video, audio or another file. */
export function mediaKind(m: Pick<FileManifest, 'type'>): 'image' | 'video' | 'audio' | 'file' {
	if (/^image\/(?:jpeg|png|gif|webp|avif|bmp)$/.test(m.type)) return 'image';
	if (m.type.startsWith('video/')) return 'video';
	if (m.type.startsWith('audio/')) return 'audio';
	return 'file';
}

/** "2.4 MB", "512 KB", "17 bytes". Decimal units, as file managers show them. */
export function formatBytes(bytes: number): string {
	if (bytes < 1000) return `${bytes} bytes`;
	const units = ['KB', 'MB', 'GB', 'TB'];
	let value = bytes / 1000;
	let unit = 0;
	while (value >= 1000 && unit < units.length - 1) {
		value /= 1000;
		unit++;
	}
	return `${value >= 100 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}
