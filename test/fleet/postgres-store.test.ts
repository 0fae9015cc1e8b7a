import { randomUUID } from 'node:crypto';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import postgres from 'postgres';
import { PostgresStore } from '../../relay/src/store/postgres-store.js';
import { PG_MIGRATIONS } from '../../relay/src/store/postgres-rows.js';
import { SqliteStore } from '../../relay/src/store/sqlite-store.js';
import type { Store } from '../../relay/src/store/store.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { tempDir } from '../helpers/temp.js';

const consoleRecord = {
  virtualMachine: 'vm1',
  enabled: true,
  keyData: 'ssh-ed25519 AAAA',
  keyFingerprint: 'SHA256:x',
  expiration: 2_000_000_000_000,
  accessId: '00000000-0000-4000-8000-000000000001',
  createdAt: 1_764_000_000_123,
  updatedAt: 1_764_000_000_456,
};

let pg: TestPostgres;
const dir = tempDir('store');
before(async () => {
  pg = await startPostgres();
});
after(() => {
  pg?.dispose();
  dir.dispose();
});

// The same behaviour from both stores: what the relay's services rely on.
const stores: Array<[string, (name: string) => Promise<Store>]> = [
  ['SQLite', async (name) => new SqliteStore(join(dir.path, `${name}.db`))],
  ['PostgreSQL', async (name) => PostgresStore.open(pg.createDatabase(name))],
];

for (const [kind, open] of stores) {
  describe(`${kind} store`, () => {
    test('records round-trip exactly; meta init keeps the first value', async () => {
      const store = await open('roundtrip');
      try {
        await store.putConsole(consoleRecord);
        assert.deepEqual(await store.getConsole('vm1'), consoleRecord);
        assert.deepEqual(await store.getConsoleByAccessId(consoleRecord.accessId), consoleRecord);
        // Sharing settings round-trip through the jsonb column; a console without them reads back without them.
        const shared = { ...consoleRecord, virtualMachine: 'vm-shared', accessId: randomUUID(), allowObservers: true, maxObservers: 3, recording: 'off' as const };
        await store.putConsole(shared);
        assert.deepEqual(await store.getConsole('vm-shared'), shared);
        assert.equal(await store.deleteConsole('vm-shared'), true);
        await store.putConsole({ ...consoleRecord, enabled: false, updatedAt: consoleRecord.updatedAt + 1 });
        assert.equal((await store.listConsoles()).length, 1);
        assert.equal((await store.getConsole('vm1'))?.enabled, false);
        assert.equal(await store.deleteConsole('vm1'), true);
        assert.equal(await store.deleteConsole('vm1'), false);
        assert.equal(await store.getConsole('vm1'), undefined);

        const endpoint = { name: 'ops', ipAddress: '127.0.0.5', allowedSourcePrefixes: ['127.0.0.0/8', '10.0.0.0/8'], createdAt: 1, updatedAt: 2 };
        await store.putEndpoint(endpoint);
        assert.deepEqual(await store.getEndpoint('ops'), endpoint);
        assert.deepEqual(await store.listEndpoints(), [endpoint]);
        await assert.rejects(store.putEndpoint({ ...endpoint, name: 'other' }));
        assert.deepEqual((await store.listEndpoints()).map((e) => e.name), ['ops'], 'a conflicting endpoint writes nothing');
        assert.equal(await store.deleteEndpoint('ops'), true);

        assert.equal(await store.initMeta('relayId', 'first'), 'first');
        assert.equal(await store.initMeta('relayId', 'second'), 'first');
        await store.setMeta('relayId', 'third');
        assert.equal(await store.getMeta('relayId'), 'third');
        assert.equal(await store.getMeta('absent'), undefined);
        assert.equal(await store.ping(), true);
      } finally {
        await store.close();
      }
      assert.equal(await store.ping(), false);
    });

    test('tokens: create refuses a taken name, replace swaps by name, touch and delete', async () => {
      const store = await open('tokens');
      try {
        const token = { id: 'i1', hash: 'h1', name: 'ci', prefix: 'llt_ab', scopes: ['vnc', 'consoles:read'], virtualMachines: ['web-*'], createdAt: 5, expiresAt: 2_000_000_000_000 };
        assert.equal(await store.createToken(token), true);
        assert.equal(await store.createToken({ ...token, id: 'i2', hash: 'h2' }), false);
        assert.deepEqual(await store.findToken('h1'), token);
        assert.equal(await store.findToken('h2'), undefined);
        await store.touchToken('i1', 77);
        assert.equal((await store.findToken('h1'))?.lastUsedAt, 77);
        await store.replaceToken({ id: 'i3', hash: 'h3', name: 'ci', prefix: '', scopes: ['admin'], createdAt: 6 });
        assert.equal(await store.findToken('h1'), undefined);
        assert.deepEqual(await store.findToken('h3'), { id: 'i3', hash: 'h3', name: 'ci', prefix: '', scopes: ['admin'], createdAt: 6 });
        assert.equal(await store.countTokens(), 1);
        assert.deepEqual((await store.listTokens()).map((t) => t.id), ['i3']);
        assert.equal(await store.deleteToken('i3'), true);
        assert.equal(await store.deleteToken('i3'), false);
      } finally {
        await store.close();
      }
    });
  });
}

describe('PostgreSQL store in a fleet', () => {
  test('gateways starting together migrate once and share every record', async () => {
    const url = pg.createDatabase('shared');
    const [a, b, c] = await Promise.all([PostgresStore.open(url), PostgresStore.open(url), PostgresStore.open(url)]);
    try {
      assert.equal(await a.schemaVersion(), PG_MIGRATIONS.length);
      await a.putConsole(consoleRecord);
      assert.deepEqual(await b.getConsoleByAccessId(consoleRecord.accessId), consoleRecord);
      const ids = await Promise.all([a.initMeta('relayId', 'a'), b.initMeta('relayId', 'b'), c.initMeta('relayId', 'c')]);
      assert.equal(new Set(ids).size, 1, 'one relay id for the fleet');
    } finally {
      await Promise.all([a.close(), b.close(), c.close()]);
    }
  });

  test('a database from a newer relay is refused rather than misread', async () => {
    const url = pg.createDatabase('newer');
    await (await PostgresStore.open(url)).close();
    const sql = postgres(url, { onnotice: () => {} });
    await sql`UPDATE lifeline_schema SET version = 99`;
    await sql.end();
    await assert.rejects(PostgresStore.open(url), /newer relay \(schema 99/);
  });

  test('with the database stopped, reads and writes fail as StoreUnavailable and ping says false; all works again once it is back', async () => {
    const store = await PostgresStore.open(pg.createDatabase('outage'), { connectTimeoutSeconds: 1 });
    try {
      await store.putConsole(consoleRecord);
      pg.stop('immediate');
      try {
        await assert.rejects(store.getConsole('vm1'), (error: Error & { code?: string; kind?: string }) => {
          assert.equal(error.code, 'StoreUnavailable');
          assert.equal(error.kind, 'unavailable');
          assert.match(error.message, /cannot be reached.*nothing was changed; try again shortly/);
          return true;
        });
        const started = Date.now();
        assert.equal(await store.ping(), false);
        assert.ok(Date.now() - started < 2500, 'ping answers within its bound');
      } finally {
        pg.start();
      }
      assert.deepEqual(await store.getConsole('vm1'), consoleRecord);
      assert.equal(await store.ping(), true);
    } finally {
      await store.close();
    }
  });
});
