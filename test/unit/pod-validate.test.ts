// validatePod: each escape hatch is refused with its rule, the container and a fix; an injected pod passes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Pod } from '@kubernetes/client-node';
import { guardedSecrets, validatePod, type PodRule } from '../../operator/webhooks/pod-validate.ts';
import { desiredPod } from '../../operator/webhooks/pod-mutate/build.ts';
import { SIDECAR_CONTAINER_NAME } from '../../operator/webhooks/pod-mutate/layout.ts';
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
