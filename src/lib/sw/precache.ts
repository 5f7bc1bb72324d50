/**
 * What the shell precaches, from SvelteKit's list of the build: pure data,
 * so it is tested without a service worker.
 */
import type { PrecacheEntry } from 'workbox-precaching';

/** What SvelteKit's `$service-worker` tells about the build. */
export interface BuildManifest {
	/** Deployment base path ('' at the root). */
	base: string;
	/** Files the build wrote (JS, CSS, fonts), with their base. */
	build: readonly string[];
	/** Files from `static/`, with their base. */
	files: readonly string[];
	/** The build's version (SvelteKit's `version.name`). */
	version: string;
}

export const SHELL = '/index.html';

/** Precache entries for a build: immutable files unrevisioned, the rest by version. */
export function shellEntries(manifest: BuildManifest): PrecacheEntry[] {
	const immutable = `${manifest.base}/_app/immutable/`;
	const entries: PrecacheEntry[] = [{ url: manifest.base + SHELL, revision: manifest.version }];
	for (const url of manifest.build) {
		entries.push({ url, revision: url.startsWith(immutable) ? null : manifest.version });
	}
	for (const url of manifest.files) entries.push({ url, revision: manifest.version });
	return entries;
}
