/**
 * Which Chromium the end-to-end tests drive, and how.
 *
 * Used by playwright.config.ts and by tests that launch Chromium themselves
 * (for example to SIGKILL the browser and start it again on the same
 * profile), so every browser in the suite runs the same binary with the same
 * switches.
 *
 * Lookup order: $KITH_CHROMIUM, then Debian's /usr/bin/chromium, then
 * Playwright's own download if present. Nothing is downloaded here.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from '@playwright/test';

export const SYSTEM_CHROMIUM = '/usr/bin/chromium';

/** Quiet, deterministic, container-friendly: no sandbox (root in CI), GPU, QUIC or background traffic. */
export const CHROMIUM_ARGS: readonly string[] = [
	'--headless=new',
	'--no-sandbox',
	'--disable-gpu',
	'--disable-quic',
	'--no-first-run',
	'--disable-background-networking',
	'--disable-component-update',
	'--disable-sync',
	'--disable-dev-shm-usage'
];

export const NO_CHROMIUM_MESSAGE =
	'No Chromium found for the end-to-end tests. Install one: `sudo apt-get install -y chromium` ' +
	'(Debian/Ubuntu) or `npx playwright install chromium`, or set KITH_CHROMIUM to its path.';

/** The Chromium executable to use; throws with an install command when there is none. */
export function findChromium(env: Record<string, string | undefined> = process.env): string {
	const fromEnv = env.KITH_CHROMIUM?.trim();
	if (fromEnv) {
		if (!existsSync(fromEnv)) {
			throw new Error(`KITH_CHROMIUM is set to ${fromEnv}, which does not exist.`);
		}
		return fromEnv;
	}
	if (existsSync(SYSTEM_CHROMIUM)) return SYSTEM_CHROMIUM;
	let bundled: string | undefined;
	try {
		bundled = chromium.executablePath();
	} catch {
		bundled = undefined;
	}
	if (bundled && existsSync(bundled)) return bundled;
	throw new Error(NO_CHROMIUM_MESSAGE);
}

let cached: { executablePath: string; args: string[] } | undefined;

/** Launch options for `chromium.launch()` / `launchPersistentContext()`: executable and switches. */
export function chromiumLaunchOptions(): { executablePath: string; args: string[] } {
	cached ??= { executablePath: findChromium(), args: [...CHROMIUM_ARGS] };
	return { executablePath: cached.executablePath, args: [...cached.args] };
}

/**
 * Switches for tests where browsers on this one machine talk WebRTC: host
 * candidates on loopback, and their real addresses rather than mDNS names.
 */
export const WEBRTC_LOOPBACK_ARGS: readonly string[] = [
	'--allow-loopback-in-peer-connection',
	'--disable-features=WebRtcHideLocalIpsWithMdns'
];

/** A Chromium whose pages can talk WebRTC to each other and to peers on this machine. */
export function launchWebrtcChromium(): Promise<Browser> {
	const options = chromiumLaunchOptions();
	return chromium.launch({ ...options, args: [...options.args, ...WEBRTC_LOOPBACK_ARGS] });
}
