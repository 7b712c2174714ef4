// The AgentIdentity controller on a real API server: Ready + ConfigMap, Invalid on a missing key, policy fan-out, deletion, 410 relist and replays, podsGuarded, admin endpoints.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentIdentity, MaskingPolicy } from '../../operator/api/types.ts';
import { compileIdentity } from '../../operator/compile/index.ts';
import { configMapNameFor } from '../../operator/controllers/identity-desired.ts';
import type { RunningOperator } from '../../operator/main.ts';
import { ANNOTATION_INJECTED, CONFIG_KEY, LABEL_IDENTITY } from '../../operator/webhooks/pod-mutate/layout.ts';
import { checkConfig } from '../../sidecar/core/config.ts';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { eventually } from '../env/wait.ts';
import {
  apply, condition, configMapPath, getConfigMap, getIdentity, identityPath, installCrds, maskingPolicy, pgIdentity, policyPath, secret, secretPath,
  startTestOperator, waitReady,
} from './operator-controllers.harness.ts';

let cp: ControlPlane;
let ns: string;
let opNs: string;
let op: RunningOperator;

before(async () => {
  cp = await sharedControlPlane();
  await installCrds(cp);
  ns = await cp.createNamespace('opctl');
  opNs = await cp.createNamespace('chaperone-system');
  op = await startTestOperator(cp, opNs, { watchTimeoutSeconds: 5 });
});

after(async () => {
  await op?.stop();
  if (cp.owned) await cp.stop();
});

async function createIdentity(id: AgentIdentity, withSecret = true): Promise<void> {
  const name = id.metadata.name ?? '';
  if (withSecret) await apply(cp, secretPath(ns, `${name}-db`), secret(ns, `${name}-db`, { username: 'agent', password: 'synthetic-password-1' }));
  await apply(cp, identityPath(ns, name), id);
}

describe('AgentIdentity → ConfigMap', () => {
  it('an identity becomes Ready and its ConfigMap holds exactly what compileIdentity produces (and the sidecar accepts it)', async () => {
    await apply(cp, policyPath(ns, 'mask-alpha'), maskingPolicy(ns, 'mask-alpha', { identities: ['alpha'] }, [{ name: 'ticket', regex: 'TCK-[0-9]{6}' }]));
    await createIdentity(pgIdentity(ns, 'alpha'));
    // The policy and the identity arrive on separate watches: a first reconcile may run before the
    // policy is in the informer, and the policy's event then requeues the identity (fan-out).
    const id = await eventually(async () => {
      const r = await waitReady(cp, ns, 'alpha');
      return /MaskingPolicies: mask-alpha/.test(condition(r, 'Ready')?.message ?? '') ? r : undefined;
    }, { what: 'AgentIdentity alpha Ready with MaskingPolicy mask-alpha compiled in' });
    const cmName = configMapNameFor('alpha');
    assert.equal(id.status?.configMapName, cmName);
    assert.equal(id.status?.observedGeneration, id.metadata.generation);
    assert.match(condition(id, 'Ready')?.message ?? '', /MaskingPolicies: mask-alpha/);
    assert.equal(condition(id, 'Invalid')?.status, 'False');
    const cm = await getConfigMap(cp, ns, cmName);
    assert.ok(cm, 'ConfigMap exists');
    const policy = (await cp.request<MaskingPolicy>('admin', 'GET', policyPath(ns, 'mask-alpha'))).body;
    const expected = compileIdentity({ identity: id, maskingPolicies: [policy], approvalRules: [], env: op.compileEnv });
    assert.ok(expected.ok);
    assert.equal(cm.data?.[CONFIG_KEY], expected.text, 'ConfigMap text is the compiler output, byte for byte');
    assert.equal(id.status?.configHash, expected.hash);
    const checked = checkConfig(JSON.parse(cm.data?.[CONFIG_KEY] ?? '{}') as unknown, expected.hash, { checkFiles: false });
    assert.ok(checked.ok, `sidecar checkConfig: ${JSON.stringify(checked)}`);
    assert.equal(expected.config.identity?.issuers?.[0]?.issuer, cp.issuer, 'the cluster ServiceAccount issuer came from discovery');
    const owner = cm.metadata.ownerReferences?.[0];
    assert.equal(owner?.uid, id.metadata.uid);
    assert.equal(owner?.controller, true);
    assert.equal(cm.metadata.labels?.[LABEL_IDENTITY], 'alpha');
    assert.ok(!JSON.stringify(cm).includes('synthetic-password-1'), 'no Secret value in the ConfigMap');
  });

  it('a missing Secret key makes the identity Invalid, naming the Secret and key; adding the key makes it Ready', async () => {
    await apply(cp, secretPath(ns, 'beta-db'), secret(ns, 'beta-db', { username: 'agent', password: 'synthetic-password-2' }));
    await createIdentity(pgIdentity(ns, 'beta', { passwordKey: 'pw' }), false);
    const bad = await waitReady(cp, ns, 'beta', 'False');
    const inv = condition(bad, 'Invalid');
    assert.equal(inv?.status, 'True');
    assert.equal(inv?.reason, 'MissingReference');
    assert.match(inv?.message ?? '', new RegExp(`Secret ${ns}/beta-db has no key "pw"`));
    assert.equal(await getConfigMap(cp, ns, configMapNameFor('beta')), undefined, 'no ConfigMap for an invalid identity');
    await apply(cp, secretPath(ns, 'beta-db'), secret(ns, 'beta-db', { username: 'agent', password: 'x', pw: 'synthetic-password-3' }));
    const good = await waitReady(cp, ns, 'beta');
    assert.equal(condition(good, 'Invalid')?.status, 'False');
    assert.notEqual(condition(good, 'Ready')?.lastTransitionTime, undefined);
  });

  it('a missing Secret is Invalid with a message naming it', async () => {
    await createIdentity(pgIdentity(ns, 'gamma'), false);
    const bad = await waitReady(cp, ns, 'gamma', 'False');
    assert.match(condition(bad, 'Ready')?.message ?? '', new RegExp(`Secret ${ns}/gamma-db \\(the credentials of connection db\\) does not exist`));
  });

  it('a MaskingPolicy change reaches the ConfigMap of every identity it selects, and only those', async () => {
    const names = ['team-1', 'team-2', 'team-3'];
    for (const n of names) await createIdentity(pgIdentity(ns, n, { labels: { team: 'fanout' } }));
    await createIdentity(pgIdentity(ns, 'loner'));
    await apply(cp, policyPath(ns, 'team-mask'), maskingPolicy(ns, 'team-mask', { identitySelector: { matchLabels: { team: 'fanout' } } }, [{ name: 'one', regex: 'ONE-[0-9]{4}' }]));
    const before = new Map<string, string>();
    for (const n of [...names, 'loner']) {
      await eventually(async () => {
        const id = await waitReady(cp, ns, n);
        return n === 'loner' || /team-mask/.test(condition(id, 'Ready')?.message ?? '') ? id : undefined;
      }, { what: `${n} compiled with team-mask` });
      before.set(n, (await getConfigMap(cp, ns, configMapNameFor(n)))?.metadata.resourceVersion ?? '');
    }
    await apply(cp, policyPath(ns, 'team-mask'), maskingPolicy(ns, 'team-mask', { identitySelector: { matchLabels: { team: 'fanout' } } }, [{ name: 'one', regex: 'ONE-[0-9]{4}' }, { name: 'two', regex: 'TWO-[0-9]{4}' }]));
    for (const n of names) {
      await eventually(async () => ((await getConfigMap(cp, ns, configMapNameFor(n)))?.data?.[CONFIG_KEY] ?? '').includes('TWO-[0-9]{4}') ? true : undefined, { what: `${n} ConfigMap has the new pattern` });
    }
    await op.identityController.idle();
    assert.equal((await getConfigMap(cp, ns, configMapNameFor('loner')))?.metadata.resourceVersion, before.get('loner'), 'an unselected identity is not rewritten');
  });

  it('deleting an identity removes its ConfigMap', async () => {
    await createIdentity(pgIdentity(ns, 'doomed'));
    await waitReady(cp, ns, 'doomed');
    assert.ok(await getConfigMap(cp, ns, configMapNameFor('doomed')));
    const r = await cp.request('admin', 'DELETE', identityPath(ns, 'doomed'));
    assert.equal(r.status, 200);
    await eventually(async () => ((await getConfigMap(cp, ns, configMapNameFor('doomed'))) === undefined ? true : undefined), { what: 'ConfigMap of the deleted identity gone' });
  });

  it('a ConfigMap we labelled whose identity does not exist (deleted while no operator ran) is deleted; a foreign ConfigMap is kept', async () => {
    await apply(cp, configMapPath(ns, 'chaperone-ghost'), {
      apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'chaperone-ghost', namespace: ns, labels: { 'app.kubernetes.io/managed-by': 'chaperone-operator', [LABEL_IDENTITY]: 'ghost' } }, data: { x: 'y' },
    });
    await apply(cp, configMapPath(ns, 'user-cm'), { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'user-cm', namespace: ns, labels: { [LABEL_IDENTITY]: 'ghost' } }, data: { x: 'y' } });
    await eventually(async () => ((await getConfigMap(cp, ns, 'chaperone-ghost')) === undefined ? true : undefined), { what: 'orphaned ConfigMap swept' });
    assert.ok(await getConfigMap(cp, ns, 'user-cm'), 'a ConfigMap without our managed-by label is never deleted');
  });
});

describe('watch robustness', () => {
  it('a watch resumed from an expired resourceVersion gets 410 Gone, relists, and keeps following changes', async () => {
    const inf = op.informers.identities;
    const gone = inf.stats.gone;
    const lists = inf.stats.lists;
    inf.restartWatch('1');
    await eventually(() => Promise.resolve(inf.stats.gone > gone && inf.stats.lists > lists ? true : undefined), { what: `informer relisted after 410 (stats ${JSON.stringify(inf.stats)})` });
    await createIdentity(pgIdentity(ns, 'after-gone'));
    await waitReady(cp, ns, 'after-gone');
  });

  it('the short server-side watch timeout re-watches without losing events', async () => {
    const watches = op.informers.identities.stats.watches;
    await eventually(() => Promise.resolve(op.informers.identities.stats.watches > watches ? true : undefined), { what: 'a re-watch after the 5 s timeout', timeoutMs: 20_000 });
    await createIdentity(pgIdentity(ns, 'after-timeout'));
    await waitReady(cp, ns, 'after-timeout');
  });

  it('replayed and resynced events leave every object unchanged (no write)', async () => {
    await op.identityController.idle();
    const id = await waitReady(cp, ns, 'alpha');
    const cm = await getConfigMap(cp, ns, configMapNameFor('alpha'));
    const stale = structuredClone(id);
    stale.metadata.resourceVersion = String(Number(id.metadata.resourceVersion) - 1);
    const replayed = op.informers.identities.stats.replayed;
    // The same event again, and an older version of it: both dropped by the informer.
    op.informers.identities.injectEvent({ type: 'MODIFIED', object: id as unknown as Record<string, unknown> });
    op.informers.identities.injectEvent({ type: 'ADDED', object: stale as unknown as Record<string, unknown> });
    assert.equal(op.informers.identities.stats.replayed, replayed + 2);
    assert.equal(op.informers.identities.get(ns, 'alpha')?.metadata.resourceVersion, id.metadata.resourceVersion);
    // A resync re-reconciles everything: level-triggered, so nothing is written.
    for (const inf of [op.informers.identities, op.informers.maskingPolicies, op.informers.secrets, op.informers.configMaps]) inf.resync();
    op.identityController.enqueue(`${ns}/alpha`);
    await op.identityController.idle();
    assert.equal((await getIdentity(cp, ns, 'alpha'))?.metadata.resourceVersion, id.metadata.resourceVersion, 'identity (status) not rewritten');
    assert.equal((await getConfigMap(cp, ns, configMapNameFor('alpha')))?.metadata.resourceVersion, cm?.metadata.resourceVersion, 'ConfigMap not rewritten');
  });
});

describe('status.podsGuarded', () => {
  function pod(name: string, injected: boolean): Record<string, unknown> {
    return {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name, namespace: ns, labels: { [LABEL_IDENTITY]: 'alpha' }, ...(injected ? { annotations: { [ANNOTATION_INJECTED]: '{"version":1}' } } : {}) },
      spec: { containers: [{ name: 'agent', image: 'busybox' }], automountServiceAccountToken: false },
    };
  }

  it('counts labelled pods that carry the injected annotation, and drops them when deleted', async () => {
    for (const [n, inj] of [['guarded-1', true], ['guarded-2', true], ['not-injected', false]] as const) {
      const r = await cp.request('admin', 'POST', `/api/v1/namespaces/${ns}/pods`, pod(n, inj));
      assert.equal(r.status, 201, r.text);
    }
    await eventually(async () => ((await getIdentity(cp, ns, 'alpha'))?.status?.podsGuarded === 2 ? true : undefined), { what: 'podsGuarded 2' });
    await cp.request('admin', 'DELETE', `/api/v1/namespaces/${ns}/pods/guarded-1?gracePeriodSeconds=0`);
    await eventually(async () => ((await getIdentity(cp, ns, 'alpha'))?.status?.podsGuarded === 1 ? true : undefined), { what: 'podsGuarded 1 after a delete' });
  });
});

describe('admin endpoints', () => {
  it('/healthz, /readyz and /metrics answer', async () => {
    assert.ok(op.adminUrl);
    assert.equal((await fetch(`${op.adminUrl}/healthz`)).status, 200);
    assert.equal((await fetch(`${op.adminUrl}/readyz`)).status, 200);
    const metrics = await (await fetch(`${op.adminUrl}/metrics`)).text();
    assert.match(metrics, /chaperone_operator_reconcile_total\{controller="agentidentity",result="success"\} \d+/);
    assert.match(metrics, /chaperone_operator_queue_depth\{queue="agentidentity"\} \d+/);
    assert.match(metrics, /chaperone_operator_informer_relists_total\{informer="agentidentities",reason="gone"\} [1-9]/);
  });
});
