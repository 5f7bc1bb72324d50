import { describe, expect, it } from 'vitest';
import { createAccount, dhPublicKey, newDeviceKeys } from '../identity';
import { newRoomId, toBase64Url } from '../crypto';
import { parseManifest } from '../media/manifest';
import { deviceNameFrom } from './device-name';
import { HISTORY_CHUNK_BYTES, MAX_HISTORY_BYTES } from './history';
import {
	createPairing,
	decodeLinkMessage,
	encodeLinkMessage,
	fitVouches,
	linkCode,
	LINK_TTL_MS,
	MAX_GRANT_VOUCH_BYTES,
	MAX_GRANT_VOUCHES,
	MAX_LINK_MESSAGE_BYTES,
	openGrant,
	PairingError,
	pairingFragment,
	pairingRoom,
	parsePairingFragment,
	sealGrant,
	type LinkRequest
} from './pairing';

const DEVICE = 'A'.repeat(43);

describe('device links', () => {
	it('round-trips a link and refuses a malformed or expired one with a message for a person', () => {
		const pairing = createPairing(DEVICE, 1_000);
		expect(pairing.expires).toBe(1_000 + LINK_TTL_MS);
		const parsed = parsePairingFragment(`#${pairingFragment(pairing)}`, 2_000);
		expect(parsed).toEqual(pairing);
		for (const bad of ['', 'v1', 'v2.x.y.1', pairingFragment(pairing).replace('v1', 'v2')]) {
			expect(() => parsePairingFragment(bad, 2_000)).toThrow(/not a Kith device link/);
		}
		expect(() => parsePairingFragment(pairingFragment(pairing), pairing.expires)).toThrow(
			/expired/
		);
	});

	it('derives one room per secret, and a code that differs when the answering device does', () => {
		const a = createPairing(DEVICE);
		const b = createPairing(DEVICE);
		expect(pairingRoom(a.secret)).toEqual(pairingRoom(a.secret));
		expect(pairingRoom(a.secret).roomId).not.toBe(pairingRoom(b.secret).roomId);
		const code = linkCode(a.secret, DEVICE, 'B'.repeat(43));
		expect(code).toMatch(/^\d{3} \d{3}$/);
		expect(linkCode(a.secret, DEVICE, 'C'.repeat(43))).not.toBe(code);
		expect(linkCode(b.secret, DEVICE, 'B'.repeat(43))).not.toBe(code);
	});

	it('hands the account keys to the requesting device only, from the device the link names', async () => {
		const account = await createAccount();
		const { keyring } = account;
		const pairing = createPairing(keyring.identity.deviceId);
		const { roomId } = pairingRoom(pairing.secret);
		const fresh = newDeviceKeys();
		const request: LinkRequest = {
			type: 'link-request',
			v: 1,
			device: 'B'.repeat(43),
			dh: toBase64Url(dhPublicKey(fresh.dhSecret)),
			name: 'Chrome on Linux',
			at: 1
		};
		expect(decodeLinkMessage(encodeLinkMessage(request))).toEqual(request);
		const secrets = {
			user: keyring.identity.userId,
			ssk: toBase64Url(keyring.sskSeed),
			account: toBase64Url(keyring.accountKey),
			displayName: 'Ada',
			sskCert: keyring.identity.sskCert,
			deviceCert: keyring.identity.deviceCert
		};
		const grant = await sealGrant(roomId, request, secrets);
		expect(JSON.stringify(grant)).not.toContain(secrets.ssk);
		const me = { device: request.device, dhSecret: fresh.dhSecret };
		const opened = await openGrant(roomId, grant, me, keyring.identity.deviceId, pairing.device);
		expect(opened).toEqual(secrets);
		// From another device than the link's; for another device; in another room.
		await expect(openGrant(roomId, grant, me, 'C'.repeat(43), pairing.device)).rejects.toThrow(
			PairingError
		);
		await expect(
			openGrant(roomId, grant, { ...me, device: 'C'.repeat(43) }, pairing.device, pairing.device)
		).rejects.toThrow(/another device/);
		const other = pairingRoom(createPairing(DEVICE).secret).roomId;
		await expect(openGrant(other, grant, me, pairing.device, pairing.device)).rejects.toThrow(
			/could not be opened/
		);
		// Keys of another account under this account's certificates: refused.
		const eve = (await createAccount()).keyring;
		const forged = await sealGrant(roomId, request, {
			...secrets,
			ssk: toBase64Url(eve.sskSeed)
		});
		await expect(openGrant(roomId, forged, me, pairing.device, pairing.device)).rejects.toThrow(
			/do not belong/
		);
	});

	it('a grant carries as many vouches as fit, and stays a valid link message', async () => {
		const { keyring } = await createAccount();
		const pairing = createPairing(keyring.identity.deviceId);
		const { roomId } = pairingRoom(pairing.secret);
		const fresh = newDeviceKeys();
		const request = {
			type: 'link-request' as const,
			v: 1 as const,
			device: 'B'.repeat(43),
			dh: toBase64Url(dhPublicKey(fresh.dhSecret)),
			name: 'Chrome on Linux',
			at: 1
		};
		// Rooms of 256 writers: a state vector of 256 clients each.
		const vouch = (i: number) => ({
			room: newRoomId(),
			sv: toBase64Url(new Uint8Array(256 * 7).fill(i % 200)),
			digest: toBase64Url(new Uint8Array(32).fill(i))
		});
		const many = Array.from({ length: 100 }, (_, i) => vouch(i));
		const huge = { ...vouch(0), sv: 'A'.repeat(8192) };
		const fitted = fitVouches([huge, ...many]);
		expect(fitted.length).toBeGreaterThan(0);
		expect(fitted).toEqual(many.slice(0, fitted.length));
		expect(JSON.stringify(fitted).length).toBeLessThanOrEqual(MAX_GRANT_VOUCH_BYTES + 1);
		const small = Array.from({ length: 100 }, (_, i) => ({ ...vouch(i), sv: 'AQID' }));
		expect(fitVouches(small)).toHaveLength(MAX_GRANT_VOUCHES);
		// The largest history a grant hands over: MAX_HISTORY_BYTES in chunks of HISTORY_CHUNK_BYTES.
		const chunks = MAX_HISTORY_BYTES / HISTORY_CHUNK_BYTES;
		const history = parseManifest({
			v: 1,
			id: toBase64Url(new Uint8Array(16).fill(7)),
			name: 'history',
			type: 'application/json',
			size: MAX_HISTORY_BYTES,
			chunkSize: HISTORY_CHUNK_BYTES,
			chunks: Array.from({ length: chunks }, (_, i) => toBase64Url(new Uint8Array(32).fill(i))),
			key: toBase64Url(new Uint8Array(32).fill(9))
		});
		for (const vouches of [fitted, fitVouches(small)]) {
			const grant = await sealGrant(roomId, request, {
				user: keyring.identity.userId,
				ssk: toBase64Url(keyring.sskSeed),
				account: toBase64Url(keyring.accountKey),
				displayName: 'A'.repeat(64),
				sskCert: keyring.identity.sskCert,
				deviceCert: keyring.identity.deviceCert,
				vouches,
				history
			});
			const bytes = encodeLinkMessage(grant);
			expect(bytes.length).toBeLessThanOrEqual(MAX_LINK_MESSAGE_BYTES);
			expect(decodeLinkMessage(bytes)).toEqual(grant);
			const me = { device: request.device, dhSecret: fresh.dhSecret };
			const opened = await openGrant(roomId, grant, me, keyring.identity.deviceId, pairing.device);
			expect(opened.vouches).toEqual(vouches);
			expect(opened.history).toEqual(history);
		}
		// More than a grant may carry is refused when sealing.
		await expect(
			sealGrant(roomId, request, {
				user: keyring.identity.userId,
				ssk: toBase64Url(keyring.sskSeed),
				account: toBase64Url(keyring.accountKey),
				displayName: 'Ada',
				sskCert: keyring.identity.sskCert,
				deviceCert: keyring.identity.deviceCert,
				vouches: small.slice(0, MAX_GRANT_VOUCHES + 1)
			})
		).rejects.toThrow();
	});

	it('refuses messages that are not link messages', () => {
		for (const bytes of [
			new TextEncoder().encode('not json'),
			new TextEncoder().encode('{"type":"link-request","v":1}'),
			new TextEncoder().encode('{"type":"link-grant","v":2,"to":"x","box":"y"}')
		]) {
			expect(() => decodeLinkMessage(bytes)).toThrow(PairingError);
		}
	});

	it('names a device by its browser and system', () => {
		expect(
			deviceNameFrom('Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0')
		).toBe('Firefox on Linux');
		expect(
			deviceNameFrom(
				'Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36'
			)
		).toBe('Chrome on Android');
		expect(
			deviceNameFrom(
				'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1'
			)
		).toBe('Safari on iOS');
		expect(deviceNameFrom('')).toBe('Browser');
	});
});
