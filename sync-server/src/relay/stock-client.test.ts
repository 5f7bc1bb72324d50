/**
 * y-websocket compatibility: the stock `WebsocketProvider`, given the signed
 * challenge as URL parameters, syncs a conversation doc with the relay.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import { ENVELOPE_MAP } from '../../../src/lib/conversation/index.ts';
import {
	accessParams,
	cleanUp,
	Conversation,
	Member,
	RelayClient,
	startRelay
} from './test-support.ts';

const providers: WebsocketProvider[] = [];

afterEach(async () => {
	for (const provider of providers.splice(0)) provider.destroy();
	await cleanUp();
});

describe('stock y-websocket client', () => {
	it('syncs a conversation doc written by a Kith client, and gets live updates', async () => {
		const relay = await startRelay();
		const conversation = new Conversation();
		const alice = await Member.create(conversation);
		const a = await RelayClient.join(relay.base, conversation, { doc: alice.doc });
		const { update, entries } = await alice.write(['hello', 'from kith']);
		a.sendUpdate(update);
		await a.acked(alice.client, 2);

		const consoleError = vi.spyOn(console, 'error');
		const doc = new Y.Doc({ gc: false });
		const params = await accessParams(
			relay.base,
			conversation.roomId,
			await conversation.capability()
		);
		const provider = new WebsocketProvider(
			`${relay.base.replace(/^http/, 'ws')}/sync`,
			conversation.roomId,
			doc,
			{ WebSocketPolyfill: WebSocket as never, params, disableBc: true }
		);
		providers.push(provider);
		await new Promise<void>((resolve) => {
			if (provider.synced) resolve();
			provider.once('sync', (synced: boolean) => synced && resolve());
		});
		expect(provider.synced).toBe(true);
		const map = doc.getMap<Uint8Array>(ENVELOPE_MAP);
		expect(map.size).toBe(2);
		for (const entry of entries) expect(map.get(entry.id)).toEqual(entry.bytes);

		// Live: Alice writes again; the stock client's doc receives it.
		const later = await alice.write(['live']);
		a.sendUpdate(later.update);
		await expect.poll(() => map.size, { timeout: 10_000 }).toBe(3);
		expect(map.get(later.entries[0]!.id)).toEqual(later.entries[0]!.bytes);

		// The stock client writing something the rules forbid: refused, stored nowhere.
		map.set('plain', new Uint8Array([1, 2, 3]));
		await expect
			.poll(() => relay.logs.some((l) => l.reason === 'doc-rules:malformed-envelope'), {
				timeout: 10_000
			})
			.toBe(true);
		const reader = await Member.create(conversation);
		const r = await RelayClient.join(relay.base, conversation, { doc: reader.doc });
		await r.pull();
		expect(reader.doc.size).toBe(3);
		expect(r.docRefusals).toEqual([]);
		// A stock client is never sent Kith's own message types (it did not ask with ack=1):
		// it would log "Unable to compute message".
		expect(provider.wsconnected).toBe(true);
		expect(consoleError).not.toHaveBeenCalled();
		consoleError.mockRestore();
	});
});
