/**
 * QR codes of invite links, as SVG, for a phone to scan from another screen.
 *
 * Library: lean-qr (MIT, no dependencies, ESM with its own types, ~8 KB for
 * what is imported here, no Node built-ins: it runs in the browser, the
 * service worker and Node alike). Chosen over `qrcode`, which pulls in
 * pngjs and yargs and needs separate types, and over `uqr`, which is smaller
 * but younger and less often released; lean-qr is maintained, implements
 * ISO 18004 with automatic mode selection, and its SVG output is a single
 * path (small, crisp at any size).
 *
 * Error correction is at least M (~15% damage tolerated; the library raises
 * it when the chosen size has room), since these codes are scanned off
 * screens with glare. The quiet zone is the standard 4 modules, and the
 * background is opaque white so the code also scans in dark mode.
 */
import { correction, generate } from 'lean-qr';
import { toSvgDataURL, toSvgSource } from 'lean-qr/extras/svg';

/** Pixels per module of the SVG's intrinsic size; CSS may scale it (it stays crisp). */
const SCALE = 4;
const STYLE = { on: '#000', off: '#fff', pad: 4, scale: SCALE } as const;

function encode(link: string) {
	try {
		return generate(link, { minCorrectionLevel: correction.M });
	} catch (cause) {
		throw new RangeError('This link is too long for a QR code.', { cause });
	}
}

/**
 * The QR code of `link` as SVG markup (a standalone `<svg xmlns=…>` element,
 * no XML declaration): inline it, or turn it into an `<img>` with
 * `inviteQrDataUrl`. Throws RangeError if the link does not fit a QR code.
 */
export function inviteQrSvg(link: string): string {
	return toSvgSource(encode(link), STYLE);
}

/**
 * The same code as a `data:image/svg+xml;base64,…` URL, for
 * `<img src={…} alt="QR code of the invite link">`.
 */
export function inviteQrDataUrl(link: string): string {
	return toSvgDataURL(encode(link), STYLE);
}
