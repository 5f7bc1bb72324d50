import { describe, expect, it } from 'vitest';
import { formatSafetyNumber, safetyHalf, safetyNumber, safetyQrText } from './safety-number';

const ada = { user: 'ada-master-key', sskKeys: ['ada-ssk-1'] };
const bob = { user: 'bob-master-key', sskKeys: ['bob-ssk-1'] };

describe('safety numbers', () => {
	it('are 60 digits, the same seen from either side', () => {
		const n = safetyNumber(ada, bob);
		expect(n).toMatch(/^\d{60}$/);
		expect(safetyNumber(bob, ada)).toBe(n);
		expect(formatSafetyNumber(n)).toHaveLength(12);
		expect(formatSafetyNumber(n).join('')).toBe(n);
		expect(safetyQrText(n)).toBe(`kith-safety:1:${n}`);
	});

	it('change when a self-signing key changes or is added, not with its order', () => {
		const n = safetyNumber(ada, bob);
		expect(safetyNumber(ada, { ...bob, sskKeys: ['bob-ssk-2'] })).not.toBe(n);
		expect(safetyNumber(ada, { ...bob, sskKeys: ['bob-ssk-1', 'bob-ssk-2'] })).not.toBe(n);
		expect(safetyHalf({ user: 'x', sskKeys: ['b', 'a'] })).toBe(
			safetyHalf({ user: 'x', sskKeys: ['a', 'b', 'a'] })
		);
		// Each half depends on one person only.
		expect(safetyNumber(ada, { ...bob, sskKeys: ['bob-ssk-2'] }).slice(0, 30)).toBe(n.slice(0, 30));
	});

	it('differ for different people', () => {
		expect(safetyNumber(ada, bob)).not.toBe(safetyNumber(ada, { ...bob, user: 'eve-master-key' }));
	});
});
