import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ownStatus, ReceiptBook, type Mark, type OwnMessage } from './receipts';

const ADA = 11; // Ada's device's Yjs client id
const at = (wall: number, id = 'm'): Mark => ({ hlc: { wall, counter: 0 }, id });
const message = (wall: number, clock: number): OwnMessage => ({ ...at(wall), client: ADA, clock });

describe('ownStatus', () => {
	it('is Saved until the relay acknowledges, then Sent', () => {
		const m = message(100, 4);
		expect(ownStatus(m, [{ name: 'Bob', book: undefined }], 4).status).toBe('Saved');
		expect(ownStatus(m, [{ name: 'Bob', book: undefined }], 5).status).toBe('Sent');
	});

	it('is Delivered when every other member holds it, Read when every one read it', () => {
		const m = message(100, 4);
		const bob = new ReceiptBook();
		const cy = new ReceiptBook();
		const others = [
			{ name: 'Bob', book: bob },
			{ name: 'Cy', book: cy }
		];
		bob.note('delivered', at(100), [[ADA, 5]]);
		expect(ownStatus(m, others, 0).status).toBe('Sent');
		cy.note('delivered', at(100), [[ADA, 5]]);
		expect(ownStatus(m, others, 0).status).toBe('Delivered');
		bob.note('read', at(100), [[ADA, 5]]);
		expect(ownStatus(m, others, 0)).toEqual({ status: 'Delivered', readBy: ['Bob'] });
		cy.note('read', at(200, 'z'), [[ADA, 9]]);
		expect(ownStatus(m, others, 0)).toEqual({ status: 'Read', readBy: ['Bob', 'Cy'] });
	});

	it('never counts a late message as read by a mark made before it arrived', () => {
		// Ada wrote it offline long ago (wall 50), at her clock 7; it sorts before Bob's mark.
		const late = message(50, 7);
		const bob = new ReceiptBook();
		bob.note('read', at(300), [[ADA, 7]]); // Bob held Ada's items below 7: not this one
		expect(ownStatus(late, [{ name: 'Bob', book: bob }], 8).status).toBe('Sent');
		// It arrives; Bob's device says so, then reads again.
		bob.note('delivered', at(300), [[ADA, 8]]);
		expect(ownStatus(late, [{ name: 'Bob', book: bob }], 8).status).toBe('Delivered');
		bob.note('read', at(300), [[ADA, 8]]);
		expect(ownStatus(late, [{ name: 'Bob', book: bob }], 8).status).toBe('Read');
	});

	it('alone in a conversation, goes no further than Sent', () => {
		expect(ownStatus(message(1, 0), [], 10).status).toBe('Sent');
	});

	it('receipts merge in any order and never go backwards', () => {
		const receipt = fc.record({
			kind: fc.constantFrom('delivered' as const, 'read' as const),
			wall: fc.integer({ min: 0, max: 500 }),
			clock: fc.integer({ min: 0, max: 20 })
		});
		fc.assert(
			fc.property(fc.array(receipt, { maxLength: 12 }), fc.nat(), (receipts, seed) => {
				const shuffled = [...receipts].sort(
					(a, b) => ((a.wall * 31 + seed) % 17) - ((b.wall * 31 + seed) % 17)
				);
				const one = new ReceiptBook();
				const two = new ReceiptBook();
				const rank = { Saved: 0, Sent: 1, Delivered: 2, Read: 3 } as const;
				const m = message(250, 9);
				let last = 0;
				for (const r of receipts) {
					one.note(r.kind, at(r.wall), [[ADA, r.clock]]);
					const now = rank[ownStatus(m, [{ name: 'Bob', book: one }], 0).status];
					expect(now).toBeGreaterThanOrEqual(last);
					last = now;
				}
				for (const r of shuffled) two.note(r.kind, at(r.wall), [[ADA, r.clock]]);
				expect(ownStatus(m, [{ name: 'Bob', book: two }], 0)).toEqual(
					ownStatus(m, [{ name: 'Bob', book: one }], 0)
				);
			})
		);
	});
});
