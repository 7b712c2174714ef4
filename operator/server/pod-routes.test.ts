// The pod routes' glue: which requests they act on, the identity lookup, refusals as 403, updates that keep an old violation.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Pod } from '@kubernetes/client-node';
import { podRoutes, type IdentityLookup } from './pod-routes.ts';
import type { AdmissionOutcome, AdmissionRequest } from './admission.ts';
import { agentPod, NS, readyIdentity } from '../webhooks/testdata/pods.ts';
import { desiredPod } from '../webhooks/pod-mutate/build.ts';

const id = readyIdentity();
const tp = readyIdentity({ interception: { mode: 'transparent' } }, 'tp');
const lookup: IdentityLookup = { identity: (ns, name) => (ns === NS && name === 'coding-agent' ? id : undefined), identities: (ns) => (ns === NS ? [id] : []) };
const [mutate, validate] = podRoutes({ lookup, operatorNamespace: 'chaperone-system', build: () => ({ image: 'example.com/sidecar:2' }) });

function req(o: Partial<AdmissionRequest> & { object?: V1Pod }): AdmissionRequest {
  return { uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, operation: 'CREATE', userInfo: {}, namespace: NS, ...o };
}

function run(route: typeof mutate, r: AdmissionRequest): AdmissionOutcome {
  return route!.handle(r) as AdmissionOutcome;
}

describe('/mutate/pods', () => {
  it('injects a labelled pod with the per-identity build options', () => {
    const r = run(mutate, req({ object: agentPod() }));
    assert.equal(r.outcome, 'injected');
    const ops = JSON.parse(Buffer.from(r.response.patch ?? '', 'base64').toString()) as { path: string; value?: { image?: string }[] }[];
    assert.ok(JSON.stringify(ops).includes('example.com/sidecar:2'));
  });
  it('refuses a missing identity with 403', () => {
    const r = run(mutate, req({ object: agentPod({}, { 'chaperone.dev/identity': 'ghost' }) }));
    assert.equal(r.outcome, 'identity-not-found');
    assert.equal(r.response.status?.code, 403);
  });
  it('ignores other operations and subresources; refuses a review without a pod', () => {
    assert.equal(run(mutate, req({ operation: 'UPDATE', object: agentPod() })).outcome, 'ignored');
    assert.equal(run(mutate, req({ subResource: 'status', object: agentPod() })).outcome, 'ignored');
    assert.equal(run(mutate, req({})).response.status?.code, 400);
  });
});

describe('/validate/pods', () => {
  const secretMount = (): V1Pod => {
    const p = agentPod({ volumes: [{ name: 'creds', secret: { secretName: 'orders-db-agent' } }] });
    p.spec!.containers[0]!.volumeMounts = [{ name: 'creds', mountPath: '/creds' }];
    return p;
  };
  it('refuses a labelled pod without the sidecar, naming the rule', () => {
    const r = run(validate, req({ object: agentPod() }));
    assert.equal(r.outcome, 'missing-sidecar');
    assert.match(r.response.status?.message ?? '', /^chaperone: rule missing-sidecar/);
  });
  it('an update that adds a violation is refused; one that keeps an existing violation is allowed with a warning', () => {
    const old = agentPod({}, {});
    assert.equal(run(validate, req({ operation: 'UPDATE', object: agentPod(), oldObject: old })).outcome, 'missing-sidecar');
    const kept = run(validate, req({ operation: 'UPDATE', object: agentPod(), oldObject: agentPod() }));
    assert.equal(kept.outcome, 'preexisting-missing-sidecar');
    assert.equal(kept.response.allowed, true);
    assert.match(kept.response.warnings?.[0] ?? '', /already breaks/);
  });
  it('checks ephemeral container updates (an ephemeral container may not mount a guarded Secret)', () => {
    const p = secretMount();
    p.spec!.containers[0]!.volumeMounts = [];
    p.metadata!.labels = {};
    p.spec!.ephemeralContainers = [{ name: 'debug', image: 'busybox', volumeMounts: [{ name: 'creds', mountPath: '/creds' }] }];
    const r = run(validate, req({ operation: 'UPDATE', subResource: 'ephemeralcontainers', object: p, oldObject: agentPod({}, {}) }));
    assert.equal(r.outcome, 'guarded-secret-volume');
  });
  it('an old violation does not cover a new one: a debug container mounting the sidecar\'s token is refused on a pod that already broke a rule', () => {
    const old = desiredPod(secretMount(), id, 'cm');
    const now = structuredClone(old);
    now.spec!.ephemeralContainers = [{ name: 'debug', image: 'busybox', volumeMounts: [{ name: 'chaperone-api-token', mountPath: '/t' }] }];
    const r = run(validate, req({ operation: 'UPDATE', subResource: 'ephemeralcontainers', object: now, oldObject: old }));
    assert.equal(r.outcome, 'sidecar-volume');
    assert.equal(r.response.allowed, false);
    const kept = run(validate, req({ operation: 'UPDATE', object: structuredClone(old), oldObject: old }));
    assert.equal(kept.outcome, 'preexisting-guarded-secret-volume');
  });
  it('refuses an update that swaps the sidecar image or drops the identity label, even on a pod that already broke a rule', () => {
    const old = desiredPod(secretMount(), id, 'cm');
    const image = structuredClone(old);
    image.spec!.initContainers![0]!.image = 'evil/sidecar:1';
    const r = run(validate, req({ operation: 'UPDATE', object: image, oldObject: old }));
    assert.equal(r.outcome, 'sidecar-changed');
    assert.equal(r.response.status?.code, 403);
    const relabel = structuredClone(old);
    relabel.metadata!.labels = {};
    assert.equal(run(validate, req({ operation: 'UPDATE', object: relabel, oldObject: old })).outcome, 'identity-label-changed');
  });
  it('refuses an UPDATE without the old pod', () => {
    assert.equal(run(validate, req({ operation: 'UPDATE', object: desiredPod(agentPod(), id, 'cm') })).response.status?.code, 400);
  });
  it("applies the transparent identity's interception rules to debug containers", () => {
    const tpLookup: IdentityLookup = { identity: () => tp, identities: () => [tp] };
    const [, tpValidate] = podRoutes({ lookup: tpLookup, operatorNamespace: 'chaperone-system' });
    const pod = agentPod({}, { 'chaperone.dev/identity': 'tp' });
    pod.spec!.containers[0]!.securityContext = { runAsUser: 1000, allowPrivilegeEscalation: false };
    const old = desiredPod(pod, tp, 'cm');
    assert.equal(run(tpValidate, req({ object: old })).outcome, 'allowed');
    const now = structuredClone(old);
    now.spec!.ephemeralContainers = [{ name: 'debug', image: 'busybox', securityContext: { runAsUser: 65532 } }];
    const r = run(tpValidate, req({ operation: 'UPDATE', subResource: 'ephemeralcontainers', object: now, oldObject: old }));
    assert.equal(r.outcome, 'interception-bypass');
    assert.match(r.response.status?.message ?? '', /AgentIdentity tp uses transparent interception.*container debug runs as UID 65532/);
  });
  it('leaves the operator namespace and kube-system alone', () => {
    assert.equal(run(validate, req({ namespace: 'chaperone-system', object: agentPod() })).outcome, 'excluded-namespace');
    assert.equal(run(validate, req({ namespace: 'kube-system', object: agentPod() })).outcome, 'excluded-namespace');
  });
});
