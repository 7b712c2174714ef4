// PostgreSQL gateway, binary formats against real PostgreSQL: node pg binary results and psql \copy (FORMAT binary) never carry a secret; clean binary data is byte-identical to a direct COPY.
/* eslint-disable @typescript-eslint/no-unsafe-member-access -- pg result rows are `any` by design; the asserts check their shape */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type pg from 'pg';
import { startGateway, FAKE_AWS_KEY, FAKE_GITHUB_TOKEN, type Gateway } from './postgres-gateway.harness.ts';

const run = promisify(execFile);

describe('postgres gateway: binary cells and binary COPY', () => {
  let gw: Gateway;

  before(async () => {
    gw = await startGateway();
    await gw.pg.psql(`CREATE TABLE bin (id int, note text, blob bytea, tags text[], j jsonb, u uuid);
      INSERT INTO bin VALUES
        (1, 'clean', '\\x00ff'::bytea, ARRAY['a','b'], '{"a":1}', '00000000-0000-0000-0000-000000000001'),
        (2, 'aws ${FAKE_AWS_KEY}', convert_to('gh ${FAKE_GITHUB_TOKEN}', 'UTF8'), ARRAY['ok', 'k ${FAKE_AWS_KEY}'], '{"k":"${FAKE_AWS_KEY}"}', '00000000-0000-0000-0000-000000000002');
      CREATE TABLE bin_clean AS SELECT id, note, u FROM bin WHERE id = 1;`);
  });
  after(async () => {
    await gw?.close();
  });

  it('node pg binary results: text, bytea, text[] and jsonb cells are masked; nothing leaks', async () => {
    const c = await gw.client('agent-writer', { binary: true } as pg.ClientConfig);
    try {
      const r = await c.query<{ note: string; blob: Buffer | string; tags: unknown; j: unknown }>('SELECT id, note, blob, tags, j, u FROM bin WHERE id = $1', [2]);
      const row = r.rows[0]!;
      const all = [row.note, Buffer.isBuffer(row.blob) ? row.blob.toString('latin1') : String(row.blob), JSON.stringify(row.tags), JSON.stringify(row.j)].join(' ');
      assert.ok(!all.includes(FAKE_AWS_KEY), `AWS key leaked: ${all}`);
      assert.ok(!all.includes(FAKE_GITHUB_TOKEN), 'GitHub token leaked from bytea');
      assert.match(String(row.note), /\[MASKED:aws-access-key-id\]/);
      const clean = await c.query('SELECT id, note FROM bin WHERE id = $1', [1]);
      assert.equal(clean.rows[0].note, 'clean');
    } finally {
      await c.end();
    }
  });

  it('text-format bytea (hex) is decoded before the scan: the hex of a secret does not leak', async () => {
    const c = await gw.client();
    try {
      const r = await c.query('SELECT blob FROM bin WHERE id = 2');
      const b = r.rows[0].blob as Buffer;
      assert.ok(Buffer.isBuffer(b));
      assert.ok(!b.toString('latin1').includes(FAKE_GITHUB_TOKEN));
      assert.match(b.toString('latin1'), /\[MASKED:github-pat\]/);
    } finally {
      await c.end();
    }
  });

  it('psql \\copy (FORMAT binary): a field holding a secret becomes NULL, with a NOTICE; clean binary COPY is byte-identical to a direct one', async () => {
    const env = gw.env(await gw.token());
    const out = join(gw.dir, 'bin.copy');
    const r = await run('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-c', `\\copy bin TO '${out}' (FORMAT binary)`], { env, timeout: 30_000 });
    assert.match(r.stderr, /binary COPY with NULL/);
    const data = await readFile(out);
    assert.ok(data.subarray(0, 11).equals(Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1')), 'still a valid binary COPY header');
    assert.ok(!data.includes(FAKE_AWS_KEY) && !data.includes(FAKE_GITHUB_TOKEN), 'a secret reached the binary COPY file');
    // The masked file loads back into PostgreSQL: the framing is intact.
    await gw.pg.psql('CREATE TABLE bin_back (LIKE bin)');
    const back = await run('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-c', `\\copy bin_back FROM '${out}' (FORMAT binary)`], { env, timeout: 30_000 });
    assert.match(back.stdout, /COPY 2/);
    assert.equal(await gw.pg.psql("SELECT count(*) FROM bin_back WHERE note IS NULL"), '1');
    const viaGw = join(gw.dir, 'clean-gw.copy');
    const direct = join(gw.dir, 'clean-direct.copy');
    await run('psql', ['-X', '-c', `\\copy bin_clean TO '${viaGw}' (FORMAT binary)`], { env, timeout: 30_000 });
    await gw.pg.psql(`\\copy bin_clean TO '${direct}' (FORMAT binary)`);
    assert.deepEqual(await readFile(viaGw), await readFile(direct));
  });
});
