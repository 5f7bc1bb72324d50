/**
 * What the UI sees of the app: plain data and a few verbs. No Yjs, no
 * Automerge, no key material crosses this line (STYLE: CRDT types never leak
 * into UI code).
 */
import type { ConversationId } from '../crypto';

export type Phase = 'starting' | 'onboarding' | 'locked' | 'ready' | 'failed';

export type ConversationKind = 'notes' | 'group';

export interface ConversationSummary {
	id: ConversationId;
	name: string;
	kind: ConversationKind;
	/** ms since epoch of the last message, or of creation when empty. */
	lastActivity: number;
	unread: number;
	/** Short plaintext preview of the last message ('' when none). */
	preview: string;
}

/** Own-message status, from real acknowledgements only. Later: 'Sent', 'Delivered', 'Read'. */
export type MessageStatus = 'Saving' | 'Saved';

export interface MessageView {
	/** Stable key: author + op id. */
	key: string;
	id: string;
	authorName: string;
	mine: boolean;
	text: string;
	/** Wall-clock ms of the message's HLC. */
	time: number;
	/** Own messages only; null for others'. */
	status: MessageStatus | null;
	edited: boolean;
	deleted: boolean;
}

/** A conversation opened in the UI. Fields are reactive ($state) in the implementation. */
export interface ConversationHandle {
	readonly id: ConversationId;
	readonly name: string;
	/** In order (HLC, id). */
	readonly messages: readonly MessageView[];
	/** Problems with this conversation's data (tampered or unreadable envelopes), for role=alert. */
	readonly problems: readonly string[];
	/** True until the first screen of messages is ready. */
	readonly loading: boolean;
	/** Throws MessageTooLongError (name) with a user-facing message; the caller keeps the text. */
	send(text: string): Promise<void>;
	/** The user has seen everything up to the newest message. */
	markRead(): void;
}
