/**
 * The page's side of push (docs/protocol.md, "Push (v1)"): subscribe with
 * the Push API, register the subscription with the relay for this device's
 * rooms (each proven with the room's access capability, as a relay
 * connection is), hand the service worker the notification keys, and close a
 * conversation's notifications once it is read.
 */
import { fromBase64Url, toBase64Url, type RoomId } from '../crypto';
import { challengeMessage, deriveRoomCapability } from '../sync';
import { notifyKeyFor } from './notification';
import type { PushMessage, PushState } from './keys';

export class PushError extends Error {
	static readonly NAME = 'PushError';
	override name = PushError.NAME;
}

/** A room this device holds, as push needs it. */
export interface PushRoomInput {
	roomId: RoomId;
	conversation: string;
	name: string;
	/** The room's current epoch and its key: the relay proof and the notification keys. */
	epoch: number;
	keys: ReadonlyMap<number, Uint8Array>;
	muted: boolean;
}

const READY_TIMEOUT_MS = 10_000;
/** Registrations tried, each leaving out one more room the relay refused. */
const MAX_REGISTER_ATTEMPTS = 8;

export function pushSupported(): boolean {
	return (
		typeof navigator !== 'undefined' &&
		'serviceWorker' in navigator &&
		typeof window !== 'undefined' &&
		'PushManager' in window &&
		'Notification' in window
	);
}

function endpoint(relayUrl: string, path: string): string {
	return new URL(path, relayUrl.endsWith('/') ? relayUrl : `${relayUrl}/`).toString();
}

async function workerRegistration(): Promise<ServiceWorkerRegistration> {
	if (!pushSupported()) {
		throw new PushError('This browser cannot show notifications from Kith.');
	}
	const registration = await Promise.race([
		navigator.serviceWorker.ready,
		new Promise<null>((resolve) => setTimeout(() => resolve(null), READY_TIMEOUT_MS))
	]);
	if (!registration) {
		throw new PushError('Notifications need Kith’s service worker, which is not running.');
	}
	return registration;
}

/** Ask for permission and subscribe (or reuse the subscription this browser has). */
export async function subscribe(relayUrl: string): Promise<PushSubscriptionJSON> {
	const registration = await workerRegistration();
	const permission = await Notification.requestPermission();
	if (permission !== 'granted') {
		throw new PushError(
			'Notifications are blocked for Kith in this browser. Allow them in the site settings, then try again.'
		);
	}
	const existing = await registration.pushManager.getSubscription();
	if (existing) return existing.toJSON();
	const response = await fetch(endpoint(relayUrl, 'push/key'), { cache: 'no-store' });
	if (!response.ok) throw new PushError('The relay does not offer push notifications.');
	const { publicKey } = (await response.json()) as { publicKey?: unknown };
	if (typeof publicKey !== 'string') throw new PushError('The relay’s push key is malformed.');
	try {
		const subscription = await registration.pushManager.subscribe({
			userVisibleOnly: true,
			applicationServerKey: fromBase64Url(publicKey) as Uint8Array<ArrayBuffer>
		});
		return subscription.toJSON();
	} catch (cause) {
		throw new PushError('The browser’s push service could not be reached. Try again later.', {
			cause
		});
	}
}

/** The subscription this browser holds now, if any. */
export async function currentSubscription(): Promise<PushSubscriptionJSON | null> {
	if (!pushSupported()) return null;
	const registration = await navigator.serviceWorker.getRegistration();
	const subscription = await registration?.pushManager.getSubscription();
	return subscription?.toJSON() ?? null;
}

/**
 * Register (replace) the subscription's rooms at the relay, each with a fresh
 * access proof. A room the relay refuses (e.g. one it has never seen: a
 * conversation not yet synced) is left out and the rest registered again.
 * Returns how many rooms the relay refused.
 */
export async function register(
	relayUrl: string,
	subscription: PushSubscriptionJSON,
	device: string,
	rooms: readonly PushRoomInput[]
): Promise<number> {
	let remaining = rooms.filter((room) => room.keys.has(room.epoch));
	for (let attempt = 0; attempt < MAX_REGISTER_ATTEMPTS; attempt++) {
		const proofs = await Promise.all(remaining.map((room) => prove(relayUrl, room)));
		const response = await fetch(endpoint(relayUrl, 'push/subscription'), {
			method: 'PUT',
			headers: { 'content-type': 'application/json' },
			body: JSON.stringify({
				subscription: { endpoint: subscription.endpoint, keys: subscription.keys },
				device,
				rooms: proofs
			})
		});
		if (response.ok) return rooms.length - remaining.length;
		const detail = (await response.json().catch(() => ({}))) as {
			message?: string;
			room?: string;
		};
		const refused = response.status === 403 ? detail.room : undefined;
		if (refused && remaining.some((room) => room.roomId === refused)) {
			console.warn('kith:push the relay refused a room; registering the others', detail);
			remaining = remaining.filter((room) => room.roomId !== refused);
			continue;
		}
		throw new PushError(
			`The relay did not take the notification settings: ${detail.message ?? response.status}`
		);
	}
	throw new PushError('The relay did not take the notification settings. Try again later.');
}

async function prove(relayUrl: string, room: PushRoomInput) {
	const key = room.keys.get(room.epoch);
	if (!key) throw new PushError('No key for a conversation: refusing to register it.');
	const capability = await deriveRoomCapability(key, room.roomId);
	const url = new URL(endpoint(relayUrl, 'sync/challenge'));
	url.searchParams.set('room', room.roomId);
	const response = await fetch(url, { cache: 'no-store' });
	if (!response.ok) throw new PushError(`The relay refused a challenge (${response.status}).`);
	const { nonce } = (await response.json()) as { nonce: string };
	const sig = await capability.sign(challengeMessage(room.roomId, nonce));
	return {
		room: room.roomId,
		cap: toBase64Url(capability.publicKey),
		nonce,
		sig: toBase64Url(sig),
		muted: room.muted
	};
}

/**
 * Drop the subscription at the relay and in the browser. Resolves whether
 * the relay confirmed it (true too when there was nothing to drop); when it
 * could not be reached, the browser's subscription is still dropped, and the
 * relay forgets it when the push service reports it gone.
 */
export async function unsubscribe(relayUrl: string): Promise<boolean> {
	if (!pushSupported()) return true;
	const registration = await navigator.serviceWorker.getRegistration();
	const subscription = await registration?.pushManager.getSubscription();
	if (!subscription) return true;
	const confirmed = await fetch(endpoint(relayUrl, 'push/subscription'), {
		method: 'DELETE',
		headers: { 'content-type': 'application/json' },
		body: JSON.stringify({ endpoint: subscription.endpoint })
	}).then(
		(response) => response.ok,
		(error: unknown) => {
			console.warn('kith:push could not reach the relay', error);
			return false;
		}
	);
	await subscription.unsubscribe().catch(() => false);
	return confirmed;
}

/** The notification keys and names the service worker needs (never the epoch keys). */
export function pushState(rooms: readonly PushRoomInput[], privateMode: boolean): PushState {
	return {
		private: privateMode,
		rooms: rooms.map((room) => ({
			room: room.roomId,
			keys: Object.fromEntries(
				[...room.keys].map(([epoch, key]) => [
					String(epoch),
					toBase64Url(notifyKeyFor(key, room.roomId))
				])
			),
			conversation: room.conversation,
			name: room.name.slice(0, 100)
		}))
	};
}

/** Post to the active service worker (if there is one). */
export async function tellWorker(message: PushMessage): Promise<void> {
	if (!pushSupported()) return;
	const registration = await navigator.serviceWorker.getRegistration();
	registration?.active?.postMessage(message);
}

/** Close the notifications of a conversation (it was read here or on another device). */
export async function closeNotifications(conversation: string): Promise<void> {
	if (!pushSupported()) return;
	const registration = await navigator.serviceWorker.getRegistration();
	if (!registration) return;
	for (const n of await registration.getNotifications({ tag: conversation })) n.close();
}
