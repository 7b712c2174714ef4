// operator/rbac/operator.yaml is enough: an operator running as a ServiceAccount bound to it leads, compiles, applies, cleans up and reads issuer discovery.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { configMapNameFor } from '../../operator/controllers/identity-desired.ts';
import { startOperator, type RunningOperator } from '../../operator/main.ts';
import { OperatorMetrics } from '../../operator/metrics.ts';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { eventually } from '../env/wait.ts';
import { apply, getConfigMap, identityPath, installCrds, pgIdentity, secret, secretPath, testLogger, waitReady } from './operator-controllers.harness.ts';

const RBAC = fileURLToPath(new URL('../../operator/rbac/operator.yaml', import.meta.url));
let cp: ControlPlane;
let ns: string;
let opNs: string;
let op: RunningOperator | undefined;

interface Doc { kind: string; metadata: { name: string; namespace?: string }; roleRef?: { name: string }; subjects?: { namespace?: string }[] }

/** The manifests with this test's namespace and unique cluster-scoped names (the control plane may be shared). */
function manifests(suffix: string): Doc[] {
  return parseAllDocuments(readFileSync(RBAC, 'utf8')).map((d) => d.toJS() as Doc).map((d) => {
    const o = structuredClone(d);
    if (o.kind.startsWith('Cluster')) o.metadata.name = `${o.metadata.name}-${suffix}`;
    if (o.kind === 'ClusterRoleBinding' && o.roleRef) o.roleRef.name = `${o.roleRef.name}-${suffix}`;
    if (o.metadata.namespace) o.metadata.namespace = opNs;
    for (const s of o.subjects ?? []) s.namespace = opNs;
    return o;
  });
}

function pathOf(d: Doc): string {
  const plural = `${d.kind.toLowerCase()}s`;
  return d.metadata.namespace ? `/apis/rbac.authorization.k8s.io/v1/namespaces/${d.metadata.namespace}/${plural}/${d.metadata.name}` : `/apis/rbac.authorization.k8s.io/v1/${plural}/${d.metadata.name}`;
}

before(async () => {
  cp = await sharedControlPlane();
  await installCrds(cp);
  ns = await cp.createNamespace('oprbac');
  opNs = await cp.createNamespace('chaperone-system');
  for (const d of manifests(opNs)) await apply(cp, pathOf(d), d);
  await apply(cp, `/api/v1/namespaces/${opNs}/serviceaccounts/chaperone-operator`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'chaperone-operator', namespace: opNs } });
  const tr = await cp.request<{ status: { token: string } }>('admin', 'POST', `/api/v1/namespaces/${opNs}/serviceaccounts/chaperone-operator/token`, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } });
  assert.equal(tr.status, 201, tr.text);
  const token = tr.body.status.token;
  // RBAC reaches the authorizer through an informer: wait until the binding answers.
  await eventually(async () => ((await cp.request({ token }, 'GET', `/apis/chaperone.dev/v1alpha1/agentidentities`)).status === 200 ? true : undefined), { what: 'RBAC binding active' });
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'test', server: cp.url, caData: Buffer.from(cp.caPem).toString('base64') }],
    users: [{ name: 'operator', token }],
    contexts: [{ name: 'test', cluster: 'test', user: 'operator' }],
    currentContext: 'test',
  });
  op = await startOperator({
    kubeConfig: kc, operatorNamespace: opNs, webhook: false, admin: false, log: testLogger(), metrics: new OperatorMetrics({ defaultMetrics: false }),
    leaderElection: { leaseName: 'chaperone-operator', leaseDurationSeconds: 4, renewIntervalMs: 500, retryIntervalMs: 300 },
  });
});

after(async () => {
  await op?.stop();
  for (const d of manifests(opNs ?? '').reverse()) if (d.kind.startsWith('Cluster')) await cp.request('admin', 'DELETE', pathOf(d));
  if (cp.owned) await cp.stop();
});

describe('operator RBAC (operator/rbac/operator.yaml)', () => {
  it('leads, reads issuer discovery, compiles, applies and deletes with only these permissions', async () => {
    await eventually(() => Promise.resolve(op?.isLeader() ? true : undefined), { what: 'the ServiceAccount operator leads (Lease get/create/update)' });
    assert.equal(op?.compileEnv.serviceAccountIssuer, cp.issuer, 'discovery readable');
    await apply(cp, secretPath(ns, 'r1-db'), secret(ns, 'r1-db', { username: 'agent', password: 'synthetic-password-r' }));
    await apply(cp, identityPath(ns, 'r1'), pgIdentity(ns, 'r1'));
    await waitReady(cp, ns, 'r1');
    assert.ok(await getConfigMap(cp, ns, configMapNameFor('r1')));
    await cp.request('admin', 'DELETE', identityPath(ns, 'r1'));
    await eventually(async () => ((await getConfigMap(cp, ns, configMapNameFor('r1'))) === undefined ? true : undefined), { what: 'ConfigMap deleted by the operator' });
    const forbidden = op?.metrics ? await op.metrics.text() : '';
    assert.doesNotMatch(forbidden, /chaperone_operator_reconcile_total\{controller="agentidentity",result="error"\} [1-9]/, 'no reconcile failed (e.g. 403)');
  });
});
