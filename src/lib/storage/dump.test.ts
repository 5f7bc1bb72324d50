import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { DocPersistence } from './doc-persistence';
import { dumpAllIndexedDb, searchable } from './dump';
import { LocalStore } from './local-store';

describe('dumpAllIndexedDb', () => {
	it('finds markers in every database and store, inside bytes and objects', async () => {
		const doc = new Y.Doc();
		const p = new DocPersistence('dump-doc', doc);
		doc.getMap('ops').set('entry', new TextEncoder().encode('PLAINTEXT-MARKER-1 héllo'));
		await p.destroy();
		const local = new LocalStore('dump-local');
		await local.put('view/r1', { snapshot: new TextEncoder().encode('PLAINTEXT-MARKER-2') });
		await local.put(
			'keyring/k',
			await crypto.subtle.generateKey({ name: 'AES-GCM', length: 128 }, false, ['encrypt'])
		);
		local.close();

		const records = await dumpAllIndexedDb();
		const find = (marker: string) => records.filter((r) => r.value.includes(marker));
		expect(find('PLAINTEXT-MARKER-1')).toMatchObject([{ db: 'dump-doc', store: 'updates' }]);
		expect(find('héllo')).toHaveLength(1); // via the UTF-8 rendering
		expect(find('PLAINTEXT-MARKER-2')).toMatchObject([
			{ db: 'dump-local', store: 'kv', key: 'view/r1' }
		]);
		expect(find('[CryptoKey secret AES-GCM extractable=false]')).toHaveLength(1);
		// Plain data, so it survives serialisation out of a page.
		expect(JSON.parse(JSON.stringify(records))).toEqual(records);
	});

	it('renders values as searchable text', async () => {
		const shared = { x: 1 };
		const cyclic: Record<string, unknown> = { name: 'c' };
		cyclic.self = cyclic;
		expect(await searchable(new Uint8Array([0x41, 0xe9]))).toBe('A\u00e9\nA\ufffd');
		expect(await searchable([shared, shared])).toBe('[{"x": 1}, {"x": 1}]');
		expect(await searchable(cyclic)).toBe('{"name": c, "self": [Circular]}');
		expect(await searchable(new Map([['k', new Set([1])]]))).toBe('Map{k => Set{1}}');
		expect(await searchable(new Blob(['blob-text']))).toContain('blob-text');
	});
});
