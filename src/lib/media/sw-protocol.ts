/**
 * Messages between the page and the service worker about media. The worker
 * keeps manifests in memory only (they hold file keys, which never go to
 * disk in plaintext): the page registers each manifest it shows, and a
 * worker that lacks one (it was restarted) asks its clients over a
 * MessageChannel. Both sides parse what they receive.
 *
 *   page → worker   {type: "kith-media:manifest", manifest}
 *   worker → page   {type: "kith-media:need", id}   + a MessagePort; answered with
 *                   {manifest} or {manifest: null} on that port
 *   worker → page   {type: "kith-media:need-chunk", file, index}   + a MessagePort,
 *                   when the relay cannot give a chunk: the page asks the
 *                   conversation's direct peers (which the worker cannot
 *                   reach) and answers {blob} or {blob: null}; the worker
 *                   checks the blob against the chunk's id as from the relay
 */
import { z } from 'zod';
import { FileId, FileManifest } from './manifest';

export const MEDIA_PATH = '/media/';

export const RegisterManifest = z.object({
	type: z.literal('kith-media:manifest'),
	manifest: FileManifest
});
export type RegisterManifest = z.infer<typeof RegisterManifest>;

export const NeedManifest = z.object({ type: z.literal('kith-media:need'), id: FileId });
export type NeedManifest = z.infer<typeof NeedManifest>;

export const ManifestAnswer = z.object({ manifest: FileManifest.nullable() });
export type ManifestAnswer = z.infer<typeof ManifestAnswer>;

export const NeedChunk = z.object({
	type: z.literal('kith-media:need-chunk'),
	file: FileId,
	index: z.number().int().nonnegative()
});
export type NeedChunk = z.infer<typeof NeedChunk>;

export const ChunkAnswer = z.object({
	blob: z.custom<Uint8Array>((value) => value instanceof Uint8Array, 'not bytes').nullable()
});
export type ChunkAnswer = z.infer<typeof ChunkAnswer>;

/** The URL the worker serves a file at; `download` asks for Content-Disposition: attachment. */
export function mediaUrl(manifest: { id: string }, download = false): string {
	return `${MEDIA_PATH}${manifest.id}${download ? '?download=1' : ''}`;
}
