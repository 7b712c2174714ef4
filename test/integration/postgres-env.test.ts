// Smoke tests of the test PostgreSQL 15 helper through real clients: node `pg` (SCRAM, md5, TLS) and psql; stop leaves nothing.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promisify } from 'node:util';
import pg from 'pg';
import { pendingTeardowns } from '../env/cleanup.ts';
import { startPostgres, type Postgres } from '../env/postgres.ts';
import { isAlive } from '../env/process.ts';
import { processesMentioning } from '../env/tempdir.ts';

const run = promisify(execFile);

async function query(config: pg.ClientConfig, sql: string): Promise<Record<string, unknown>[]> {
  const c = new pg.Client({ connectionTimeoutMillis: 10_000, ...config });
  await c.connect();
  try {
    return (await c.query<Record<string, unknown>>(sql)).rows;
  } finally {
    await c.end();
  }
}

async function stopAndCheck(p: Postgres): Promise<void> {
  await p.stop();
  await p.stop(); // idempotent
  assert.equal(isAlive(p.pid), false, 'the postmaster is gone');
  assert.deepEqual(processesMentioning(p.dir), [], 'no postgres process mentions the temp dir');
  assert.equal(existsSync(p.dir), false, 'the temp dir is removed');
}

describe('the test PostgreSQL', () => {
  it('speaks SCRAM-SHA-256 to node pg, refuses a wrong password, and answers psql', async () => {
    const p = await startPostgres();
    try {
      assert.equal(p.auth, 'scram-sha-256');
      const base = { host: p.host, port: p.port, user: p.superuser, database: p.database };
      const rows = await query({ ...base, password: p.password }, 'SELECT current_user AS u, 6 * 7 AS answer');
      assert.deepEqual(rows, [{ u: p.superuser, answer: 42 }]);
      await assert.rejects(query({ ...base, password: 'wrong' }, 'SELECT 1'), (e: { code?: string }) => e.code === '28P01');
      assert.match(await p.psql("SELECT rolpassword FROM pg_authid WHERE rolname = current_user"), /^SCRAM-SHA-256\$/);
      assert.match(await p.psql('SHOW server_version'), /^15\./);

      await p.createRole('app', 'app-secret-synth');
      await p.createDatabase('shop');
      await p.psql('CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, $$one$$), (2, $$two$$);', { database: 'shop' });
      await p.psql('GRANT SELECT ON items TO app', { database: 'shop' });
      const appRows = await query({ host: p.host, port: p.port, user: 'app', password: 'app-secret-synth', database: 'shop' }, 'SELECT name FROM items ORDER BY id');
      assert.deepEqual(appRows.map((r) => r['name'] as string), ['one', 'two']);
      // The real psql binary over TCP with the password, as an agent would run it.
      const { stdout } = await run('psql', ['-X', '-A', '-t', '-c', 'SELECT count(*) FROM items', `postgres://app:app-secret-synth@127.0.0.1:${p.port}/shop`]);
      assert.equal(stdout.trim(), '2');
    } finally {
      await stopAndCheck(p);
    }
  });

  it('stores md5 hashes and authenticates with md5 when asked', async () => {
    const p = await startPostgres({ auth: 'md5' });
    try {
      assert.match(await p.psql("SELECT rolpassword FROM pg_authid WHERE rolname = current_user"), /^md5[0-9a-f]{32}$/);
      const rows = await query({ connectionString: p.url }, 'SELECT 1 AS one');
      assert.deepEqual(rows, [{ one: 1 }]);
    } finally {
      await stopAndCheck(p);
    }
  });

  it('serves TLS with its own CA and can require it', async () => {
    const p = await startPostgres({ requireTls: true });
    try {
      assert.ok(p.caPem?.includes('BEGIN CERTIFICATE'));
      const rows = await query(
        { connectionString: p.url, ssl: { ca: p.caPem, servername: 'localhost' } },
        'SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
      );
      assert.equal(rows[0]?.['ssl'], true);
      await assert.rejects(query({ connectionString: p.url, ssl: false }, 'SELECT 1'), /no pg_hba.conf entry|rejects connection/);
      // A client that checks the certificate against another CA refuses the server.
      await assert.rejects(query({ connectionString: p.url, ssl: { ca: [], rejectUnauthorized: true } }, 'SELECT 1'), /certificate/);
    } finally {
      await stopAndCheck(p);
    }
  });

  it('trust auth lets anyone on loopback in (for tests that need no password)', async () => {
    const p = await startPostgres({ auth: 'trust' });
    try {
      const rows = await query({ host: p.host, port: p.port, user: p.superuser, database: 'postgres' }, 'SELECT 2 AS two');
      assert.deepEqual(rows, [{ two: 2 }]);
    } finally {
      await stopAndCheck(p);
    }
    assert.deepEqual(pendingTeardowns(), []);
  });
});
