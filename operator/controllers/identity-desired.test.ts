// The identity controller's pure decisions: ConfigMap name and content, reference messages, status (Ready/Invalid pair, last good config kept), no-op detection, fan-out, pod counting.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentIdentity, MaskingPolicy } from '../api/types.ts';
import { compileIdentity, selectsIdentity, type MountSpec } from '../compile/index.ts';
import { ANNOTATION_INJECTED, CONFIG_KEY, KUBECONFIG_KEY, LABEL_IDENTITY } from '../webhooks/pod-mutate/layout.ts';
import {
  checkReferences, configMapCurrent, configMapNameFor, countGuardedPods, desiredConfigMap, desiredStatus, identitiesSelectedBy, statusUnchanged,
} from './identity-desired.ts';

function identity(name: string, labels: Record<string, string> = {}, kube = false): AgentIdentity {
  return {
    apiVersion: 'chaperone.dev/v1alpha1', kind: 'AgentIdentity', metadata: { name, namespace: 'ns', uid: `uid-${name}`, generation: 3, labels },
    spec: {
      connections: [
        { name: 'db', protocol: 'postgres', upstream: { host: 'db', port: 5432 }, database: 'app', localPort: 5432, tls: { mode: 'disable' }, credential: { secretRef: { name: 'db-cred' } } },
        ...(kube ? [{ name: 'cluster', protocol: 'kubernetes' as const, localPort: 6443, credential: { serviceAccountName: 'default' } }] : []),
      ],
    },
  };
}

function compiled(id: AgentIdentity): Extract<ReturnType<typeof compileIdentity>, { ok: true }> {
  const r = compileIdentity({ identity: id, maskingPolicies: [], approvalRules: [] });
  assert.ok(r.ok, JSON.stringify(r));
  return r;
}

describe('desired ConfigMap', () => {
  it('is chaperone-<identity>, owned by the identity (controller), labelled, with the compiler text byte for byte', () => {
    const id = identity('alpha');
    const r = compiled(id);
    const cm = desiredConfigMap(id, r);
    assert.equal(cm.metadata.name, 'chaperone-alpha');
    assert.equal(cm.data[CONFIG_KEY], r.text);
    assert.equal(cm.data[KUBECONFIG_KEY], undefined, 'no kubeconfig without a kubernetes connection');
    assert.deepEqual(cm.metadata.ownerReferences[0], { apiVersion: 'chaperone.dev/v1alpha1', kind: 'AgentIdentity', name: 'alpha', uid: 'uid-alpha', controller: true, blockOwnerDeletion: true });
    assert.equal(cm.metadata.labels[LABEL_IDENTITY], 'alpha');
  });

  it('gets a kubeconfig for the agent when the identity has a kubernetes connection (loopback port, token file, no credential)', () => {
    const id = identity('kube', {}, true);
    const cm = desiredConfigMap(id, compiled(id));
    assert.match(cm.data[KUBECONFIG_KEY] ?? '', /server: https:\/\/127\.0\.0\.1:6443/);
    assert.match(cm.data[KUBECONFIG_KEY] ?? '', /tokenFile: \/var\/run\/secrets\/chaperone\/token/);
  });

  it('a name too long for the prefix is cut and suffixed with a digest (≤ 253, stable, distinct)', () => {
    const a = configMapNameFor('a'.repeat(253));
    const b = configMapNameFor(`${'a'.repeat(252)}b`);
    assert.ok(a.length <= 253 && b.length <= 253);
    assert.notEqual(a, b);
    assert.equal(a, configMapNameFor('a'.repeat(253)));
  });

  it('is current only when the cached hash, labels and owner all match', () => {
    const id = identity('alpha');
    const cm = desiredConfigMap(id, compiled(id));
    const cached = { metadata: { annotations: { ...cm.metadata.annotations }, labels: { ...cm.metadata.labels }, ownerReferences: [{ uid: 'uid-alpha' }] } };
    assert.equal(configMapCurrent(cached, cm), true);
    assert.equal(configMapCurrent({ metadata: { ...cached.metadata, ownerReferences: [{ uid: 'old' }] } }, cm), false);
    assert.equal(configMapCurrent(undefined, cm), false);
  });
});

describe('checkReferences', () => {
  const mounts: MountSpec[] = [
    { dir: '/r/db', source: 'secret', name: 'db-cred', keys: ['password', 'username'] },
    { dir: '/r/_masking.hmac', source: 'secret', name: 'hmac', keys: ['hmac-key'] },
    { dir: '/r/db.tls-ca', source: 'configMap', name: 'ca', keys: ['ca.crt'] },
  ];

  it('names the Secret, the key, what it is for and the keys it has', async () => {
    const keys: Record<string, string[]> = { 'secret/db-cred': ['username'], 'configMap/ca': ['ca.crt'] };
    const p = await checkReferences('ns', mounts, (s, n) => Promise.resolve(keys[`${s}/${n}`] ? new Set(keys[`${s}/${n}`]) : undefined));
    assert.deepEqual(p.map((x) => x.message), [
      'Secret ns/db-cred has no key "password" (the credentials of connection db); it has "username"',
      'Secret ns/hmac (a MaskingPolicy HMAC key) does not exist; create it in namespace ns',
    ]);
  });

  it('given every key present, finds nothing', async () => {
    const p = await checkReferences('ns', mounts, () => Promise.resolve(new Set(['password', 'username', 'hmac-key', 'ca.crt'])));
    assert.deepEqual(p, []);
  });
});

describe('desiredStatus', () => {
  const ready = { kind: 'ready' as const, configMapName: 'chaperone-alpha', hash: 'a'.repeat(64), maskingPolicies: ['m'], approvalRules: [], warnings: [] };

  it('ready: Ready True + Invalid False for the current generation, with hash, ConfigMap and pods', () => {
    const s = desiredStatus(identity('alpha'), ready, 2, new Date('2026-01-01T00:00:00Z'));
    assert.equal(s.observedGeneration, 3);
    assert.deepEqual(s.conditions?.map((c) => [c.type, c.status, c.reason, c.observedGeneration]), [['Ready', 'True', 'Compiled', 3], ['Invalid', 'False', 'Valid', 3]]);
    assert.equal(s.configHash, ready.hash);
    assert.equal(s.podsGuarded, 2);
  });

  it('invalid after ready: both conditions flip, the last good ConfigMap and hash stay, and at most 5 problems are listed', () => {
    const id = identity('alpha');
    id.status = desiredStatus(id, ready, 0, new Date('2026-01-01T00:00:00Z'));
    const problems = Array.from({ length: 7 }, (_, i) => `problem ${i}`);
    const s = desiredStatus(id, { kind: 'invalid', reason: 'MissingReference', problems }, 0, new Date('2026-01-02T00:00:00Z'));
    const readyCond = s.conditions?.find((c) => c.type === 'Ready');
    assert.equal(readyCond?.status, 'False');
    assert.equal(readyCond?.lastTransitionTime, '2026-01-02T00:00:00Z');
    assert.match(readyCond?.message ?? '', /problem 4; and 2 more$/);
    assert.equal(s.configMapName, 'chaperone-alpha');
    assert.equal(s.configHash, ready.hash);
  });

  it('recomputing the same outcome is unchanged (no status write on replays)', () => {
    const id = identity('alpha');
    id.status = desiredStatus(id, ready, 1, new Date('2026-01-01T00:00:00Z'));
    assert.equal(statusUnchanged(id.status, desiredStatus(id, ready, 1, new Date('2026-02-01T00:00:00Z'))), true);
    assert.equal(statusUnchanged(id.status, desiredStatus(id, ready, 2)), false);
  });
});

describe('fan-out and pods', () => {
  it('a policy requeues the identities its old and new selectors pick, in its namespace only', () => {
    const ids = [identity('a', { team: 'x' }), identity('b', { team: 'y' }), identity('c', { team: 'x' })];
    const mp = (team: string): MaskingPolicy => ({ apiVersion: 'chaperone.dev/v1alpha1', kind: 'MaskingPolicy', metadata: { name: 'p', namespace: 'ns' }, spec: { selector: { identitySelector: { matchLabels: { team } } } } });
    assert.deepEqual(identitiesSelectedBy([mp('x')], ids, selectsIdentity).sort(), ['ns/a', 'ns/c']);
    assert.deepEqual(identitiesSelectedBy([mp('x'), mp('y')], ids, selectsIdentity).sort(), ['ns/a', 'ns/b', 'ns/c']);
    const other = { ...mp('x'), metadata: { name: 'p', namespace: 'other' } };
    assert.deepEqual(identitiesSelectedBy([other], ids, selectsIdentity), []);
  });

  it('counts labelled, injected pods that are not being deleted', () => {
    const pod = (name: string, o: { label?: string; injected?: boolean; deleting?: boolean; ns?: string } = {}) => ({
      metadata: { name, namespace: o.ns ?? 'ns', labels: { [LABEL_IDENTITY]: o.label ?? 'alpha' }, annotations: (o.injected === false ? {} : { [ANNOTATION_INJECTED]: '{}' }) as Record<string, string>, ...(o.deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}) },
    });
    const pods = [pod('1'), pod('2'), pod('3', { injected: false }), pod('4', { deleting: true }), pod('5', { label: 'beta' }), pod('6', { ns: 'other' })];
    assert.equal(countGuardedPods(pods, 'ns', 'alpha'), 2);
  });
});
