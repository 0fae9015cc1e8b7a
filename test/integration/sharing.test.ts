import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import ssh2 from 'ssh2';
import { startLabRelay, type LabRelay } from '../helpers/lab-relay.js';
import { OpenSshSession } from '../helpers/openssh.js';
import { waitUntil } from '../helpers/wait.js';

const PROMPT = /lab-1:[^\n]*# /;

/*
 * Two people on one serial console, as they would do it: OpenSSH clients on a lab QEMU VM, one
 * owner and observers joining with `ssh … observe`. What reached the guest is read from QEMU's own
 * chardev log (everything the guest wrote, its echo of typed input included), not from the relay.
 */
describe('a shared serial console over OpenSSH: observers, hand-over, audit', () => {
  let env: LabRelay;
  const sessions: OpenSshSession[] = [];
  const clients: ssh2.Client[] = [];
  let serialLog: string;

  const open = (command?: string[]): OpenSshSession => {
    const session = new OpenSshSession({ port: env.relay.sshPort, user: env.user, key: env.key.privateKeyPath, ...(command && { command }) });
    sessions.push(session);
    return session;
  };
  const guestSaid = (): string => readFileSync(serialLog, 'latin1');
  const sharingEvents = async (afterSeq: number): Promise<Array<Record<string, any>>> =>
    ((await env.relay.api('GET', `/v1/auditEvents?afterSeq=${afterSeq}&limit=1000`)).body.value as Array<Record<string, any>>).filter((event) => event.type.startsWith('session.'));
  const lastSeq = async (): Promise<number> => (await env.relay.api('GET', '/v1/auditEvents?limit=1000')).body.value.at(-1).seq as number;

  let owner: OpenSshSession;

  before(async () => {
    env = await startLabRelay('sharing');
    serialLog = join(env.lab.vmDir('lab-1'), 'serial.log');
    owner = open();
    owner.send('\r');
    await owner.waitFor(PROMPT, 60_000);
  });
  after(async () => {
    for (const session of sessions) session.close();
    for (const client of clients) client.end();
    await env?.dispose();
  });

  test('allowObservers is false unless the owner sets it: every observer is refused with the reason, the owner undisturbed', async () => {
    const shown = await env.relay.api('GET', '/v1/virtualMachines/lab-1/console');
    assert.equal(shown.body.allowObservers, false);
    assert.equal(shown.body.maxObservers, 4);
    const observer = open(['observe']);
    assert.equal(await observer.exited, 1);
    assert.match(observer.output, /\[lifeline\] observe refused: the console of lab-1 does not allow observers/);
    assert.ok(owner.running, 'the owner is still connected');
    const patched = await env.relay.api('PATCH', '/v1/virtualMachines/lab-1/console', { allowObservers: true });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal(patched.body.allowObservers, true);
    const bad = await env.relay.api('PATCH', '/v1/virtualMachines/lab-1/console', { maxObservers: 0 });
    assert.equal(bad.status, 400);
  });

  test('an observer gets the owner\'s output within 500 ms, its typing never reaches the guest, and the owner stays connected', async () => {
    const observer = open(['observe']);
    await observer.waitFor('observing lab-1: read-only', 15_000);
    observer.send('echo HACK\r');
    await observer.waitFor('your typing is not sent to the VM', 5000);
    const from = observer.output.length;
    const typed = Date.now();
    owner.send('echo OWNER$((20+22))\r');
    await observer.waitFor('OWNER42', 5000, from);
    const latency = Date.now() - typed;
    console.error(`# the owner's command output reached the observer ${latency} ms after it was typed (typing, the guest's echo and run included)`);
    assert.ok(latency < 500, `the owner's output reached the observer in ${latency} ms`);
    await owner.waitFor('OWNER42');
    // Whatever the guest received it would have echoed: QEMU's log of its output has the owner's line and no HACK.
    await waitUntil(() => guestSaid().includes('OWNER42'), 5000, 'the guest\'s output in the chardev log');
    assert.doesNotMatch(guestSaid(), /HACK/);
    assert.ok(owner.running);
    observer.close();
  });

  test('an observer\'s window size never changes the console\'s: the guest\'s stty size is the same after it resizes', async () => {
    // The guest's own view of its terminal's size: a serial line has none (the lab's ttyS0 answers TIOCGWINSZ with
    // ENOTTY), so what `stty -a` prints is compared whole, and QEMU's log shows the guest received nothing while the observer resized.
    const size = async (): Promise<string> => {
      const from = owner.output.length;
      owner.send('stty -a 2>&1 | head -n 2; echo SIZE-DONE\r');
      await owner.waitFor(/\nSIZE-DONE/, 10_000, from);
      return owner.output.slice(from).split('\nSIZE-DONE')[0]!.replace(/\r?\n?\[lifeline\][^\n]*\n/g, '').split('\n').slice(1).join('\n');
    };
    const before = await size();
    const client = new ssh2.Client();
    clients.push(client);
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve()).once('error', reject);
      client.connect({ host: '127.0.0.1', port: env.relay.sshPort, username: env.user, privateKey: readFileSync(env.key.privateKeyPath) });
    });
    const channel = await new Promise<ssh2.ClientChannel>((resolve, reject) => client.exec('observe', { pty: { rows: 24, cols: 80, term: 'xterm' } }, (error, stream) => (error ? reject(error) : resolve(stream))));
    let seen = '';
    channel.stderr.on('data', (chunk: Buffer) => (seen += chunk.toString()));
    channel.on('data', () => undefined);
    await waitUntil(() => seen.includes('observing lab-1'), 10_000, 'the observer joined');
    const logged = guestSaid().length;
    channel.setWindow(91, 211, 0, 0);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(guestSaid().length, logged, 'the guest wrote nothing while the observer resized (a size change would make a shell redraw)');
    assert.equal(await size(), before);
    assert.match(before, /speed \d+ baud/);
    client.end();
  });

  test('the fifth observer is refused with the reason; GET /v1/sessions lists everyone with their role', async () => {
    const observers = [1, 2, 3, 4].map(() => open(['observe']));
    for (const observer of observers) await observer.waitFor('observing lab-1', 15_000);
    const fifth = open(['observe']);
    assert.equal(await fifth.exited, 1);
    assert.match(fifth.output, /observe refused: lab-1 already has 4 observers, its limit \(maxObservers 4\)/);
    const listed = (await env.relay.api('GET', '/v1/sessions')).body.value as Array<{ role: string; virtualMachine: string }>;
    assert.deepEqual(listed.map((session) => session.role).sort(), ['controller', 'observer', 'observer', 'observer', 'observer']);
    await owner.waitFor(/joined as an observer \(4 watching\)/, 5000);
    for (const observer of observers) observer.close();
    await waitUntil(async () => (await env.relay.api('GET', '/v1/sessions')).body.value.length === 1, 5000, 'the observers gone');
  });

  test('control by request and approval, refusal, no answer in 30 s, hand-over and force: each role change takes effect and is audited in order', { timeout: 120_000 }, async () => {
    const start = await lastSeq();
    const colleague = open(['observe']);
    await colleague.waitFor('observing lab-1', 15_000);
    // OpenSSH turns ~~ at the start of a line into one ~: the relay sees ~r.
    colleague.send('\r~~r');
    await owner.waitFor(/asks for control: Enter ~~a hands it over, ~~d refuses/, 5000);
    owner.send('\r~~a');
    await colleague.waitFor('you have control of lab-1 now (approved)', 5000);
    await owner.waitFor(/has control now \(approved\); you are observing/, 5000);
    colleague.send('\recho NEWCTL$((3+3))\r');
    await waitUntil(() => guestSaid().includes('NEWCTL6'), 10_000, 'the new controller\'s command ran');
    await owner.waitFor('NEWCTL6', 5000);
    owner.send('echo OLDCTL$((4+4))\r');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.doesNotMatch(guestSaid(), /OLDCTL/, 'the old controller is an observer now');

    // The owner asks back: refused, then asks again and nobody answers.
    // Waits look only at what came after the step (the typing reminder also says "~~r asks for control").
    const colleagueFrom = colleague.output.length;
    owner.send('\r~~r');
    await colleague.waitFor(/session [0-9a-f]{8} \([^)]*\) asks for control:/, 5000, colleagueFrom);
    colleague.send('\r~~d');
    await owner.waitFor('your request for control was refused; you are still observing', 5000);
    const ownerFrom = owner.output.length;
    owner.send('\r~~r');
    await owner.waitFor(/waiting up to 30 s/, 5000, ownerFrom);
    await owner.waitFor('no answer to your request for control', 40_000);

    // The colleague hands over (to the longest-watching observer: the owner), then an operator forces it back.
    colleague.send('\r~~h');
    await owner.waitFor('you have control of lab-1 now (handed over)', 5000);
    const colleagueId = ((await env.relay.api('GET', '/v1/sessions')).body.value as Array<{ id: string; role: string }>).find((session) => session.role === 'observer')!.id;
    const forced = await env.relay.api('POST', `/v1/sessions/${colleagueId}/control`, { reason: 'incident 7: taking over' });
    assert.equal(forced.status, 200, JSON.stringify(forced.body));
    assert.equal(forced.body.role, 'controller');
    await owner.waitFor(/has control now \(forced: incident 7: taking over\); you are observing/, 5000);
    const again = await env.relay.api('POST', `/v1/sessions/${colleagueId}/control`, { reason: 'twice' });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'AlreadyController');
    assert.equal((await env.relay.api('POST', `/v1/sessions/${colleagueId}/control`, {})).status, 400, 'a reason is required');

    const events = (await sharingEvents(start)).filter((event) => event.type !== 'session.control.force');
    assert.deepEqual(
      events.map((event) => [event.type, event.how ?? event.reason ?? event.role]),
      [
        ['session.opened', 'observer'],
        ['session.control.requested', undefined],
        ['session.control.changed', 'approved'],
        ['session.control.requested', undefined],
        ['session.control.denied', 'refused'],
        ['session.control.requested', undefined],
        ['session.control.denied', 'timeout'],
        ['session.control.changed', 'handover'],
        ['session.control.changed', 'forced'],
      ],
    );
    const forcedEvent = events.at(-1)!;
    assert.equal(forcedEvent.reason, 'incident 7: taking over');
    assert.equal(forcedEvent.actor.tokenName, 'admin');
    colleague.close();
  });

  test('turning allowObservers off ends every observer with the reason and exit status 21; the controller stays', async () => {
    // The forced controller left: nobody has control, so asking takes it at once.
    owner.send('\r~~r');
    await owner.waitFor('you have control of lab-1 now (nobody had it)', 5000);
    const observer = open(['observe']);
    await observer.waitFor('observing lab-1', 15_000);
    const patched = await env.relay.api('PATCH', '/v1/virtualMachines/lab-1/console', { allowObservers: false });
    assert.equal(patched.status, 200);
    assert.equal(await observer.exited, 21);
    assert.match(observer.output, /\[lifeline\] session closed: the console for lab-1 no longer allows observers/);
    assert.ok(owner.running);
  });
});
