// The injected-pod path for kubectl: the compiled kubernetes connection (listen.selfSignedTls) makes its own loopback certificate, and the real kubectl with exactly the operator's kubeconfig (CA file + tokenFile) reaches the API server as the scoped ServiceAccount.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import type { AgentIdentity } from '../../operator/api/types.ts';
import { compileIdentity } from '../../operator/compile/compile.ts';
import { agentKubeconfig } from '../../operator/webhooks/pod-mutate/kubeconfig.ts';
import { AGENT_TOKEN_FILE, LISTENER_CA_DIR } from '../../operator/webhooks/pod-mutate/layout.ts';
import { checkConfig } from '../../sidecar/core/config.ts';
import type { KubernetesConnectionConfig } from '../../sidecar/core/config-types.ts';
import { createTokenVerifier } from '../../sidecar/identity/verify-token.ts';
import { LocalApprovals } from '../../sidecar/protocols/postgres/approval-hold.ts';
import { startKubernetesGateway } from '../../sidecar/protocols/kubernetes/listener.ts';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { freePorts } from '../env/ports.ts';
import { AUDIENCE, startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';

let cp: ControlPlane;
let idp: TestIdp;
let dir: string;
let ns: string;
let kubeconfig: string;
let kubeconfigText: string;
let caFile: string;
let stopGateway: (() => Promise<void>) | undefined;

async function kubectl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // Only KUBECONFIG, as the agent container has it: no --server, --token or --certificate-authority flags.
    const p = spawn('kubectl', ['--request-timeout=30s', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '', HOME: dir, KUBECONFIG: kubeconfig } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

async function admin(method: string, path: string, body?: unknown): Promise<void> {
  const r = await cp.request('admin', method, path, body);
  assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${r.text}`);
}

/** The compiled kubernetes connection, with the pod's absolute paths moved under `dir` and the upstream pointed at the test API server. */
function compiledConnection(identity: AgentIdentity, saTokenFile: string): KubernetesConnectionConfig {
  const r = compileIdentity({ identity, maskingPolicies: [], approvalRules: [], env: { approvalsBackend: 'none' } });
  assert.ok(r.ok, JSON.stringify(r));
  const raw = JSON.parse(r.text) as { connections: Record<string, unknown>[] };
  const conn = raw.connections.find((c) => c['protocol'] === 'kubernetes') ?? assert.fail('no kubernetes connection compiled');
  const listen = conn['listen'] as { selfSignedTls?: { caOut: string } };
  const self = listen.selfSignedTls ?? assert.fail('the compiled kubernetes listener is not in self-signed mode');
  assert.ok(self.caOut.startsWith(`${LISTENER_CA_DIR}/`), self.caOut);
  self.caOut = caFile;
  conn['upstream'] = { url: cp.url, tls: { caFile: cp.caFile } };
  conn['credentials'] = { tokenFile: saTokenFile };
  const file = { version: 1, identity: { issuers: [{ issuer: idp.issuer, audiences: [AUDIENCE] }] }, connections: [conn] };
  const checked = checkConfig(file, 'test', { checkFiles: false });
  assert.ok(checked.ok, JSON.stringify(checked));
  const c = checked.config.connections[0];
  if (c?.protocol !== 'kubernetes') assert.fail('the checked connection is not kubernetes');
  return c;
}

before(async () => {
  cp = await sharedControlPlane();
  idp = await startOidcProvider();
  dir = await mkdtemp(join(tmpdir(), 'chap-kubegw-self-'));
  ns = await cp.createNamespace('kubegw-self');
  await admin('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'agent-scope' } });
  await admin('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'agent-scope' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }],
  });
  await admin('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'agent-scope' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'agent-scope' }, subjects: [{ kind: 'ServiceAccount', name: 'agent-scope', namespace: ns }],
  });
  await admin('POST', `/api/v1/namespaces/${ns}/pods`, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-0' }, spec: { containers: [{ name: 'c', image: 'registry.invalid/x:1' }] } });
  const tr = await cp.request<{ status: { token: string } }>('admin', 'POST', `/api/v1/namespaces/${ns}/serviceaccounts/agent-scope/token`, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } });
  assert.equal(tr.status, 201, tr.text);
  await writeFile(join(dir, 'sa-token'), tr.body.status.token);

  const [port] = (await freePorts(1)) as [number];
  const identity: AgentIdentity = {
    apiVersion: 'chaperone.dev/v1alpha1', kind: 'AgentIdentity', metadata: { name: 'kube-agent', namespace: ns, generation: 1 },
    spec: { connections: [{ name: 'cluster', protocol: 'kubernetes', localPort: port, credential: { serviceAccountName: 'agent-scope' } }] },
  };
  caFile = join(dir, 'listener-ca', 'cluster.crt');
  const conn = compiledConnection(identity, join(dir, 'sa-token'));
  const say = (o: object, m: string): void => {
    if (process.env['CHAP_TEST_DEBUG'] !== undefined) console.error(m, o);
  };
  const g = await startKubernetesGateway(conn, {
    verifier: createTokenVerifier({ issuers: [{ issuer: idp.issuer, audiences: [AUDIENCE] }] }),
    recorder: null,
    approvals: new LocalApprovals(),
    approvalTimeoutMs: 10_000,
    logger: { debug: say, info: say, warn: say, error: say },
    metrics: {},
    identity: 'test',
  });
  stopGateway = () => g.close(Date.now());
  assert.equal(g.address.port, port);

  // Exactly the kubeconfig the operator puts in the ConfigMap; only the two pod paths are moved under dir.
  kubeconfigText = agentKubeconfig(identity) ?? assert.fail('no kubeconfig');
  const agentTokenFile = join(dir, 'agent-token');
  await writeFile(agentTokenFile, await idp.token('agent-writer'));
  kubeconfig = join(dir, 'kubeconfig');
  await writeFile(kubeconfig, kubeconfigText.split(`${LISTENER_CA_DIR}/cluster.crt`).join(caFile).split(AGENT_TOKEN_FILE).join(agentTokenFile));
});

after(async () => {
  await stopGateway?.();
  await idp?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  await cp?.stop();
});

describe('kubectl with the injected kubeconfig against a self-signed kubernetes listener', () => {
  it('the CA file is written before the listener is up; it holds the CA certificate only', async () => {
    const pem = await readFile(caFile, 'utf8');
    assert.match(pem, /^-----BEGIN CERTIFICATE-----/);
    assert.ok(!pem.includes('PRIVATE KEY'));
    assert.equal((await stat(caFile)).mode & 0o777, 0o644);
    const kc = parse(kubeconfigText) as { clusters: { cluster: { server: string } }[] };
    assert.match(kc.clusters[0]?.cluster.server ?? '', /^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it('kubectl get pods works, as the scoped ServiceAccount', async () => {
    const r = await kubectl(['get', 'pods', '-o', 'name']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'pod/web-0');
    const whoami = await kubectl(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
    assert.equal(whoami.stdout, `system:serviceaccount:${ns}:agent-scope`, whoami.stderr);
  });

  it('a kubeconfig without the CA is refused by kubectl itself (the TLS check is real)', async () => {
    const kc = parse(await readFile(kubeconfig, 'utf8')) as { clusters: { cluster: Record<string, string> }[] };
    const c = kc.clusters[0]?.cluster ?? assert.fail('no cluster');
    delete c['certificate-authority'];
    const other = join(dir, 'kubeconfig-no-ca');
    await writeFile(other, stringify(kc));
    const p = await new Promise<{ code: number; stderr: string }>((resolve) => {
      const k = spawn('kubectl', ['--request-timeout=10s', 'get', 'pods'], { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env['PATH'] ?? '', HOME: dir, KUBECONFIG: other } });
      let stderr = '';
      k.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      k.on('close', (code) => resolve({ code: code ?? -1, stderr }));
    });
    assert.notEqual(p.code, 0);
    assert.match(p.stderr, /certificate|x509/i);
  });

  it('a bad agent token is a 401 from the gateway, not a pass-through', async () => {
    await writeFile(join(dir, 'agent-token-bad'), 'not-a-token');
    const text = (await readFile(kubeconfig, 'utf8')).split(join(dir, 'agent-token')).join(join(dir, 'agent-token-bad'));
    const bad = join(dir, 'kubeconfig-bad-token');
    await writeFile(bad, text);
    const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
      const k = spawn('kubectl', ['--request-timeout=10s', 'get', 'pods'], { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env['PATH'] ?? '', HOME: dir, KUBECONFIG: bad } });
      let stderr = '';
      k.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      k.on('close', (code) => resolve({ code: code ?? -1, stderr }));
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Unauthorized|must be logged in|CHAP_ERR/i);
  });
});
