// operator/compile: an AgentIdentity kubernetes connection's `guardrails.allowTokenRequests` and `guardrails.allowProxy` reach the sidecar config (and the sidecar's validator accepts it); absent, nothing is emitted.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentIdentity } from '../../operator/api/types.ts';
import { loadCrds } from '../../operator/api/schema.ts';
import { compileIdentity } from '../../operator/compile/compile.ts';
import { checkConfig } from '../../sidecar/core/config.ts';
import type { KubernetesConnectionConfig, SidecarConfig } from '../../sidecar/core/config-types.ts';

type Opt = { allowTokenRequests?: boolean; allowProxy?: boolean };

function identity(guardrails?: Opt): AgentIdentity {
  return {
    apiVersion: 'chaperone.dev/v1alpha1', kind: 'AgentIdentity', metadata: { name: 'admin-agent', namespace: 'agents' },
    spec: { connections: [{ name: 'cluster', protocol: 'kubernetes', localPort: 6443, credential: { serviceAccountName: 'cluster-admin-scope' }, ...(guardrails !== undefined ? { guardrails } : {}) }] },
  };
}

function kube(guardrails?: Opt): KubernetesConnectionConfig {
  const r = compileIdentity({ identity: identity(guardrails), maskingPolicies: [], approvalRules: [] });
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.errors));
  const checked = checkConfig(JSON.parse(r.text) as unknown, r.hash, { checkFiles: false });
  assert.ok(checked.ok, checked.ok ? '' : JSON.stringify(checked.errors));
  const c = (JSON.parse(r.text) as SidecarConfig).connections.find((x) => x.name === 'cluster');
  assert.ok(c !== undefined && c.protocol === 'kubernetes');
  return c;
}

describe('compile: kubernetes guardrails opt-out', () => {
  it('allowTokenRequests: true is compiled into the connection', () => assert.deepEqual(kube({ allowTokenRequests: true }).guardrails, { allowTokenRequests: true }));
  it('absent or false, no guardrails field is emitted (the defaults hold)', () => {
    assert.equal(kube().guardrails, undefined);
    assert.equal(kube({ allowTokenRequests: false }).guardrails, undefined);
    assert.equal(kube({ allowTokenRequests: false, allowProxy: false }).guardrails, undefined);
  });
  it('allowProxy: true is compiled into the connection, alone or with allowTokenRequests', () => {
    assert.deepEqual(kube({ allowProxy: true }).guardrails, { allowProxy: true });
    assert.deepEqual(kube({ allowProxy: true, allowTokenRequests: false }).guardrails, { allowProxy: true });
    assert.deepEqual(kube({ allowProxy: true, allowTokenRequests: true }).guardrails, { allowTokenRequests: true, allowProxy: true });
  });
  it('the CRD has the field with a CEL rule keeping it to kubernetes connections', () => {
    const crd = loadCrds().find((c) => c.crd.metadata.name === 'agentidentities.chaperone.dev');
    const text = JSON.stringify(crd?.crd);
    assert.match(text, /allowTokenRequests/);
    assert.match(text, /allowProxy/);
    assert.match(text, /guardrails is for kubernetes connections only/);
  });
});
