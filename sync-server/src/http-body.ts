/**
 * Reading JSON request bodies for the relay's small HTTP APIs (push,
 * retirement): a size limit checked before and while reading, and parse
 * errors that say which field is wrong. Both answer a BadRequest with 400.
 */
import type { IncomingMessage } from 'node:http';
import type { z } from 'zod';

/** A request body the relay cannot use; answered 400 with `message`. */
export class BadRequest extends Error {
	static readonly NAME = 'BadRequest';
	override name = BadRequest.NAME;
}

/** Reads a JSON body of at most `limit` bytes; throws BadRequest otherwise. */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
	const declared = Number(req.headers['content-length']);
	if (declared > limit) {
		req.resume();
		throw new BadRequest(`body: at most ${limit} bytes`);
	}
	const chunks: Buffer[] = [];
	let size = 0;
	for await (const chunk of req as AsyncIterable<Buffer>) {
		size += chunk.length;
		if (size > limit) {
			req.resume();
			throw new BadRequest(`body: at most ${limit} bytes`);
		}
		chunks.push(chunk);
	}
	try {
		return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
	} catch {
		throw new BadRequest('body: not JSON');
	}
}

/** Parses `raw` with `schema`, or throws BadRequest naming the first problem. */
export function parseBody<T>(schema: z.ZodType<T>, raw: unknown): T {
	const result = schema.safeParse(raw);
	if (result.success) return result.data;
	const issue = result.error.issues[0]!;
	const where = issue.path.length > 0 ? issue.path.join('.') : 'body';
	throw new BadRequest(`${where}: ${issue.message}`);
}
