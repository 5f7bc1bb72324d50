/**
 * The libp2p node's settings, read from the environment like config.ts (and
 * with its reader: a bad value names the variable, what it expected and what
 * it got).
 *
 *   KITH_P2P                     on        `off` runs no libp2p node (browsers then sync via the relay only)
 *   KITH_P2P_HOST                HOST      interface of the node's WebSockets listener
 *   KITH_P2P_PORT                0         its port (0: one the OS picks; /p2p/info tells browsers)
 *   KITH_P2P_ANNOUNCE            (none)    comma-separated multiaddrs browsers dial instead of
 *                                          the page's host and port, e.g. `/dns4/kith.example/tcp/443/wss`
 *                                          behind a TLS proxy (an https page cannot open plain ws://)
 *   KITH_P2P_MAX_RESERVATIONS    1024      circuit relay reservations held at once
 *   KITH_P2P_RELAY_DURATION_MS   3600000   longest a relayed connection lasts (js-libp2p: 2 minutes)
 *   KITH_P2P_RELAY_DATA_BYTES    1 GiB     bytes a relayed connection may carry (js-libp2p: 128 KiB)
 */
import { ConfigError, EnvReader } from '../config.ts';

export interface P2PConfig {
	enabled: boolean;
	/** Listen host; the server's HOST when undefined. */
	host: string | undefined;
	port: number;
	announce: readonly string[];
	maxReservations: number;
	relayDurationMs: number;
	relayDataBytes: number;
}

const GiB = 1024 ** 3;

export const P2P_DEFAULTS: P2PConfig = {
	enabled: true,
	host: undefined,
	port: 0,
	announce: [],
	maxReservations: 1024,
	relayDurationMs: 60 * 60 * 1000,
	relayDataBytes: GiB
};

const SWITCH = ['on', 'off'] as const;
type Switch = (typeof SWITCH)[number];

/** Throws ConfigError listing every unusable variable. */
export function loadP2PConfig(env: Record<string, string | undefined> = process.env): P2PConfig {
	const r = new EnvReader(env);
	const enabled =
		r.oneOf<Switch>('KITH_P2P', 'on', SWITCH, (v): v is Switch =>
			(SWITCH as readonly string[]).includes(v)
		) === 'on';
	const config: P2PConfig = {
		enabled,
		host: r.raw('KITH_P2P_HOST') === undefined ? undefined : r.host('KITH_P2P_HOST', '127.0.0.1'),
		port: r.integer('KITH_P2P_PORT', P2P_DEFAULTS.port, { min: 0, max: 65_535 }),
		announce: [],
		maxReservations: r.integer('KITH_P2P_MAX_RESERVATIONS', P2P_DEFAULTS.maxReservations, {
			min: 1,
			max: 1_000_000
		}),
		relayDurationMs: r.integer('KITH_P2P_RELAY_DURATION_MS', P2P_DEFAULTS.relayDurationMs, {
			min: 1000,
			max: 7 * 24 * 3600 * 1000
		}),
		relayDataBytes: r.integer('KITH_P2P_RELAY_DATA_BYTES', P2P_DEFAULTS.relayDataBytes, {
			min: 1024,
			max: Number.MAX_SAFE_INTEGER
		})
	};
	r.done();
	const announce = r.raw('KITH_P2P_ANNOUNCE');
	if (announce !== undefined) {
		const addrs = announce
			.split(',')
			.map((a) => a.trim())
			.filter((a) => a !== '');
		const bad = addrs.filter(
			(a) => !/^\/(ip4|ip6|dns|dns4|dns6)\/[^/]+\/tcp\/\d+\/(ws|wss|tls\/ws)$/.test(a)
		);
		if (bad.length > 0) {
			throw new ConfigError([
				`KITH_P2P_ANNOUNCE must be comma-separated WebSocket multiaddrs like /dns4/host/tcp/443/wss (got ${JSON.stringify(bad[0])})`
			]);
		}
		config.announce = addrs;
	}
	return config;
}
