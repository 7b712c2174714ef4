// The whole operator on a real API server for a kubernetes connection: the injected Pod's stored sidecar (started locally like a kubelet would) makes its loopback TLS listener, and the agent's kubectl, with only the injected KUBECONFIG and files, reaches the API server as the pod's ServiceAccount.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1Pod } from '@kubernetes/client-node';
import type { AgentIdentity } from '../../operator/api/types.ts';
import type { RunningOperator } from '../../operator/main.ts';
import { LABEL_IDENTITY, LISTENER_CA_DIR, SIDECAR_CONTAINER_NAME } from '../../operator/webhooks/pod-mutate/layout.ts';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { Kubelet, startPodSidecar, type StartedSidecar } from '../cluster/kubelet.ts';
import { registerWebhooks, staticWebhookTls, waitForInjection, type RegisteredWebhooks } from '../cluster/webhooks.ts';
import { freePorts } from '../env/ports.ts';
import { apply, identityPath, installCrds, startTestOperator, waitReady } from '../integration/operator-controllers.harness.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SIDECAR_BIN = join(root, 'sidecar', 'bin', 'chaperone-sidecar');
const IDENTITY = 'kube-agent';

let cp: ControlPlane;
let ns: string;
let opNs: string;
let op: RunningOperator | undefined;
let dir: string;
let sidecar: StartedSidecar | undefined;
let webhooks: RegisteredWebhooks | undefined;
let kubePort: number;
let adminPort: number;

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
  const { tls, caPem } = await staticWebhookTls();
  op = await startTestOperator(cp, opNs, {
    webhook: { host: '127.0.0.1', port: 0, tls, build: { image: 'registry.invalid/chaperone-sidecar:e2e' } },
    compileEnv: { adminHost: '127.0.0.1', approvalsBackend: 'none' },
  });
  assert.ok(op.webhookUrl);
  webhooks = await registerWebhooks(cp, { url: op.webhookUrl, caPem, operatorNamespace: opNs, namespace: ns });
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
  await waitForInjection(cp, agentPod('probe'));
});

after(async () => {
  await sidecar?.stop();
  await op?.stop();
  await webhooks?.unregister();
  if (dir) await rm(dir, { recursive: true, force: true });
  if (cp?.owned) await cp.stop();
});

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
    const kubelet = new Kubelet(cp, stored, join(dir, 'pod'));
    sidecar = await startPodSidecar(kubelet, sc, { bin: SIDECAR_BIN, dir, cwd: root, adminPort });
    const logs = (): Promise<string> => sidecar?.output() ?? Promise.resolve('');
    const caPem = await readFile(join(dir, 'pod', LISTENER_CA_DIR, 'cluster.crt'), 'utf8');
    assert.match(caPem, /^-----BEGIN CERTIFICATE-----/);
    assert.ok(!caPem.includes('PRIVATE KEY'));

    // The agent container: its own volumes (token, kubeconfig, the shared CA dir) and env, nothing else.
    const agent = stored.spec?.containers[0] ?? assert.fail('no agent');
    const am = await kubelet.materialize(agent);
    const kubeconfigPath = am.env['KUBECONFIG'] ?? assert.fail('no KUBECONFIG in the agent env');
    await kubelet.rewriteFile(kubeconfigPath, agent);
    const get = await run('kubectl', ['--request-timeout=30s', 'get', 'pods', '-o', 'name'], { KUBECONFIG: kubeconfigPath });
    assert.equal(get.code, 0, `${get.stderr}\nsidecar: ${(await logs()).slice(-1500)}`);
    assert.match(get.stdout, /pod\/agent-1/);
    const whoami = await run('kubectl', ['--request-timeout=30s', 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], { KUBECONFIG: kubeconfigPath });
    assert.equal(whoami.stdout, `system:serviceaccount:${ns}:default`, whoami.stderr);
    const denied = await run('kubectl', ['--request-timeout=30s', 'get', 'secrets'], { KUBECONFIG: kubeconfigPath });
    assert.notEqual(denied.code, 0, 'the scoped ServiceAccount may not list Secrets');
    assert.match(denied.stderr, /forbidden/i);
  });
});
