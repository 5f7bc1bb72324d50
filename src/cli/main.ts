/**
 * `kith`: the Node peer's command line (README, "Command line"). Opens the
 * data dir (or hands the command to the `kith serve` that holds it), runs
 * one command, and exits with the code the README promises.
 */
import { mkdirSync } from 'node:fs';
import { hasAccount, NodeAccount } from '../lib/node/account';
import { KithCliError, badInput } from '../lib/node/errors';
import { acquireLock } from '../lib/node/lock';
import { NodeNet } from '../lib/node/net';
import { loadOrCreateP2PIdentity, rememberWebrtcPort } from '../lib/node/p2p-identity';
import { webrtcDirectListen } from '../lib/p2p/node';
import type { SyncLogger } from '../lib/sync';
import { parseInvocation, USAGE, type Invocation } from './args';
import { runCommand, writeMessage, type Output } from './commands';
import { runRemote, serveControl } from './control';

/** How long a one-off command waits for another one-off command to release the dir. */
const LOCK_WAIT_MS = 15_000;
/** How often serve looks for new invitations to watch. */
const INVITE_SCAN_MS = 2000;

function textOrJson(
	json: boolean,
	stdout: (line: string) => void,
	stderr: (line: string) => void
): Output {
	return {
		json,
		line(text, object) {
			if (json) stdout(JSON.stringify(object));
			else if (text !== null) stdout(text);
		},
		note(text) {
			stderr(text);
		}
	};
}

const stdoutLine = (line: string) => void process.stdout.write(`${line}\n`);
const stderrLine = (line: string) => void process.stderr.write(`${line}\n`);

/** Passphrase from KITH_PASSPHRASE, else asked for on a terminal (not echoed), else none. */
async function passphrase(question: string): Promise<string | undefined> {
	const env = process.env.KITH_PASSPHRASE;
	if (env !== undefined) return env;
	const stdin = process.stdin;
	if (!stdin.isTTY) return undefined;
	process.stderr.write(question);
	stdin.setRawMode(true);
	stdin.resume();
	stdin.setEncoding('utf8');
	return new Promise((resolve) => {
		let typed = '';
		const onData = (chunk: string) => {
			for (const char of chunk) {
				if (char === '\r' || char === '\n' || char === '\u0004') {
					stdin.off('data', onData);
					stdin.setRawMode(false);
					stdin.pause();
					process.stderr.write('\n');
					resolve(typed);
					return;
				}
				if (char === '\u0003') {
					stdin.setRawMode(false);
					process.exit(130);
				}
				if (char === '\u007f' || char === '\b') typed = typed.slice(0, -1);
				else typed += char;
			}
		};
		stdin.on('data', onData);
	});
}

function logger(): SyncLogger {
	const verbose = process.env.KITH_DEBUG === '1';
	const write = (level: string) => (message: string, fields?: Record<string, unknown>) => {
		if (verbose)
			stderrLine(`kith ${level}: ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}`);
	};
	return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

export async function main(argv: string[]): Promise<number> {
	let invocation: Invocation | null;
	try {
		invocation = parseInvocation(argv);
	} catch (error) {
		return fail(error);
	}
	if (!invocation) {
		stdoutLine(USAGE);
		return 0;
	}
	try {
		if (invocation.command === 'init') return await init(invocation);
		if (invocation.command !== 'serve') {
			const remote = await runRemote(invocation.data, invocation, stdoutLine, stderrLine);
			if (remote !== null) return remote;
		}
		return await local(invocation);
	} catch (error) {
		return fail(error);
	}
}

function fail(error: unknown): number {
	if (error instanceof KithCliError) {
		stderrLine(`kith: ${error.message}`);
		return error.code;
	}
	stderrLine(`kith: ${error instanceof Error ? error.message : String(error)}`);
	return 1;
}

async function init(invocation: Invocation): Promise<number> {
	const dir = invocation.data;
	if (hasAccount(dir)) throw badInput(`${dir} already holds an account`);
	mkdirSync(dir, { recursive: true, mode: 0o700 });
	const release = await acquireLock(dir, LOCK_WAIT_MS);
	try {
		const chosen = await passphrase('Passphrase for this account (empty for none): ');
		const { account, recoveryKey } = await NodeAccount.create(
			dir,
			invocation.name ?? '',
			chosen ? { passphrase: chosen } : {}
		);
		textOrJson(invocation.json, stdoutLine, stderrLine).line(recoveryKey, {
			recoveryKey,
			user: account.userId,
			name: account.displayName
		});
		account.close();
		return 0;
	} finally {
		release();
	}
}

/** Open the data dir in this process: a one-off command, or serve. */
async function local(invocation: Invocation): Promise<number> {
	const dir = invocation.data;
	if (!hasAccount(dir)) {
		throw new KithCliError(`no Kith account in ${dir} (run: kith init --name NAME)`, 3);
	}
	const release = await acquireLock(dir, invocation.command === 'serve' ? 0 : LOCK_WAIT_MS);
	const out = textOrJson(invocation.json, stdoutLine, stderrLine);
	let account: NodeAccount | null = null;
	const serving = invocation.command === 'serve';
	// One-off commands listen on TCP only (they dial and are dialed for seconds).
	const listen =
		invocation.listen.length > 0
			? [...invocation.listen]
			: serving
				? ['/ip4/0.0.0.0/tcp/0', '/ip4/0.0.0.0/tcp/0/ws']
				: ['/ip4/0.0.0.0/tcp/0'];
	let identity;
	try {
		// The same peer id and certificate each start: a browser's saved address keeps working.
		identity = await loadOrCreateP2PIdentity(dir);
	} catch (error) {
		release();
		throw error;
	}
	// serve also listens where browsers can reach it (WebRTC-Direct), unless --listen said where:
	// on the port asked for, else on the last one used (the same address) and, if
	// another program took it since, on any free port, as on a first start.
	const webrtcPort = invocation.webrtcPort ?? identity.port ?? 0;
	let listenFallback: string[] | undefined;
	if (serving && !listen.some((address) => address.includes('/webrtc-direct'))) {
		if (invocation.webrtcPort === null && webrtcPort !== 0) {
			listenFallback = [...listen, webrtcDirectListen(0)];
		}
		listen.push(webrtcDirectListen(webrtcPort));
	}
	const net = new NodeNet({
		relayUrl: invocation.relay,
		listen,
		...(listenFallback ? { listenFallback } : {}),
		peers: invocation.peers,
		mdns: invocation.mdns,
		identity,
		logger: logger(),
		onRelayRefused: (_room, message) => out.note(`kith: relay: ${message}`)
	});
	let ready = false;
	try {
		const secret = NodeAccount.needsPassphrase(dir) ? await passphrase('Passphrase: ') : undefined;
		account = await NodeAccount.open(dir, secret, {
			onRoom: (doc, ikm) => net.addRoom(doc, ikm),
			onRoomGone: (roomId) => net.removeRoom(roomId),
			onRetired: (roomId, key, deviceId) => net.reportMoved(roomId, key, deviceId),
			onWarning: (message) => out.note(`kith: ${message}`),
			onMessages: (conversation, messages, source) => {
				if (!ready || source === 'load' || invocation.command !== 'serve') return;
				for (const message of messages) writeMessage(out, conversation, message);
			},
			onJoined: (_invite, conversation) =>
				out.note(`kith: joined "${conversation.name}" (${conversation.id})`)
		});
		if (invocation.command === 'serve') {
			ready = true;
			return await serve(account, net, out, webrtcPort);
		}
		const code = await runCommand({ account, net, invocation, out });
		return code;
	} finally {
		await net.stop();
		account?.close();
		release();
	}
}

async function serve(
	account: NodeAccount,
	net: NodeNet,
	out: Output,
	webrtcPort: number
): Promise<number> {
	try {
		await net.start();
	} catch (error) {
		if (error instanceof Error && /ICE UDP mux/.test(error.message)) {
			throw badInput(
				`cannot listen for browsers on UDP port ${webrtcPort}: it is in use (choose another with --webrtc-port)`
			);
		}
		throw error;
	}
	out.note(`kith serve: ${account.displayName}, data in ${account.dir}`);
	for (const address of net.addresses()) out.note(`kith serve: listening on ${address}`);
	const browsers = net.browserAddresses();
	const listening = /\/udp\/(\d+)\/webrtc-direct\//.exec(browsers[0] ?? '');
	if (listening) rememberWebrtcPort(account.dir, Number(listening[1]));
	if (out.json) out.line(null, { browserAddresses: browsers });
	for (const address of browsers) {
		out.note(`kith serve: a browser can connect (Settings → LAN peers) to ${address}`);
	}
	await account.resumeJoins();
	await account.watchInvites();
	const scan = setInterval(() => {
		account.watchInvites().catch((error: unknown) => out.note(`kith: ${String(error)}`));
	}, INVITE_SCAN_MS);
	// Commands handed over the socket run one at a time, like one-off commands.
	let queue: Promise<unknown> = Promise.resolve();
	const control = await serveControl(account.dir, (invocation, write) => {
		const run = queue.then(async () => {
			if (invocation.command === 'serve' || invocation.command === 'init') {
				write({ err: `kith: kith serve is already running on ${account.dir}` });
				return 1;
			}
			const remoteOut = textOrJson(
				invocation.json === true,
				(line) => write({ out: line }),
				(line) => write({ err: line })
			);
			try {
				return await runCommand({ account, net, invocation, out: remoteOut });
			} catch (error) {
				if (error instanceof KithCliError) {
					write({ err: `kith: ${error.message}` });
					return error.code;
				}
				throw error;
			}
		});
		queue = run.catch(() => undefined);
		return run;
	});
	out.note('kith serve: ready');
	await new Promise<void>((resolve) => {
		process.once('SIGINT', resolve);
		process.once('SIGTERM', resolve);
	});
	clearInterval(scan);
	await new Promise<void>((resolve) => control.close(() => resolve()));
	return 0;
}
