// The Kubernetes API gateway with the real kubectl against the real test API server: the agent's token in, a TokenRequest'd ServiceAccount token out, Secrets masked, deletes held, exec refused, watches streamed masked.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import type { HttpPolicyConfig, KubernetesConnectionConfig } from '../../sidecar/core/config-types.ts';
import { createTokenVerifier } from '../../sidecar/identity/verify-token.ts';
import { LocalApprovals } from '../../sidecar/protocols/postgres/approval-hold.ts';
import { startKubernetesGateway } from '../../sidecar/protocols/kubernetes/listener.ts';
import type { RecordEvent } from '../../sidecar/recording/event.ts';
import { AUDIENCE, startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';
import { eventually } from '../env/wait.ts';
import { createCa } from '../env/pki.ts';

const PW = 'kube-secret-' + 'V9xQ2mL7pK4nR8tW';
const GH = 'ghp_' + 'a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8'.slice(0, 36);
const b64 = (s: string): string => Buffer.from(s).toString('base64');

let cp: ControlPlane;
let idp: TestIdp;
let dir: string;
let ns: string;
let saToken: string;
let kubeconfig: string;
let approvals: LocalApprovals;
const events: RecordEvent[] = [];
let stopGateway: () => Promise<void>;
/** Raw HTTPS requests to the gateway with the agent's token (headers kubectl would not send). */
let rawGet: (path: string, headers?: Record<string, string>) => Promise<{ status: number; contentType: string; text: string }>;

const policy: HttpPolicyConfig = {
  default: 'allow',
  rules: [
    { id: 'no-top-secret', action: 'deny', message: 'that Secret is off limits', match: { kubernetes: { resources: ['secrets'], names: ['top-secret'] } } },
    { id: 'hold-deploy-delete', action: 'require-approval', match: { kubernetes: { verbs: ['delete', 'deletecollection'], apiGroups: ['apps'], resources: ['deployments'] } }, approval: { approverGroups: ['leads'], timeoutSeconds: 60 } },
    { id: 'no-exec', action: 'deny', match: { kubernetes: { resources: ['pods'], subresources: ['exec', 'attach', 'portforward'] } } },
  ],
};

async function kubectl(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn('kubectl', ['--kubeconfig', kubeconfig, '-n', ns, '--request-timeout=60s', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => {
      if (process.env['CHAP_TEST_DEBUG'] !== undefined) console.error(args.join(' '), code, stderr.slice(0, 2000));
      resolve({ code: code ?? -1, stdout, stderr });
    });
    p.stdin.end(input ?? '');
  });
}

async function admin(method: string, path: string, body?: unknown, contentType?: string): Promise<void> {
  const r = await cp.request('admin', method, path, body, contentType !== undefined ? { contentType } : {});
  assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${r.text}`);
}

before(async () => {
  cp = await sharedControlPlane();
  idp = await startOidcProvider();
  dir = await mkdtemp(join(tmpdir(), 'chap-kubegw-'));
  ns = await cp.createNamespace('kubegw');
  // The scoped ServiceAccount the sidecar acts as: edit rights in this namespace only.
  await admin('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'agent-scope' } });
  await admin('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'agent-scope' },
    rules: [{ apiGroups: ['', 'apps'], resources: ['pods', 'pods/exec', 'pods/log', 'secrets', 'configmaps', 'deployments'], verbs: ['*'] }],
  });
  await admin('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'agent-scope' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'agent-scope' },
    subjects: [{ kind: 'ServiceAccount', name: 'agent-scope', namespace: ns }],
  });
  const tr = await cp.request<{ status: { token: string } }>('admin', 'POST', `/api/v1/namespaces/${ns}/serviceaccounts/agent-scope/token`, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } });
  assert.equal(tr.status, 201, tr.text);
  saToken = tr.body.status.token;
  await writeFile(join(dir, 'sa-token'), saToken);
  await admin('POST', `/api/v1/namespaces/${ns}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db' }, data: { password: b64(PW) } });
  await admin('POST', `/api/v1/namespaces/${ns}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'top-secret' }, data: { k: b64('zzz-top-value') } });
  await admin('POST', `/api/v1/namespaces/${ns}/configmaps`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'app' }, data: { 'settings.yaml': `github_token: ${GH}\nmode: fast\n` } });
  await admin('POST', `/api/v1/namespaces/${ns}/pods`, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-0' }, spec: { containers: [{ name: 'c', image: 'registry.invalid/x:1' }] } });
  await admin('POST', `/apis/apps/v1/namespaces/${ns}/deployments`, {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' },
    spec: { replicas: 1, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'registry.invalid/x:1' }] } } },
  });
  approvals = new LocalApprovals();
  // kubectl sends its token only over TLS: the listener gets a serving certificate the kubeconfig trusts.
  const ca = await createCa(dir, 'sidecar-listener-ca');
  const leaf = await ca.issue({ name: 'listener', commonName: '127.0.0.1', ips: ['127.0.0.1'], dnsNames: ['localhost'], usage: 'server' });
  const conn: KubernetesConnectionConfig = {
    name: 'cluster',
    protocol: 'kubernetes',
    listen: { host: '127.0.0.1', port: 0, tls: { certFile: leaf.certFile, keyFile: leaf.keyFile, required: true } },
    access: { allowedGroups: ['agents'], allowedSubjects: [], anyAuthenticated: false },
    readOnly: false,
    limits: { maxMessageBytes: 1 << 20, idleTimeoutSeconds: 0, statementTimeoutSeconds: undefined, connectTimeoutSeconds: 5, maxSessions: 50 },
    masking: {},
    upstream: { url: cp.url, tls: { caFile: cp.caFile, serverName: undefined, certFile: undefined, keyFile: undefined } },
    credentials: { tokenFile: join(dir, 'sa-token') },
    policy: { http: policy },
  };
  const say = (o: object, m: string): void => {
    if (process.env['CHAP_TEST_DEBUG'] !== undefined) console.error(m, o);
  };
  const silent = { debug: say, info: say, warn: say, error: say };
  const g = await startKubernetesGateway(conn, {
    verifier: createTokenVerifier({ issuers: [{ issuer: idp.issuer, audiences: [AUDIENCE] }] }),
    recorder: { record: (e) => (events.push(e), Promise.resolve()) },
    approvals,
    approvalTimeoutMs: 60_000,
    logger: silent,
    metrics: {},
    identity: 'test',
  });
  stopGateway = () => g.close(Date.now());
  // The kubeconfig the operator injects: the sidecar on loopback, the agent's own token.
  kubeconfig = join(dir, 'kubeconfig');
  const agentToken = await idp.token('agent-writer');
  const caPem = await readFile(ca.certFile, 'utf8');
  rawGet = (path, headers = {}) => new Promise((resolve, reject) => {
    const r = httpsRequest({ host: '127.0.0.1', port: g.address.port, path, ca: caPem, headers: { authorization: `Bearer ${agentToken}`, ...headers } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), text }));
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end();
  });
  await writeFile(kubeconfig, [
    'apiVersion: v1', 'kind: Config', 'current-context: sidecar',
    'clusters:', '- name: sidecar', '  cluster:', `    server: https://127.0.0.1:${g.address.port}`, `    certificate-authority: ${ca.certFile}`,
    'users:', '- name: agent', '  user:', `    token: ${agentToken}`,
    'contexts:', '- name: sidecar', '  context:', '    cluster: sidecar', '    user: agent', `    namespace: ${ns}`,
  ].join('\n') + '\n');
});

after(async () => {
  await stopGateway?.();
  await idp?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  await cp?.stop();
});

describe('kubectl through the Kubernetes gateway', () => {
  it('get pods works (as the scoped ServiceAccount)', async () => {
    const r = await kubectl(['get', 'pods', ...(process.env['CHAP_TEST_DEBUG'] !== undefined ? ['-v=8'] : [])]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /web-0\s+0\/1\s+Pending/);
    const whoami = await kubectl(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
    assert.equal(whoami.stdout, `system:serviceaccount:${ns}:agent-scope`, whoami.stderr);
  });

  it('get secret -o yaml / -o json shows masked data (valid base64), never the value', async () => {
    for (const out of ['yaml', 'json']) {
      const r = await kubectl(['get', 'secret', 'db', '-o', out]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!r.stdout.includes(b64(PW)) && !r.stdout.includes(PW), r.stdout);
      assert.ok(r.stdout.includes(b64('[MASKED:kubernetes-secret-data]')), r.stdout);
    }
    const list = await kubectl(['get', 'secrets', '-o', 'json']);
    assert.ok(!list.stdout.includes(b64(PW)));
    const table = await kubectl(['get', 'secrets']);
    assert.match(table.stdout, /db\s+Opaque\s+1/);
    const desc = await kubectl(['describe', 'secret', 'db']);
    assert.equal(desc.code, 0, desc.stderr);
    assert.ok(!desc.stdout.includes(PW));
  });

  it('ConfigMap values go through the detectors', async () => {
    const r = await kubectl(['get', 'configmap', 'app', '-o', 'yaml']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes(GH), r.stdout);
    assert.match(r.stdout, /mode: fast/);
  });

  it('a denied read is refused with the rule named', async () => {
    const r = await kubectl(['get', 'secret', 'top-secret', '-o', 'yaml']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Forbidden.*CHAP_ERR_HTTP_DENIED.*no-top-secret/s);
    assert.ok(!r.stdout.includes(b64('zzz-top-value')));
  });

  it('exec is refused', async () => {
    const r = await kubectl(['exec', 'web-0', '--', 'true']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /CHAP_ERR_HTTP_(DENIED|UPGRADE_REFUSED)|Forbidden|forbidden|refused/i);
    assert.ok(events.some((e) => e.type === 'request' && e.decision === 'deny' && (e.rule === 'no-exec' || e.rule === 'chaperone.kubernetes-upgrade')), JSON.stringify(events.filter((e) => e.type === 'request').slice(-3)));
  });

  it('delete deployment waits for approval, then runs', async () => {
    const p = kubectl(['delete', 'deployment', 'web', '--wait=false']);
    const req = await approvals.nextRequest();
    assert.equal(req.rule, 'hold-deploy-delete');
    assert.match(req.statement, /^DELETE \/apis\/apps\/v1\/namespaces\/.*\/deployments\/web/);
    // Still there while held.
    assert.equal((await cp.request('admin', 'GET', `/apis/apps/v1/namespaces/${ns}/deployments/web`)).status, 200);
    approvals.decide(req.id, 'approved', 'lead-1');
    const r = await p;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /deleted/);
  });

  it('apply creates and updates objects; the last-applied copy of a Secret is masked', async () => {
    const cm = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: "1"\n`;
    const r1 = await kubectl(['apply', '-f', '-'], cm);
    assert.equal(r1.code, 0, r1.stderr);
    const r2 = await kubectl(['apply', '-f', '-'], cm.replace('"1"', '"2"'));
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, /configured/);
    const sec = `apiVersion: v1\nkind: Secret\nmetadata:\n  name: applied-secret\nstringData:\n  password: ${PW}-applied\n`;
    const r3 = await kubectl(['apply', '-f', '-'], sec);
    assert.equal(r3.code, 0, r3.stderr);
    const got = await kubectl(['get', 'secret', 'applied-secret', '-o', 'yaml']);
    assert.ok(!got.stdout.includes(`${PW}-applied`) && !got.stdout.includes(b64(`${PW}-applied`)), got.stdout);
    assert.match(got.stdout, /last-applied-configuration/);
  });

  // Each of these returned the applied Secret's value before: Table rows and metadata-only answers carry the
  // last-applied copy; ?watch=yes is a watch to the API server (it was judged and masked as a list); YAML went out as text.
  it('no view of an applied Secret shows its value: Table, PartialObjectMetadata, watch=yes, YAML, CBOR', async () => {
    const value = `${PW}-viewed`;
    const r = await kubectl(['apply', '-f', '-'], `apiVersion: v1\nkind: Secret\nmetadata:\n  name: viewed\ndata:\n  k: ${b64(value)}\n`);
    assert.equal(r.code, 0, r.stderr);
    const base = `/api/v1/namespaces/${ns}/secrets`;
    for (const [path, accept] of [
      [base, 'application/json;as=Table;v=v1;g=meta.k8s.io'],
      [`${base}/viewed`, 'application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io'],
      [base, 'application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io'],
      [`${base}?watch=yes&timeoutSeconds=1`, 'application/json'],
      [`${base}?watch&timeoutSeconds=1`, 'application/json;as=Table;v=v1;g=meta.k8s.io'],
      [`${base}?watch=1&pretty=true&timeoutSeconds=1`, 'application/json'],
      [`${base}/viewed`, 'application/yaml'],
      [`${base}/viewed`, 'application/cbor'],
      [`${base}/viewed`, 'application/vnd.kubernetes.protobuf'],
    ] as const) {
      const got = await rawGet(path, { accept });
      assert.equal(got.status, 200, `${path} ${accept}: ${got.text.slice(0, 300)}`);
      assert.match(got.contentType, /^application\/json/, `${path} ${accept}`);
      assert.ok(!got.text.includes(b64(value)) && !got.text.includes(value), `${path} ${accept}: ${got.text.slice(0, 2000)}`);
      assert.ok(got.text.includes('viewed'), `${path} ${accept}: the Secret is listed`);
    }
    const watched = await rawGet(`${base}?watch=yes&timeoutSeconds=1`);
    assert.ok(events.some((e) => e.type === 'request' && e.url.includes('watch=yes') && e.classification.verb === 'watch'), 'recorded as a watch');
    assert.match(watched.text, /"type":"ADDED"/);
  });

  it('get -w streams masked events as they happen', async () => {
    const p = spawn('kubectl', ['--kubeconfig', kubeconfig, '-n', ns, 'get', 'secrets', '-w', '-o', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await eventually(() => Promise.resolve(out.includes('"name": "db"') ? true : undefined), { what: () => `the first watch output; got ${out}`, timeoutMs: 20_000 });
      await admin('POST', `/api/v1/namespaces/${ns}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'watched' }, data: { token: b64(`${PW}-watched`) } });
      await eventually(() => Promise.resolve(out.includes('"name": "watched"') ? true : undefined), { what: () => `the watched event; got ${out}`, timeoutMs: 20_000 });
      assert.ok(!out.includes(b64(`${PW}-watched`)) && !out.includes(b64(PW)), out);
    } finally {
      p.kill('SIGTERM');
    }
  });

  it('the recording names each request\'s RequestInfo classification and decision', () => {
    const reqs = events.filter((e) => e.type === 'request');
    assert.ok(reqs.some((e) => e.type === 'request' && e.classification.verb === 'list' && e.classification.resource === 'pods'));
    assert.ok(reqs.some((e) => e.type === 'request' && e.classification.verb === 'delete' && e.classification.resource === 'apps/deployments' && e.decision === 'approval'));
  });
});
