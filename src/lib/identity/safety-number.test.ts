import { describe, expect, it } from 'vitest';
import { formatSafetyNumber, safetyHalf, safetyNumber, safetyQrText } from './safety-number';

const ada = { user: 'ada-master-key' };
const bob = { user: 'bob-master-key' };

describe('safety numbers', () => {
	it('are 60 digits, the same seen from either side', () => {
		const n = safetyNumber(ada, bob);
		expect(n).toMatch(/^\d{60}$/);
		expect(safetyNumber(bob, ada)).toBe(n);
		expect(formatSafetyNumber(n)).toHaveLength(12);
		expect(formatSafetyNumber(n).join('')).toBe(n);
		expect(safetyQrText(n)).toBe(`kith-safety:2:${n}`);
	});

	it('are one half per person: the other person changing does not change mine', () => {
		const n = safetyNumber(ada, bob);
		const withEve = safetyNumber(ada, { user: 'eve-master-key' });
		expect(withEve).not.toBe(n);
		expect(withEve.includes(safetyHalf(ada))).toBe(true);
		expect(n.includes(safetyHalf(ada))).toBe(true);
		expect(safetyHalf(ada)).toMatch(/^\d{30}$/);
	});

	it('differ for different people', () => {
		expect(safetyNumber(ada, bob)).not.toBe(safetyNumber(ada, { ...bob, user: 'eve-master-key' }));
	});
});
