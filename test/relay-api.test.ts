import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { test } from 'node:test';
import { RelayApi, RelayApiError } from '../main/services/relay-api.js';
import { TrustStore } from '../main/services/relay-tls.js';

/** A server that answers every request with `body` (status 200), standing in for a relay of another kind. */
async function answering(body: unknown): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((_request, response) => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

test("the desktop checks a relay's replies against the relay's schemas instead of trusting them", async () => {
  const bad = await answering({ id: 'r', version: '1', sshHostKeys: 'none', endpoints: [], consoleDefaults: { defaultTtlSeconds: 60, maxTtlSeconds: 60 } });
  try {
    await assert.rejects(new RelayApi(bad.url, 'llt_x', undefined, new TrustStore()).info(), (error: unknown) => {
      assert.ok(error instanceof RelayApiError);
      assert.equal(error.code, 'UnexpectedReply');
      assert.match(error.message, /answered GET \/v1\/relay with a reply this app cannot read \(\/sshHostKeys: /);
      return true;
    });
    await assert.rejects(new RelayApi(bad.url, 'llt_x', undefined, new TrustStore()).virtualMachines(), /cannot read/);
  } finally {
    await bad.close();
  }
  const good = await answering({ value: [{ name: 'vm-1', powerState: 'Running', consoleTypes: ['serial'], powerActions: [], serialBreak: false, source: 'static' }] });
  try {
    assert.equal((await new RelayApi(good.url, 'llt_x', undefined, new TrustStore()).virtualMachines())[0]!.name, 'vm-1');
  } finally {
    await good.close();
  }
});
