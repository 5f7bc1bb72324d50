/**
 * Push counters for `/metrics` (Prometheus text 0.0.4), appended to the
 * relay's. Counts only: never an endpoint, a room or a payload.
 */
export type PushFailure =
	/** 404/410: the subscription expired; it was removed. */
	| 'gone'
	/** 429 from the push service. */
	| 'throttled'
	/** 5xx from the push service. */
	| 'server'
	/** Any other status: the push service refused the request (not retried). */
	| 'rejected'
	/** No answer: connection refused or reset, timeout, TLS. */
	| 'network';

export class PushMetrics {
	sent = 0;
	retries = 0;
	/** Pushes given up: retries exhausted, or the queue was full. */
	dropped = 0;
	/** Notifications not fanned out: over the room's notify rate. */
	limited = 0;
	readonly failures = new Map<PushFailure, number>();

	failed(reason: PushFailure): void {
		this.failures.set(reason, (this.failures.get(reason) ?? 0) + 1);
	}

	render(subscriptions: number): string {
		const lines: string[] = [];
		const metric = (name: string, type: 'gauge' | 'counter', help: string, value: number) => {
			lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
		};
		metric('kith_push_subscriptions', 'gauge', 'Push subscriptions stored.', subscriptions);
		metric('kith_push_sent_total', 'counter', 'Pushes a push service accepted.', this.sent);
		lines.push(
			'# HELP kith_push_failed_total Push attempts that failed, by reason.',
			'# TYPE kith_push_failed_total counter'
		);
		for (const [reason, count] of [...this.failures].sort(([a], [b]) => a.localeCompare(b))) {
			lines.push(`kith_push_failed_total{reason="${reason}"} ${count}`);
		}
		metric('kith_push_retries_total', 'counter', 'Push attempts scheduled again.', this.retries);
		metric(
			'kith_push_dropped_total',
			'counter',
			'Pushes given up (retries exhausted or queue full).',
			this.dropped
		);
		metric(
			'kith_push_limited_total',
			'counter',
			"Notifications not pushed: over the room's notify rate.",
			this.limited
		);
		return lines.join('\n') + '\n';
	}
}
