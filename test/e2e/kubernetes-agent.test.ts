// The whole operator on a real API server for a kubernetes connection: the injected Pod's stored sidecar (started locally like a kubelet would) makes its loopback TLS listener, and the agent's kubectl, with only the injected KUBECONFIG and files, reaches the API server as the pod's ServiceAccount.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';
import type { AgentIdentity } from '../../operator/api/types.ts';
import { createCa, issueServing } from '../../operator/certs/pki.ts';
import { mutatingWebhookConfiguration, validatingWebhookConfiguration } from '../../operator/manifests/webhooks.ts';
import type { RunningOperator } from '../../operator/main.ts';
import { LABEL_IDENTITY, LISTENER_CA_DIR, SIDECAR_CONTAINER_NAME } from '../../operator/webhooks/pod-mutate/layout.ts';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { freePorts } from '../env/ports.ts';
import { eventually } from '../env/wait.ts';
import { apply, identityPath, installCrds, startTestOperator, waitReady } from '../integration/operator-controllers.harness.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SIDECAR_BIN = join(root, 'sidecar', 'bin', 'chaperone-sidecar');
const DAY_MS = 86_400_000;
const IDENTITY = 'kube-agent';

let cp: ControlPlane;
let ns: string;
let opNs: string;
let op: RunningOperator | undefined;
let dir: string;
let sidecar: ChildProcess | undefined;
let kubePort: number;
let adminPort: number;
const names = { mutating: '', validating: '' };

async function admin(method: string, path: string, body?: unknown): Promise<void> {
  const r = await cp.request('admin', method, path, body);
  assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${r.text}`);
}

function agentPod(name: string): V1Pod {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace: ns, labels: { [LABEL_IDENTITY]: IDENTITY } },
    spec: { serviceAccountName: 'default', containers: [{ name: 'agent', image: 'registry.invalid/agent:e2e', command: ['sleep', 'infinity'] }] },
  };
}

async function createPod(p: V1Pod, dryRun = false): Promise<{ status: number; body: V1Pod; text: string }> {
  return cp.request<V1Pod>('admin', 'POST', `/api/v1/namespaces/${ns}/pods${dryRun ? '?dryRun=All' : ''}`, p);
}

before(async () => {
  cp = await sharedControlPlane();
  await installCrds(cp);
  ns = await cp.createNamespace('kubeagent');
  opNs = await cp.createNamespace('chaperone-system');
  names.mutating = `chaperone-mutating-${ns}`;
  names.validating = `chaperone-validating-${ns}`;
  dir = await mkdtemp(join(tmpdir(), 'chaperone-kubeagent-'));
  [kubePort, adminPort] = (await freePorts(2)) as [number, number];
  // The pod's own ServiceAccount is the scoped one (a pod projects only its own tokens): it may list pods here, nothing else.
  await admin('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'pods-read' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }] });
  await admin('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'pods-read' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pods-read' }, subjects: [{ kind: 'ServiceAccount', name: 'default', namespace: ns }],
  });
  // The API server's CA for the sidecar's upstream TLS (a real cluster uses the default kubernetes.default.svc and the SA CA).
  await admin('POST', `/api/v1/namespaces/${ns}/configmaps`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'apiserver-ca' }, data: { 'ca.crt': cp.caPem } });
  const ca = await createCa({ commonName: 'chaperone-e2e-ca', validityMs: DAY_MS });
  const serving = await issueServing(ca, { commonName: 'chaperone-webhook', dnsNames: ['localhost'], ips: ['127.0.0.1'], validityMs: DAY_MS });
  op = await startTestOperator(cp, opNs, {
    webhook: { host: '127.0.0.1', port: 0, tls: { kind: 'static', material: { cert: serving.certPem, key: serving.keyPem, ca: ca.certPem } }, build: { image: 'registry.invalid/chaperone-sidecar:e2e' } },
    compileEnv: { adminHost: '127.0.0.1', approvalsBackend: 'none' },
  });
  assert.ok(op.webhookUrl);
  const o = {
    client: { url: op.webhookUrl.replace('0.0.0.0', '127.0.0.1') }, operatorNamespace: opNs, caBundle: Buffer.from(ca.certPem).toString('base64'), approvals: false,
    mutatingName: names.mutating, validatingName: names.validating,
    scope: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [ns] }] },
  };
  await apply(cp, `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${names.mutating}`, mutatingWebhookConfiguration(o));
  await apply(cp, `/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/${names.validating}`, validatingWebhookConfiguration(o));
  const identity: AgentIdentity = {
    apiVersion: 'chaperone.dev/v1alpha1', kind: 'AgentIdentity', metadata: { name: IDENTITY, namespace: ns },
    spec: {
      sidecar: { adminPort },
      connections: [{
        name: 'cluster', protocol: 'kubernetes', localPort: kubePort, upstream: { url: cp.url },
        tls: { caConfigMapRef: { name: 'apiserver-ca', key: 'ca.crt' } }, credential: { serviceAccountName: 'default' },
      }],
    },
  };
  await apply(cp, identityPath(ns, IDENTITY), identity);
  await waitReady(cp, ns, IDENTITY);
  let last = '';
  await eventually(async () => {
    const r = await createPod(agentPod('probe'), true);
    last = `${r.status} ${r.text.slice(0, 300)}`;
    return r.status === 201 && r.body.spec?.initContainers?.some((c) => c.name === SIDECAR_CONTAINER_NAME) ? true : undefined;
  }, { what: () => `the mutating webhook is active (last answer: ${last})` });
});

after(async () => {
  if (sidecar && sidecar.exitCode === null) {
    sidecar.kill('SIGTERM');
    await new Promise((r) => sidecar?.once('exit', r));
  }
  await op?.stop();
  for (const [kind, name] of [['mutatingwebhookconfigurations', names.mutating], ['validatingwebhookconfigurations', names.validating]] as const) {
    if (name) await cp.request('admin', 'DELETE', `/apis/admissionregistration.k8s.io/v1/${kind}/${name}`);
  }
  if (dir) await rm(dir, { recursive: true, force: true });
  if (cp?.owned) await cp.stop();
});

// ---------------------------------------------------------------------------------------------
// A kubelet stand-in: each volume a container mounts is written under `dir` at its mount path (an emptyDir is a shared empty directory).

async function tokenRequest(stored: V1Pod, audience: string | undefined): Promise<string> {
  const r = await cp.request<{ status: { token: string } }>('admin', 'POST', `/api/v1/namespaces/${ns}/serviceaccounts/${stored.spec?.serviceAccountName ?? 'default'}/token`, {
    apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
    spec: { expirationSeconds: 600, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: stored.metadata?.name ?? '', uid: stored.metadata?.uid ?? '' }, ...(audience !== undefined ? { audiences: [audience] } : {}) },
  });
  assert.equal(r.status, 201, r.text);
  return r.body.status.token;
}

async function configMapData(name: string): Promise<Record<string, string>> {
  const r = await cp.request<{ data?: Record<string, string> }>('admin', 'GET', `/api/v1/namespaces/${ns}/configmaps/${name}`);
  assert.equal(r.status, 200, r.text);
  return r.body.data ?? {};
}

async function volumeFiles(v: V1Volume, stored: V1Pod): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  assert.equal(v.secret, undefined, `volume ${v.name}: this identity mounts no Secret`);
  if (v.configMap) {
    const data = await configMapData(v.configMap.name ?? '');
    for (const it of v.configMap.items ?? []) out[it.path] = data[it.key] ?? assert.fail(`volume ${v.name}: no key ${it.key}`);
  }
  for (const s of v.projected?.sources ?? []) {
    if (s.serviceAccountToken) out[s.serviceAccountToken.path] = await tokenRequest(stored, s.serviceAccountToken.audience);
    for (const it of s.configMap?.items ?? []) out[it.path] = s.configMap?.name === 'kube-root-ca.crt' ? cp.caPem : (await configMapData(s.configMap?.name ?? ''))[it.key] ?? '';
    for (const it of s.downwardAPI?.items ?? []) out[it.path] = it.fieldRef?.fieldPath === 'metadata.namespace' ? ns : '';
  }
  return out;
}

/** Writes the container's volumes under dir and returns a function that rewrites its absolute paths to them. */
async function materialize(stored: V1Pod, c: V1Container): Promise<(s: string) => string> {
  const mapped: string[] = [];
  for (const m of c.volumeMounts ?? []) {
    const v = stored.spec?.volumes?.find((x) => x.name === m.name) ?? assert.fail(`volume ${m.name}`);
    await mkdir(join(dir, m.mountPath), { recursive: true });
    for (const [p, content] of Object.entries(await volumeFiles(v, stored))) await writeFile(join(dir, m.mountPath, p), content, { mode: 0o600 });
    mapped.push(m.mountPath);
  }
  return (s: string): string => mapped.reduce((acc, mp) => acc.split(`${mp}/`).join(`${join(dir, mp)}/`), s);
}

function envOf(c: V1Container, stored: V1Pod): Record<string, string> {
  const fields: Record<string, string> = { 'metadata.name': stored.metadata?.name ?? '', 'metadata.uid': stored.metadata?.uid ?? '', 'metadata.namespace': ns };
  return Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? fields[e.valueFrom?.fieldRef?.fieldPath ?? ''] ?? '']));
}

async function run(cmd: string, args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '', HOME: dir, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

// ---------------------------------------------------------------------------------------------

describe('operator e2e: an injected agent uses kubectl through its sidecar', () => {
  let stored: V1Pod;
  let logs = '';

  it('the stored Pod shares only the listener CA emptyDir between sidecar (writable) and agent (read-only)', async () => {
    const r = await createPod(agentPod('agent-1'));
    assert.equal(r.status, 201, r.text);
    stored = r.body;
    const sc = stored.spec?.initContainers?.find((c) => c.name === SIDECAR_CONTAINER_NAME) ?? assert.fail('no sidecar');
    const agent = stored.spec?.containers[0] ?? assert.fail('no agent');
    const shared = (agent.volumeMounts ?? []).filter((m) => (sc.volumeMounts ?? []).some((s) => s.name === m.name));
    assert.deepEqual(shared.map((m) => [m.name, m.mountPath, m.readOnly]), [['chaperone-listener-ca', LISTENER_CA_DIR, true]]);
    assert.deepEqual(stored.spec?.volumes?.find((v) => v.name === 'chaperone-listener-ca')?.emptyDir, {});
    assert.equal(sc.volumeMounts?.find((m) => m.name === 'chaperone-listener-ca')?.readOnly, undefined, 'writable in the sidecar');
    assert.equal(sc.startupProbe?.httpGet?.path, '/readyz', 'agents wait for the listeners');
  });

  it('the stored sidecar starts locally, writes the CA before it is ready; the agent kubectl with only KUBECONFIG works as the pod ServiceAccount', async () => {
    const sc = stored.spec?.initContainers?.find((c) => c.name === SIDECAR_CONTAINER_NAME) ?? assert.fail('no sidecar');
    const rewrite = await materialize(stored, sc);
    const args = (sc.args ?? []).map(rewrite);
    const configArg = args[args.indexOf('--config') + 1] ?? assert.fail('no --config');
    await writeFile(configArg, rewrite(await readFile(configArg, 'utf8')));
    sidecar = spawn(SIDECAR_BIN, args, { cwd: root, env: { PATH: process.env['PATH'] ?? '', ...envOf(sc, stored) }, stdio: ['ignore', 'pipe', 'pipe'] });
    sidecar.stdout?.on('data', (b: Buffer) => (logs += b.toString()));
    sidecar.stderr?.on('data', (b: Buffer) => (logs += b.toString()));
    await eventually(async () => {
      if (sidecar?.exitCode !== null) assert.fail(`sidecar exited ${sidecar?.exitCode}: ${logs.slice(-2000)}`);
      const r = await fetch(`http://127.0.0.1:${adminPort}/readyz`).catch(() => undefined);
      return r?.status === 200 ? true : undefined;
    }, { what: () => `sidecar ready; logs: ${logs.slice(-1500)}`, timeoutMs: 45_000 });
    const caPem = await readFile(join(dir, LISTENER_CA_DIR, 'cluster.crt'), 'utf8');
    assert.match(caPem, /^-----BEGIN CERTIFICATE-----/);
    assert.ok(!caPem.includes('PRIVATE KEY'));

    // The agent container: its own volumes (token, kubeconfig, the shared CA dir) and env, nothing else.
    const agent = stored.spec?.containers[0] ?? assert.fail('no agent');
    const agentRewrite = await materialize(stored, agent);
    const env = envOf(agent, stored);
    const kubeconfigPath = agentRewrite(env['KUBECONFIG'] ?? assert.fail('no KUBECONFIG in the agent env'));
    await writeFile(kubeconfigPath, agentRewrite(await readFile(kubeconfigPath, 'utf8')));
    const get = await run('kubectl', ['--request-timeout=30s', 'get', 'pods', '-o', 'name'], { KUBECONFIG: kubeconfigPath });
    assert.equal(get.code, 0, `${get.stderr}\nsidecar: ${logs.slice(-1500)}`);
    assert.match(get.stdout, /pod\/agent-1/);
    const whoami = await run('kubectl', ['--request-timeout=30s', 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], { KUBECONFIG: kubeconfigPath });
    assert.equal(whoami.stdout, `system:serviceaccount:${ns}:default`, whoami.stderr);
    const denied = await run('kubectl', ['--request-timeout=30s', 'get', 'secrets'], { KUBECONFIG: kubeconfigPath });
    assert.notEqual(denied.code, 0, 'the scoped ServiceAccount may not list Secrets');
    assert.match(denied.stderr, /forbidden/i);
  });
});
