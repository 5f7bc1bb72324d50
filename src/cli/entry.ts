/** Process entry of `kith` (bin/kith.mjs loads it through tsx). */
import { main } from './main';

process.on('unhandledRejection', (error) => {
	// A network or peer failure must never take the process down (DESIGN, invariant 5).
	if (process.env.KITH_DEBUG === '1') console.error('kith: unhandled', error);
});

process.exitCode = await main(process.argv.slice(2));
// libp2p and sockets may leave handles open after stop: the command is done.
process.exit(process.exitCode);
