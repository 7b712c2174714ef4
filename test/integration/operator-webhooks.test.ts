// The pod webhooks on the real control plane: our TLS server and certificates, configurations with caBundle patched by our code, injection, refusals, rotation, outage.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig, type V1Container, type V1Pod, type V1Volume } from '@kubernetes/client-node';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { eventually } from '../env/wait.ts';
import type { AgentIdentity } from '../../operator/api/types.ts';
import { readyIdentity } from '../../operator/webhooks/testdata/pods.ts';
import { ANNOTATION_INJECTED, LABEL_IDENTITY, SIDECAR_CONTAINER_NAME } from '../../operator/webhooks/pod-mutate/layout.ts';
import { startWebhookServer, type WebhookLog, type WebhookServer } from '../../operator/server/webhook-server.ts';
import { podRoutes, type IdentityLookup } from '../../operator/server/pod-routes.ts';
import { connectRoutes } from '../../operator/server/connect-routes.ts';
import { toolPath } from '../cluster/tools.ts';
import { mutatingWebhookConfiguration, validatingWebhookConfiguration, type WebhookManifestOptions } from '../../operator/manifests/webhooks.ts';
import { startSelfManagedTls, type SelfManagedTls } from '../../operator/certs/self-managed.ts';
import { createCa, certFacts, splitPemBundle, MS_PER_DAY } from '../../operator/certs/pki.ts';

const ADMISSION = '/apis/admissionregistration.k8s.io/v1';
// Validities chosen so that a clock jump to the CA's renewal leaves the serving certificate unexpired (so the rotation overlaps),
// and a jump to the serving renewal leaves the CA alone. The clock only moves rotation decisions; certificates carry real dates.
const CA_VALIDITY_MS = 290 * MS_PER_DAY;
const CA_RENEW_BEFORE_MS = 150 * MS_PER_DAY;
const SERVING_VALIDITY_MS = 150 * MS_PER_DAY;
const SERVING_RENEW_BEFORE_MS = 60 * MS_PER_DAY;
const SA = 'coding-agent';

let cp: ControlPlane;
let ns: string; // mutating + validating
let nsValidateOnly: string; // validating only: what the validating webhook does when injection did not happen
let opNs: string;
let server: WebhookServer;
let tls: SelfManagedTls;
let clockOffset = 0;
const suffix = randomBytes(4).toString('hex');
const mutatingName = `chaperone-mutating-${suffix}`;
const validatingName = `chaperone-validating-${suffix}`;
const observed: { webhook: string; outcome: string }[] = [];
const logs: { level: string; msg: string; obj: object }[] = [];
const log: WebhookLog = {
  info: (obj, msg) => logs.push({ level: 'info', msg, obj }),
  warn: (obj, msg) => logs.push({ level: 'warn', msg, obj }),
  error: (obj, msg) => logs.push({ level: 'error', msg, obj }),
};

const identities = new Map<string, AgentIdentity>();
const lookup: IdentityLookup = {
  identity: (namespace, name) => identities.get(`${namespace}/${name}`),
  identities: (namespace) => [...identities.values()].filter((i) => i.metadata.namespace === namespace),
};

function identityIn(namespace: string, name = 'coding-agent'): AgentIdentity {
  const id = readyIdentity({}, name);
  id.metadata.namespace = namespace;
  return id;
}

function unready(namespace: string): AgentIdentity {
  const id = identityIn(namespace, 'unready');
  id.status = { observedGeneration: 3, conditions: [{ type: 'Ready', status: 'False', observedGeneration: 3, lastTransitionTime: '2026-01-01T00:00:00Z', reason: 'SecretKeyMissing', message: 'Secret orders-db-agent has no key password' }] };
  return id;
}

function manifestOptions(scope: string[]): WebhookManifestOptions {
  return {
    client: { url: server.url },
    operatorNamespace: opNs,
    mutatingName,
    validatingName,
    approvals: false,
    scope: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: scope }] },
  };
}

interface PodShape {
  labels?: Record<string, string>;
  spec?: Partial<NonNullable<V1Pod['spec']>>;
  container?: Partial<V1Container>;
}

function pod(name: string, o: PodShape = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: o.labels ?? { [LABEL_IDENTITY]: 'coding-agent' } },
    spec: {
      serviceAccountName: SA,
      containers: [{ name: 'agent', image: 'example.com/agent:1', env: [{ name: 'LOG_LEVEL', value: 'debug' }], ...o.container }],
      ...o.spec,
    },
  };
}

async function create(namespace: string, p: V1Pod, dryRun = false): Promise<{ status: number; pod: V1Pod; message: string }> {
  const r = await cp.request<V1Pod & { message?: string }>('admin', 'POST', `/api/v1/namespaces/${namespace}/pods${dryRun ? '?dryRun=All' : ''}`, p);
  return { status: r.status, pod: r.body, message: r.body.message ?? r.text };
}

function injected(p: V1Pod): boolean {
  return p.metadata?.annotations?.[ANNOTATION_INJECTED] !== undefined;
}

/** Configuration changes reach the admission chain asynchronously: dry-run until a labelled pod comes back injected. */
async function webhookActive(what: string): Promise<void> {
  await eventually(
    async () => {
      const r = await create(ns, pod('probe'), true);
      return r.status === 201 && injected(r.pod) ? true : undefined;
    },
    { what, timeoutMs: 30_000 },
  );
}

/** The certificate the server presents to a new TLS connection. */
function presentedFingerprint(): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port: server.port, ca: tls.current().ca }, () => {
      const fp = new X509Certificate(s.getPeerX509Certificate()!.raw).fingerprint256;
      s.end();
      resolve(fp);
    });
    s.on('error', reject);
  });
}

function post(path: string, body: string | Buffer, contentType = 'application/json'): Promise<{ status: number; json: { message?: string; error?: string } }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${server.url}${path}`, { method: 'POST', ca: tls.current().ca, headers: { 'content-type': contentType } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { message?: string } }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function agents(p: V1Pod): V1Container[] {
  return [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].filter((c) => c.name !== SIDECAR_CONTAINER_NAME);
}

/** The connect route's pod read: the admin's GET (in the operator, its own client with `get pods`). */
async function getPod(namespace: string, name: string): Promise<V1Pod | undefined> {
  const r = await cp.request<V1Pod>('admin', 'GET', `/api/v1/namespaces/${namespace}/pods/${name}`);
  if (r.status === 404) return undefined;
  if (r.status !== 200) throw new Error(`GET pod ${namespace}/${name}: ${r.status} ${r.text.slice(0, 200)}`);
  return r.body;
}

const execFileAsync = promisify(execFile);

/** `kubectl exec` as the admin; no kubelet runs here, so every exec fails, either at admission or after it. */
async function kubectlExec(namespace: string, podName: string, container?: string): Promise<string> {
  const args = ['--kubeconfig', cp.kubeconfig('admin'), '-n', namespace, 'exec', podName, ...(container ? ['-c', container] : []), '--', 'cat', '/var/run/secrets/kubernetes.io/serviceaccount/token'];
  try {
    const r = await execFileAsync(toolPath('kubectl'), args, { timeout: 30_000 });
    return `exit 0: ${r.stdout}${r.stderr}`;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    return err.stderr || err.message;
  }
}

/** A CONNECT straight to the API (what kubectl attach sends, without waiting for the pod to run). */
async function connect(namespace: string, podName: string, sub: 'exec' | 'attach', container: string): Promise<{ status: number; message: string }> {
  const q = sub === 'exec' ? `container=${container}&command=true&stdout=true` : `container=${container}&stdout=true`;
  const r = await cp.request<{ message?: string }>('admin', 'POST', `/api/v1/namespaces/${namespace}/pods/${podName}/${sub}?${q}`);
  return { status: r.status, message: r.body?.message ?? r.text };
}

function volume(p: V1Pod, name: string): V1Volume | undefined {
  return p.spec?.volumes?.find((v) => v.name === name);
}

before(async () => {
  cp = await sharedControlPlane();
  ns = await cp.createNamespace('wh');
  nsValidateOnly = await cp.createNamespace('wh-val');
  opNs = await cp.createNamespace('wh-op');
  for (const n of [ns, nsValidateOnly]) {
    const r = await cp.request('admin', 'POST', `/api/v1/namespaces/${n}/serviceaccounts`, { metadata: { name: SA } });
    assert.equal(r.status, 201, r.text);
    identities.set(`${n}/coding-agent`, identityIn(n));
    identities.set(`${n}/unready`, unready(n));
  }
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfig('admin'));
  // Certificates first (the configurations do not exist yet: the first patch is skipped with a warning), then the server, then the configurations.
  tls = await startSelfManagedTls({
    kubeConfig: kc,
    namespace: opNs,
    service: 'chaperone-webhook',
    ips: ['127.0.0.1'],
    targets: { mutating: [mutatingName], validating: [validatingName] },
    log,
    checkIntervalMs: 3_600_000,
    caValidityMs: CA_VALIDITY_MS,
    caRenewBeforeMs: CA_RENEW_BEFORE_MS,
    servingValidityMs: SERVING_VALIDITY_MS,
    servingRenewBeforeMs: SERVING_RENEW_BEFORE_MS,
    now: () => Date.now() + clockOffset,
    onChange: (t) => server?.setTls(t),
  });
  server = await startWebhookServer({ host: '127.0.0.1', port: 0, tls: tls.current(), routes: [...podRoutes({ lookup, operatorNamespace: opNs }), ...connectRoutes({ operatorNamespace: opNs, getPod })], log, observe: (webhook, outcome) => observed.push({ webhook, outcome }) });
  const m = mutatingWebhookConfiguration(manifestOptions([ns]));
  const v = validatingWebhookConfiguration(manifestOptions([ns, nsValidateOnly]));
  assert.equal((await cp.request('admin', 'POST', `${ADMISSION}/mutatingwebhookconfigurations`, m)).status, 201);
  assert.equal((await cp.request('admin', 'POST', `${ADMISSION}/validatingwebhookconfigurations`, v)).status, 201);
  await tls.check();
  await webhookActive('the pod webhooks to take effect');
});

after(async () => {
  await cp.request('admin', 'DELETE', `${ADMISSION}/mutatingwebhookconfigurations/${mutatingName}`);
  await cp.request('admin', 'DELETE', `${ADMISSION}/validatingwebhookconfigurations/${validatingName}`);
  tls.close();
  await server.close();
});

describe('webhook TLS (self-managed)', () => {
  it('keeps the CA and serving pair in a Secret in the operator namespace', async () => {
    const r = await cp.request<{ type: string; data: Record<string, string> }>('admin', 'GET', `/api/v1/namespaces/${opNs}/secrets/chaperone-webhook-tls`);
    assert.equal(r.status, 200);
    assert.equal(r.body.type, 'kubernetes.io/tls');
    assert.deepEqual(Object.keys(r.body.data).sort(), ['ca-bundle.crt', 'ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    const facts = certFacts(Buffer.from(r.body.data['tls.crt']!, 'base64').toString());
    assert.deepEqual(facts.dnsNames, [`chaperone-webhook.${opNs}.svc`, `chaperone-webhook.${opNs}.svc.cluster.local`]);
    assert.deepEqual(facts.ips, ['127.0.0.1']);
  });

  it('patched caBundle into both configurations', async () => {
    for (const kind of ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations']) {
      const name = kind.startsWith('mutating') ? mutatingName : validatingName;
      const r = await cp.request<{ webhooks: { clientConfig: { caBundle?: string } }[] }>('admin', 'GET', `${ADMISSION}/${kind}/${name}`);
      for (const w of r.body.webhooks) assert.equal(w.clientConfig.caBundle, tls.caBundle());
    }
  });

  it('a second replica starting on the same Secret takes the stored material (create-if-absent)', async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfig('admin'));
    const other = await startSelfManagedTls({
      kubeConfig: kc,
      namespace: opNs,
      service: 'chaperone-webhook',
      ips: ['127.0.0.1'],
      targets: {},
      log,
      checkIntervalMs: 3_600_000,
      caValidityMs: CA_VALIDITY_MS,
      caRenewBeforeMs: CA_RENEW_BEFORE_MS,
      servingValidityMs: SERVING_VALIDITY_MS,
      servingRenewBeforeMs: SERVING_RENEW_BEFORE_MS,
    });
    other.close();
    assert.equal(other.current().cert, tls.current().cert);
    assert.equal(other.caBundle(), tls.caBundle());
  });
});

describe('webhook TLS: replicas racing on a fresh Secret', () => {
  it('two replicas starting at once end with the same material (create-if-absent, 409 → the winner\'s)', async () => {
    const start = async (): Promise<SelfManagedTls> => {
      const kc = new KubeConfig();
      kc.loadFromFile(cp.kubeconfig('admin'));
      return startSelfManagedTls({ kubeConfig: kc, namespace: opNs, secretName: 'race-tls', ips: ['127.0.0.1'], targets: {}, log, checkIntervalMs: 3_600_000 });
    };
    const [a, b] = await Promise.all([start(), start()]);
    a.close();
    b.close();
    assert.equal(a.current().cert, b.current().cert);
    assert.equal(a.caBundle(), b.caBundle());
  });
});

describe('mutating webhook: a labelled pod', () => {
  let stored: V1Pod;

  before(async () => {
    const r = await create(ns, pod('agent-1'));
    assert.equal(r.status, 201, r.message);
    stored = r.pod;
  });

  it('is stored with the native sidecar first among init containers', () => {
    const first = stored.spec?.initContainers?.[0];
    assert.equal(first?.name, SIDECAR_CONTAINER_NAME);
    assert.equal(first?.restartPolicy, 'Always');
    assert.ok(injected(stored), 'status annotation present');
  });

  it('agent containers mount no Secret and read none through env', () => {
    const secretVolumes = new Set((stored.spec?.volumes ?? []).filter((v) => v.secret || v.projected?.sources?.some((s) => s.secret)).map((v) => v.name));
    assert.ok(secretVolumes.size > 0, 'the sidecar has its Secret volumes');
    for (const c of agents(stored)) {
      for (const m of c.volumeMounts ?? []) assert.ok(!secretVolumes.has(m.name), `${c.name} mounts Secret volume ${m.name}`);
      for (const e of c.env ?? []) assert.equal(e.valueFrom?.secretKeyRef, undefined, `${c.name} env ${e.name}`);
      assert.ok(!(c.envFrom ?? []).some((f) => f.secretRef), `${c.name} envFrom secretRef`);
    }
  });

  it('agent containers hold no API token; the sidecar does', () => {
    assert.equal(stored.spec?.automountServiceAccountToken, false);
    const apiTokenVolumes = new Set((stored.spec?.volumes ?? []).filter((v) => v.projected?.sources?.some((s) => s.serviceAccountToken && !s.serviceAccountToken.audience)).map((v) => v.name));
    assert.ok(!(stored.spec?.volumes ?? []).some((v) => v.name.startsWith('kube-api-access-')), "the ServiceAccount plugin's kube-api-access volume is gone");
    for (const c of agents(stored)) {
      for (const m of c.volumeMounts ?? []) {
        assert.ok(!apiTokenVolumes.has(m.name), `${c.name} mounts API token volume ${m.name}`);
        assert.ok(!m.mountPath.startsWith('/var/run/secrets/kubernetes.io/serviceaccount'), `${c.name} mounts ${m.mountPath}`);
      }
    }
    const sidecar = stored.spec?.initContainers?.[0];
    assert.ok(sidecar?.volumeMounts?.some((m) => apiTokenVolumes.has(m.name) && m.mountPath === '/var/run/secrets/kubernetes.io/serviceaccount'));
  });

  it('agent containers get the chaperone token projection (audience chaperone, 600 s)', () => {
    const v = volume(stored, 'chaperone-token');
    const src = v?.projected?.sources?.[0]?.serviceAccountToken;
    assert.equal(src?.audience, 'chaperone');
    assert.equal(src?.expirationSeconds, 600);
    for (const c of agents(stored)) assert.ok(c.volumeMounts?.some((m) => m.name === 'chaperone-token' && m.mountPath === '/var/run/secrets/chaperone'), c.name);
  });

  it('agent containers get the connection env, with no password', () => {
    const env = new Map((agents(stored)[0]?.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(env.get('PGHOST'), '127.0.0.1');
    assert.equal(env.get('PGPORT'), '5432');
    assert.equal(env.get('CHAPERONE_TOKEN_FILE'), '/var/run/secrets/chaperone/token');
    assert.equal(env.get('GITHUB_BASE_URL'), 'http://127.0.0.1:8080');
    assert.equal(env.get('DATABASE_URL'), 'postgresql://coding-agent@127.0.0.1:5432/orders?sslmode=disable');
    assert.equal(env.get('LOG_LEVEL'), 'debug', "the pod's own env stays");
  });

  it('re-admitting the stored pod changes nothing (idempotent: empty patch)', async () => {
    const again = structuredClone(stored);
    again.metadata = { name: 'agent-1-again', labels: stored.metadata?.labels, annotations: stored.metadata?.annotations };
    delete again.status;
    observed.length = 0;
    const r = await create(ns, again);
    assert.equal(r.status, 201, r.message);
    assert.deepEqual(observed.filter((o) => o.webhook === 'mutate-pods').map((o) => o.outcome), ['unchanged']);
    assert.deepEqual(r.pod.spec?.initContainers, stored.spec?.initContainers);
    assert.deepEqual(r.pod.spec?.containers, stored.spec?.containers);
    assert.deepEqual(r.pod.spec?.volumes, stored.spec?.volumes);
  });

  it('an ephemeral container that mounts the sidecar\'s Secret volume is refused (pods/ephemeralcontainers)', async () => {
    const secretVolume = stored.spec?.volumes?.find((v) => v.secret?.secretName === 'orders-db-agent');
    assert.ok(secretVolume);
    const path = `/api/v1/namespaces/${ns}/pods/agent-1/ephemeralcontainers`;
    const debug = { name: 'debug', image: 'busybox', volumeMounts: [{ name: secretVolume.name, mountPath: '/steal' }] };
    const r = await cp.request<{ message?: string }>('admin', 'PATCH', path, { spec: { ephemeralContainers: [debug] } }, { contentType: 'application/strategic-merge-patch+json' });
    assert.equal(r.status, 403, r.text);
    assert.match(r.body.message ?? '', /rule guarded-secret-volume: ephemeral container debug mounts volume chaperone-s-\w+ holding Secret orders-db-agent/);
    const harmless = await cp.request('admin', 'PATCH', path, { spec: { ephemeralContainers: [{ name: 'debug2', image: 'busybox' }] } }, { contentType: 'application/strategic-merge-patch+json' });
    assert.equal(harmless.status, 200, harmless.text);
  });

  it('the validating webhook sees the patched pod and admits it (the sidecar is exempt from the Secret rules)', async () => {
    observed.length = 0;
    const r = await create(ns, pod('agent-2'));
    assert.equal(r.status, 201, r.message);
    assert.deepEqual(observed.map((o) => `${o.webhook}:${o.outcome}`), ['mutate-pods:injected', 'validate-pods:allowed']);
  });
});

describe('exec and attach (CONNECT pods/exec, pods/attach)', () => {
  // agent-1 exists (created above) and stays Pending: the API server refuses an exec that passed admission with "does not have a host assigned".
  const refused = /admission webhook "pods-connect.validate.chaperone.dev" denied the request: chaperone: rule protected-container: exec into container chaperone-sidecar of pod .*\/agent-1 is refused/;

  it('kubectl exec into the sidecar is refused at admission, naming the rule', async () => {
    await eventually(async () => (refused.test(await kubectlExec(ns, 'agent-1', SIDECAR_CONTAINER_NAME)) ? true : undefined), { what: 'the exec webhook to refuse the sidecar', timeoutMs: 30_000 });
    observed.length = 0;
    const out = await kubectlExec(ns, 'agent-1', SIDECAR_CONTAINER_NAME);
    assert.match(out, refused);
    // kubectl tries WebSocket first and falls back to SPDY: one admission each.
    assert.ok(observed.length >= 1 && observed.every((o) => `${o.webhook}:${o.outcome}` === 'validate-pod-connect:protected-container'), JSON.stringify(observed));
  });

  it('kubectl exec into the agent container, named or by default, gets past admission (the webhook is not even called) and fails later', async () => {
    for (const c of ['agent', undefined]) {
      observed.length = 0;
      const out = await kubectlExec(ns, 'agent-1', c);
      // kubectl names the default container itself ("Defaulted container "agent" out of: …"): init containers are never the default.
      assert.doesNotMatch(out, /admission webhook|protected-container/, out);
      assert.match(out, /does not have a host assigned/, out);
      assert.deepEqual(observed, [], 'the matchCondition keeps other containers away from the webhook');
    }
  });

  it('attach into the sidecar is refused; attach into the agent passes admission', async () => {
    const r = await connect(ns, 'agent-1', 'attach', SIDECAR_CONTAINER_NAME);
    assert.equal(r.status, 403, r.message);
    assert.match(r.message, /rule protected-container: attach into container chaperone-sidecar/);
    const agent = await connect(ns, 'agent-1', 'attach', 'agent');
    assert.equal(agent.status, 400, agent.message);
    assert.match(agent.message, /does not have a host assigned/);
  });

  it('an unlabelled pod with a container named chaperone-sidecar is not Chaperone\'s: the webhook reads it and allows', async () => {
    const p = pod('lookalike', { labels: { app: 'lookalike' } });
    p.spec!.containers.push({ name: SIDECAR_CONTAINER_NAME, image: 'example.com/other:1' });
    assert.equal((await create(ns, p)).status, 201);
    observed.length = 0;
    const r = await connect(ns, 'lookalike', 'exec', SIDECAR_CONTAINER_NAME);
    assert.equal(r.status, 400, r.message);
    assert.match(r.message, /does not have a host assigned/);
    assert.deepEqual(observed.map((o) => `${o.webhook}:${o.outcome}`), ['validate-pod-connect:not-chaperone']);
  });
});

describe('pods the webhooks leave alone or refuse', () => {
  it('an unlabelled pod is stored untouched and never reaches the webhook', async () => {
    observed.length = 0;
    const r = await create(ns, pod('plain', { labels: { app: 'plain' } }));
    assert.equal(r.status, 201, r.message);
    assert.equal(injected(r.pod), false);
    assert.deepEqual(r.pod.spec?.initContainers, undefined);
    assert.deepEqual(r.pod.spec?.containers?.map((c) => c.name), ['agent']);
    assert.deepEqual(observed, []);
  });

  it('a pod naming a missing identity is refused, saying which and why', async () => {
    const r = await create(ns, pod('ghost', { labels: { [LABEL_IDENTITY]: 'ghost' } }));
    assert.equal(r.status, 403);
    assert.match(r.message, new RegExp(`AgentIdentity ${ns}/ghost \\(named by the pod label chaperone.dev/identity\\) does not exist`));
  });

  it('a pod naming a not-Ready identity is refused with its condition', async () => {
    const r = await create(ns, pod('unready', { labels: { [LABEL_IDENTITY]: 'unready' } }));
    assert.equal(r.status, 403);
    assert.match(r.message, /is not Ready: Ready is False \(SecretKeyMissing: Secret orders-db-agent has no key password\)/);
  });

  const refusals: { name: string; namespace: () => string; pod: V1Pod; message: RegExp }[] = [
    {
      name: 'a guarded Secret mounted into the agent',
      namespace: () => ns,
      pod: pod('mounts-secret', { spec: { volumes: [{ name: 'creds', secret: { secretName: 'orders-db-agent' } }] }, container: { volumeMounts: [{ name: 'creds', mountPath: '/creds' }] } }),
      message: /rule guarded-secret-volume: container agent mounts volume creds holding Secret orders-db-agent.*remove the mount/,
    },
    {
      name: 'a guarded Secret read through secretKeyRef',
      namespace: () => ns,
      pod: pod('env-secret', { container: { env: [{ name: 'PGPASSWORD', valueFrom: { secretKeyRef: { name: 'orders-db-agent', key: 'password' } } }] } }),
      message: /rule guarded-secret-env: container agent reads Secret orders-db-agent through env PGPASSWORD \(secretKeyRef\).*remove the reference/,
    },
    { name: 'shareProcessNamespace', namespace: () => ns, pod: pod('share-pid', { spec: { shareProcessNamespace: true } }), message: /rule share-process-namespace: .*remove it/ },
    { name: 'hostPID', namespace: () => ns, pod: pod('host-pid', { spec: { hostPID: true } }), message: /rule host-pid: .*remove it/ },
    { name: 'hostNetwork (the mutating webhook refuses first)', namespace: () => ns, pod: pod('host-net', { spec: { hostNetwork: true } }), message: /pod uses hostNetwork.*remove hostNetwork/ },
    { name: 'hostNetwork where only the validating webhook runs', namespace: () => nsValidateOnly, pod: pod('host-net', { spec: { hostNetwork: true } }), message: /rule host-network: the pod sets hostNetwork/ },
    { name: 'a labelled pod without the sidecar', namespace: () => nsValidateOnly, pod: pod('no-sidecar'), message: /rule missing-sidecar: the pod is labelled chaperone.dev\/identity but has no chaperone-sidecar container.*check that the chaperone operator is up/ },
  ];
  for (const c of refusals) {
    it(`refuses ${c.name}, naming the rule, the container and the fix`, async () => {
      const r = await create(c.namespace(), c.pod);
      assert.equal(r.status, 403, r.message);
      assert.match(r.message, c.message);
    });
  }

  it('in the validate-only namespace a guarded Secret mount in an unlabelled pod is not our business (objectSelector)', async () => {
    const r = await create(nsValidateOnly, pod('unlabelled-secret', { labels: {}, spec: { volumes: [{ name: 'creds', secret: { secretName: 'orders-db-agent' } }] }, container: { volumeMounts: [{ name: 'creds', mountPath: '/creds' }] } }));
    assert.equal(r.status, 201, r.message);
  });
});

describe('the HTTP surface', () => {
  it('answers 400 to a body that is not JSON', async () => {
    const r = await post('/mutate/pods', 'not json{');
    assert.equal(r.status, 400);
    assert.match(r.json.message ?? '', /not valid JSON/);
  });

  it('answers 400 to JSON that is not an AdmissionReview', async () => {
    const r = await post('/mutate/pods', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'x' } }));
    assert.equal(r.status, 400);
    assert.match(r.json.message ?? '', /not a usable AdmissionReview: request.operation/);
    const v1beta1 = await post('/validate/pods', JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: {} }));
    assert.equal(v1beta1.status, 400);
    assert.match(v1beta1.json.message ?? '', /speaks admission.k8s.io\/v1 only/);
  });

  it('answers 413 to a body over the limit and 404 on an unknown path', async () => {
    const big = await post('/mutate/pods', Buffer.alloc(4 * 1024 * 1024, 0x20));
    assert.equal(big.status, 413);
    assert.match(big.json.message ?? '', /larger than the webhook's limit/);
    const lost = await post('/mutate/nothing', '{}');
    assert.equal(lost.status, 404);
    assert.match(lost.json.message ?? '', /answers POST on \/mutate\/pods, \/validate\/pods/);
  });
});

describe('certificate drift and rotation', () => {
  it('re-patches a caBundle that drifted', async () => {
    const foreign = await createCa({ commonName: 'someone-else', validityMs: MS_PER_DAY });
    const path = `${ADMISSION}/mutatingwebhookconfigurations/${mutatingName}`;
    const p = await cp.request('admin', 'PATCH', path, [{ op: 'replace', path: '/webhooks/0/clientConfig/caBundle', value: Buffer.from(foreign.certPem).toString('base64') }], { contentType: 'application/json-patch+json' });
    assert.equal(p.status, 200, p.text);
    await tls.check();
    const r = await cp.request<{ webhooks: { clientConfig: { caBundle?: string } }[] }>('admin', 'GET', path);
    assert.equal(r.body.webhooks[0]?.clientConfig.caBundle, tls.caBundle());
    await webhookActive('admissions after the caBundle was restored');
  });

  it('renews the serving certificate before expiry and hot-reloads it without a restart', async () => {
    const before = await presentedFingerprint();
    const reloads = server.tlsReloads;
    const port = server.port;
    clockOffset = SERVING_VALIDITY_MS - SERVING_RENEW_BEFORE_MS + MS_PER_DAY;
    const changed = await tls.check();
    clockOffset = 0;
    assert.equal(changed, true);
    assert.equal(server.tlsReloads, reloads + 1);
    assert.equal(server.port, port);
    const after = await presentedFingerprint();
    assert.notEqual(after, before);
    assert.equal(after, new X509Certificate(tls.current().cert).fingerprint256);
    const r = await create(ns, pod('after-renewal'));
    assert.equal(r.status, 201, r.message);
    assert.ok(injected(r.pod));
  });

  it('rotates the CA with overlap: the old CA stays in the bundle and admissions never stop', async () => {
    const oldCa = splitPemBundle(tls.current().ca ?? '')[0];
    const servingBefore = tls.current().cert;
    clockOffset = CA_VALIDITY_MS - CA_RENEW_BEFORE_MS + MS_PER_DAY;
    await tls.check();
    clockOffset = 0;
    const bundle = splitPemBundle(tls.current().ca ?? '');
    assert.equal(bundle.length, 2);
    assert.equal(bundle[1], oldCa, 'the old CA is kept after the new one');
    assert.equal(tls.current().cert, servingBefore, 'the serving certificate waits for the new CA to reach the caBundle');
    assert.equal((await create(ns, pod('during-ca-overlap'))).status, 201);
    // Next renewal signs with the new CA; the API server, already trusting the bundle, keeps admitting.
    clockOffset = SERVING_VALIDITY_MS - SERVING_RENEW_BEFORE_MS + MS_PER_DAY;
    assert.equal(await tls.check(), true);
    clockOffset = 0;
    assert.ok(new X509Certificate(tls.current().cert).checkIssued(new X509Certificate(bundle[0]!)));
    await eventually(async () => ((await create(ns, pod(`after-ca-${randomBytes(2).toString('hex')}`))).status === 201 ? true : undefined), { what: 'admission with the new CA', timeoutMs: 20_000 });
  });
});

describe('with the webhook server stopped', () => {
  it('refuses labelled pods (failurePolicy Fail) and admits unlabelled ones', async () => {
    await server.close();
    assert.equal(server.listening, false);
    const labelled = await create(ns, pod('while-down'));
    assert.equal(labelled.status, 500, labelled.message);
    assert.match(labelled.message, /failed calling webhook "pods.mutate.chaperone.dev"/);
    const plain = await create(ns, pod('plain-while-down', { labels: {} }));
    assert.equal(plain.status, 201, plain.message);
  });

  it('refuses exec into the sidecar (fail closed) but never blocks exec into other containers', async () => {
    const sidecar = await connect(ns, 'agent-1', 'exec', SIDECAR_CONTAINER_NAME);
    assert.equal(sidecar.status, 500, sidecar.message);
    assert.match(sidecar.message, /failed calling webhook "pods-connect.validate.chaperone.dev"/);
    const out = await kubectlExec(ns, 'agent-1', 'agent');
    assert.doesNotMatch(out, /failed calling webhook/, out);
    assert.match(out, /does not have a host assigned/, out);
  });
});
