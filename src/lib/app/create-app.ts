/**
 * The composition root: the one place that picks implementations (IndexedDB
 * storage, WebCrypto) and wires them into a KithApp.
 */
import { LocalStore } from '../storage';
import { KithApp } from './kith.svelte';

export function createApp(): KithApp {
	// The relay serves the app: same origin.
	const relayUrl = typeof location === 'undefined' ? null : location.origin;
	return new KithApp({ store: new LocalStore(), relayUrl });
}
