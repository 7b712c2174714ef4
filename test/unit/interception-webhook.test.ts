// The transparent-interception init container the pod webhook adds, and the pods it must refuse because they would bypass the rules (pure).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { desiredPod } from '../../operator/webhooks/pod-mutate/build.ts';
import {
  INTERCEPTION_CONTAINER_NAME,
  interceptionArgs,
  interceptionInitContainer,
  interceptionRefusal,
  isInterceptionInit,
  placeInterception,
} from '../../operator/webhooks/pod-mutate/interception.ts';
import { CONFIG_DIR, CONFIG_FILE, SIDECAR_CONTAINER_NAME, SIDECAR_UID, VOLUME_CONFIG } from '../../operator/webhooks/pod-mutate/layout.ts';
import { agentPod, readyIdentity } from '../../operator/webhooks/testdata/pods.ts';
import { DEFAULT_SIDECAR_UID } from '../../sidecar/interception/init.ts';
import { parseInitArgs } from '../../sidecar/interception/init.ts';
import type { AgentIdentity } from '../../operator/api/types.ts';

const transparent = (egress?: NonNullable<AgentIdentity['spec']['interception']>['egress']): AgentIdentity =>
  readyIdentity({ interception: { mode: 'transparent', ...(egress ? { egress } : {}) } });

describe('interceptionInitContainer', () => {
  it('is absent for explicit interception', () => {
    assert.equal(interceptionInitContainer(readyIdentity()), undefined);
    assert.equal(interceptionInitContainer(readyIdentity({ interception: { mode: 'explicit' } })), undefined);
  });
  it('runs init-network from the sidecar image as UID 0 with NET_ADMIN and NET_RAW only, mounting the config', () => {
    const c = interceptionInitContainer(transparent(), { image: 'example.com/chaperone-sidecar:1' });
    assert.deepEqual(c, {
      name: INTERCEPTION_CONTAINER_NAME,
      image: 'example.com/chaperone-sidecar:1',
      command: ['chaperone-sidecar'],
      args: ['init-network', '--config', CONFIG_FILE, '--uid', String(SIDECAR_UID)],
      resources: { requests: { cpu: '10m', memory: '48Mi' }, limits: { cpu: '500m', memory: '128Mi' } },
      securityContext: {
        runAsUser: 0,
        runAsGroup: 0,
        runAsNonRoot: false,
        privileged: false,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      },
      volumeMounts: [{ name: VOLUME_CONFIG, mountPath: CONFIG_DIR, readOnly: true }],
      terminationMessagePolicy: 'FallbackToLogsOnError',
    });
  });
  it("uses the identity's sidecar image and pull policy", () => {
    const c = interceptionInitContainer(readyIdentity({ interception: { mode: 'transparent' }, sidecar: { image: 'x/y:2', imagePullPolicy: 'Always' } }));
    assert.deepEqual([c?.image, c?.imagePullPolicy], ['x/y:2', 'Always']);
  });
  it('passes deny-by-default, --no-dns and the allow list as flags the sidecar CLI accepts', () => {
    const id = transparent({ policy: 'deny-by-default', allowDNS: false, allow: [{ cidr: '10.0.0.0/8', ports: [443, 80] }, { cidr: 'fd00::/8' }] });
    const args = interceptionArgs(id);
    assert.deepEqual(args.slice(5), ['--egress', 'deny-by-default', '--no-dns', '--allow', '10.0.0.0/8:80,443', '--allow', 'fd00::/8']);
    const parsed = parseInitArgs(args.slice(1), {});
    assert.ok(!('error' in parsed), JSON.stringify(parsed));
    assert.deepEqual([parsed.egressPolicy, parsed.noDns, parsed.allow], ['deny-by-default', true, [{ cidr: '10.0.0.0/8', ports: [80, 443] }, { cidr: 'fd00::/8', ports: [] }]]);
  });
  it('egress allow adds no egress flags', () => assert.deepEqual(interceptionArgs(transparent({ policy: 'allow' })).length, 5));
  it("the operator's sidecar UID is the init's default", () => assert.equal(SIDECAR_UID, DEFAULT_SIDECAR_UID));
});

describe('placeInterception', () => {
  it('goes first, ahead of the native sidecar, and a second pass changes nothing', () => {
    const id = transparent();
    const pod = desiredPod(agentPod({ initContainers: [{ name: 'setup', image: 'x', securityContext: { runAsUser: 1000 } }] }), id, 'chaperone-coding-agent');
    placeInterception(pod.spec!, interceptionInitContainer(id));
    assert.deepEqual(pod.spec!.initContainers!.map((c) => c.name), [INTERCEPTION_CONTAINER_NAME, SIDECAR_CONTAINER_NAME, 'setup']);
    const again = structuredClone(pod);
    placeInterception(again.spec!, interceptionInitContainer(id));
    assert.deepEqual(again, pod);
    assert.ok(pod.spec!.volumes!.some((v) => v.name === VOLUME_CONFIG), 'the config volume the init container mounts exists');
  });
  it('is removed when the identity goes back to explicit', () => {
    const spec: { initContainers?: V1Container[] } = { initContainers: [interceptionInitContainer(transparent())!] };
    placeInterception(spec, undefined);
    assert.equal(spec.initContainers, undefined);
  });
});

describe('isInterceptionInit (pod-validate exemption)', () => {
  const id = transparent();
  const ours = (): V1Container => structuredClone(interceptionInitContainer(id)!);
  it('accepts ours, with fields the API server defaults', () => assert.ok(isInterceptionInit({ ...ours(), terminationMessagePath: '/dev/termination-log', imagePullPolicy: 'Always' }, id)));
  for (const [name, edit] of [
    ['another image', (c: V1Container) => void (c.image = 'evil/agent')],
    ['other args', (c: V1Container) => void c.args!.push('--egress', 'allow')],
    ['an extra capability', (c: V1Container) => void c.securityContext!.capabilities!.add!.push('SYS_ADMIN')],
    ['privileged', (c: V1Container) => void (c.securityContext!.privileged = true)],
    ['an extra mount', (c: V1Container) => void c.volumeMounts!.push({ name: 'work', mountPath: '/work' })],
    ['a restartPolicy (long-running)', (c: V1Container) => void (c.restartPolicy = 'Always')],
  ] as const) {
    it(`refuses a look-alike with ${name}`, () => {
      const c = ours();
      edit(c);
      assert.equal(isInterceptionInit(c, id), false);
    });
  }
  it('refuses it for an explicit identity', () => assert.equal(isInterceptionInit(ours(), readyIdentity()), false));
});

describe('interceptionRefusal: agents must not be able to become the sidecar UID', () => {
  const pod = (sc: V1Container['securityContext'], podSc?: NonNullable<V1Pod['spec']>['securityContext']): V1Pod => ({
    spec: { ...(podSc ? { securityContext: podSc } : {}), containers: [{ name: 'agent', image: 'x', ...(sc ? { securityContext: sc } : {}) }] },
  });
  const good = { runAsUser: 1000, allowPrivilegeEscalation: false };
  it('accepts an explicit non-root UID without privilege escalation', () => assert.equal(interceptionRefusal(pod(good)), undefined));
  it('accepts the pod-level runAsUser', () => assert.equal(interceptionRefusal(pod({ allowPrivilegeEscalation: false }, { runAsUser: 2000 })), undefined));
  for (const [name, p, want] of [
    ['no runAsUser (the image USER may be 65532)', pod({ allowPrivilegeEscalation: false }), /sets no runAsUser/],
    ["the sidecar's UID", pod({ ...good, runAsUser: SIDECAR_UID }), /runs as UID 65532, which is the sidecar's UID/],
    ['root', pod({ ...good, runAsUser: 0 }), /runs as UID 0, which can switch to/],
    ['privilege escalation left on', pod({ runAsUser: 1000 }), /may gain privileges/],
    ['NET_ADMIN added', pod({ ...good, capabilities: { add: ['NET_ADMIN'] } }), /adds NET_ADMIN/],
    ['CAP_NET_RAW added', pod({ ...good, capabilities: { add: ['CAP_NET_RAW'] } }), /adds CAP_NET_RAW/],
    ['privileged', pod({ ...good, privileged: true }), /is privileged/],
  ] as const) {
    it(`refuses ${name}`, () => assert.match(interceptionRefusal(p) ?? '', want));
  }
  it('checks ephemeral (debug) containers too, never exempt by name', () => {
    for (const name of ['dbg', SIDECAR_CONTAINER_NAME]) {
      const p: V1Pod = { spec: { containers: [{ name: 'agent', image: 'x', securityContext: good }], ephemeralContainers: [{ name, image: 'busybox', securityContext: { runAsUser: SIDECAR_UID } }] } };
      assert.match(interceptionRefusal(p) ?? '', new RegExp(`container ${name} runs as UID 65532`));
    }
  });
  it('ignores the sidecar and the init container themselves', () => {
    const p: V1Pod = { spec: { initContainers: [interceptionInitContainer(transparent())!, { name: SIDECAR_CONTAINER_NAME, image: 'x' }], containers: [{ name: 'agent', image: 'x', securityContext: good }] } };
    assert.equal(interceptionRefusal(p), undefined);
  });
});
