// The local approval backend end to end: a DELETE held by a RequireApproval rule waits in psql's place until an approver decides through the admin listener.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startPostgres, type Postgres } from '../env/postgres.ts';
import { eventually } from '../env/wait.ts';
import { AUDIENCE, DEFAULT_CLIENTS, startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';
import { startSidecar, type Sidecar } from '../../sidecar/main.ts';

const PASSWORD = `synth-${randomBytes(12).toString('hex')}`;
const SUPERUSER = 'chap_approvals_test';
/** Bounds on waits, not timing assertions. */
const WAIT_BOUND_MS = 20_000;

let pgp: Postgres;
let idp: TestIdp;
let dir = '';
let sidecar: Sidecar;
let admin = '';
let pgPort = 0;

function until<T>(get: () => Promise<T | undefined>, what: string): Promise<T> {
  return eventually(get, { what, timeoutMs: WAIT_BOUND_MS, intervalMs: 50 });
}

interface Pending {
  readonly id: string;
  readonly requester: string;
  readonly statement: string;
  readonly rule: string;
}

async function pending(token: string): Promise<{ status: number; body: { pending?: Pending[]; reason?: string } }> {
  const r = await fetch(`${admin}/approvals`, { headers: { authorization: `Bearer ${token}` } });
  return { status: r.status, body: (await r.json()) as { pending?: Pending[] } };
}

async function decide(token: string, id: string, verb: 'approve' | 'deny', reason = ''): Promise<{ status: number; body: { reason?: string; decision?: string } }> {
  const r = await fetch(`${admin}/approvals/${id}/${verb}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason }) });
  return { status: r.status, body: (await r.json()) as { reason?: string } };
}

async function agentClient(): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: pgPort, user: 'agent', database: 'postgres', password: await idp.token('agent-writer') });
  await c.connect();
  return c;
}

before(async () => {
  pgp = await startPostgres({ auth: 'scram-sha-256', superuser: SUPERUSER, password: PASSWORD });
  await pgp.psql('CREATE TABLE orders (id int primary key, note text); INSERT INTO orders SELECT g, \'n\' || g FROM generate_series(1, 5) g;');
  idp = await startOidcProvider({
    clients: [...DEFAULT_CLIENTS, { id: 'approver-1', groups: ['db-approvers'] }, { id: 'outsider-1', groups: ['developers'] }],
  });
  dir = await mkdtemp(join(tmpdir(), 'chap-approvals-'));
  await writeFile(join(dir, 'username'), `${SUPERUSER}\n`);
  await writeFile(join(dir, 'password'), `${PASSWORD}\n`);
  const config = join(dir, 'sidecar.yaml');
  await writeFile(
    config,
    `version: 1
identity:
  issuers:
    - issuer: ${idp.issuer}
      audiences: [${AUDIENCE}]
connections:
  - name: appdb
    protocol: postgres
    listen: { port: 0 }
    upstream: { host: 127.0.0.1, port: ${pgp.port}, database: postgres, tls: { mode: disable } }
    credentials: { usernameFile: ${join(dir, 'username')}, passwordFile: ${join(dir, 'password')} }
    access: { allowedGroups: [db-writers] }
    policy:
      sql:
        default: allow
        rules:
          - { id: deletes-need-approval, action: require-approval, match: { commands: [DELETE] }, message: deletes are reviewed by db-approvers }
approvals: { backend: local, timeoutSeconds: 60 }
admin: { port: 0, approverGroups: [db-approvers] }
recording: { stdout: false, file: { path: ${join(dir, 'recording.jsonl')} } }
shutdown: { drainTimeoutSeconds: 1 }
log: { level: silent }
`,
  );
  sidecar = await startSidecar({ configPath: config });
  admin = `http://127.0.0.1:${sidecar.admin.address.port}`;
  pgPort = sidecar.listeners().get('appdb')!.address.port;
});

after(async () => {
  await sidecar?.stop('test done');
  await idp?.close();
  await pgp?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('local approvals through the admin listener', () => {
  it('holds a DELETE until an approver approves it; the requester and outsiders are refused', async () => {
    const agent = await agentClient();
    const notices: string[] = [];
    agent.on('notice', (n) => notices.push(n.message ?? ''));
    try {
      const approver = await idp.token('approver-1');
      const held = agent.query('DELETE FROM orders WHERE id = 1');
      const req = await until(async () => (await pending(approver)).body.pending?.[0], 'the held DELETE to be pending');
      assert.equal(req.rule, 'deletes-need-approval');
      assert.match(req.statement, /DELETE FROM orders/);

      const self = await decide(await idp.token('agent-writer'), req.id, 'approve');
      assert.equal(self.status, 403, 'the requester must not pass the approver gate');
      const outsider = await decide(await idp.token('outsider-1'), req.id, 'approve');
      assert.equal(outsider.status, 403);
      assert.equal(outsider.body.reason, 'not-an-approver');
      const noToken = await fetch(`${admin}/approvals/${req.id}/approve`, { method: 'POST' });
      assert.equal(noToken.status, 401);

      const ok = await decide(approver, req.id, 'approve', 'ticket OPS-1');
      assert.equal(ok.status, 200);
      const r = await held;
      assert.equal(r.rowCount, 1, 'the approved DELETE ran exactly once');
      assert.ok(notices.some((n) => /approv/i.test(n)), `the client was told it waits for approval (notices: ${notices.join(' | ')})`);
      const left = await pgp.psql('SELECT count(*) FROM orders');
      assert.match(left, /\b4\b/);
      assert.equal((await decide(approver, req.id, 'approve')).status, 404, 'a decided request cannot be decided again');
    } finally {
      await agent.end();
    }
  });

  it('a denial ends the wait with an error that names the reason, and nothing runs', async () => {
    const agent = await agentClient();
    try {
      const approver = await idp.token('approver-1');
      const held = agent.query('DELETE FROM orders WHERE id = 2').then(
        () => assert.fail('a denied DELETE must not succeed'),
        (e: Error & { code?: string }) => e,
      );
      const req = await until(async () => (await pending(approver)).body.pending?.[0], 'the held DELETE to be pending');
      assert.equal((await decide(approver, req.id, 'deny', 'not during the freeze')).status, 200);
      const err = await held;
      assert.equal(err.code, '42501');
      assert.match(err.message, /not during the freeze/);
      assert.match(await pgp.psql('SELECT count(*) FROM orders WHERE id = 2'), /\b1\b/);
    } finally {
      await agent.end();
    }
  });
});
