// Approvals end to end on the real control plane with real users: the sidecar holds, `kubectl chaperone` decides, the operator's webhook stamps who and its controller sets the phase.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type pg from 'pg';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { toolPath } from '../cluster/tools.ts';
import { startPostgres, type Postgres } from '../env/postgres.ts';
import { eventually } from '../env/wait.ts';
import { AUDIENCE, startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';
import { startGateway, type Gateway } from './postgres-gateway.harness.ts';
import { agentNamespace, approvalRule, IDENTITY, installApprovals, startApprovalsOperator, type AgentNamespace, type ApprovalsOperator } from './approvals-harness.ts';
import type { ApprovalRequest } from '../../operator/api/types.ts';
import { createTokenVerifier } from '../../sidecar/identity/verify-token.ts';
import type { SqlRuleJson } from '../../sidecar/policy/sql-rules.ts';

const run = promisify(execFile);
const BIN_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../operator/bin');

/** What a query ended with, for assertion messages. */
function show(r: pg.QueryResult | Error): string {
  return r instanceof Error ? r.message : `${r.command} ${r.rowCount ?? 0}`;
}

interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

describe('approvals end to end (sidecar, webhook, controller, kubectl chaperone)', () => {
  let cp: ControlPlane;
  let pgp: Postgres;
  let idp: TestIdp;
  let env: AgentNamespace;
  let operator: ApprovalsOperator | undefined;
  const gateways: Gateway[] = [];

  /** The real kubectl, finding kubectl-chaperone on PATH (a kubectl plugin), as `user`. */
  async function kubectl(user: string, ...args: string[]): Promise<CliResult> {
    try {
      const r = await run(toolPath('kubectl'), ['chaperone', ...args, '-n', env.ns], { env: { ...process.env, PATH: `${BIN_DIR}:${process.env.PATH ?? ''}`, KUBECONFIG: cp.kubeconfig(user) } });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (e) {
      const x = e as { code?: number; stdout?: string; stderr?: string };
      return { code: x.code ?? -1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
    }
  }

  async function gateway(rules: SqlRuleJson[]): Promise<Gateway> {
    const verifier = createTokenVerifier({ issuers: [{ issuer: idp.issuer, audiences: [AUDIENCE], actingForClaim: 'act_for' }] });
    const gw = await startGateway({ pg: pgp, idp, sql: { default: 'allow', rules }, deps: { approvals: env.backend(), identity: IDENTITY, verifier } });
    gateways.push(gw);
    return gw;
  }

  function path(name: string): string {
    return `/apis/chaperone.dev/v1alpha1/namespaces/${env.ns}/approvalrequests/${name}`;
  }

  async function phase(name: string, want: string): Promise<ApprovalRequest> {
    return eventually(async () => {
      const r = await env.get(name);
      return r.status?.phase === want ? r : undefined;
    }, { what: `${name} phase ${want}` });
  }

  /** Holds `sql` on a fresh client; resolves with the request it created and the pending query. */
  async function hold(gw: Gateway, sql: string, client = 'agent-writer'): Promise<{ c: pg.Client; q: Promise<pg.QueryResult | Error>; req: ApprovalRequest }> {
    const c = await gw.client(client);
    const before = new Set((await env.list()).map((r) => r.metadata.name));
    c.on('error', () => undefined); // a sidecar that goes away ends the connection: the query's rejection says so
    const q = c.query(sql).catch((e: unknown) => e as Error);
    const req = await eventually(async () => (await env.list()).find((r) => !before.has(r.metadata.name) && r.spec.command.text === sql), { what: `a request for ${sql}` });
    await phase(req.metadata.name ?? '', 'Pending');
    return { c, q, req };
  }

  before(async () => {
    cp = await sharedControlPlane();
    await installApprovals(cp);
    env = await agentNamespace(cp, 'appr-flow');
    pgp = await startPostgres({ auth: 'scram-sha-256' });
    idp = await startOidcProvider();
    await pgp.psql('CREATE TABLE orders (id int primary key, status text); INSERT INTO orders SELECT g, \'cancelled\' FROM generate_series(1, 100) g;');
    operator = await startApprovalsOperator(cp, env.ns);
  });

  after(async () => {
    for (const g of gateways) await g.close().catch(() => undefined);
    await operator?.close();
    await env?.close();
    await idp?.close();
    await pgp?.stop();
    if (cp?.owned) await cp.stop();
  });

  it('approver: `kubectl chaperone approvals` lists it, `kubectl chaperone approve` runs the held statement with its result; the webhook stamped the reviewer', async () => {
    const gw = await gateway([approvalRule()]);
    const { c, q, req } = await hold(gw, 'DELETE FROM orders WHERE id = 1 RETURNING id');
    const name = req.metadata.name ?? '';
    try {
      assert.equal(req.metadata.annotations?.['chaperone.dev/created-by'], env.saUsername, 'the sidecar\'s ServiceAccount created it');
      const list = await kubectl('approver', 'approvals');
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /^NAME\s+AGE\s+IDENTITY\s+CONNECTION\s+COMMAND\s+REQUESTER\s+EXPIRES/);
      assert.match(list.stdout, new RegExp(`${name}\\s+\\S+\\s+${IDENTITY}\\s+testdb\\s+DELETE FROM orders WHERE id = 1 RETURNING id\\s+agent-writer\\s+in `));
      const r = await kubectl('approver', 'approve', name, '--reason', 'ticket OPS-1');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`approvalrequest/${name} approved as approver \\(1 of 1`));
      const res = await q;
      assert.ok(!(res instanceof Error), show(res));
      assert.deepEqual(res.rows, [{ id: 1 }]);
      const done = await phase(name, 'Approved');
      assert.equal(done.spec.reviews?.[0]?.reviewer.username, 'approver');
      assert.ok(done.spec.reviews?.[0]?.reviewer.groups?.includes('db-approvers'));
      assert.equal(done.spec.reviews?.[0]?.reason, 'ticket OPS-1');
      assert.match(done.status?.reason ?? '', /approved by approver: ticket OPS-1/);
      assert.equal(done.status?.conditions?.find((x) => x.type === 'Decided')?.status, 'True');
    } finally {
      await c.end();
    }
  });

  it('outsider, the agent\'s own ServiceAccount (with patch rights), and a decided request are refused with messages', async () => {
    const gw = await gateway([approvalRule()]);
    const { c, q, req } = await hold(gw, 'DELETE FROM orders WHERE id = 2');
    const name = req.metadata.name ?? '';
    try {
      const out = await kubectl('outsider', 'approve', name);
      assert.equal(out.code, 1);
      assert.match(out.stderr, /error: forbidden: outsider is not in the approvers of rule delete-needs-approval \(groups db-approvers\)/);
      const token = (await import('node:fs')).readFileSync(env.tokenFile, 'utf8');
      const self = await cp.request<{ message: string }>({ token }, 'PATCH', path(name), { spec: { review: { decision: 'Approve' } } }, { contentType: 'application/merge-patch+json' });
      assert.equal(self.status, 403);
      assert.match(self.body.message, /system:serviceaccount:.*cannot decide it/);
      assert.equal((await env.get(name)).spec.reviews, undefined, 'nothing was recorded');
      const d = await kubectl('approver', 'deny', name, '--reason', 'not during the freeze');
      assert.equal(d.code, 0, d.stderr);
      const res = await q;
      assert.ok(res instanceof Error && /not during the freeze/.test(res.message) && res.message.includes(name), show(res));
      await phase(name, 'Denied');
      const late = await kubectl('second-approver', 'approve', name);
      assert.equal(late.code, 1);
      assert.match(late.stderr, /already Denied/);
      assert.equal(await pgp.psql('SELECT count(*) FROM orders WHERE id = 2'), '1');
    } finally {
      await c.end();
    }
  });

  it('a forged reviewer in a JSON patch is overwritten with the authenticated user', async () => {
    const gw = await gateway([approvalRule()]);
    const { c, q, req } = await hold(gw, 'DELETE FROM orders WHERE id = 3');
    const name = req.metadata.name ?? '';
    try {
      const forged = [{ op: 'add', path: '/spec/reviews', value: [{ decision: 'Approve', reason: 'trust me', reviewer: { username: 'the-cto', groups: ['db-approvers'] }, time: '2000-01-01T00:00:00Z' }] }];
      const r = await cp.request<ApprovalRequest>('second-approver', 'PATCH', path(name), forged, { contentType: 'application/json-patch+json' });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.spec.reviews?.[0]?.reviewer.username, 'second-approver');
      assert.notEqual(r.body.spec.reviews?.[0]?.time, '2000-01-01T00:00:00Z');
      assert.ok(!((await q) instanceof Error));
    } finally {
      await c.end();
    }
  });

  it('required: 2 waits for the second approver; the same approver twice is refused', async () => {
    const gw = await gateway([approvalRule({ required: 2 })]);
    const { c, q, req } = await hold(gw, 'DELETE FROM orders WHERE id = 4');
    const name = req.metadata.name ?? '';
    try {
      assert.equal((await kubectl('approver', 'approve', name)).code, 0);
      const again = await kubectl('approver', 'approve', name);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /already approved/);
      await eventually(async () => ((await env.get(name)).status?.approvals === 1 ? true : undefined), { what: 'one approval counted' });
      assert.equal((await env.get(name)).status?.phase, 'Pending');
      assert.equal(await pgp.psql('SELECT count(*) FROM orders WHERE id = 4'), '1', 'still held after one approval');
      assert.equal((await kubectl('second-approver', 'approve', name)).code, 0);
      assert.ok(!((await q) instanceof Error));
      assert.equal(await pgp.psql('SELECT count(*) FROM orders WHERE id = 4'), '0');
      assert.equal((await phase(name, 'Approved')).status?.approvals, 2);
    } finally {
      await c.end();
    }
  });

  it('approving after expiry is refused; the sidecar refused the statement at its timeout', async () => {
    const gw = await gateway([approvalRule({ timeoutSeconds: 2 })]);
    const { c, q, req } = await hold(gw, 'DELETE FROM orders WHERE id = 5');
    const name = req.metadata.name ?? '';
    try {
      const res = await q;
      assert.ok(res instanceof Error && /no decision within 2 s|expired/.test(res.message), show(res));
      await phase(name, 'Expired');
      const late = await kubectl('approver', 'approve', name);
      assert.equal(late.code, 1);
      assert.match(late.stderr, /expired|Expired/);
      assert.equal(await pgp.psql('SELECT count(*) FROM orders WHERE id = 5'), '1');
    } finally {
      await c.end();
    }
  });

  it('several requests in parallel from several sessions, each approved, each runs exactly its own statement', async () => {
    const gw = await gateway([approvalRule()]);
    const held = await Promise.all([10, 11, 12, 13, 14].map((id) => hold(gw, `DELETE FROM orders WHERE id = ${id}`)));
    try {
      assert.equal(new Set(held.map((h) => h.req.metadata.name)).size, 5);
      await Promise.all(held.map((h) => cp.request('approver', 'PATCH', path(h.req.metadata.name ?? ''), { spec: { review: { decision: 'Approve' } } }, { contentType: 'application/merge-patch+json' })));
      for (const h of held) assert.ok(!((await h.q) instanceof Error));
      assert.equal(await pgp.psql('SELECT count(*) FROM orders WHERE id BETWEEN 10 AND 14'), '0');
    } finally {
      for (const h of held) await h.c.end();
    }
  });

  it('window scope: approved once, the next matching statement runs without asking; `kubectl chaperone revoke` ends it', async () => {
    const gw = await gateway([approvalRule({ id: 'window-rule', windowSeconds: 600 })]);
    const { c, q, req } = await hold(gw, 'DELETE FROM orders WHERE id = 20');
    const name = req.metadata.name ?? '';
    try {
      assert.equal((await kubectl('approver', 'approve', name)).code, 0);
      assert.ok(!((await q) instanceof Error));
      const approved = await phase(name, 'Approved');
      assert.ok(approved.status?.window?.expiresAt, 'the window is visible in status');
      const count = (await env.list()).length;
      assert.equal((await c.query('DELETE FROM orders WHERE id = 21')).rowCount, 1);
      assert.equal((await env.list()).length, count, 'no new request inside the window');
      const rv = await kubectl('second-approver', 'revoke', name, '--reason', 'incident over');
      assert.equal(rv.code, 0, rv.stderr);
      await phase(name, 'Revoked');
      const q2 = c.query('DELETE FROM orders WHERE id = 22').catch((e: unknown) => e as Error);
      const next = await eventually(async () => (await env.list()).find((r) => r.spec.command.text === 'DELETE FROM orders WHERE id = 22'), { what: 'a new request after revocation' });
      assert.equal((await kubectl('approver', 'deny', next.metadata.name ?? '', '--reason', 'window is over')).code, 0);
      assert.match(show(await q2), /window is over/);
    } finally {
      await c.end();
    }
  });

  it('notification: the rule\'s webhook gets a signed JSON POST when the request is created and when it is decided; Notified is True', async () => {
    const hits: { body: string; sig: string | undefined }[] = [];
    const srv = createServer((req, res) => {
      let body = '';
      req.on('data', (ch: Buffer) => (body += ch.toString()));
      req.on('end', () => {
        hits.push({ body, sig: req.headers['x-chaperone-signature'] as string | undefined });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const key = randomBytes(32);
    try {
      const port = (srv.address() as AddressInfo).port;
      assert.equal((await cp.request('admin', 'POST', `/api/v1/namespaces/${env.ns}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'approvals-hmac' }, data: { 'hmac-key': key.toString('base64') } })).status, 201);
      const rule = {
        apiVersion: 'chaperone.dev/v1alpha1', kind: 'ApprovalRule', metadata: { name: 'notify-rule', namespace: env.ns },
        spec: { selector: { identities: [IDENTITY] }, action: 'RequireApproval', match: { sql: { commands: ['DELETE'] } }, approval: { approvers: { groups: ['db-approvers'] }, notification: { webhookURL: `http://127.0.0.1:${port}/hook`, secretRef: { name: 'approvals-hmac' }, format: 'json' } } },
      };
      const created = await cp.request('admin', 'POST', `/apis/chaperone.dev/v1alpha1/namespaces/${env.ns}/approvalrules`, rule);
      assert.equal(created.status, 201, created.text);
      const gw = await gateway([approvalRule({ id: 'notify-rule' })]);
      const { c, q, req } = await hold(gw, 'DELETE FROM orders WHERE id = 50');
      const name = req.metadata.name ?? '';
      try {
        await eventually(() => Promise.resolve(hits.length >= 1 ? true : undefined), { what: 'the created notification' });
        const first = JSON.parse(hits[0]?.body ?? '{}') as { event: string; name: string; approveCommand: string };
        assert.deepEqual([first.event, first.name], ['created', name]);
        assert.equal(first.approveCommand, `kubectl chaperone approve ${name} -n ${env.ns}`);
        assert.equal(hits[0]?.sig, `sha256=${createHmac('sha256', key).update(hits[0]?.body ?? '').digest('hex')}`);
        assert.equal((await kubectl('approver', 'approve', name)).code, 0);
        assert.ok(!((await q) instanceof Error));
        await eventually(() => Promise.resolve(hits.some((h) => (JSON.parse(h.body) as { event: string }).event === 'decided') ? true : undefined), { what: 'the decided notification' });
        const notified = await eventually(async () => (await env.get(name)).status?.conditions?.find((x) => x.type === 'Notified' && x.reason === 'Decided'), { what: 'Notified Decided' });
        assert.equal(notified.status, 'True');
      } finally {
        await c.end();
      }
    } finally {
      await new Promise((r) => srv.close(r));
    }
  });

  it('the sidecar stopping while a statement waits: the client gets an error and the request becomes Cancelled', async () => {
    const gw = await gateway([approvalRule()]);
    const { q, req } = await hold(gw, 'DELETE FROM orders WHERE id = 30');
    await gw.listener.close(0);
    const res = await q;
    assert.ok(res instanceof Error, 'the client saw an error');
    const done = await phase(req.metadata.name ?? '', 'Cancelled');
    assert.match(done.status?.reason ?? '', /cancelled by the sidecar/);
    assert.equal(await pgp.psql('SELECT count(*) FROM orders WHERE id = 30'), '1');
  });

  it('the operator stopping while a request waits: the sidecar still times out and refuses (fail closed)', async () => {
    const gw = await gateway([approvalRule({ timeoutSeconds: 3 })]);
    const { c, q } = await hold(gw, 'DELETE FROM orders WHERE id = 40');
    try {
      const stopping = operator?.stopOperator();
      const res = await q;
      const t0 = Date.now();
      await stopping;
      if (process.env.CHAPERONE_TEST_LOG) process.stderr.write(`operator stop took ${Date.now() - t0} ms after the refusal\n`);
      assert.ok(res instanceof Error && /no decision within 3 s/.test(res.message), show(res));
      assert.equal(await pgp.psql('SELECT count(*) FROM orders WHERE id = 40'), '1');
    } finally {
      await c.end();
    }
  });
});
