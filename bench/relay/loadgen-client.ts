/**
 * The orchestrator's handle on the load generator process (./loadgen.ts):
 * forks it with tsx and an IPC channel, and turns its messages into promises.
 * KITH_BENCH_LOADGEN_ARGS adds Node options to it (e.g. `--cpu-prof`).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ConnectRequest, InitRequest, StepRequest, StepResult } from './loadgen';

export class LoadGenerator {
	readonly #child: ChildProcess;
	#exited = false;

	private constructor(child: ChildProcess) {
		this.#child = child;
		child.once('exit', () => (this.#exited = true));
	}

	static start(): LoadGenerator {
		const child = fork(fileURLToPath(new URL('./loadgen.ts', import.meta.url)), [], {
			execArgv: [
				...(process.env.KITH_BENCH_LOADGEN_ARGS ?? '').split(' ').filter(Boolean),
				'--import',
				'tsx'
			],
			serialization: 'advanced',
			stdio: ['ignore', 'inherit', 'inherit', 'ipc']
		});
		return new LoadGenerator(child);
	}

	get pid(): number {
		return this.#child.pid!;
	}

	#request<T>(message: unknown, type: string, timeoutMs: number): Promise<T> {
		return new Promise((resolve, reject) => {
			if (this.#exited) return reject(new Error('the load generator exited'));
			const timer = setTimeout(() => {
				cleanup();
				reject(new Error(`the load generator did not answer ${type} in ${timeoutMs} ms`));
			}, timeoutMs);
			const onMessage = (m: { type: string; message?: string }) => {
				if (m.type === type) {
					cleanup();
					resolve(m as T);
				} else if (m.type === 'error') {
					cleanup();
					reject(new Error(`load generator: ${m.message}`));
				}
			};
			const onExit = () => {
				cleanup();
				reject(new Error('the load generator exited'));
			};
			const cleanup = () => {
				clearTimeout(timer);
				this.#child.off('message', onMessage);
				this.#child.off('exit', onExit);
			};
			this.#child.on('message', onMessage);
			this.#child.once('exit', onExit);
			this.#child.send(message as object);
		});
	}

	init(request: Omit<InitRequest, 'type'>): Promise<{ frameBytes: number; messages: number }> {
		return this.#request({ type: 'init', ...request }, 'ready', 300_000);
	}

	async connect(request: Omit<ConnectRequest, 'type'>): Promise<void> {
		await this.#request({ type: 'connect', ...request }, 'connected', 60_000);
	}

	async step(request: Omit<StepRequest, 'type'>): Promise<StepResult> {
		const timeout = request.warmMs + request.measureMs + request.drainMs + 30_000;
		return (
			await this.#request<{ result: StepResult }>(
				{ type: 'step', ...request },
				'step-result',
				timeout
			)
		).result;
	}

	async disconnect(): Promise<void> {
		await this.#request({ type: 'disconnect' }, 'disconnected', 30_000);
	}

	async stop(): Promise<void> {
		if (this.#exited) return;
		const gone = new Promise((resolve) => this.#child.once('exit', resolve));
		this.#child.send({ type: 'exit' });
		const timer = setTimeout(() => this.#child.kill('SIGKILL'), 3000);
		await gone;
		clearTimeout(timer);
	}
}
