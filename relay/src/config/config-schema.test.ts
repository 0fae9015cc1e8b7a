import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { configJsonSchema } from './config-schema.js';
import { parseConfig } from './parse-config.js';

const root = new URL('../../../', import.meta.url);
const published = readFileSync(new URL('docs/relay-config.schema.json', root), 'utf8');
const relayDoc = readFileSync(new URL('docs/relay.md', root), 'utf8');
/** The annotated example under "## Config file" in docs/relay.md. */
const example = parseYaml(/## Config file[\s\S]*?```yaml\n([\s\S]*?)```/.exec(relayDoc)![1]!) as unknown;

/** The published schema under a strict, independent JSON Schema validator (ajv), which knows errorMessage only as a word. */
function validator() {
  const ajv = new Ajv({ strict: true, allErrors: true });
  ajv.addVocabulary(['errorMessage']);
  return ajv.compile(JSON.parse(published) as object);
}

test('docs/relay-config.schema.json is the schema the relay checks with (run npm run docs:config-schema after a change)', () => {
  assert.equal(published, `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
});

test("the published schema compiles under ajv's strict mode and takes what the relay takes", () => {
  const validate = validator();
  assert.equal(validate(example), true, JSON.stringify(validate.errors));
  assert.equal(validate({}), true, 'every key is optional');
  assert.ok(parseConfig(example, '/etc/lifeline/relay.yaml', '/etc/lifeline').virtualMachines.length >= 3);
  for (const [document, path] of [
    [{ sssh: {} }, ''],
    [{ ssh: { port: 70000 } }, '/ssh/port'],
    [{ log: { level: 'loud' } }, '/log/level'],
    [{ virtualMachines: [{ name: '-x', vnc: '/a' }] }, '/virtualMachines/0/name'],
    [{ virtualMachines: [{ vnc: '/a' }] }, '/virtualMachines/0'],
    [{ api: { tls: { mode: 'maybe' } } }, '/api/tls'],
  ] as const) {
    assert.equal(validate(document), false, JSON.stringify(document));
    assert.ok(validate.errors?.some((error) => error.instancePath === path), `${JSON.stringify(document)}: ${JSON.stringify(validate.errors)}`);
    assert.throws(() => parseConfig(document, 'x', '/srv'), /./);
  }
});

test('every key of the schema is in the docs/relay.md key table', () => {
  const keys: string[] = [];
  const walk = (schema: Record<string, unknown>, path: string): void => {
    for (const variant of (schema.anyOf as Record<string, unknown>[] | undefined) ?? []) walk(variant, path);
    if (schema.items) walk(schema.items as Record<string, unknown>, `${path}[]`);
    for (const [name, property] of Object.entries((schema.properties as Record<string, Record<string, unknown>> | undefined) ?? {})) {
      const key = path ? `${path}.${name}` : name;
      keys.push(key);
      walk(property, key);
    }
  };
  walk(configJsonSchema(), '');
  const table = relayDoc.slice(relayDoc.indexOf('| key | default | meaning |'));
  // A row names a key in full (`api.tls.cert`), or after a full one as its sibling (`.vnc`, `api.tls.key`).
  const named = new Set([...table.matchAll(/`([A-Za-z.[\]]+)`/g)].map((match) => match[1]!));
  const missing = [...new Set(keys)].filter((key) => {
    const sections = [...new Set(keys)].some((other) => other.startsWith(`${key}.`) || other.startsWith(`${key}[].`));
    return !sections && !named.has(key) && !named.has(key.slice(key.lastIndexOf('.')));
  });
  assert.deepEqual(missing, [], 'keys the relay takes that docs/relay.md does not describe');
});
