/**
 * A small typed event emitter. A listener that throws is reported through
 * `onListenerError` and does not stop the other listeners, nor the socket
 * handler that emitted: one broken view must not break syncing.
 */
type Listener<T> = (payload: T) => void;

export class Emitter<Events extends object> {
	readonly #listeners = new Map<keyof Events, Set<Listener<never>>>();
	readonly #onListenerError: (error: unknown) => void;

	constructor(onListenerError: (error: unknown) => void) {
		this.#onListenerError = onListenerError;
	}

	on<K extends keyof Events>(type: K, listener: Listener<Events[K]>): () => void {
		let set = this.#listeners.get(type);
		if (!set) this.#listeners.set(type, (set = new Set()));
		set.add(listener as Listener<never>);
		return () => set.delete(listener as Listener<never>);
	}

	emit<K extends keyof Events>(type: K, payload: Events[K]): void {
		const set = this.#listeners.get(type);
		if (!set) return;
		for (const listener of [...set]) {
			try {
				(listener as Listener<Events[K]>)(payload);
			} catch (error) {
				this.#onListenerError(error);
			}
		}
	}

	clear(): void {
		this.#listeners.clear();
	}
}
