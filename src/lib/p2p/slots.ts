/**
 * At most `size` tasks at once; the others wait their turn, in the order they
 * came. A task that ends hands its place straight to the next one waiting,
 * so a newcomer can never slip in between and go over the limit.
 */
export class Slots {
	#free: number;
	readonly #waiting: (() => void)[] = [];

	constructor(size: number) {
		this.#free = size;
	}

	async run<T>(task: () => Promise<T>): Promise<T> {
		if (this.#free > 0) this.#free--;
		else await new Promise<void>((resolve) => this.#waiting.push(resolve));
		try {
			return await task();
		} finally {
			const next = this.#waiting.shift();
			if (next) next();
			else this.#free++;
		}
	}
}
