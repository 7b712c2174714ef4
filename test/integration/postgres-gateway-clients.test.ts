// PostgreSQL gateway with unmodified clients: psql (simple protocol, multi-statement, \copy in and out) and pgbench (init + a bounded TPC-B run).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startGateway, FAKE_AWS_KEY, FAKE_GITHUB_TOKEN, type Gateway } from './postgres-gateway.harness.ts';

const run = promisify(execFile);

interface Out {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

async function tool(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, timeout = 60_000): Promise<Out> {
  try {
    const r = await run(cmd, args, { env, timeout, maxBuffer: 32 << 20 });
    return { stdout: r.stdout, stderr: r.stderr, code: 0 };
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; code?: number };
    return { stdout: x.stdout ?? '', stderr: x.stderr ?? '', code: typeof x.code === 'number' ? x.code : 1 };
  }
}

describe('postgres gateway: psql and pgbench', () => {
  let gw: Gateway;

  before(async () => {
    gw = await startGateway({ sql: { default: 'allow', packs: ['no-server-file-access'] } });
    await gw.pg.psql(`CREATE TABLE secrets (id int, v text); INSERT INTO secrets VALUES (1, 'aws ${FAKE_AWS_KEY}'), (2, 'gh ${FAKE_GITHUB_TOKEN}'), (3, 'nothing here');`);
  });
  after(async () => {
    await gw?.close();
  });

  it('psql: simple protocol, multi-statement, masked rows, a denial with its rule', async () => {
    const env = gw.env(await gw.token());
    const r = await tool('psql', ['-X', '-A', '-t', '-c', 'SELECT 1; SELECT v FROM secrets ORDER BY id'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes(FAKE_AWS_KEY) && !r.stdout.includes(FAKE_GITHUB_TOKEN), 'a secret reached psql');
    assert.match(r.stdout, /MASKED:aws-access-key-id/);
    assert.match(r.stdout, /nothing here/);
    const d = await tool('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-c', "COPY secrets TO '/tmp/chap-never-written'"], env);
    assert.notEqual(d.code, 0);
    assert.match(d.stderr, /42501|no-server-file-access|refused this statement/);
  });

  it('psql \\copy out is masked; \\copy in reaches the table', async () => {
    const env = gw.env(await gw.token());
    const out = join(gw.dir, 'out.csv');
    const r = await tool('psql', ['-X', '-c', `\\copy secrets TO '${out}' CSV`], env);
    assert.equal(r.code, 0, r.stderr);
    const text = await readFile(out, 'utf8');
    assert.ok(!text.includes(FAKE_AWS_KEY) && !text.includes(FAKE_GITHUB_TOKEN), 'a secret reached the COPY file');
    assert.match(text, /nothing here/);
    assert.equal(text.trim().split('\n').length, 3);
    const input = join(gw.dir, 'in.csv');
    await writeFile(input, Array.from({ length: 500 }, (_, i) => `${100 + i},row ${i}`).join('\n') + '\n');
    const w = await tool('psql', ['-X', '-c', `\\copy secrets FROM '${input}' CSV`], env);
    assert.equal(w.code, 0, w.stderr);
    assert.equal(await gw.pg.psql('SELECT count(*) FROM secrets WHERE id >= 100'), '500');
  });

  it('pgbench -i and a bounded TPC-B run (-t 50 -c 2) through the sidecar', async () => {
    const env = gw.env(await gw.token());
    const init = await tool('pgbench', ['-i', '-s', '1', '-q'], env, 120_000);
    assert.equal(init.code, 0, init.stderr);
    assert.equal(await gw.pg.psql('SELECT count(*) FROM pgbench_accounts'), '100000');
    for (const mode of ['simple', 'extended', 'prepared']) {
      const b = await tool('pgbench', ['-n', '-t', '50', '-c', '2', '-M', mode], env, 120_000);
      assert.equal(b.code, 0, `${mode}: ${b.stderr}`);
      assert.match(b.stdout, /number of transactions actually processed: 100\/100/, mode);
    }
  });
});
