// HTTP/Kubernetes rule compiler and evaluator: rule shapes the operator emits, priorities, predicates, fail-closed edges.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bodyValues, compileHttpPolicy, evaluateHttp, pathGlob, type CompiledHttpPolicy, type HttpFacts } from './http-rules.ts';
import { requestInfo } from '../protocols/kubernetes/request-info.ts';
import type { HttpPolicyConfig } from '../core/config-types.ts';

function policy(cfg: HttpPolicyConfig, block: 'http' | 'kubernetes' = 'http'): CompiledHttpPolicy {
  const r = compileHttpPolicy(cfg, block);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.policy;
}

function facts(method: string, url: string, body?: unknown, websocket = false): HttpFacts {
  const u = new URL(url, 'http://x');
  return { method, path: u.pathname, query: u.searchParams, body, websocket };
}

function kfacts(method: string, url: string): HttpFacts {
  const u = new URL(url, 'http://x');
  return { ...facts(method, url), kube: requestInfo(method, u.pathname, u.searchParams) };
}

describe('pathGlob', () => {
  const cases: [string, string, boolean][] = [
    ['/repos/*/*/pulls', '/repos/a/b/pulls', true],
    ['/repos/*/*/pulls', '/repos/a/pulls', false],
    ['/repos/*/*/pulls', '/repos/a/b/c/pulls', false],
    ['/admin/**', '/admin', true],
    ['/admin/**', '/admin/x/y', true],
    ['/admin/**', '/administrator', false],
    ['/**', '/anything/at/all', true],
    ['/v1/*.json', '/v1/a.json', true],
    ['/v1/*.json', '/v1/a/b.json', false],
  ];
  for (const [g, p, want] of cases) it(`given ${g} and ${p}, returns ${want}`, () => assert.equal(pathGlob(g).test(p), want));
});

describe('bodyValues', () => {
  it('walks keys, array indices and * wildcards', () => {
    const b = { spec: { replicas: 3, containers: [{ image: 'a' }, { image: 'b' }] } };
    assert.deepEqual(bodyValues(b, ['spec', 'replicas']), [3]);
    assert.deepEqual(bodyValues(b, ['spec', 'containers', '*', 'image']), ['a', 'b']);
    assert.deepEqual(bodyValues(b, ['spec', 'containers', '1', 'image']), ['b']);
    assert.deepEqual(bodyValues(b, ['spec', 'missing']), []);
  });
});

describe('evaluateHttp: http rules', () => {
  const p = policy({
    default: 'allow',
    rules: [
      { id: 'no-admin', action: 'deny', priority: 600, message: 'admin API is off limits', match: { http: { paths: ['/admin/**'] } } },
      { id: 'merge-needs-ok', action: 'require-approval', match: { http: { methods: ['PUT'], paths: ['/repos/*/*/pulls/*/merge'] } }, approval: { approverGroups: ['leads'], timeoutSeconds: 60 } },
      { id: 'no-force-push', action: 'deny', match: { http: { methods: ['PATCH'], paths: ['/repos/*/*/git/refs/**'], body: [{ path: 'force', values: ['true'] }] } } },
      { id: 'no-dry-run-off', action: 'deny', match: { http: { query: [{ name: 'dry_run', values: ['false', '0'] }] } } },
      { id: 'needs-token-param-absent', action: 'deny', match: { http: { paths: ['/export'], query: [{ name: 'scope', present: false }] } } },
      { id: 'allow-ws', action: 'allow', match: { http: { paths: ['/ws'], websocket: true } } },
    ],
  });
  it('given a path under a deny glob, returns deny naming the rule and its message', () => {
    const d = evaluateHttp(p, facts('GET', '/admin/users'));
    assert.equal(d.action, 'deny');
    assert.equal(d.rule, 'no-admin');
    assert.equal(d.action === 'deny' && d.message, 'admin API is off limits');
  });
  it('given a merge, returns require-approval with the approval settings', () => {
    const d = evaluateHttp(p, facts('PUT', '/repos/o/r/pulls/7/merge'));
    assert.equal(d.action, 'require-approval');
    assert.deepEqual(d.action === 'require-approval' && d.approval, { approverGroups: ['leads'], timeoutSeconds: 60 });
  });
  it('given a JSON body predicate, matches only bodies with the value', () => {
    assert.equal(evaluateHttp(p, facts('PATCH', '/repos/o/r/git/refs/heads/main', { force: true })).action, 'deny');
    assert.equal(evaluateHttp(p, facts('PATCH', '/repos/o/r/git/refs/heads/main', { force: false })).action, 'allow');
    assert.equal(evaluateHttp(p, facts('PATCH', '/repos/o/r/git/refs/heads/main', undefined)).action, 'allow');
  });
  it('given query predicates, checks values and absence', () => {
    assert.equal(evaluateHttp(p, facts('POST', '/jobs?dry_run=false')).rule, 'no-dry-run-off');
    assert.equal(evaluateHttp(p, facts('POST', '/jobs?dry_run=true')).action, 'allow');
    assert.equal(evaluateHttp(p, facts('GET', '/export')).rule, 'needs-token-param-absent');
    assert.equal(evaluateHttp(p, facts('GET', '/export?scope=x')).action, 'allow');
  });
  it('given no matching rule, returns the default', () => {
    assert.deepEqual(evaluateHttp(p, facts('GET', '/repos/o/r')), { action: 'allow', rule: null, reason: 'default-allow' });
    const deny = policy({ default: 'deny' });
    assert.equal(evaluateHttp(deny, facts('GET', '/x')).rule, 'chaperone.default-deny');
  });
  it('given a WebSocket upgrade, allows it only through an allow rule with websocket: true', () => {
    assert.equal(evaluateHttp(p, facts('GET', '/ws', undefined, true)).action, 'allow');
    assert.equal(evaluateHttp(p, facts('GET', '/other', undefined, true)).rule, 'chaperone.websocket');
    assert.equal(evaluateHttp(p, facts('GET', '/ws', undefined, false)).action, 'allow');
  });
  it('given equal priorities, deny beats require-approval beats allow; a higher priority decides first', () => {
    const q = policy({
      rules: [
        { id: 'a', action: 'allow', priority: 900, match: { http: { paths: ['/open/**'] } } },
        { id: 'b', action: 'deny', priority: 100, match: { http: { paths: ['/**'] } } },
        { id: 'c', action: 'require-approval', priority: 100, match: { http: { methods: ['POST'] } } },
      ],
    });
    assert.equal(evaluateHttp(q, facts('POST', '/open/x')).rule, 'a');
    assert.equal(evaluateHttp(q, facts('POST', '/closed')).rule, 'b');
  });
});

describe('evaluateHttp: kubernetes rules', () => {
  const p = policy(
    {
      default: 'allow',
      rules: [
        { id: 'no-secrets', action: 'deny', match: { kubernetes: { verbs: ['get', 'list', 'watch'], resources: ['secrets'] } } },
        { id: 'hold-deploy-delete', action: 'require-approval', match: { kubernetes: { verbs: ['delete', 'deletecollection'], apiGroups: ['apps'], resources: ['deployments'] } } },
        { id: 'no-exec', action: 'deny', match: { kubernetes: { resources: ['pods'], subresources: ['exec', 'attach', 'portforward'] } } },
        { id: 'no-prod', action: 'deny', match: { kubernetes: { namespaces: ['prod-*'] } } },
        { id: 'no-rbac-edit', action: 'deny', match: { kubernetes: { resources: ['clusterroles/*'], names: ['admin*'] } } },
      ],
    },
    'kubernetes',
  );
  const cases: [string, string, string][] = [
    ['GET', '/api/v1/namespaces/a/secrets', 'no-secrets'],
    ['GET', '/api/v1/namespaces/a/secrets/x', 'no-secrets'],
    ['GET', '/api/v1/namespaces/a/secrets?watch=1', 'no-secrets'],
    ['DELETE', '/apis/apps/v1/namespaces/a/deployments/web', 'hold-deploy-delete'],
    ['DELETE', '/apis/apps/v1/namespaces/a/deployments', 'hold-deploy-delete'],
    ['DELETE', '/apis/apps/v1/namespaces/a/statefulsets/web', 'allow'],
    ['POST', '/api/v1/namespaces/a/pods/p/exec', 'no-exec'],
    ['GET', '/api/v1/namespaces/a/pods/p/attach', 'no-exec'],
    ['POST', '/api/v1/namespaces/a/pods/p/portforward', 'no-exec'],
    ['GET', '/api/v1/namespaces/a/pods/p/log', 'allow'],
    ['GET', '/api/v1/namespaces/prod-eu/pods', 'no-prod'],
    ['GET', '/api/v1/pods', 'allow'],
    ['GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles/admin', 'allow'],
    ['GET', '/version', 'allow'],
  ];
  for (const [m, u, want] of cases) {
    it(`given ${m} ${u}, returns ${want}`, () => {
      const d = evaluateHttp(p, kfacts(m, u));
      assert.equal(d.action === 'allow' ? 'allow' : d.rule, want);
    });
  }
});

describe('compileHttpPolicy: refuses what it cannot judge', () => {
  const bad: [string, unknown, string][] = [
    ['an unknown rule field', { rules: [{ id: 'x', action: 'deny', mtach: {} }] }, 'rules[0].mtach'],
    ['an unknown action', { rules: [{ id: 'x', action: 'block' }] }, 'rules[0].action'],
    ['a kubernetes block on an http connection', { rules: [{ id: 'x', action: 'deny', match: { kubernetes: {} } }] }, 'rules[0].match.kubernetes'],
    ['an unknown method', { rules: [{ id: 'x', action: 'deny', match: { http: { methods: ['FETCH'] } } }] }, 'rules[0].match.http.methods[0]'],
    ['a relative path glob', { rules: [{ id: 'x', action: 'deny', match: { http: { paths: ['admin'] } } }] }, 'rules[0].match.http.paths[0]'],
    ['a duplicate id', { rules: [{ id: 'x', action: 'deny' }, { id: 'x', action: 'allow' }] }, 'rules[1].id'],
    ['present false with values', { rules: [{ id: 'x', action: 'deny', match: { http: { query: [{ name: 'a', present: false, values: ['1'] }] } } }] }, 'rules[0].match.http.query[0]'],
  ];
  for (const [what, cfg, path] of bad) {
    it(`given ${what}, names ${path}`, () => {
      const r = compileHttpPolicy(cfg as HttpPolicyConfig, 'http');
      assert.equal(r.ok, false);
      assert.ok(!r.ok && r.errors.some((e) => e.path === path), JSON.stringify(!r.ok && r.errors));
    });
  }
  it('given the compiler output shape (priority, message, approval), compiles', () => {
    const r = compileHttpPolicy({ default: 'allow', rules: [{ id: 'r', action: 'require-approval', priority: 500, message: 'm', match: { http: { methods: ['DELETE'] } }, approval: { rule: 'r', approverGroups: ['g'], timeoutSeconds: 600 } }] }, 'http');
    assert.equal(r.ok, true);
  });
  it('given a body pattern, compiles it as RE2 and matches it', () => {
    const p = policy({ rules: [{ id: 'r', action: 'deny', match: { http: { body: [{ path: 'branch', pattern: '^release/' }] } } }] });
    assert.equal(p.needsBody, true);
    assert.equal(evaluateHttp(p, facts('POST', '/x', { branch: 'release/1.2' })).action, 'deny');
    assert.equal(evaluateHttp(p, facts('POST', '/x', { branch: 'main' })).action, 'allow');
  });
});

// Deny and require-approval rules match every reading an upstream could have; allow rules only the strict one.
describe('fail-closed readings', () => {
  const p = policy({
    default: 'deny',
    rules: [
      { id: 'no-admin', action: 'deny', priority: 600, match: { http: { paths: ['/admin/**'] } } },
      { id: 'no-force', action: 'deny', priority: 600, match: { http: { methods: ['PATCH'], body: [{ path: 'force', values: ['true'] }] } } },
      { id: 'hold-export', action: 'require-approval', priority: 600, match: { http: { methods: ['GET'], paths: ['/export'] } } },
      { id: 'public', action: 'allow', match: { http: { paths: ['/public/**'] } } },
      { id: 'dry-runs', action: 'allow', match: { http: { methods: ['PATCH'], body: [{ path: 'dryRun', values: ['true'] }] } } },
    ],
  });
  it('path globs of deny rules ignore case (GitHub owners and repos, IIS, case-insensitive routers); allow globs do not', () => {
    assert.equal(evaluateHttp(p, facts('GET', '/ADMIN/Users')).rule, 'no-admin');
    assert.equal(evaluateHttp(p, facts('GET', '/public/x')).rule, 'public');
    assert.equal(evaluateHttp(p, facts('GET', '/PUBLIC/x')).rule, 'chaperone.default-deny');
  });
  it('a rule on GET covers HEAD (servers run the GET handler for it)', () => {
    assert.equal(evaluateHttp(p, facts('HEAD', '/export')).action, 'require-approval');
  });
  it('body keys of deny rules match in any case (Go encoding/json); those of allow rules exactly', () => {
    assert.equal(evaluateHttp(p, facts('PATCH', '/x', { FORCE: true })).rule, 'no-force');
    assert.equal(evaluateHttp(p, facts('PATCH', '/x', { DRYRUN: true })).rule, 'chaperone.default-deny');
    assert.equal(evaluateHttp(p, facts('PATCH', '/x', { dryRun: true })).rule, 'dry-runs');
  });
  it('an unknown body matches deny body predicates and no allow body predicate', () => {
    const f: HttpFacts = { ...facts('PATCH', '/x'), bodyUnknown: true };
    assert.equal(evaluateHttp(p, f).rule, 'no-force');
    const q = policy({ default: 'deny', rules: [{ id: 'dry-runs', action: 'allow', match: { http: { body: [{ path: 'dryRun', values: ['true'] }] } } }] });
    assert.equal(evaluateHttp(q, f).rule, 'chaperone.default-deny');
    assert.equal(evaluateHttp(q, facts('PATCH', '/x')).rule, 'chaperone.default-deny');
  });
});
