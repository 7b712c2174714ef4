// Which recording events become Events, on which objects, with which reason and note.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sampleSession } from '../recording/fixtures.ts';
import { signalsFor } from './signals.ts';

const pod = { apiVersion: 'v1', kind: 'Pod', namespace: 'ns', name: 'agent-0' };
const identity = { apiVersion: 'chaperone.dev/v1alpha1', kind: 'AgentIdentity', namespace: 'ns', name: 'agent-a' };

describe('signalsFor', () => {
  test('a sample session gives start, approval, outcome and end signals on the pod and the identity', () => {
    const reasons = sampleSession('s1').flatMap((e) => signalsFor(e, { pod, identity })).map((s) => `${s.regarding.kind}:${s.reason}`);
    assert.deepEqual(reasons, [
      'Pod:SessionStarted', 'AgentIdentity:SessionStarted',
      'Pod:ApprovalRequested', 'AgentIdentity:ApprovalRequested',
      'Pod:ApprovalDenied', 'AgentIdentity:ApprovalDenied',
      'Pod:SessionEnded', 'AgentIdentity:SessionEnded',
    ]);
  });

  test('allowed statements and results make no Event; denials and invalid policies are warnings', () => {
    const [start, allowed, result] = sampleSession('s1');
    assert.ok(start && allowed && result);
    assert.deepEqual(signalsFor(allowed, { pod, identity: null }), []);
    assert.deepEqual(signalsFor(result, { pod, identity: null }), []);
    const d = signalsFor({ type: 'statement', session: 's1', cmd: 3, classification: { kinds: ['ddl'], tables: ['users'], functions: [] }, statementHash: 'a'.repeat(64), decision: 'deny', rule: 'deny-ddl', text: 'DROP   TABLE\n users' }, { pod, identity: null });
    assert.equal(d[0]?.type, 'Warning');
    assert.match(d[0]?.note ?? '', /refused by deny-ddl: DROP TABLE users$/);
    const bad = signalsFor({ type: 'policy.reload', ok: false, configHash: 'f'.repeat(64), error: 'connections[0].port: must be a number' }, { pod, identity });
    assert.equal(bad[0]?.reason, 'PolicyInvalid');
    assert.match(bad[0]?.note ?? '', /still enforcing config ffffffffffff: connections\[0\]\.port/);
  });

  test('outside Kubernetes (no pod, no identity) nothing is emitted', () => {
    assert.deepEqual(sampleSession('s1').flatMap((e) => signalsFor(e, { pod: null, identity: null })), []);
  });
});
