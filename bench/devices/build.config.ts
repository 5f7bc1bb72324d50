/**
 * The devices benchmark's build of the app: the app's own Vite config
 * (SvelteKit, the same plugins and options) plus one resolver that points
 * the vault's `./automerge` at bench/devices/automerge-switch.ts, which is
 * the real module unless a page asks for the stand-in (benchmark D2).
 * Built by bench/devices/devices.ts as
 * `KITH_BUILD_DIR=… KITH_SVELTEKIT_DIR=… vite build --config bench/devices/build.config.ts`
 * from the repository root.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mergeConfig, type Plugin, type UserConfig } from 'vite';
import app from '../../vite.config';

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));
const VAULT_DIR = here('../../src/lib/vault');
const SWITCH = here('./automerge-switch.ts');

function automergeSwitch(): Plugin {
	return {
		name: 'kith-bench-automerge-switch',
		enforce: 'pre',
		resolveId(source, importer) {
			if (!importer || (source !== './automerge' && source !== './automerge.ts')) return null;
			const from = importer.split('?')[0] as string;
			return dirname(from) === VAULT_DIR && from !== SWITCH ? SWITCH : null;
		}
	};
}

export default mergeConfig(app as UserConfig, {
	root: join(VAULT_DIR, '../../..'),
	plugins: [automergeSwitch()]
});
