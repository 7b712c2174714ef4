// The audit trail end to end on real parts: a sidecar session through psql (real PostgreSQL 15, a real OIDC IdP) becomes Events and AgentIdentity status counters on the real API server, and its recording replays to the same facts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeClient } from '../../operator/kube/client.ts';
import { startAuditServer, type AuditServer } from '../../operator/audit/server.ts';
import { run } from '../../operator/kubectl-plugin/main.ts';
import { ANNOTATION_INJECTED, LABEL_IDENTITY, SIDECAR_CONTAINER_NAME } from '../../operator/webhooks/pod-mutate/layout.ts';
import { REPORT_PATH } from '../../sidecar/audit/reporter.ts';
import { startSidecar, type Sidecar } from '../../sidecar/main.ts';
import { replayText } from '../../sidecar/recording/replay.ts';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { createCa } from '../env/pki.ts';
import { startPostgres, type Postgres } from '../env/postgres.ts';
import { eventually } from '../env/wait.ts';
import { AUDIENCE, startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';
import { installCrds, kubeConfigFor, testLogger } from './operator-controllers.harness.ts';

const PASSWORD = `synth-${randomBytes(12).toString('hex')}`;
const SUPERUSER = 'chap_audit_test';
const IDENTITY = 'coding-agent';
const FLOOD = 1_000;

let cp: ControlPlane;
let pgp: Postgres;
let idp: TestIdp;
let dir: string;
let ns: string;
let server: AuditServer;
let caFile: string;
const pods: Record<string, { name: string; uid: string }> = {};
const tokens: Record<string, string> = {};

async function ok<T>(p: Promise<{ status: number; body: T; text: string }>, what: string): Promise<T> {
  const r = await p;
  assert.ok(r.status >= 200 && r.status < 300, `${what}: ${r.status} ${r.text.slice(0, 300)}`);
  return r.body;
}

async function makePod(name: string, identity: string, sa: string): Promise<{ name: string; uid: string }> {
  const body = await ok(cp.request<{ metadata: { uid: string } }>('admin', 'POST', `/api/v1/namespaces/${ns}/pods`, {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, labels: { [LABEL_IDENTITY]: identity }, annotations: { [ANNOTATION_INJECTED]: '{"version":1}' } },
    spec: { serviceAccountName: sa, initContainers: [{ name: SIDECAR_CONTAINER_NAME, image: 'registry.invalid/sidecar:test', restartPolicy: 'Always' }], containers: [{ name: 'agent', image: 'registry.invalid/agent:test' }] },
  }), `pod ${name}`);
  return { name, uid: body.metadata.uid };
}

async function podToken(sa: string, pod: { name: string; uid: string }, audiences?: string[]): Promise<string> {
  const b = await ok(cp.request<{ status: { token: string } }>('admin', 'POST', `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`, {
    apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
    spec: { expirationSeconds: 3600, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.name, uid: pod.uid }, ...(audiences ? { audiences } : {}) },
  }), `token for ${sa}`);
  return b.status.token;
}

function configYaml(extra = ''): string {
  return `version: 1
identity:
  name: ${IDENTITY}
  events: { apiServerUrl: "${cp.url}", caFile: ${cp.caFile}, tokenFile: ${join(dir, 'sidecar-token')} }
  report: { url: "${server.url}", caFile: ${caFile}, tokenFile: ${join(dir, 'sidecar-token')}, intervalSeconds: 1 }
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
    policy: { sql: { default: allow, packs: [no-ddl] } }
recording: { stdout: false, file: { path: ${join(dir, 'rec.jsonl')}, sync: none } }
admin: { port: 0 }
shutdown: { drainTimeoutSeconds: 2 }
${extra}`;
}

before(async () => {
  cp = await sharedControlPlane();
  await installCrds(cp);
  ns = await cp.createNamespace('audit-sidecar');
  pgp = await startPostgres({ auth: 'scram-sha-256', superuser: SUPERUSER, password: PASSWORD });
  idp = await startOidcProvider();
  dir = await mkdtemp(join(tmpdir(), 'chap-audit-sidecar-'));
  await writeFile(join(dir, 'username'), `${SUPERUSER}\n`);
  await writeFile(join(dir, 'password'), `${PASSWORD}\n`);
  for (const [sa] of [['agent'], ['other']]) await ok(cp.request('admin', 'POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa } }), `sa ${sa}`);
  // The sidecar's ServiceAccount may write audit Events (what the chart's chaperone-agent role grants).
  await ok(cp.request('admin', 'POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'events' }, rules: [{ apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] }] }), 'role');
  await ok(cp.request('admin', 'POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'events' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'events' }, subjects: [{ kind: 'ServiceAccount', name: 'agent', namespace: ns }] }), 'rolebinding');
  for (const id of [IDENTITY, 'other-agent']) {
    await ok(cp.request('admin', 'POST', `/apis/chaperone.dev/v1alpha1/namespaces/${ns}/agentidentities`, {
      apiVersion: 'chaperone.dev/v1alpha1', kind: 'AgentIdentity', metadata: { name: id },
      spec: { connections: [{ name: 'appdb', protocol: 'postgres', upstream: { host: 'db', port: 5432 }, database: 'postgres', localPort: 5432, tls: { mode: 'disable' }, credential: { secretRef: { name: 'db' } } }] },
    }), `identity ${id}`);
  }
  pods.agent = await makePod('agent-0', IDENTITY, 'agent');
  pods.other = await makePod('other-0', 'other-agent', 'other');
  tokens.sidecar = await podToken('agent', pods.agent);
  tokens.agent = await podToken('agent', pods.agent, [AUDIENCE]);
  tokens.other = await podToken('other', pods.other);
  await writeFile(join(dir, 'sidecar-token'), tokens.sidecar, { mode: 0o600 });
  const ca = await createCa(dir, 'audit-test-ca');
  const leaf = await ca.issue({ name: 'audit', commonName: 'chaperone-audit', ips: ['127.0.0.1'], usage: 'server' });
  caFile = ca.certFile;
  server = await startAuditServer({ client: KubeClient.fromKubeConfig(kubeConfigFor(cp)), log: testLogger('audit'), host: '127.0.0.1', port: 0, tls: { cert: leaf.certPem, key: leaf.keyPem }, minWriteIntervalMs: 200, ledgerNamespace: ns });
});

after(async () => {
  await server?.close();
  await idp?.close();
  await pgp?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface EventItem { reason: string; note: string; regarding: { kind: string; name: string }; series?: { count: number } }

async function events(): Promise<EventItem[]> {
  return (await ok(cp.request<{ items: EventItem[] }>('admin', 'GET', `/apis/events.k8s.io/v1/namespaces/${ns}/events`), 'events')).items;
}

async function identityStatus(name: string): Promise<{ counters?: Record<string, number>; lastSession?: Record<string, unknown> }> {
  return (await ok(cp.request<{ status?: { counters?: Record<string, number>; lastSession?: Record<string, unknown> } }>('admin', 'GET', `/apis/chaperone.dev/v1alpha1/namespaces/${ns}/agentidentities/${name}`), 'identity')).status ?? {};
}

/** psql as a child process (async: the sidecar runs in this process and must keep serving). */
function psql(port: number, token: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const env = { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: 'agent', PGDATABASE: 'postgres', PGPASSWORD: token, PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10' };
  const child = spawn('psql', ['-X', '-A', '-t', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  return new Promise((resolve) => child.once('close', (status) => {
    clearTimeout(timer);
    resolve({ status, stdout, stderr });
  }));
}

describe('audit trail of a real sidecar', () => {
  let sc: Sidecar | undefined;

  test('psql sessions → recording that replays to the same facts, bounded Events, status counters equal to the recording', async () => {
    const config = join(dir, 'sidecar.yaml');
    await writeFile(config, configYaml());
    sc = await startSidecar({
      configPath: config, env: { POD_NAME: pods.agent?.name, POD_NAMESPACE: ns, POD_UID: pods.agent?.uid },
      log: { level: 'warn' }, reload: { debounceMs: 20, pollIntervalMs: 200 }, audit: { events: { flushMs: 3_600_000 } },
    });
    const port = [...sc.listeners().values()][0]?.address.port ?? 0;
    const token = await idp.token('agent-writer');

    // Session 1: what the test does, and so what the replay must say.
    const s1 = await psql(port, token, ['-c', "SELECT 6 * 7 AS answer, 'ada.lovelace@example.com' AS email", '-c', 'CREATE TABLE nope (x int)', '-c', 'SELECT generate_series(1, 3)']);
    assert.match(s1.stdout, /^42\|/m, s1.stderr);
    assert.match(s1.stderr, /no-ddl/);
    assert.equal(s1.stdout.trim().split('\n').slice(-3).join(','), '1,2,3');

    // A policy reload that is refused, then one that applies.
    // Replaced whole, as a ConfigMap update is: an in-place write can be read half done (an empty file: '(root): must be object').
    const replace = async (text: string): Promise<void> => {
      await writeFile(`${config}.next`, text);
      await rename(`${config}.next`, config);
    };
    await replace(configYaml().replace('listen: { port: 0 }', 'listen: { port: 99999 }'));
    await eventually(() => Promise.resolve(sc?.readiness().status === 'degraded' ? true : undefined), { what: 'reload refused' });
    await replace(configYaml().replace('packs: [no-ddl]', 'packs: [no-ddl, no-dcl]'));
    await eventually(() => Promise.resolve(sc?.readiness().status === 'ready' ? true : undefined), { what: 'reload applied' });

    // Session 2: a flood of denied statements in one psql run (psql goes on after each error).
    await writeFile(join(dir, 'flood.sql'), Array.from({ length: FLOOD }, (_, i) => `DROP TABLE t${i};\n`).join(''));
    const s2 = await psql(port, token, ['-f', join(dir, 'flood.sql')]);
    assert.equal((s2.stderr.match(/ERROR: {2}Chaperone refused/g) ?? []).length, FLOOD, s2.stderr.slice(0, 500));
    await sc.stop();
    sc = undefined;

    const recording = await readFile(join(dir, 'rec.jsonl'), 'utf8');
    const out: string[] = [];
    const kc = async (argv: string[]): Promise<number> => run(argv, { out: (s) => out.push(s), err: (s) => out.push(`ERR ${s}`), env: {} });
    assert.equal(await kc(['verify', join(dir, 'rec.jsonl')]), 0, out.join('\n'));

    // The replay says what happened: who, each statement and its decision, rows, masking.
    out.length = 0;
    assert.equal(await kc(['sessions', '-f', join(dir, 'rec.jsonl'), '-o', 'json']), 0);
    const listed = (JSON.parse(out.join('\n')) as { sessions: { session: string; identity: string; commands: number; denied: number; masked: number; approvals: number }[] }).sessions;
    assert.equal(listed.length, 2);
    assert.ok(listed.every((s) => s.identity === IDENTITY), 'session.start carries the configured AgentIdentity name');
    out.length = 0;
    assert.equal(await kc(['replay', listed[0]?.session ?? '', '-f', join(dir, 'rec.jsonl'), '-o', 'json']), 0);
    const r1 = JSON.parse(out.join('\n')) as { subject: string; pod: string | null; commands: { text: string; decision: string; rule: string | null; result?: { rows: number | null; masked: Record<string, number> } }[] };
    assert.match(r1.subject, /agent-writer/, "who: the token subject");
    assert.deepEqual(r1.commands.map((c) => [c.text.replace(/'[^']*'/g, "'…'"), c.decision, c.result?.rows ?? null]), [
      ["SELECT 6 * 7 AS answer, '…' AS email", 'allow', 1],
      ['CREATE TABLE nope (x int)', 'deny', 0], // the refusal's own result line: 0 rows, the error
      ['SELECT generate_series(1, 3)', 'allow', 3],
    ]);
    assert.ok(!recording.includes('ada.lovelace@example.com'), 'the recording holds no unmasked email');
    assert.equal(listed[1]?.denied, FLOOD);
    const reloads = recording.split('\n').filter((l) => l.includes('"type":"policy.reload"')).map((l) => JSON.parse(l) as { ok: boolean; error?: string });
    assert.deepEqual(reloads.map((r) => r.ok), [false, true]);
    assert.match(reloads[0]?.error ?? '', /listen\.port/);

    // Events: a bounded number on the Pod and the AgentIdentity, counting every denial.
    const ev = await events();
    assert.ok(ev.length <= 30, `a bounded number of Events, got ${ev.length}`);
    for (const kind of ['Pod', 'AgentIdentity']) {
      const mine = ev.filter((e) => e.regarding.kind === kind);
      const reasons = new Set(mine.map((e) => e.reason));
      for (const r of ['SessionStarted', 'SessionEnded', 'StatementDenied', 'PolicyInvalid', 'PolicyReloaded']) assert.ok(reasons.has(r), `${kind} has a ${r} Event (${[...reasons].join(', ')})`);
      const denied = mine.filter((e) => e.reason === 'StatementDenied').reduce((n, e) => n + (e.series?.count ?? 1), 0);
      const throttled = mine.filter((e) => e.reason === 'EventsThrottled').length;
      assert.ok(denied === FLOOD + 1 || throttled > 0, `${kind}: StatementDenied counts ${denied} of ${FLOOD + 1}`);
    }

    // Status counters equal what the recording says.
    const all = replayText(recording).list();
    const want = {
      sessions: all.length, statements: all.reduce((n, s) => n + s.commands, 0), denied: all.reduce((n, s) => n + s.denied, 0),
      approvals: all.reduce((n, s) => n + s.approvals, 0), masked: all.reduce((n, s) => n + s.masked, 0),
    };
    const st = await eventually(async () => {
      const s = await identityStatus(IDENTITY);
      return s.counters?.sessions === want.sessions && s.counters.statements === want.statements ? s : undefined;
    }, { what: 'status counters' });
    assert.deepEqual(st.counters, want);
    assert.equal(st.lastSession?.id, listed[1]?.session);
    assert.equal(st.lastSession?.denied, FLOOD);
    assert.deepEqual((await identityStatus('other-agent')).counters, undefined, 'another identity is untouched');
  });

  test('a report with the agent\'s chaperone-audience token, or from another identity\'s pod, is refused', async () => {
    const body = (pod: { name: string; uid: string }, identity: string): unknown => ({
      apiVersion: 'chaperone.dev/v1alpha1', kind: 'SidecarReport', identity, pod: { namespace: ns, ...pod }, stream: 'abcdef0123456789', seq: 1,
      delta: { sessions: 1000, statements: 0, denied: 0, approvals: 0, masked: 0 },
    });
    const post = async (token: string, b: unknown): Promise<{ status: number; reason: string }> => {
      const { request } = await import('node:https');
      return new Promise((resolve, reject) => {
        const u = new URL(REPORT_PATH, server.url);
        const req = request(u, { method: 'POST', ca: [readFileSync(caFile)], headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
          let t = '';
          res.on('data', (c: Buffer) => (t += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, reason: (JSON.parse(t || '{}') as { reason?: string }).reason ?? '' }));
        });
        req.on('error', reject);
        req.end(JSON.stringify(b));
      });
    };
    const before = (await identityStatus(IDENTITY)).counters;
    assert.deepEqual(await post(tokens.agent ?? '', body(pods.agent ?? { name: '', uid: '' }, IDENTITY)), { status: 401, reason: 'unauthenticated' }, 'the agent\'s chaperone-audience token');
    assert.deepEqual(await post(tokens.other ?? '', body(pods.agent ?? { name: '', uid: '' }, IDENTITY)), { status: 403, reason: 'other-pod' }, 'another pod\'s token for this pod');
    assert.deepEqual(await post(tokens.other ?? '', body(pods.other ?? { name: '', uid: '' }, IDENTITY)), { status: 403, reason: 'other-identity' }, 'another identity\'s pod claiming this identity');
    assert.deepEqual(await post(cp.token('admin'), body(pods.agent ?? { name: '', uid: '' }, IDENTITY)), { status: 403, reason: 'not-a-serviceaccount' }, 'a user token');
    assert.deepEqual(await post('not-a-token', body(pods.agent ?? { name: '', uid: '' }, IDENTITY)), { status: 401, reason: 'unauthenticated' });
    // The sidecar's own token is accepted, and a retry of the same seq is not counted twice.
    assert.deepEqual(await post(tokens.sidecar ?? '', body(pods.agent ?? { name: '', uid: '' }, IDENTITY)), { status: 200, reason: '' });
    assert.deepEqual(await post(tokens.sidecar ?? '', body(pods.agent ?? { name: '', uid: '' }, IDENTITY)), { status: 200, reason: 'duplicate' });
    assert.equal((await identityStatus(IDENTITY)).counters?.sessions, (before?.sessions ?? 0) + 1000);
    assert.ok(server.stats.refused >= 5);
    assert.equal(server.stats.duplicates, 1);
  });

  after(async () => {
    await sc?.stop();
  });
});
