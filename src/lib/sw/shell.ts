/**
 * The app shell, offline: every file of the build and of `static/` is
 * precached at install (Workbox), and every navigation gets index.html from
 * that cache, so Kith opens with no network, deep links included.
 *
 * - Hashed files under `/_app/immutable/` are their own revision (their name
 *   changes with their content); index.html and `static/` files are revisioned
 *   by the build's version, so a new build re-fetches them and only them.
 * - Cache first, always: the shell and the files it loads come from one build
 *   even online. A new build arrives as a new service worker, which waits
 *   until the page asks it to take over (see updates.ts and the page's
 *   "Update available").
 * - Caches of older builds are deleted when a new worker activates.
 * - Server-only paths (routes.ts) are never routed here: the browser fetches
 *   them as if there were no service worker.
 */
import {
	cleanupOutdatedCaches,
	createHandlerBoundToURL,
	precacheAndRoute
} from 'workbox-precaching';
import { NavigationRoute, registerRoute } from 'workbox-routing';
import { SHELL, shellEntries, type BuildManifest } from './precache';
import { SERVER_ONLY_PATHS } from './routes';
import type { WorkerModule } from './types';

/** The shell module: precache at install, serve from cache, shell for navigations. */
export function shell(manifest: BuildManifest): WorkerModule {
	return () => {
		precacheAndRoute(shellEntries(manifest));
		cleanupOutdatedCaches();
		registerRoute(
			new NavigationRoute(createHandlerBoundToURL(manifest.base + SHELL), {
				denylist: SERVER_ONLY_PATHS.map((re) => prefixed(re, manifest.base))
			})
		);
	};
}

/** `re` (anchored at `/`) under the base path. */
function prefixed(re: RegExp, base: string): RegExp {
	if (!base) return re;
	const escaped = base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
	return new RegExp(`^${escaped}${re.source.slice(1)}`, re.flags);
}
