// The Kubernetes gateway's built-in guardrails with the real kubectl against the real test API server: the ServiceAccount may do anything in the namespace, the gateway still refuses.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import type { KubernetesConnectionConfig } from '../../sidecar/core/config-types.ts';
import { createTokenVerifier } from '../../sidecar/identity/verify-token.ts';
import { LocalApprovals } from '../../sidecar/protocols/postgres/approval-hold.ts';
import { startKubernetesGateway } from '../../sidecar/protocols/kubernetes/listener.ts';
import type { RecordEvent } from '../../sidecar/recording/event.ts';
import { AUDIENCE, startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';
import { createCa } from '../env/pki.ts';
import { installCrds } from './operator-controllers.harness.ts';

const AGENT_POD = 'agent-0';
const COMPILED = 'chaperone-agent';

let cp: ControlPlane;
let idp: TestIdp;
let dir: string;
let ns: string;
const events: RecordEvent[] = [];
const stops: (() => Promise<void>)[] = [];
/** kubeconfig of the default gateway, of one with guardrails.allowTokenRequests, and of one with guardrails.allowProxy. */
const kubeconfigs: { strict: string; tokens: string; proxy: string } = { strict: '', tokens: '', proxy: '' };
/** A pod and a Service without endpoints (no kubelet runs here: an allowed proxy request fails at the API server instead). */
const OTHER_POD = 'web-0';
const SERVICE = 'web';
/** A Service whose Endpoints point at an HTTP server of this test on a non-loopback address (the API server refuses to proxy to loopback). */
const ECHO = 'echo';
const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
const ECHO_JWT = `${b64({ alg: 'RS256', typ: 'JWT', kid: 'k1' })}.${b64({ iss: 'https://kubernetes.default.svc', sub: 'system:serviceaccount:prod:billing', exp: 1999999999 })}.${Buffer.alloc(64, 7).toString('base64url')}`;
const HOST_IP = Object.values(networkInterfaces()).flat().find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address;
const ECHO_POD = 'echo-0';
let echo: Server | undefined;
let echoPort = 0;

async function kubectl(args: string[], which: keyof typeof kubeconfigs = 'strict'): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn('kubectl', ['--kubeconfig', kubeconfigs[which], '-n', ns, '--request-timeout=30s', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    // kubectl port-forward keeps running once forwarding: never past the request timeout.
    const timer = setTimeout(() => p.kill('SIGKILL'), 40_000);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => (clearTimeout(timer), resolve({ code: code ?? -1, stdout, stderr })));
  });
}

async function admin(method: string, path: string, body?: unknown): Promise<void> {
  const r = await cp.request('admin', method, path, body);
  assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${r.text}`);
}

function refusedBy(r: { code: number; stderr: string }, guardrail: string): void {
  assert.notEqual(r.code, 0, 'kubectl succeeded');
  assert.match(r.stderr, new RegExp(`guardrail:${guardrail}`), r.stderr);
  assert.ok(events.some((e) => e.type === 'request' && e.decision === 'deny' && e.rule === `guardrail:${guardrail}`), `no deny recorded for guardrail:${guardrail}`);
}

async function startGateway(name: string, guardrails: KubernetesConnectionConfig['guardrails'], tls: { certFile: string; keyFile: string; caFile: string }, tokenFile: string): Promise<string> {
  const conn: KubernetesConnectionConfig = {
    name, protocol: 'kubernetes',
    listen: { host: '127.0.0.1', port: 0, tls: { certFile: tls.certFile, keyFile: tls.keyFile, required: true } },
    access: { allowedGroups: ['agents'], allowedSubjects: [], anyAuthenticated: false },
    readOnly: false,
    limits: { maxMessageBytes: 1 << 20, idleTimeoutSeconds: 0, statementTimeoutSeconds: undefined, connectTimeoutSeconds: 5, maxSessions: 50 },
    masking: {},
    upstream: { url: cp.url, tls: { caFile: cp.caFile, serverName: undefined, certFile: undefined, keyFile: undefined } },
    credentials: { tokenFile },
    // The policy allows everything, at the highest priority: the guardrails are not the policy's.
    policy: { http: { default: 'allow', rules: [{ id: 'allow-all', action: 'allow', priority: 1_000_000, match: { kubernetes: { verbs: ['*'] } } }] } },
    ...(guardrails !== undefined ? { guardrails } : {}),
  };
  const quiet = (): void => undefined;
  const g = await startKubernetesGateway(conn, {
    verifier: createTokenVerifier({ issuers: [{ issuer: idp.issuer, audiences: [AUDIENCE] }] }),
    recorder: { record: (e) => (events.push(e), Promise.resolve()) },
    approvals: new LocalApprovals(),
    approvalTimeoutMs: 5_000,
    logger: { debug: quiet, info: quiet, warn: quiet, error: quiet },
    metrics: {},
    identity: 'agent',
  }, {}, { name: AGENT_POD, namespace: ns });
  stops.push(() => g.close(Date.now()));
  const kubeconfig = join(dir, `kubeconfig-${name}`);
  await writeFile(kubeconfig, [
    'apiVersion: v1', 'kind: Config', 'current-context: sidecar',
    'clusters:', '- name: sidecar', '  cluster:', `    server: https://127.0.0.1:${g.address.port}`, `    certificate-authority: ${tls.caFile}`,
    'users:', '- name: agent', '  user:', `    token: ${await idp.token('agent-writer')}`,
    'contexts:', '- name: sidecar', '  context:', '    cluster: sidecar', '    user: agent', `    namespace: ${ns}`,
  ].join('\n') + '\n');
  return kubeconfig;
}

before(async () => {
  cp = await sharedControlPlane();
  await installCrds(cp);
  idp = await startOidcProvider();
  dir = await mkdtemp(join(tmpdir(), 'chap-kubeguard-'));
  ns = await cp.createNamespace('kubeguard');
  // Broad rights in the namespace (cluster-admin bound by a RoleBinding): whatever is refused, the gateway refused it.
  await admin('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'agent-scope' } });
  await admin('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'agent-scope-admin' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [{ kind: 'ServiceAccount', name: 'agent-scope', namespace: ns }],
  });
  const tr = await cp.request<{ status: { token: string } }>('admin', 'POST', `/api/v1/namespaces/${ns}/serviceaccounts/agent-scope/token`, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } });
  assert.equal(tr.status, 201, tr.text);
  const tokenFile = join(dir, 'sa-token');
  await writeFile(tokenFile, tr.body.status.token);
  await admin('POST', `/api/v1/namespaces/${ns}/pods`, { apiVersion: 'v1', kind: 'Pod', metadata: { name: AGENT_POD }, spec: { containers: [{ name: 'agent', image: 'registry.invalid/agent:1' }] } });
  await admin('POST', `/api/v1/namespaces/${ns}/pods`, { apiVersion: 'v1', kind: 'Pod', metadata: { name: OTHER_POD }, spec: { containers: [{ name: 'web', image: 'registry.invalid/web:1' }] } });
  // kubectl port-forward only asks for a running pod (no kubelet here: the status is written by hand).
  const st = await cp.request('admin', 'PATCH', `/api/v1/namespaces/${ns}/pods/${OTHER_POD}/status`, { status: { phase: 'Running' } }, { contentType: 'application/merge-patch+json' });
  assert.equal(st.status, 200, st.text);
  await admin('POST', `/api/v1/namespaces/${ns}/services`, { apiVersion: 'v1', kind: 'Service', metadata: { name: SERVICE }, spec: { ports: [{ name: 'http', port: 80 }, { name: 'https', port: 443 }] } });
  // No controller-manager here: empty Endpoints make the API server answer 503 "no endpoints available" to an allowed proxy request.
  await admin('POST', `/api/v1/namespaces/${ns}/endpoints`, { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: SERVICE }, subsets: [] });
  if (HOST_IP !== undefined) {
    const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(`<html><body>session: ${ECHO_JWT}</body></html>\n`));
    echo = server;
    await new Promise<void>((resolve) => server.listen(0, HOST_IP, resolve));
    const port = (server.address() as AddressInfo).port;
    await admin('POST', `/api/v1/namespaces/${ns}/services`, { apiVersion: 'v1', kind: 'Service', metadata: { name: ECHO }, spec: { ports: [{ name: 'http', port: 80 }] } });
    // The API server proxies only to an address some pod of the namespace has (its status written by hand: no kubelet).
    await admin('POST', `/api/v1/namespaces/${ns}/pods`, { apiVersion: 'v1', kind: 'Pod', metadata: { name: ECHO_POD }, spec: { containers: [{ name: 'echo', image: 'registry.invalid/echo:1' }] } });
    const est = await cp.request('admin', 'PATCH', `/api/v1/namespaces/${ns}/pods/${ECHO_POD}/status`, { status: { phase: 'Running', podIP: HOST_IP, podIPs: [{ ip: HOST_IP }] } }, { contentType: 'application/merge-patch+json' });
    assert.equal(est.status, 200, est.text);
    echoPort = port;
    await admin('POST', `/api/v1/namespaces/${ns}/endpoints`, {
      apiVersion: 'v1', kind: 'Endpoints', metadata: { name: ECHO },
      subsets: [{ addresses: [{ ip: HOST_IP, targetRef: { kind: 'Pod', name: ECHO_POD, namespace: ns } }], ports: [{ name: 'http', port }] }],
    });
  }
  await admin('POST', `/api/v1/namespaces/${ns}/configmaps`, {
    apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: COMPILED, labels: { 'app.kubernetes.io/managed-by': 'chaperone-operator' } }, data: { 'sidecar.yaml': '{}' },
  });
  await admin('POST', `/apis/chaperone.dev/v1alpha1/namespaces/${ns}/approvalrequests`, {
    apiVersion: 'chaperone.dev/v1alpha1', kind: 'ApprovalRequest', metadata: { name: 'held-delete' },
    spec: {
      identity: 'agent', connection: 'cluster', session: 's-1', requester: { subject: 'agent-writer' }, command: { protocol: 'kubernetes', text: 'DELETE /apis/apps/v1/namespaces/x/deployments/web', sha256: 'a'.repeat(64) },
      rule: { name: 'hold-deletes' }, approval: { approvers: { groups: ['leads'] }, required: 1, mode: 'any', scope: 'statement', timeout: '10m' }, expiresAt: new Date(Date.now() + 600_000).toISOString(),
    },
  });
  const ca = await createCa(dir, 'sidecar-listener-ca');
  const leaf = await ca.issue({ name: 'listener', commonName: '127.0.0.1', ips: ['127.0.0.1'], dnsNames: ['localhost'], usage: 'server' });
  const tls = { certFile: leaf.certFile, keyFile: leaf.keyFile, caFile: ca.certFile };
  kubeconfigs.strict = await startGateway('cluster', undefined, tls, tokenFile);
  kubeconfigs.tokens = await startGateway('cluster-admin-agent', { allowTokenRequests: true }, tls, tokenFile);
  kubeconfigs.proxy = await startGateway('cluster-proxy-agent', { allowProxy: true }, tls, tokenFile);
});

after(async () => {
  for (const s of stops) await s();
  await idp?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  await cp?.stop();
  echo?.close();
});

describe('the Kubernetes gateway\'s built-in guardrails, with kubectl', () => {
  it('kubectl create token is refused, naming the guardrail (the ServiceAccount could mint it)', async () => {
    refusedBy(await kubectl(['create', 'token', 'default']), 'token-request');
    refusedBy(await kubectl(['create', 'token', 'agent-scope', '--duration=10m']), 'token-request');
  });

  it('a legacy token Secret is refused (kubectl sends it as protobuf); an Opaque Secret is created', async () => {
    refusedBy(await kubectl(['create', 'secret', 'generic', 'legacy-token', '--type=kubernetes.io/service-account-token']), 'legacy-token-secret');
    const opaque = await kubectl(['create', 'secret', 'generic', 'plain', '--from-literal=k=synthesized-value']);
    assert.equal(opaque.code, 0, opaque.stderr);
  });

  it('with guardrails.allowTokenRequests, a token is minted, but never for the sidecar\'s own ServiceAccount', async () => {
    const ok = await kubectl(['create', 'token', 'default', '--duration=10m'], 'tokens');
    assert.equal(ok.code, 0, ok.stderr);
    // Minted, and still masked on its way back by the default jwt detector (an agent that needs it in clear also needs the detector off).
    assert.equal(ok.stdout.trim(), '[MASKED:jwt]');
    refusedBy(await kubectl(['create', 'token', 'agent-scope'], 'tokens'), 'token-request');
  });

  it('exec into, and delete of, the agent\'s own pod are refused before the API server', async () => {
    refusedBy(await kubectl(['exec', AGENT_POD, '--', 'true']), 'own-pod');
    refusedBy(await kubectl(['delete', 'pod', AGENT_POD, '--wait=false']), 'own-pod');
    const still = await cp.request('admin', 'GET', `/api/v1/namespaces/${ns}/pods/${AGENT_POD}`);
    assert.equal(still.status, 200);
    const get = await kubectl(['get', 'pod', AGENT_POD]);
    assert.equal(get.code, 0, get.stderr);
  });

  it('the compiled ConfigMap cannot be patched, relabelled or deleted; kubectl get configmaps works', async () => {
    refusedBy(await kubectl(['patch', 'configmap', COMPILED, '--type=merge', '-p', '{"data":{"sidecar.yaml":"{\\"connections\\":[]}"}}']), 'chaperone-objects');
    refusedBy(await kubectl(['label', 'configmap', COMPILED, 'app.kubernetes.io/managed-by-']), 'chaperone-objects');
    refusedBy(await kubectl(['delete', 'configmap', COMPILED]), 'chaperone-objects');
    const list = await kubectl(['get', 'configmaps']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(COMPILED));
    const cm = await cp.request<{ data: Record<string, string> }>('admin', 'GET', `/api/v1/namespaces/${ns}/configmaps/${COMPILED}`);
    assert.equal(cm.body.data['sidecar.yaml'], '{}');
    // kubectl sends built-in objects as protobuf: the guardrail reads the name from it.
    const other = await kubectl(['create', 'configmap', 'app-settings', '--from-literal=mode=fast']);
    assert.equal(other.code, 0, other.stderr);
  });

  it('kubectl get approvalrequests works; kubectl patch approvalrequest is refused', async () => {
    const list = await kubectl(['get', 'approvalrequests']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /held-delete/);
    refusedBy(await kubectl(['patch', 'approvalrequest', 'held-delete', '--type=merge', '-p', '{"spec":{"reviews":[{"user":"agent-writer","decision":"Approved"}]}}']), 'chaperone-objects');
    refusedBy(await kubectl(['patch', 'approvalrequest', 'held-delete', '--subresource=status', '--type=merge', '-p', '{"status":{"phase":"Approved"}}']), 'chaperone-objects');
    refusedBy(await kubectl(['delete', 'agentidentity', 'agent']), 'chaperone-objects');
  });

  it('the API server as a proxy (services/proxy, pods/proxy, every form and verb, legacy paths) is refused before it is reached', async () => {
    const paths = [
      `/api/v1/namespaces/${ns}/services/${SERVICE}:80/proxy/`,
      `/api/v1/namespaces/${ns}/services/${SERVICE}:http/proxy/metrics`,
      `/api/v1/namespaces/${ns}/services/https:${SERVICE}:443/proxy/`,
      `/api/v1/namespaces/${ns}/services/${SERVICE}/proxy`,
      `/api/v1/proxy/namespaces/${ns}/services/${SERVICE}/`,
      `/api/v1/namespaces/${ns}/pods/${OTHER_POD}/proxy/`,
      `/api/v1/namespaces/${ns}/pods/${OTHER_POD}:8080/proxy/healthz`,
      `/api/v1/proxy/namespaces/${ns}/pods/${OTHER_POD}:8080/`,
    ];
    for (const p of paths) {
      const r = await kubectl(['get', '--raw', p]);
      refusedBy(r, 'proxy-subresource');
      assert.match(r.stderr, /guardrails\.allowProxy/, r.stderr);
    }
    const body = join(dir, 'proxy-body.json');
    await writeFile(body, '{"q":1}');
    refusedBy(await kubectl(['create', '--raw', `/api/v1/namespaces/${ns}/services/${SERVICE}:80/proxy/api`, '-f', body]), 'proxy-subresource');
    refusedBy(await kubectl(['replace', '--raw', `/api/v1/namespaces/${ns}/pods/${OTHER_POD}/proxy/api`, '-f', body]), 'proxy-subresource');
    refusedBy(await kubectl(['delete', '--raw', `/api/v1/proxy/namespaces/${ns}/services/https:${SERVICE}:443/api`]), 'proxy-subresource');
  });

  it('kubectl port-forward to another pod is refused, naming the guardrail', async () => {
    refusedBy(await kubectl(['port-forward', `pod/${OTHER_POD}`, ':80']), 'proxy-subresource');
  });

  it('with guardrails.allowProxy, the request reaches the API server (no endpoints: 503 there), but never the agent\'s own pod', async () => {
    const answered = async (p: string, want: RegExp): Promise<void> => {
      const r = await kubectl(['get', '--raw', p], 'proxy');
      assert.notEqual(r.code, 0, r.stdout);
      assert.doesNotMatch(r.stderr, /guardrail:|CHAP_ERR/, r.stderr);
      assert.match(r.stderr, want, r.stderr);
    };
    await answered(`/api/v1/namespaces/${ns}/services/${SERVICE}:80/proxy/`, /no endpoints available for service/);
    await answered(`/api/v1/namespaces/${ns}/services/https:${SERVICE}:443/proxy/`, /no endpoints available for service/);
    // The legacy /api/v1/proxy/ paths are gone from the API server: a 404 from it, not a refusal.
    await answered(`/api/v1/proxy/namespaces/${ns}/services/${SERVICE}/`, /NotFound|could not find the requested resource/);
    refusedBy(await kubectl(['get', '--raw', `/api/v1/namespaces/${ns}/pods/${AGENT_POD}:15000/proxy/`], 'proxy'), 'own-pod');
    refusedBy(await kubectl(['get', '--raw', `/api/v1/proxy/namespaces/${ns}/pods/${AGENT_POD}/`], 'proxy'), 'own-pod');
  });

  it('with guardrails.allowProxy, a proxied answer (not a Kubernetes object) still goes through the text masker', { skip: HOST_IP === undefined ? 'no non-loopback IPv4 address for the API server to proxy to' : false }, async () => {
    const r = await kubectl(['get', '--raw', `/api/v1/namespaces/${ns}/services/${ECHO}:80/proxy/`], 'proxy');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '<html><body>session: [MASKED:jwt]</body></html>');
    assert.ok(!r.stdout.includes(ECHO_JWT.split('.')[1]!));
    const pod = await kubectl(['get', '--raw', `/api/v1/namespaces/${ns}/pods/${ECHO_POD}:${echoPort}/proxy/`], 'proxy');
    assert.equal(pod.code, 0, pod.stderr);
    assert.equal(pod.stdout.trim(), '<html><body>session: [MASKED:jwt]</body></html>');
    refusedBy(await kubectl(['get', '--raw', `/api/v1/namespaces/${ns}/services/${ECHO}:80/proxy/`]), 'proxy-subresource');
  });

  it('impersonation (--as) is refused', async () => {
    refusedBy(await kubectl(['get', 'pods', '--as=someone']), 'impersonation');
    refusedBy(await kubectl(['get', 'pods', '--as=system:serviceaccount:kube-system:default', '--as-group=system:masters']), 'impersonation');
  });
});
