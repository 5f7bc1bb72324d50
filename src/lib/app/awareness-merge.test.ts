import { describe, expect, it } from 'vitest';
import { AwarenessMerge } from './awareness-merge';

const bytes = (...values: number[]) => new Uint8Array(values);
const states = (...entries: [number, Uint8Array][]) => new Map(entries);

describe('AwarenessMerge', () => {
	it('holds a client once when two paths carry its state', () => {
		const merge = new AwarenessMerge();
		expect(merge.set('relay', states([7, bytes(1)]))).toBe(true);
		// The same state over the other path: nothing new to show.
		expect(merge.set('p2p', states([7, bytes(1)]))).toBe(false);
		expect([...merge.states]).toEqual([[7, bytes(1)]]);
	});

	it('merges different clients of different paths', () => {
		const merge = new AwarenessMerge();
		merge.set('relay', states([1, bytes(1)]));
		merge.set('p2p', states([2, bytes(2)]));
		merge.set('lan', states([3, bytes(3)]));
		expect(new Map(merge.states)).toEqual(states([1, bytes(1)], [2, bytes(2)], [3, bytes(3)]));
	});

	it('shows the state that arrived last when the paths differ', () => {
		const merge = new AwarenessMerge();
		merge.set('relay', states([7, bytes(1)]));
		merge.set('p2p', states([7, bytes(1)]));
		// A refreshed state reaches p2p first: it wins over the relay's older one.
		expect(merge.set('p2p', states([7, bytes(2)]))).toBe(true);
		expect(merge.states.get(7)).toEqual(bytes(2));
		// The relay catches up: the same state, no change.
		expect(merge.set('relay', states([7, bytes(2)]))).toBe(false);
		// And the other way round.
		expect(merge.set('relay', states([7, bytes(3)]))).toBe(true);
		expect(merge.states.get(7)).toEqual(bytes(3));
		expect(merge.set('p2p', states([7, bytes(3)]))).toBe(false);
	});

	it('a cleared state leaves once no path holds it; a path that goes takes its states', () => {
		const merge = new AwarenessMerge();
		merge.set('relay', states([7, bytes(1)]));
		merge.set('p2p', states([7, bytes(1)], [8, bytes(8)]));
		// Cleared over the relay first: p2p still holds it.
		expect(merge.set('relay', new Map())).toBe(false);
		expect(merge.states.has(7)).toBe(true);
		expect(merge.set('p2p', states([8, bytes(8)]))).toBe(true);
		expect([...merge.states.keys()]).toEqual([8]);
		expect(merge.drop('p2p')).toBe(true);
		expect(merge.states.size).toBe(0);
		expect(merge.drop('p2p')).toBe(false);
	});

	it('a path reporting an older state it still holds does not undo a newer one', () => {
		const merge = new AwarenessMerge();
		merge.set('relay', states([7, bytes(1)]));
		merge.set('p2p', states([7, bytes(2)]));
		// The relay reports again (another client changed) with 7 unchanged.
		merge.set('relay', states([7, bytes(1)], [9, bytes(9)]));
		expect(merge.states.get(7)).toEqual(bytes(2));
	});

	it('the merged map is a new object after each change', () => {
		const merge = new AwarenessMerge();
		const before = merge.states;
		merge.set('relay', states([1, bytes(1)]));
		expect(merge.states).not.toBe(before);
		expect(before.size).toBe(0);
	});
});
