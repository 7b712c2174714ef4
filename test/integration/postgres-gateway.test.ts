// PostgreSQL gateway, core path against real PostgreSQL 15 and node pg: token login, SCRAM upstream, simple and extended queries, masking, denial, recording.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-argument -- pg result rows are `any` by design; the asserts check their shape */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { sendCancel, startGateway, FAKE_AWS_KEY, FAKE_GITHUB_TOKEN, type Gateway } from './postgres-gateway.harness.ts';

describe('postgres gateway: core path (node pg, SCRAM upstream)', () => {
  let gw: Gateway;

  before(async () => {
    gw = await startGateway({
      sql: {
        default: 'allow',
        packs: ['no-delete-without-where'],
        rules: [{ id: 'no-drop-audit', action: 'deny', reason: 'audit-protected', message: 'the audit table may not be dropped', match: { commands: ['DROP_TABLE'], tables: ['audit'] } }],
      },
    });
    await gw.pg.psql(`CREATE TABLE creds (id int PRIMARY KEY, note text, api_key text, j jsonb); CREATE TABLE audit (id int);
      INSERT INTO creds VALUES (1, 'plain', 'nothing', '{"a":1}'), (2, 'aws ${FAKE_AWS_KEY}', '${FAKE_GITHUB_TOKEN}', '{"k":"${FAKE_AWS_KEY}"}');`);
  });
  after(async () => {
    await gw?.close();
  });

  it('logs in with the agent token, pins user/database upstream and relays parameters', async () => {
    const c = await gw.client('agent-reader', { user: 'someone-else', database: 'other_db', application_name: 'chap-test' });
    try {
      const r = await c.query('SELECT current_user AS u, current_database() AS d, current_setting($1) AS app, 6 * 7 AS answer', ['application_name']);
      assert.deepEqual(r.rows, [{ u: gw.pg.superuser, d: 'postgres', app: 'chap-test', answer: 42 }]);
      const enc = await c.query('SHOW client_encoding');
      assert.equal(enc.rows[0].client_encoding, 'UTF8');
    } finally {
      await c.end();
    }
    const start = gw.recorder.events.find((e) => e.type === 'session.start');
    assert.ok(start && start.type === 'session.start');
    assert.equal(start.subject, 'agent-reader');
    assert.equal(start.connection, 'testdb');
  });

  it('masks secrets in rows (text and binary-free paths), keeps clean rows byte-identical', async () => {
    const c = await gw.client();
    try {
      const r = await c.query('SELECT id, note, api_key, j FROM creds ORDER BY id');
      assert.equal(r.rows[0].note, 'plain');
      assert.deepEqual(r.rows[0].j, { a: 1 });
      const all = JSON.stringify(r.rows);
      assert.ok(!all.includes(FAKE_AWS_KEY), 'AWS key leaked');
      assert.ok(!all.includes(FAKE_GITHUB_TOKEN), 'GitHub token leaked');
      assert.match(r.rows[1].note, /\[MASKED:aws-access-key-id\]/);
      assert.match(r.rows[1].api_key, /\[MASKED:github-pat\]/);
      // simple protocol (no parameters) too
      const s = await c.query(`SELECT note || ' ' || api_key AS x FROM creds WHERE id = 2`);
      assert.ok(!String(s.rows[0].x).includes(FAKE_AWS_KEY));
    } finally {
      await c.end();
    }
    const result = gw.recorder.events.filter((e) => e.type === 'result').find((e) => e.type === 'result' && Object.keys(e.masked).length > 0);
    assert.ok(result, 'a result line counts masked values');
  });

  it('masks errors raised with secrets and NOTIFY payloads', async () => {
    const c = await gw.client();
    const l = await gw.client();
    try {
      await assert.rejects(c.query(`DO $$ BEGIN RAISE EXCEPTION 'boom %', '${FAKE_AWS_KEY}' USING DETAIL = '${FAKE_GITHUB_TOKEN}'; END $$`), (e: pg.DatabaseError) => {
        assert.ok(!e.message.includes(FAKE_AWS_KEY));
        assert.ok(!(e.detail ?? '').includes(FAKE_GITHUB_TOKEN));
        assert.match(e.message, /MASKED/);
        return true;
      });
      const got = new Promise<pg.Notification>((resolve) => l.once('notification', resolve));
      await l.query('LISTEN chan');
      await c.query(`NOTIFY chan, 'token ${FAKE_GITHUB_TOKEN}'`);
      const n = await got;
      assert.ok(!(n.payload ?? '').includes(FAKE_GITHUB_TOKEN));
      assert.match(n.payload ?? '', /MASKED:github-pat/);
    } finally {
      await c.end();
      await l.end();
    }
  });

  it('denies with 42501 naming the rule; multi-statement refused whole; the session goes on', async () => {
    const c = await gw.client();
    try {
      await assert.rejects(c.query('DROP TABLE audit'), (e: pg.DatabaseError) => e.code === '42501' && /no-drop-audit/.test(e.message) && /audit-protected/.test(e.message));
      await assert.rejects(c.query('INSERT INTO audit VALUES (7); DELETE FROM audit'), (e: pg.DatabaseError) => e.code === '42501' && /delete/i.test(e.message));
      const n = await c.query('SELECT count(*)::int AS n FROM audit');
      assert.equal(n.rows[0].n, 0, 'nothing of the refused message ran');
      await assert.rejects(c.query('SELEC 1'), (e: pg.DatabaseError) => e.code === '42501' && /could not be parsed/.test(e.message) && /syntax error/.test(e.message));
      // extended protocol: denied Parse, then the connection still works
      await assert.rejects(c.query('DELETE FROM audit WHERE $1::int = 1 OR true', [1]), (e: pg.DatabaseError) => e.code === '42501');
      const ok = await c.query('SELECT $1::text AS v', ['still here']);
      assert.equal(ok.rows[0].v, 'still here');
    } finally {
      await c.end();
    }
    const denied = gw.recorder.events.filter((e) => e.type === 'statement' && e.decision === 'deny');
    assert.ok(denied.length >= 3);
  });

  it('transactions: a refused statement aborts the transaction like a real error', async () => {
    const c = await gw.client();
    try {
      await c.query('BEGIN');
      await c.query('INSERT INTO audit VALUES (1)');
      await assert.rejects(c.query('DROP TABLE audit'), (e: pg.DatabaseError) => e.code === '42501');
      await assert.rejects(c.query('SELECT 1'), (e: pg.DatabaseError) => e.code === '25P02');
      await c.query('ROLLBACK');
      assert.equal((await c.query('SELECT count(*)::int AS n FROM audit')).rows[0].n, 0);
    } finally {
      await c.end();
    }
  });

  it('pipelines many extended-protocol queries in flight, some denied, answers in order', async () => {
    const c = await gw.client();
    try {
      const qs = Array.from({ length: 30 }, (_, i) =>
        i % 7 === 3 ? c.query('DELETE FROM audit').then(() => 'ran', (e: pg.DatabaseError) => e.code) : c.query('SELECT $1::int * 2 AS v', [i]).then((r) => r.rows[0].v as number),
      );
      const out = await Promise.all(qs);
      out.forEach((v, i) => assert.equal(v, i % 7 === 3 ? '42501' : i * 2, `query ${i}`));
      // prepared (named) statements, executed several times
      for (let i = 0; i < 3; i++) {
        const r = await c.query({ name: 'getnote', text: 'SELECT note FROM creds WHERE id = $1', values: [1] });
        assert.equal(r.rows[0].note, 'plain');
      }
    } finally {
      await c.end();
    }
  });

  it('write-ahead: a statement whose recording fails is refused, and nothing runs', async () => {
    const c = await gw.client();
    try {
      gw.recorder.fail = true;
      await assert.rejects(c.query('INSERT INTO audit VALUES (99)'), (e: pg.DatabaseError) => e.code === '58030');
      gw.recorder.fail = false;
      assert.equal((await c.query('SELECT count(*)::int AS n FROM audit WHERE id = 99')).rows[0].n, 0);
    } finally {
      gw.recorder.fail = false;
      await c.end();
    }
  });

  it('cancels a running query with a CancelRequest through the sidecar', async () => {
    const c = await gw.client();
    try {
      const slow = c.query('SELECT pg_sleep(20)');
      await new Promise((r) => setTimeout(r, 300));
      const pid = (c as unknown as { processID: number }).processID;
      const key = (c as unknown as { secretKey: number }).secretKey;
      await sendCancel(gw.port, pid, key);
      await assert.rejects(slow, (e: pg.DatabaseError) => e.code === '57014');
      assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1);
    } finally {
      await c.end();
    }
  });
});
