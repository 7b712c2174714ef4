// Regression (stored pod re-admitted with a non-empty patch): what we inject already carries every field the API server defaults.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { desiredPod } from './build.ts';
import { defaultPullPolicy } from './sidecar.ts';
import { mutatePod } from './admit.ts';
import { agentPod, readyIdentity } from '../testdata/pods.ts';
import { SIDECAR_CONTAINER_NAME } from './layout.ts';

describe('fields the API server defaults are written by the builder', () => {
  const pod = desiredPod(agentPod(), readyIdentity(), 'chaperone-coding-agent');
  const sidecar = pod.spec?.initContainers?.find((c) => c.name === SIDECAR_CONTAINER_NAME);

  it('sidecar: pull policy, termination path, probe scheme/timeouts, fieldRef apiVersion', () => {
    assert.equal(sidecar?.imagePullPolicy, 'Always');
    assert.equal(sidecar?.terminationMessagePath, '/dev/termination-log');
    for (const p of [sidecar?.readinessProbe, sidecar?.livenessProbe]) {
      assert.equal(p?.httpGet?.scheme, 'HTTP');
      assert.equal(p?.timeoutSeconds, 1);
      assert.equal(p?.successThreshold, 1);
    }
    assert.ok(sidecar?.env?.every((e) => e.valueFrom?.fieldRef?.apiVersion === 'v1'));
  });

  it('volumes: every configMap and projected volume has a defaultMode, every fieldRef an apiVersion', () => {
    for (const v of pod.spec?.volumes ?? []) {
      if (!v.name.startsWith('chaperone-')) continue;
      if (v.configMap) assert.ok(v.configMap.defaultMode !== undefined, v.name);
      if (v.projected) assert.ok(v.projected.defaultMode !== undefined, v.name);
      for (const s of v.projected?.sources ?? []) for (const i of s.downwardAPI?.items ?? []) assert.equal(i.fieldRef?.apiVersion, 'v1', v.name);
    }
  });

  it('the injected pod re-admits with an empty patch', () => {
    const r = mutatePod({ uid: 'u', namespace: 'agents', pod, operatorNamespace: 'chaperone-system', identity: readyIdentity() });
    assert.equal(r.outcome, 'unchanged');
    assert.deepEqual(r.ops, []);
  });
});

describe('defaultPullPolicy (the API server rule)', () => {
  const cases: [string, string][] = [
    ['example.com/sidecar', 'Always'],
    ['example.com/sidecar:latest', 'Always'],
    ['example.com:5000/sidecar', 'Always'],
    ['example.com:5000/sidecar:1.2', 'IfNotPresent'],
    ['example.com/sidecar@sha256:abc', 'IfNotPresent'],
  ];
  for (const [image, want] of cases) it(`${image} → ${want}`, () => assert.equal(defaultPullPolicy(image), want));
});
