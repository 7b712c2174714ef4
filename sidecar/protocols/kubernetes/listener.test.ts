// The Kubernetes profile: no protobuf asked for on resources, no impersonation, the masking mode per response.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { OutgoingHttpHeaders } from 'node:http';
import { createMasker } from '../../masking/index.ts';
import type { HttpFacts } from '../../policy/http-rules.ts';
import { jsonAccept, KUBERNETES_PROFILE } from './listener.ts';

const masker = createMasker({});

function facts(method: string, url: string): HttpFacts {
  const u = new URL(url, 'http://x');
  const c = KUBERNETES_PROFILE.classify(method, u.pathname, u.searchParams);
  return { method, path: u.pathname, query: u.searchParams, body: undefined, websocket: false, ...(c.kube !== undefined ? { kube: c.kube } : {}) };
}

describe('jsonAccept', () => {
  const cases: [string | undefined, string][] = [
    ['application/vnd.kubernetes.protobuf,application/json', 'application/json'],
    ['application/vnd.kubernetes.protobuf', 'application/json'],
    [undefined, 'application/json'],
    ['application/json;as=Table;v=v1;g=meta.k8s.io,application/json', 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json'],
    ['application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io, application/json;as=Table;v=v1;g=meta.k8s.io', 'application/json;as=Table;v=v1;g=meta.k8s.io'],
    // YAML and CBOR carry Secret data past the JSON masker: never asked for.
    ['application/yaml', 'application/json'],
    ['application/yaml, application/json;q=0.1', 'application/json;q=0.1'],
    ['application/cbor', 'application/json'],
    ['text/html', 'application/json'],
    ['*/*', '*/*'],
  ];
  for (const [a, want] of cases) it(`given ${String(a)}, returns ${want}`, () => assert.equal(jsonAccept(a), want));
});

describe('KUBERNETES_PROFILE', () => {
  it('rewrites Accept on resource requests only, and drops impersonation headers', () => {
    const h: OutgoingHttpHeaders = { accept: 'application/vnd.kubernetes.protobuf', 'impersonate-user': 'admin', 'impersonate-group': 'system:masters', 'impersonate-extra-scopes': 'x' };
    KUBERNETES_PROFILE.adjustHeaders?.(h, facts('GET', '/api/v1/namespaces/a/secrets'));
    assert.deepEqual(h, { accept: 'application/json' });
    const y: OutgoingHttpHeaders = { accept: 'application/yaml', 'x-remote-user': 'admin', 'x-remote-group': 'system:masters' };
    KUBERNETES_PROFILE.adjustHeaders?.(y, facts('GET', '/api/v1/namespaces/a/secrets/s'));
    assert.deepEqual(y, { accept: 'application/json' });
    const d: OutgoingHttpHeaders = { accept: 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf' };
    KUBERNETES_PROFILE.adjustHeaders?.(d, facts('GET', '/openapi/v2'));
    assert.equal(d['accept'], 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf');
  });
  it('chooses the masking mode: watch lines, documents, log lines, protobuf refused, other text streamed', () => {
    const mode = (m: string, u: string, ct: string): string => {
      const o = KUBERNETES_PROFILE.bodyOptions(facts(m, u), ct, masker);
      return `${o.mode}/${o.overflow ?? 'stream'}${o.maxUnitBytes === 0 ? '/0' : ''}`;
    };
    assert.equal(mode('GET', '/api/v1/namespaces/a/secrets?watch=true', 'application/json'), 'objects/fail');
    assert.equal(mode('GET', '/api/v1/namespaces/a/secrets', 'application/json'), 'objects/fail');
    assert.equal(mode('GET', '/api/v1/namespaces/a/pods/p/log?follow=true', 'text/plain'), 'lines/stream');
    assert.equal(mode('GET', '/api/v1/namespaces/a/pods', 'application/vnd.kubernetes.protobuf'), 'refuse/stream');
    assert.equal(mode('GET', '/api/v1/namespaces/a/secrets/s', 'application/yaml'), 'refuse/stream');
    assert.equal(mode('GET', '/api/v1/namespaces/a/secrets?watch=1', 'application/cbor-seq'), 'refuse/stream');
    assert.equal(mode('GET', '/api/v1/namespaces/a/services/web:80/proxy/x', 'text/html'), 'text/stream');
    // Answers relayed from a pod or service (allowed with guardrails.allowProxy) are not objects: masked as text whatever their type, never refused.
    assert.equal(mode('GET', '/api/v1/namespaces/a/pods/web-1:8080/proxy/', 'application/yaml'), 'text/stream');
    assert.equal(mode('GET', '/api/v1/namespaces/a/pods/web-1/Proxy/x', 'application/octet-stream'), 'text/stream');
    assert.equal(mode('POST', '/api/v1/proxy/namespaces/a/services/https:web:443/x', 'application/vnd.kubernetes.protobuf'), 'text/stream');
    assert.equal(mode('GET', '/api/v1/namespaces/a/services/web/proxy/', ''), 'text/stream');
    assert.equal(mode('GET', '/api/v1/namespaces/a/services/web/proxy/x.json', 'application/json'), 'objects/fail');
    assert.equal(mode('GET', '/openapi/v2', 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf'), 'text/stream');
  });
  it('classifies for the recording', () => {
    const u = new URL('/apis/apps/v1/namespaces/a/deployments/web/scale', 'http://x');
    assert.deepEqual(KUBERNETES_PROFILE.classify('PUT', u.pathname, u.searchParams).classification, { kind: 'kubernetes', verb: 'update', resource: 'apps/deployments/scale', namespace: 'a', name: 'web' });
  });
});
