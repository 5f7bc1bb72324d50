import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vitest/config';

export default defineConfig({
	plugins: [sveltekit()],
	build: { target: 'es2022', chunkSizeWarningLimit: 4096 },
	test: {
		include: ['src/**/*.test.ts', 'tests/unit/**/*.test.ts', 'sync-server/**/*.test.ts'],
		environment: 'node',
		testTimeout: 30_000
	}
});
