// Recording signing on the real API server: the AgentIdentity's key Secret is mounted into the stored Pod's sidecar only, an agent that mounts it is refused, and lines forged without the key do not verify.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';
import { createCa, issueServing } from '../../operator/certs/pki.ts';
import { mutatingWebhookConfiguration, validatingWebhookConfiguration } from '../../operator/manifests/webhooks.ts';
import type { RunningOperator } from '../../operator/main.ts';
import { run } from '../../operator/kubectl-plugin/main.ts';
import { LABEL_IDENTITY, SIDECAR_CONTAINER_NAME } from '../../operator/webhooks/pod-mutate/layout.ts';
import { loadKey } from '../../sidecar/recording/signing.ts';
import { forgeAfter, recordToMemory, sampleSession } from '../../sidecar/recording/fixtures.ts';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { eventually } from '../env/wait.ts';
import { apply, getConfigMap, identityPath, installCrds, pgIdentity, secret, secretPath, startTestOperator, waitReady } from '../integration/operator-controllers.harness.ts';

const DAY_MS = 86_400_000;
const KEY_SECRET = 'recording-key';

let cp: ControlPlane;
let ns: string;
let opNs: string;
let op: RunningOperator | undefined;
let dir: string;
let publicPem: string;
let privatePem: string;
const names = { mutating: '', validating: '' };

function pod(name: string, agent: Partial<V1Container> = {}, volumes?: V1Volume[]): V1Pod {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace: ns, labels: { [LABEL_IDENTITY]: 'signed-agent' } },
    spec: { serviceAccountName: 'default', containers: [{ name: 'agent', image: 'registry.invalid/agent:e2e', command: ['sleep', 'infinity'], ...agent }], ...(volumes ? { volumes } : {}) },
  };
}

async function createPod(p: V1Pod, dryRun = false): Promise<{ status: number; body: V1Pod & { message?: string }; text: string }> {
  return cp.request<V1Pod & { message?: string }>('admin', 'POST', `/api/v1/namespaces/${ns}/pods${dryRun ? '?dryRun=All' : ''}`, p);
}

before(async () => {
  cp = await sharedControlPlane();
  await installCrds(cp);
  ns = await cp.createNamespace('auditsig');
  opNs = await cp.createNamespace('chaperone-system');
  names.mutating = `chaperone-mutating-${ns}`;
  names.validating = `chaperone-validating-${ns}`;
  dir = await mkdtemp(join(tmpdir(), 'chap-audit-signing-'));
  const keys = generateKeyPairSync('ed25519');
  privatePem = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  publicPem = keys.publicKey.export({ type: 'spki', format: 'pem' }).toString();
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
  await apply(cp, secretPath(ns, 'signed-agent-db'), secret(ns, 'signed-agent-db', { username: 'u', password: 'synth-not-a-password' }));
  await apply(cp, secretPath(ns, KEY_SECRET), secret(ns, KEY_SECRET, { 'ed25519.pem': privatePem }));
  const id = pgIdentity(ns, 'signed-agent', { host: '127.0.0.1', port: 5432 });
  (id.spec as { recording?: unknown }).recording = { signing: { secretRef: { name: KEY_SECRET } } };
  await apply(cp, identityPath(ns, 'signed-agent'), id);
  await waitReady(cp, ns, 'signed-agent');
  await eventually(async () => {
    const r = await createPod(pod('probe'), true);
    return r.status === 201 && r.body.spec?.initContainers?.some((c) => c.name === SIDECAR_CONTAINER_NAME) ? true : undefined;
  }, { what: 'the mutating webhook is active' });
});

after(async () => {
  await op?.stop();
  for (const [kind, name] of [['mutatingwebhookconfigurations', names.mutating], ['validatingwebhookconfigurations', names.validating]] as const) {
    if (name) await cp.request('admin', 'DELETE', `/apis/admissionregistration.k8s.io/v1/${kind}/${name}`);
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('recording signing key', () => {
  it('is mounted into the stored Pod\'s sidecar only, and the compiled config signs with it', async () => {
    const r = await createPod(pod('agent-0'));
    assert.equal(r.status, 201, r.text);
    const stored = r.body;
    const keyVolumes = (stored.spec?.volumes ?? []).filter((v) => v.secret?.secretName === KEY_SECRET || v.projected?.sources?.some((s) => s.secret?.name === KEY_SECRET));
    assert.equal(keyVolumes.length, 1, 'one volume holds the signing key');
    const vol = keyVolumes[0]?.name ?? '';
    const all = [...(stored.spec?.initContainers ?? []), ...(stored.spec?.containers ?? [])];
    const mountedBy = all.filter((c) => (c.volumeMounts ?? []).some((m) => m.name === vol)).map((c) => c.name);
    assert.deepEqual(mountedBy, [SIDECAR_CONTAINER_NAME]);
    for (const c of all.filter((x) => x.name !== SIDECAR_CONTAINER_NAME)) {
      assert.ok(!(c.env ?? []).some((e) => e.valueFrom?.secretKeyRef?.name === KEY_SECRET), `${c.name} has no env from the key`);
      assert.ok(!(c.envFrom ?? []).some((e) => e.secretRef?.name === KEY_SECRET), `${c.name} has no envFrom the key`);
    }
    const mountPath = all.find((c) => c.name === SIDECAR_CONTAINER_NAME)?.volumeMounts?.find((m) => m.name === vol)?.mountPath ?? '';
    const cm = await getConfigMap(cp, ns, 'chaperone-signed-agent');
    const text = Object.values(cm?.data ?? {}).find((v) => v.includes('"signing"')) ?? '';
    const cfg = JSON.parse(text) as { recording: { signing: { privateKeyFile: string } }; identity: { name: string } };
    assert.ok(cfg.recording.signing.privateKeyFile.startsWith(`${mountPath}/`), `${cfg.recording.signing.privateKeyFile} is under the sidecar's key mount ${mountPath}`);
    assert.equal(cfg.identity.name, 'signed-agent');
  });

  it('an agent container that mounts the key Secret is refused', async () => {
    const r = await createPod(pod('thief', { volumeMounts: [{ name: 'k', mountPath: '/k' }] }, [{ name: 'k', secret: { secretName: KEY_SECRET } }]), true);
    assert.notEqual(r.status, 201, 'the validating webhook refuses an agent that mounts the signing key');
    assert.match(r.body.message ?? r.text, new RegExp(KEY_SECRET));
  });

  it('lines the agent writes without the key do not pass verify --require-sealed --key', async () => {
    // What the sidecar writes with the mounted key, and what someone without it appends.
    const signed = await recordToMemory(sampleSession('s-1'), { signing: { privateKey: loadKey(privatePem, 'private'), everyLines: 3, everyMs: 3_600_000 } });
    const forged = forgeAfter(signed.at(-1) ?? '', { type: 'statement', session: 's-1', cmd: 7, text: 'SELECT 1', classification: { kinds: ['read'], tables: [], functions: [] }, decision: 'allow', rule: null, statementHash: 'd'.repeat(64) });
    await writeFile(join(dir, 'rec.pub'), publicPem);
    const check = async (lines: readonly string[]): Promise<number> => {
      await writeFile(join(dir, 'rec.jsonl'), lines.map((l) => `${l}\n`).join(''));
      return run(['verify', join(dir, 'rec.jsonl'), '--key', join(dir, 'rec.pub'), '--require-sealed'], { out: () => undefined, err: () => undefined, env: {} });
    };
    assert.equal(await check(signed), 0);
    assert.equal(await check([...signed, forged]), 1);
  });
});
