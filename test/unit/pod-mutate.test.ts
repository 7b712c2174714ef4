// Pod injection: shouldInject outcomes and every isolation property of the pod desiredPod builds.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';
import { shouldInject, type Decision } from '../../operator/webhooks/pod-mutate/decide.ts';
import { desiredPod, injectedStatus, type BuildOptions } from '../../operator/webhooks/pod-mutate/build.ts';
import { jsonPatch } from '../../operator/webhooks/pod-mutate/patch.ts';
import { mutatePod } from '../../operator/webhooks/pod-mutate/admit.ts';
import {
  AGENT_TOKEN_FILE,
  ANNOTATION_INJECTED,
  CONFIG_FILE,
  DEFAULT_ADMIN_PORT,
  KUBECONFIG_FILE,
  SIDECAR_CONTAINER_NAME,
  SIDECAR_GID,
  credentialMountPath,
  tlsCaMountPath,
} from '../../operator/webhooks/pod-mutate/layout.ts';
import { DEFAULT_ADMIN_PORT as SIDECAR_DEFAULT_ADMIN_PORT } from '../../sidecar/core/config-types.ts';
import { agentPod, barePod, NS, readyIdentity } from '../../operator/webhooks/testdata/pods.ts';
import type { AgentIdentity } from '../../operator/api/types.ts';

const OPS = 'chaperone-system';
const CM = 'chaperone-coding-agent';

function ctx(identity: AgentIdentity | undefined, namespace = NS): Parameters<typeof shouldInject>[1] {
  return { namespace, operatorNamespace: OPS, identity };
}

function notReady(status: 'False' | 'Unknown'): AgentIdentity {
  const id = readyIdentity();
  id.status!.conditions = [{ type: 'Ready', status, lastTransitionTime: '2026-01-01T00:00:00Z', reason: 'SecretKeyMissing', message: 'Secret orders-db-agent has no key password' }];
  return id;
}

function stale(): AgentIdentity {
  const id = readyIdentity();
  id.metadata.generation = 4;
  return id;
}

function withKube(serviceAccountName: string): AgentIdentity {
  const base = readyIdentity();
  return readyIdentity({ connections: [...base.spec.connections, { name: 'cluster', protocol: 'kubernetes', localPort: 6443, credential: { serviceAccountName } }] });
}

describe('shouldInject', () => {
  const cases: { name: string; pod: V1Pod; ctx: Parameters<typeof shouldInject>[1]; want: Partial<Decision> & Record<string, unknown>; message?: RegExp }[] = [
    { name: 'an unlabelled pod is left alone (no-label)', pod: agentPod({}, {}), ctx: ctx(readyIdentity()), want: { inject: false, reason: 'no-label' } },
    { name: 'kube-system is never injected', pod: agentPod(), ctx: ctx(readyIdentity(), 'kube-system'), want: { inject: false, reason: 'excluded-namespace' } },
    { name: "the operator's own namespace is never injected", pod: agentPod(), ctx: ctx(readyIdentity(), OPS), want: { inject: false, reason: 'excluded-namespace' } },
    { name: 'a Ready identity is injected with its ConfigMap and hash', pod: agentPod(), ctx: ctx(readyIdentity()), want: { inject: true, identityName: 'coding-agent', configMapName: CM, configHash: 'a'.repeat(64) } },
    { name: 'a missing identity is refused, naming it', pod: agentPod(), ctx: ctx(undefined), want: { refuse: true, reason: 'identity-not-found' }, message: /AgentIdentity agents\/coding-agent .*does not exist/ },
    { name: 'an empty label is refused', pod: agentPod({}, { 'chaperone.dev/identity': '' }), ctx: ctx(undefined), want: { refuse: true, reason: 'invalid-label' }, message: /is empty/ },
    { name: 'a not-Ready identity is refused with its condition', pod: agentPod(), ctx: ctx(notReady('False')), want: { refuse: true, reason: 'identity-not-ready' }, message: /not Ready: Ready is False \(SecretKeyMissing: Secret orders-db-agent has no key password\)/ },
    { name: 'an identity with no Ready condition is refused', pod: agentPod(), ctx: ctx({ ...readyIdentity(), status: {} }), want: { refuse: true, reason: 'identity-not-ready' }, message: /not compiled it yet/ },
    { name: 'an identity compiled for an older generation is refused', pod: agentPod(), ctx: ctx(stale()), want: { refuse: true, reason: 'identity-not-ready' }, message: /generation 4.*only generation 3/ },
    { name: 'a labelled hostNetwork pod is refused', pod: agentPod({ hostNetwork: true }), ctx: ctx(readyIdentity()), want: { refuse: true, reason: 'host-network' }, message: /hostNetwork/ },
    { name: 'a ServiceAccount outside allowedServiceAccounts is refused', pod: agentPod({ serviceAccountName: 'other' }), ctx: ctx(readyIdentity({ allowedServiceAccounts: ['coding-agent'] })), want: { refuse: true, reason: 'service-account-not-allowed' }, message: /agents\/other may not use/ },
    { name: 'transparent interception refuses an agent that may run as the sidecar UID', pod: agentPod(), ctx: ctx(readyIdentity({ interception: { mode: 'transparent' } })), want: { refuse: true, reason: 'interception-bypass' }, message: /container agent sets no runAsUser/ },
    { name: 'transparent interception injects a pod whose agents run as another UID without escalation', pod: agentPod({ securityContext: { runAsUser: 1000 }, containers: [{ name: 'agent', image: 'x', securityContext: { allowPrivilegeEscalation: false } }] }), ctx: ctx(readyIdentity({ interception: { mode: 'transparent' } })), want: { inject: true } },
    { name: "a kubernetes connection with another ServiceAccount's token is refused", pod: agentPod(), ctx: ctx(withKube('kube-reader')), want: { refuse: true, reason: 'kubernetes-token-unavailable' }, message: /kube-reader/ },
    { name: "a kubernetes connection with the pod's own ServiceAccount is injected", pod: agentPod(), ctx: ctx(withKube('coding-agent')), want: { inject: true } },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const d = shouldInject(c.pod, c.ctx) as unknown as Record<string, unknown>;
      for (const [k, v] of Object.entries(c.want)) assert.deepEqual(d[k], v, `${k} of ${JSON.stringify(d)}`);
      if (c.message) assert.match(String(d.message), c.message);
    });
  }
});

// ---------------------------------------------------------------------------------------------

function sidecarOf(pod: V1Pod): V1Container {
  const c = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((x) => x.name === SIDECAR_CONTAINER_NAME);
  assert.ok(c, 'sidecar present');
  return c;
}

function agentsOf(pod: V1Pod): V1Container[] {
  return [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].filter((x) => x.name !== SIDECAR_CONTAINER_NAME);
}

function volume(pod: V1Pod, name: string): V1Volume {
  const v = pod.spec?.volumes?.find((x) => x.name === name);
  assert.ok(v, `volume ${name}`);
  return v;
}

function envOf(c: V1Container): Record<string, string | undefined> {
  return Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
}

/** Pod shapes every property is checked on. */
const SHAPES: { name: string; pod: () => V1Pod; identity: () => AgentIdentity }[] = [
  { name: 'a pod with the default API token mount', pod: agentPod, identity: readyIdentity },
  { name: 'a bare pod (no volumes, env, annotations)', pod: barePod, identity: readyIdentity },
  {
    name: 'a pod with init containers and two agent containers',
    pod: () => agentPod({
      initContainers: [{ name: 'migrate', image: 'example.com/migrate:1', volumeMounts: [{ name: 'kube-api-access-x7k2p', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }] }],
      containers: [{ name: 'agent', image: 'a' }, { name: 'tools', image: 't', env: [{ name: 'X', value: '1' }] }],
    }),
    identity: readyIdentity,
  },
  { name: 'a pod for an identity with a kubernetes connection', pod: agentPod, identity: () => withKube('coding-agent') },
];
const MODES: { name: string; options: BuildOptions }[] = [
  { name: 'native', options: { image: 'example.com/chaperone:1' } },
  { name: 'plain', options: { image: 'example.com/chaperone:1', nativeSidecars: false } },
];

describe('desiredPod: isolation properties on every pod shape', () => {
  for (const shape of SHAPES) {
    for (const mode of MODES) {
      const built = desiredPod(shape.pod(), shape.identity(), CM, mode.options);
      const sidecar = sidecarOf(built);
      const sidecarVolumes = new Set((sidecar.volumeMounts ?? []).map((m) => m.name));
      const label = `${shape.name}, ${mode.name}`;

      it(`no agent container mounts a Secret volume (${label})`, () => {
        for (const c of agentsOf(built)) {
          for (const m of c.volumeMounts ?? []) {
            const v = volume(built, m.name);
            assert.equal(v.secret, undefined, `${c.name} mounts secret volume ${m.name}`);
            assert.ok(!(v.projected?.sources ?? []).some((s) => s.secret), `${c.name} mounts projected secret ${m.name}`);
            // The one shared volume: an emptyDir where the sidecar writes its listener CA certificates (public), read-only here.
            if (m.name === 'chaperone-listener-ca') {
              assert.deepEqual(v.emptyDir, {}, 'the listener CA volume is an emptyDir');
              assert.equal(m.readOnly, true, `${c.name} mounts the listener CA read-only`);
              continue;
            }
            assert.ok(!sidecarVolumes.has(m.name), `${c.name} mounts the sidecar's volume ${m.name}`);
          }
        }
      });

      it(`no agent container references a Secret through env (${label})`, () => {
        for (const c of agentsOf(built)) {
          assert.ok(!(c.env ?? []).some((e) => e.valueFrom?.secretKeyRef), c.name);
          assert.ok(!(c.envFrom ?? []).some((e) => e.secretRef), c.name);
        }
      });

      it(`no agent container holds the API token; automount is off (${label})`, () => {
        assert.equal(built.spec?.automountServiceAccountToken, false);
        assert.ok(!(built.spec?.volumes ?? []).some((v) => v.name.startsWith('kube-api-access-')), 'kube-api-access volume removed');
        for (const c of agentsOf(built)) {
          for (const m of c.volumeMounts ?? []) {
            assert.ok(!m.mountPath.startsWith('/var/run/secrets/kubernetes.io'), `${c.name} mounts ${m.mountPath}`);
            const tokens = (volume(built, m.name).projected?.sources ?? []).flatMap((s) => (s.serviceAccountToken ? [s.serviceAccountToken] : []));
            for (const t of tokens) assert.equal(t.audience, 'chaperone', `${c.name} gets an API-audience token from ${m.name}`);
          }
        }
      });

      it(`every agent container gets the chaperone token projection (audience chaperone, 600 s) (${label})`, () => {
        const v = volume(built, 'chaperone-token');
        assert.deepEqual(v.projected?.sources, [{ serviceAccountToken: { audience: 'chaperone', expirationSeconds: 600, path: 'token' } }]);
        for (const c of agentsOf(built)) {
          assert.ok((c.volumeMounts ?? []).some((m) => m.name === 'chaperone-token' && m.mountPath === '/var/run/secrets/chaperone' && m.readOnly === true), c.name);
          assert.equal(envOf(c).CHAPERONE_TOKEN_FILE, AGENT_TOKEN_FILE);
        }
      });

      it(`every agent container gets the connection env, PGHOST on loopback, no password (${label})`, () => {
        for (const c of agentsOf(built)) {
          const env = envOf(c);
          assert.equal(env.PGHOST, '127.0.0.1');
          assert.equal(env.PGPORT, '5432');
          assert.equal(env.PGUSER, 'coding-agent');
          assert.equal(env.PGDATABASE, 'orders');
          assert.equal(env.DATABASE_URL, 'postgresql://coding-agent@127.0.0.1:5432/orders?sslmode=disable');
          assert.equal(env.ORDERS_DB_DATABASE_URL, env.DATABASE_URL);
          assert.equal(env.GITHUB_BASE_URL, 'http://127.0.0.1:8080');
          assert.equal(env.PGPASSWORD, undefined);
          assert.equal((c.env ?? []).filter((e) => e.name === 'PGHOST').length, 1, 'PGHOST once');
        }
      });

      it(`the sidecar is ${mode.name === 'native' ? 'the first init container with restartPolicy Always' : 'a plain container'} (${label})`, () => {
        if (mode.name === 'native') {
          assert.equal(built.spec?.initContainers?.[0]?.name, SIDECAR_CONTAINER_NAME);
          assert.equal(sidecar.restartPolicy, 'Always');
          assert.ok(!built.spec?.containers.some((c) => c.name === SIDECAR_CONTAINER_NAME));
        } else {
          assert.equal(built.spec?.containers.at(-1)?.name, SIDECAR_CONTAINER_NAME);
          assert.equal(sidecar.restartPolicy, undefined);
          assert.ok(!(built.spec?.initContainers ?? []).some((c) => c.name === SIDECAR_CONTAINER_NAME));
        }
      });

      it(`a second pass changes nothing (${label})`, () => {
        const again = desiredPod(built, shape.identity(), CM, mode.options);
        assert.deepEqual(again, built);
        assert.deepEqual(jsonPatch(built, again), []);
      });
    }
  }
});

describe('desiredPod: the sidecar container', () => {
  const built = desiredPod(agentPod(), readyIdentity(), CM, { image: 'example.com/chaperone:1' });
  const sidecar = sidecarOf(built);

  it('runs chaperone-sidecar --config /etc/chaperone/config/sidecar.yaml from the compiled ConfigMap', () => {
    assert.deepEqual([...(sidecar.command ?? []), ...(sidecar.args ?? [])], ['chaperone-sidecar', '--config', CONFIG_FILE]);
    assert.deepEqual(volume(built, 'chaperone-config').configMap, { name: CM, defaultMode: 0o644, items: [{ key: 'sidecar.yaml', path: 'sidecar.yaml' }] });
    assert.ok(sidecar.volumeMounts?.some((m) => m.name === 'chaperone-config' && m.mountPath === '/etc/chaperone/config' && m.readOnly));
  });

  it('gets POD_NAME, POD_UID, POD_NAMESPACE from the downward API', () => {
    assert.deepEqual(sidecar.env, [
      { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
      { name: 'POD_UID', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.uid' } } },
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } } },
    ]);
  });

  it('has the exact security context: non-root fixed UID, fsGroup GID, read-only root, no escalation, no capabilities, RuntimeDefault', () => {
    assert.deepEqual(sidecar.securityContext, {
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: SIDECAR_GID,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    assert.equal(built.spec?.securityContext?.fsGroup, SIDECAR_GID);
  });

  it("runs as the pod's own fsGroup when the pod sets one (Secret files are group-readable for it only)", () => {
    const p = desiredPod(agentPod({ securityContext: { fsGroup: 2000, runAsUser: 1000 } }), readyIdentity(), CM);
    assert.equal(sidecarOf(p).securityContext?.runAsGroup, 2000);
    assert.deepEqual(p.spec?.securityContext, { fsGroup: 2000, runAsUser: 1000 });
  });

  it('has readiness /readyz and liveness /healthz on the admin port (default 9901, as the sidecar)', () => {
    assert.equal(DEFAULT_ADMIN_PORT, SIDECAR_DEFAULT_ADMIN_PORT);
    assert.deepEqual(sidecar.readinessProbe?.httpGet, { path: '/readyz', port: 9901, scheme: 'HTTP' });
    assert.deepEqual(sidecar.livenessProbe?.httpGet, { path: '/healthz', port: 9901, scheme: 'HTTP' });
    const custom = sidecarOf(desiredPod(agentPod(), readyIdentity({ sidecar: { adminPort: 9911 } }), CM));
    assert.deepEqual(custom.readinessProbe?.httpGet, { path: '/readyz', port: 9911, scheme: 'HTTP' });
  });

  it('takes resources from the identity, else the DEFAULT_* constants', () => {
    assert.deepEqual(sidecar.resources, { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '1', memory: '256Mi' } });
    const r = sidecarOf(desiredPod(agentPod(), readyIdentity({ sidecar: { resources: { requests: { cpu: '100m' }, limits: { memory: 512 } } } }), CM)).resources;
    assert.deepEqual(r, { requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '1', memory: '512' } });
  });

  it('uses the identity image over the operator default', () => {
    assert.equal(sidecar.image, 'example.com/chaperone:1');
    assert.equal(sidecarOf(desiredPod(agentPod(), readyIdentity({ sidecar: { image: 'example.com/pinned:2' } }), CM)).image, 'example.com/pinned:2');
  });

  it('mounts each credential Secret only into the sidecar, one volume per Secret, items per key, mode 0400, at the layout path', () => {
    const creds = built.spec?.volumes?.find((v) => v.secret?.secretName === 'orders-db-agent');
    assert.ok(creds);
    assert.deepEqual(creds.secret, { secretName: 'orders-db-agent', defaultMode: 0o400, items: [{ key: 'password', path: 'password', mode: 0o400 }, { key: 'username', path: 'username', mode: 0o400 }] });
    const mount = sidecar.volumeMounts?.find((m) => m.name === creds.name);
    assert.equal(`${mount?.mountPath}/password`, credentialMountPath('orders-db', 'password'));
    assert.equal(credentialMountPath('orders-db', 'password'), '/var/run/chaperone/secrets/orders-db/password');
    const ca = built.spec?.volumes?.find((v) => v.secret?.secretName === 'orders-db-ca');
    assert.equal(`${sidecar.volumeMounts?.find((m) => m.name === ca?.name)?.mountPath}/ca.crt`, tlsCaMountPath('orders-db', 'ca.crt'));
  });

  it('a Secret used for two purposes is one volume mounted at both directories', () => {
    const id = readyIdentity();
    id.spec.connections[0]!.tls = { caSecretRef: { name: 'orders-db-agent', key: 'ca.crt' } };
    const p = desiredPod(agentPod(), id, CM);
    const vols = (p.spec?.volumes ?? []).filter((v) => v.secret?.secretName === 'orders-db-agent');
    assert.equal(vols.length, 1);
    assert.deepEqual(vols[0]!.secret?.items?.map((i) => i.key), ['ca.crt', 'password', 'username']);
    assert.equal(sidecarOf(p).volumeMounts?.filter((m) => m.name === vols[0]!.name).length, 2);
  });

  it("gets the pod's API token (API audience) and cluster CA at the standard path", () => {
    const m = sidecar.volumeMounts?.find((x) => x.mountPath === '/var/run/secrets/kubernetes.io/serviceaccount');
    assert.equal(m?.name, 'chaperone-api-token');
    const sources = volume(built, 'chaperone-api-token').projected?.sources ?? [];
    assert.equal(sources[0]?.serviceAccountToken?.audience, undefined);
    assert.equal(sources[1]?.configMap?.name, 'kube-root-ca.crt');
  });
});

describe('desiredPod: pod-level edits', () => {
  it('a kubernetes connection gives agents KUBECONFIG and the kubeconfig file from the compiled ConfigMap', () => {
    const p = desiredPod(agentPod(), withKube('coding-agent'), CM);
    assert.deepEqual(volume(p, 'chaperone-kubeconfig').configMap, { name: CM, defaultMode: 0o644, items: [{ key: 'kubeconfig', path: 'kubeconfig' }] });
    const agent = agentsOf(p)[0]!;
    assert.equal(envOf(agent).KUBECONFIG, KUBECONFIG_FILE);
    assert.ok(agent.volumeMounts?.some((m) => m.name === 'chaperone-kubeconfig' && m.mountPath === '/etc/chaperone/kubeconfig'));
  });

  it('no kubernetes connection: no KUBECONFIG, no kubeconfig volume', () => {
    const p = desiredPod(agentPod(), readyIdentity(), CM);
    assert.equal(envOf(agentsOf(p)[0]!).KUBECONFIG, undefined);
    assert.ok(!p.spec?.volumes?.some((v) => v.name === 'chaperone-kubeconfig'));
  });

  it('existing init containers keep their order behind the sidecar', () => {
    const p = desiredPod(agentPod({ initContainers: [{ name: 'a', image: 'a' }, { name: 'b', image: 'b' }] }), readyIdentity(), CM);
    assert.deepEqual(p.spec?.initContainers?.map((c) => c.name), [SIDECAR_CONTAINER_NAME, 'a', 'b']);
  });

  it('switching native → plain leaves exactly one sidecar', () => {
    const native = desiredPod(agentPod(), readyIdentity(), CM);
    const plain = desiredPod(native, readyIdentity(), CM, { nativeSidecars: false });
    const all = [...(plain.spec?.initContainers ?? []), ...(plain.spec?.containers ?? [])];
    assert.equal(all.filter((c) => c.name === SIDECAR_CONTAINER_NAME).length, 1);
    assert.equal(plain.spec?.initContainers, undefined);
  });

  it('a forged sidecar container in the request is replaced by the real one', () => {
    const forged = agentPod({ containers: [{ name: 'agent', image: 'a' }, { name: SIDECAR_CONTAINER_NAME, image: 'evil', volumeMounts: [] }] });
    const p = desiredPod(forged, readyIdentity(), CM, { image: 'example.com/chaperone:1' });
    assert.equal(sidecarOf(p).image, 'example.com/chaperone:1');
    assert.deepEqual(p.spec?.containers.map((c) => c.name), ['agent']);
  });

  it('records version, identity, config hash and what was added in chaperone.dev/injected; other annotations kept', () => {
    const p = desiredPod(agentPod(), readyIdentity(), CM, { image: 'example.com/chaperone:1' });
    assert.equal(p.metadata?.annotations?.['example.com/owner'], 'team-a');
    const s = injectedStatus(p);
    assert.ok(s);
    assert.equal(s.version, 1);
    assert.equal(s.identity, 'coding-agent');
    assert.equal(s.configMap, CM);
    assert.equal(s.configHash, 'a'.repeat(64));
    assert.deepEqual(s.sidecar, { name: SIDECAR_CONTAINER_NAME, native: true, image: 'example.com/chaperone:1' });
    assert.deepEqual(s.containers, ['agent']);
    assert.ok(s.volumes.includes('chaperone-token') && s.volumes.includes('chaperone-config'));
    assert.ok(s.env.includes('PGHOST') && s.env.includes('CHAPERONE_TOKEN_FILE'));
    assert.ok(p.metadata?.annotations?.[ANNOTATION_INJECTED]);
  });

  it('does not modify its input (a deep clone is edited)', () => {
    const pod = agentPod();
    const before = structuredClone(pod);
    desiredPod(pod, readyIdentity(), CM);
    assert.deepEqual(pod, before);
  });

  it('a container added after injection (reinvocation) gets the env and token on the next pass', () => {
    const p = desiredPod(agentPod(), readyIdentity(), CM);
    p.spec!.containers.push({ name: 'late', image: 'l' });
    const again = desiredPod(p, readyIdentity(), CM);
    const late = again.spec!.containers.find((c) => c.name === 'late')!;
    assert.equal(envOf(late).PGHOST, '127.0.0.1');
    assert.deepEqual(injectedStatus(again)?.containers, ['agent', 'late']);
  });
});

// ---------------------------------------------------------------------------------------------

/** What the API server's pod validation would refuse: duplicate names, dangling mounts, two mounts at one path. */
function structuralProblems(pod: V1Pod): string[] {
  const problems: string[] = [];
  const all = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  const names = all.map((c) => c.name);
  if (new Set(names).size !== names.length) problems.push(`duplicate container names ${names.join(',')}`);
  const volumes = (pod.spec?.volumes ?? []).map((v) => v.name);
  if (new Set(volumes).size !== volumes.length) problems.push(`duplicate volume names ${volumes.join(',')}`);
  for (const v of volumes) if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(v) || v.length > 63) problems.push(`volume name ${v} is not a DNS label`);
  for (const c of all) {
    const paths = (c.volumeMounts ?? []).map((m) => m.mountPath);
    if (new Set(paths).size !== paths.length) problems.push(`${c.name}: two mounts at one path`);
    for (const m of c.volumeMounts ?? []) if (!volumes.includes(m.name)) problems.push(`${c.name}: mount of missing volume ${m.name}`);
    const env = (c.env ?? []).map((e) => e.name);
    if (new Set(env).size !== env.length) problems.push(`${c.name}: duplicate env`);
  }
  return problems;
}

describe('desiredPod: the built pod is structurally valid', () => {
  for (const shape of SHAPES) {
    for (const mode of MODES) {
      it(`unique names, no dangling or doubled mounts (${shape.name}, ${mode.name})`, () => {
        assert.deepEqual(structuralProblems(desiredPod(shape.pod(), shape.identity(), CM, mode.options)), []);
      });
    }
  }

  it('a user mount at the chaperone token path is replaced, not doubled', () => {
    const pod = agentPod();
    pod.spec!.volumes!.push({ name: 'mine', emptyDir: {} });
    pod.spec!.containers[0]!.volumeMounts!.push({ name: 'mine', mountPath: '/var/run/secrets/chaperone' });
    const p = desiredPod(pod, readyIdentity(), CM);
    assert.deepEqual(structuralProblems(p), []);
    assert.equal(agentsOf(p)[0]!.volumeMounts!.find((m) => m.mountPath === '/var/run/secrets/chaperone')?.name, 'chaperone-token');
  });
});

describe('desiredPod on examples/policies/agentidentity.yaml', () => {
  const example = parse(readFileSync('examples/policies/agentidentity.yaml', 'utf8')) as AgentIdentity;
  const ready = readyIdentity();

  it('as written it is refused: its kubernetes connection needs a token of another ServiceAccount (coding-agent-kube)', () => {
    const d = shouldInject(agentPod(), ctx({ ...example, status: ready.status, metadata: { ...example.metadata, generation: 3 } }));
    assert.equal((d as { reason?: string }).reason, 'kubernetes-token-unavailable');
  });

  it('with explicit interception and the pod running as the kube ServiceAccount, every referenced file is mounted at the layout path', () => {
    const id: AgentIdentity = { ...example, spec: { ...example.spec, allowedServiceAccounts: ['coding-agent-kube'], interception: { mode: 'explicit' } }, status: ready.status, metadata: { ...example.metadata, generation: 3 } };
    const pod = agentPod({ serviceAccountName: 'coding-agent-kube' });
    assert.equal((shouldInject(pod, ctx(id)) as { inject?: boolean }).inject, true);
    const p = desiredPod(pod, id, CM);
    assert.deepEqual(structuralProblems(p), []);
    const dirs = (sidecarOf(p).volumeMounts ?? []).map((m) => m.mountPath).sort();
    assert.deepEqual(dirs, [
      '/etc/chaperone/config',
      '/var/run/chaperone/listener-ca',
      '/var/run/chaperone/secrets/_issuer.corp-idp',
      '/var/run/chaperone/secrets/_recording',
      '/var/run/chaperone/secrets/cluster',
      '/var/run/chaperone/secrets/github',
      '/var/run/chaperone/secrets/orders-db',
      '/var/run/chaperone/secrets/orders-db.tls-ca',
      '/var/run/secrets/kubernetes.io/serviceaccount',
    ]);
    const signing = p.spec!.volumes!.find((v) => v.secret?.secretName === 'coding-agent-recording-key');
    assert.deepEqual(signing?.secret?.items, [{ key: 'ed25519.pem', path: 'ed25519.pem', mode: 0o400 }]);
    const agentEnv = envOf(agentsOf(p)[0]!);
    assert.equal(agentEnv.KUBECONFIG, KUBECONFIG_FILE);
    assert.equal(agentEnv.GITHUB_BASE_URL, 'http://127.0.0.1:8080');
  });
});

describe('desiredPod: every form of the API token leaves the agent containers', () => {
  const cases: { name: string; volume: V1Volume; mountPath: string }[] = [
    { name: 'a kube-api-access volume mounted elsewhere', volume: { name: 'kube-api-access-q9', projected: { sources: [{ serviceAccountToken: { path: 'token' } }] } }, mountPath: '/elsewhere' },
    { name: 'a hand-written projected token without audience', volume: { name: 'my-token', projected: { sources: [{ serviceAccountToken: { path: 't', expirationSeconds: 7200 } }] } }, mountPath: '/tokens' },
    { name: 'a legacy ServiceAccount token Secret at the standard path', volume: { name: 'default-token-abcde', secret: { secretName: 'default-token-abcde' } }, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount/' },
  ];
  for (const c of cases) {
    it(`${c.name} is unmounted from agents`, () => {
      const pod = barePod();
      pod.spec!.volumes = [c.volume];
      pod.spec!.containers[0]!.volumeMounts = [{ name: c.volume.name, mountPath: c.mountPath }];
      const p = desiredPod(pod, readyIdentity(), CM);
      assert.ok(!(agentsOf(p)[0]!.volumeMounts ?? []).some((m) => m.name === c.volume.name));
      assert.deepEqual(structuralProblems(p), []);
    });
  }

  it('a projected token for another audience (e.g. vault) stays', () => {
    const pod = barePod();
    pod.spec!.volumes = [{ name: 'vault-token', projected: { sources: [{ serviceAccountToken: { audience: 'vault', path: 't' } }] } }];
    pod.spec!.containers[0]!.volumeMounts = [{ name: 'vault-token', mountPath: '/vault' }];
    const p = desiredPod(pod, readyIdentity(), CM);
    assert.ok(agentsOf(p)[0]!.volumeMounts!.some((m) => m.name === 'vault-token'));
  });
});

describe('mutatePod: the AdmissionReview response', () => {
  const base = { uid: 'u-1', namespace: NS, operatorNamespace: OPS };

  it('a labelled pod gets a base64 JSONPatch that turns it into desiredPod', () => {
    const pod = JSON.parse(JSON.stringify(agentPod())) as V1Pod;
    const r = mutatePod({ ...base, pod, identity: readyIdentity() });
    assert.equal(r.outcome, 'injected');
    assert.equal(r.response.uid, 'u-1');
    assert.equal(r.response.allowed, true);
    assert.equal(r.response.patchType, 'JSONPatch');
    assert.deepEqual(JSON.parse(Buffer.from(r.response.patch!, 'base64').toString('utf8')), r.ops);
    assert.equal(injectedStatus(desiredPod(pod, readyIdentity(), CM))?.configHash, 'a'.repeat(64));
  });

  it('an injected pod comes back unchanged, with no patch', () => {
    const pod = JSON.parse(JSON.stringify(desiredPod(agentPod(), readyIdentity(), CM))) as V1Pod;
    const r = mutatePod({ ...base, pod, identity: readyIdentity() });
    assert.equal(r.outcome, 'unchanged');
    assert.deepEqual(r.response, { uid: 'u-1', allowed: true });
  });

  it('an unlabelled pod is allowed untouched', () => {
    const r = mutatePod({ ...base, pod: agentPod({}, {}), identity: undefined });
    assert.deepEqual(r.response, { uid: 'u-1', allowed: true });
    assert.equal(r.outcome, 'no-label');
  });

  it('a pod naming a missing identity is refused with 403 and the message', () => {
    const r = mutatePod({ ...base, pod: agentPod(), identity: undefined });
    assert.equal(r.outcome, 'identity-not-found');
    assert.equal(r.response.allowed, false);
    assert.equal(r.response.status?.code, 403);
    assert.match(r.response.status?.message ?? '', /^chaperone: AgentIdentity agents\/coding-agent .*does not exist/);
  });
});

describe('desiredPod: name collisions with the webhook volumes', () => {
  it("a user volume named like the sidecar's config is replaced and its agent mount dropped (agents never share a sidecar volume)", () => {
    const pod = barePod();
    pod.spec!.volumes = [{ name: 'chaperone-config', emptyDir: {} }];
    pod.spec!.containers[0]!.volumeMounts = [{ name: 'chaperone-config', mountPath: '/cfg' }];
    const p = desiredPod(pod, readyIdentity(), CM);
    assert.equal(volume(p, 'chaperone-config').configMap?.name, CM);
    assert.ok(!agentsOf(p)[0]!.volumeMounts!.some((m) => m.name === 'chaperone-config'));
    assert.deepEqual(structuralProblems(p), []);
  });
});
