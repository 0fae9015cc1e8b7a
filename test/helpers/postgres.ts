import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

const BIN = '/usr/lib/postgresql/15/bin';

export interface TestPostgres {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` (trust authentication, loopback only). */
  url: string;
  port: number;
  /** A fresh database on this server; returns its URL. */
  createDatabase(name: string): string;
  /** Stops the server: `fast` (clean) or `immediate` (as a crash). */
  stop(mode?: 'fast' | 'immediate'): void;
  /** Starts it again after `stop`, on the same port and data. */
  start(): void;
  /** Stops the server (if running) and removes its folder. Call it from `after`. */
  dispose(): void;
}

function asPostgres(command: string): string {
  return execFileSync('su', ['postgres', '-s', '/bin/sh', '-c', command], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Debian's PostgreSQL 15 for one test file: initdb as the `postgres` user into a temp dir of its
 * own, its own port and socket dir, never the packaged cluster. `dispose()` stops it by its data
 * dir (pg_ctl reads the postmaster's pid from there) and removes everything.
 */
export async function startPostgres(): Promise<TestPostgres> {
  if (!existsSync(`${BIN}/initdb`)) throw new Error(`PostgreSQL 15 is not installed (${BIN}/initdb is missing): run scripts/setup.sh`);
  if (process.getuid?.() !== 0) throw new Error('the PostgreSQL tests run initdb as the postgres user, which needs root');
  const dir = mkdtempSync(join(tmpdir(), 'll-pg-'));
  chmodSync(dir, 0o755);
  execFileSync('chown', ['postgres', dir]);
  const port = await freePort();
  const data = join(dir, 'data');
  let running = false;
  const start = (): void => {
    asPostgres(`${BIN}/pg_ctl -D ${data} -l ${dir}/log -o '-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off' -w start`);
    running = true;
  };
  const stop = (mode: 'fast' | 'immediate' = 'fast'): void => {
    if (!running) return;
    asPostgres(`${BIN}/pg_ctl -D ${data} -m ${mode} -w stop`);
    running = false;
  };
  try {
    asPostgres(`${BIN}/initdb -A trust -U postgres -D ${data} --no-sync`);
    start();
  } catch (error) {
    try {
      stop('immediate');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    throw error;
  }
  const url = (database: string): string => `postgres://postgres@127.0.0.1:${port}/${database}`;
  return {
    url: url('postgres'),
    port,
    createDatabase(name) {
      execFileSync(`${BIN}/psql`, ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-c', `CREATE DATABASE "${name}"`], { stdio: 'ignore' });
      return url(name);
    },
    stop,
    start,
    dispose() {
      try {
        stop('immediate');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
