import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { SqliteStore } from './sqlite-store.js';

const dir = mkdtempSync(join(tmpdir(), 'll-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const consoleRecord = {
  virtualMachine: 'vm1',
  enabled: true,
  keyData: 'ssh-ed25519 AAAA',
  keyFingerprint: 'SHA256:x',
  expiration: 2_000_000_000_000,
  accessId: '00000000-0000-4000-8000-000000000001',
  createdAt: 1,
  updatedAt: 2,
};

test('records survive reopening; WAL and the schema version are set', async () => {
  const file = join(dir, 'a.db');
  const store = new SqliteStore(file);
  assert.equal(store.schemaVersion, 3);
  await store.putConsole(consoleRecord);
  // Sharing settings are kept, and a console without them reads back without them (the defaults).
  const shared = { ...consoleRecord, virtualMachine: 'vm2', accessId: 'a2', allowObservers: true, maxObservers: 2, recording: 'required' as const };
  await store.putConsole(shared);
  await store.putEndpoint({ name: 'ops', ipAddress: '127.0.0.5', allowedSourcePrefixes: ['127.0.0.0/8'], createdAt: 1, updatedAt: 1 });
  await store.replaceToken({ id: 'i1', hash: 'h1', name: 'admin', prefix: '', scopes: ['admin'], createdAt: 1 });
  assert.equal(await store.initMeta('relayId', 'first'), 'first');
  await store.close();
  await store.close(); // idempotent

  const reopened = new SqliteStore(file);
  assert.deepEqual(await reopened.getConsole('vm1'), consoleRecord);
  assert.deepEqual(await reopened.getConsoleByAccessId(consoleRecord.accessId), consoleRecord);
  assert.deepEqual(await reopened.getConsole('vm2'), shared);
  assert.deepEqual((await reopened.getEndpoint('ops'))?.allowedSourcePrefixes, ['127.0.0.0/8']);
  assert.equal(await reopened.initMeta('relayId', 'second'), 'first');
  assert.equal((await reopened.findToken('h1'))?.name, 'admin');
  await reopened.replaceToken({ id: 'i2', hash: 'h2', name: 'admin', prefix: '', scopes: ['admin'], createdAt: 2 });
  assert.equal(await reopened.findToken('h1'), undefined);
  assert.equal(await reopened.countTokens(), 1);
  assert.equal(await reopened.deleteConsole('vm1'), true);
  assert.equal(await reopened.deleteConsole('vm1'), false);
  await reopened.close();
  const raw = new Database(file, { readonly: true });
  assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
  raw.close();
});

test('a constraint violation writes nothing', async () => {
  const store = new SqliteStore(join(dir, 'b.db'));
  await store.putEndpoint({ name: 'a', ipAddress: '127.0.0.5', allowedSourcePrefixes: [], createdAt: 1, updatedAt: 1 });
  await assert.rejects(store.putEndpoint({ name: 'b', ipAddress: '127.0.0.5', allowedSourcePrefixes: [], createdAt: 1, updatedAt: 1 }), /UNIQUE/);
  assert.deepEqual((await store.listEndpoints()).map((e) => e.name), ['a']);
  await store.close();
});

test('a store from a newer relay is refused rather than misread', () => {
  const file = join(dir, 'c.db');
  const raw = new Database(file);
  raw.pragma('user_version = 99');
  raw.close();
  assert.throws(() => new SqliteStore(file), /newer relay \(schema 99/);
});
