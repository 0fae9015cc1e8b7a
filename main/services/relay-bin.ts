import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** The relay's command-line entry, shipped inside the app. */
export const RELAY_BIN = join(dirname(createRequire(import.meta.url).resolve('@lifeline/relay/package.json')), 'bin', 'lifeline-relay.js');
