/**
 * The installable, offline app as the page sees it: service worker
 * registration and the "Update available" state. What runs inside the
 * worker is in `$lib/sw`.
 */
export { AppUpdates, type AppUpdatesOptions } from './updates.svelte';
