import jsQR from 'jsqr';
import { describe, expect, it } from 'vitest';
import { inviteQrDataUrl, inviteQrSvg } from './qr';
import { makeInvite } from './test-support';

interface Grid {
	/** Modules per side, quiet zone included. */
	size: number;
	dark: boolean[][];
}

/**
 * Read the module grid back out of the SVG: the viewBox gives the size, the
 * path's closed outlines (absolute "M x yL x y…Z") give the dark area, tested
 * at each module's centre with the even-odd rule. Only what the SVG says is
 * used, so a decode of this grid tests the markup an <img> would show.
 */
function gridOf(svg: string): Grid {
	const viewBox = /viewBox="(-?\d+) (-?\d+) (\d+) (\d+)"/.exec(svg);
	const path = /<path d="([^"]*)"/.exec(svg);
	if (!viewBox || !path) throw new Error('unexpected SVG shape');
	const [x0, y0, size] = [Number(viewBox[1]), Number(viewBox[2]), Number(viewBox[3])];
	// Scanline, even-odd: per row, the x of every vertical edge the row's centre line crosses.
	const crossings: number[][] = Array.from({ length: size }, () => []);
	for (const outline of (path[1] as string).matchAll(/M([^Z]*)Z/g)) {
		const points = (outline[1] as string).split('L').map((p) => p.trim().split(/\s+/).map(Number));
		points.forEach(([ax = 0, ay = 0], i) => {
			const [bx = 0, by = 0] = points[(i + 1) % points.length] ?? [];
			if (ax !== bx) return;
			for (let y = Math.min(ay, by); y < Math.max(ay, by); y++) crossings[y - y0]?.push(ax);
		});
	}
	const dark = crossings.map((xs) =>
		Array.from({ length: size }, (_, col) => xs.filter((x) => x > x0 + col + 0.5).length % 2 === 1)
	);
	return { size, dark };
}

function decode(grid: Grid, pixelsPerModule = 4): string | undefined {
	const side = grid.size * pixelsPerModule;
	const rgba = new Uint8ClampedArray(side * side * 4).fill(255);
	for (let y = 0; y < side; y++) {
		for (let x = 0; x < side; x++) {
			if (grid.dark[Math.floor(y / pixelsPerModule)]?.[Math.floor(x / pixelsPerModule)]) {
				const at = (y * side + x) * 4;
				rgba[at] = rgba[at + 1] = rgba[at + 2] = 0;
			}
		}
	}
	return jsQR(rgba, side, side)?.data;
}

describe('inviteQrSvg', () => {
	it('draws a real invite link as an SVG that decodes back to the link', async () => {
		const { link } = await makeInvite();
		const svg = inviteQrSvg(link);
		expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
		expect(decode(gridOf(svg))).toBe(link);
	});

	it('draws a 1 KB link, which decodes back too', () => {
		const link = `https://kith.example/join#${'AbC-_9.'.repeat(143)}`.slice(0, 1024);
		expect(link.length).toBe(1024);
		const svg = inviteQrSvg(link);
		expect(svg).toContain('<svg');
		expect(svg).toContain('<path d="M');
		expect(decode(gridOf(svg))).toBe(link);
	});

	it('has a quiet zone and an opaque white background', async () => {
		const svg = inviteQrSvg((await makeInvite()).link);
		expect(svg).toMatch(/viewBox="-4 -4 /);
		expect(svg).toMatch(/<rect [^>]*fill="#fff"/);
		const grid = gridOf(svg);
		for (let i = 0; i < grid.size; i++) {
			for (const [row, col] of [
				[0, i],
				[i, 0],
				[3, i],
				[grid.size - 1, i]
			] as const) {
				expect(grid.dark[row]?.[col]).toBe(false);
			}
		}
	});

	it('grows with its input', () => {
		const small = gridOf(inviteQrSvg('https://kith.example/join#abc'));
		const large = gridOf(inviteQrSvg(`https://kith.example/join#${'a'.repeat(900)}`));
		expect(large.size).toBeGreaterThan(small.size);
	});

	it('refuses a link too long for any QR code with RangeError', () => {
		expect(() => inviteQrSvg('x'.repeat(5000))).toThrow(RangeError);
	});
});

describe('inviteQrDataUrl', () => {
	it('is a base64 SVG data URL of the same picture, for <img src>', async () => {
		const { link } = await makeInvite();
		const url = inviteQrDataUrl(link);
		const prefix = 'data:image/svg+xml;base64,';
		expect(url.startsWith(prefix)).toBe(true);
		const svg = atob(url.slice(prefix.length));
		expect(svg).toContain(inviteQrSvg(link));
	});
});
