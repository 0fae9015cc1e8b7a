import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ConfigError, parseConfig } from './parse-config.js';

/** Cases in CI; `LIFELINE_FUZZ_RUNS` (npm run fuzz) runs more. */
const RUNS = Number(process.env.LIFELINE_FUZZ_RUNS ?? 3000);

const KEYS = ['dataDir', 'api', 'listen', 'tls', 'mode', 'cert', 'key', 'ssh', 'port', 'loginGraceTime', 'maxStartups', 'perSourceMaxStartups', 'keepaliveInterval', 'vnc', 'tokenTtl', 'endpoints', 'default', 'ipAddress', 'allowedSourcePrefixes', 'addressPool', 'consoles', 'defaultTtl', 'maxTtl', 'serial', 'replayBytes', 'log', 'level', 'audit', 'maxFileBytes', 'keepFiles', 'maxAge', 'refusalsPerMinute', 'maxSessions', 'virtualMachines', 'name', 'qmp', 'protocol', 'path', 'discover', 'libvirt', 'uri', 'proxmox', 'runDir', 'configDir', '__proto__', 'constructor'];
const VALUES = fc.oneof(
  fc.constantFrom('127.0.0.1:8440', '0.0.0.0:0', '[::1]:1', 'auto', 'on', 'off', '10:30:100', '1:2', '24h', '0s', '1e9', '-1', 'telnet://127.0.0.1:23', 'tcp://x:99999', '/run/x.sock', 'vm-1', '127.0.0.0/8', '300.1.1.1/33', 'qemu:///system', ''),
  fc.integer({ min: -2, max: 70_000 }),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.string({ maxLength: 20 }),
);
/** Documents shaped like configs: known keys, nested, with plausible and implausible values. */
const documents = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, VALUES, tie('object'), fc.array(tie('value'), { maxLength: 3 })),
  object: fc.dictionary(fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 8 })), tie('value'), { maxKeys: 6 }),
})).object;

test(`${RUNS} random config documents: each is accepted or refused with a ConfigError naming a key, never another exception`, () => {
  fc.assert(
    fc.property(fc.oneof(documents, fc.anything()), (document) => {
      try {
        const config = parseConfig(document, '/etc/lifeline/relay.yaml', '/etc/lifeline');
        assert.equal(typeof config.dataDir, 'string');
        assert.ok(Number.isInteger(config.ssh.port));
      } catch (error) {
        if (!(error instanceof ConfigError)) throw new Error(`not a ConfigError for ${JSON.stringify(document)?.slice(0, 300)}`, { cause: error });
        assert.ok(error.key.length > 0 && error.message.length > error.key.length, error.message);
      }
    }),
    { numRuns: RUNS },
  );
});
