import adapter from '@sveltejs/adapter-static';
import { vitePreprocess } from '@sveltejs/vite-plugin-svelte';

// Where `npm run build` writes the app (the server's KITH_STATIC) and SvelteKit's
// working files: overridable so two builds on one machine do not overwrite each other.
const buildDir = process.env.KITH_BUILD_DIR || 'build';
const outDir = process.env.KITH_SVELTEKIT_DIR || '.svelte-kit';

/** @type {import('@sveltejs/kit').Config} */
const config = {
	preprocess: vitePreprocess(),
	kit: {
		// A single-page app: every route is rendered in the browser, the server
		// (sync-server) only hands out the shell and falls back to it.
		adapter: adapter({ pages: buildDir, assets: buildDir, fallback: 'index.html', strict: true }),
		outDir,
		alias: { $lib: 'src/lib' },
		// The page registers src/service-worker.ts itself (src/lib/pwa, workbox-window), in
		// production builds only, to drive "Update available".
		serviceWorker: { register: false },
		// Defence in depth against injected markup: only our own scripts run,
		// WebAssembly (Argon2id, Automerge) may compile, nothing is framed.
		csp: {
			mode: 'hash',
			directives: {
				'default-src': ['self'],
				'script-src': ['self', 'wasm-unsafe-eval'],
				'style-src': ['self', 'unsafe-inline'],
				'img-src': ['self', 'data:', 'blob:'],
				'media-src': ['self', 'blob:'],
				'connect-src': ['self', 'ws:', 'wss:'],
				'worker-src': ['self'],
				'object-src': ['none'],
				'base-uri': ['self'],
				'form-action': ['self']
			}
		}
	}
};

export default config;
