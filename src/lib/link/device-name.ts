/** A device's name for the Devices list, from its browser: "Firefox on Linux". */
export function deviceNameFrom(userAgent: string): string {
	const browser = /Firefox\//.test(userAgent)
		? 'Firefox'
		: /Edg\//.test(userAgent)
			? 'Edge'
			: /Chrom(e|ium)\//.test(userAgent) || /HeadlessChrome/.test(userAgent)
				? 'Chrome'
				: /Safari\//.test(userAgent)
					? 'Safari'
					: 'Browser';
	const system = /Android/.test(userAgent)
		? 'Android'
		: /iPhone|iPad|iPod/.test(userAgent)
			? 'iOS'
			: /Mac OS X|Macintosh/.test(userAgent)
				? 'macOS'
				: /Windows/.test(userAgent)
					? 'Windows'
					: /CrOS/.test(userAgent)
						? 'ChromeOS'
						: /Linux/.test(userAgent)
							? 'Linux'
							: null;
	return system ? `${browser} on ${system}` : browser;
}
