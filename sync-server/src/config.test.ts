import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULTS, loadConfig } from './config.ts';

const cwd = '/srv/kith';

function problemsOf(env: Record<string, string>): readonly string[] {
	try {
		loadConfig(env, cwd);
	} catch (err) {
		expect((err as Error).name).toBe(ConfigError.NAME);
		return (err as ConfigError).problems;
	}
	throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
	it('has defaults for everything', () => {
		expect(loadConfig({}, cwd)).toEqual({
			host: '127.0.0.1',
			port: 8787,
			dataDir: '/srv/kith/data',
			staticDir: '/srv/kith/build',
			shutdownTimeoutMs: 10_000,
			logLevel: 'info',
			maxFrameBytes: 2 * 1024 * 1024,
			rateMsgsPerSec: 200,
			rateBytesPerSec: 8 * 1024 * 1024,
			roomQuotaBytes: 512 * 1024 * 1024,
			roomIdleMs: 60_000,
			retainMaxDays: 30,
			vapidSubject: 'mailto:admin@localhost',
			pushHosts: DEFAULTS.pushHosts
		});
		expect(DEFAULTS.port).toBe(8787);
	});

	it('reads every variable', () => {
		const config = loadConfig(
			{
				HOST: '0.0.0.0',
				PORT: '9000',
				KITH_DATA: '/var/lib/kith',
				KITH_STATIC: 'dist/app',
				KITH_SHUTDOWN_TIMEOUT_MS: '2500',
				LOG_LEVEL: 'DEBUG',
				KITH_MAX_FRAME_BYTES: '65536',
				KITH_RATE_MSGS_PER_SEC: '50',
				KITH_RATE_BYTES_PER_SEC: '100000',
				KITH_ROOM_QUOTA_BYTES: '1000000',
				KITH_ROOM_IDLE_MS: '0',
				KITH_RETAIN_MAX_DAYS: '7',
				KITH_VAPID_SUBJECT: 'mailto:ops@example.org',
				KITH_PUSH_HOSTS: 'Push.Example.org, .push.example.net'
			},
			cwd
		);
		expect(config).toEqual({
			host: '0.0.0.0',
			port: 9000,
			dataDir: '/var/lib/kith',
			staticDir: '/srv/kith/dist/app',
			shutdownTimeoutMs: 2500,
			logLevel: 'debug',
			maxFrameBytes: 65_536,
			rateMsgsPerSec: 50,
			rateBytesPerSec: 100_000,
			roomQuotaBytes: 1_000_000,
			roomIdleMs: 0,
			retainMaxDays: 7,
			vapidSubject: 'mailto:ops@example.org',
			pushHosts: ['push.example.org', '.push.example.net']
		});
	});

	it('treats empty values as unset and trims whitespace', () => {
		expect(loadConfig({ PORT: '', HOST: '  ', LOG_LEVEL: '' }, cwd).port).toBe(8787);
		expect(loadConfig({ PORT: ' 8080 ' }, cwd).port).toBe(8080);
	});

	it('accepts port 0 (any free port) and IPv6 hosts', () => {
		expect(loadConfig({ PORT: '0', HOST: '::' }, cwd)).toMatchObject({ port: 0, host: '::' });
	});

	it.each([
		['PORT', 'abc'],
		['PORT', '-1'],
		['PORT', '65536'],
		['PORT', '80.5'],
		['PORT', '1e3'],
		['PORT', '0x50'],
		['HOST', 'http://localhost'],
		['HOST', '[::1]'],
		['HOST', 'local host'],
		['KITH_SHUTDOWN_TIMEOUT_MS', '-5'],
		['KITH_SHUTDOWN_TIMEOUT_MS', 'soon'],
		['LOG_LEVEL', 'verbose'],
		['KITH_MAX_FRAME_BYTES', '100'],
		['KITH_RATE_MSGS_PER_SEC', '0'],
		['KITH_RATE_BYTES_PER_SEC', 'fast'],
		['KITH_ROOM_QUOTA_BYTES', '1.5e9'],
		['KITH_ROOM_IDLE_MS', '-1'],
		['KITH_RETAIN_MAX_DAYS', '0'],
		['KITH_RETAIN_MAX_DAYS', '3651'],
		['KITH_VAPID_SUBJECT', 'admin@example.org'],
		['KITH_VAPID_SUBJECT', 'http://example.org'],
		['KITH_VAPID_SUBJECT', 'mailto:nobody'],
		['KITH_PUSH_HOSTS', 'https://fcm.googleapis.com'],
		['KITH_PUSH_HOSTS', ',,'],
		['KITH_PUSH_HOSTS', 'push host']
	])('rejects %s=%s, naming the variable and the value', (name, value) => {
		const problems = problemsOf({ [name]: value });
		expect(problems).toHaveLength(1);
		expect(problems[0]).toContain(name);
		expect(problems[0]).toContain(JSON.stringify(value));
	});

	it('reports every bad variable at once', () => {
		const problems = problemsOf({ PORT: 'x', LOG_LEVEL: 'loud', HOST: 'https://a' });
		expect(problems).toHaveLength(3);
		expect(() => loadConfig({ PORT: 'x' }, cwd)).toThrow(
			/^Invalid configuration:\n {2}- PORT must be a whole number from 0 to 65535/
		);
	});
});
