/**
 * Vite config of the benchmark page (bench/browser), built into bench/.out.
 * Separate from the app's config: no SvelteKit, one static page that imports
 * the app's modules directly ($lib), with Svelte compiling `.svelte` and
 * `.svelte.ts` (rune) modules exactly as in the app.
 */
import { fileURLToPath } from 'node:url';
import { svelte, vitePreprocess } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vite';

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
	root: here('./browser'),
	base: './',
	logLevel: 'warn',
	clearScreen: false,
	plugins: [svelte({ configFile: false, preprocess: vitePreprocess() })],
	resolve: { alias: { $lib: here('../src/lib') } },
	build: {
		outDir: here('./.out'),
		emptyOutDir: true,
		target: 'es2022',
		// Readable stacks in profiles; the bundle never ships.
		minify: false,
		sourcemap: true,
		chunkSizeWarningLimit: 8192,
		// Two pages: the app benchmarks (index.html) and the relay latency benchmark (relay.html).
		rollupOptions: {
			input: { index: here('./browser/index.html'), relay: here('./browser/relay.html') }
		}
	}
});
