/**
 * The service worker is assembled from modules (src/service-worker.ts lists
 * them): each one adds its event listeners and Workbox routes when called.
 * Routes match in the order the modules are listed.
 */
export type WorkerModule = (scope: ServiceWorkerScope) => void;

/**
 * The part of `ServiceWorkerGlobalScope` the modules use. The app is type
 * checked with the DOM library, which lacks the worker's types; this keeps
 * the two apart instead of mixing both libraries into one program.
 */
export interface ServiceWorkerScope {
	skipWaiting(): Promise<void>;
	addEventListener(type: 'message', listener: (event: WorkerMessageEvent) => void): void;
	addEventListener(type: 'activate', listener: (event: WorkerExtendableEvent) => void): void;
	readonly clients: { claim(): Promise<void> };
}

export interface WorkerExtendableEvent extends Event {
	waitUntil(promise: Promise<unknown>): void;
}

export interface WorkerMessageEvent extends WorkerExtendableEvent {
	readonly data: unknown;
}
