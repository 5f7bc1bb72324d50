/**
 * Durability of acknowledgements: the real entry point in a child process,
 * killed with SIGKILL while updates stream in. After a restart on the same
 * data directory, every envelope the relay acknowledged is served, and the
 * database opens clean.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConversationDoc } from '../../../src/lib/conversation/index.ts';
import { DATABASE_FILE } from './store.ts';
import { cleanUp, Conversation, Member, RelayClient, spawnMain, tempDir } from './test-support.ts';

afterEach(cleanUp);

const UPDATES = 300;
const KILL_AFTER_ACKS = 40;

describe('relay durability', () => {
	it('serves every acknowledged envelope after SIGKILL mid-write; the database opens clean', async () => {
		const dataDir = await tempDir('kith-durable-');
		const env = { KITH_DATA: dataDir, KITH_STATIC: join(dataDir, 'no-build') };
		const first = spawnMain(env);
		const base = await first.listening;

		const conversation = new Conversation();
		const alice = await Member.create(conversation);
		const entries = [];
		const updates = [];
		for (let i = 0; i < UPDATES; i++) {
			const written = await alice.write([`message ${i}`]);
			entries.push(written.entries[0]!);
			updates.push(written.update);
		}
		const a = await RelayClient.join(base, conversation);
		await a.next((f) => f.kind === 'sync-step1');
		for (const update of updates) a.sendUpdate(update);
		await a.acked(alice.client, KILL_AFTER_ACKS, 30_000);
		first.child.kill('SIGKILL');
		await first.exited;
		await a.closed;
		// Acknowledgements already on the wire when the process died count too.
		const acked = a.ackedState().get(alice.client) ?? 0;
		expect(acked).toBeGreaterThanOrEqual(KILL_AFTER_ACKS);
		expect(acked).toBeLessThan(UPDATES); // the kill landed mid-stream
		expect(a.refusals()).toEqual([]);

		const db = new Database(join(dataDir, DATABASE_FILE));
		expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
		expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
		db.close();

		const second = spawnMain(env);
		const restarted = await second.listening;
		const reader = new ConversationDoc(conversation.roomId, 1);
		const r = await RelayClient.join(restarted, conversation, { doc: reader });
		await r.pull();
		const missing = entries.slice(0, acked).filter((entry) => !reader.has(entry.id));
		expect(missing).toEqual([]);
		expect(reader.size).toBeGreaterThanOrEqual(acked);
		expect(r.docRefusals).toEqual([]);
		expect(second.output().stderr).toBe('');
	});
});
