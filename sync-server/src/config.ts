/**
 * Server configuration, read once from the environment at start-up.
 *
 * Every variable is optional. A value that is set but unusable stops the
 * server with a message naming the variable, what it expected and what it got
 * (all problems at once, not one per restart). A variable set to the empty
 * string counts as unset, because that is what `FOO= npm start` and many
 * service managers produce when they mean "default".
 *
 * Adding a setting is one field on `Config` and one `read*` call in
 * `loadConfig`. The relay's limits are documented with their refusal reasons
 * in docs/protocol.md ("Relay protocol").
 */
import { isAbsolute, resolve } from 'node:path';
import { LOG_LEVELS, isLogLevel, type LogLevel } from './log.ts';

export interface Config {
	/** Interface to listen on. `127.0.0.1` by default: exposing Kith is a decision. */
	host: string;
	/** TCP port; 0 picks a free one (tests). */
	port: number;
	/** Absolute path of the directory holding the server's state; created at start-up. */
	dataDir: string;
	/** Absolute path of the built web app (`npm run build` writes `./build`). */
	staticDir: string;
	/** How long a graceful shutdown waits for in-flight requests before cutting them off. */
	shutdownTimeoutMs: number;
	logLevel: LogLevel;
	/** Largest WebSocket frame the relay reads; larger ones are refused (`frame-too-large`). */
	maxFrameBytes: number;
	/** Frames per second one connection may send (burst: twice as many); `rate-limited` beyond. */
	rateMsgsPerSec: number;
	/** Bytes per second one connection may send (burst: twice as many); `rate-limited` beyond. */
	rateBytesPerSec: number;
	/** Bytes the relay stores for one room; `room-quota` beyond. */
	roomQuotaBytes: number;
	/** How long a room with no connection keeps its merged state in memory. */
	roomIdleMs: number;
	/**
	 * Longest a retired generation's room is kept for devices that have not
	 * moved yet: a retirement plan's `retainUntil` is clamped to now plus this
	 * many days (docs/protocol.md, "Room retirement").
	 */
	retainMaxDays: number;
	/** The VAPID `sub` claim: how a push service reaches this relay's operator (`mailto:` or `https:`). */
	vapidSubject: string;
	/**
	 * Hosts a push subscription's endpoint may name: exact host names, or
	 * `.suffix` for any host under it; `*` for any. The relay sends requests to
	 * these endpoints, so without a list a client could point it anywhere.
	 */
	pushHosts: readonly string[];
}

const MiB = 1024 * 1024;

export const DEFAULTS = {
	host: '127.0.0.1',
	port: 8787,
	dataDir: './data',
	staticDir: './build',
	shutdownTimeoutMs: 10_000,
	logLevel: 'info',
	maxFrameBytes: 2 * MiB,
	rateMsgsPerSec: 200,
	rateBytesPerSec: 8 * MiB,
	roomQuotaBytes: 512 * MiB,
	roomIdleMs: 60_000,
	retainMaxDays: 30,
	vapidSubject: 'mailto:admin@localhost',
	/** The push services of Chrome, Edge, Firefox and Safari. */
	pushHosts: [
		'fcm.googleapis.com',
		'android.googleapis.com',
		'.push.services.mozilla.com',
		'.notify.windows.com',
		'.push.apple.com'
	]
} as const satisfies Record<keyof Config, unknown>;

/** The configuration cannot be used; `problems` lists each bad variable. */
export class ConfigError extends Error {
	static readonly NAME = 'ConfigError';
	readonly problems: readonly string[];
	constructor(problems: readonly string[]) {
		super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
		this.name = ConfigError.NAME;
		this.problems = problems;
	}
}

type Env = Record<string, string | undefined>;

/**
 * Parses `env` into a `Config`. Relative paths resolve against `cwd`.
 * Throws `ConfigError` listing every unusable variable.
 */
export function loadConfig(env: Env = process.env, cwd: string = process.cwd()): Config {
	const r = new EnvReader(env);
	const config: Config = {
		host: r.host('HOST', DEFAULTS.host),
		port: r.integer('PORT', DEFAULTS.port, { min: 0, max: 65_535 }),
		dataDir: r.path('KITH_DATA', DEFAULTS.dataDir, cwd),
		staticDir: r.path('KITH_STATIC', DEFAULTS.staticDir, cwd),
		shutdownTimeoutMs: r.integer('KITH_SHUTDOWN_TIMEOUT_MS', DEFAULTS.shutdownTimeoutMs, {
			min: 0,
			max: 3_600_000
		}),
		logLevel: r.oneOf('LOG_LEVEL', DEFAULTS.logLevel, LOG_LEVELS, isLogLevel),
		maxFrameBytes: r.integer('KITH_MAX_FRAME_BYTES', DEFAULTS.maxFrameBytes, {
			min: 1024,
			max: 64 * MiB
		}),
		rateMsgsPerSec: r.integer('KITH_RATE_MSGS_PER_SEC', DEFAULTS.rateMsgsPerSec, {
			min: 1,
			max: 1_000_000
		}),
		rateBytesPerSec: r.integer('KITH_RATE_BYTES_PER_SEC', DEFAULTS.rateBytesPerSec, {
			min: 1024,
			max: 1024 * MiB
		}),
		roomQuotaBytes: r.integer('KITH_ROOM_QUOTA_BYTES', DEFAULTS.roomQuotaBytes, {
			min: 1024,
			max: Number.MAX_SAFE_INTEGER
		}),
		roomIdleMs: r.integer('KITH_ROOM_IDLE_MS', DEFAULTS.roomIdleMs, { min: 0, max: 86_400_000 }),
		retainMaxDays: r.integer('KITH_RETAIN_MAX_DAYS', DEFAULTS.retainMaxDays, { min: 1, max: 3650 }),
		vapidSubject: r.vapidSubject('KITH_VAPID_SUBJECT', DEFAULTS.vapidSubject),
		pushHosts: r.hostList('KITH_PUSH_HOSTS', DEFAULTS.pushHosts)
	};
	r.done();
	return config;
}

/** Reads typed values from an environment, collecting problems instead of throwing on the first. */
export class EnvReader {
	readonly #env: Env;
	readonly #problems: string[] = [];

	constructor(env: Env) {
		this.#env = env;
	}

	/** The trimmed value, or undefined when unset or empty. */
	raw(name: string): string | undefined {
		const value = this.#env[name]?.trim();
		return value === undefined || value === '' ? undefined : value;
	}

	integer(name: string, fallback: number, range: { min: number; max: number }): number {
		const value = this.raw(name);
		if (value === undefined) return fallback;
		const n = /^\d+$/.test(value) ? Number(value) : NaN;
		if (!Number.isSafeInteger(n) || n < range.min || n > range.max) {
			return this.#fail(name, `a whole number from ${range.min} to ${range.max}`, value, fallback);
		}
		return n;
	}

	path(name: string, fallback: string, cwd: string): string {
		const value = this.raw(name) ?? fallback;
		if (value.includes('\0')) return this.#fail(name, 'a file system path', value, fallback);
		return isAbsolute(value) ? resolve(value) : resolve(cwd, value);
	}

	host(name: string, fallback: string): string {
		const value = this.raw(name);
		if (value === undefined) return fallback;
		if (value.includes('://') || /[\s/[\]]/.test(value)) {
			return this.#fail(
				name,
				'a host name or IP address such as 127.0.0.1, 0.0.0.0 or :: (not a URL, no brackets)',
				value,
				fallback
			);
		}
		return value;
	}

	/** Comma-separated host names, `.suffix`es or `*` (see Config.pushHosts). */
	hostList(name: string, fallback: readonly string[]): readonly string[] {
		const value = this.raw(name);
		if (value === undefined) return fallback;
		const hosts = value
			.split(',')
			.map((h) => h.trim().toLowerCase())
			.filter((h) => h !== '');
		const ok =
			hosts.length > 0 &&
			hosts.every(
				(h) =>
					h === '*' ||
					/^\.?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(h)
			);
		if (!ok) {
			return this.#fail(
				name,
				'comma-separated host names, .suffixes or * (e.g. fcm.googleapis.com,.push.apple.com)',
				value,
				fallback
			);
		}
		return hosts;
	}

	/** A `mailto:` address or `https:` URL, as web push services want in the VAPID claims. */
	vapidSubject(name: string, fallback: string): string {
		const value = this.raw(name);
		if (value === undefined) return fallback;
		let ok = false;
		try {
			const url = new URL(value);
			ok = (url.protocol === 'mailto:' && url.pathname.includes('@')) || url.protocol === 'https:';
		} catch {
			// not a URL: reported below
		}
		if (!ok) {
			return this.#fail(
				name,
				'a mailto: address or https: URL (e.g. mailto:admin@example.org)',
				value,
				fallback
			);
		}
		return value;
	}

	oneOf<T extends string>(
		name: string,
		fallback: T,
		allowed: readonly T[],
		guard: (value: string) => value is T
	): T {
		const value = this.raw(name)?.toLowerCase();
		if (value === undefined) return fallback;
		if (!guard(value)) return this.#fail(name, `one of ${allowed.join(', ')}`, value, fallback);
		return value;
	}

	/** Throws `ConfigError` if any read failed. */
	done(): void {
		if (this.#problems.length > 0) throw new ConfigError(this.#problems);
	}

	#fail<T>(name: string, expected: string, got: string, fallback: T): T {
		this.#problems.push(`${name} must be ${expected} (got ${JSON.stringify(got)})`);
		return fallback;
	}
}
