/**
 * A Chromium the test owns as a process (persistent profile, DevTools on a
 * port of its choosing), so it can SIGKILL it mid-write: Playwright's own
 * launch closes browsers gracefully.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chromium, type Browser } from '@playwright/test';
import { chromiumLaunchOptions } from '../chromium';

export interface RunningChromium {
	child: ChildProcess;
	pid: number;
	browser: Browser;
	exited: Promise<void>;
}

/** Start Chromium on `userDataDir` with a DevTools port of its choosing, and connect to it. */
export async function startChromium(userDataDir: string): Promise<RunningChromium> {
	const { executablePath, args } = chromiumLaunchOptions();
	const child = spawn(
		executablePath,
		[...args, `--user-data-dir=${userDataDir}`, '--remote-debugging-port=0', 'about:blank'],
		// Its own process group, so every helper process can be cleaned up after the kill.
		{ detached: true, stdio: ['ignore', 'ignore', 'pipe'] }
	);
	const pid = child.pid;
	if (pid === undefined) throw new Error(`could not start ${executablePath}`);
	const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
	const endpoint = await new Promise<string>((resolve, reject) => {
		let seen = '';
		const timer = setTimeout(
			() => reject(new Error(`Chromium printed no DevTools endpoint in 20 s:\n${seen}`)),
			20_000
		);
		child.stderr?.setEncoding('utf8');
		child.stderr?.on('data', (chunk: string) => {
			if (seen.length < 64_000) seen += chunk;
			const match = /DevTools listening on (ws:\/\/\S+)/.exec(seen);
			if (match?.[1]) {
				clearTimeout(timer);
				resolve(match[1]);
			}
		});
		child.once('exit', (code, signal) => {
			clearTimeout(timer);
			reject(new Error(`Chromium exited early (${code ?? signal}):\n${seen}`));
		});
	});
	const browser = await chromium.connectOverCDP(endpoint);
	return { child, pid, browser, exited };
}

/** SIGKILL the browser process (no chance to flush anything), then its helpers. */
export async function killChromium(running: RunningChromium): Promise<void> {
	process.kill(running.pid, 'SIGKILL');
	await running.exited;
	try {
		process.kill(-running.pid, 'SIGKILL');
	} catch {
		// The group is already gone.
	}
}
