import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startLabRelay, type LabRelay } from '../helpers/lab-relay.js';
import { OpenSshSession } from '../helpers/openssh.js';
import { RELAY_BIN, startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { waitUntil } from '../helpers/wait.js';

const PROMPT = /lab-1:[^\n]*# /;

/** `GET path` with the admin token, as bytes. */
async function download(relay: RelayProcess, path: string): Promise<{ status: number; data: Buffer; type: string }> {
  const response = await fetch(`${relay.apiUrl}${path}`, { headers: { authorization: `Bearer ${relay.token}` } });
  return { status: response.status, data: Buffer.from(await response.arrayBuffer()), type: response.headers.get('content-type') ?? '' };
}

/** Runs `lifeline-relay recordings verify` on the relay's config. */
function verify(configPath: string): { status: number | null; stdout: string } {
  const result = spawnSync(process.execPath, [RELAY_BIN, 'recordings', 'verify', '--config', configPath], { encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, stdout: result.stdout + result.stderr };
}

/** Reads a .cast with Debian's asciinema package (its own asciicast v2 reader, strict UTF-8) and prints the output events' text. */
const ASCIINEMA_READER = `import sys
from asciinema.asciicast import open_from_url
with open_from_url(sys.argv[1]) as cast:
    assert cast.v2_header["version"] == 2, cast.v2_header
    sys.stdout.write("".join(data for _, _, data in cast.stdout_events()))`;
const asciinemaRead = (file: string): { status: number | null; stdout: string; stderr: string } => spawnSync('/usr/bin/python3', ['-c', ASCIINEMA_READER, file], { encoding: 'utf8' });

/*
 * A recorded serial session on a lab QEMU VM, with OpenSSH: the .cast is read by asciinema (Debian's
 * asciicast reader, not this repository's code), the raw bytes are compared with QEMU's own log of
 * what the guest wrote, the seal with the audit trail; then a byte is flipped, the relay is killed
 * mid-recording, and retention sweeps.
 */
describe('serial session recordings', () => {
  let env: LabRelay;
  let relay: RelayProcess;
  const sessions: OpenSshSession[] = [];
  const recordingDir = (): string => join(env.dir, 'data', 'recordings');

  const open = async (): Promise<OpenSshSession> => {
    const session = new OpenSshSession({ port: relay.sshPort, user: env.user, key: env.key.privateKeyPath });
    sessions.push(session);
    session.send('\r');
    await session.waitFor(PROMPT, 60_000);
    return session;
  };
  const recordings = async (): Promise<Array<Record<string, any>>> => (await relay.api('GET', '/v1/recordings')).body.value;
  const events = async (type: string): Promise<Array<Record<string, any>>> => ((await relay.api('GET', '/v1/auditEvents?limit=1000')).body.value as Array<Record<string, any>>).filter((event) => event.type === type);

  before(async () => {
    env = await startLabRelay('recordings', { recording: { serial: 'on', checkpointInterval: '1s' } });
    relay = env.relay;
  });
  after(async () => {
    for (const session of sessions) session.close();
    await relay?.stop('SIGKILL');
    await env?.dispose();
  });

  test('a recorded session: told on stderr; the .cast is asciicast v2 that asciinema reads, with the typed command\'s output, 0xff 0xfe and a UTF-8 character split across reads', { timeout: 120_000 }, async () => {
    const owner = await open();
    await owner.waitFor(/\[lifeline\] this session is recorded \(recording [0-9a-f]{8}/, 5000);
    owner.send('echo REC$((40+2))\r');
    await owner.waitFor('REC42');
    owner.send("printf 'bad:\\377\\376:end\\n'\r");
    await owner.waitFor(':end');
    // é as two bytes written 300 ms apart: they reach the relay in two reads.
    owner.send("printf 'caf\\303'; sleep 0.3; printf '\\251!\\n'\r");
    await owner.waitFor('!\r\n', 10_000);
    owner.close();
    await waitUntil(async () => (await recordings()).some((recording) => recording.complete), 10_000, 'the recording sealed');
    const [recording] = await recordings();
    assert.equal(recording!.virtualMachine, 'lab-1');
    assert.equal(recording!.participants.length, 1);
    assert.equal(recording!.participants[0].leftBecause, 'client-left');

    const cast = await download(relay, `/v1/recordings/${recording!.id}/serial.cast`);
    assert.equal(cast.status, 200);
    assert.equal(cast.type, 'application/x-asciicast');
    const castFile = join(env.dir, 'session.cast');
    writeFileSync(castFile, cast.data);
    const lines = cast.data.toString('utf8').trimEnd().split('\n');
    const header = JSON.parse(lines[0]!);
    assert.equal(header.version, 2);
    assert.ok(header.width > 0 && header.height > 0);
    let previous = 0;
    for (const line of lines.slice(1)) {
      const [time, code] = JSON.parse(line) as [number, string, string];
      assert.ok(time >= previous, `times never go back (${time} after ${previous})`);
      assert.ok(['o', 'm', 'r', 'i'].includes(code));
      previous = time;
    }
    // asciinema's reader accepts the file and gives the text back.
    const played = asciinemaRead(castFile);
    assert.equal(played.status, 0, played.stderr);
    assert.match(played.stdout, /REC42/);
    assert.match(played.stdout, /bad:\ufffd\ufffd:end/, 'the invalid bytes are U+FFFD in the text');
    assert.match(played.stdout, /café!/, 'the split character is whole');

    // The exact bytes: a slice of what QEMU logged the guest writing.
    const raw = await download(relay, `/v1/recordings/${recording!.id}/serial.raw`);
    const qemuLog = readFileSync(join(env.lab.vmDir('lab-1'), 'serial.log'));
    assert.ok(raw.data.length > 50);
    assert.ok(qemuLog.indexOf(raw.data) >= 0, 'serial.raw is a contiguous slice of the chardev log');
    assert.ok(raw.data.includes(Buffer.from([0xff, 0xfe])));

    // The seal: the manifest's hash is the audit event's.
    const manifestBytes = readFileSync(join(recordingDir(), recording!.id, 'manifest.json'));
    const sealed = (await events('recording.sealed')).find((event) => event.recording === recording!.id);
    assert.equal(sealed?.manifestSha256, createHash('sha256').update(manifestBytes).digest('hex'));
    assert.ok((await events('recording.checkpoint')).some((event) => event.recording === recording!.id), 'checkpoints were audited while it ran');
    const verified = verify(relay.configPath);
    assert.equal(verified.status, 0, verified.stdout);
    assert.match(verified.stdout, new RegExp(`ok ${recording!.id} .*sealed`));
  });

  test('flipping one byte of a segment makes recordings verify fail naming it; deleting needs no hold and is audited', async () => {
    const [recording] = await recordings();
    const rawPath = join(recordingDir(), recording!.id, 'serial.raw');
    const bytes = readFileSync(rawPath);
    bytes[10] = bytes[10]! ^ 0xff;
    writeFileSync(rawPath, bytes);
    const failed = verify(relay.configPath);
    assert.equal(failed.status, 1);
    assert.match(failed.stdout, new RegExp(`FAILED ${recording!.id} .*serial\\.raw: SHA-256 [0-9a-f]{64} does not match`));
    assert.doesNotMatch(failed.stdout, /serial\.cast:/, 'only the changed segment is named');

    const held = await relay.api('PUT', `/v1/recordings/${recording!.id}/hold`, { hold: true, reason: 'case 12' });
    assert.equal(held.status, 200);
    const refused = await relay.api('DELETE', `/v1/recordings/${recording!.id}`);
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'RecordingOnHold');
    assert.equal((await relay.api('PUT', `/v1/recordings/${recording!.id}/hold`, { hold: false })).status, 200);
    assert.equal((await relay.api('DELETE', `/v1/recordings/${recording!.id}`)).status, 204);
    assert.equal((await relay.api('GET', `/v1/recordings/${recording!.id}`)).status, 404);
    assert.ok((await events('api')).some((event) => event.action === 'recording.delete' && event.recording === recording!.id && event.result.status === 204), 'the deletion is audited');
  });

  test('kill -9 of the relay mid-session leaves a playable recording marked incomplete; retention deletes it, audited, and keeps a held one', { timeout: 180_000 }, async () => {
    const owner = await open();
    owner.send('echo BEFORE$((6*7))KILL\r');
    await owner.waitFor('BEFORE42KILL');
    await new Promise((resolve) => setTimeout(resolve, 2500)); // past a checkpoint (every 1 s here)
    await relay.stop('SIGKILL');
    owner.close();

    relay = await startRelay(relay.configPath, join(env.dir, 'data'));
    const [recording] = await recordings();
    assert.equal(recording!.complete, false);
    const cast = await download(relay, `/v1/recordings/${recording!.id}/serial.cast`);
    const castFile = join(env.dir, 'killed.cast');
    writeFileSync(castFile, cast.data);
    const played = asciinemaRead(castFile);
    assert.equal(played.status, 0, played.stderr);
    assert.match(played.stdout, /BEFORE42KILL/);
    const verified = verify(relay.configPath);
    assert.equal(verified.status, 0, verified.stdout);
    assert.match(verified.stdout, /incomplete: verified up to its last checkpoint/);

    // A second, held recording; then a relay whose retention is shorter than both recordings' age.
    const held = await open();
    held.close();
    await waitUntil(async () => (await recordings()).filter((entry) => entry.complete).length === 1, 10_000, 'the second recording sealed');
    const second = (await recordings()).find((entry) => entry.complete)!;
    assert.equal((await relay.api('PUT', `/v1/recordings/${second.id}/hold`, { hold: true, reason: 'legal' })).status, 200);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await relay.stop();
    const config = JSON.parse(readFileSync(relay.configPath, 'utf8'));
    writeFileSync(relay.configPath, JSON.stringify({ ...config, recording: { ...config.recording, retention: '1s' } }));
    relay = await startRelay(relay.configPath, join(env.dir, 'data'));
    const left = await recordings();
    assert.deepEqual(left.map((entry) => entry.id), [second.id], 'the expired one is gone, the held one kept');
    const deleted = (await events('recording.deleted')).find((event) => event.recording === recording!.id);
    assert.equal(deleted?.reason, 'retention');
  });
});
