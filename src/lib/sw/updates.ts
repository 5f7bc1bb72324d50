/**
 * How a new version takes over. A new worker installs (precaching the new
 * build) and then waits: the open tabs keep running the build they loaded,
 * with the files it needs. The page shows "Update available"; its "Reload"
 * posts SKIP_WAITING, this worker activates, every tab's controller changes
 * and each tab saves its drafts and reloads (src/lib/pwa).
 *
 * Once active, the worker claims tabs that no worker controls (the first
 * visit), so their later requests, such as lazily loaded code, come from the
 * cache too. Claiming an uncontrolled tab does not make it reload.
 */
import { parsePageMessage } from './messages';
import type { WorkerModule } from './types';

export function updates(): WorkerModule {
	return (scope) => {
		scope.addEventListener('message', (event) => {
			const message = parsePageMessage(event.data);
			if (message?.type === 'SKIP_WAITING') event.waitUntil(scope.skipWaiting());
		});
		scope.addEventListener('activate', (event) => {
			event.waitUntil(scope.clients.claim());
		});
	};
}
