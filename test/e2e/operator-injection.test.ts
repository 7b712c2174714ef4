// The whole operator on a real API server: its webhooks inject a labelled Pod, the stored Pod's sidecar (started locally like a kubelet would) serves a real psql session; stopped, labelled pods are refused.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';
import { createCa, issueServing } from '../../operator/certs/pki.ts';
import { mutatingWebhookConfiguration, validatingWebhookConfiguration } from '../../operator/manifests/webhooks.ts';
import type { RunningOperator } from '../../operator/main.ts';
import { AGENT_TOKEN_AUDIENCE, LABEL_IDENTITY, SIDECAR_CONTAINER_NAME } from '../../operator/webhooks/pod-mutate/layout.ts';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { freePorts } from '../env/ports.ts';
import { startPostgres, type Postgres } from '../env/postgres.ts';
import { eventually } from '../env/wait.ts';
import { apply, identityPath, installCrds, pgIdentity, secret, secretPath, startTestOperator, waitReady } from '../integration/operator-controllers.harness.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SIDECAR_BIN = join(root, 'sidecar', 'bin', 'chaperone-sidecar');
const PASSWORD = `synth-${randomBytes(12).toString('hex')}`;
const DB_USER = 'chap_e2e_agent';
const DAY_MS = 86_400_000;

let cp: ControlPlane;
let pgp: Postgres;
let ns: string;
let opNs: string;
let op: RunningOperator | undefined;
let dir: string;
let sidecar: ChildProcess | undefined;
let localPort: number;
let adminPort: number;
const names = { mutating: '', validating: '' };

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

async function registerWebhooks(url: string, caPem: string): Promise<void> {
  const o = {
    client: { url }, operatorNamespace: opNs, caBundle: Buffer.from(caPem).toString('base64'), approvals: false,
    mutatingName: names.mutating, validatingName: names.validating,
    // A shared control plane: only this test's namespace is sent to these webhooks.
    scope: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [ns] }] },
  };
  await apply(cp, `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${names.mutating}`, mutatingWebhookConfiguration(o));
  await apply(cp, `/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/${names.validating}`, validatingWebhookConfiguration(o));
}

before(async () => {
  cp = await sharedControlPlane();
  await installCrds(cp);
  pgp = await startPostgres({ auth: 'scram-sha-256' });
  await pgp.createRole(DB_USER, PASSWORD);
  await pgp.createDatabase('app');
  ns = await cp.createNamespace('ope2e');
  opNs = await cp.createNamespace('chaperone-system');
  names.mutating = `chaperone-mutating-${ns}`;
  names.validating = `chaperone-validating-${ns}`;
  dir = await mkdtemp(join(tmpdir(), 'chaperone-ope2e-'));
  [localPort, adminPort] = (await freePorts(2)) as [number, number];
  const ca = await createCa({ commonName: 'chaperone-e2e-ca', validityMs: DAY_MS });
  const serving = await issueServing(ca, { commonName: 'chaperone-webhook', dnsNames: ['localhost'], ips: ['127.0.0.1'], validityMs: DAY_MS });
  op = await startTestOperator(cp, opNs, {
    webhook: { host: '127.0.0.1', port: 0, tls: { kind: 'static', material: { cert: serving.certPem, key: serving.keyPem, ca: ca.certPem } }, build: { image: 'registry.invalid/chaperone-sidecar:e2e' } },
    compileEnv: { adminHost: '127.0.0.1', approvalsBackend: 'none' },
  });
  assert.ok(op.webhookUrl);
  await registerWebhooks(op.webhookUrl.replace('0.0.0.0', '127.0.0.1'), ca.certPem);
  await apply(cp, secretPath(ns, 'e2e-agent-db'), secret(ns, 'e2e-agent-db', { username: DB_USER, password: PASSWORD }));
  const id = pgIdentity(ns, 'e2e-agent', { host: '127.0.0.1', port: pgp.port, localPort, database: 'app' });
  (id.spec as { sidecar?: unknown }).sidecar = { adminPort };
  await apply(cp, identityPath(ns, 'e2e-agent'), id);
  await waitReady(cp, ns, 'e2e-agent');
  // Webhook configuration reaches the admission chain asynchronously: probe with a dry run until a labelled pod comes back injected.
  await eventually(async () => {
    const r = await createPod(pod('probe', true), true);
    return r.status === 201 && r.body.spec?.initContainers?.some((c) => c.name === SIDECAR_CONTAINER_NAME) ? true : undefined;
  }, { what: 'the mutating webhook is active' });
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
  await pgp?.stop();
  if (cp?.owned) await cp.stop();
});

// ---------------------------------------------------------------------------------------------
// A kubelet stand-in: write each volume the sidecar mounts under `dir`, and map the paths.

async function tokenRequest(sa: string, podRef: { name: string; uid: string }, audiences?: string[]): Promise<string> {
  const r = await cp.request<{ status: { token: string } }>('admin', 'POST', `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`, {
    apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
    spec: { expirationSeconds: 600, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: podRef.name, uid: podRef.uid }, ...(audiences ? { audiences } : {}) },
  });
  assert.equal(r.status, 201, r.text);
  return r.body.status.token;
}

async function keyData(kind: 'secrets' | 'configmaps', name: string): Promise<Record<string, string>> {
  const r = await cp.request<{ data?: Record<string, string> }>('admin', 'GET', `/api/v1/namespaces/${ns}/${kind}/${name}`);
  assert.equal(r.status, 200, `${kind}/${name}: ${r.text}`);
  const data = r.body.data ?? {};
  return kind === 'secrets' ? Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])) : data;
}

/** The files of one volume, as the kubelet would project them (kube-root-ca.crt, absent here, is the cluster CA). */
async function volumeFiles(v: V1Volume, stored: V1Pod, sa: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  if (v.configMap || v.secret) {
    const data = v.secret ? await keyData('secrets', v.secret.secretName ?? '') : await keyData('configmaps', v.configMap?.name ?? '');
    for (const it of (v.secret ?? v.configMap)?.items ?? []) out[it.path] = data[it.key] ?? assert.fail(`volume ${v.name}: no key ${it.key}`);
    return out;
  }
  for (const s of v.projected?.sources ?? []) {
    if (s.serviceAccountToken) out[s.serviceAccountToken.path] = await tokenRequest(sa, { name: stored.metadata?.name ?? '', uid: stored.metadata?.uid ?? '' }, s.serviceAccountToken.audience ? [s.serviceAccountToken.audience] : undefined);
    for (const it of s.configMap?.items ?? []) out[it.path] = s.configMap?.name === 'kube-root-ca.crt' ? cp.caPem : (await keyData('configmaps', s.configMap?.name ?? ''))[it.key] ?? '';
    for (const it of s.downwardAPI?.items ?? []) out[it.path] = it.fieldRef?.fieldPath === 'metadata.namespace' ? ns : '';
  }
  return out;
}

interface Materialized {
  readonly args: string[];
  readonly env: Record<string, string>;
  readonly mapped: string[];
}

/** Writes the sidecar's volumes under dir/<mountPath> and rewrites the compiled config's absolute paths to them. */
async function materialize(stored: V1Pod, c: V1Container): Promise<Materialized> {
  const sa = stored.spec?.serviceAccountName ?? 'default';
  const mapped: string[] = [];
  for (const m of c.volumeMounts ?? []) {
    const v = stored.spec?.volumes?.find((x) => x.name === m.name);
    assert.ok(v, `volume ${m.name}`);
    const files = await volumeFiles(v, stored, sa);
    for (const [p, content] of Object.entries(files)) {
      const file = join(dir, m.mountPath, p);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, content, { mode: 0o600 });
    }
    mapped.push(m.mountPath);
  }
  const rewrite = (s: string): string => mapped.reduce((acc, mp) => acc.split(`${mp}/`).join(`${join(dir, mp)}/`), s);
  const args = (c.args ?? []).map(rewrite);
  const configArg = args[args.indexOf('--config') + 1] ?? assert.fail('no --config in the sidecar args');
  await writeFile(configArg, rewrite(await readFile(configArg, 'utf8')));
  const env: Record<string, string> = {};
  const fields: Record<string, string> = { 'metadata.name': stored.metadata?.name ?? '', 'metadata.uid': stored.metadata?.uid ?? '', 'metadata.namespace': ns };
  for (const e of c.env ?? []) env[e.name] = e.value ?? fields[e.valueFrom?.fieldRef?.fieldPath ?? ''] ?? '';
  return { args, env, mapped };
}

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
    const m = await materialize(stored, sc);
    let logs = '';
    sidecar = spawn(SIDECAR_BIN, m.args, { cwd: root, env: { PATH: process.env.PATH ?? '', ...m.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    sidecar.stdout?.on('data', (b: Buffer) => (logs += b.toString()));
    sidecar.stderr?.on('data', (b: Buffer) => (logs += b.toString()));
    await eventually(async () => {
      if (sidecar?.exitCode !== null) assert.fail(`sidecar exited ${sidecar?.exitCode}: ${logs.slice(-2000)}`);
      const r = await fetch(`http://127.0.0.1:${adminPort}/readyz`).catch(() => undefined);
      return r?.status === 200 ? true : undefined;
    }, { what: () => `sidecar ready; logs: ${logs.slice(-1500)}`, timeoutMs: 45_000 });
    // The agent's token: audience chaperone, bound to this pod, as its projection would hold it.
    const token = await tokenRequest(stored.spec?.serviceAccountName ?? 'default', { name: stored.metadata?.name ?? '', uid: stored.metadata?.uid ?? '' }, [AGENT_TOKEN_AUDIENCE]);
    const agentEnv = Object.fromEntries((stored.spec?.containers[0]?.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value as string]));
    const psql = spawnSync('psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', 'SELECT current_user, 6 * 7'], {
      env: { PATH: process.env.PATH ?? '', ...agentEnv, PGPASSWORD: token, PGCONNECT_TIMEOUT: '10' }, encoding: 'utf8', timeout: 30_000,
    });
    assert.equal(psql.status, 0, `psql failed: ${psql.stderr}\nsidecar: ${logs.slice(-1500)}`);
    assert.equal(psql.stdout.trim(), `${DB_USER}|42`, 'upstream login with the mounted credential, answer through the sidecar');
    const bad = spawnSync('psql', ['-X', '-A', '-t', '-c', 'SELECT 1'], { env: { PATH: process.env.PATH ?? '', ...agentEnv, PGPASSWORD: 'not-a-token', PGCONNECT_TIMEOUT: '10' }, encoding: 'utf8', timeout: 30_000 });
    assert.notEqual(bad.status, 0, 'a non-token password is refused');
    assert.ok(!logs.includes(PASSWORD), 'the sidecar never logs the credential');
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
