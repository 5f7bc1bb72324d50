/**
 * The page's side of the service worker: registers it (workbox-window) and
 * tells the UI when a new version is waiting.
 *
 * The flow: the browser finds a changed service-worker.js (on a load, on
 * `update()` — hourly and when the tab comes back into view — or when
 * another tab found it), installs it, and it waits. `available` turns true;
 * the UI shows "Update available". `apply()` ("Reload") asks the waiting
 * worker to take over (SKIP_WAITING). When this tab's controller is
 * *replaced* — here or because another tab applied the update — the tab
 * calls `beforeReload` (which saves drafts) and reloads, so no tab keeps
 * running an old build against a new cache. A controller *taken* where
 * there was none (the first visit being claimed) is not a reason to reload.
 */
import { Workbox } from 'workbox-window';

export interface AppUpdatesOptions {
	/** The worker's URL: `/service-worker.js` under the app's base path. */
	scriptUrl: string;
	/** Runs right before the reload; should save what the user has not sent. */
	beforeReload: () => void;
	/** How often to look for a new version while the tab stays open. */
	checkEveryMs?: number;
	/** After "Reload", how long to wait for the new worker before reloading anyway. */
	takeoverTimeoutMs?: number;
}

const HOUR = 60 * 60 * 1000;

export class AppUpdates {
	#available = $state(false);
	#reloading = $state(false);
	#problem = $state<string | null>(null);
	readonly #options: Required<AppUpdatesOptions>;
	#workbox: Workbox | null = null;
	#reloadStarted = false;

	constructor(options: AppUpdatesOptions) {
		this.#options = { checkEveryMs: HOUR, takeoverTimeoutMs: 10_000, ...options };
	}

	/** A new version is installed and waiting for this tab to let it in. */
	get available(): boolean {
		return this.#available;
	}

	/** "Reload" was pressed and the page is about to reload. */
	get reloading(): boolean {
		return this.#reloading;
	}

	/** Why "Reload" did not reload, for the user; null when nothing went wrong. */
	get problem(): string | null {
		return this.#problem;
	}

	/**
	 * Registers the worker; does nothing where service workers are missing
	 * (or blocked, e.g. some private modes). Returns a stop function.
	 */
	start(): () => void {
		if (typeof navigator === 'undefined' || !('serviceWorker' in navigator)) return () => {};
		const container = navigator.serviceWorker;
		const workbox = new Workbox(this.#options.scriptUrl);
		this.#workbox = workbox;

		workbox.addEventListener('waiting', () => {
			this.#available = true;
		});

		let controlled = container.controller !== null;
		const onControllerChange = () => {
			const replaced = controlled;
			controlled = container.controller !== null;
			if (replaced) this.#reload();
		};
		container.addEventListener('controllerchange', onControllerChange);

		workbox.register().catch((error: unknown) => {
			// The app works without it, online; offline start-up is what is lost.
			console.warn('kith:pwa the service worker could not be registered', error);
		});

		const check = () => {
			workbox.update().catch((error: unknown) => {
				// Offline, or the server is down: the next check will tell.
				console.debug('kith:pwa update check failed', error);
			});
		};
		const onVisible = () => {
			if (document.visibilityState === 'visible') check();
		};
		const timer = setInterval(check, this.#options.checkEveryMs);
		document.addEventListener('visibilitychange', onVisible);

		return () => {
			clearInterval(timer);
			document.removeEventListener('visibilitychange', onVisible);
			container.removeEventListener('controllerchange', onControllerChange);
		};
	}

	/** "Reload": the waiting version takes over, then every Kith tab reloads. */
	apply(): void {
		if (this.#reloading) return;
		this.#reloading = true;
		const workbox = this.#workbox;
		if (!workbox) {
			this.#reload();
			return;
		}
		workbox.messageSkipWaiting();
		// No waiting worker any more (another tab let it in, and this tab's
		// controllerchange is on its way), or it never answers: reload anyway;
		// a worker still waiting then shows the banner again.
		setTimeout(() => this.#reload(), this.#options.takeoverTimeoutMs);
	}

	#reload(): void {
		if (this.#reloadStarted) return;
		this.#reloadStarted = true;
		this.#reloading = true;
		try {
			this.#options.beforeReload();
		} catch (error) {
			// Storage refused (full or disabled): reloading now would lose the drafts.
			console.warn('kith:pwa drafts could not be saved; not reloading', error);
			this.#reloadStarted = false;
			this.#reloading = false;
			this.#problem =
				'Your unsent text could not be kept for the reload. Copy it somewhere, then reload the page.';
			return;
		}
		location.reload();
	}
}
