/**
 * Steps shared by the end-to-end specs. They drive the app the way a person
 * does — by role, label and visible text — so a test breaks when the
 * accessible names change, which is the contract they check.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
	expect,
	type Browser,
	type BrowserContext,
	type FileChooser,
	type Locator,
	type Page
} from '@playwright/test';

/** A recovery key as shown: base58, in groups of four characters (the last may be shorter). */
export const RECOVERY_KEY_PATTERN = /^(?:[1-9A-HJ-NP-Za-km-z]{4} )+[1-9A-HJ-NP-Za-km-z]{1,4}$/;

export function conversationList(page: Page): Locator {
	return page.getByRole('navigation', { name: 'Conversations' });
}

/** The link of one conversation in the list; its accessible name is exactly the conversation's name. */
export function conversationLink(page: Page, name: string): Locator {
	return conversationList(page).getByRole('link', { name, exact: true });
}

export function messageLog(page: Page): Locator {
	return page.getByRole('log', { name: 'Messages' });
}

export function articles(page: Page): Locator {
	return messageLog(page).getByRole('article');
}

/** The message whose text is exactly `text` (whitespace-normalised). */
export function article(page: Page, text: string): Locator {
	return articles(page).filter({ has: page.getByText(text, { exact: true }) });
}

export function composer(page: Page): Locator {
	return page.getByRole('textbox', { name: 'Message' });
}

/** The status of an own message, e.g. "Saved". */
export function status(
	message: Locator,
	text: 'Saving' | 'Saved' | 'Sent' | 'Delivered' | 'Read'
): Locator {
	return message.getByText(text, { exact: true });
}

/** Statuses of a message that is on this device's disk: "Saved" and every later one. */
export const STORED = ['Saved', 'Sent', 'Delivered', 'Read'] as const;

/** The status of an own message (or of every message in `scope`) once on disk, whatever the relay said since. */
export function stored(scope: Locator): Locator {
	const [first, ...rest] = STORED.map((text) => scope.getByText(text, { exact: true }));
	return rest.reduce((all, one) => all.or(one), first as Locator);
}

/**
 * Open the app (unless the page is on it already), create an account and
 * acknowledge the recovery key. Returns the recovery key as shown.
 */
export async function createAccount(
	page: Page,
	name: string,
	passphrase?: string
): Promise<string> {
	if (!/^https?:/.test(page.url())) await page.goto('/');
	await page.getByRole('textbox', { name: 'Display name' }).fill(name);
	if (passphrase !== undefined) {
		await page.getByRole('textbox', { name: 'Passphrase' }).fill(passphrase);
	}
	await page.getByRole('button', { name: 'Create account' }).click();
	// Key generation (and Argon2id, with a passphrase) takes a few seconds on a slow machine.
	const dialog = page.getByRole('dialog', { name: 'Recovery key' });
	await expect(dialog).toBeVisible({ timeout: 20_000 });
	const recoveryKey = (await dialog.getByLabel('Recovery key value').textContent())?.trim() ?? '';
	await dialog.getByRole('button', { name: 'Continue' }).click();
	await expect(dialog).toBeHidden();
	await expect(conversationLink(page, 'Notes to self')).toBeVisible();
	return recoveryKey;
}

/** Open a conversation from the list and wait for its page. */
export async function openConversation(page: Page, name: string): Promise<void> {
	await conversationLink(page, name).click();
	await expect(page.getByRole('heading', { level: 1, name, exact: true })).toBeVisible();
	await expect(messageLog(page)).toBeVisible();
}

/** Create a conversation with the "New conversation" form; the app opens it. */
export async function createConversation(page: Page, name: string): Promise<void> {
	await conversationList(page).getByRole('button', { name: 'New conversation' }).click();
	await page.getByRole('textbox', { name: 'Conversation name' }).fill(name);
	await page.getByRole('button', { name: 'Create', exact: true }).click();
	await expect(page.getByRole('heading', { level: 1, name, exact: true })).toBeVisible();
}

/**
 * Send `text` from the composer (Enter) and wait until it shows "Saved"
 * (its IndexedDB transaction completed). Returns the message's article.
 */
export async function send(page: Page, text: string): Promise<Locator> {
	const box = composer(page);
	await box.fill(text);
	await box.press('Enter');
	const message = article(page, text);
	// Generous: a loaded CI machine can take seconds per IndexedDB commit.
	await expect(stored(message)).toBeVisible({ timeout: 10_000 });
	// The composer clears once the message is stored.
	await expect(box).toHaveValue('');
	return message;
}

/** The text of an own message: its first paragraph (the next holds time and status). */
export function messageText(message: Locator): Locator {
	return message.getByRole('paragraph').first();
}

/** Wait until the open conversation shows exactly `texts`, in order, each "Saved". */
export async function expectMessages(page: Page, texts: readonly string[]): Promise<void> {
	const list = articles(page);
	await expect(list).toHaveCount(texts.length);
	for (const [i, text] of texts.entries()) {
		await expect(messageText(list.nth(i))).toHaveText(text);
		await expect(stored(list.nth(i))).toBeVisible();
	}
}

/** No error is shown anywhere on the page (write failures, unreadable data…). */
export async function expectNoAlert(page: Page): Promise<void> {
	await expect(page.getByRole('alert')).toHaveCount(0);
}

/** A string no other test (or run) uses. */
export function unique(prefix: string): string {
	return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

/** The inviter makes a conversation and an invite link; the joiner opens it and joins. Both end in the conversation. */
export async function inviteAndJoin(
	inviter: Page,
	joiner: Page,
	conversation: string,
	/** Open the link at this origin instead (e.g. through a proxy). */
	joinerOrigin?: string
): Promise<string> {
	await createConversation(inviter, conversation);
	return invite(inviter, joiner, conversation, joinerOrigin);
}

/**
 * The inviter, in `conversation` already, makes an invite link; the joiner
 * opens it and joins. Both end in the conversation. Returns the link.
 */
export async function invite(
	inviter: Page,
	joiner: Page,
	conversation: string,
	/** Open the link at this origin instead (e.g. through a proxy). */
	joinerOrigin?: string
): Promise<string> {
	await inviter.getByRole('button', { name: 'Invite' }).click();
	const dialog = inviter.getByRole('dialog', { name: 'Invite' });
	const linkBox = dialog.getByRole('textbox', { name: 'Invite link' });
	await expect(linkBox).toHaveValue(/\/join#/);
	await expect(dialog.getByRole('img', { name: 'Invite QR code' })).toBeVisible();
	await expect(dialog.getByRole('button', { name: 'Copy' })).toBeVisible();
	const link = await linkBox.inputValue();
	await dialog.getByRole('button', { name: 'Close' }).click();

	const url = new URL(link);
	await joiner.goto(joinerOrigin ? `${joinerOrigin}${url.pathname}${url.hash}` : link);
	await expect(joiner.getByText(conversation, { exact: true })).toBeVisible();
	await joiner.getByRole('button', { name: 'Join' }).click();
	await expect(
		joiner.getByRole('heading', { level: 1, name: conversation, exact: true })
	).toBeVisible({ timeout: 30_000 });
	return link;
}

/** Ada and Bob, each in a browser of their own, both members of `conversation` (Ada made it). */
export async function adaAndBob(
	browser: Browser,
	conversation: string
): Promise<{ ada: Page; bob: Page }> {
	const ada = await (await browser.newContext()).newPage();
	const bob = await (await browser.newContext()).newPage();
	await createAccount(ada, 'Ada');
	await createAccount(bob, 'Bob');
	await inviteAndJoin(ada, bob, conversation);
	return { ada, bob };
}

/** Send a file as a person does: "Attach", then the file chooser (a path, or name + bytes). */
export async function attachFile(page: Page, file: Parameters<FileChooser['setFiles']>[0]) {
	const chooser = page.waitForEvent('filechooser');
	await page.getByRole('button', { name: 'Attach', exact: true }).click();
	await (await chooser).setFiles(file);
}

/**
 * SHA-256 (hex) of the file a message's link named `name` gives, downloaded
 * as a person does: a click on the link (a blob: URL, or the service
 * worker's /media/ when it controls the page), then the saved file.
 */
export async function linkedFileHash(page: Page, name: string): Promise<string> {
	const link = messageLog(page).getByRole('link', { name, exact: true });
	await expect(link).toBeVisible({ timeout: 60_000 });
	const download = page.waitForEvent('download');
	await link.click();
	const saved = await (await download).path();
	return createHash('sha256').update(readFileSync(saved)).digest('hex');
}

/** A new person in a browser context of their own, with an account, on the app at `origin`. */
export async function personAt(browser: Browser, origin: string, name: string): Promise<Page> {
	const page = await (await browser.newContext()).newPage();
	await page.goto(origin);
	await createAccount(page, name);
	return page;
}

/**
 * Settings → "Link a device" on `existing`; a new browser context (or
 * `context`) opens the link, both confirm the code. Returns the new device's
 * page (in the app).
 */
export async function linkDevice(
	browser: Browser,
	existing: Page,
	context?: BrowserContext
): Promise<Page> {
	await existing.getByRole('link', { name: 'Settings' }).click();
	await existing.getByRole('button', { name: 'Link a device' }).click();
	const dialog = existing.getByRole('dialog', { name: 'Link a device' });
	await expect(dialog.getByRole('img', { name: 'Device link QR code' })).toBeVisible();
	const link = await dialog.getByRole('textbox', { name: 'Device link' }).inputValue();
	expect(link).toMatch(/\/link#v1\./);
	const added = await (context ?? (await browser.newContext())).newPage();
	await added.goto(link);
	const code = added.getByLabel('Link code');
	await expect(code).toHaveText(/^\d{3} \d{3}$/, { timeout: 30_000 });
	await expect(dialog.getByLabel('Link code')).toHaveText((await code.textContent()) ?? '', {
		timeout: 30_000
	});
	await dialog.getByRole('button', { name: 'Codes match' }).click();
	await added.getByRole('button', { name: 'Codes match' }).click();
	await expect(dialog.getByText('is linked')).toBeVisible();
	await dialog.getByRole('button', { name: 'Done' }).click();
	return added;
}

/**
 * In the open conversation: Members → "Verify NAME"; the safety-number view
 * lists `count` devices of NAME (waiting for them), then closes.
 */
export async function expectDevicesOf(page: Page, name: string, count: number): Promise<void> {
	await page.getByRole('button', { name: 'Members' }).click();
	await page
		.getByRole('dialog', { name: 'Members' })
		.getByRole('button', { name: `Verify ${name}` })
		.click();
	const safety = page.getByRole('dialog', { name: `Safety number with ${name}` });
	await expect(
		safety.getByRole('list', { name: `Devices of ${name}` }).getByRole('listitem')
	).toHaveCount(count, { timeout: 30_000 });
	await safety.getByRole('button', { name: 'Close' }).click();
}

/** "Restore from backup" (first run, its form open): the file, the recovery key, "Restore". */
export async function restoreBackup(
	page: Page,
	backup: Buffer,
	recoveryKey: string
): Promise<void> {
	await page.getByLabel('Backup file').setInputFiles({
		name: 'kith-backup.kith',
		mimeType: 'application/octet-stream',
		buffer: backup
	});
	await page.getByRole('textbox', { name: 'Recovery key' }).fill(recoveryKey);
	await page.getByRole('button', { name: 'Restore', exact: true }).click();
}
