/**
 * Entry point: `npm run serve` (or `npm start`, which builds first).
 *
 * Reads the configuration from the environment (see config.ts), makes sure
 * the data directory exists and is writable, starts the server with the
 * relay (relay/) and Web Push (push/) attached and prints
 * one line saying where. SIGTERM or SIGINT stops it gracefully and exits 0;
 * a second signal exits at once.
 *
 * Exit codes: 0 stopped cleanly, 1 failed at run time, 2 bad configuration,
 * 128 + signal number when forced by a second signal.
 */
import { constants as fsConstants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { createLogger } from './log.ts';
import { attachBlobs } from './blobs/index.ts';
import { attachP2P } from './p2p/index.ts';
import { attachPush } from './push/index.ts';
import { attachRelay } from './relay/index.ts';
import { createServer } from './server.ts';

async function main(): Promise<void> {
	let config: Config;
	try {
		config = loadConfig();
	} catch (err) {
		if (err instanceof Error && err.name === ConfigError.NAME) {
			process.stderr.write(`${err.message}\n`);
			process.exit(2);
		}
		throw err;
	}

	const log = createLogger({ level: config.logLevel });

	// A forgotten await somewhere must not take every conversation offline.
	process.on('unhandledRejection', (reason) => {
		log.error('unhandled promise rejection', { err: reason });
	});
	process.on('uncaughtException', (err) => {
		log.error('uncaught exception; exiting', { err });
		process.exit(1);
	});

	try {
		await mkdir(config.dataDir, { recursive: true });
		await access(config.dataDir, fsConstants.R_OK | fsConstants.W_OK);
	} catch (err) {
		process.stderr.write(
			`Cannot use data directory ${config.dataDir}: ${(err as Error).message}\n` +
				'Set KITH_DATA to a directory this user can write.\n'
		);
		process.exit(1);
	}

	const server = createServer(config, { logger: log });
	try {
		const relay = attachRelay(server, config, { logger: log });
		attachPush(server, relay, config, { logger: log });
		attachBlobs(server, config, { logger: log });
	} catch (err) {
		process.stderr.write(
			`Cannot open the relay's data in ${config.dataDir}: ${(err as Error).message}\n`
		);
		process.exit(1);
	}
	let stopping = false;
	const onSignal = (signal: NodeJS.Signals) => {
		if (stopping) {
			log.warn('second signal: exiting without waiting', { signal });
			process.exit(128 + (osConstants.signals[signal] ?? 0));
		}
		stopping = true;
		log.info('shutting down', { signal, timeoutMs: config.shutdownTimeoutMs });
		server.close().then(
			() => {
				log.info('stopped');
				process.exit(0);
			},
			(err: unknown) => {
				log.error('shutdown failed', { err });
				process.exit(1);
			}
		);
	};
	process.on('SIGTERM', onSignal);
	process.on('SIGINT', onSignal);

	try {
		// Optional (KITH_P2P=off): without it browsers still sync through the relay.
		// The node starts when a browser first asks for it (/p2p/info).
		attachP2P(server, config, { logger: log });
	} catch (err) {
		log.error('peer-to-peer settings are not valid; browsers sync via the relay only', { err });
	}
	let url: string;
	try {
		({ url } = await server.listen());
	} catch (err) {
		process.stderr.write(`${(err as Error).message}\n`);
		process.exit(1);
	}
	process.stdout.write(`Kith listening on ${url} (data: ${config.dataDir})\n`);
}

main().catch((err: unknown) => {
	process.stderr.write(`Kith failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
	process.exit(1);
});
