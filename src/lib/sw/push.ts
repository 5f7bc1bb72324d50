/**
 * Push notifications in the service worker (docs/protocol.md, "Push (v1)").
 *
 * A push carries one notification envelope, which the relay could not read.
 * The worker opens it with the room's notification key (src/lib/push/keys.ts
 * says where those are kept) and shows the sender and a preview, one
 * notification per conversation (its tag) with a count of what arrived since
 * it was last read. Without the key (a locked profile), with "Private
 * notifications" on, or for anything that does not open, the notification
 * says only that there is a new message: never garbage, never the relay's
 * bytes. A click opens the conversation (or Kith).
 */
import { fromBase64Url, type RoomId, type SecretKey } from '../crypto';
import {
	forgetState,
	loadState,
	openNotification,
	parsePushMessage,
	persistState,
	type NotificationBody,
	type PushState
} from '../push';
import type { ServiceWorkerScope, WorkerExtendableEvent, WorkerModule } from './types';

/** The tag of notifications whose conversation is unknown. */
export const GENERIC_TAG = 'kith';
const GENERIC_TITLE = 'Kith';
const ICON = '/icons/icon-192.png';

interface PushEvent extends WorkerExtendableEvent {
	readonly data: { arrayBuffer(): ArrayBuffer } | null;
}

interface ShownNotification {
	readonly tag: string;
	readonly data: unknown;
	close(): void;
}

interface NotificationClickEvent extends WorkerExtendableEvent {
	readonly notification: ShownNotification;
}

interface WindowClientLike {
	readonly url: string;
	focus(): Promise<unknown>;
	navigate(url: string): Promise<unknown>;
}

interface PushScope {
	addEventListener(
		type: 'message',
		listener: (event: WorkerExtendableEvent & { data: unknown }) => void
	): void;
	addEventListener(type: 'push', listener: (event: PushEvent) => void): void;
	addEventListener(
		type: 'notificationclick',
		listener: (event: NotificationClickEvent) => void
	): void;
	readonly registration: {
		readonly scope: string;
		showNotification(title: string, options: NotificationOptions): Promise<void>;
		getNotifications(filter?: { tag?: string }): Promise<ShownNotification[]>;
	};
	readonly clients: {
		matchAll(options: {
			type: 'window';
			includeUncontrolled: boolean;
		}): Promise<WindowClientLike[]>;
		openWindow(url: string): Promise<unknown>;
	};
}

interface NotificationData {
	conversation: string | null;
	count: number;
}

function dataOf(value: unknown): NotificationData {
	const data = value as Partial<NotificationData> | null;
	return {
		conversation: typeof data?.conversation === 'string' ? data.conversation : null,
		count: typeof data?.count === 'number' && data.count > 0 ? data.count : 1
	};
}

export function push(): WorkerModule {
	return (base: ServiceWorkerScope) => {
		const scope = base as unknown as PushScope;
		/** Set by a page (unlocked); else read from storage (profiles without a passphrase). */
		let memory: PushState | null = null;

		const currentState = async (): Promise<PushState | null> => memory ?? (await loadState());

		scope.addEventListener('message', (event) => {
			const message = parsePushMessage(event.data);
			if (!message) return;
			if (message.type === 'kith-push-forget') {
				memory = null;
				event.waitUntil(forgetState());
				return;
			}
			memory = message.state;
			event.waitUntil(message.persist ? persistState(message.state) : forgetState());
		});

		scope.addEventListener('push', (event) => {
			const bytes = event.data ? payloadBytes(new Uint8Array(event.data.arrayBuffer())) : null;
			event.waitUntil(
				currentState()
					.then((state) => show(scope, state, bytes))
					.catch((error: unknown) => {
						console.warn('kith:push could not show a notification', error);
						return showGeneric(scope, null);
					})
			);
		});

		scope.addEventListener('notificationclick', (event) => {
			const { conversation } = dataOf(event.notification.data);
			event.notification.close();
			event.waitUntil(openApp(scope, conversation));
		});
	};
}

async function show(scope: PushScope, state: PushState | null, bytes: Uint8Array | null) {
	if (!state || !bytes) return showGeneric(scope, null);
	let body: NotificationBody & { roomId: RoomId };
	try {
		body = await openNotification(bytes, (roomId, epoch) => keyFor(state, roomId, epoch));
	} catch {
		return showGeneric(scope, null);
	}
	// The room must be one of this device's, and the envelope must name its conversation.
	const room = state.rooms.find((r) => r.room === body.roomId);
	if (!room || room.conversation !== body.c) return showGeneric(scope, null);
	if (state.private) return showGeneric(scope, room.conversation);
	const count = (await previousCount(scope, room.conversation)) + 1;
	const title = count > 1 ? `${room.name} (${count} new messages)` : room.name;
	await scope.registration.showNotification(title, {
		body: `${body.n}: ${body.p}`,
		tag: room.conversation,
		icon: ICON,
		data: { conversation: room.conversation, count } satisfies NotificationData
	});
}

/**
 * The envelope a push carries: its bytes (a v1 envelope starts with 0x01), or
 * the same as base64url text (which a push sent through a text-only channel,
 * such as DevTools' deliverPushMessage, carries). Anything else is null.
 */
export function payloadBytes(data: Uint8Array): Uint8Array | null {
	if (data.length === 0) return null;
	if (data[0] === 1) return data;
	const text = new TextDecoder().decode(data).trim();
	if (!/^[A-Za-z0-9_-]+$/.test(text)) return null;
	try {
		return fromBase64Url(text);
	} catch {
		return null;
	}
}

function keyFor(state: PushState, roomId: RoomId, epoch: number): SecretKey | undefined {
	const key = state.rooms.find((r) => r.room === roomId)?.keys[String(epoch)];
	return key ? (fromBase64Url(key) as SecretKey) : undefined;
}

/** A notification with no content: the conversation is named only through the click. */
async function showGeneric(scope: PushScope, conversation: string | null): Promise<void> {
	const tag = conversation ?? GENERIC_TAG;
	const count = (await previousCount(scope, tag)) + 1;
	await scope.registration.showNotification(GENERIC_TITLE, {
		body: count > 1 ? `${count} new messages` : 'New message',
		tag,
		icon: ICON,
		data: { conversation, count } satisfies NotificationData
	});
}

async function previousCount(scope: PushScope, tag: string): Promise<number> {
	const shown = await scope.registration.getNotifications({ tag });
	return shown.reduce((sum, n) => Math.max(sum, dataOf(n.data).count), 0);
}

async function openApp(scope: PushScope, conversation: string | null): Promise<void> {
	const target = new URL(
		conversation ? `c/${encodeURIComponent(conversation)}` : '.',
		scope.registration.scope
	).href;
	const windows = await scope.clients.matchAll({ type: 'window', includeUncontrolled: true });
	const open = windows[0];
	if (open) {
		// Focus may be refused (the window is closing, or no click allowed it):
		// the conversation still opens in it.
		await open.focus().catch(() => undefined);
		if (open.url !== target) await open.navigate(target).catch(() => undefined);
		return;
	}
	await scope.clients.openWindow(target);
}
