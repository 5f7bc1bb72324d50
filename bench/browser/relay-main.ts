/** Entry of the relay latency page (relay.html): exposes its benchmark to bench/relay/latency.ts. */
import { relayBench } from './relay-benches';

window.kithRelayBench = relayBench;
document.documentElement.dataset.ready = 'true';
