/**
 * What the UI sees of the app: plain data and a few verbs. No Yjs, no
 * Automerge, no key material crosses this line (STYLE: CRDT types never leak
 * into UI code).
 */
import type { FileManifest } from '../media/manifest';
import type { MediaManager } from '../media/media.svelte';
import type { ConversationId, RoomId } from '../crypto';

/** 'erased': another tab signed this device out and erased it; this one stopped. */
export type Phase =
	| 'starting'
	| 'onboarding'
	| 'locked'
	| 'ready'
	| 'failed'
	| 'erased'
	/** Another device of the account removed this one (Settings → Devices). */
	| 'removed';

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
	/** Pinned to the top of the list (the list puts pinned ones first). */
	pinned: boolean;
	/** Archived: shown under "Archived", not in the main list. */
	archived: boolean;
}

/**
 * Own-message status, from real acknowledgements only: 'Saving' until on
 * disk, 'Saved', 'Sent' (the relay stored it), 'Delivered' (every other
 * member holds it), 'Read' (every other member read it).
 */
export type MessageStatus = 'Saving' | 'Saved' | 'Sent' | 'Delivered' | 'Read';

/** The connection indicator's words. */
export type ConnectionState = 'Connected' | 'Connecting' | 'Offline';

export interface MemberView {
	user: string;
	name: string;
	role: 'owner' | 'admin' | 'member';
	/** This account. */
	you: boolean;
	/**
	 * Whether the user verified this member's safety number: 'yes', 'no', or
	 * 'changed' (verified, but their keys changed since). 'no' for the user.
	 */
	verified: 'yes' | 'no' | 'changed';
}

export interface MessageView {
	/** Stable key: author + op id. */
	key: string;
	id: string;
	authorName: string;
	mine: boolean;
	text: string;
	/** The file the message carries (its manifest, with the file key). */
	attachment?: FileManifest;
	/** Wall-clock ms of the message's HLC. */
	time: number;
	/** Own messages only; null for others'. */
	status: MessageStatus | null;
	/** Own messages in groups: names of the other members who have read it. */
	readBy: readonly string[];
	edited: boolean;
	deleted: boolean;
	/** Reactions, in order of first appearance of each emoji; none on a deleted message. */
	reactions: readonly ReactionView[];
	/** The message this one replies to, as quoted (null when it is not held here). */
	replyTo?: { id: string; authorName: string; text: string } | null;
	/** The text cut at each mention (`@Name`), when the message mentions anyone. */
	segments?: readonly { text: string; user?: string; me?: boolean }[];
	/** The message mentions the user. */
	mentionsMe?: boolean;
	/** From someone the user blocked: shown as a hidden message, without its content. */
	blocked?: boolean;
}

/** Who reacted to a message with one emoji. */
export interface ReactionView {
	emoji: string;
	/** Display names, sorted. */
	names: readonly string[];
	/** The user reacted with it. */
	mine: boolean;
}

/** A line in the timeline about the conversation itself ("Ada made Bob an admin"). */
export interface SystemLine {
	key: string;
	/** Wall-clock ms of the change. */
	time: number;
	text: string;
}

/** A message found somewhere (a mention of the user), as lists of results show it. */
export interface MentionHit {
	conversation: ConversationId;
	conversationName: string;
	/** The message's op id. */
	message: string;
	authorName: string;
	text: string;
	/** Wall-clock ms of the message. */
	time: number;
}

/** A message found by search. */
export interface SearchHit extends MentionHit {
	/** The indexed words that matched, for highlighting. */
	terms: string[];
}

/** A conversation opened in the UI. Fields are reactive ($state) in the implementation. */
export interface ConversationHandle {
	readonly id: ConversationId;
	readonly name: string;
	/** In order (HLC, id). */
	readonly messages: readonly MessageView[];
	/** Problems with this conversation's data (tampered or unreadable envelopes), for role=alert. */
	readonly problems: readonly string[];
	/** Set when this conversation could not be confirmed as the one its invitation named, for role=alert. */
	readonly unconfirmed?: string | null;
	/** True until the first screen of messages is ready. */
	readonly loading: boolean;
	/** Files: uploads, downloads and their URLs; absent without a relay. */
	readonly media?: MediaManager | null;
	/** The conversation's current room: its direct peers may have a file's chunks. */
	readonly roomId?: RoomId;
	/** Send a file (see ConversationSession.attach). */
	attach?(file: File): Promise<void>;
	readonly members: readonly MemberView[];
	/** Names of verified members whose safety number changed since they were verified. */
	readonly keyChanged?: readonly string[];
	/** Names of the other members typing now. */
	readonly typing: readonly string[];
	/** Throws MessageTooLongError (name) with a user-facing message; the caller keeps the text. */
	send(text: string, replyTo?: string): Promise<void>;
	/** Replace the text of one of the user's messages (everyone sees "Edited"). */
	edit?(id: string, text: string): Promise<void>;
	/** Whether the user is still a member; 'removed' or 'left' make the view read-only. */
	readonly standing?: 'member' | 'removed' | 'left';
	/** Remove a member and rotate the key (owners and admins only; rejects with why). */
	removeMember?(user: string): Promise<void>;
	/** Leave the conversation. */
	leave?(): Promise<void>;
	/** Make a member an admin or an admin a member (owners and admins only; rejects with why). */
	setRole?(user: string, role: 'admin' | 'member'): Promise<void>;
	/** Membership changes, oldest first, for the timeline's system lines. */
	readonly systemLines?: readonly SystemLine[];
	/** The versions of one of the user's own messages, oldest first (the author's edit history). */
	editHistory?(id: string): { text: string; time: number; edited: boolean }[];
	/** Delete one of the user's messages for everyone: its text leaves every replica's view. */
	remove?(id: string): Promise<void>;
	/** Add (on) or withdraw one's reaction `emoji` to the message with op id `id`. */
	react?(id: string, emoji: string, on: boolean): Promise<void>;
	/** The user has seen everything up to the newest message. */
	markRead(): void;
	/** The user is writing (true) or stopped (false). */
	setTyping(active: boolean): void;
}

/** Settings → "Link a device": the link, and the request once a device answers. */
export interface LinkingState {
	link: string;
	qr: string;
	expires: number;
	/** The device that opened the link and the code both screens must show. */
	request: { name: string; code: string } | null;
	state: 'waiting' | 'confirm' | 'linked' | 'expired' | 'failed';
	problem?: string;
}

/** The /link page: where this new device stands. */
export type DeviceLinkState =
	| { state: 'connecting' }
	| { state: 'confirm'; code: string }
	| { state: 'waiting'; code: string }
	| { state: 'failed'; message: string };
