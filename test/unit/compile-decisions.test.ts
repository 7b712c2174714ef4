// Compiled ApprovalRules decide real SQL as the CRD says: the sidecar's own classifier and evaluator run on the compiled policy.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentIdentity, ApprovalRule } from '../../operator/api/types.ts';
import { compileIdentity } from '../../operator/compile/compile.ts';
import { checkConfig } from '../../sidecar/core/config.ts';
import { evaluateSql } from '../../sidecar/policy/evaluate-sql.ts';
import type { CompiledSqlPolicy } from '../../sidecar/policy/sql-rules.ts';
import { SqlClassifier, loadSqlParser } from '../../sidecar/protocols/postgres/sql-cache.ts';

let classifier: SqlClassifier;
before(async () => {
  classifier = new SqlClassifier(await loadSqlParser());
});

const identity: AgentIdentity = {
  apiVersion: 'chaperone.dev/v1alpha1', kind: 'AgentIdentity', metadata: { name: 'a', namespace: 'agents' },
  spec: { connections: [{ name: 'db', protocol: 'postgres', upstream: { host: 'db.svc' }, database: 'app', localPort: 5432, credential: { secretRef: { name: 'db-cred' } } }] },
};

function rule(name: string, spec: Omit<ApprovalRule['spec'], 'selector'>): ApprovalRule {
  return { apiVersion: 'chaperone.dev/v1alpha1', kind: 'ApprovalRule', metadata: { name, namespace: 'agents' }, spec: { selector: { identities: ['a'] }, ...spec } };
}

const RULES: ApprovalRule[] = [
  rule('deny-ddl', { priority: 900, action: 'Deny', match: { sql: { kinds: ['ddl', 'dcl', 'admin'] } } }),
  rule('archive-is-free', { priority: 800, action: 'Allow', match: { sql: { tables: ['archive.*'] } } }),
  rule('hold-deletes', { priority: 500, action: 'RequireApproval', match: { sql: { commands: ['DELETE'] } }, approval: { approvers: { groups: ['dba'] } } }),
  rule('no-bulk-delete', { priority: 500, action: 'Deny', match: { sql: { flags: ['deleteWithoutWhere'] } } }),
  rule('no-orders-writes', { priority: 100, action: 'Deny', match: { sql: { kinds: ['write'], tables: ['public.orders'] } } }),
];

function policy(): CompiledSqlPolicy {
  const r = compileIdentity({ identity, maskingPolicies: [], approvalRules: RULES, env: { approvalsBackend: 'local' } });
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
  const c = checkConfig(JSON.parse(r.text) as unknown, r.hash, { checkFiles: false });
  assert.ok(c.ok);
  const p = c.sqlPolicies.get('db');
  assert.ok(p);
  return p;
}

describe('compiled ApprovalRules decide statements by priority, then Deny > RequireApproval > Allow', () => {
  const cases: Array<{ sql: string; action: string; rule: string | null; why: string }> = [
    { sql: 'SELECT * FROM public.orders', action: 'allow', rule: null, why: 'no rule matches: the connection is the grant' },
    { sql: 'DROP TABLE archive.old', action: 'deny', rule: 'deny-ddl', why: 'a higher Deny beats a lower Allow' },
    { sql: 'DELETE FROM archive.old WHERE id = 1', action: 'allow', rule: 'archive-is-free', why: 'a higher Allow exempts the lower RequireApproval' },
    { sql: 'DELETE FROM public.items WHERE id = 1', action: 'require-approval', rule: 'hold-deletes', why: 'RequireApproval at 500' },
    { sql: 'DELETE FROM public.items', action: 'deny', rule: 'no-bulk-delete', why: 'equal priority: Deny beats RequireApproval' },
    { sql: 'UPDATE public.orders SET x = 1 WHERE id = 2', action: 'deny', rule: 'no-orders-writes', why: 'the lowest rule decides when nothing above matches' },
    { sql: 'DELETE FROM public.orders WHERE id = 2', action: 'require-approval', rule: 'hold-deletes', why: 'the higher RequireApproval exempts the lower Deny' },
  ];
  for (const c of cases) {
    it(`${c.sql} → ${c.action} (${c.why})`, () => {
      const d = evaluateSql(policy(), classifier.classify(c.sql));
      assert.equal(d.action, c.action, JSON.stringify(d));
      assert.equal(d.rule, c.rule);
      if (d.action === 'require-approval') assert.deepEqual(d.approval['approverGroups'], ['dba']);
    });
  }
});
