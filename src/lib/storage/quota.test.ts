import { afterEach, describe, expect, it, vi } from 'vitest';
import { StorageQuotaError, StorageWriteError } from './errors';
import { isQuotaError, requestPersistentStorage, storageEstimate } from './quota';

afterEach(() => {
	vi.unstubAllGlobals();
});

describe('isQuotaError', () => {
	it('recognises every spelling of "storage full"', () => {
		expect(isQuotaError(new DOMException('full', 'QuotaExceededError'))).toBe(true);
		expect(isQuotaError({ name: 'NS_ERROR_DOM_QUOTA_REACHED', code: 1014 })).toBe(true);
		expect(isQuotaError(new StorageQuotaError())).toBe(true);
		// The legacy code, as older engines report it on a DOMException.
		const legacy = new DOMException('full', 'QuotaExceededError');
		expect(legacy.code).toBe(22);
		expect(isQuotaError(Object.assign(new Error('x'), { cause: legacy }))).toBe(true);
		// lib0's wrapper keeps only the text.
		expect(isQuotaError(new Error('QuotaExceededError: The quota has been exceeded.'))).toBe(true);
	});

	it('does not mistake other errors for quota', () => {
		expect(isQuotaError(new DOMException('x', 'AbortError'))).toBe(false);
		expect(isQuotaError(new DOMException('x', 'UnknownError'))).toBe(false);
		expect(isQuotaError({ code: 22 })).toBe(false);
		expect(isQuotaError(new StorageWriteError())).toBe(false);
		expect(isQuotaError(null)).toBe(false);
		expect(isQuotaError('QuotaExceededError')).toBe(false);
	});
});

describe('requestPersistentStorage', () => {
	it('is false where the API is missing', async () => {
		vi.stubGlobal('navigator', {});
		expect(await requestPersistentStorage()).toBe(false);
	});

	it('asks only when not yet persistent', async () => {
		const persist = vi.fn(() => Promise.resolve(true));
		vi.stubGlobal('navigator', { storage: { persisted: () => Promise.resolve(true), persist } });
		expect(await requestPersistentStorage()).toBe(true);
		expect(persist).not.toHaveBeenCalled();
		vi.stubGlobal('navigator', { storage: { persisted: () => Promise.resolve(false), persist } });
		expect(await requestPersistentStorage()).toBe(true);
		expect(persist).toHaveBeenCalledOnce();
	});

	it('never throws', async () => {
		vi.stubGlobal('navigator', {
			storage: { persist: () => Promise.reject(new DOMException('no', 'SecurityError')) }
		});
		expect(await requestPersistentStorage()).toBe(false);
	});
});

describe('storageEstimate', () => {
	it('returns usage and quota, or null', async () => {
		vi.stubGlobal('navigator', {
			storage: { estimate: () => Promise.resolve({ usage: 10, quota: 100 }) }
		});
		expect(await storageEstimate()).toEqual({ usage: 10, quota: 100 });
		vi.stubGlobal('navigator', { storage: { estimate: () => Promise.reject(new Error('x')) } });
		expect(await storageEstimate()).toBeNull();
		vi.stubGlobal('navigator', {});
		expect(await storageEstimate()).toBeNull();
	});
});
