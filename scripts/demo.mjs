#!/usr/bin/env node
// `npm start`: the embedded default until the desktop app lands. Boots two lab VMs, runs the
// relay on them, creates a console for each with a key kept in ./lifeline-lab, and prints the
// exact ssh command that opens each serial console. Ctrl-C stops the relay and the VMs.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'relay', 'bin', 'lifeline-relay.js');
const dir = resolve(process.env.LIFELINE_LAB_DIR ?? join(root, 'lifeline-lab'));
const log = (line) => process.stderr.write(`${line}\n`);

function labDown() {
  try {
    execFileSync(process.execPath, [bin, 'lab', 'down', '--dir', dir], { stdio: 'inherit' });
  } catch {
    // Already down.
  }
}

log(`Lifeline demo: lab VMs and a relay in ${dir}`);
let configPath;
try {
  configPath = execFileSync(process.execPath, [bin, 'lab', 'up', '--vms', '2', '--dir', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
} catch {
  log('Could not start the lab VMs (see above). Install the prerequisites with: bash scripts/setup.sh');
  process.exit(1);
}

const relayLog = join(dir, 'relay.log');
const relay = spawn(process.execPath, [bin, 'serve', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
let output = '';
const ready = await new Promise((resolveReady) => {
  const onData = (chunk) => {
    output += chunk.toString();
    const line = output.split('\n').find((l) => l.includes('"relay ready"'));
    if (line) resolveReady(JSON.parse(line));
  };
  relay.stdout.on('data', onData);
  relay.stderr.on('data', (chunk) => (output += chunk.toString()));
  relay.once('exit', () => resolveReady(undefined));
});
if (!ready) {
  log(`The relay did not start:\n${output.trim()}`);
  labDown();
  process.exit(1);
}
relay.stdout.on('data', (chunk) => writeFileSync(relayLog, chunk, { flag: 'a' }));

const token = readFileSync(join(dir, 'data', 'admin.token'), 'utf8').trim();
const keyPath = join(dir, 'id_ed25519');
if (!existsSync(keyPath)) {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'lifeline-demo', '-f', keyPath]);
}
chmodSync(keyPath, 0o600);
const publicKey = readFileSync(`${keyPath}.pub`, 'utf8').trim();
const sshPort = ready.endpoints.find((e) => e.name === 'default').sshPort;

const lines = [];
const vncLines = [];
for (const vm of ready.virtualMachines) {
  const response = await fetch(`${ready.api}/v1/virtualMachines/${vm}/console`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ enabled: true, sshPublicKey: { keyData: publicKey } }),
  });
  const body = await response.json();
  if (!response.ok) {
    log(`Could not create the console for ${vm}: ${body.error?.message ?? response.status}`);
    continue;
  }
  lines.push(`  ${vm}:  ssh -i ${keyPath} -p ${sshPort} ${body.virtualMachineAccessId}@127.0.0.1`);
  vncLines.push(`  ${vm}:  ssh -i ${keyPath} -p ${sshPort} -N -L 5901:vnc:5900 ${body.virtualMachineAccessId}@127.0.0.1   then a VNC viewer on localhost:5901`);
}

process.stdout.write(`
Lifeline relay is running.
  API:          ${ready.api}  (token in ${join(dir, 'data', 'admin.token')})
  Relay log:    ${relayLog}

Open a VM's serial console (press Enter for the prompt; the VMs boot in a few seconds):
${lines.join('\n')}

Its screen, for any VNC viewer:
${vncLines.join('\n')}

Its screen in a browser (open the "url" this prints within 60 s):
  curl -s -X POST -H "Authorization: Bearer $(cat ${join(dir, 'data', 'admin.token')})" ${ready.api}/v1/virtualMachines/lab-1/vncTokens

Press Ctrl-C to stop the relay and the lab VMs.
`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  log('\nStopping the relay and the lab VMs...');
  relay.kill('SIGTERM');
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
relay.once('exit', (code) => {
  labDown();
  process.exit(stopping ? 0 : code ?? 1);
});
