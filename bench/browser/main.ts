/**
 * Entry of the benchmark page: exposes the benchmarks to bench/run.ts and
 * says when it is ready. Loads the app's design tokens so the rendered
 * conversation is laid out as in the app.
 */
import '../../src/app.css';
import { benches } from './benches';

window.kithBench = benches;
document.documentElement.dataset.ready = 'true';
