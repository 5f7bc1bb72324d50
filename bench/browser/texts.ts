/**
 * Deterministic chat-like message texts: 16–147 characters, mostly short,
 * from a fixed word list, so every run and every baseline sees the same
 * sizes (53 characters on average).
 */
const WORDS = (
	'ok yes no maybe tomorrow tonight later lunch dinner coffee train late sorry thanks ' +
	'great see you soon call me when where what how about the meeting photo sent back ' +
	'home work done almost ready leaving now traffic is bad running ten minutes behind ' +
	'did you get my message sounds good let me know love it haha sure thing on my way'
).split(' ');

/** Small, fast PRNG (mulberry32), so texts depend only on the index. */
export function random(seed: number): () => number {
	let a = seed >>> 0;
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

export function messageText(index: number): string {
	const next = random(index * 2654435761);
	// Skewed towards short messages, as chats are.
	const target = 12 + Math.floor(next() * next() * 128);
	let text = '';
	while (text.length < target) {
		const word = WORDS[Math.floor(next() * WORDS.length)] ?? 'ok';
		text = text ? `${text} ${word}` : word;
	}
	return `${text.slice(0, 140)} #${index}`;
}

export function messageTexts(start: number, count: number): string[] {
	const texts: string[] = new Array(count);
	for (let i = 0; i < count; i++) texts[i] = messageText(start + i);
	return texts;
}
