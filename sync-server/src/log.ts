/**
 * A small structured logger: one JSON object per line on stdout, with `time`,
 * `level`, `msg` and the caller's fields. Machines read the lines; people read
 * them with `jq`.
 *
 * The relay must never log what it cannot read anyway (invariant 3): callers
 * pass metadata only — method, path, status, sizes, error codes — never a
 * request body or frame. As a backstop, fields whose names suggest content or
 * credentials are replaced with "[redacted]" wherever they appear.
 */

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type LogFields = Record<string, unknown>;

export interface Logger {
	readonly level: LogLevel;
	debug(msg: string, fields?: LogFields): void;
	info(msg: string, fields?: LogFields): void;
	warn(msg: string, fields?: LogFields): void;
	error(msg: string, fields?: LogFields): void;
	/** A logger that adds `fields` to every line, e.g. `{ component: 'relay' }`. */
	child(fields: LogFields): Logger;
}

export interface LoggerOptions {
	level?: LogLevel;
	/** Fields on every line. */
	fields?: LogFields;
	/** Where a finished line (without newline) goes; stdout by default. */
	write?: (line: string) => void;
	/** Clock, for tests. */
	now?: () => Date;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

const REDACTED_KEYS = new Set([
	'body',
	'payload',
	'plaintext',
	'authorization',
	'cookie',
	'password',
	'passphrase',
	'secret',
	'key',
	'privateKey'
]);

export function isLogLevel(value: string): value is LogLevel {
	return (LOG_LEVELS as readonly string[]).includes(value);
}

export function createLogger(options: LoggerOptions = {}): Logger {
	const level = options.level ?? 'info';
	const write = options.write ?? ((line: string) => void process.stdout.write(line + '\n'));
	const now = options.now ?? (() => new Date());
	return makeLogger(level, options.fields ?? {}, write, now);
}

/** A logger that drops everything; the default where a caller passes none. */
export const silentLogger: Logger = createLogger({ level: 'silent', write: () => {} });

function makeLogger(
	level: LogLevel,
	base: LogFields,
	write: (line: string) => void,
	now: () => Date
): Logger {
	const threshold = RANK[level];
	const emit = (lineLevel: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields) => {
		if (RANK[lineLevel] < threshold) return;
		const record = { time: now().toISOString(), level: lineLevel, msg, ...base, ...fields };
		write(serialize(record));
	};
	return {
		level,
		debug: (msg, fields) => emit('debug', msg, fields),
		info: (msg, fields) => emit('info', msg, fields),
		warn: (msg, fields) => emit('warn', msg, fields),
		error: (msg, fields) => emit('error', msg, fields),
		child: (fields) => makeLogger(level, { ...base, ...fields }, write, now)
	};
}

function serialize(record: LogFields): string {
	const seen = new WeakSet<object>();
	try {
		return JSON.stringify(record, (key, value: unknown) => {
			if (key !== '' && REDACTED_KEYS.has(key)) return '[redacted]';
			if (typeof value === 'bigint') return value.toString();
			if (value instanceof Error) return describeError(value);
			if (value instanceof Uint8Array) return `[${value.byteLength} bytes]`;
			if (typeof value === 'object' && value !== null) {
				if (seen.has(value)) return '[circular]';
				seen.add(value);
			}
			return value;
		});
	} catch (err) {
		// A logger that throws would turn a log line into an outage.
		return JSON.stringify({
			time: record.time,
			level: record.level,
			msg: record.msg,
			logError: String(err)
		});
	}
}

function describeError(err: Error): LogFields {
	const out: LogFields = { name: err.name, message: err.message };
	const code = (err as { code?: unknown }).code;
	if (typeof code === 'string' || typeof code === 'number') out.code = code;
	if (err.stack) out.stack = err.stack;
	if (err.cause !== undefined) out.cause = err.cause;
	return out;
}
