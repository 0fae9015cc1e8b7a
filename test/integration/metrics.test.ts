import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { runCleanups } from '../helpers/cleanup.js';
import { startLabRelay, type LabRelay } from '../helpers/lab-relay.js';
import { generateKey, OpenSshSession, sshOnce, type KeyPair } from '../helpers/openssh.js';
import type { RelayProcess } from '../helpers/relay-process.js';

/** One sample's value from the exposition text; undefined when the series is absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** GET /metrics as Prometheus scrapes it: a bearer token with the metrics scope. */
describe('GET /metrics: Prometheus text that promtool accepts, with counters that move', () => {
  let env: LabRelay;
  let relay: RelayProcess;
  let key: KeyPair;
  let user: string;
  let scrapeToken: string;
  const cleanups: Array<() => unknown> = [];

  before(async () => {
    env = await startLabRelay('metrics');
    ({ relay, key, user } = env);
    scrapeToken = (await relay.api('POST', '/v1/tokens', { name: 'prometheus', scopes: ['metrics'] })).body.token;
  });

  after(() => runCleanups([...cleanups.reverse(), () => env?.dispose()]));

  async function scrape(): Promise<string> {
    const response = await fetch(`${relay.apiUrl}/metrics`, { headers: { authorization: `Bearer ${scrapeToken}` } });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    return response.text();
  }

  function promtool(text: string): { code: number | null; out: string } {
    const result = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    return { code: result.status, out: `${result.stdout}${result.stderr}` };
  }

  test('the scope is required; the text passes promtool check metrics and names the build', async () => {
    const refused = await relay.api('GET', '/metrics', undefined, { authorization: `Bearer ${(await relay.api('POST', '/v1/tokens', { name: 'reader', scopes: ['consoles:read'] })).body.token}` });
    assert.equal(refused.status, 403);
    assert.match(refused.body.error.message, /lacks the scope "metrics"/);
    const text = await scrape();
    const checked = promtool(text);
    assert.equal(checked.code, 0, checked.out);
    assert.match(text, /^lifeline_build_info\{version="[^"]+",node="v\d+/m);
    assert.equal(sample(text, 'lifeline_vm_attached{vm="lab-1",channel="serial"}'), 1);
    assert.equal(sample(text, 'lifeline_vm_power_state{vm="lab-1",state="Running",source="static"}'), 1);
    assert.equal(sample(text, 'lifeline_api_requests_total{route="/v1/virtualMachines/:vm/console",method="PUT",status="201"}'), 1, 'routes are patterns, never VM names');
    assert.ok(sample(text, 'lifeline_api_request_duration_seconds_count{route="/v1/virtualMachines/:vm/console",method="PUT"}')! >= 1);
    // What operators expect of any Node service (prom-client's defaults), with values that are the relay process's own.
    assert.ok(sample(text, 'process_cpu_seconds_total')! > 0, 'process CPU');
    const rss = sample(text, 'process_resident_memory_bytes')!;
    const statusRss = Number(/VmRSS:\s+(\d+) kB/.exec(spawnSync('cat', [`/proc/${relay.child.pid}/status`], { encoding: 'utf8' }).stdout)![1]) * 1024;
    assert.ok(Math.abs(rss - statusRss) < statusRss * 0.5, `resident memory ${rss} is the relay's (${statusRss} in /proc)`);
    assert.ok(sample(text, 'process_open_fds')! > 5, 'open file descriptors');
    assert.ok(sample(text, 'nodejs_eventloop_lag_seconds')! >= 0, 'event-loop lag');
    assert.match(text, /^# TYPE nodejs_gc_duration_seconds histogram$/m, 'GC durations');
    assert.match(text, /^nodejs_heap_size_used_bytes \d+/m);
  });

  test('with live sessions the counters move as sessions open, are displaced and close, and promtool still accepts it', async () => {
    const before = await scrape();
    assert.equal(sample(before, 'lifeline_sessions_open{kind="serial",path="ssh"}'), 0);
    const first = new OpenSshSession({ port: relay.sshPort, user, key: key.privateKeyPath });
    cleanups.push(() => first.close());
    first.send('\r');
    await first.waitFor(/# /, 60_000);
    await first.run('echo metrics-$((2*21))', /metrics-42/);
    const live = await scrape();
    assert.equal(promtool(live).code, 0, promtool(live).out);
    assert.equal(sample(live, 'lifeline_sessions_open{kind="serial",path="ssh"}'), 1);
    assert.equal(sample(live, 'lifeline_sessions_opened_total{kind="serial",path="ssh"}'), 1);
    assert.ok(sample(live, 'lifeline_session_bytes_total{kind="serial",direction="out"}')! > 0);
    assert.ok(sample(live, 'lifeline_session_bytes_total{kind="serial",direction="in"}')! > 0);

    const second = new OpenSshSession({ port: relay.sshPort, user, key: key.privateKeyPath });
    cleanups.push(() => second.close());
    await first.waitFor('another session was opened for lab-1');
    second.send('\r');
    await second.waitFor(/# /, 30_000);
    const displaced = await scrape();
    assert.equal(sample(displaced, 'lifeline_sessions_open{kind="serial",path="ssh"}'), 1);
    assert.equal(sample(displaced, 'lifeline_sessions_opened_total{kind="serial",path="ssh"}'), 2);
    assert.equal(sample(displaced, 'lifeline_sessions_closed_total{kind="serial",path="ssh",reason="displaced"}'), 1);
    assert.equal(sample(displaced, 'lifeline_sessions_displaced_total'), 1);
    assert.ok(sample(displaced, 'lifeline_session_bytes_total{kind="serial",direction="out"}')! >= sample(live, 'lifeline_session_bytes_total{kind="serial",direction="out"}')!, 'bytes never go back');

    assert.equal((await relay.api('PATCH', '/v1/virtualMachines/lab-1/console', { enabled: false })).status, 200);
    await second.waitFor('was disabled');
    const after = await scrape();
    assert.equal(sample(after, 'lifeline_sessions_open{kind="serial",path="ssh"}'), 0);
    assert.equal(sample(after, 'lifeline_sessions_closed_total{kind="serial",path="ssh",reason="disabled"}'), 1);
    assert.equal(promtool(after).code, 0);
  });

  test('failed authentications are counted by method, and pre-auth connections come back to zero', async () => {
    const other = generateKey(env.dir, 'other');
    await relay.api('PATCH', '/v1/virtualMachines/lab-1/console', { enabled: true });
    const refused = await sshOnce({ port: relay.sshPort, user, key: other.privateKeyPath });
    assert.notEqual(refused.code, 0);
    await fetch(`${relay.apiUrl}/v1/relay`, { headers: { authorization: 'Bearer llt_not-a-token-of-this-relay' } });
    const text = await scrape();
    assert.ok(sample(text, 'lifeline_auth_failures_total{method="publickey"}')! >= 1);
    assert.equal(sample(text, 'lifeline_auth_failures_total{method="bearer"}'), 1);
    assert.equal(sample(text, 'lifeline_preauth_connections{listener="ssh"}'), 0);
  });
});
