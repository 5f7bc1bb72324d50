/**
 * The service worker's modules (what runs inside the worker), assembled by
 * src/service-worker.ts, and the page ↔ worker message schema.
 */
export { isServerOnly, SERVER_ONLY_PATHS } from './routes';
export { parsePageMessage, PageToWorkerMessage, SkipWaitingMessage } from './messages';
export { shellEntries, SHELL, type BuildManifest } from './precache';
export { shell } from './shell';
export { updates } from './updates';
export type { ServiceWorkerScope, WorkerModule } from './types';
