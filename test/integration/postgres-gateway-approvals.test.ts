// PostgreSQL gateway: RequireApproval holds (local backend approve/deny, fail-closed default, cancel), read-only second wall, md5 + TLS verify-full upstream.
/* eslint-disable @typescript-eslint/no-unsafe-member-access -- pg result rows are `any` by design */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { LocalApprovals } from '../../sidecar/protocols/postgres/approval-hold.ts';
import { startPostgres, type Postgres } from '../env/postgres.ts';
import { startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';
import { sendCancel, startGateway } from './postgres-gateway.harness.ts';

const APPROVAL_RULE = {
  id: 'truncate-needs-ok',
  action: 'require-approval' as const,
  reason: 'destructive',
  message: 'TRUNCATE needs a human',
  match: { commands: ['TRUNCATE'] },
  approval: { approverGroups: ['db-approvers'], timeoutSeconds: 30 },
};

describe('postgres gateway: approvals, read-only, upstream md5 + TLS', () => {
  let pgp: Postgres;
  let idp: TestIdp;

  before(async () => {
    pgp = await startPostgres({ auth: 'md5', tls: true });
    idp = await startOidcProvider();
    await pgp.psql('CREATE TABLE jobs (id int); INSERT INTO jobs VALUES (1), (2);');
  });
  after(async () => {
    await idp?.close();
    await pgp?.stop();
  });

  it('md5 auth over TLS verify-full upstream', async () => {
    const gw = await startGateway({ pg: pgp, idp, tls: 'verify-full' });
    try {
      const c = await gw.client();
      const r = await c.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
      assert.equal(r.rows[0].ssl, true);
      await c.end();
    } finally {
      await gw.close();
    }
  });

  it('a held statement runs once approved, and is refused when denied', async () => {
    const approvals = new LocalApprovals();
    const gw = await startGateway({ pg: pgp, idp, tls: 'require', sql: { default: 'allow', rules: [APPROVAL_RULE] }, deps: { approvals } });
    const c = await gw.client();
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    try {
      await pgp.psql('CREATE TABLE IF NOT EXISTS t1 (x int); INSERT INTO t1 VALUES (1); CREATE TABLE IF NOT EXISTS t2 (x int); INSERT INTO t2 VALUES (1);');
      const run = c.query('TRUNCATE t1');
      const req = await approvals.nextRequest();
      assert.equal(req.rule, 'truncate-needs-ok');
      assert.deepEqual(req.approverGroups, ['db-approvers']);
      assert.equal(req.statement, 'TRUNCATE t1');
      assert.equal(await pgp.psql('SELECT count(*) FROM t1'), '1', 'nothing ran while held');
      assert.ok(approvals.decide(req.id, 'approved', 'bob'));
      await run;
      assert.equal(await pgp.psql('SELECT count(*) FROM t1'), '0');
      assert.ok(notices.some((n) => /holding this statement for approval/.test(n)), 'the client was told it waits');

      const denied = c.query('TRUNCATE t2');
      const req2 = await approvals.nextRequest();
      approvals.decide(req2.id, 'denied', 'carol', 'not during the freeze');
      await assert.rejects(denied, (e: pg.DatabaseError) => e.code === '42501' && /not during the freeze/.test(e.message));
      assert.equal(await pgp.psql('SELECT count(*) FROM t2'), '1');
      assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1);

      // A CancelRequest ends the wait: refused, nothing ran.
      const cancelled = c.query('TRUNCATE t2');
      await approvals.nextRequest();
      await sendCancel(gw.port, (c as unknown as { processID: number }).processID, (c as unknown as { secretKey: number }).secretKey);
      await assert.rejects(cancelled, (e: pg.DatabaseError) => e.code === '42501' && /cancelled/.test(e.message));
      assert.equal(approvals.pending().length, 0);
    } finally {
      await c.end();
      await gw.close();
    }
    const outcomes = gw.recorder.events.filter((e) => e.type === 'approval.outcome').map((e) => (e.type === 'approval.outcome' ? e.outcome : ''));
    assert.deepEqual(outcomes, ['approved', 'denied', 'cancelled']);
  });

  it('without an approval backend a held statement is denied (fail closed)', async () => {
    const gw = await startGateway({ pg: pgp, idp, sql: { default: 'allow', rules: [APPROVAL_RULE] } });
    const c = await gw.client();
    try {
      await assert.rejects(c.query('TRUNCATE jobs'), (e: pg.DatabaseError) => e.code === '42501' && /no approval backend configured/.test(e.message));
      assert.equal(await pgp.psql('SELECT count(*) FROM jobs'), '2');
    } finally {
      await c.end();
      await gw.close();
    }
  });

  it('read-only connections: the upstream runs read-only even if the policy allows writes, and the wall cannot be lifted', async () => {
    const gw = await startGateway({ pg: pgp, idp, readOnly: true, sql: { default: 'allow' } });
    const c = await gw.client();
    try {
      await assert.rejects(c.query('INSERT INTO jobs VALUES (3)'), (e: pg.DatabaseError) => e.code === '25006');
      await assert.rejects(c.query('SET default_transaction_read_only = off'), (e: pg.DatabaseError) => e.code === '42501' && /read-only/.test(e.message));
      await assert.rejects(c.query('SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE'), (e: pg.DatabaseError) => e.code === '42501');
      await assert.rejects(c.query('BEGIN READ WRITE'), (e: pg.DatabaseError) => e.code === '42501');
      assert.equal((await c.query('SELECT count(*)::int AS n FROM jobs')).rows[0].n, 2);
    } finally {
      await c.end();
      await gw.close();
    }
  });
});
