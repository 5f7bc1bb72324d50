/**
 * PeerLink's life cycle (the part P2PLink and LanLink share): the peers start
 * once, on the first need, and never again after close.
 */
import { describe, expect, it } from 'vitest';
import { PeerLink, type LinkPeers } from './peer-link';

class CountingLink extends PeerLink<LinkPeers> {
	starts = 0;
	constructor() {
		super('test', false);
	}
	protected override async startPeers(): Promise<LinkPeers | null> {
		this.starts++;
		return null;
	}
	need(): Promise<LinkPeers | null> {
		return this.start();
	}
}

describe('PeerLink', () => {
	it('starts its peers once, and not at all after close', async () => {
		const link = new CountingLink();
		await link.need();
		await link.need();
		expect(link.starts).toBe(1);

		const closed = new CountingLink();
		closed.close();
		expect(await closed.need()).toBeNull();
		expect(closed.starts).toBe(0);
	});
});
