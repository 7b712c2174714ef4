// The forward proxy as a policy target: MaskingPolicies and ApprovalRules select it as the http connection `egress`; match.http.hosts narrows rules (kept for the proxy, judged at compile time for fixed upstreams).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentIdentity, ApprovalRule, MaskingPolicy } from '../../operator/api/types.ts';
import { compileIdentity, type CompileResult } from '../../operator/compile/compile.ts';
import { checkConfig } from '../../sidecar/core/config.ts';
import type { EgressConfig, HttpConnectionConfig, SidecarConfig } from '../../sidecar/core/config-types.ts';

function identity(withProxy = true, extra: AgentIdentity['spec']['connections'] = []): AgentIdentity {
  return {
    apiVersion: 'chaperone.dev/v1alpha1', kind: 'AgentIdentity', metadata: { name: 'a', namespace: 'agents' },
    spec: {
      connections: [
        { name: 'db', protocol: 'postgres', upstream: { host: 'db.svc', port: 5432 }, database: 'app', localPort: 5432, credential: { secretRef: { name: 'db-cred' } } },
        { name: 'api', protocol: 'http', upstream: { url: 'https://api.github.com' }, localPort: 8080, credential: { secretRef: { name: 'api-cred' }, type: 'Bearer', tokenKey: 'token' } },
        ...extra,
      ],
      ...(withProxy ? { interception: { mode: 'explicit' as const, forwardProxy: { localPort: 3128, allowedHosts: ['registry.npmjs.org', '*.github.com', 'api.github.com:8443'] } } } : {}),
    },
  };
}

function policy(name: string, spec: Partial<MaskingPolicy['spec']> & Pick<MaskingPolicy['spec'], 'selector'>): MaskingPolicy {
  return { apiVersion: 'chaperone.dev/v1alpha1', kind: 'MaskingPolicy', metadata: { name, namespace: 'agents' }, spec };
}

function rule(name: string, spec: Partial<ApprovalRule['spec']> & Pick<ApprovalRule['spec'], 'selector' | 'action' | 'match'>): ApprovalRule {
  return { apiVersion: 'chaperone.dev/v1alpha1', kind: 'ApprovalRule', metadata: { name, namespace: 'agents' }, spec };
}

const approvers = { approvers: { groups: ['leads'] } };

function compiled(id: AgentIdentity, maskingPolicies: MaskingPolicy[], approvalRules: ApprovalRule[]): SidecarConfig {
  const r = compileIdentity({ identity: id, maskingPolicies, approvalRules, env: { approvalsBackend: 'local' } });
  assert.ok(r.ok, JSON.stringify(!r.ok ? r.errors : []));
  const c = checkConfig(JSON.parse(r.text) as unknown, r.hash, { checkFiles: false });
  assert.ok(c.ok, JSON.stringify(!c.ok ? c.errors : []));
  return c.config;
}

function errorsOf(r: CompileResult): string {
  assert.equal(r.ok, false);
  return JSON.stringify(!r.ok ? r.errors : []);
}

const egress = (c: SidecarConfig): EgressConfig => {
  assert.ok(c.egress, 'no egress section');
  return c.egress;
};
const api = (c: SidecarConfig): HttpConnectionConfig => c.connections.find((x) => x.name === 'api') as HttpConnectionConfig;
const ruleIds = (rules: readonly Readonly<Record<string, unknown>>[] | undefined): unknown[] => (rules ?? []).map((r) => r['id']);

describe('MaskingPolicy → the forward proxy', () => {
  it('connections: [egress] puts the policy (field rules, patterns) on the proxy only', () => {
    const p = policy('proxy-fields', { selector: { identities: ['a'], connections: ['egress'] }, fields: [{ path: '**.apiKey' }], patterns: [{ name: 'tok', regex: 'tok_[a-z]{8}' }] });
    const cfg = compiled(identity(), [p], []);
    const m = egress(cfg).masking;
    assert.deepEqual(m.fieldRules?.map((x) => x.names), [['apiKey']]);
    assert.deepEqual(m.customPatterns?.map((x) => x.id), ['custom.tok']);
    assert.equal(api(cfg).masking.fieldRules, undefined, 'the api connection is not selected');
  });

  it('an unnarrowed policy and protocols: [http] reach the proxy; protocols: [postgres] does not', () => {
    const all = policy('all', { selector: { identities: ['a'] }, fields: [{ path: 'secret' }] });
    assert.deepEqual(egress(compiled(identity(), [all], [])).masking.fieldRules?.map((x) => x.names), [['secret']]);
    const http = policy('http', { selector: { identities: ['a'], protocols: ['http'] }, fields: [{ path: 'token' }] });
    assert.deepEqual(egress(compiled(identity(), [http], [])).masking.fieldRules?.map((x) => x.names), [['token']]);
    const pg = policy('pg', { selector: { identities: ['a'], protocols: ['postgres'] }, columns: [{ name: 'ssn' }] });
    assert.deepEqual(egress(compiled(identity(), [pg], [])).masking, {}, 'no policy selects the proxy: the sidecar defaults');
  });

  it('connections: [egress] on an identity without a forward proxy is an error that says where egress comes from', () => {
    const p = policy('proxy-fields', { selector: { identities: ['a'], connections: ['egress'] }, fields: [{ path: 'x' }] });
    const e = errorsOf(compileIdentity({ identity: identity(false), maskingPolicies: [p], approvalRules: [] }));
    assert.match(e, /MaskingPolicy\/proxy-fields\.spec\.selector\.connections/);
    assert.match(e, /forwardProxy/);
  });
});

describe('ApprovalRule → the forward proxy', () => {
  it('a Deny by host and path compiles into egress.policy.http with its hosts; the api connection does not get it', () => {
    const r = rule('no-publish', { selector: { identities: ['a'], connections: ['egress'] }, action: 'Deny', message: 'no publishing', match: { http: { hosts: ['registry.npmjs.org'], methods: ['PUT'], paths: ['/**'] } } });
    const cfg = compiled(identity(), [], [r]);
    const rules = egress(cfg).policy.http.rules ?? [];
    assert.deepEqual(rules, [{ id: 'no-publish', action: 'deny', priority: 500, message: 'no publishing', match: { http: { hosts: ['registry.npmjs.org'], methods: ['PUT'], paths: ['/**'] } } }]);
    assert.deepEqual(ruleIds(api(cfg).policy.http.rules), []);
  });

  it('RequireApproval on the proxy configures the approvals backend and its approver groups', () => {
    const r = rule('hold-openai', { selector: { identities: ['a'], connections: ['egress'] }, action: 'RequireApproval', match: { http: { hosts: ['*.github.com'] } }, approval: approvers });
    const cfg = compiled(identity(), [], [r]);
    assert.equal(cfg.approvals.backend, 'local');
    assert.deepEqual(cfg.admin.approverGroups, ['leads']);
    const only = egress(cfg).policy.http.rules?.[0];
    assert.equal(only?.['action'], 'require-approval');
    assert.deepEqual((only?.['approval'] as { approverGroups: string[] }).approverGroups, ['leads']);
  });

  it('hosts on a fixed-upstream http connection are judged at compile time: a matching rule applies without hosts, another is dropped', () => {
    const gh = rule('gh-deletes', { selector: { identities: ['a'], protocols: ['http'] }, action: 'Deny', match: { http: { hosts: ['*.github.com'], methods: ['DELETE'] } } });
    const other = rule('npm-only', { selector: { identities: ['a'], protocols: ['http'] }, action: 'Deny', match: { http: { hosts: ['registry.npmjs.org'], methods: ['PUT'] } } });
    const port = rule('other-port', { selector: { identities: ['a'], protocols: ['http'] }, action: 'Deny', match: { http: { hosts: ['api.github.com:8443'] } } });
    const cfg = compiled(identity(), [], [gh, other, port]);
    const apiRules = api(cfg).policy.http.rules ?? [];
    assert.deepEqual(apiRules.map((x) => [x['id'], x['match']]), [['gh-deletes', { http: { methods: ['DELETE'] } }]]);
    // The proxy keeps every rule with its hosts (it judges them per request).
    assert.deepEqual(ruleIds(egress(cfg).policy.http.rules), ['gh-deletes', 'npm-only', 'other-port']);
    assert.deepEqual(egress(cfg).policy.http.rules?.[0]?.['match'], { http: { hosts: ['*.github.com'], methods: ['DELETE'] } });
  });

  it('rules for postgres or kubernetes never reach the proxy; a proxy without rules keeps the sidecar default', () => {
    const sql = rule('no-ddl', { selector: { identities: ['a'] }, action: 'Deny', match: { sql: { kinds: ['ddl'] } } });
    const cfg = compiled(identity(), [], [sql]);
    assert.equal(egress(cfg).policy.http.rules, undefined);
  });

  it('CONNECT with paths is refused with the rule named; a connection named egress next to a forward proxy is refused', () => {
    const r = rule('bad-connect', { selector: { identities: ['a'], connections: ['egress'] }, action: 'Deny', match: { http: { methods: ['CONNECT'], paths: ['/x'] } } });
    const e = errorsOf(compileIdentity({ identity: identity(), maskingPolicies: [], approvalRules: [r] }));
    assert.match(e, /ApprovalRule\/bad-connect\.spec\.match\.http/);
    assert.match(e, /judged by hosts only/);
    const clash = identity(true, [{ name: 'egress', protocol: 'http', upstream: { url: 'https://x.example' }, localPort: 8081 }]);
    assert.match(errorsOf(compileIdentity({ identity: clash, maskingPolicies: [], approvalRules: [] })), /named egress, the name of the forward proxy/);
  });
});
