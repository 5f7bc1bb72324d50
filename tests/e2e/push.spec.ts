/**
 * Push notifications, the service worker's side. `pushManager.subscribe`
 * cannot reach a push service here, so the test works at the seams: the
 * page's PushManager hands back a subscription the test made (its endpoint
 * goes nowhere), and the push itself is delivered to Ada's service worker
 * with the DevTools protocol (`ServiceWorker.deliverPushMessage`) carrying
 * the very notification envelope Bob's page sent to the relay, caught on
 * Bob's WebSocket. The relay's side (VAPID, RFC 8291 encryption, muted
 * rooms, expired subscriptions) is tested against a real push service in
 * sync-server/src/push.
 */
import { expect, test, type Browser, type BrowserContext, type Page } from '@playwright/test';
import { composer, createAccount, inviteAndJoin, openConversation, unique } from './helpers';

/** The relay message type of a notification envelope (src/lib/sync/messages.ts). */
const MESSAGE_NOTIFY = 102;

/** A PushManager that subscribes without a push service (a fixed, dead https endpoint). */
function fakePushManager(): void {
	const subscription = {
		endpoint: 'https://127.0.0.1:9/push/e2e-test-endpoint',
		options: { userVisibleOnly: true, applicationServerKey: null },
		expirationTime: null,
		getKey: () => null,
		toJSON: () => ({
			endpoint: 'https://127.0.0.1:9/push/e2e-test-endpoint',
			expirationTime: null,
			keys: {
				// A P-256 public key and 16-byte secret of the right shapes; nothing decrypts with them.
				p256dh:
					'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM',
				auth: 'tBHItJI5svbpez7KI4CCXg'
			}
		}),
		unsubscribe: async () => {
			subscribed = false;
			return true;
		}
	};
	let subscribed = false;
	PushManager.prototype.subscribe = async function () {
		subscribed = true;
		return subscription as unknown as PushSubscription;
	};
	PushManager.prototype.getSubscription = async function () {
		return subscribed ? (subscription as unknown as PushSubscription) : null;
	};
}

async function person(
	browser: Browser,
	name: string,
	passphrase?: string
): Promise<{ context: BrowserContext; page: Page }> {
	const context = await browser.newContext();
	await context.grantPermissions(['notifications']);
	await context.addInitScript(fakePushManager);
	const page = await context.newPage();
	await createAccount(page, name, passphrase);
	return { context, page };
}

/** The notification envelopes a page sends to the relay, as base64url text. */
function catchNotifications(page: Page): string[] {
	const caught: string[] = [];
	page.on('websocket', (ws) => {
		// The relay's sockets only (the libp2p node's carry encrypted frames of any first byte).
		if (!new URL(ws.url()).pathname.startsWith('/sync/')) return;
		ws.on('framesent', ({ payload }) => {
			if (typeof payload === 'string') return;
			const bytes = new Uint8Array(payload);
			if (bytes[0] !== MESSAGE_NOTIFY) return;
			// type (1 byte) + varUint length + envelope
			let offset = 1;
			let length = 0;
			let shift = 0;
			for (;;) {
				const b = bytes[offset++]!;
				length |= (b & 0x7f) << shift;
				shift += 7;
				if (b < 0x80) break;
			}
			caught.push(Buffer.from(bytes.subarray(offset, offset + length)).toString('base64url'));
		});
	});
	return caught;
}

interface Shown {
	title: string;
	body: string;
	tag: string;
}

async function notifications(page: Page): Promise<Shown[]> {
	return page.evaluate(async () => {
		const registration = await navigator.serviceWorker.ready;
		const shown = await registration.getNotifications();
		return shown.map((n) => ({ title: n.title, body: n.body, tag: n.tag }));
	});
}

/** Deliver `data` to the page's service worker as a push. */
async function deliverPush(page: Page, data: string): Promise<void> {
	const cdp = await page.context().newCDPSession(page);
	const registrations = new Map<string, string>();
	cdp.on('ServiceWorker.workerRegistrationUpdated', ({ registrations: list }) => {
		for (const r of list) if (!r.isDeleted) registrations.set(r.scopeURL, r.registrationId);
	});
	await cdp.send('ServiceWorker.enable');
	const origin = new URL(page.url()).origin;
	await expect.poll(() => registrations.size, { timeout: 10_000 }).toBeGreaterThan(0);
	const registrationId = registrations.get(`${origin}/`) ?? [...registrations.values()][0]!;
	await cdp.send('ServiceWorker.deliverPushMessage', { origin, registrationId, data });
	await cdp.detach();
}

/** Dispatches `notificationclick` for the first notification shown, in the service worker. */
async function clickNotification(context: BrowserContext): Promise<void> {
	const worker = context.serviceWorkers()[0] ?? (await context.waitForEvent('serviceworker'));
	await worker.evaluate(async () => {
		// The worker's own types (this file is typed with the DOM's).
		const sw = self as unknown as {
			registration: ServiceWorkerRegistration;
			dispatchEvent(event: Event): boolean;
			NotificationEvent: new (type: string, init: { notification: Notification }) => Event;
		};
		const [notification] = await sw.registration.getNotifications();
		if (!notification) throw new Error('no notification to click');
		sw.dispatchEvent(new sw.NotificationEvent('notificationclick', { notification }));
	});
}

async function turnOnNotifications(page: Page): Promise<void> {
	await page.getByRole('link', { name: 'Settings' }).click();
	await expect(page.getByRole('heading', { level: 1, name: 'Settings' })).toBeVisible();
	const toggle = page.getByRole('switch', { name: 'Notifications' });
	await expect(toggle).toHaveAttribute('aria-checked', 'false');
	await toggle.click();
	await expect(toggle).toHaveAttribute('aria-checked', 'true', { timeout: 15_000 });
	await expect(page.getByRole('alert')).toHaveCount(0);
}

test('a push shows the sender and preview, collapses per conversation, and closes once read', async ({
	browser
}) => {
	test.setTimeout(150_000);
	const ada = await person(browser, 'Ada');
	const bob = await person(browser, 'Bob');
	const sent = catchNotifications(bob.page);
	const conversation = 'Lunch plans';
	await inviteAndJoin(ada.page, bob.page, conversation);
	// One notification per conversation: its tag is the conversation's id (the page's /c/<id>).
	const conversationId = decodeURIComponent(new URL(ada.page.url()).pathname.split('/').pop()!);
	await turnOnNotifications(ada.page);
	await ada.page.evaluate(() => navigator.serviceWorker.ready);

	const marker = unique('noon-marker');
	await composer(bob.page).fill(`Noon at the usual place? ${marker}`);
	await composer(bob.page).press('Enter');
	await expect.poll(() => sent.length, { timeout: 15_000 }).toBe(1);
	// The envelope the relay would push holds none of the text in the clear.
	expect(Buffer.from(sent[0]!, 'base64url').toString('latin1')).not.toContain(marker);

	await deliverPush(ada.page, sent[0]!);
	await expect
		.poll(() => notifications(ada.page), { timeout: 10_000 })
		.toEqual([
			{
				title: conversation,
				body: `Bob: Noon at the usual place? ${marker}`,
				tag: conversationId
			}
		]);

	// A burst collapses into one notification per conversation, with a count.
	await composer(bob.page).fill('Or one o’clock');
	await composer(bob.page).press('Enter');
	await expect.poll(() => sent.length, { timeout: 15_000 }).toBe(2);
	await deliverPush(ada.page, sent[1]!);
	await expect
		.poll(async () => (await notifications(ada.page)).map((n) => [n.title, n.body]), {
			timeout: 10_000
		})
		.toEqual([[`${conversation} (2 new messages)`, 'Bob: Or one o’clock']]);

	// Clicking the notification opens its conversation (from Settings here) and closes it.
	// Headless Chromium shows no notification to click: the click is dispatched to the
	// service worker's real handler, with the real notification it showed.
	await ada.page.getByRole('link', { name: 'Settings' }).click();
	await expect(ada.page.getByRole('heading', { level: 1, name: 'Settings' })).toBeVisible();
	await clickNotification(ada.context);
	await expect(ada.page).toHaveURL(new RegExp(`/c/${encodeURIComponent(conversationId)}$`));
	await expect(
		ada.page.getByRole('heading', { level: 1, name: conversation, exact: true })
	).toBeVisible();
	await expect.poll(() => notifications(ada.page), { timeout: 10_000 }).toEqual([]);

	// Reading the conversation closes its notifications.
	await deliverPush(ada.page, sent[1]!);
	await expect.poll(async () => (await notifications(ada.page)).length).toBe(1);
	await ada.page.getByRole('link', { name: 'Settings' }).click();
	await openConversation(ada.page, conversation);
	await expect.poll(() => notifications(ada.page), { timeout: 10_000 }).toEqual([]);

	// Private notifications: no sender, no text.
	await ada.page.getByRole('link', { name: 'Settings' }).click();
	await ada.page.getByRole('checkbox', { name: 'Private notifications' }).check();
	await deliverPush(ada.page, sent[0]!);
	await expect
		.poll(() => notifications(ada.page), { timeout: 10_000 })
		.toEqual([{ title: 'Kith', body: 'New message', tag: conversationId }]);

	// Something that does not open (garbage, or a notification for a room Ada is not in)
	// shows a generic notification, never its bytes.
	await ada.page.getByRole('checkbox', { name: 'Private notifications' }).uncheck();
	await ada.page.evaluate(async () => {
		const registration = await navigator.serviceWorker.ready;
		for (const n of await registration.getNotifications()) n.close();
	});
	await deliverPush(ada.page, 'not-an-envelope-at-all');
	await expect
		.poll(() => notifications(ada.page), { timeout: 10_000 })
		.toEqual([{ title: 'Kith', body: 'New message', tag: 'kith' }]);

	// Muting is a toggle button in the conversation.
	await openConversation(ada.page, conversation);
	const mute = ada.page.getByRole('button', { name: 'Mute' });
	await expect(mute).toHaveAttribute('aria-pressed', 'false');
	await mute.click();
	await expect(mute).toHaveAttribute('aria-pressed', 'true');
	await ada.page.reload();
	await expect(ada.page.getByRole('button', { name: 'Mute' })).toHaveAttribute(
		'aria-pressed',
		'true',
		{ timeout: 20_000 }
	);

	await ada.context.close();
	await bob.context.close();
});

test('while the profile is locked, a push shows no content', async ({ browser }) => {
	test.setTimeout(150_000);
	const ada = await person(browser, 'Ada', 'correct horse battery staple');
	const bob = await person(browser, 'Bob');
	const sent = catchNotifications(bob.page);
	const conversation = 'Locked out';
	await inviteAndJoin(ada.page, bob.page, conversation);
	await turnOnNotifications(ada.page);

	const marker = unique('locked-marker');
	await composer(bob.page).fill(`secret ${marker}`);
	await composer(bob.page).press('Enter');
	await expect.poll(() => sent.length, { timeout: 15_000 }).toBe(1);

	// Unlocked: the worker holds the keys in memory and shows the content.
	await deliverPush(ada.page, sent[0]!);
	await expect
		.poll(async () => (await notifications(ada.page)).map((n) => n.body), { timeout: 10_000 })
		.toEqual([`Bob: secret ${marker}`]);
	await ada.page.evaluate(async () => {
		const registration = await navigator.serviceWorker.ready;
		for (const n of await registration.getNotifications()) n.close();
	});

	// Locked: the page is back at the passphrase prompt and the browser stopped the idle worker.
	await ada.page.reload();
	await expect(ada.page.getByRole('button', { name: 'Unlock' })).toBeVisible({ timeout: 20_000 });
	const cdp = await ada.context.newCDPSession(ada.page);
	// A push handed to a worker that is still stopping can be lost: wait until it stopped.
	const stopped = new Promise<void>((resolve) => {
		cdp.on('ServiceWorker.workerVersionUpdated', ({ versions }) => {
			if (versions.length > 0 && versions.every((v) => v.runningStatus === 'stopped')) resolve();
		});
	});
	await cdp.send('ServiceWorker.enable');
	await cdp.send('ServiceWorker.stopAllWorkers');
	await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, 10_000))]);
	await cdp.detach();

	await deliverPush(ada.page, sent[0]!);
	await expect
		.poll(() => notifications(ada.page), { timeout: 10_000 })
		.toEqual([{ title: 'Kith', body: 'New message', tag: 'kith' }]);
	const shown = JSON.stringify(await notifications(ada.page));
	expect(shown).not.toContain(marker);
	expect(shown).not.toContain('Bob');

	await ada.context.close();
	await bob.context.close();
});
