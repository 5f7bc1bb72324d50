/**
 * A worker thread running a TypeScript module. `--import tsx` does not reach
 * worker threads on Node 20, so the worker starts from a line of JavaScript
 * that loads the module through tsx's API.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

const TSX_API = import.meta.resolve('tsx/esm/api');

export function tsWorker(module: URL, options: WorkerOptions = {}): Worker {
	const code = `import(${JSON.stringify(TSX_API)}).then((api) => api.tsImport(${JSON.stringify(module.href)}, ${JSON.stringify(module.href)}))`;
	return new Worker(code, { ...options, eval: true });
}
