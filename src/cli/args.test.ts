import { describe, expect, it } from 'vitest';
import { defaultDataDir, parseInvocation } from './args';

describe('kith arguments', () => {
	it('takes a conversation id that begins with "-" as the conversation', () => {
		const send = parseInvocation(['send', '-abcdefghijklmnopqrstu', 'hi', '--timeout', '2']);
		expect(send).toMatchObject({
			command: 'send',
			args: ['-abcdefghijklmnopqrstu', 'hi'],
			timeout: 2
		});
		expect(parseInvocation(['read', '--bcdefghijklmnopqrstu'])?.args).toEqual([
			'--bcdefghijklmnopqrstu'
		]);
	});

	it('refuses what it does not know, with a reason (exit 1)', () => {
		const refused = (argv: string[]) => {
			try {
				parseInvocation(argv);
			} catch (error) {
				return error as { code: number; message: string };
			}
			throw new Error(`accepted: ${argv.join(' ')}`);
		};
		expect(refused(['list', '--bogus'])).toMatchObject({ code: 1 });
		expect(refused(['read', 'a', 'b']).message).toBe('usage: kith read CONVERSATION');
		expect(refused(['init']).message).toBe('usage: kith init --name NAME');
		expect(refused(['new', 'x', '--timeout', '3']).message).toBe('kith new takes no --timeout');
		expect(refused(['send', 'x', 'y', '--timeout', '-1']).code).toBe(1);
		expect(refused(['send', 'x', 'y', '--webrtc-port', '1']).message).toBe(
			'kith send takes no --webrtc-port'
		);
		for (const port of ['-1', '65536', 'x', '1.5', '']) {
			expect(refused(['serve', '--webrtc-port', port]).code).toBe(1);
		}
	});

	it('serve takes --webrtc-port (default 0: any free port)', () => {
		expect(parseInvocation(['serve'])?.webrtcPort).toBeNull();
		expect(parseInvocation(['serve', '--webrtc-port', '0'])?.webrtcPort).toBe(0);
		expect(parseInvocation(['serve', '--webrtc-port', '9091'])?.webrtcPort).toBe(9091);
	});

	it('--data defaults under XDG_DATA_HOME, else ~/.local/share', () => {
		expect(defaultDataDir({ XDG_DATA_HOME: '/xdg' })).toBe('/xdg/kith');
		expect(defaultDataDir({})).toMatch(/\/\.local\/share\/kith$/);
		expect(parseInvocation(['--help'])).toBeNull();
	});
});
