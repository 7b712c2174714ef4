// PostgreSQL gateway, binary formats against real PostgreSQL: node pg binary results and psql \copy (FORMAT binary) never carry a secret; clean binary data is byte-identical to a direct COPY.
/* eslint-disable @typescript-eslint/no-unsafe-member-access -- pg result rows are `any` by design; the asserts check their shape */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type pg from 'pg';
import { fe } from '../helpers/pg-frames.ts';
import { startGateway, FAKE_AWS_KEY, FAKE_GITHUB_TOKEN, messages, rawLogin, type Gateway, type RawClient } from './postgres-gateway.harness.ts';

const CARD = '4539578763621486';

/** DataRow cells of a server answer (null for SQL NULL). */
function rows(b: Buffer): (Buffer | null)[][] {
  return messages(b).filter((m) => m.type === 'D').map((m) => {
    const n = m.body.readInt16BE(0);
    const out: (Buffer | null)[] = [];
    for (let i = 0, at = 2; i < n; i++) {
      const len = m.body.readInt32BE(at);
      at += 4;
      out.push(len < 0 ? null : m.body.subarray(at, at + len));
      if (len > 0) at += len;
    }
    return out;
  });
}

/** Sends frames and waits for `n` more ReadyForQuery. */
async function exchange(c: RawClient, frames: Buffer[], n = 1): Promise<Buffer> {
  const from = c.bytes().length;
  for (const f of frames) c.send(f);
  const ready = (b: Buffer): number => messages(b.subarray(from)).filter((m) => m.type === 'Z').length;
  return (await c.until((b) => ready(b) >= n, 8000)).subarray(from);
}

const run = promisify(execFile);

describe('postgres gateway: binary cells and binary COPY', () => {
  let gw: Gateway;

  before(async () => {
    gw = await startGateway();
    await gw.pg.psql(`CREATE TABLE bin (id int, note text, blob bytea, tags text[], j jsonb, u uuid);
      INSERT INTO bin VALUES
        (1, 'clean', '\\x00ff'::bytea, ARRAY['a','b'], '{"a":1}', '00000000-0000-0000-0000-000000000001'),
        (2, 'aws ${FAKE_AWS_KEY}', convert_to('gh ${FAKE_GITHUB_TOKEN}', 'UTF8'), ARRAY['ok', 'k ${FAKE_AWS_KEY}'], '{"k":"${FAKE_AWS_KEY}"}', '00000000-0000-0000-0000-000000000002');
      CREATE TABLE bin_clean AS SELECT id, note, u FROM bin WHERE id = 1;
      CREATE TABLE cards (id int, pan int8, tags text[]);
      INSERT INTO cards SELECT g, ${CARD}, ARRAY['ok', 'k ${FAKE_AWS_KEY}'] FROM generate_series(1, 3) g;`);
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
  it('binary rows with no RowDescription before them (a statement described in an earlier batch, as asyncpg does; the next Execute after PortalSuspended; a statement never described) are masked by their real types', async () => {
    const c = await rawLogin(gw.port, await gw.token());
    const raw = Buffer.alloc(8);
    raw.writeBigInt64BE(BigInt(CARD));
    const check = (b: Buffer, want: number): void => {
      const rs = rows(b);
      assert.equal(rs.length, want);
      for (const [pan, tags] of rs) {
        assert.equal(pan, null, 'the binary int8 card number becomes NULL (a placeholder cannot be encoded in int8)');
        assert.ok(tags !== null && tags !== undefined && !tags.includes(FAKE_AWS_KEY), 'the text[] element is masked');
        assert.equal(tags.readInt32BE(0), 1, 'still a one-dimensional binary array');
        assert.ok(tags.includes('[MASKED:aws-access-key-id]'));
      }
      assert.ok(!b.includes(raw), 'the card number\'s int8 bytes reached the client');
    };
    try {
      // Prepare and describe the statement in one batch; execute it in later ones with binary results and no Describe.
      await exchange(c, [fe.parse('cards_q', 'SELECT pan, tags FROM cards ORDER BY id'), fe.describe('S', 'cards_q'), fe.sync()]);
      check(await exchange(c, [fe.bind('', 'cards_q', [], [], [1]), fe.execute(), fe.sync()]), 3);
      check(await exchange(c, [fe.bind('p1', 'cards_q', [], [], [1, 1]), fe.execute('p1'), fe.sync()]), 3);
      // A portal described once and fetched a row at a time: every Execute after the first has no RowDescription.
      check(await exchange(c, [fe.query('BEGIN'), fe.bind('cur', 'cards_q', [], [], [1]), fe.describe('P', 'cur'), fe.execute('cur', 1), fe.execute('cur', 1), fe.execute('cur', 1), fe.sync(), fe.query('COMMIT')], 3), 3);
      // A statement never described, executed with binary results: the sidecar describes the portal itself; the client sees no extra message.
      await exchange(c, [fe.parse('undescribed', 'SELECT pan, tags FROM cards ORDER BY id'), fe.sync()]);
      const own = await exchange(c, [fe.bind('', 'undescribed', [], [], [1]), fe.execute(), fe.sync()]);
      assert.deepEqual(messages(own).map((m) => m.type), ['2', 'N', 'D', 'D', 'D', 'C', 'Z'], 'no RowDescription the client did not ask for (N: the NULL notice)');
      check(own, 3);
      // After an error the server skips to Sync: the next batch's rows are still shaped right.
      const after = await exchange(c, [fe.bind('', 'no_such'), fe.execute(), fe.sync(), fe.bind('', 'cards_q', [], [], [1]), fe.execute(), fe.sync()], 2);
      check(after, 3);
    } finally {
      c.socket.destroy();
    }
  });
});
