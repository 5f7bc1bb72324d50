import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Slots } from './slots';

describe('Slots', () => {
	it('never runs more than its size at once, runs every task, and in the order they came', async () => {
		await fc.assert(
			fc.asyncProperty(
				fc.integer({ min: 1, max: 4 }),
				fc.array(fc.nat(3), { minLength: 1, maxLength: 20 }),
				async (size, delays) => {
					const slots = new Slots(size);
					let running = 0;
					let most = 0;
					const started: number[] = [];
					const results = await Promise.all(
						delays.map((delay, i) =>
							slots.run(async () => {
								started.push(i);
								most = Math.max(most, ++running);
								await new Promise((resolve) => setTimeout(resolve, delay));
								running--;
								return i;
							})
						)
					);
					expect(results).toEqual(delays.map((_, i) => i));
					expect(most).toBe(Math.min(size, delays.length));
					expect(started).toEqual(delays.map((_, i) => i));
				}
			),
			{ numRuns: 30 }
		);
	});

	it('a failing task gives its place back', async () => {
		const slots = new Slots(1);
		await expect(slots.run(() => Promise.reject(new Error('no')))).rejects.toThrow('no');
		expect(await slots.run(async () => 'next')).toBe('next');
	});
});
