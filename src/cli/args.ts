/**
 * The `kith` command line, parsed with node:util parseArgs. Anything it does
 * not know is a bad argument (exit 1), never guessed at.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { badInput } from '../lib/node/errors';

export const COMMANDS = ['init', 'new', 'invite', 'join', 'list', 'send', 'read', 'serve'] as const;
export type CommandName = (typeof COMMANDS)[number];

export interface Invocation {
	command: CommandName;
	args: string[];
	data: string;
	json: boolean;
	relay: string | null;
	/** Seconds, when given. */
	timeout: number | null;
	name: string | null;
	appUrl: string | null;
	listen: string[];
	peers: string[];
	mdns: boolean;
	/**
	 * serve: the UDP port of the WebRTC-Direct listener browsers dial (0: any
	 * free one); null when not given: the port of the last serve if it is free
	 * (a browser's saved address keeps working), else any free one.
	 */
	webrtcPort: number | null;
}

/** Network options: for the commands that go online. */
const NET = ['listen', 'peer', 'no-mdns'];

/** What each command takes besides the global options: positionals, and options allowed. */
const SHAPE: Record<CommandName, { positionals: string[]; options: string[] }> = {
	init: { positionals: [], options: ['name'] },
	new: { positionals: ['NAME'], options: [] },
	invite: { positionals: ['CONVERSATION'], options: ['app-url'] },
	join: { positionals: ['INVITE_LINK'], options: ['timeout', ...NET] },
	list: { positionals: [], options: [] },
	send: { positionals: ['CONVERSATION', 'TEXT'], options: ['timeout', ...NET] },
	read: { positionals: ['CONVERSATION'], options: NET },
	serve: { positionals: [], options: [...NET, 'webrtc-port'] }
};

export const USAGE = `Usage: kith [--data DIR] [--json] [--relay URL] COMMAND ...

Commands:
  init --name NAME              create an account (prints the recovery key)
  new NAME                      create a conversation (prints its id)
  invite CONVERSATION [--app-url URL]
                                print an invite link (the browser app accepts it too)
  join INVITE_LINK [--timeout S]
                                ask to join; wait until a member lets you in
  list                          conversations: id<TAB>name
  send CONVERSATION TEXT [--timeout S]
                                store a message and send it
  read CONVERSATION             messages in order: ISO-time<TAB>author<TAB>text (marks them read)
  serve [--listen MULTIADDR]... [--peer MULTIADDR]... [--no-mdns] [--webrtc-port N]
                                stay online: sync, admit join requests, print new messages;
                                prints the addresses a browser can enter under
                                Settings → LAN peers (WebRTC-Direct on UDP port N;
                                default: the last one used if free, else any)

CONVERSATION is an id or a unique name.
Options:
  --data DIR     data dir (default: $XDG_DATA_HOME/kith or ~/.local/share/kith)
  --json         one JSON object per line
  --relay URL    also sync through a Kith relay
  --listen MULTIADDR, --peer MULTIADDR, --no-mdns
                 (serve, join, send, read) where to listen, peers to dial,
                 no LAN discovery
  KITH_PASSPHRASE  the account's passphrase (otherwise asked for in a terminal)
Exit codes: 0 done, 1 bad arguments or input, 2 not delivered before --timeout
(stored; it goes out later), 3 locked or missing data dir.`;

const ID_LIKE = /^-[A-Za-z0-9_-]{21}$/;
const HELD = '\u0000kith-positional-';
/** Every option; those past GLOBAL_OPTIONS only for the commands SHAPE gives them to. */
const OPTIONS = {
	data: { type: 'string' },
	json: { type: 'boolean' },
	relay: { type: 'string' },
	help: { type: 'boolean', short: 'h' },
	timeout: { type: 'string' },
	name: { type: 'string' },
	'app-url': { type: 'string' },
	listen: { type: 'string', multiple: true },
	peer: { type: 'string', multiple: true },
	'no-mdns': { type: 'boolean' },
	'webrtc-port': { type: 'string' }
} as const;
type OptionName = keyof typeof OPTIONS;
const GLOBAL_OPTIONS: ReadonlySet<OptionName> = new Set(['data', 'json', 'relay', 'help']);
const KNOWN_OPTIONS = new Set([...Object.keys(OPTIONS), 'h']);

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
	const base = env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
	return join(base, 'kith');
}

/** Parse argv (without node and script). Returns null for --help. Throws KithCliError(1). */
export function parseInvocation(argv: string[]): Invocation | null {
	// Conversation ids are 22 base64url characters and may begin with '-':
	// such a word is a positional, not an (unknown) option.
	const held: string[] = [];
	const words = argv.map((arg) => {
		if (!ID_LIKE.test(arg) || KNOWN_OPTIONS.has(arg.replace(/^--?/, ''))) return arg;
		held.push(arg);
		return `${HELD}${held.length - 1}`;
	});
	let parsed;
	try {
		parsed = parseArgs({
			args: words,
			allowPositionals: true,
			strict: true,
			options: OPTIONS
		});
	} catch (error) {
		throw badInput(error instanceof Error ? error.message : String(error));
	}
	const { values } = parsed;
	const positionals = parsed.positionals.map((word) =>
		word.startsWith(HELD) ? (held[Number(word.slice(HELD.length))] ?? word) : word
	);
	if (values.help || positionals[0] === 'help') return null;
	const [command, ...args] = positionals;
	if (command === undefined) throw badInput('no command given (see: kith --help)');
	if (!(COMMANDS as readonly string[]).includes(command)) {
		throw badInput(`unknown command "${command}" (see: kith --help)`);
	}
	const shape = SHAPE[command as CommandName];
	if (args.length !== shape.positionals.length) {
		throw badInput(`usage: kith ${command} ${shape.positionals.join(' ')}`.trim());
	}
	for (const option of Object.keys(OPTIONS) as OptionName[]) {
		if (GLOBAL_OPTIONS.has(option)) continue;
		if (values[option] !== undefined && !shape.options.includes(option)) {
			throw badInput(`kith ${command} takes no --${option}`);
		}
	}
	if (command === 'init' && (values.name === undefined || values.name.trim() === '')) {
		throw badInput('usage: kith init --name NAME');
	}
	let timeout: number | null = null;
	if (values.timeout !== undefined) {
		timeout = Number(values.timeout);
		if (!Number.isFinite(timeout) || timeout < 0 || values.timeout.trim() === '') {
			throw badInput(`--timeout takes a number of seconds (got "${values.timeout}")`);
		}
	}
	let webrtcPort: number | null = null;
	const port = values['webrtc-port'];
	if (port !== undefined) {
		webrtcPort = Number(port);
		if (!/^\d+$/.test(port.trim()) || !Number.isInteger(webrtcPort) || webrtcPort > 65535) {
			throw badInput(`--webrtc-port takes a UDP port, 0 to 65535 (got "${port}")`);
		}
	}
	let relay: string | null = null;
	if (values.relay !== undefined) relay = checkUrl('--relay', values.relay);
	let appUrl: string | null = null;
	if (values['app-url'] !== undefined) appUrl = checkUrl('--app-url', values['app-url']);
	if (values.data !== undefined && values.data.trim() === '')
		throw badInput('--data must name a directory');
	return {
		command: command as CommandName,
		args,
		data: resolve(values.data ?? defaultDataDir()),
		json: values.json === true,
		relay,
		timeout,
		name: values.name ?? null,
		appUrl,
		listen: values.listen ?? [],
		peers: values.peer ?? [],
		mdns: values['no-mdns'] !== true,
		webrtcPort
	};
}

function checkUrl(option: string, value: string): string {
	let url: URL;
	try {
		url = new URL(value);
	} catch {
		throw badInput(`${option} takes an http(s) URL (got "${value}")`);
	}
	if (url.protocol !== 'http:' && url.protocol !== 'https:') {
		throw badInput(`${option} takes an http(s) URL (got "${value}")`);
	}
	return value.replace(/\/+$/, '');
}
