// The ApprovalRule CRD speaks the sidecar's SQL vocabulary exactly: its kinds and flags enums equal SQL_KINDS and SQL_FLAGS.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadCrds } from '../../operator/api/schema.ts';
import { SQL_FLAGS } from '../../sidecar/policy/sql-rules.ts';
import { SQL_KINDS } from '../../sidecar/protocols/postgres/sql-facts.ts';

type Node = { properties?: Record<string, Node>; items?: Node; enum?: unknown[]; maxItems?: number };

function sqlMatchSchema(): Record<string, Node> {
  const crd = loadCrds().find((l) => l.crd.spec.names.kind === 'ApprovalRule');
  assert.ok(crd, 'crds/approvalrule.yaml not loaded');
  const root = crd.root as unknown as Node;
  const sql = root.properties?.spec?.properties?.match?.properties?.sql?.properties;
  assert.ok(sql, 'spec.match.sql has no properties');
  return sql;
}

function requestSqlSchema(): Record<string, Node> {
  const crd = loadCrds().find((l) => l.crd.spec.names.kind === 'ApprovalRequest');
  assert.ok(crd, 'crds/approvalrequest.yaml not loaded');
  const sql = (crd.root as unknown as Node).properties?.spec?.properties?.command?.properties?.sql?.properties;
  assert.ok(sql, 'spec.command.sql has no properties');
  return sql;
}

describe('ApprovalRequest spec.command.sql carries the sidecar\'s kind and flags', () => {
  const sql = requestSqlSchema();
  it('kind: the CRD enum is exactly SQL_KINDS', () => assert.deepEqual(sql.kind?.enum, [...SQL_KINDS]));
  it('flags: the CRD enum is exactly SQL_FLAGS, and maxItems admits all of it', () => {
    assert.deepEqual(sql.flags?.items?.enum, [...SQL_FLAGS]);
    assert.equal(sql.flags?.maxItems, SQL_FLAGS.length);
  });
});

describe('ApprovalRule spec.match.sql vocabulary equals the sidecar\'s', () => {
  const sql = sqlMatchSchema();
  const cases: Array<{ field: string; sidecar: readonly string[] }> = [
    { field: 'kinds', sidecar: SQL_KINDS },
    { field: 'flags', sidecar: SQL_FLAGS },
  ];
  for (const c of cases) {
    it(`${c.field}: the CRD enum is exactly the sidecar list (in order), and maxItems admits all of it`, () => {
      assert.deepEqual(sql[c.field]?.items?.enum, [...c.sidecar]);
      assert.equal(sql[c.field]?.maxItems, c.sidecar.length);
    });
  }
});
