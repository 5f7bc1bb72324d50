/**
 * Kith's service worker, built by SvelteKit (`$service-worker` lists the
 * build) and registered by the page through workbox-window (src/lib/pwa),
 * in production builds only.
 *
 * It is a list of modules (src/lib/sw): each adds its listeners and routes.
 * To add a route (e.g. `/media/<id>`), import its module and add one line to
 * `modules`, before `shell`, so it matches first.
 */
import { base, build, files, version } from '$service-worker';
import { shell, updates, type ServiceWorkerScope, type WorkerModule } from '$lib/sw';
import { media } from '$lib/sw/media';
import { push } from '$lib/sw/push';

const scope = self as unknown as ServiceWorkerScope;

const modules: readonly WorkerModule[] = [
	updates(),
	push(),
	media({ releaseSpent: true }),
	shell({ base, build, files, version })
];

for (const install of modules) install(scope);
