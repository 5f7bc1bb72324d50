import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
	createSigner,
	newSigningSeed,
	toBase64Url,
	utf8Encode,
	verifySignature,
	fromBase64Url,
	concatBytes,
	type Signer
} from '../crypto';
import {
	certify,
	CertificateError,
	compareSsk,
	createAccount,
	mastersOf,
	SskCertBody,
	sskRank,
	verifyDeviceChain,
	verifyMasters,
	verifySskCert,
	type Certificate,
	type DeviceCertBody
} from '.';

async function failure(promise: Promise<unknown>): Promise<{ name: string; message: string }> {
	try {
		await promise;
	} catch (error) {
		return { name: (error as Error).name, message: (error as Error).message };
	}
	return { name: 'resolved', message: '' };
}

interface Account {
	master: Signer;
	ssk: Signer;
	device: Signer;
	userId: string;
	sskCert: Certificate;
	deviceCert: Certificate;
}

async function account(issued = 1): Promise<Account> {
	const [master, ssk, device] = await Promise.all(
		[0, 1, 2].map(() => createSigner(newSigningSeed()))
	);
	const m = master as Signer;
	const s = ssk as Signer;
	const d = device as Signer;
	const userId = toBase64Url(m.publicKey);
	const sskCert = await certify(
		{ v: 1, type: 'ssk', user: userId, key: toBase64Url(s.publicKey), issued },
		m
	);
	const deviceCert = await certify(
		{
			v: 1,
			type: 'device',
			user: userId,
			device: toBase64Url(d.publicKey),
			dh: toBase64Url(new Uint8Array(32).fill(9)),
			issued
		},
		s
	);
	return { master: m, ssk: s, device: d, userId, sskCert, deviceCert };
}

function sskBody(a: Account, overrides: Partial<SskCertBody> = {}): SskCertBody {
	return {
		v: 1,
		type: 'ssk',
		user: a.userId,
		key: toBase64Url(a.ssk.publicKey),
		issued: 1,
		...overrides
	};
}

function deviceBody(a: Account, overrides: Partial<DeviceCertBody> = {}): DeviceCertBody {
	return {
		v: 1,
		type: 'device',
		user: a.userId,
		device: toBase64Url(a.device.publicKey),
		dh: toBase64Url(new Uint8Array(32).fill(9)),
		issued: 1,
		...overrides
	};
}

describe('certificates', () => {
	it('are canonical JSON in schema key order, signed over "kith/cert\\0" || JSON', async () => {
		const a = await account();
		// Keys given out of order, plus an unknown one: the body is re-ordered and stripped.
		const shuffled = {
			issued: 5,
			extra: 'dropped',
			key: toBase64Url(a.ssk.publicKey),
			user: a.userId,
			type: 'ssk',
			v: 1
		} as unknown as SskCertBody;
		const cert = await certify(shuffled, a.master);
		expect(cert.body).toBe(
			`{"v":1,"type":"ssk","user":"${a.userId}","key":"${toBase64Url(a.ssk.publicKey)}","issued":5}`
		);
		expect(cert.signer).toBe(a.userId);
		const message = concatBytes(utf8Encode('kith/cert\0'), utf8Encode(cert.body));
		expect(await verifySignature(a.master.publicKey, message, fromBase64Url(cert.signature))).toBe(
			true
		);
		const device = await certify(deviceBody(a), a.ssk);
		expect(Object.keys(JSON.parse(device.body))).toEqual([
			'v',
			'type',
			'user',
			'device',
			'dh',
			'issued'
		]);
	});

	it('refuse to certify a malformed body', async () => {
		const a = await account();
		await expect(certify(sskBody(a, { issued: -1 }), a.master)).rejects.toThrow();
		await expect(certify(sskBody(a, { key: 'not base64url!' }), a.master)).rejects.toThrow();
	});
});

describe('verifyDeviceChain', () => {
	it('accepts the chain createAccount made', async () => {
		const { keyring } = await createAccount();
		const { userId, sskCert, deviceCert, deviceId, dhPublic } = keyring.identity;
		const body = await verifyDeviceChain(userId, sskCert, deviceCert);
		expect(body).toEqual({
			v: 1,
			type: 'device',
			user: userId,
			device: deviceId,
			dh: dhPublic,
			issued: expect.any(Number)
		});
	});

	it('accepts a hand-made chain', async () => {
		const a = await account();
		const body = await verifyDeviceChain(a.userId, a.sskCert, a.deviceCert);
		expect(body.device).toBe(toBase64Url(a.device.publicKey));
	});

	it('rejects an SSK certificate signed by another master key', async () => {
		const a = await account();
		const b = await account();
		// Honest about its signer: the signer is not the user.
		const byB = await certify(sskBody(a), b.master);
		const error = await failure(verifyDeviceChain(a.userId, byB, a.deviceCert));
		expect(error).toEqual({
			name: CertificateError.NAME,
			message: 'certificate has the wrong signer'
		});
		// Lying about its signer: the signature does not verify.
		const lying = { ...byB, signer: a.userId };
		expect(await failure(verifyDeviceChain(a.userId, lying, a.deviceCert))).toEqual({
			name: 'CertificateError',
			message: 'certificate signature does not verify'
		});
	});

	it('rejects a device certificate signed by the master or another SSK instead of this SSK', async () => {
		const a = await account();
		const b = await account();
		for (const wrong of [a.master, b.ssk, a.device]) {
			const cert = await certify(deviceBody(a), wrong);
			expect((await failure(verifyDeviceChain(a.userId, a.sskCert, cert))).name).toBe(
				'CertificateError'
			);
			const lying = { ...cert, signer: toBase64Url(a.ssk.publicKey) };
			expect((await failure(verifyDeviceChain(a.userId, a.sskCert, lying))).message).toBe(
				'certificate signature does not verify'
			);
		}
	});

	it('rejects a chain for another user', async () => {
		const a = await account();
		const b = await account();
		// Verified against the wrong user id.
		expect((await failure(verifyDeviceChain(b.userId, a.sskCert, a.deviceCert))).name).toBe(
			'CertificateError'
		);
		// An SSK certificate a's master signed, naming b as the user.
		const sskForB = await certify(sskBody(a, { user: b.userId }), a.master);
		expect(await failure(verifyDeviceChain(a.userId, sskForB, a.deviceCert))).toEqual({
			name: 'CertificateError',
			message: 'SSK certificate is for another user'
		});
		// A device certificate a's SSK signed, naming b as the user.
		const deviceForB = await certify(deviceBody(a, { user: b.userId }), a.ssk);
		expect(await failure(verifyDeviceChain(a.userId, a.sskCert, deviceForB))).toEqual({
			name: 'CertificateError',
			message: 'device certificate is for another user'
		});
		// Mixing a's SSK certificate with b's device certificate.
		expect((await failure(verifyDeviceChain(a.userId, a.sskCert, b.deviceCert))).name).toBe(
			'CertificateError'
		);
	});

	it('rejects an altered body (same signature)', async () => {
		const a = await account();
		const altered = {
			...a.deviceCert,
			body: a.deviceCert.body.replace('"issued":1', '"issued":2')
		};
		expect(altered.body).not.toBe(a.deviceCert.body);
		expect(await failure(verifyDeviceChain(a.userId, a.sskCert, altered))).toEqual({
			name: 'CertificateError',
			message: 'certificate signature does not verify'
		});
	});

	it('rejects certificates swapped in role (an SSK certificate where a device one goes)', async () => {
		const a = await account();
		expect((await failure(verifyDeviceChain(a.userId, a.deviceCert, a.sskCert))).name).not.toBe(
			'resolved'
		);
		expect((await failure(verifyDeviceChain(a.userId, a.sskCert, a.sskCert))).name).not.toBe(
			'resolved'
		);
	});

	it('rejects a bare signature without the "kith/cert\\0" context', async () => {
		const a = await account();
		const body = JSON.stringify(deviceBody(a));
		const bare: Certificate = {
			body,
			signer: toBase64Url(a.ssk.publicKey),
			signature: toBase64Url(await a.ssk.sign(utf8Encode(body)))
		};
		expect((await failure(verifyDeviceChain(a.userId, a.sskCert, bare))).message).toBe(
			'certificate signature does not verify'
		);
	});
});

describe('replaced master keys (a new recovery key)', () => {
	async function succession() {
		const first = await createSigner(newSigningSeed());
		const user = toBase64Url(first.publicKey);
		const second = await createSigner(newSigningSeed());
		const link = await certify(
			{ v: 1, type: 'master', user, key: toBase64Url(second.publicKey), issued: 10 },
			first
		);
		const sskUnder = async (signer: Signer, masters: Certificate[], issued: number) =>
			certify(
				{
					v: 1,
					type: 'ssk',
					user,
					key: toBase64Url((await createSigner(newSigningSeed())).publicKey),
					issued,
					...(masters.length ? { masters } : {})
				},
				signer
			);
		return { first, second, user, link, sskUnder };
	}

	it('accept an SSK signed by the successor with the chain, and refuse it without', async () => {
		const { second, user, link, sskUnder } = await succession();
		const ssk = await sskUnder(second, [link], 20);
		expect((await verifySskCert(user, ssk)).masters).toEqual([link]);
		expect(await verifyMasters(user, [link])).toBe(toBase64Url(second.publicKey));
		expect(mastersOf(user, ssk)).toEqual([user, toBase64Url(second.publicKey)]);
		// Without the chain, the successor is nobody's master key.
		const bare = await sskUnder(second, [], 20);
		expect((await failure(verifySskCert(user, bare))).name).toBe('CertificateError');
	});

	it('refuse a chain link signed by anyone but the master key before it', async () => {
		const { second, user, sskUnder } = await succession();
		const stranger = await createSigner(newSigningSeed());
		const forged = await certify(
			{ v: 1, type: 'master', user, key: toBase64Url(second.publicKey), issued: 10 },
			stranger
		);
		const ssk = await sskUnder(second, [forged], 20);
		expect((await failure(verifySskCert(user, ssk))).name).toBe('CertificateError');
		// A link for another user.
		const other = await certify(
			{
				v: 1,
				type: 'master',
				user: toBase64Url(stranger.publicKey),
				key: toBase64Url(second.publicKey),
				issued: 10
			},
			await createSigner(newSigningSeed())
		);
		expect((await failure(verifyMasters(user, [other]))).name).toBe('CertificateError');
	});

	it('rank an SSK under the successor above any the replaced key signs later, whatever time it claims', async () => {
		const { first, second, user, link, sskUnder } = await succession();
		const current = SskCertBody.parse(JSON.parse((await sskUnder(second, [link], 20)).body));
		// The old recovery key, used later: an SSK signed directly, or a second successor.
		const direct = SskCertBody.parse(JSON.parse((await sskUnder(first, [], 9_999)).body));
		const rogue = await createSigner(newSigningSeed());
		const fork = await certify(
			{ v: 1, type: 'master', user, key: toBase64Url(rogue.publicKey), issued: 11 },
			first
		);
		const forked = SskCertBody.parse(JSON.parse((await sskUnder(rogue, [fork], 9_999)).body));
		expect(compareSsk(sskRank(current), sskRank(direct))).toBeGreaterThan(0);
		expect(compareSsk(sskRank(direct), sskRank(current))).toBeLessThan(0);
		expect(compareSsk(sskRank(current), sskRank(forked))).toBeGreaterThan(0);
		expect(compareSsk(sskRank(forked), sskRank(current))).toBeLessThan(0);
		// Under one master, the later issued wins.
		const later = SskCertBody.parse(JSON.parse((await sskUnder(second, [link], 30)).body));
		expect(compareSsk(sskRank(later), sskRank(current))).toBeGreaterThan(0);
	});

	it('rank as a total order whatever the chains (antisymmetric, transitive)', () => {
		const rank = fc.record({
			key: fc.constantFrom('a', 'b', 'c'),
			issued: fc.integer({ min: 0, max: 3 }),
			masters: fc.array(
				fc.record({ key: fc.constantFrom('m', 'n'), issued: fc.integer({ min: 0, max: 2 }) }),
				{ maxLength: 3 }
			)
		});
		fc.assert(
			fc.property(rank, rank, rank, (a, b, c) => {
				expect(Math.sign(compareSsk(a, b))).toBe(-Math.sign(compareSsk(b, a)) || 0);
				if (compareSsk(a, b) > 0 && compareSsk(b, c) > 0) {
					expect(compareSsk(a, c)).toBeGreaterThan(0);
				}
			}),
			{ numRuns: 2_000 }
		);
	});
});
