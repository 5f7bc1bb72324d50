/** Helpers shared by the crypto and identity tests. Test-only; nothing in the app imports it. */

export const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
export const fromHex = (text: string) => new Uint8Array(Buffer.from(text, 'hex'));

/** The `name` of the error `promise` rejects with, or 'resolved'. */
export async function nameOf(promise: Promise<unknown>): Promise<string> {
	try {
		await promise;
	} catch (error) {
		return (error as Error).name;
	}
	return 'resolved';
}
