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

/** The URL the worker serves a file at; `download` asks for Content-Disposition: attachment. */
export function mediaUrl(manifest: { id: string }, download = false): string {
	return `${MEDIA_PATH}${manifest.id}${download ? '?download=1' : ''}`;
}
