/**
 * A token bucket per connection and quantity (frames, bytes). It refills at
 * `ratePerSec` up to `burst`. A frame is let through while the bucket is not
 * empty and then takes its full size, which may leave the bucket in debt:
 * so a frame larger than the burst still passes on its own, and pays for it
 * by the following silence.
 */
export class TokenBucket {
	readonly #rate: number;
	readonly #burst: number;
	readonly #now: () => number;
	#tokens: number;
	#at: number;

	constructor(
		ratePerSec: number,
		burst: number,
		now: () => number = performance.now.bind(performance)
	) {
		this.#rate = ratePerSec / 1000;
		this.#burst = burst;
		this.#now = now;
		this.#tokens = burst;
		this.#at = now();
	}

	/** Whether `amount` may pass now; if so it is taken. */
	take(amount = 1): boolean {
		this.#refill();
		if (this.#tokens <= 0) return false;
		this.#tokens -= amount;
		return true;
	}

	#refill(): void {
		const now = this.#now();
		this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#rate);
		this.#at = now;
	}
}
