// The sidecar's kubernetes approval backend against the real API server (no operator): create, status patch → the held statement runs; deny, expiry, unreachable API, cancel, stale cancel at restart, windows.
/* eslint-disable @typescript-eslint/no-unsafe-member-access -- pg result rows are `any` by design */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import type pg from 'pg';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { startPostgres, type Postgres } from '../env/postgres.ts';
import { eventually } from '../env/wait.ts';
import { AUDIENCE, startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';
import { createTokenVerifier } from '../../sidecar/identity/verify-token.ts';
import { startGateway, type Gateway } from './postgres-gateway.harness.ts';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pgModule from 'pg';
import { startSidecar } from '../../sidecar/main.ts';
import { agentNamespace, approvalRule, IDENTITY, installApprovals, type AgentNamespace } from './approvals-harness.ts';
import type { KubernetesApprovals } from '../../sidecar/approvals/kubernetes.ts';
import type { SqlRuleJson } from '../../sidecar/policy/sql-rules.ts';

const run = promisify(execFile);
const pgClient = pgModule.Client;

describe('approvals backend kubernetes (sidecar ⇄ API server)', () => {
  let cp: ControlPlane;
  let pgp: Postgres;
  let idp: TestIdp;
  let env: AgentNamespace;
  const gateways: Gateway[] = [];

  async function gateway(backend: KubernetesApprovals, rules: SqlRuleJson[] = [approvalRule()]): Promise<Gateway> {
    // The IdP puts the human in `act_for`: the verifier maps it, so the request names who may not approve.
    const verifier = createTokenVerifier({ issuers: [{ issuer: idp.issuer, audiences: [AUDIENCE], actingForClaim: 'act_for' }] });
    const gw = await startGateway({ pg: pgp, idp, sql: { default: 'allow', rules }, deps: { approvals: backend, identity: IDENTITY, verifier } });
    gateways.push(gw);
    return gw;
  }

  before(async () => {
    cp = await sharedControlPlane();
    await installApprovals(cp);
    env = await agentNamespace(cp, 'appr-sc');
    pgp = await startPostgres({ auth: 'scram-sha-256' });
    idp = await startOidcProvider();
    await pgp.psql('CREATE TABLE orders (id int, status text); INSERT INTO orders SELECT g, \'cancelled\' FROM generate_series(1, 10) g;');
  });
  after(async () => {
    for (const g of gateways) await g.close();
    await env?.close();
    await idp?.close();
    await pgp?.stop();
    if (cp?.owned) await cp.stop();
  });

  it('a held psql DELETE becomes an ApprovalRequest with the requester, masked statement, hash and rule snapshot; an Approved status runs it with its result', async () => {
    const backend = env.backend();
    const gw = await gateway(backend);
    const token = await gw.token('agent-reader');
    const psql = run('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-c', "DELETE FROM orders WHERE id <= 2 AND status = 'cancelled'"], { env: { ...gw.env(token), PGAPPNAME: 'cleanup (ticket OPS-1)' } });
    const req = await env.nth(1);
    assert.equal(req.spec.identity, IDENTITY);
    assert.equal(req.spec.connection, 'testdb');
    assert.equal(req.spec.requester.subject, 'agent-reader');
    assert.equal(req.spec.requester.actingFor, 'alice@example.com');
    assert.deepEqual(req.spec.requester.groups, ['agents', 'db-readers']);
    assert.equal(req.spec.command.text, "DELETE FROM orders WHERE id <= 2 AND status = 'cancelled'");
    assert.match(req.spec.command.sha256, /^[a-f0-9]{64}$/);
    assert.equal(req.spec.command.sql?.kind, 'write');
    assert.deepEqual(req.spec.command.sql?.tables, ['orders']);
    assert.equal(req.spec.purpose, 'cleanup (ticket OPS-1)');
    assert.deepEqual(req.spec.approval, { approvers: { groups: ['db-approvers'] }, required: 1, mode: 'any', scope: 'statement', timeout: '60s' });
    assert.equal(req.spec.pod?.uid, 'pod-uid-1');
    assert.equal(req.metadata.labels?.['chaperone.dev/pod-uid'], 'pod-uid-1');
    assert.equal(await pgp.psql('SELECT count(*) FROM orders'), '10', 'nothing ran while held');
    await env.setStatus(req.metadata.name ?? '', { phase: 'Approved', reason: 'approved by approver' });
    const out = await psql;
    assert.match(out.stdout, /DELETE 2/);
    assert.match(out.stderr, /holding this statement for approval/);
    assert.match(out.stderr, new RegExp(`kubectl chaperone approve ${req.metadata.name ?? ''} -n ${env.ns}`));
    assert.equal(await pgp.psql('SELECT count(*) FROM orders'), '8');
    const outcome = gw.recorder.events.find((e) => e.type === 'approval.outcome');
    assert.ok(outcome && outcome.type === 'approval.outcome' && outcome.outcome === 'approved' && outcome.request === req.metadata.name);
  });

  it('Denied ends the wait with the reason; Expired and Cancelled refuse too', async () => {
    const backend = env.backend();
    const gw = await gateway(backend);
    const c = await gw.client();
    try {
      const before = (await env.list()).length;
      const q = c.query('DELETE FROM orders WHERE id = 3');
      q.catch(() => undefined); // it may reject before assert.rejects is attached (the sidecar can see the status first)
      const req = await env.nth(before + 1);
      await env.setStatus(req.metadata.name ?? '', { phase: 'Denied', reason: 'denied by approver: not during the freeze' });
      await assert.rejects(q, (e: pg.DatabaseError) => e.code === '42501' && /not during the freeze/.test(e.message) && e.message.includes(req.metadata.name ?? '?'));
      const q2 = c.query('DELETE FROM orders WHERE id = 3');
      q2.catch(() => undefined);
      const req2 = await env.nth(before + 2);
      await env.setStatus(req2.metadata.name ?? '', { phase: 'Expired', reason: 'no decision before the deadline' });
      await assert.rejects(q2, (e: pg.DatabaseError) => e.code === '42501' && /expired/.test(e.message));
      assert.equal(await pgp.psql('SELECT count(*) FROM orders WHERE id = 3'), '1');
      assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1, 'the session goes on');
    } finally {
      await c.end();
    }
  });

  it('no decision within the rule timeout: the statement is refused (the sidecar times out by itself)', async () => {
    const gw = await gateway(env.backend(), [approvalRule({ timeoutSeconds: 2 })]);
    const c = await gw.client();
    try {
      await assert.rejects(c.query('DELETE FROM orders WHERE id = 4'), (e: pg.DatabaseError) => e.code === '42501' && /no decision within 2 s/.test(e.message));
      assert.equal(await pgp.psql('SELECT count(*) FROM orders WHERE id = 4'), '1');
    } finally {
      await c.end();
    }
  });

  it('API server unreachable: the statement is refused (fail closed) with a message saying so', async () => {
    const dead = env.backend({ api: { apiServerUrl: 'https://127.0.0.1:1', caFile: cp.caFile, tokenFile: env.tokenFile, timeoutMs: 2000 } });
    const gw = await gateway(dead);
    const c = await gw.client();
    try {
      await assert.rejects(c.query('DELETE FROM orders WHERE id = 5'), (e: pg.DatabaseError) => e.code === '42501' && /could not create ApprovalRequest/.test(e.message) && /could not be reached/.test(e.message));
      assert.equal(await pgp.psql('SELECT count(*) FROM orders WHERE id = 5'), '1');
    } finally {
      await c.end();
    }
  });

  it('the client going away sets spec.cancel on its request', async () => {
    const gw = await gateway(env.backend());
    const c = await gw.client();
    const before = (await env.list()).length;
    const q = c.query('DELETE FROM orders WHERE id = 6').catch((e: unknown) => e);
    const req = await env.nth(before + 1);
    await c.end().catch(() => undefined);
    await q;
    const cancelled = await eventually(async () => ((await env.get(req.metadata.name ?? '')).spec.cancel ? true : undefined), { what: 'spec.cancel set' });
    assert.ok(cancelled);
    assert.match((await env.get(req.metadata.name ?? '')).spec.cancel?.reason ?? '', /client disconnected/);
  });

  it('a restarted sidecar cancels its pod\'s stale Pending requests (and only those)', async () => {
    const old = env.backend({ podUid: 'pod-uid-restart' });
    const ctl = new AbortController();
    const held = old.requestApproval({
      id: 'pg-stale-1', session: 's-1', cmd: 1, connection: 'testdb', identity: IDENTITY, subject: 'agent-writer', username: 'agent-writer', groups: [], statement: 'DELETE FROM orders',
      statementHash: 'c'.repeat(64), rule: 'delete-needs-approval', reason: 'destructive', message: '', approverGroups: ['db-approvers'], timeoutMs: 60_000, settings: {},
    }, ctl.signal);
    await eventually(async () => ((await env.list()).some((r) => r.metadata.name === 'pg-stale-1') ? true : undefined), { what: 'pg-stale-1 created' });
    const other = (await env.list()).filter((r) => r.metadata.labels?.['chaperone.dev/pod-uid'] !== 'pod-uid-restart' && !r.spec.cancel && !r.status).length;
    // The new process of the same pod:
    assert.equal(await env.backend({ podUid: 'pod-uid-restart' }).cancelStale(), 1);
    assert.match((await env.get('pg-stale-1')).spec.cancel?.reason ?? '', /sidecar restarted/);
    assert.equal((await env.list()).filter((r) => r.metadata.labels?.['chaperone.dev/pod-uid'] !== 'pod-uid-restart' && !r.spec.cancel && !r.status).length, other);
    ctl.abort('timeout');
    await held;
  });

  it('window scope: once approved, the next matching statement runs without a new request; a revoked window is not honoured', async () => {
    const gw = await gateway(env.backend(), [approvalRule({ id: 'window-rule', windowSeconds: 600 })]);
    const c = await gw.client();
    try {
      const before = (await env.list()).length;
      const q = c.query('DELETE FROM orders WHERE id = 7');
      const req = await env.nth(before + 1);
      assert.equal(req.spec.approval.scope, 'window');
      assert.equal(req.spec.approval.window, '600s');
      const name = req.metadata.name ?? '';
      await env.setStatus(name, { phase: 'Approved', reason: 'approved by approver', decidedAt: new Date().toISOString(), window: { expiresAt: new Date(Date.now() + 600_000).toISOString() } });
      await q;
      assert.equal((await c.query('DELETE FROM orders WHERE id = 8')).rowCount, 1, 'covered by the window');
      assert.equal((await env.list()).length, before + 1, 'no new request inside the window');
      await env.setStatus(name, { phase: 'Revoked', reason: 'window revoked by approver: done', window: { revokedAt: new Date().toISOString() } });
      const q3 = c.query('DELETE FROM orders WHERE id = 9');
      // The denial can reject q3 before assert.rejects below attaches: mark it handled now.
      q3.catch(() => undefined);
      const req3 = await env.nth(before + 2);
      await env.setStatus(req3.metadata.name ?? '', { phase: 'Denied', reason: 'denied by approver: enough' });
      await assert.rejects(q3, /enough/);
    } finally {
      await c.end();
    }
  });

  it('extended protocol: the request shows the bound parameters and its sha256 covers them; an approval runs that one execution; a window ignores parameters', async () => {
    await pgp.psql("INSERT INTO orders SELECT g, 'x' FROM generate_series(101, 104) g;");
    const del = 'DELETE FROM orders WHERE id = $1';
    const gw = await gateway(env.backend());
    const c = await gw.client();
    try {
      const before = (await env.list()).length;
      const q = c.query(del, [101]);
      q.catch(() => undefined);
      const req = await env.nth(before + 1);
      assert.equal(req.spec.command.text, `${del}\n-- bound parameters: $1 = '101'`);
      assert.notEqual(req.spec.command.sha256, createHash('sha256').update(del).digest('hex'), 'not the bare statement hash');
      assert.equal(await pgp.psql('SELECT count(*) FROM orders WHERE id = 101'), '1', 'nothing ran while held');
      await env.setStatus(req.metadata.name ?? '', { phase: 'Approved', reason: 'approved by approver' });
      assert.equal((await q).rowCount, 1);
      const q2 = c.query(del, [102]);
      q2.catch(() => undefined);
      const req2 = await env.nth(before + 2);
      assert.equal(req2.spec.command.text, `${del}\n-- bound parameters: $1 = '102'`);
      assert.notEqual(req2.spec.command.sha256, req.spec.command.sha256, 'only the parameter differs');
      await env.setStatus(req2.metadata.name ?? '', { phase: 'Denied', reason: 'denied by approver: not 102' });
      await assert.rejects(q2, /not 102/);
      assert.equal(await pgp.psql('SELECT count(*) FROM orders WHERE id IN (101, 102)'), '1');
    } finally {
      await c.end();
    }
    const gw2 = await gateway(env.backend(), [approvalRule({ id: 'window-params', windowSeconds: 600 })]);
    const c2 = await gw2.client();
    try {
      const before = (await env.list()).length;
      const q3 = c2.query(del, [103]);
      q3.catch(() => undefined);
      const req3 = await env.nth(before + 1);
      await env.setStatus(req3.metadata.name ?? '', { phase: 'Approved', reason: 'approved by approver', decidedAt: new Date().toISOString(), window: { expiresAt: new Date(Date.now() + 600_000).toISOString() } });
      assert.equal((await q3).rowCount, 1);
      assert.equal((await c2.query(del, [104])).rowCount, 1, 'other values inside the window run');
      assert.equal((await env.list()).length, before + 1, 'no new request inside the window');
    } finally {
      await c2.end();
    }
  });

  it('the sidecar process with approvals.backend kubernetes: cancels its pod\'s stale requests at start, holds a DELETE as an ApprovalRequest, runs it once approved', async () => {
    const stale = env.backend({ podUid: 'uid-proc' });
    const ctl = new AbortController();
    const held = stale.requestApproval({
      id: 'pg-stale-proc', session: 's-0', cmd: 1, connection: 'appdb', identity: IDENTITY, subject: 'agent-writer', username: 'agent-writer', groups: [], statement: 'DELETE FROM orders',
      statementHash: 'd'.repeat(64), rule: 'deletes-need-approval', reason: 'destructive', message: '', approverGroups: ['db-approvers'], timeoutMs: 60_000, settings: {},
    }, ctl.signal);
    await eventually(async () => ((await env.list()).some((r) => r.metadata.name === 'pg-stale-proc') ? true : undefined), { what: 'pg-stale-proc created' });
    await writeFile(join(env.dir, 'username'), `${pgp.superuser}\n`);
    await writeFile(join(env.dir, 'password'), `${pgp.password}\n`);
    const config = join(env.dir, 'sidecar.yaml');
    await writeFile(config, `version: 1
identity:
  issuers:
    - { issuer: ${idp.issuer}, audiences: [${AUDIENCE}] }
connections:
  - name: appdb
    protocol: postgres
    listen: { port: 0 }
    upstream: { host: 127.0.0.1, port: ${pgp.port}, database: postgres, tls: { mode: disable } }
    credentials: { usernameFile: ${join(env.dir, 'username')}, passwordFile: ${join(env.dir, 'password')} }
    access: { allowedGroups: [db-writers] }
    policy:
      sql:
        default: allow
        rules:
          - { id: deletes-need-approval, action: require-approval, match: { commands: [DELETE] }, message: deletes are reviewed, approval: { approverGroups: [db-approvers], timeoutSeconds: 30 } }
approvals: { backend: kubernetes, timeoutSeconds: 60, kubernetes: { apiServerUrl: ${cp.url}, caFile: ${cp.caFile}, tokenFile: ${env.tokenFile} } }
admin: { port: 0 }
recording: { stdout: false, file: { path: ${join(env.dir, 'recording.jsonl')} } }
shutdown: { drainTimeoutSeconds: 1 }
log: { level: silent }
`);
    const sidecar = await startSidecar({ configPath: config, env: { POD_NAMESPACE: env.ns, POD_NAME: 'agent-pod-proc', POD_UID: 'uid-proc' } });
    try {
      await eventually(async () => ((await env.get('pg-stale-proc')).spec.cancel ? true : undefined), { what: 'the stale request cancelled at start' });
      ctl.abort('timeout');
      await held;
      const port = sidecar.listeners().get('appdb')?.address.port ?? 0;
      const c = new pgClient({ host: '127.0.0.1', port, user: 'agent', database: 'postgres', password: await idp.token('agent-writer') });
      await c.connect();
      try {
        const before = (await env.list()).length;
        const q = c.query('DELETE FROM orders WHERE id = 10');
        const req = await env.nth(before + 1);
        assert.equal(req.spec.pod?.name, 'agent-pod-proc');
        assert.equal(req.spec.connection, 'appdb');
        await env.setStatus(req.metadata.name ?? '', { phase: 'Approved', reason: 'approved by approver' });
        assert.equal((await q).rowCount, 1);
      } finally {
        await c.end();
      }
    } finally {
      await sidecar.stop('test done');
    }
  });
});

