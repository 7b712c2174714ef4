// The proxy's rules: host patterns, per-host narrowing for the gateways, which rules judge a CONNECT tunnel, and what is refused.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateHttp } from '../../policy/http-rules.ts';
import { compileEgressPolicy, hostPatternMatches, parseHostPattern, type EgressPolicy } from './rules.ts';

function ok(rules: Record<string, unknown>[], def: 'allow' | 'deny' = 'allow'): EgressPolicy {
  const r = compileEgressPolicy({ default: def, rules });
  assert.ok(r.ok, JSON.stringify(!r.ok ? r.errors : []));
  return r.policy;
}

const facts = (method: string, path: string): Parameters<typeof evaluateHttp>[1] => ({ method, path, query: new URLSearchParams(), body: undefined, websocket: false });

describe('host patterns', () => {
  it('exact, *.suffix (not the apex), *, ports, IP literals', () => {
    assert.equal(hostPatternMatches('api.example.com', 'API.example.com', 443), true);
    assert.equal(hostPatternMatches('*.example.com', 'a.b.example.com', 80), true);
    assert.equal(hostPatternMatches('*.example.com', 'example.com', 80), false);
    assert.equal(hostPatternMatches('*', 'anything.test', 1), true);
    assert.equal(hostPatternMatches('api.example.com:8443', 'api.example.com', 443), false);
    assert.equal(hostPatternMatches('api.example.com:8443', 'api.example.com', 8443), true);
    assert.equal(hostPatternMatches('127.0.0.1:80', '127.0.0.1', 80), true);
    assert.equal(hostPatternMatches('[::1]:443', '::1', 443), true);
    for (const bad of ['', 'a b', 'x:0', 'x:70000', 'user@host']) assert.equal(parseHostPattern(bad), undefined, bad);
  });
});

describe('compileEgressPolicy', () => {
  const rules = [
    { id: 'npm-publish', action: 'deny', match: { http: { hosts: ['registry.npmjs.org'], methods: ['PUT'] } } },
    { id: 'gh-hold', action: 'require-approval', approval: { approverGroups: ['leads'] }, match: { http: { hosts: ['*.github.com'] } } },
    { id: 'no-admin', action: 'deny', match: { http: { paths: ['/admin/**'] } } },
    { id: 'tunnel-8443', action: 'deny', match: { http: { methods: ['CONNECT'], hosts: ['*:8443'] } } },
  ];

  it('a gateway gets the rules for its host (and those without hosts)', () => {
    const p = ok(rules);
    assert.deepEqual(p.forHost('registry.npmjs.org', 80).rules.map((r) => r.id), ['npm-publish', 'no-admin']);
    assert.deepEqual(p.forHost('api.github.com', 80).rules.map((r) => r.id), ['gh-hold', 'no-admin']);
    assert.equal(evaluateHttp(p.forHost('registry.npmjs.org', 80), facts('PUT', '/pkg')).rule, 'npm-publish');
    assert.equal(evaluateHttp(p.forHost('pypi.org', 80), facts('PUT', '/pkg')).action, 'allow');
    assert.equal(evaluateHttp(p.forHost('pypi.org', 80), facts('GET', '/admin/x')).rule, 'no-admin');
  });

  it('CONNECT is judged by host-only rules and rules naming CONNECT; path and method rules cannot see inside a tunnel', () => {
    const p = ok(rules);
    assert.equal(p.connect('api.github.com', 443).action, 'require-approval');
    assert.equal(p.connect('registry.npmjs.org', 443).action, 'allow', 'methods [PUT] does not judge a tunnel');
    assert.deepEqual(p.connect('pypi.org', 443), { action: 'allow', rule: null, reason: 'default-allow' }, 'a path rule does not judge a tunnel');
    assert.equal(p.connect('pypi.org', 8443).rule, 'tunnel-8443');
    assert.equal(ok([], 'deny').connect('pypi.org', 443).rule, 'chaperone.default-deny');
  });

  it('no rule has hosts: every gateway shares the one compiled policy', () => {
    const p = ok([{ id: 'x', action: 'deny', match: { http: { paths: ['/x'] } } }]);
    assert.equal(p.forHost('a.test', 80), p.all);
  });

  it('refuses bad hosts, an empty hosts list, and CONNECT combined with paths; other rule errors keep their paths', () => {
    const r = compileEgressPolicy({ rules: [
      { id: 'a', action: 'deny', match: { http: { hosts: ['bad host'] } } },
      { id: 'b', action: 'deny', match: { http: { hosts: [] } } },
      { id: 'c', action: 'deny', match: { http: { methods: ['CONNECT'], paths: ['/x'] } } },
      { id: 'd', action: 'maybe', match: { http: {} } },
    ] });
    assert.equal(r.ok, false);
    const paths = !r.ok ? r.errors.map((e) => e.path) : [];
    assert.deepEqual(paths, ['rules[0].match.http.hosts[0]', 'rules[1].match.http.hosts', 'rules[2].match.http', 'rules[3].action']);
  });
});
