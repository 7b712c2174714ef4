// The whole operator on a real API server: its webhooks inject a labelled Pod, the stored Pod's sidecar (started locally like a kubelet would) serves a real psql session; stopped, labelled pods are refused.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1Pod } from '@kubernetes/client-node';
import type { RunningOperator } from '../../operator/main.ts';
import { AGENT_TOKEN_AUDIENCE, LABEL_IDENTITY, SIDECAR_CONTAINER_NAME } from '../../operator/webhooks/pod-mutate/layout.ts';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { Kubelet, startPodSidecar, type StartedSidecar } from '../cluster/kubelet.ts';
import { registerWebhooks, staticWebhookTls, waitForInjection, type RegisteredWebhooks } from '../cluster/webhooks.ts';
import { freePorts } from '../env/ports.ts';
import { startPostgres, type Postgres } from '../env/postgres.ts';
import { apply, identityPath, installCrds, pgIdentity, secret, secretPath, startTestOperator, waitReady } from '../integration/operator-controllers.harness.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SIDECAR_BIN = join(root, 'sidecar', 'bin', 'chaperone-sidecar');
const PASSWORD = `synth-${randomBytes(12).toString('hex')}`;
const DB_USER = 'chap_e2e_agent';

let cp: ControlPlane;
let pgp: Postgres;
let ns: string;
let opNs: string;
let op: RunningOperator | undefined;
let dir: string;
let sidecar: StartedSidecar | undefined;
let webhooks: RegisteredWebhooks | undefined;
let localPort: number;
let adminPort: number;

function pod(name: string, labelled: boolean, extra: Partial<V1Pod['spec']> = {}): V1Pod {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace: ns, ...(labelled ? { labels: { [LABEL_IDENTITY]: 'e2e-agent' } } : {}) },
    spec: { serviceAccountName: 'default', containers: [{ name: 'agent', image: 'registry.invalid/agent:e2e', command: ['sleep', 'infinity'] }], ...extra },
  };
}

async function createPod(p: V1Pod, dryRun = false): Promise<{ status: number; body: V1Pod & { message?: string }; text: string }> {
  return cp.request<V1Pod & { message?: string }>('admin', 'POST', `/api/v1/namespaces/${ns}/pods${dryRun ? '?dryRun=All' : ''}`, p);
}

before(async () => {
  cp = await sharedControlPlane();
  await installCrds(cp);
  pgp = await startPostgres({ auth: 'scram-sha-256' });
  await pgp.createRole(DB_USER, PASSWORD);
  await pgp.createDatabase('app');
  ns = await cp.createNamespace('ope2e');
  opNs = await cp.createNamespace('chaperone-system');
  dir = await mkdtemp(join(tmpdir(), 'chaperone-ope2e-'));
  [localPort, adminPort] = (await freePorts(2)) as [number, number];
  const { tls, caPem } = await staticWebhookTls();
  op = await startTestOperator(cp, opNs, {
    webhook: { host: '127.0.0.1', port: 0, tls, build: { image: 'registry.invalid/chaperone-sidecar:e2e' } },
    compileEnv: { adminHost: '127.0.0.1', approvalsBackend: 'none' },
  });
  assert.ok(op.webhookUrl);
  webhooks = await registerWebhooks(cp, { url: op.webhookUrl, caPem, operatorNamespace: opNs, namespace: ns });
  await apply(cp, secretPath(ns, 'e2e-agent-db'), secret(ns, 'e2e-agent-db', { username: DB_USER, password: PASSWORD }));
  const id = pgIdentity(ns, 'e2e-agent', { host: '127.0.0.1', port: pgp.port, localPort, database: 'app' });
  (id.spec as { sidecar?: unknown }).sidecar = { adminPort };
  await apply(cp, identityPath(ns, 'e2e-agent'), id);
  await waitReady(cp, ns, 'e2e-agent');
  await waitForInjection(cp, pod('probe', true));
});

after(async () => {
  await sidecar?.stop();
  await op?.stop();
  await webhooks?.unregister();
  if (dir) await rm(dir, { recursive: true, force: true });
  await pgp?.stop();
  if (cp?.owned) await cp.stop();
});

// ---------------------------------------------------------------------------------------------

describe('operator e2e: injection that really works', () => {
  let stored: V1Pod;

  it('a labelled Pod is stored with the sidecar, and every isolation property holds', async () => {
    const r = await createPod(pod('agent-1', true));
    assert.equal(r.status, 201, r.text);
    stored = r.body;
    const spec = stored.spec ?? assert.fail('no spec');
    const sc = spec.initContainers?.find((c) => c.name === SIDECAR_CONTAINER_NAME) ?? assert.fail('no sidecar init container');
    assert.equal(sc.restartPolicy, 'Always', 'a native sidecar');
    assert.equal(spec.automountServiceAccountToken, false);
    const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
    for (const c of [...spec.containers, ...(spec.initContainers ?? []).filter((x) => x.name !== SIDECAR_CONTAINER_NAME)]) {
      for (const m of c.volumeMounts ?? []) {
        const v = volumes.get(m.name);
        assert.equal(v?.secret, undefined, `${c.name} mounts no Secret (${m.name})`);
        assert.ok(!m.mountPath.startsWith('/var/run/secrets/kubernetes.io/serviceaccount'), `${c.name} has no API token mount`);
        for (const s of v?.projected?.sources ?? []) if (s.serviceAccountToken) assert.equal(s.serviceAccountToken.audience, AGENT_TOKEN_AUDIENCE, `${c.name}: only the chaperone-audience token`);
      }
      assert.ok(!(c.env ?? []).some((e) => e.valueFrom?.secretKeyRef), `${c.name} has no secretKeyRef`);
      assert.ok(!(c.envFrom ?? []).some((e) => e.secretRef), `${c.name} has no envFrom secretRef`);
    }
    const agent = spec.containers[0] ?? assert.fail('no agent');
    const env = new Map((agent.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(env.get('PGHOST'), '127.0.0.1');
    assert.equal(env.get('PGPORT'), String(localPort));
    assert.ok(env.get('CHAPERONE_TOKEN_FILE'));
    assert.ok(!(env.get('DATABASE_URL') ?? '').includes(PASSWORD), 'DATABASE_URL has no password');
    assert.ok(!JSON.stringify(stored).includes(PASSWORD), 'no credential anywhere in the stored Pod');
    assert.ok((agent.volumeMounts ?? []).some((m) => volumes.get(m.name)?.projected?.sources?.some((s) => s.serviceAccountToken?.audience === AGENT_TOKEN_AUDIENCE)), 'token projection mounted in the agent');
  });

  it('an unlabelled Pod is untouched, a Pod for a missing identity is refused', async () => {
    const plain = await createPod(pod('plain-1', false));
    assert.equal(plain.status, 201, plain.text);
    assert.equal(plain.body.spec?.initContainers, undefined);
    const missing = pod('missing-1', true);
    (missing.metadata as { labels: Record<string, string> }).labels[LABEL_IDENTITY] = 'no-such-identity';
    const r = await createPod(missing);
    assert.equal(r.status, 403, r.text);
    assert.match(r.body.message ?? '', /AgentIdentity .*no-such-identity.* does not exist/);
  });

  it('the stored sidecar, started locally with its own command, env and files, serves a real psql session with a pod-bound token', async () => {
    const sc = stored.spec?.initContainers?.find((c) => c.name === SIDECAR_CONTAINER_NAME) ?? assert.fail('no sidecar');
    assert.deepEqual(sc.command, ['chaperone-sidecar']);
    const kubelet = new Kubelet(cp, stored, join(dir, 'pod'));
    sidecar = await startPodSidecar(kubelet, sc, { bin: SIDECAR_BIN, dir, cwd: root, adminPort });
    // The agent's token: audience chaperone, bound to this pod, as its projection would hold it.
    const token = await kubelet.token([AGENT_TOKEN_AUDIENCE]);
    const agentEnv = Object.fromEntries((stored.spec?.containers[0]?.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value as string]));
    const psql = spawnSync('psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', 'SELECT current_user, 6 * 7'], {
      env: { PATH: process.env.PATH ?? '', ...agentEnv, PGPASSWORD: token, PGCONNECT_TIMEOUT: '10' }, encoding: 'utf8', timeout: 30_000,
    });
    assert.equal(psql.status, 0, `psql failed: ${psql.stderr}\nsidecar: ${(await sidecar.output()).slice(-1500)}`);
    assert.equal(psql.stdout.trim(), `${DB_USER}|42`, 'upstream login with the mounted credential, answer through the sidecar');
    const bad = spawnSync('psql', ['-X', '-A', '-t', '-c', 'SELECT 1'], { env: { PATH: process.env.PATH ?? '', ...agentEnv, PGPASSWORD: 'not-a-token', PGCONNECT_TIMEOUT: '10' }, encoding: 'utf8', timeout: 30_000 });
    assert.notEqual(bad.status, 0, 'a non-token password is refused');
    assert.ok(!(await sidecar.output()).includes(PASSWORD), 'the sidecar never logs the credential');
  });

  it('the admin server reports webhook latency by webhook and outcome, and is ready', async () => {
    assert.ok(op?.adminUrl);
    assert.equal((await fetch(`${op.adminUrl}/readyz`)).status, 200);
    const text = await (await fetch(`${op.adminUrl}/metrics`)).text();
    assert.match(text, /chaperone_operator_webhook_duration_seconds_count\{webhook="mutate-pods",outcome="injected"\} [1-9]/);
    assert.match(text, /chaperone_operator_webhook_duration_seconds_count\{webhook="mutate-pods",outcome="identity-not-found"\} [1-9]/);
  });

  it('with the operator stopped, labelled pods are refused and unlabelled pods admitted', async () => {
    await op?.stop();
    op = undefined;
    const labelled = await createPod(pod('after-stop-1', true));
    assert.notEqual(labelled.status, 201, 'failurePolicy Fail: no labelled pod without the webhook');
    assert.match(labelled.text, /failed calling webhook|connection refused|webhook/i);
    const plain = await createPod(pod('after-stop-2', false));
    assert.equal(plain.status, 201, plain.text);
  });
});
