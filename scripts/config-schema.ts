// Writes docs/relay-config.schema.json from the config's TypeBox schema (npm run docs:config-schema);
// relay/src/config/config-schema.test.ts fails while the file is stale.
import { writeFileSync } from 'node:fs';
import { configJsonSchema } from '../relay/src/config/config-schema.js';

const file = new URL('../docs/relay-config.schema.json', import.meta.url);
writeFileSync(file, `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
process.stdout.write(`wrote ${file.pathname}\n`);
