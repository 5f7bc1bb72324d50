import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { findMentions, mentionCandidates, mentionQueryAt, mentionSegments } from './mentions';

const ada = { user: 'u-ada', name: 'Ada' };
const ann = { user: 'u-ann', name: 'Ann' };
const annLee = { user: 'u-annlee', name: 'Ann Lee' };
const bob = { user: 'u-bob', name: 'Bob' };
const members = [ada, ann, annLee, bob];

describe('findMentions', () => {
	it('finds @Name at the start, after spaces and punctuation, whatever the case', () => {
		expect(findMentions('@Ada look', members)).toEqual(['u-ada']);
		expect(findMentions('hi (@bob), and @ADA!', members)).toEqual(['u-bob', 'u-ada']);
		expect(findMentions('@Bob @Bob', members)).toEqual(['u-bob']);
	});

	it('does not read an address or a longer word as a mention', () => {
		expect(findMentions('write to ada@example.org', members)).toEqual([]);
		expect(findMentions('@Adam and @Bobby', members)).toEqual([]);
		expect(findMentions('@ Ada', members)).toEqual([]);
	});

	it('prefers the longer of two names that fit', () => {
		expect(findMentions('@Ann Lee is here', members)).toEqual(['u-annlee']);
		expect(findMentions('@Ann Leeds', members)).toEqual(['u-ann']);
	});

	it('handles names with letters outside ASCII and emoji around them', () => {
		const zoe = { user: 'u-zoe', name: 'Zoë Ørsted' };
		expect(findMentions('🎉@zoë ørsted🎉', [zoe])).toEqual(['u-zoe']);
		expect(findMentions('é@Zoë Ørsted', [zoe])).toEqual([]);
	});

	it('property: mentions placed between plain words are all found, in order, and only them', () => {
		const name = fc.stringMatching(/^[A-Z][a-z]{1,8}$/);
		fc.assert(
			fc.property(
				fc.uniqueArray(name, {
					minLength: 1,
					maxLength: 6,
					comparator: (a, b) => a.toLowerCase() === b.toLowerCase()
				}),
				fc.array(fc.oneof(fc.nat(5), fc.stringMatching(/^[a-z .,!?]{0,12}$/)), { maxLength: 12 }),
				(names, parts) => {
					const people = names.map((n, i) => ({ user: `u${i}`, name: n }));
					const expected: string[] = [];
					const text = parts
						.map((part) => {
							if (typeof part === 'string') return part.replaceAll('@', '');
							const person = people[part % people.length]!;
							if (!expected.includes(person.user)) expected.push(person.user);
							return `@${person.name}`;
						})
						.join(' ');
					expect(findMentions(text, people)).toEqual(expected);
				}
			)
		);
	});
});

describe('mentionSegments', () => {
	it('cuts the text into plain stretches and mentions', () => {
		expect(mentionSegments('hi @Bob and @ann lee!', members)).toEqual([
			{ text: 'hi ' },
			{ text: '@Bob', user: 'u-bob' },
			{ text: ' and ' },
			{ text: '@ann lee', user: 'u-annlee' },
			{ text: '!' }
		]);
		expect(mentionSegments('nothing here', members)).toEqual([{ text: 'nothing here' }]);
	});

	it('property: the segments always join back into the text', () => {
		fc.assert(
			fc.property(fc.string({ unit: 'grapheme' }), (text) => {
				const joined = mentionSegments(text, members)
					.map((s) => s.text)
					.join('');
				expect(joined).toBe(text);
			})
		);
	});
});

describe('mentionQueryAt', () => {
	it('reads the name being typed after an @', () => {
		expect(mentionQueryAt('hello @Bo', 9)).toEqual({ start: 6, query: 'Bo' });
		expect(mentionQueryAt('@', 1)).toEqual({ start: 0, query: '' });
		expect(mentionQueryAt('@Ann L', 6)).toEqual({ start: 0, query: 'Ann L' });
	});

	it('is not a mention in an address, after a new line, or after a space right after @', () => {
		expect(mentionQueryAt('ada@exa', 7)).toBeNull();
		expect(mentionQueryAt('@Bo\nb', 5)).toBeNull();
		expect(mentionQueryAt('@ Bo', 4)).toBeNull();
		expect(mentionQueryAt('plain text', 10)).toBeNull();
	});
});

describe('mentionCandidates', () => {
	it('lists names that start with the query, then names with a word that does', () => {
		const lee = { user: 'u-lee', name: 'Lee' };
		expect(mentionCandidates('le', [...members, lee]).map((m) => m.name)).toEqual([
			'Lee',
			'Ann Lee'
		]);
		expect(mentionCandidates('A', members).map((m) => m.name)).toEqual(['Ada', 'Ann', 'Ann Lee']);
		expect(mentionCandidates('', members)).toHaveLength(4);
		expect(mentionCandidates('zz', members)).toEqual([]);
	});
});
