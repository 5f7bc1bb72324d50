/**
 * The app reaches components through Svelte context, set once by the root
 * layout, so a test can hand in a different one.
 */
import { getContext, setContext } from 'svelte';
import type { KithApp } from './kith.svelte';

const KEY = Symbol('kith-app');

export function provideApp(app: KithApp): void {
	setContext(KEY, app);
}

export function useApp(): KithApp {
	const app = getContext<KithApp | undefined>(KEY);
	if (!app) throw new Error('useApp() outside the app root');
	return app;
}
