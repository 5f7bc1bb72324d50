/**
 * A tiny preview of an image for its manifest: a JPEG of at most 48 px on the
 * long side, as a data URL (a few KB), so the message shows something at once,
 * before the file itself has arrived. Also the image's size, for layout.
 */
import { MAX_PREVIEW_CHARS } from './manifest';

const SIDE = 48;

export async function imageInfo(
	file: Blob
): Promise<{ width: number; height: number; preview?: string } | null> {
	if (typeof createImageBitmap !== 'function' || typeof OffscreenCanvas !== 'function') return null;
	let bitmap: ImageBitmap;
	try {
		bitmap = await createImageBitmap(file);
	} catch {
		return null; // not an image the browser can decode: sent as a plain file
	}
	const { width, height } = bitmap;
	try {
		const scale = Math.min(1, SIDE / Math.max(width, height));
		const w = Math.max(1, Math.round(width * scale));
		const h = Math.max(1, Math.round(height * scale));
		const canvas = new OffscreenCanvas(w, h);
		const context = canvas.getContext('2d');
		if (!context) return { width, height };
		context.drawImage(bitmap, 0, 0, w, h);
		const jpeg = await canvas.convertToBlob({ type: 'image/jpeg', quality: 0.6 });
		const bytes = new Uint8Array(await jpeg.arrayBuffer());
		let binary = '';
		for (const byte of bytes) binary += String.fromCharCode(byte);
		const preview = `data:image/jpeg;base64,${btoa(binary)}`;
		return preview.length <= MAX_PREVIEW_CHARS ? { width, height, preview } : { width, height };
	} finally {
		bitmap.close();
	}
}
