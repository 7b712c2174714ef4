// forwardProxy → the sidecar's `egress` section: hosts grouped with their ports, the address scope, and a config the sidecar accepts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentIdentity } from '../api/types.ts';
import { compileIdentity } from './compile.ts';
import { egressAllow, interceptionSection } from './egress.ts';
import type { CompileError } from './types.ts';
import { checkConfig } from '../../sidecar/core/config.ts';

function identity(forwardProxy?: NonNullable<AgentIdentity['spec']['interception']>['forwardProxy']): AgentIdentity {
  return {
    apiVersion: 'chaperone.dev/v1alpha1', kind: 'AgentIdentity', metadata: { name: 'a', namespace: 'agents' },
    spec: {
      connections: [{ name: 'api', protocol: 'http', upstream: { url: 'https://api.example.com' }, localPort: 8080, credential: { secretRef: { name: 'api-cred' }, type: 'Bearer', tokenKey: 'token' } }],
      ...(forwardProxy ? { interception: { mode: 'explicit', forwardProxy } } : {}),
    },
  };
}

describe('egressAllow', () => {
  it('groups ports per host; a bare host keeps the default ports in its own entry; order of first appearance', () => {
    const errors: CompileError[] = [];
    const out = egressAllow(['*.npmjs.org', 'api.github.com:443', 'API.GitHub.com:8443', 'api.github.com', '10.0.0.7:5000'], 'public', errors, 'x');
    assert.deepEqual(errors, []);
    assert.deepEqual(out, [
      { host: '*.npmjs.org', addresses: 'public' },
      { host: 'api.github.com', addresses: 'public' },
      { host: 'api.github.com', ports: [443, 8443], addresses: 'public' },
      { host: '10.0.0.7', ports: [5000], addresses: 'public' },
    ]);
  });
  it('a port out of range is an error naming the entry', () => {
    const errors: CompileError[] = [];
    egressAllow(['ok.example', 'bad.example:0', 'worse.example:99999'], 'public', errors, 'AgentIdentity/a.spec.interception.forwardProxy');
    assert.deepEqual(errors.map((e) => e.path), ['AgentIdentity/a.spec.interception.forwardProxy.allowedHosts[1]', 'AgentIdentity/a.spec.interception.forwardProxy.allowedHosts[2]']);
  });
});

describe('compileIdentity with a forward proxy', () => {
  it('compiles an egress section on the loopback port that the sidecar loads, with no warning left', () => {
    const r = compileIdentity({ identity: identity({ localPort: 3128, allowedHosts: ['api.github.com', '*.pypi.org:443'], addresses: 'private' }), maskingPolicies: [], approvalRules: [] });
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(r.config.egress, {
      name: 'egress', listen: { host: '127.0.0.1', port: 3128 }, access: { anyAuthenticated: true },
      allow: [{ host: 'api.github.com', addresses: 'private' }, { host: '*.pypi.org', ports: [443], addresses: 'private' }],
    });
    assert.ok(!r.warnings.some((w) => /forward proxy/.test(w)), r.warnings.join('\n'));
    const loaded = checkConfig(JSON.parse(r.text) as unknown, r.hash, { checkFiles: false });
    assert.ok(loaded.ok, JSON.stringify(loaded));
    assert.equal(loaded.config.egress?.listen.port, 3128);
    assert.equal(loaded.config.egress?.tunnelIdleTimeoutSeconds, 300);
  });
  it('no forward proxy: no egress section', () => {
    const r = compileIdentity({ identity: identity(), maskingPolicies: [], approvalRules: [] });
    assert.ok(r.ok);
    assert.equal(r.config.egress, undefined);
  });
  it('a proxy port that is the admin port is refused by the sidecar\'s checker, naming the field', () => {
    const r = compileIdentity({ identity: identity({ localPort: 9901, allowedHosts: ['api.github.com'] }), maskingPolicies: [], approvalRules: [] });
    assert.equal(r.ok, false);
    assert.match(JSON.stringify(!r.ok && r.errors), /egress\.listen\.port/);
  });
});

describe('interceptionSection', () => {
  it('transparent identities get mode and egress (ports sorted, defaults filled); explicit ones none', () => {
    const t = identity();
    t.spec.interception = { mode: 'transparent', egress: { policy: 'deny-by-default', allow: [{ cidr: '10.0.0.0/8', ports: [5432, 443, 443] }] } };
    assert.deepEqual(interceptionSection(t), { mode: 'transparent', egress: { policy: 'deny-by-default', allowDNS: true, allow: [{ cidr: '10.0.0.0/8', ports: [443, 5432] }] } });
    assert.equal(interceptionSection(identity()), undefined);
    const r = compileIdentity({ identity: t, maskingPolicies: [], approvalRules: [] });
    assert.ok(r.ok, JSON.stringify(r));
    const loaded = checkConfig(JSON.parse(r.text) as unknown, r.hash, { checkFiles: false });
    assert.ok(loaded.ok, JSON.stringify(loaded));
    assert.equal(loaded.config.interception?.mode, 'transparent');
  });
});
