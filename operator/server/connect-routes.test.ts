// exec/attach into Chaperone's containers: the pure decision (which container an exec lands in, which pods are Chaperone's) and the thin route.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Pod } from '@kubernetes/client-node';
import { connectDecision, connectRoutes, isChaperonePod, resolveTarget } from './connect-routes.ts';
import type { AdmissionOutcome, AdmissionRequest } from './admission.ts';
import { agentPod, NS, readyIdentity } from '../webhooks/testdata/pods.ts';
import { desiredPod } from '../webhooks/pod-mutate/build.ts';

const id = readyIdentity();
const tp = readyIdentity({ interception: { mode: 'transparent' } }, 'tp');

function injected(): V1Pod {
  const p = desiredPod(agentPod(), id, 'cm');
  p.metadata = { ...p.metadata, name: 'agent-0', namespace: NS };
  return p;
}

describe('resolveTarget', () => {
  it('a named container is the target, whatever it is', () => {
    assert.equal(resolveTarget(injected(), 'chaperone-sidecar'), 'chaperone-sidecar');
  });
  it('none named: the only regular container (never an init container), else none (the API server refuses)', () => {
    assert.equal(resolveTarget(injected(), ''), 'agent');
    const two = injected();
    two.spec!.containers.push({ name: 'helper', image: 'busybox' });
    assert.equal(resolveTarget(two, ''), undefined);
  });
  it('ignores the default-container annotation (kubectl applies it client-side and sends the name)', () => {
    const p = injected();
    p.metadata!.annotations = { ...p.metadata!.annotations, 'kubectl.kubernetes.io/default-container': 'chaperone-sidecar' };
    assert.equal(resolveTarget(p, ''), 'agent');
  });
});

describe('isChaperonePod', () => {
  it('the label, the injected annotation or the native sidecar each make it one', () => {
    assert.equal(isChaperonePod(injected()), true);
    assert.equal(isChaperonePod(agentPod()), true);
    const annotated = agentPod({}, {});
    annotated.metadata!.annotations = { 'chaperone.dev/injected': '{}' };
    assert.equal(isChaperonePod(annotated), true);
    const unlabelled = injected();
    unlabelled.metadata!.labels = {};
    unlabelled.metadata!.annotations = {};
    assert.equal(isChaperonePod(unlabelled), true, 'the native sidecar alone');
    assert.equal(isChaperonePod(agentPod({}, {})), false);
  });
});

describe('connectDecision', () => {
  it('refuses exec and attach into the sidecar, naming the rule, the pod and what to do instead', () => {
    for (const sub of ['exec', 'attach']) {
      const v = connectDecision(injected(), 'chaperone-sidecar', sub);
      assert.equal(v.allowed, false);
      assert.equal(v.outcome, 'protected-container');
      assert.match(v.allowed ? '' : v.message, new RegExp(`^rule protected-container: ${sub} into container chaperone-sidecar of pod ${NS}/agent-0 is refused: it holds the upstream credentials.*kubectl logs -c chaperone-sidecar`));
    }
  });
  it('refuses the iptables init container of a transparent pod', () => {
    const p = desiredPod(agentPod({}, { 'chaperone.dev/identity': 'tp' }), tp, 'cm');
    assert.ok(p.spec?.initContainers?.some((c) => c.name === 'chaperone-init-network'));
    const v = connectDecision(p, 'chaperone-init-network', 'exec');
    assert.equal(v.allowed, false);
    assert.equal(v.container, 'chaperone-init-network');
  });
  it('allows the agent container, named or by default', () => {
    assert.deepEqual(connectDecision(injected(), 'agent', 'exec'), { allowed: true, outcome: 'other-container', container: 'agent' });
    assert.deepEqual(connectDecision(injected(), '', 'exec'), { allowed: true, outcome: 'other-container', container: 'agent' });
  });
  it('a pod that is not Chaperone\'s may have a container of that name', () => {
    const p = agentPod({}, {});
    p.spec!.containers.push({ name: 'chaperone-sidecar', image: 'someone/else' });
    assert.equal(connectDecision(p, 'chaperone-sidecar', 'exec').outcome, 'not-chaperone');
  });
  it('a pod that does not exist, or no target: allowed (the API server refuses next)', () => {
    assert.equal(connectDecision(undefined, 'chaperone-sidecar', 'exec').outcome, 'pod-not-found');
    const two = injected();
    two.spec!.containers.push({ name: 'helper', image: 'busybox' });
    assert.equal(connectDecision(two, '', 'exec').outcome, 'no-target');
  });
});

describe('/validate/pods/connect', () => {
  const gets: string[] = [];
  const pods = new Map<string, V1Pod>([[`${NS}/agent-0`, injected()]]);
  const [route] = connectRoutes({
    operatorNamespace: 'chaperone-system',
    getPod: (ns, name) => {
      gets.push(`${ns}/${name}`);
      if (name === 'boom') return Promise.reject(new Error('API server unreachable'));
      return Promise.resolve(pods.get(`${ns}/${name}`));
    },
  });
  function req(o: Partial<AdmissionRequest> = {}): AdmissionRequest {
    return {
      uid: 'u', kind: { group: '', version: 'v1', kind: 'PodExecOptions' }, resource: { group: '', version: 'v1', resource: 'pods' }, subResource: 'exec',
      operation: 'CONNECT', userInfo: { username: 'alice' }, namespace: NS, name: 'agent-0', object: { kind: 'PodExecOptions', apiVersion: 'v1', container: 'chaperone-sidecar', command: ['sh'] }, ...o,
    };
  }
  const run = (r: AdmissionRequest): Promise<AdmissionOutcome> => route!.handle(r) as Promise<AdmissionOutcome>;

  it('reads the pod named by the request and refuses the sidecar with 403', async () => {
    gets.length = 0;
    const r = await run(req());
    assert.deepEqual(gets, [`${NS}/agent-0`]);
    assert.equal(r.response.allowed, false);
    assert.equal(r.response.status?.code, 403);
    assert.match(r.response.status?.message ?? '', /^chaperone: rule protected-container: exec into container chaperone-sidecar/);
    const attach = await run(req({ subResource: 'attach', kind: { group: '', version: 'v1', kind: 'PodAttachOptions' }, object: { container: 'chaperone-sidecar', stdin: true } }));
    assert.match(attach.response.status?.message ?? '', /attach into container chaperone-sidecar/);
  });
  it('allows the agent container and an options object without a container', async () => {
    assert.equal((await run(req({ object: { container: 'agent' } }))).response.allowed, true);
    assert.equal((await run(req({ object: {} }))).outcome, 'other-container');
  });
  it('a failed read throws (the server refuses: fail closed)', async () => {
    await assert.rejects(run(req({ name: 'boom' })), /unreachable/);
  });
  it('ignores other operations and subresources; leaves excluded namespaces alone without reading', async () => {
    gets.length = 0;
    assert.equal((await run(req({ subResource: 'portforward' }))).outcome, 'ignored');
    assert.equal((await run(req({ operation: 'CREATE' }))).outcome, 'ignored');
    assert.equal((await run(req({ namespace: 'kube-system' }))).outcome, 'excluded-namespace');
    assert.equal((await run(req({ namespace: 'chaperone-system' }))).outcome, 'excluded-namespace');
    assert.deepEqual(gets, []);
  });
  it('refuses a request without a pod name with 400', async () => {
    assert.equal((await run(req({ name: '' }))).response.status?.code, 400);
  });
});
