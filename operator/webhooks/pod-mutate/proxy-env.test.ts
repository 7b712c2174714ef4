// The forward proxy's env in agent containers: upper and lower case, loopback excluded, a fixpoint, nothing for identities without a proxy.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Pod } from '@kubernetes/client-node';
import { desiredPod, injectedStatus, NO_PROXY, proxyEnv } from './build.ts';
import { mutatePod } from './admit.ts';
import { jsonPatch } from './patch.ts';
import { SIDECAR_CONTAINER_NAME } from './layout.ts';
import { agentPod, NS, readyIdentity } from '../testdata/pods.ts';
import type { AgentIdentity } from '../../api/types.ts';

const CM = 'chaperone-coding-agent';
const PROXY_VARS = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy'];

function withProxy(mode: 'explicit' | 'transparent' = 'explicit'): AgentIdentity {
  return readyIdentity({ interception: { mode, ...(mode === 'transparent' ? { egress: { policy: 'deny-by-default' } } : {}), forwardProxy: { localPort: 3128, allowedHosts: ['api.github.com', '*.npmjs.org'] } } });
}

function envOf(pod: V1Pod, container: string): Record<string, string> {
  const c = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((x) => x.name === container);
  return Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value ?? '']));
}

describe('forward proxy env', () => {
  it('given a forward proxy, every agent container gets HTTP(S)_PROXY and NO_PROXY in both cases, pointing at the loopback port', () => {
    const pod = desiredPod(agentPod(), withProxy(), CM);
    for (const c of pod.spec!.containers.filter((x) => x.name !== SIDECAR_CONTAINER_NAME)) {
      const env = envOf(pod, c.name);
      for (const n of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'CHAPERONE_PROXY_URL']) assert.equal(env[n], 'http://127.0.0.1:3128', `${c.name} ${n}`);
      assert.equal(env['NO_PROXY'], NO_PROXY);
      assert.equal(env['no_proxy'], NO_PROXY);
      assert.ok(!PROXY_VARS.some((n) => (env[n] ?? '').includes('@')), 'no credential in a proxy URL');
    }
    assert.deepEqual(PROXY_VARS.filter((n) => !injectedStatus(pod)!.env.includes(n)), [], 'the status annotation lists them');
  });

  it('the sidecar container gets none of them (its own dials go direct, exempt from the iptables rules by UID)', () => {
    const pod = desiredPod(agentPod(), withProxy('transparent'), CM);
    const env = envOf(pod, SIDECAR_CONTAINER_NAME);
    for (const n of PROXY_VARS) assert.equal(env[n], undefined, n);
  });

  it('given no forward proxy, nothing is added', () => {
    assert.deepEqual(proxyEnv(readyIdentity()), []);
    const env = envOf(desiredPod(agentPod(), readyIdentity(), CM), agentPod().spec!.containers[0]!.name);
    for (const n of PROXY_VARS) assert.equal(env[n], undefined, n);
  });

  it('an agent\'s own proxy settings are replaced, not duplicated (it must not bypass the sidecar)', () => {
    const pod = agentPod();
    pod.spec!.containers[0]!.env = [{ name: 'HTTPS_PROXY', value: 'http://corp-proxy:8080' }, { name: 'https_proxy', value: 'http://corp-proxy:8080' }];
    const built = desiredPod(pod, withProxy(), CM);
    const env = built.spec!.containers[0]!.env!;
    assert.equal(env.filter((e) => e.name === 'HTTPS_PROXY').length, 1);
    assert.equal(envOf(built, pod.spec!.containers[0]!.name)['https_proxy'], 'http://127.0.0.1:3128');
  });

  for (const mode of ['explicit', 'transparent'] as const) {
    it(`re-admitting the stored pod gives an empty patch (${mode})`, () => {
      const pod = agentPod();
      // Transparent interception admits only agents with an explicit non-root UID.
      for (const c of pod.spec!.containers) c.securityContext = { runAsUser: 1000, allowPrivilegeEscalation: false };
      const built = JSON.parse(JSON.stringify(desiredPod(pod, withProxy(mode), CM))) as V1Pod;
      assert.deepEqual(jsonPatch(built, desiredPod(built, withProxy(mode), CM)), []);
      const r = mutatePod({ uid: 'u', namespace: NS, operatorNamespace: 'chaperone-system', pod: built, identity: withProxy(mode) });
      assert.equal(r.outcome, 'unchanged');
    });
  }
});
