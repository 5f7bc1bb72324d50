import { describe, expect, it } from 'vitest';
import { createLogger, type LogLevel } from './log.ts';

function capture(level: LogLevel = 'debug') {
	const lines: string[] = [];
	const log = createLogger({
		level,
		write: (line) => lines.push(line),
		now: () => new Date('2026-01-02T03:04:05.000Z')
	});
	const records = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
	return { log, lines, records };
}

describe('logger', () => {
	it('writes one JSON object per line with time, level, msg and fields', () => {
		const { log, lines, records } = capture();
		log.info('listening', { port: 8787 });
		expect(lines).toHaveLength(1);
		expect(lines[0]).not.toContain('\n');
		expect(records()[0]).toEqual({
			time: '2026-01-02T03:04:05.000Z',
			level: 'info',
			msg: 'listening',
			port: 8787
		});
	});

	it('drops lines below its level', () => {
		const { log, records } = capture('warn');
		log.debug('a');
		log.info('b');
		log.warn('c');
		log.error('d');
		expect(records().map((r) => r.msg)).toEqual(['c', 'd']);
		const silent = capture('silent');
		silent.log.error('nothing');
		expect(silent.lines).toEqual([]);
	});

	it('adds a child logger’s fields to every line', () => {
		const { log, records } = capture();
		log.child({ component: 'relay' }).child({ room: 'r1' }).info('joined', { peers: 2 });
		expect(records()[0]).toMatchObject({ component: 'relay', room: 'r1', peers: 2 });
	});

	it('describes errors, including code and cause', () => {
		const { log, records } = capture();
		const err = Object.assign(new Error('boom', { cause: new TypeError('inner') }), {
			code: 'E_TEST'
		});
		log.error('failed', { err });
		const logged = records()[0]?.err as Record<string, unknown>;
		expect(logged).toMatchObject({ name: 'Error', message: 'boom', code: 'E_TEST' });
		expect(logged.stack).toContain('boom');
		expect(logged.cause).toMatchObject({ name: 'TypeError', message: 'inner' });
	});

	it('never writes bodies, secrets or raw bytes', () => {
		const { log, lines } = capture();
		log.info('request', {
			body: 'hello plaintext',
			headers: { authorization: 'Bearer abc', cookie: 'c=1', accept: 'x' },
			frame: new Uint8Array([1, 2, 3])
		});
		expect(lines[0]).not.toContain('plaintext');
		expect(lines[0]).not.toContain('Bearer');
		expect(lines[0]).not.toContain('c=1');
		expect(lines[0]).toContain('[3 bytes]');
		expect(lines[0]).toContain('"accept":"x"');
	});

	it('survives values JSON cannot express', () => {
		const { log, records } = capture();
		const loop: Record<string, unknown> = { a: 1 };
		loop.self = loop;
		log.info('odd', { loop, big: 10n });
		expect(records()[0]).toMatchObject({ loop: { a: 1, self: '[circular]' }, big: '10' });
	});
});
