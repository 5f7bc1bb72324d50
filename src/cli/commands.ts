/**
 * What each `kith` command does, given an open account. The same functions
 * run in a one-off process (which opens the data dir) and inside `kith
 * serve` (asked over its socket), so both behave alike.
 */
import type { Message } from '../lib/conversation';
import type { NodeAccount } from '../lib/node/account';
import type { NodeConversation } from '../lib/node/conversation';
import { badInput, notDelivered } from '../lib/node/errors';
import type { NodeNet } from '../lib/node/net';
import type { Invocation } from './args';

/** Where a command writes: stdout lines (text or JSON), and notes on stderr. */
export interface Output {
	readonly json: boolean;
	/** `text` null: nothing in text mode (the JSON line only). */
	line(text: string | null, json: Record<string, unknown>): void;
	note(text: string): void;
}

export interface CommandContext {
	account: NodeAccount;
	/** The network; a one-off command starts it only when it must reach someone. */
	net: NodeNet;
	invocation: Invocation;
	out: Output;
}

/** Default wait for `send` (seconds) to reach the relay or a peer. */
export const SEND_TIMEOUT_S = 10;
/** Default wait for `join` (seconds) until a member lets this device in. */
export const JOIN_TIMEOUT_S = 120;
/** How long a one-off `read --relay` waits to catch up with the relay. */
const READ_SYNC_MS = 5000;
/** App URL for invite links when neither --app-url nor --relay says it. */
export const DEFAULT_APP_URL = 'http://localhost:8787';

/** Tabs and line breaks would break the one-line format: they are written as \t, \n, \\. */
function field(text: string): string {
	return text
		.replace(/\\/g, '\\\\')
		.replace(/\t/g, '\\t')
		.replace(/\r?\n|\r/g, '\\n');
}

export function messageText(message: Message): string {
	if (message.text) return message.text;
	if (message.attachment) return `[file: ${message.attachment.name}]`;
	return '';
}

/** One message as `read` prints it (and `serve` as it arrives). */
export function writeMessage(out: Output, conversation: NodeConversation, message: Message): void {
	const time = new Date(message.hlc.wall).toISOString();
	const author = conversation.authorName(message.author);
	const text = messageText(message);
	out.line(`${time}\t${field(author)}\t${field(text)}`, {
		conversation: conversation.id,
		id: message.id,
		time,
		author,
		authorId: message.author,
		text,
		...(message.edited ? { edited: true } : {})
	});
}

export async function runCommand(ctx: CommandContext): Promise<number> {
	const { account, invocation, out } = ctx;
	const [first = '', second = ''] = invocation.args;
	switch (invocation.command) {
		case 'new': {
			const conversation = await account.createConversation(first);
			out.line(conversation.id, { id: conversation.id, name: conversation.name });
			return 0;
		}
		case 'list': {
			for (const conversation of account.conversations()) {
				await conversation.settled();
				const messages = conversation.messages();
				out.line(`${conversation.id}\t${field(conversation.name)}`, {
					id: conversation.id,
					name: conversation.name,
					kind: conversation.entry.kind,
					members: conversation.roster.members().map((m) => m.name),
					messages: messages.length
				});
			}
			return 0;
		}
		case 'read': {
			const conversation = account.find(first);
			if (invocation.relay && !ctx.net.started) {
				// A one-off read with a relay catches up with it first (briefly).
				await ctx.net.start();
				await ctx.net.waitFor(() => ctx.net.roomSynced(conversation.entry.roomId), READ_SYNC_MS);
			}
			await conversation.settled();
			for (const message of conversation.messages()) writeMessage(out, conversation, message);
			// Read, as opening the conversation in the app is: the others see "Read".
			const receipt = await conversation.markRead();
			if (receipt.length > 0 && ctx.net.started) {
				const envelopes = receipt.flatMap((id) => conversation.doc.cdoc.get(id) ?? []);
				await ctx.net.waitDelivered(conversation.entry.roomId, envelopes, READ_SYNC_MS);
			}
			return 0;
		}
		case 'invite': {
			const conversation = account.find(first);
			const appUrl = invocation.appUrl ?? invocation.relay ?? DEFAULT_APP_URL;
			const link = await account.makeInvite(conversation, appUrl);
			out.line(link, { link, conversation: conversation.id });
			return 0;
		}
		case 'send':
			return send(ctx, account.find(first), second);
		case 'join':
			return join(ctx, first);
		default:
			throw badInput(`kith ${invocation.command} cannot run here`);
	}
}

async function send(
	ctx: CommandContext,
	conversation: NodeConversation,
	text: string
): Promise<number> {
	const { net, invocation, out } = ctx;
	if (text.trim() === '') throw badInput('the message is empty');
	let ids;
	try {
		({ ids } = await conversation.send(text));
	} catch (error) {
		if (error instanceof Error && error.name === 'MessageTooLongError')
			throw badInput(error.message);
		throw error;
	}
	const envelopes = ids.flatMap((id) => {
		const bytes = conversation.doc.cdoc.get(id);
		return bytes ? [bytes] : [];
	});
	const result = { conversation: conversation.id, ids };
	// Nobody to deliver to (notes, or no other member yet) and no relay: stored is done.
	if (!conversation.othersPresent() && !invocation.relay) {
		out.line(null, { ...result, delivered: false, stored: true });
		return 0;
	}
	const timeout = invocation.timeout ?? SEND_TIMEOUT_S;
	await net.start();
	const delivered = await net.waitDelivered(conversation.entry.roomId, envelopes, timeout * 1000);
	if (!delivered) {
		throw notDelivered(
			`not delivered within ${timeout} s: the message is stored and goes out when a peer or the relay is reachable`
		);
	}
	out.line(null, { ...result, delivered: true, stored: true });
	return 0;
}

async function join(ctx: CommandContext, link: string): Promise<number> {
	const { account, net, invocation, out } = ctx;
	const invitation = await account.requestJoin(link);
	const timeout = invocation.timeout ?? JOIN_TIMEOUT_S;
	out.note(
		`Waiting for a member to let you in to "${invitation.conversation.name}" (invited by ${invitation.inviter.name})`
	);
	await account.resumeJoins();
	await net.start();
	const admitted = await net.waitFor(
		() => account.joinedBy(invitation.id) !== undefined,
		timeout * 1000
	);
	const conversation = account.joinedBy(invitation.id);
	if (!admitted || !conversation) {
		throw notDelivered(
			`not admitted within ${timeout} s: the request is kept, and kith serve goes on waiting`
		);
	}
	// Catch up with the history before handing back (read right after shows it).
	await net.waitFor(() => net.roomSynced(conversation.entry.roomId), 5000);
	await conversation.settled();
	out.line(conversation.id, { id: conversation.id, name: conversation.name });
	return 0;
}
