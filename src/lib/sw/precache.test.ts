import { describe, expect, it } from 'vitest';
import { isServerOnly } from './routes';
import { shellEntries } from './precache';
import { parsePageMessage } from './messages';

describe('shellEntries', () => {
	const manifest = {
		base: '',
		build: ['/_app/immutable/entry/start.abc.js', '/_app/version.json'],
		files: ['/favicon.svg', '/manifest.webmanifest'],
		version: '42'
	};

	it('precaches the shell, the build and static files; only hashed files go unrevisioned', () => {
		expect(shellEntries(manifest)).toEqual([
			{ url: '/index.html', revision: '42' },
			{ url: '/_app/immutable/entry/start.abc.js', revision: null },
			{ url: '/_app/version.json', revision: '42' },
			{ url: '/favicon.svg', revision: '42' },
			{ url: '/manifest.webmanifest', revision: '42' }
		]);
	});

	it('keeps the base path', () => {
		const entries = shellEntries({
			...manifest,
			base: '/kith',
			build: ['/kith/_app/immutable/a.js'],
			files: []
		});
		expect(entries).toEqual([
			{ url: '/kith/index.html', revision: '42' },
			{ url: '/kith/_app/immutable/a.js', revision: null }
		]);
	});
});

describe('isServerOnly', () => {
	it.each([
		'/healthz',
		'/metrics',
		'/metrics?x=1',
		'/sync/challenge',
		'/sync/room-1',
		'/blobs/abc',
		'/media/abc',
		'/media/'
	])('%s belongs to the server', (path) => expect(isServerOnly(path)).toBe(true));

	it.each(['/', '/c/abc', '/join', '/healthzz', '/c/media', '/synchronise', '/index.html'])(
		'%s is the app',
		(path) => expect(isServerOnly(path)).toBe(false)
	);
});

describe('parsePageMessage', () => {
	it('accepts SKIP_WAITING', () => {
		expect(parsePageMessage({ type: 'SKIP_WAITING' })).toEqual({ type: 'SKIP_WAITING' });
	});

	it.each([null, 'SKIP_WAITING', {}, { type: 'skip_waiting' }, { type: 'CLAIM' }, [1]])(
		'drops %j',
		(data) => expect(parsePageMessage(data)).toBeNull()
	);
});
