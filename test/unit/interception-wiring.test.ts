// The webhook wiring of transparent interception: the init container goes first, the pod validates, the patch is a fixpoint, explicit removes it again.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { desiredPod } from '../../operator/webhooks/pod-mutate/build.ts';
import { validatePod } from '../../operator/webhooks/pod-validate.ts';
import { agentPod, readyIdentity, GUARDED } from '../../operator/webhooks/testdata/pods.ts';
import { jsonPatch } from '../../operator/webhooks/pod-mutate/patch.ts';
it('a transparent pod: init first, validates, fixpoint', () => {
  const id = readyIdentity({ interception: { mode: 'transparent', egress: { policy: 'deny-by-default', allow: [{ cidr: '10.0.0.0/8', ports: [443] }] } } });
  const pod = agentPod({ securityContext: { runAsUser: 1000 }, containers: [{ name: 'agent', image: 'x', securityContext: { allowPrivilegeEscalation: false } }] });
  const d = desiredPod(pod, id, 'chaperone-coding-agent');
  assert.deepEqual(d.spec!.initContainers!.map((c) => c.name), ['chaperone-init-network', 'chaperone-sidecar']);
  assert.equal(d.spec!.initContainers![0]!.env, undefined);
  assert.deepEqual(validatePod(d, GUARDED, true), { allowed: true });
  assert.deepEqual(jsonPatch(d, desiredPod(d, id, 'chaperone-coding-agent')), []);
  const e = desiredPod(d, readyIdentity(), 'chaperone-coding-agent');
  assert.deepEqual(e.spec!.initContainers!.map((c) => c.name), ['chaperone-sidecar']);
});
