/**
 * Messages between a page and the service worker (`postMessage`), parsed on
 * arrival like any other input: a page of another origin cannot post here,
 * but an old page of this app can, and a malformed message must be dropped,
 * not obeyed.
 *
 * SKIP_WAITING: the user chose "Reload" under "Update available"; the waiting
 * worker activates now instead of when every Kith tab has closed. The shape
 * is the one `workbox-window`'s `messageSkipWaiting()` sends.
 */
// zod/mini: the same schemas, a fraction of the bytes in the worker's bundle.
import * as z from 'zod/mini';

export const SkipWaitingMessage = z.object({ type: z.literal('SKIP_WAITING') });
export type SkipWaitingMessage = z.infer<typeof SkipWaitingMessage>;

/** Every message a page may send to the service worker. */
export const PageToWorkerMessage = z.discriminatedUnion('type', [SkipWaitingMessage]);
export type PageToWorkerMessage = z.infer<typeof PageToWorkerMessage>;

/** The message, or null when `data` is not one (it is then ignored). */
export function parsePageMessage(data: unknown): PageToWorkerMessage | null {
	const parsed = z.safeParse(PageToWorkerMessage, data);
	return parsed.success ? parsed.data : null;
}
