// Counter reports wired end to end on a real API server: a Pod injected by the real webhook gets a sidecar whose compiled config reports to the operator and trusts the CA ConfigMap it keeps; the stored sidecar, started locally, counts a psql session into AgentIdentity status, also after the CA rotates.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1Pod } from '@kubernetes/client-node';
import { auditCompileEnv, auditPlugin } from '../../operator/audit/plugin.ts';
import { AUDIT_CA_KEY, auditCaConfigMapName, LEDGER_KEY, ledgerConfigMapName } from '../../operator/audit/names.ts';
import { TlsRelay } from '../../operator/audit/tls-relay.ts';
import type { RunningOperator } from '../../operator/main.ts';
import { AGENT_TOKEN_AUDIENCE, LABEL_IDENTITY, SIDECAR_CONTAINER_NAME } from '../../operator/webhooks/pod-mutate/layout.ts';
import { replayText } from '../../sidecar/recording/replay.ts';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { Kubelet, startPodSidecar, type StartedSidecar } from '../cluster/kubelet.ts';
import { registerWebhooks, staticWebhookTls, waitForInjection, type RegisteredWebhooks } from '../cluster/webhooks.ts';
import { freePorts } from '../env/ports.ts';
import { startPostgres, type Postgres } from '../env/postgres.ts';
import { eventually } from '../env/wait.ts';
import { apply, getConfigMap, getIdentity, identityPath, installCrds, pgIdentity, secret, secretPath, startTestOperator, waitReady } from '../integration/operator-controllers.harness.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SIDECAR_BIN = join(root, 'sidecar', 'bin', 'chaperone-sidecar');
const PASSWORD = `synth-${randomBytes(12).toString('hex')}`;
const DB_USER = 'chap_e2e_audit';
const IDENTITY = 'audit-agent';

let cp: ControlPlane;
let pgp: Postgres;
let ns: string;
let opNs: string;
let op: RunningOperator | undefined;
let dir: string;
let webhooks: RegisteredWebhooks | undefined;
let localPort: number;
let adminPort: number;
let auditPort: number;
const relay = new TlsRelay();
const running: StartedSidecar[] = [];
/** The last stopped sidecar's stdout + stderr (failure messages). */
let lastOutput = '';
const sidecarLog = (): string => lastOutput.split('\n').filter((l) => !l.includes('"seq"')).slice(-15).join('\n');

function agentPod(name: string): V1Pod {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace: ns, labels: { [LABEL_IDENTITY]: IDENTITY } },
    spec: { serviceAccountName: 'default', containers: [{ name: 'agent', image: 'registry.invalid/agent:e2e', command: ['sleep', 'infinity'] }] },
  };
}

/** psql as a child process (async: the operator in this process must keep serving the reports). */
function psql(env: Record<string, string>, sql: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn('psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', ...sql.flatMap((s) => ['-c', s])], { env: { PATH: process.env.PATH ?? '', ...env, PGCONNECT_TIMEOUT: '10' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) => child.once('close', (status) => {
    clearTimeout(timer);
    resolve({ status, stdout, stderr });
  }));
}

before(async () => {
  cp = await sharedControlPlane();
  await installCrds(cp);
  pgp = await startPostgres({ auth: 'scram-sha-256' });
  await pgp.createRole(DB_USER, PASSWORD);
  await pgp.createDatabase('app');
  ns = await cp.createNamespace('audite2e');
  opNs = await cp.createNamespace('chaperone-system');
  dir = await mkdtemp(join(tmpdir(), 'chaperone-audite2e-'));
  [localPort, adminPort, auditPort] = (await freePorts(3)) as [number, number, number];
  const { tls, caPem } = await staticWebhookTls();
  // What cli.ts does: the report server shares the webhook's pair, every sidecar reports to the URL.
  op = await startTestOperator(cp, opNs, {
    webhook: { host: '127.0.0.1', port: 0, tls, build: { image: 'registry.invalid/chaperone-sidecar:e2e' } },
    compileEnv: { adminHost: '127.0.0.1', approvalsBackend: 'none', auditEvents: false, auditReport: auditCompileEnv(`https://127.0.0.1:${auditPort}`) },
    onWebhookTls: (t) => relay.set(t),
    plugins: [auditPlugin({ tls: relay, host: '127.0.0.1', port: auditPort, minWriteIntervalMs: 100 }, {})],
  });
  assert.ok(op.webhookUrl);
  webhooks = await registerWebhooks(cp, { url: op.webhookUrl, caPem, operatorNamespace: opNs, namespace: ns });
  await apply(cp, secretPath(ns, `${IDENTITY}-db`), secret(ns, `${IDENTITY}-db`, { username: DB_USER, password: PASSWORD }));
  const id = pgIdentity(ns, IDENTITY, { host: '127.0.0.1', port: pgp.port, localPort, database: 'app' });
  (id.spec as { sidecar?: unknown }).sidecar = { adminPort };
  await apply(cp, identityPath(ns, IDENTITY), id);
  await waitReady(cp, ns, IDENTITY);
  await waitForInjection(cp, agentPod('probe'));
});

after(async () => {
  for (const s of running) await s.stop();
  await op?.stop();
  await webhooks?.unregister();
  if (dir) await rm(dir, { recursive: true, force: true });
  await pgp?.stop();
  if (cp?.owned) await cp.stop();
});

async function counters(): Promise<Record<string, number> | undefined> {
  return ((await getIdentity(cp, ns, IDENTITY))?.status as { counters?: Record<string, number> } | undefined)?.counters;
}

/** The stored pod's sidecar, run locally; a psql session through it; the sidecar stopped (its last report is sent on shutdown). */
async function sessionThrough(stored: V1Pod, sub: string, sql: string[], beforeSession?: (k: Kubelet) => Promise<void>): Promise<string> {
  const sc = stored.spec?.initContainers?.find((c) => c.name === SIDECAR_CONTAINER_NAME) ?? assert.fail('no sidecar');
  const kubelet = new Kubelet(cp, stored, join(dir, sub));
  const sidecar = await startPodSidecar(kubelet, sc, { bin: SIDECAR_BIN, dir: join(dir, sub), cwd: root, adminPort });
  running.push(sidecar);
  await beforeSession?.(kubelet);
  const token = await kubelet.token([AGENT_TOKEN_AUDIENCE]);
  const agentEnv = Object.fromEntries((stored.spec?.containers[0]?.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value as string]));
  const r = await psql({ ...agentEnv, PGPASSWORD: token }, sql);
  assert.equal(r.status, 0, `psql failed: ${r.stderr}\nsidecar: ${(await sidecar.output()).slice(-1500)}`);
  await sidecar.stop();
  running.splice(running.indexOf(sidecar), 1);
  lastOutput = await sidecar.output();
  return readFile(sidecar.stdoutFile, 'utf8');
}

describe('counter reports from an injected pod', () => {
  let stored: V1Pod;

  it('the injected sidecar reports to the operator and trusts the CA ConfigMap, mounted into the sidecar only', async () => {
    const r = await cp.request<V1Pod>('admin', 'POST', `/api/v1/namespaces/${ns}/pods`, agentPod('agent-1'));
    assert.equal(r.status, 201, r.text);
    stored = r.body;
    const caCm = auditCaConfigMapName(IDENTITY);
    const volumes = (stored.spec?.volumes ?? []).filter((v) => v.configMap?.name === caCm);
    assert.equal(volumes.length, 1, 'one volume of the CA ConfigMap');
    const vol = volumes[0]?.name ?? '';
    const sc = stored.spec?.initContainers?.find((c) => c.name === SIDECAR_CONTAINER_NAME) ?? assert.fail('no sidecar');
    const mount = sc.volumeMounts?.find((m) => m.name === vol) ?? assert.fail('the sidecar mounts the CA');
    for (const c of stored.spec?.containers ?? []) assert.ok(!(c.volumeMounts ?? []).some((m) => m.name === vol), `${c.name} does not mount the CA volume`);
    const compiled = await getConfigMap(cp, ns, `chaperone-${IDENTITY}`) ?? assert.fail('no compiled ConfigMap');
    const report = (JSON.parse(compiled.data?.['sidecar.yaml'] ?? '{}') as { identity?: { report?: { url?: string; caFile?: string; tokenFile?: string } } }).identity?.report;
    assert.equal(report?.url, `https://127.0.0.1:${auditPort}`);
    assert.equal(report?.caFile, `${mount.mountPath}/${AUDIT_CA_KEY}`);
    // The credential of a report: the API-audience token in a volume only the sidecar mounts; agents hold a `chaperone`-audience token only.
    const tokenMount = sc.volumeMounts?.find((m) => (report?.tokenFile ?? '').startsWith(`${m.mountPath}/`)) ?? assert.fail('the report token is not on a sidecar mount');
    const tokenVolume = stored.spec?.volumes?.find((v) => v.name === tokenMount.name);
    const projected = tokenVolume?.projected?.sources?.find((x) => x.serviceAccountToken)?.serviceAccountToken ?? assert.fail('not a projected token');
    assert.equal(projected.audience, undefined, 'audience: the API server (what TokenReview without audiences accepts)');
    for (const c of [...(stored.spec?.containers ?? []), ...(stored.spec?.initContainers ?? []).filter((x) => x.name !== SIDECAR_CONTAINER_NAME)]) {
      assert.ok(!(c.volumeMounts ?? []).some((m) => m.name === tokenMount.name), `${c.name} does not mount the sidecar's token`);
      const tokens = (c.volumeMounts ?? []).flatMap((m) => stored.spec?.volumes?.find((v) => v.name === m.name)?.projected?.sources ?? []).flatMap((x) => (x.serviceAccountToken ? [x.serviceAccountToken.audience] : []));
      assert.ok(tokens.every((a) => a === AGENT_TOKEN_AUDIENCE), `${c.name}: only chaperone-audience tokens, got ${JSON.stringify(tokens)}`);
      if (c.name === 'agent') assert.deepEqual(tokens, [AGENT_TOKEN_AUDIENCE]);
    }
    assert.equal(stored.spec?.automountServiceAccountToken, false);
    const ca = await getConfigMap(cp, ns, caCm) ?? assert.fail('no CA ConfigMap');
    assert.equal(ca.data?.[AUDIT_CA_KEY], relay.current()?.ca, 'the webhook CA');
    assert.ok(ca.metadata.ownerReferences?.some((o) => o.kind === 'AgentIdentity' && o.name === IDENTITY), 'owned by the identity');
  });

  it('a psql session through the stored sidecar lands in status.counters, equal to the recording', async () => {
    const recording = await sessionThrough(stored, 'run1', ['SELECT 6 * 7', 'SELECT current_user']);
    const sums = replayText(recording).list().reduce((a, s) => ({ sessions: a.sessions + 1, statements: a.statements + s.commands, denied: a.denied + s.denied }), { sessions: 0, statements: 0, denied: 0 });
    assert.equal(sums.sessions, 1);
    const got = await eventually(async () => {
      const c = await counters();
      return c && c.sessions === sums.sessions ? c : undefined;
    }, { what: () => `status.counters after the sidecar stopped; sidecar log: ${sidecarLog()}` });
    assert.equal(got.statements, sums.statements);
    assert.equal(got.denied, sums.denied);
    const ledger = await getConfigMap(cp, opNs, ledgerConfigMapName(ns, IDENTITY)) ?? assert.fail('no ledger in the operator namespace');
    const streams = Object.keys((JSON.parse(ledger.data?.[LEDGER_KEY] ?? '{}') as { streams?: object }).streams ?? {});
    assert.ok(streams.some((k) => k.startsWith(`${stored.metadata?.uid ?? '?'}/`)), 'the ledger holds the sidecar stream');
  });

  it('the CA rotates: the ConfigMap follows, a running sidecar re-reads the file and its report is accepted', async () => {
    const before = (await counters())?.sessions ?? 0;
    const next = await staticWebhookTls('chaperone-rotated-ca');
    const material = next.tls.kind === 'static' ? next.tls.material : assert.fail('static');
    assert.notEqual(material.ca, relay.current()?.ca);
    await sessionThrough(stored, 'run2', ['SELECT 1'], async (k) => {
      relay.set(material);
      const caCm = await eventually(async () => {
        const cm = await getConfigMap(cp, ns, auditCaConfigMapName(IDENTITY));
        return cm?.data?.[AUDIT_CA_KEY] === material.ca ? cm : undefined;
      }, { what: () => 'the CA ConfigMap to carry the rotated CA' });
      // What the kubelet does with a changed ConfigMap volume: the file is swapped in place.
      const vol = stored.spec?.volumes?.find((v) => v.configMap?.name === auditCaConfigMapName(IDENTITY))?.name ?? '';
      const mountPath = stored.spec?.initContainers?.find((c) => c.name === SIDECAR_CONTAINER_NAME)?.volumeMounts?.find((m) => m.name === vol)?.mountPath ?? assert.fail('no CA mount');
      assert.ok(k);
      await writeFile(join(dir, 'run2', mountPath, AUDIT_CA_KEY), caCm.data?.[AUDIT_CA_KEY] ?? '');
    });
    await eventually(async () => ((await counters())?.sessions === before + 1 ? true : undefined), { what: () => `the rotated-CA report in status.counters; sidecar log: ${sidecarLog()}` });
  });

  it('a CA ConfigMap edited or deleted by someone else is put back by the operator', async () => {
    const name = auditCaConfigMapName(IDENTITY);
    const r = await cp.request('admin', 'PATCH', `/api/v1/namespaces/${ns}/configmaps/${name}`, { data: { [AUDIT_CA_KEY]: '-----BEGIN CERTIFICATE-----\nnot-the-operator\n-----END CERTIFICATE-----\n' } }, { contentType: 'application/merge-patch+json' });
    assert.equal(r.status, 200, r.text);
    await eventually(async () => ((await getConfigMap(cp, ns, name))?.data?.[AUDIT_CA_KEY] === relay.current()?.ca ? true : undefined), { what: () => 'the edited CA ConfigMap restored' });
    assert.equal((await cp.request('admin', 'DELETE', `/api/v1/namespaces/${ns}/configmaps/${name}`)).status, 200);
    await eventually(async () => ((await getConfigMap(cp, ns, name))?.data?.[AUDIT_CA_KEY] === relay.current()?.ca ? true : undefined), { what: () => 'the deleted CA ConfigMap recreated' });
  });
});
