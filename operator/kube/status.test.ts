// metav1.Condition semantics and informer key/version helpers.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { nowTime, setCondition } from './status.ts';
import { isNotNewer, objectKey, splitKey } from './informer.ts';
import { resourcePath, RESOURCES } from './client.ts';

const T1 = new Date('2026-01-01T00:00:00.123Z');
const T2 = new Date('2026-01-01T01:00:00Z');

describe('setCondition', () => {
  it('given a new type, appends it with lastTransitionTime = now (no milliseconds)', () => {
    const c = setCondition([], { type: 'Ready', status: 'True', reason: 'Compiled', message: 'ok' }, T1);
    assert.deepEqual(c, [{ type: 'Ready', status: 'True', reason: 'Compiled', message: 'ok', lastTransitionTime: '2026-01-01T00:00:00Z' }]);
  });

  it('given the same status, keeps lastTransitionTime but takes the new reason and message', () => {
    const a = setCondition([], { type: 'Ready', status: 'True', reason: 'Compiled', message: 'one' }, T1);
    const b = setCondition(a, { type: 'Ready', status: 'True', reason: 'Compiled', message: 'two', observedGeneration: 2 }, T2);
    assert.equal(b[0]?.lastTransitionTime, nowTime(T1));
    assert.equal(b[0]?.message, 'two');
    assert.equal(b[0]?.observedGeneration, 2);
  });

  it('given a flipped status, moves lastTransitionTime and keeps other types', () => {
    const a = setCondition(setCondition([], { type: 'Ready', status: 'True', reason: 'Compiled', message: '' }, T1), { type: 'Invalid', status: 'False', reason: 'Valid', message: '' }, T1);
    const b = setCondition(a, { type: 'Ready', status: 'False', reason: 'MissingReference', message: 'x' }, T2);
    assert.equal(b.length, 2);
    assert.equal(b[0]?.lastTransitionTime, nowTime(T2));
    assert.equal(b[1]?.lastTransitionTime, nowTime(T1));
  });
});

describe('informer helpers', () => {
  it('isNotNewer: equal or older decimal versions are replays; opaque ones only when equal', () => {
    assert.equal(isNotNewer('10', '10'), true);
    assert.equal(isNotNewer('9', '10'), true);
    assert.equal(isNotNewer('11', '10'), false);
    assert.equal(isNotNewer('abc', 'abd'), false);
    assert.equal(isNotNewer(undefined, '1'), false);
  });

  it('keys are namespace/name, or name for cluster-scoped objects', () => {
    assert.equal(objectKey({ metadata: { namespace: 'ns', name: 'a' } }), 'ns/a');
    assert.equal(objectKey({ metadata: { name: 'a' } }), 'a');
    assert.deepEqual(splitKey('ns/a'), { namespace: 'ns', name: 'a' });
    assert.deepEqual(splitKey('a'), { namespace: '', name: 'a' });
  });

  it('resourcePath builds core and group paths, all-namespace lists and subresources', () => {
    assert.equal(resourcePath(RESOURCES.configMaps, { namespace: 'n', name: 'c' }), '/api/v1/namespaces/n/configmaps/c');
    assert.equal(resourcePath(RESOURCES.agentIdentities), '/apis/chaperone.dev/v1alpha1/agentidentities');
    assert.equal(resourcePath(RESOURCES.agentIdentities, { namespace: 'n', name: 'i', subresource: 'status' }), '/apis/chaperone.dev/v1alpha1/namespaces/n/agentidentities/i/status');
  });
});
