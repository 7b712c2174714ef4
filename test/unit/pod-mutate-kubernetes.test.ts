// A kubernetes connection end to end on paper: the webhook's shared listener-CA emptyDir and mounts, the startup gate, the kubeconfig text, and the compiled listener that writes the CA the kubeconfig names.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import type { AgentIdentity } from '../../operator/api/types.ts';
import { compileIdentity } from '../../operator/compile/compile.ts';
import { desiredConfigMap } from '../../operator/controllers/identity-desired.ts';
import { mutatePod } from '../../operator/webhooks/pod-mutate/admit.ts';
import { validatePod } from '../../operator/webhooks/pod-validate.ts';
import { desiredPod } from '../../operator/webhooks/pod-mutate/build.ts';
import { agentKubeconfig } from '../../operator/webhooks/pod-mutate/kubeconfig.ts';
import { AGENT_TOKEN_FILE, KUBECONFIG_KEY, LISTENER_CA_DIR, SIDECAR_CONTAINER_NAME, VOLUME_LISTENER_CA, listenerCaFile } from '../../operator/webhooks/pod-mutate/layout.ts';
import { STARTUP_FAILURE_THRESHOLD } from '../../operator/webhooks/pod-mutate/sidecar.ts';
import { agentPod, GUARDED, readyIdentity } from '../../operator/webhooks/testdata/pods.ts';
import { checkConfig } from '../../sidecar/core/config.ts';
import type { KubernetesConnectionConfig } from '../../sidecar/core/config-types.ts';

const CM = 'chaperone-coding-agent';

function withKube(extra: { name: string; localPort: number }[] = []): AgentIdentity {
  const base = readyIdentity();
  const kube = [{ name: 'cluster', localPort: 6443 }, ...extra].map((k) => ({ ...k, protocol: 'kubernetes' as const, credential: { serviceAccountName: 'coding-agent' } }));
  return readyIdentity({ connections: [...base.spec.connections, ...kube] });
}

function sidecarOf(p: V1Pod): V1Container {
  return [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].find((c) => c.name === SIDECAR_CONTAINER_NAME) ?? assert.fail('no sidecar');
}

interface Kubeconfig {
  'current-context': string;
  clusters: { name: string; cluster: { server: string; 'certificate-authority': string } }[];
  users: { name: string; user: Record<string, string> }[];
  contexts: { name: string; context: { cluster: string; user: string; namespace: string } }[];
}

describe('pod webhook: the listener CA volume', () => {
  for (const nativeSidecars of [true, false]) {
    const p = desiredPod(agentPod(), withKube(), CM, { nativeSidecars });
    const label = nativeSidecars ? 'native' : 'plain';

    it(`an emptyDir, written by the sidecar, read-only in every agent container (${label})`, () => {
      assert.deepEqual(p.spec?.volumes?.find((v) => v.name === VOLUME_LISTENER_CA), { name: VOLUME_LISTENER_CA, emptyDir: {} });
      assert.deepEqual(sidecarOf(p).volumeMounts?.find((m) => m.name === VOLUME_LISTENER_CA), { name: VOLUME_LISTENER_CA, mountPath: LISTENER_CA_DIR });
      for (const c of p.spec?.containers ?? []) {
        if (c.name === SIDECAR_CONTAINER_NAME) continue;
        assert.deepEqual(c.volumeMounts?.find((m) => m.name === VOLUME_LISTENER_CA), { name: VOLUME_LISTENER_CA, mountPath: LISTENER_CA_DIR, readOnly: true }, c.name);
      }
    });

    it(`a second pass is an empty patch (${label})`, () => {
      const r = mutatePod({ uid: 'u', namespace: 'agents', pod: p, operatorNamespace: 'chaperone-system', identity: withKube(), build: { nativeSidecars } });
      assert.equal(r.outcome, 'unchanged');
      assert.deepEqual(r.ops, []);
    });
  }

  it('the validating webhook admits the injected pod, and refuses an agent mounting the CA volume writable', () => {
    for (const nativeSidecars of [true, false]) assert.deepEqual(validatePod(desiredPod(agentPod(), withKube(), CM, { nativeSidecars }), GUARDED, true), { allowed: true });
    const p = desiredPod(agentPod(), withKube(), CM);
    const m = p.spec?.containers[0]?.volumeMounts?.find((x) => x.name === VOLUME_LISTENER_CA) ?? assert.fail('no CA mount');
    delete m.readOnly;
    const v = validatePod(p, GUARDED, true);
    assert.equal(v.allowed, false);
    assert.match(JSON.stringify(v), /sidecar-volume.*chaperone-listener-ca.*mount it readOnly/);
  });

  it('no kubernetes connection: no listener CA volume or mount', () => {
    const p = desiredPod(agentPod(), readyIdentity(), CM);
    assert.ok(!p.spec?.volumes?.some((v) => v.name === VOLUME_LISTENER_CA));
    assert.ok(!JSON.stringify(p.spec).includes(LISTENER_CA_DIR));
  });

  it('the sidecar has a startup probe on /readyz: agents start only once every listener (and its CA file) is up', () => {
    const probe = sidecarOf(desiredPod(agentPod(), withKube(), CM)).startupProbe;
    assert.deepEqual(probe, { httpGet: { path: '/readyz', port: 9901, scheme: 'HTTP' }, periodSeconds: 1, failureThreshold: STARTUP_FAILURE_THRESHOLD, timeoutSeconds: 1, successThreshold: 1 });
  });
});

describe('the agent kubeconfig', () => {
  it('points each kubernetes connection at https on loopback with its CA file, and the user at the chaperone token file', () => {
    const text = agentKubeconfig(withKube([{ name: 'staging', localPort: 7443 }])) ?? assert.fail('no kubeconfig');
    const kc = parse(text) as Kubeconfig;
    assert.equal(kc['current-context'], 'cluster');
    assert.deepEqual(kc.clusters, [
      { name: 'cluster', cluster: { server: 'https://127.0.0.1:6443', 'certificate-authority': '/var/run/chaperone/listener-ca/cluster.crt' } },
      { name: 'staging', cluster: { server: 'https://127.0.0.1:7443', 'certificate-authority': '/var/run/chaperone/listener-ca/staging.crt' } },
    ]);
    assert.deepEqual(kc.users, [{ name: 'chaperone', user: { tokenFile: AGENT_TOKEN_FILE } }]);
    assert.deepEqual(kc.contexts.map((c) => c.context), [
      { cluster: 'cluster', user: 'chaperone', namespace: 'agents' },
      { cluster: 'staging', user: 'chaperone', namespace: 'agents' },
    ]);
    assert.ok(!/token:|client-key|password/.test(text.replace(/tokenFile:/g, '')), 'no inline credential');
  });

  it('is the compiled ConfigMap\'s kubeconfig key; none without a kubernetes connection', () => {
    const id = withKube();
    const r = compileIdentity({ identity: id, maskingPolicies: [], approvalRules: [], env: { approvalsBackend: 'none' } });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(desiredConfigMap(id, r).data[KUBECONFIG_KEY], agentKubeconfig(id));
    assert.equal(agentKubeconfig(readyIdentity()), undefined);
  });
});

describe('compiler: the kubernetes listener makes its own certificate and writes the CA the kubeconfig names', () => {
  const id = withKube();
  const r = compileIdentity({ identity: id, maskingPolicies: [], approvalRules: [], env: { approvalsBackend: 'none' } });

  it('listen.selfSignedTls.caOut = the kubeconfig certificate-authority; postgres and http stay plaintext on loopback', () => {
    assert.ok(r.ok, JSON.stringify(r));
    const conns = r.config.connections as unknown as { name: string; protocol: string; listen: KubernetesConnectionConfig['listen'] }[];
    const kube = conns.find((c) => c.protocol === 'kubernetes') ?? assert.fail('no kubernetes connection');
    assert.deepEqual(kube.listen, { host: '127.0.0.1', port: 6443, selfSignedTls: { caOut: listenerCaFile('cluster') } });
    const kc = parse(agentKubeconfig(id) ?? '') as Kubeconfig;
    assert.equal(kc.clusters[0]?.cluster['certificate-authority'], kube.listen.selfSignedTls?.caOut);
    for (const c of conns.filter((x) => x.protocol !== 'kubernetes')) assert.equal(c.listen.selfSignedTls, undefined, c.name);
  });

  it('the sidecar accepts it and resolves selfSignedTls', () => {
    assert.ok(r.ok);
    const checked = checkConfig(JSON.parse(r.text) as unknown, r.hash, { checkFiles: false });
    assert.ok(checked.ok, JSON.stringify(checked));
    const kube = checked.config.connections.find((c) => c.protocol === 'kubernetes');
    assert.deepEqual(kube?.listen.selfSignedTls, { caOut: listenerCaFile('cluster') });
  });
});

describe('sidecar config: where listen.selfSignedTls is allowed', () => {
  const base = { version: 1, identity: { issuers: [{ issuer: 'https://idp.example', audiences: ['chaperone'] }] } };
  const kube = (listen: Record<string, unknown>): unknown => ({ ...base, connections: [{ name: 'k', protocol: 'kubernetes', listen: { port: 6443, ...listen }, credentials: { tokenFile: '/t' } }] });

  it('kubernetes: accepted, alone', () => {
    const r = checkConfig(kube({ selfSignedTls: { caOut: '/ca/k.crt' } }), 'h', { checkFiles: false });
    assert.ok(r.ok, JSON.stringify(r));
  });

  it('refused together with tls, and on an http connection', () => {
    const both = checkConfig(kube({ selfSignedTls: { caOut: '/ca/k.crt' }, tls: { certFile: '/c', keyFile: '/k' } }), 'h', { checkFiles: false });
    assert.ok(!both.ok);
    assert.match(JSON.stringify(both.errors), /both tls and selfSignedTls/);
    const http = checkConfig({ ...base, connections: [{ name: 'h', protocol: 'http', listen: { port: 8080, selfSignedTls: { caOut: '/ca/h.crt' } }, upstream: { url: 'https://api.example' }, credentials: { type: 'none' } }] }, 'h', { checkFiles: false });
    assert.ok(!http.ok);
    assert.match(JSON.stringify(http.errors), /kubernetes connections only/);
  });
});
