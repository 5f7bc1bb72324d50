/**
 * Invariant 3: the relay's database, its write-ahead log and its output hold
 * no plaintext and no key. Messages carry a marker string; the marker also
 * goes over the wire in the clear inside frames the relay must neither store
 * nor log (an awareness frame, refused updates naming it). Then every file and
 * every line is scanned for it — and, as a check that the scan can see
 * anything, the database must contain the envelopes themselves.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as encoding from 'lib0/encoding';
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { toBase64Url, utf8Encode } from '../../../src/lib/crypto/index.ts';
import { DATABASE_FILE } from './store.ts';
import {
	cleanUp,
	Conversation,
	Member,
	RelayClient,
	roomCapability,
	spawnMain,
	tempDir
} from './test-support.ts';
import { MESSAGE_AWARENESS } from './wire.ts';
import { deriveKey } from '../../../src/lib/crypto/index.ts';

afterEach(cleanUp);

function contains(haystack: Buffer, needle: Uint8Array | string): boolean {
	return (
		haystack.indexOf(typeof needle === 'string' ? Buffer.from(needle) : Buffer.from(needle)) >= 0
	);
}

describe('relay at rest', () => {
	it('stores and logs no plaintext and no key', async () => {
		const dataDir = await tempDir('kith-plain-');
		const main = spawnMain({ KITH_DATA: dataDir, KITH_STATIC: join(dataDir, 'no-build') });
		const base = await main.listening;
		const marker = `kith-marker-${toBase64Url(crypto.getRandomValues(new Uint8Array(9)))}`;

		const conversation = new Conversation();
		const alice = await Member.create(conversation);
		const bob = await Member.create(conversation);
		const a = await RelayClient.join(base, conversation, { doc: alice.doc });
		const b = await RelayClient.join(base, conversation, { doc: bob.doc });
		const envelopes = [];
		for (let i = 0; i < 10; i++) {
			const { update, entries } = await alice.write([
				`${marker} message ${i}`,
				JSON.stringify({ text: marker, i })
			]);
			envelopes.push(...entries);
			a.sendUpdate(update);
		}
		await a.acked(alice.client, 20);

		// The marker in the clear, where the relay must not keep it.
		a.send(
			encoding.encode((e) => {
				encoding.writeVarUint(e, MESSAGE_AWARENESS);
				encoding.writeVarUint8Array(e, utf8Encode(JSON.stringify({ typing: marker })));
			})
		);
		const plain = new Y.Doc();
		plain.getText(marker).insert(0, marker); // wrong root, named after the marker
		a.sendUpdate(Y.encodeStateAsUpdate(plain));
		const keyed = new Y.Doc();
		keyed.getMap('e').set(marker, utf8Encode(marker)); // a key and content the rules refuse
		a.sendUpdate(Y.encodeStateAsUpdate(keyed));
		await a.until(() => a.refusals().length === 2);
		await b.until(() => b.frames.some((f) => f.kind === 'awareness'));

		const capSeed = deriveKey(conversation.epochKey, `kith/room-access/${conversation.roomId}`, 32);
		expect((await roomCapability(conversation.epochKey, conversation.roomId)).publicKey).toEqual(
			(await conversation.capability()).publicKey
		);
		const secrets: Array<[string, Uint8Array | string]> = [
			['marker', marker],
			['epoch key', conversation.epochKey],
			['epoch key (text)', toBase64Url(conversation.epochKey)],
			['capability seed', capSeed],
			['capability seed (text)', toBase64Url(capSeed)]
		];
		const scan = (what: string, bytes: Buffer) => {
			for (const [name, secret] of secrets)
				expect([what, name, contains(bytes, secret)]).toEqual([what, name, false]);
		};

		// While running: the database and its write-ahead log.
		const files = () =>
			readdirSync(dataDir)
				.filter((f) => f.startsWith(DATABASE_FILE))
				.map((f) => [f, readFileSync(join(dataDir, f))] as const);
		const live = files();
		expect(live.map(([f]) => f)).toContain(`${DATABASE_FILE}-wal`);
		for (const [name, bytes] of live) scan(name, bytes);
		// The scan can see: every envelope is in there, byte for byte.
		const stored = Buffer.concat(live.map(([, bytes]) => bytes));
		for (const envelope of envelopes) expect(contains(stored, envelope.bytes)).toBe(true);

		// After a graceful stop (the log checkpointed into the database), and the output.
		main.child.kill('SIGTERM');
		await main.exited;
		expect(main.child.exitCode).toBe(0);
		const after = files();
		for (const [name, bytes] of after) scan(name, bytes);
		const all = Buffer.concat(after.map(([, bytes]) => bytes));
		for (const envelope of envelopes) expect(contains(all, envelope.bytes)).toBe(true);
		const { stdout, stderr } = main.output();
		expect(stdout).toContain('"reason":"doc-rules:wrong-root"');
		scan('stdout', Buffer.from(stdout));
		scan('stderr', Buffer.from(stderr));
	});
});
