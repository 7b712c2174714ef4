// operator/compile: AgentIdentity + MaskingPolicies + ApprovalRules → sidecar config; every compiled output passes the sidecar's checkConfig.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { AgentIdentity, ApprovalRule, MaskingPolicy } from '../../operator/api/types.ts';
import { compileIdentity, canonicalJson, type CompileInput, type CompileResult } from '../../operator/compile/compile.ts';
import { credentialMountPath, DEFAULT_MOUNT_ROOT } from '../../operator/compile/paths.ts';
import { checkConfig } from '../../sidecar/core/config.ts';
import type { PostgresConnectionConfig, SidecarConfig } from '../../sidecar/core/config-types.ts';
import type { SqlRuleJson } from '../../sidecar/policy/sql-rules.ts';

const EXAMPLES_DIR = fileURLToPath(new URL('../../examples/policies/', import.meta.url));

function loadExamples(): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const file of readdirSync(EXAMPLES_DIR).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const doc of parseAllDocuments(readFileSync(`${EXAMPLES_DIR}${file}`, 'utf8'))) {
      const obj = doc.toJS() as Record<string, unknown> | null;
      if (obj !== null) out.push(obj);
    }
  }
  return out;
}

const examples = loadExamples();
const exIdentity = examples.find((o) => o['kind'] === 'AgentIdentity') as unknown as AgentIdentity;
const exPolicies = examples.filter((o) => o['kind'] === 'MaskingPolicy') as unknown as MaskingPolicy[];
const exRules = examples.filter((o) => o['kind'] === 'ApprovalRule') as unknown as ApprovalRule[];

/** Compiles and asserts success, and that the sidecar's own validator accepts the output. */
function compileOk(input: CompileInput): Extract<CompileResult, { ok: true }> {
  const r = compileIdentity(input);
  assert.ok(r.ok, `compile failed: ${r.ok ? '' : JSON.stringify(r.errors, null, 1)}`);
  const checked = checkConfig(JSON.parse(r.text) as unknown, r.hash, { checkFiles: false });
  assert.ok(checked.ok, `checkConfig refused the compiled config: ${checked.ok ? '' : JSON.stringify(checked.errors)}`);
  return r;
}

function loaded(r: Extract<CompileResult, { ok: true }>): SidecarConfig {
  const c = checkConfig(JSON.parse(r.text) as unknown, r.hash, { checkFiles: false });
  assert.ok(c.ok);
  return c.config;
}

function identity(name: string, labels: Record<string, string> = {}, ns = 'agents'): AgentIdentity {
  return {
    apiVersion: 'chaperone.dev/v1alpha1', kind: 'AgentIdentity', metadata: { name, namespace: ns, labels },
    spec: {
      connections: [
        { name: 'db', protocol: 'postgres', upstream: { host: 'db.svc', port: 5432 }, database: 'app', localPort: 5432, credential: { secretRef: { name: 'db-cred' } } },
        { name: 'api', protocol: 'http', upstream: { url: 'https://api.example.com' }, localPort: 8080, credential: { secretRef: { name: 'api-cred' }, type: 'Bearer', tokenKey: 'token' } },
      ],
    },
  };
}

function policy(name: string, spec: Partial<MaskingPolicy['spec']> & Pick<MaskingPolicy['spec'], 'selector'>, ns = 'agents'): MaskingPolicy {
  return { apiVersion: 'chaperone.dev/v1alpha1', kind: 'MaskingPolicy', metadata: { name, namespace: ns }, spec };
}

function rule(name: string, spec: Partial<ApprovalRule['spec']> & Pick<ApprovalRule['spec'], 'selector' | 'action' | 'match'>, ns = 'agents'): ApprovalRule {
  return { apiVersion: 'chaperone.dev/v1alpha1', kind: 'ApprovalRule', metadata: { name, namespace: ns }, spec };
}

function pg(cfg: SidecarConfig, name = 'db'): PostgresConnectionConfig {
  const c = cfg.connections.find((x) => x.name === name);
  assert.ok(c && c.protocol === 'postgres', `no postgres connection ${name}`);
  return c;
}

function sqlRules(cfg: SidecarConfig, name = 'db'): readonly SqlRuleJson[] {
  return pg(cfg, name).policy.sql.rules ?? [];
}

describe('compileIdentity: the examples', () => {
  it('examples/policies compile and pass the sidecar checkConfig (approvals backend local too)', () => {
    for (const backend of [undefined, 'local', 'none'] as const) {
      const r = compileOk({ identity: exIdentity, maskingPolicies: exPolicies, approvalRules: exRules, env: backend ? { approvalsBackend: backend } : {} });
      assert.deepEqual(r.maskingPolicies, ['payments-data']);
      assert.deepEqual(r.approvalRules, ['deny-ddl', 'delete-needs-approval']);
      assert.equal(r.config.approvals?.backend, backend ?? 'kubernetes');
    }
  });

  it('credentials are file paths under the mount root, and the webhook mount list covers every one', () => {
    const r = compileOk({ identity: exIdentity, maskingPolicies: exPolicies, approvalRules: exRules });
    const db = pg(loaded(r), 'orders-db');
    assert.deepEqual(db.credentials, { usernameFile: credentialMountPath('orders-db', 'username'), passwordFile: credentialMountPath('orders-db', 'password') });
    assert.equal(db.credentials.usernameFile, `${DEFAULT_MOUNT_ROOT}/orders-db/username`);
    const files = [...r.text.matchAll(/"(?:\w+File)":"([^"]+)"/g)].map((m) => m[1] ?? '').filter((f) => f.startsWith(DEFAULT_MOUNT_ROOT));
    const mounted = new Set(r.mounts.flatMap((m) => m.keys.map((k) => `${m.dir}/${k}`)));
    for (const f of files) assert.ok(mounted.has(f), `${f} is in the config but not in mounts`);
    assert.deepEqual(r.mounts.find((m) => m.dir.endsWith('/orders-db')), { dir: `${DEFAULT_MOUNT_ROOT}/orders-db`, source: 'secret', name: 'orders-db-agent', keys: ['password', 'username'] });
    assert.ok(r.mounts.some((m) => m.source === 'serviceAccountToken' && m.name === 'coding-agent-kube'));
  });

  it('a custom mount root moves every path', () => {
    const r = compileOk({ identity: exIdentity, maskingPolicies: exPolicies, approvalRules: exRules, mountRoot: '/mnt/x' });
    assert.ok(!r.text.includes(DEFAULT_MOUNT_ROOT));
    assert.ok(r.mounts.every((m) => m.dir.startsWith('/mnt/x/')));
  });

  it('no value of a Secret appears in the output', () => {
    // Synthesized Secret data for every Secret the examples reference; the compiler never sees it, and the text must not contain it.
    const secretValues = ['agent-user-3f9a', 'pw-7c1e-not-real-0b2d', 'ghp_000000000000000000000000000000000000', 'hmac-key-synth-5a5a5a5a5a5a', '-----BEGIN PRIVATE KEY-----'];
    const r = compileOk({ identity: exIdentity, maskingPolicies: exPolicies, approvalRules: exRules });
    for (const v of secretValues) assert.ok(!r.text.includes(v));
    // And nothing in the config is a credential field with an inline value: every credential/key is a *File path.
    const creds = JSON.stringify(r.config.connections?.map((c) => c?.credentials));
    assert.ok(!/"(password|token|username)"\s*:/.test(creds), creds);
  });

  it('the kubernetes issuer uses the in-cluster discovery with the pod CA and token; oidc keeps claims and gets the CA path', () => {
    const r = compileOk({ identity: exIdentity, maskingPolicies: [], approvalRules: [], env: { serviceAccountIssuer: 'https://oidc.example-cluster.test' } });
    const [k8s, oidc] = loaded(r).identity.issuers;
    assert.equal(k8s?.kind, 'kubernetes');
    assert.equal(k8s?.issuer, 'https://oidc.example-cluster.test');
    assert.equal(k8s?.jwksUri, 'https://kubernetes.default.svc/openid/v1/jwks');
    assert.equal(k8s?.caFile, '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt');
    assert.equal(k8s?.bearerTokenFile, '/var/run/secrets/kubernetes.io/serviceaccount/token');
    assert.equal(oidc?.issuer, 'https://idp.example.com/realms/agents');
    assert.equal(oidc?.actingForClaim, 'act.sub');
    assert.equal(oidc?.caFile, `${DEFAULT_MOUNT_ROOT}/_issuer.corp-idp/ca.crt`);
    assert.deepEqual(oidc?.requiredGroups, ['ai-agents'], 'requiredGroups passes through to the sidecar, which enforces it');
    assert.ok(!r.warnings.some((w) => w.includes('requiredGroups')), r.warnings.join('; '));
  });

  it('recording signing key is a path; checkpoint interval in seconds', () => {
    const rec = loaded(compileOk({ identity: exIdentity, maskingPolicies: [], approvalRules: [] })).recording;
    assert.equal(rec.stdout, true);
    assert.deepEqual(rec.signing, { privateKeyFile: `${DEFAULT_MOUNT_ROOT}/_recording/ed25519.pem`, checkpointEveryLines: 500, checkpointIntervalSeconds: 30 });
  });
});

describe('selection', () => {
  const labelled = identity('a', { team: 'payments', tier: 'prod' });
  const cases: Array<{ name: string; selector: MaskingPolicy['spec']['selector']; ns?: string; selected: boolean }> = [
    { name: 'by name', selector: { identities: ['a'] }, selected: true },
    { name: 'by another name', selector: { identities: ['b'] }, selected: false },
    { name: 'empty label selector selects all', selector: { identitySelector: {} }, selected: true },
    { name: 'matchLabels all present', selector: { identitySelector: { matchLabels: { team: 'payments', tier: 'prod' } } }, selected: true },
    { name: 'matchLabels one differs', selector: { identitySelector: { matchLabels: { team: 'payments', tier: 'dev' } } }, selected: false },
    { name: 'In holds', selector: { identitySelector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['prod', 'staging'] }] } }, selected: true },
    { name: 'In with the key absent', selector: { identitySelector: { matchExpressions: [{ key: 'zone', operator: 'In', values: ['x'] }] } }, selected: false },
    { name: 'NotIn with the key absent holds', selector: { identitySelector: { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['x'] }] } }, selected: true },
    { name: 'NotIn with a listed value', selector: { identitySelector: { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['prod'] }] } }, selected: false },
    { name: 'Exists', selector: { identitySelector: { matchExpressions: [{ key: 'team', operator: 'Exists' }] } }, selected: true },
    { name: 'DoesNotExist on a present key', selector: { identitySelector: { matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] } }, selected: false },
    { name: 'labels and expressions are ANDed', selector: { identitySelector: { matchLabels: { team: 'payments' }, matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] } }, selected: false },
    { name: 'another namespace is never selected', selector: { identities: ['a'], identitySelector: {} }, ns: 'other', selected: false },
  ];
  for (const c of cases) {
    it(`${c.name} → ${c.selected ? 'selected' : 'not selected'}`, () => {
      const p = policy('p', { selector: c.selector, patterns: [{ name: 'tok', regex: 'tok_[a-z]{8}', keywords: ['tok_'] }] }, c.ns);
      const r = compileOk({ identity: labelled, maskingPolicies: [p], approvalRules: [] });
      assert.deepEqual(r.maskingPolicies, c.selected ? ['p'] : []);
      assert.equal(r.text.includes('tok_[a-z]{8}'), c.selected);
    });
  }

  it('connections and protocols narrow a selected identity to some connections', () => {
    const p = policy('p', { selector: { identities: ['a'], protocols: ['http'] }, patterns: [{ name: 'tok', regex: 'tok_[a-z]{8}' }] });
    const cfg = loaded(compileOk({ identity: labelled, maskingPolicies: [p], approvalRules: [] }));
    assert.equal(cfg.connections.find((c) => c.name === 'api')?.masking.customPatterns?.length, 1);
    assert.equal(cfg.connections.find((c) => c.name === 'db')?.masking.customPatterns, undefined);
  });

  it('a rule naming a connection the identity lacks is an error naming the rule', () => {
    const r = compileIdentity({ identity: labelled, maskingPolicies: [], approvalRules: [rule('r', { selector: { identities: ['a'], connections: ['nope'] }, action: 'Deny', match: { sql: {} } })] });
    assert.ok(!r.ok);
    assert.equal(r.errors[0]?.path, 'ApprovalRule/r.spec.selector.connections');
    assert.match(r.errors[0]?.message ?? '', /"nope".*does not have/);
  });
});

describe('masking', () => {
  const a = identity('a');
  it('two MaskingPolicies merge: detectors add up, patterns from both, columns on postgres and fields on http, one HMAC key file', () => {
    const p1 = policy('p1', {
      selector: { identities: ['a'] }, detectors: { baseline: 'default', disable: ['email'] },
      patterns: [{ name: 'tok', regex: 'tok_[a-z]{8}', keywords: ['tok_'] }],
      columns: [{ name: '*password*' }, { name: 'card', replacement: { type: 'partial', keepLast: 4 } }],
    });
    const p2 = policy('p2', {
      selector: { identities: ['a'] }, detectors: { baseline: 'none', enable: ['email'] },
      fields: [{ path: '**.secret' }, { path: 'data.*', replacement: { type: 'hmac', keySecretRef: { name: 'hk' } } }],
    });
    const r = compileOk({ identity: a, maskingPolicies: [p2, p1], approvalRules: [] });
    const cfg = loaded(r);
    const db = cfg.connections.find((c) => c.name === 'db')?.masking;
    const api = cfg.connections.find((c) => c.name === 'api')?.masking;
    assert.ok(db && api);
    assert.deepEqual(db.detectors, ['default'], 'p1 turns email off, p2 turns it on: the union keeps it');
    assert.equal(db.disable, undefined);
    assert.deepEqual(db.customPatterns?.map((x) => x.id), ['custom.tok']);
    assert.deepEqual(api.customPatterns?.map((x) => x.id), ['custom.tok']);
    assert.deepEqual(db.fieldRules?.map((x) => x.names), [['*password*'], ['card']]);
    assert.deepEqual(api.fieldRules?.map((x) => x.names), [['secret'], ['data.*']]);
    assert.deepEqual(db.replacements, { 'p1.columns-1': { kind: 'partial', keepLast: 4 } });
    assert.deepEqual(api.replacements, { 'p2.fields-1': { kind: 'hmac' } });
    assert.equal(api.hmacKeyFile, `${DEFAULT_MOUNT_ROOT}/_masking.hk/hmac-key`);
    assert.ok(r.mounts.some((x) => x.name === 'hk' && x.keys.includes('hmac-key')));
  });

  it('a single policy that disables a detector compiles to the default set minus it', () => {
    const p = policy('p', { selector: { identities: ['a'] }, detectors: { disable: ['email'] } });
    const m = loaded(compileOk({ identity: a, maskingPolicies: [p], approvalRules: [] })).connections[0]?.masking;
    assert.deepEqual(m?.disable, ['email']);
  });

  const bad: Array<{ name: string; spec: Partial<MaskingPolicy['spec']>; path: string; message: RegExp }> = [
    { name: 'an RE2-invalid pattern (backreference)', spec: { patterns: [{ name: 'ok', regex: 'x[0-9]+' }, { name: 'bad', regex: '(a)\\1' }] }, path: 'MaskingPolicy/bad.spec.patterns[1].regex', message: /not valid RE2/ },
    { name: 'a lookahead', spec: { patterns: [{ name: 'look', regex: 'a(?=b)' }] }, path: 'MaskingPolicy/bad.spec.patterns[0].regex', message: /not valid RE2/ },
    { name: 'an unknown detector id', spec: { detectors: { enable: ['no-such-detector'] } }, path: 'MaskingPolicy/bad.spec.detectors.enable[0]', message: /unknown detector/ },
    { name: 'partial keepLast above the sidecar limit', spec: { replacement: { type: 'partial', keepLast: 6 } }, path: 'MaskingPolicy/bad.spec.replacement.keepLast', message: /at most 4/ },
  ];
  for (const c of bad) {
    it(`${c.name} → an error naming the policy and field`, () => {
      const r = compileIdentity({ identity: a, maskingPolicies: [policy('bad', { selector: { identities: ['a'] }, ...c.spec })], approvalRules: [] });
      assert.ok(!r.ok, 'expected an error');
      assert.equal(r.errors[0]?.path, c.path);
      assert.match(r.errors[0]?.message ?? '', c.message);
    });
  }

  it('two different HMAC keys for one connection are an error', () => {
    const mk = (n: string, secret: string): MaskingPolicy => policy(n, { selector: { identities: ['a'] }, replacement: { type: 'hmac', keySecretRef: { name: secret } } });
    const r = compileIdentity({ identity: a, maskingPolicies: [mk('p1', 's1'), mk('p2', 's2')], approvalRules: [] });
    assert.ok(!r.ok);
    assert.match(r.errors[0]?.message ?? '', /2 different HMAC keys/);
  });
});

describe('approval rules → SQL policy', () => {
  const a = identity('a');
  const sel = { identities: ['a'], connections: ['db'] };
  const cases: Array<{ action: ApprovalRule['spec']['action']; sidecar: string }> = [
    { action: 'Deny', sidecar: 'deny' },
    { action: 'RequireApproval', sidecar: 'require-approval' },
    { action: 'Allow', sidecar: 'allow' },
  ];
  for (const c of cases) {
    it(`${c.action} → ${c.sidecar}`, () => {
      const r = rule('r1', {
        selector: sel, action: c.action, message: 'why',
        match: { sql: { kinds: ['write'], commands: ['DROP TABLE', 'DELETE'], tables: ['public.orders'], flags: ['deleteWithoutWhere'], pattern: '\\bcascade\\b' } },
        ...(c.action === 'RequireApproval' ? { approval: { approvers: { groups: ['dba'], users: ['alice'] }, required: 2, mode: 'any', timeout: '1m30s', scope: 'window', window: '30m' } } : {}),
      });
      const cfg = loaded(compileOk({ identity: a, maskingPolicies: [], approvalRules: [r], env: { approvalsBackend: 'local' } }));
      const [only] = sqlRules(cfg);
      assert.equal(only?.id, 'r1');
      assert.equal(only?.action, c.sidecar);
      assert.equal(only?.message, 'why');
      assert.deepEqual(only?.match, { kinds: ['write'], commands: ['DROP_TABLE', 'DELETE'], tables: ['public.orders'], flags: ['deleteWithoutWhere'], pattern: '\\bcascade\\b' });
      if (c.action === 'RequireApproval') {
        assert.deepEqual(only?.approval, { rule: 'r1', approverGroups: ['dba'], approverUsers: ['alice'], required: 2, mode: 'any', timeoutSeconds: 90, scope: 'window', windowSeconds: 1800 });
        assert.equal(cfg.approvals.backend, 'local');
        assert.deepEqual(cfg.admin.approverGroups, ['dba']);
        assert.equal(cfg.approvals.timeoutSeconds, 90);
      } else {
        assert.equal(only?.approval, undefined);
        assert.equal(cfg.approvals.backend, 'none');
      }
      assert.equal(pg(cfg).policy.sql.default, 'allow');
    });
  }

  it('a higher-priority rule exempts lower ones (priority decides across levels; the sidecar is deny-overrides within one)', () => {
    const allow = rule('allow-archive', { selector: sel, priority: 900, action: 'Allow', match: { sql: { tables: ['archive.*'] } } });
    const deny = rule('deny-writes', { selector: sel, priority: 100, action: 'Deny', match: { sql: { kinds: ['write'] } } });
    const same = rule('deny-ddl', { selector: sel, priority: 900, action: 'Deny', match: { sql: { kinds: ['ddl'] } } });
    const rules = sqlRules(loaded(compileOk({ identity: a, maskingPolicies: [], approvalRules: [deny, allow, same] })));
    assert.deepEqual(rules.map((x) => x.id), ['allow-archive', 'deny-ddl', 'deny-writes']);
    assert.equal(rules[0]?.unless, undefined);
    assert.equal(rules[1]?.unless, undefined, 'equal priority: no exemption (deny-overrides is the CRD tie-break)');
    assert.deepEqual(rules[2]?.unless, { anyOf: [{ tables: ['archive.*'] }, { kinds: ['ddl'] }] });
  });

  it('readOnly adds the read-only pack; http and kubernetes matches become plain policy.http rules', () => {
    const id = identity('a');
    id.spec.connections[0] = { ...id.spec.connections[0]!, readOnly: true };
    const r = rule('no-admin', { selector: { identities: ['a'] }, action: 'Deny', match: { http: { methods: ['DELETE'], paths: ['/admin/**'] } } });
    const cfg = loaded(compileOk({ identity: id, maskingPolicies: [], approvalRules: [r] }));
    assert.ok(pg(cfg).policy.sql.packs?.includes('read-only'));
    const api = cfg.connections.find((c) => c.name === 'api');
    assert.ok(api && api.protocol === 'http');
    assert.deepEqual(api.policy.http.rules, [{ id: 'no-admin', action: 'deny', priority: 500, match: { http: { methods: ['DELETE'], paths: ['/admin/**'] } } }]);
    assert.equal(sqlRules(cfg).length, 0, 'an http-only rule adds nothing to the SQL policy');
  });

  it('backend kubernetes by default when a RequireApproval rule applies, with a warning that the sidecar cannot start it yet', () => {
    const r = rule('hold', { selector: sel, action: 'RequireApproval', match: { sql: { commands: ['DELETE'] } }, approval: { approvers: { groups: ['dba'] } } });
    const out = compileOk({ identity: a, maskingPolicies: [], approvalRules: [r] });
    assert.equal(loaded(out).approvals.backend, 'kubernetes');
    assert.ok(out.warnings.some((w) => /does not start/.test(w)));
  });
});

describe('determinism', () => {
  it('the same inputs in another order give the same text and hash', () => {
    const one = compileOk({ identity: exIdentity, maskingPolicies: exPolicies, approvalRules: exRules });
    const mp2 = policy('zz-extra', { selector: { identitySelector: {} }, patterns: [{ name: 'zz', regex: 'zz_[0-9]{6}' }] });
    const a = compileOk({ identity: exIdentity, maskingPolicies: [...exPolicies, mp2], approvalRules: [...exRules] });
    const b = compileOk({ identity: structuredClone(exIdentity), maskingPolicies: [mp2, ...exPolicies].reverse(), approvalRules: [...exRules].reverse() });
    assert.equal(a.hash, b.hash);
    assert.equal(a.text, b.text);
    assert.notEqual(one.hash, a.hash);
    assert.match(a.hash, /^[0-9a-f]{64}$/);
  });

  it('canonical JSON sorts keys at every level and drops undefined', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: undefined, x: 2 }], c: null } }), '{"a":{"c":null,"d":[1,{"x":2,"z":1}]},"b":1}');
  });
});
