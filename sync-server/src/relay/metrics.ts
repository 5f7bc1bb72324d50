/**
 * Counters for `/metrics`, in the Prometheus text exposition format (0.0.4).
 * Metadata only: counts and sizes, never a room id or anything from a frame
 * (refusal reasons are the relay's own fixed codes).
 */
export class RelayMetrics {
	connections = 0;
	framesIn = 0;
	framesOut = 0;
	updatesStored = 0;
	/** Rooms retired (their updates deleted) by this process. */
	roomsRetired = 0;
	readonly refusals = new Map<string, number>();
	/** More metrics in the same format, appended by other parts of the server (push). */
	readonly sections: Array<() => string> = [];

	refused(reason: string, count = 1): void {
		this.refusals.set(reason, (this.refusals.get(reason) ?? 0) + count);
	}

	render(gauges: { roomsActive: number; storageBytes: number }): string {
		const lines: string[] = [];
		const metric = (name: string, type: 'gauge' | 'counter', help: string, value: number) => {
			lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
		};
		metric('kith_connections', 'gauge', 'Open relay WebSocket connections.', this.connections);
		metric(
			'kith_rooms_active',
			'gauge',
			'Rooms held in memory (connected, or used within KITH_ROOM_IDLE_MS).',
			gauges.roomsActive
		);
		metric('kith_frames_in_total', 'counter', 'WebSocket frames received.', this.framesIn);
		metric('kith_frames_out_total', 'counter', 'WebSocket frames sent.', this.framesOut);
		lines.push(
			'# HELP kith_refusals_total Refused connections, frames and updates, by reason.',
			'# TYPE kith_refusals_total counter'
		);
		for (const [reason, count] of [...this.refusals].sort(([a], [b]) => a.localeCompare(b))) {
			lines.push(`kith_refusals_total{reason="${escapeLabel(reason)}"} ${count}`);
		}
		metric(
			'kith_storage_bytes',
			'gauge',
			'Bytes of Yjs updates stored, over all rooms.',
			gauges.storageBytes
		);
		metric(
			'kith_updates_stored_total',
			'counter',
			'Updates written to the database.',
			this.updatesStored
		);
		metric(
			'kith_rooms_retired_total',
			'counter',
			'Rooms retired: their updates deleted once every device moved or the retention limit passed.',
			this.roomsRetired
		);
		for (const section of this.sections) lines.push(section().trimEnd());
		return lines.join('\n') + '\n';
	}
}

function escapeLabel(value: string): string {
	return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
