/**
 * How each room reaches the others right now, for the per-conversation path
 * indicator: "via relay", "direct" (a WebRTC peer), "LAN peer" (a `kith` peer
 * on the LAN: over TCP or WebSockets, or dialed over WebRTC-Direct from
 * Settings → LAN peers), or "" when it reaches nobody. A peer
 * path wins over the relay: it is the one that keeps working when the relay
 * goes. Written by the NetHub (./net.ts), read by the conversation page.
 */
import { SvelteMap } from 'svelte/reactivity';

export type PathLabel = 'via relay' | 'direct' | 'LAN peer' | '';

export const roomPaths = new SvelteMap<string, PathLabel>();

export function pathLabel(relayConnected: boolean, peerLabel: string): PathLabel {
	if (peerLabel === 'LAN peer' || peerLabel === 'direct') return peerLabel;
	return relayConnected ? 'via relay' : '';
}
