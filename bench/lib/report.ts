/** Number formatting and the result table every benchmark section prints. */

export const fmt = (n: number, digits = 0): string =>
	Number.isFinite(n)
		? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
		: '—';
export const ratio = (n: number): string => (Number.isFinite(n) ? `${fmt(n, 2)}×` : '—');
export const sizeLabel = (n: number): string =>
	n >= 1000 ? `${fmt(n / 1000, n % 1000 ? 1 : 0)}k` : `${n}`;
export const mb = (bytes: number): string => `${fmt(bytes / 2 ** 20)} MiB`;

export interface Row {
	name: string;
	value: string;
	baseline?: string;
	ratio?: string;
	target?: string;
	result?: 'PASS' | 'MISS';
	note?: string;
}

export function printTable(rows: Row[]): void {
	const head: Row = {
		name: 'Benchmark',
		value: 'Median',
		baseline: 'Baseline',
		ratio: 'Ratio',
		target: 'Target',
		result: undefined,
		note: 'Notes'
	};
	const cells = (r: Row): string[] => [
		r.name,
		r.value,
		r.baseline ?? '',
		r.ratio ?? '',
		r.target ?? '',
		r === head ? 'Result' : (r.result ?? ''),
		r.note ?? ''
	];
	const all = [head, ...rows].map(cells);
	const widths = all[0]!.map((_, i) => Math.max(...all.map((c) => (c[i] as string).length)));
	const line = (c: string[]): string =>
		c
			.map((cell, i) =>
				i === 1 || i === 2 || i === 3 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)
			)
			.join('  ')
			.trimEnd();
	process.stdout.write(`\n${line(all[0]!)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
	for (const c of all.slice(1)) process.stdout.write(`${line(c)}\n`);
}
