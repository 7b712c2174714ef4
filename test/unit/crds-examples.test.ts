// Every example in examples/policies validates against the CRD schemas (ajv); schema-level mistakes are refused with their path.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { compileValidators, validateObject } from '../../operator/api/validate.ts';

const EXAMPLES_DIR = fileURLToPath(new URL('../../examples/policies/', import.meta.url));
const validators = compileValidators();

function loadExamples(): Array<{ file: string; obj: Record<string, unknown> }> {
  const out: Array<{ file: string; obj: Record<string, unknown> }> = [];
  for (const file of readdirSync(EXAMPLES_DIR).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const doc of parseAllDocuments(readFileSync(`${EXAMPLES_DIR}${file}`, 'utf8'))) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
      const obj = doc.toJS() as Record<string, unknown> | null;
      if (obj !== null) out.push({ file, obj });
    }
  }
  return out;
}

const examples = loadExamples();

/** A deep copy of the first example of `kind` with the value at JSON pointer `at` replaced (`undefined` deletes it). */
function variant(kind: string, at: string, value: unknown): unknown {
  const base = examples.find((e) => e.obj['kind'] === kind);
  assert.ok(base, `no example of kind ${kind}`);
  const root = structuredClone(base.obj);
  const keys = at.split('/').slice(1);
  const last = keys.pop();
  assert.ok(last !== undefined, `pointer ${at} names no field`);
  let node: Record<string, unknown> = root;
  for (const k of keys) {
    const next = node[k];
    assert.ok(typeof next === 'object' && next !== null, `${kind} example has no ${at}`);
    node = next as Record<string, unknown>;
  }
  if (value === undefined) delete node[last];
  else node[last] = value;
  return root;
}

describe('examples/policies', () => {
  it('has every kind, and the two ApprovalRules the docs talk about', () => {
    const kinds = examples.map((e) => e.obj['kind']);
    for (const k of ['AgentIdentity', 'MaskingPolicy', 'ApprovalRule', 'ApprovalRequest']) assert.ok(kinds.includes(k), k);
    assert.equal(kinds.filter((k) => k === 'ApprovalRule').length, 2);
  });

  for (const { file, obj } of examples) {
    it(`${file}: ${String(obj['kind'])} ${String((obj['metadata'] as { name?: string }).name)} is valid`, () => {
      assert.deepEqual(validateObject(validators, obj), []);
    });
  }
});

/** Mistakes the structural schema alone catches (no CEL): each with the JSON pointer it must name. */
const INVALID: Array<{ name: string; obj: unknown; path: string }> = [
  { name: 'unknown field (typo)', obj: variant('AgentIdentity', '/spec/connections/0/protcol', 'postgres'), path: '/spec/connections/0' },
  { name: 'protocol outside the enum', obj: variant('AgentIdentity', '/spec/connections/0/protocol', 'mysql'), path: '/spec/connections/0/protocol' },
  { name: 'privileged localPort', obj: variant('AgentIdentity', '/spec/connections/0/localPort', 80), path: '/spec/connections/0/localPort' },
  { name: 'upper-case connection name', obj: variant('AgentIdentity', '/spec/connections/0/name', 'OrdersDB'), path: '/spec/connections/0/name' },
  { name: 'url without scheme', obj: variant('AgentIdentity', '/spec/connections/1/upstream/url', 'api.github.com'), path: '/spec/connections/1/upstream/url' },
  { name: 'not a CIDR', obj: variant('AgentIdentity', '/spec/interception/egress/allow/0/cidr', '10.0.0.0/33'), path: '/spec/interception/egress/allow/0/cidr' },
  { name: 'connections missing', obj: variant('AgentIdentity', '/spec/connections', undefined), path: '/spec' },
  { name: 'bad duration', obj: variant('ApprovalRule', '/spec/approval/timeout', '10 minutes'), path: '/spec/approval/timeout' },
  { name: 'action missing', obj: variant('ApprovalRule', '/spec/action', undefined), path: '/spec' },
  { name: 'unknown SQL kind', obj: variant('ApprovalRule', '/spec/match/sql/kinds', ['drop']), path: '/spec/match/sql/kinds/0' },
  { name: 'keepLast above 8', obj: variant('MaskingPolicy', '/spec/replacement', { type: 'partial', keepLast: 20 }), path: '/spec/replacement/keepLast' },
  { name: 'unknown detector category', obj: variant('MaskingPolicy', '/spec/detectors/enableCategories', ['secrets']), path: '/spec/detectors/enableCategories/0' },
  { name: 'sha256 not 64 hex', obj: variant('ApprovalRequest', '/spec/command/sha256', 'abc'), path: '/spec/command/sha256' },
  { name: 'expiresAt not a timestamp', obj: variant('ApprovalRequest', '/spec/expiresAt', 'tomorrow'), path: '/spec/expiresAt' },
  { name: 'review decision outside the enum', obj: variant('ApprovalRequest', '/spec/review', { decision: 'LGTM' }), path: '/spec/review/decision' },
];

describe('schema-level mistakes are refused offline', () => {
  for (const { name, obj, path } of INVALID) {
    it(`${name} → ${path}`, () => {
      const found = validateObject(validators, obj);
      assert.ok(found.some((p) => p.path === path), `expected a problem at ${path}, got ${JSON.stringify(found)}`);
    });
  }

  it('wrong apiVersion and unknown kind are refused', () => {
    assert.equal(validateObject(validators, { apiVersion: 'chaperone.dev/v1', kind: 'AgentIdentity' })[0]?.path, '/apiVersion');
    assert.equal(validateObject(validators, { apiVersion: 'chaperone.dev/v1alpha1', kind: 'Agent' })[0]?.path, '/kind');
  });

  it('cross-field rules are CEL and pass offline: a postgres connection without database needs the real API server to refuse it', () => {
    const obj = variant('AgentIdentity', '/spec/connections/0/database', undefined);
    assert.deepEqual(validateObject(validators, obj), []);
  });
});
