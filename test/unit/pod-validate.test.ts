// validatePod: each escape hatch is refused with its rule, the container and a fix; an injected pod passes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Pod } from '@kubernetes/client-node';
import { guardedSecrets, podViolations, updateViolations, validatePod, type PodRule } from '../../operator/webhooks/pod-validate.ts';
import { desiredPod } from '../../operator/webhooks/pod-mutate/build.ts';
import { SIDECAR_CONTAINER_NAME } from '../../operator/webhooks/pod-mutate/layout.ts';
import { INTERCEPTION_CONTAINER_NAME, interceptionInitContainer } from '../../operator/webhooks/pod-mutate/interception.ts';
import { agentPod, barePod, GUARDED, readyIdentity } from '../../operator/webhooks/testdata/pods.ts';

function injected(edit: (p: V1Pod) => void = () => undefined, nativeSidecars = true): V1Pod {
  const p = desiredPod(agentPod(), readyIdentity(), 'cm', { nativeSidecars });
  edit(p);
  return p;
}

function agent(p: V1Pod): NonNullable<V1Pod['spec']>['containers'][number] {
  return p.spec!.containers.find((c) => c.name === 'agent')!;
}

describe('validatePod allows', () => {
  it('an injected pod (native sidecar)', () => assert.deepEqual(validatePod(injected(), GUARDED, true), { allowed: true }));
  it('an injected pod (plain sidecar)', () => assert.deepEqual(validatePod(injected(undefined, false), GUARDED, true), { allowed: true }));
  it('an unlabelled pod that touches no guarded Secret, even with hostNetwork and the API token', () => {
    assert.deepEqual(validatePod(agentPod({ hostNetwork: true }, {}), GUARDED, false), { allowed: true });
  });
  it('an agent using a Secret nobody guards', () => {
    const p = injected((x) => agent(x).env!.push({ name: 'OTHER', valueFrom: { secretKeyRef: { name: 'unrelated', key: 'k' } } }));
    assert.deepEqual(validatePod(p, GUARDED, true), { allowed: true });
  });
});

const REFUSALS: { name: string; pod: () => V1Pod; labelled?: boolean; rule: PodRule; container?: string; message: RegExp }[] = [
  { name: 'hostNetwork in a labelled pod', pod: () => injected((p) => (p.spec!.hostNetwork = true)), rule: 'host-network', message: /hostNetwork.*remove it/ },
  { name: 'hostPID in a labelled pod', pod: () => injected((p) => (p.spec!.hostPID = true)), rule: 'host-pid', message: /hostPID/ },
  { name: 'hostIPC in a labelled pod', pod: () => injected((p) => (p.spec!.hostIPC = true)), rule: 'host-ipc', message: /hostIPC/ },
  { name: 'shareProcessNamespace in a labelled pod', pod: () => injected((p) => (p.spec!.shareProcessNamespace = true)), rule: 'share-process-namespace', message: /\/proc/ },
  { name: 'a labelled pod without the sidecar', pod: () => agentPod(), rule: 'missing-sidecar', message: /no chaperone-sidecar container.*operator is up/ },
  {
    name: 'a labelled pod whose "sidecar" is an ordinary init container (no restartPolicy Always)',
    pod: () => ({ ...barePod(), spec: { initContainers: [{ name: SIDECAR_CONTAINER_NAME, image: 'x' }], containers: [{ name: 'agent', image: 'a' }] } }),
    rule: 'missing-sidecar',
    message: /missing-sidecar/,
  },
  {
    name: 'an agent reading a guarded Secret through env secretKeyRef',
    pod: () => injected((p) => agent(p).env!.push({ name: 'PGPASSWORD', valueFrom: { secretKeyRef: { name: 'orders-db-agent', key: 'password' } } })),
    rule: 'guarded-secret-env',
    container: 'agent',
    message: /container agent reads Secret orders-db-agent through env PGPASSWORD \(secretKeyRef\).*remove the reference/,
  },
  {
    name: 'an agent reading a guarded Secret through envFrom.secretRef',
    pod: () => injected((p) => (agent(p).envFrom = [{ secretRef: { name: 'github-token' } }])),
    rule: 'guarded-secret-env',
    container: 'agent',
    message: /Secret github-token through envFrom.secretRef/,
  },
  {
    name: 'an agent mounting a guarded Secret volume',
    pod: () => injected((p) => {
      p.spec!.volumes!.push({ name: 'creds', secret: { secretName: 'orders-db-agent' } });
      agent(p).volumeMounts!.push({ name: 'creds', mountPath: '/creds' });
    }),
    rule: 'guarded-secret-volume',
    container: 'agent',
    message: /mounts volume creds holding Secret orders-db-agent/,
  },
  {
    name: 'an agent mounting a guarded Secret through a projected volume',
    pod: () => injected((p) => {
      p.spec!.volumes!.push({ name: 'bundle', projected: { sources: [{ configMap: { name: 'x' } }, { secret: { name: 'github-token' } }] } });
      agent(p).volumeMounts!.push({ name: 'bundle', mountPath: '/bundle' });
    }),
    rule: 'guarded-secret-volume',
    container: 'agent',
    message: /Secret github-token/,
  },
  {
    name: "an agent mounting the sidecar's config volume",
    pod: () => injected((p) => agent(p).volumeMounts!.push({ name: 'chaperone-config', mountPath: '/peek' })),
    rule: 'sidecar-volume',
    container: 'agent',
    message: /volume chaperone-config, which belongs to the chaperone sidecar/,
  },
  {
    name: 'an agent mounting the API token',
    pod: () => injected((p) => {
      p.spec!.volumes!.push({ name: 'kube-api-access-abcde', projected: { sources: [{ serviceAccountToken: { path: 'token' } }] } });
      agent(p).volumeMounts!.push({ name: 'kube-api-access-abcde', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' });
    }),
    rule: 'api-token',
    container: 'agent',
    message: /Kubernetes API token.*automountServiceAccountToken: false/,
  },
  {
    name: 'an ephemeral container mounting a guarded Secret (kubectl debug)',
    pod: () => injected((p) => {
      p.spec!.volumes!.push({ name: 'creds', secret: { secretName: 'orders-db-agent' } });
      p.spec!.ephemeralContainers = [{ name: 'debugger', image: 'busybox', volumeMounts: [{ name: 'creds', mountPath: '/c' }] }];
    }),
    rule: 'guarded-secret-volume',
    container: 'debugger',
    message: /ephemeral container debugger mounts volume creds/,
  },
  {
    name: 'an ephemeral container named like the sidecar is not exempt',
    pod: () => injected((p) => (p.spec!.ephemeralContainers = [{ name: SIDECAR_CONTAINER_NAME, image: 'busybox', volumeMounts: [{ name: 'chaperone-config', mountPath: '/c' }] }])),
    rule: 'sidecar-volume',
    container: SIDECAR_CONTAINER_NAME,
    message: /ephemeral container chaperone-sidecar/,
  },
  {
    name: 'an unlabelled pod reading a guarded Secret (other pods cannot take the credential either)',
    pod: () => agentPod({ containers: [{ name: 'thief', image: 't', env: [{ name: 'P', valueFrom: { secretKeyRef: { name: 'orders-db-agent', key: 'password' } } }] }] }, {}),
    labelled: false,
    rule: 'guarded-secret-env',
    container: 'thief',
    message: /container thief reads Secret orders-db-agent/,
  },
  {
    name: 'an unlabelled pod with a container named like the sidecar is not exempt',
    pod: () => agentPod({ containers: [{ name: SIDECAR_CONTAINER_NAME, image: 't', envFrom: [{ secretRef: { name: 'orders-db-agent' } }] }] }, {}),
    labelled: false,
    rule: 'guarded-secret-env',
    container: SIDECAR_CONTAINER_NAME,
    message: /envFrom/,
  },
  {
    name: 'a hostPath volume in a labelled pod (the kubelet keeps the sidecar\'s Secrets and token under /var/lib/kubelet/pods)',
    pod: () => injected((p) => p.spec!.volumes!.push({ name: 'node', hostPath: { path: '/var/lib/kubelet/pods' } })),
    rule: 'host-path',
    message: /volume node is a hostPath \(\/var\/lib\/kubelet\/pods\).*use an emptyDir/,
  },
  {
    name: 'a gitRepo volume in a labelled pod (cloned on the node as root)',
    pod: () => injected((p) => p.spec!.volumes!.push({ name: 'src', gitRepo: { repository: 'https://example.com/r.git' } })),
    rule: 'host-path',
    message: /volume src is a gitRepo volume.*init container into an emptyDir/,
  },
  {
    name: 'an agent mounting a ServiceAccount token projected with the API server\'s audience',
    pod: () => injected((p) => {
      p.spec!.volumes!.push({ name: 'tok', projected: { sources: [{ serviceAccountToken: { audience: 'https://kubernetes.default.svc.cluster.local', path: 'token' } }] } });
      agent(p).volumeMounts!.push({ name: 'tok', mountPath: '/tok' });
    }),
    rule: 'api-token',
    container: 'agent',
    message: /volume tok, a ServiceAccount token for audience https:\/\/kubernetes.default.svc.cluster.local.*only the chaperone-audience token/,
  },
  {
    name: 'an init container mounting a ServiceAccount token for another audience (e.g. a cloud STS)',
    pod: () => injected((p) => {
      p.spec!.volumes!.push({ name: 'aws', projected: { sources: [{ serviceAccountToken: { audience: 'sts.amazonaws.com', path: 'token' } }] } });
      p.spec!.initContainers!.push({ name: 'setup', image: 'x', volumeMounts: [{ name: 'aws', mountPath: '/aws' }] });
    }),
    rule: 'api-token',
    container: 'setup',
    message: /init container setup mounts volume aws, a ServiceAccount token for audience sts.amazonaws.com/,
  },
  {
    name: 'an agent mounting a Secrets Store CSI volume',
    pod: () => injected((p) => {
      p.spec!.volumes!.push({ name: 'vault', csi: { driver: 'secrets-store.csi.k8s.io', readOnly: true, volumeAttributes: { secretProviderClass: 'db' } } });
      agent(p).volumeMounts!.push({ name: 'vault', mountPath: '/mnt/secrets' });
    }),
    rule: 'secrets-store-volume',
    container: 'agent',
    message: /Secrets Store CSI driver.*give the credential to the AgentIdentity/,
  },
  {
    name: 'a privileged agent container (explicit mode too)',
    pod: () => injected((p) => (agent(p).securityContext = { privileged: true })),
    rule: 'privileged',
    container: 'agent',
    message: /container agent is privileged.*remove securityContext.privileged/,
  },
  {
    name: 'an agent adding SYS_PTRACE / DAC_READ_SEARCH / NET_ADMIN',
    pod: () => injected((p) => (agent(p).securityContext = { capabilities: { add: ['CHOWN', 'SYS_PTRACE', 'CAP_DAC_READ_SEARCH', 'net_admin'] } })),
    rule: 'capability',
    container: 'agent',
    message: /adds SYS_PTRACE, CAP_DAC_READ_SEARCH, net_admin/,
  },
  {
    name: 'an agent adding ALL capabilities',
    pod: () => injected((p) => (agent(p).securityContext = { capabilities: { add: ['ALL'] } })),
    rule: 'capability',
    container: 'agent',
    message: /adds ALL/,
  },
  {
    name: 'a privileged ephemeral container',
    pod: () => injected((p) => (p.spec!.ephemeralContainers = [{ name: 'dbg', image: 'busybox', securityContext: { privileged: true } }])),
    rule: 'privileged',
    container: 'dbg',
    message: /ephemeral container dbg is privileged/,
  },
  {
    name: 'an ephemeral container targeting the sidecar (it would share its process namespace)',
    pod: () => injected((p) => (p.spec!.ephemeralContainers = [{ name: 'dbg', image: 'busybox', targetContainerName: SIDECAR_CONTAINER_NAME }])),
    rule: 'ephemeral-target',
    container: 'dbg',
    message: /targets chaperone-sidecar.*\/proc\/<pid>\/root.*--target=<agent container>/,
  },
  {
    name: 'a look-alike chaperone-init-network init container with another image (not exempt: NET_ADMIN as root)',
    pod: () => injected((p) => {
      const ic = interceptionInitContainer(readyIdentity({ interception: { mode: 'transparent' } }))!;
      p.spec!.initContainers!.unshift({ ...ic, image: 'evil/iptables:1' });
    }),
    rule: 'sidecar-volume',
    container: INTERCEPTION_CONTAINER_NAME,
    message: /init container chaperone-init-network mounts volume chaperone-config/,
  },
];

describe('validatePod refuses', () => {
  for (const c of REFUSALS) {
    it(`${c.name} (rule ${c.rule})`, () => {
      const v = validatePod(c.pod(), GUARDED, c.labelled ?? true);
      assert.equal(v.allowed, false, JSON.stringify(v));
      if (v.allowed) return;
      assert.equal(v.rule, c.rule);
      assert.equal(v.container, c.container);
      assert.match(v.message, new RegExp(`rule ${c.rule}`));
      assert.match(v.message, c.message);
    });
  }
});

describe('guardedSecrets', () => {
  it("lists every Secret an identity references (credential, CA, client certificate, signing key) plus extra names", () => {
    const id = readyIdentity({ recording: { signing: { secretRef: { name: 'rec-key' } } } });
    id.spec.connections[1]!.tls = { clientCertificateSecretRef: { name: 'gh-client' } };
    assert.deepEqual([...guardedSecrets([id], ['hmac-key'])].sort(), ['gh-client', 'github-token', 'hmac-key', 'orders-db-agent', 'orders-db-ca', 'rec-key']);
  });

  it('ConfigMap CAs are not Secrets and are not listed', () => {
    const id = readyIdentity();
    id.spec.connections[0]!.tls = { caConfigMapRef: { name: 'public-ca' } };
    assert.ok(!guardedSecrets([id]).has('public-ca'));
  });
});

describe('validatePod with a transparent identity (context.identity)', () => {
  const tp = readyIdentity({ interception: { mode: 'transparent' } });
  const safe = { runAsUser: 1000, allowPrivilegeEscalation: false };
  const transparentPod = (): V1Pod => {
    const p = agentPod();
    p.spec!.containers[0]!.securityContext = { ...safe };
    return desiredPod(p, tp, 'cm');
  };
  it('allows the injected pod (its init container is exempt) and a debug container that fits the rules', () => {
    const p = transparentPod();
    assert.deepEqual(validatePod(p, GUARDED, true, { identity: tp }), { allowed: true });
    p.spec!.ephemeralContainers = [{ name: 'dbg', image: 'busybox', securityContext: { ...safe } }];
    assert.deepEqual(validatePod(p, GUARDED, true, { identity: tp }), { allowed: true });
  });
  for (const [name, sc, want] of [
    ["runs as the sidecar's UID", { ...safe, runAsUser: 65532 }, /container dbg runs as UID 65532/],
    ['sets no runAsUser', { allowPrivilegeEscalation: false }, /container dbg sets no runAsUser/],
    ['may escalate', { runAsUser: 1000 }, /container dbg may gain privileges/],
  ] as const) {
    it(`refuses a debug container that ${name} (it would bypass the iptables rules)`, () => {
      const p = transparentPod();
      p.spec!.ephemeralContainers = [{ name: 'dbg', image: 'busybox', securityContext: { ...sc } }];
      const v = validatePod(p, GUARDED, true, { identity: tp });
      assert.equal(v.allowed, false);
      if (v.allowed) return;
      assert.equal(v.rule, 'interception-bypass');
      assert.equal(v.container, 'dbg');
      assert.match(v.message, want);
    });
  }
  it('refuses a transparent pod without the iptables init container', () => {
    const p = transparentPod();
    p.spec!.initContainers = p.spec!.initContainers!.filter((c) => c.name !== INTERCEPTION_CONTAINER_NAME);
    const v = validatePod(p, GUARDED, true, { identity: tp });
    assert.equal(v.allowed ? '' : v.rule, 'missing-interception');
  });
  it('without the identity (explicit, or not found) the interception rules do not apply', () => {
    const p = transparentPod();
    p.spec!.ephemeralContainers = [{ name: 'dbg', image: 'busybox' }];
    assert.deepEqual(validatePod(p, GUARDED, true), { allowed: true });
  });
});

describe('podViolations lists every violation (an old one cannot hide a new one)', () => {
  it('a look-alike interception init container is an agent: root with NET_ADMIN/NET_RAW', () => {
    const p = injected((x) => x.spec!.initContainers!.unshift({ ...interceptionInitContainer(readyIdentity({ interception: { mode: 'transparent' } }))!, image: 'evil/iptables:1' }));
    assert.ok(podViolations(p, GUARDED, true).some((v) => !v.allowed && v.rule === 'capability' && /init container chaperone-init-network adds NET_ADMIN/.test(v.message)));
  });
  it('a pre-existing guarded mount and a new debug container mounting the API token are both listed', () => {
    const p = injected((x) => {
      x.spec!.volumes!.push({ name: 'creds', secret: { secretName: 'orders-db-agent' } });
      agent(x).volumeMounts!.push({ name: 'creds', mountPath: '/creds' });
      x.spec!.ephemeralContainers = [{ name: 'dbg', image: 'busybox', volumeMounts: [{ name: 'chaperone-api-token', mountPath: '/t' }] }];
    });
    assert.deepEqual(podViolations(p, GUARDED, true).map((v) => (v.allowed ? '' : `${v.rule}/${v.container ?? ''}`)), ['guarded-secret-volume/agent', 'sidecar-volume/dbg', 'api-token/dbg']);
  });
});

describe('updateViolations', () => {
  const rules = (old: V1Pod, now: V1Pod): string[] => updateViolations(old, now).map((v) => (v.allowed ? '' : v.rule));
  it('allows an update that leaves the label and the webhook containers alone', () => {
    const old = injected();
    const now = structuredClone(old);
    now.metadata!.labels!['team'] = 'a';
    agent(now).image = 'example.com/agent:2';
    assert.deepEqual(rules(old, now), []);
  });
  it("refuses a new sidecar image (kubectl set image would run another program with the sidecar's credentials)", () => {
    const old = injected();
    const now = structuredClone(old);
    now.spec!.initContainers!.find((c) => c.name === SIDECAR_CONTAINER_NAME)!.image = 'evil/sidecar:1';
    const v = updateViolations(old, now)[0];
    assert.ok(v && !v.allowed);
    assert.equal(v.rule, 'sidecar-changed');
    assert.equal(v.container, SIDECAR_CONTAINER_NAME);
    assert.match(v.message, /changes the image of chaperone-sidecar from .* to evil\/sidecar:1.*recreate the pod/);
  });
  it('refuses a new image of the interception init container and of a plain (non-native) sidecar', () => {
    const tp = readyIdentity({ interception: { mode: 'transparent' } });
    const old = desiredPod(agentPod(), tp, 'cm');
    const now = structuredClone(old);
    now.spec!.initContainers![0]!.image = 'evil/iptables:1';
    assert.deepEqual(rules(old, now), ['sidecar-changed']);
    const plain = injected(undefined, false);
    const plainNow = structuredClone(plain);
    plainNow.spec!.containers.find((c) => c.name === SIDECAR_CONTAINER_NAME)!.image = 'evil/sidecar:1';
    assert.deepEqual(rules(plain, plainNow), ['sidecar-changed']);
  });
  it('refuses removing or changing the identity label (the webhooks would stop seeing the pod)', () => {
    const old = injected();
    const dropped = structuredClone(old);
    delete dropped.metadata!.labels!['chaperone.dev/identity'];
    const v = updateViolations(old, dropped)[0];
    assert.ok(v && !v.allowed);
    assert.equal(v.rule, 'identity-label-changed');
    assert.match(v.message, /chaperone.dev\/identity=coding-agent is removed.*delete the pod and create a new one/);
    const other = structuredClone(old);
    other.metadata!.labels!['chaperone.dev/identity'] = 'admin-agent';
    assert.match(updateViolations(old, other)[0]?.allowed === false ? (updateViolations(old, other)[0] as { message: string }).message : '', /is changed to admin-agent/);
  });
  it('an unlabelled pod may be labelled only through validatePod (missing-sidecar), not this rule', () => assert.deepEqual(rules(agentPod({}, {}), agentPod()), []));
});
