// Protobuf request bodies as kubectl sends them: the guardrails' fields decoded; malformed or non-protobuf bodies answer undefined; and the guardrail verdicts on them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bodyOf, guardrailVerdict, type GuardrailContext } from './guardrails.ts';
import { decodeProtoObject, type ProtoObject } from './proto-body.ts';
import { requestInfo } from './request-info.ts';

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);
// The same subset encoded as client-go writes it (field order as generated.pb.go).

function encVarint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v >= 128) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

function lenField(no: number, bytes: Buffer): Buffer {
  return Buffer.concat([encVarint(no * 8 + 2), encVarint(bytes.length), bytes]);
}

function strField(no: number, s: string): Buffer {
  return s === '' ? Buffer.alloc(0) : lenField(no, Buffer.from(s, 'utf8'));
}

function mapFields(no: number, m: Readonly<Record<string, string>>): Buffer[] {
  return Object.entries(m).map(([k, v]) => lenField(no, Buffer.concat([strField(1, k), strField(2, v)])));
}

/** A protobuf body for `o` (plus `data` entries as field 2, to have something after the metadata). */
function encodeProtoObject(o: ProtoObject, data: Readonly<Record<string, string>> = {}): Buffer {
  const meta = Buffer.concat([strField(1, o.metadata.name), strField(2, o.metadata.generateName), ...mapFields(11, o.metadata.labels), ...mapFields(12, o.metadata.annotations)]);
  const obj = Buffer.concat([lenField(1, meta), ...mapFields(2, data), strField(3, o.type)]);
  const typeMeta = Buffer.concat([strField(1, o.apiVersion), strField(2, o.kind)]);
  return Buffer.concat([MAGIC, lenField(1, typeMeta), lenField(2, obj), strField(4, 'application/vnd.kubernetes.protobuf')]);
}

const secret = (type: string, sa = 'default'): ProtoObject => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'tok', generateName: '', labels: {}, annotations: { 'kubernetes.io/service-account.name': sa } }, type });
const configMap = (name: string, labels: Record<string, string> = {}): ProtoObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, generateName: '', labels, annotations: {} }, type: '' });
const ctx: GuardrailContext = { pod: { name: 'agent-0', namespace: 'team-a' }, allowTokenRequests: false, allowProxy: false, credentialServiceAccount: () => ({ namespace: 'team-a', name: 'chaperone-kube' }) };

function verdict(method: string, path: string, raw: Buffer): string {
  const info = { ...requestInfo(method, path, new URLSearchParams()), headers: { impersonate: [], contentType: 'application/vnd.kubernetes.protobuf' } };
  const v = guardrailVerdict({ info, body: bodyOf({ body: undefined, rawBody: raw }) }, ctx);
  return v.refused ? v.rule : 'allowed';
}

describe('decodeProtoObject', () => {
  it('given a Secret, reads kind, name, annotations and type past the data map', () => {
    const o = decodeProtoObject(encodeProtoObject(secret('kubernetes.io/service-account-token'), { token: 'x'.repeat(300) }));
    assert.deepEqual(o, secret('kubernetes.io/service-account-token'));
  });
  it('given a ConfigMap, reads its name and labels (type stays empty)', () => {
    assert.deepEqual(decodeProtoObject(encodeProtoObject(configMap('web', { 'app.kubernetes.io/managed-by': 'chaperone-operator' }), { a: 'b' })), configMap('web', { 'app.kubernetes.io/managed-by': 'chaperone-operator' }));
  });
  it('given JSON, no magic, or a truncated body, answers undefined', () => {
    assert.equal(decodeProtoObject(Buffer.from('{"kind":"Secret"}')), undefined);
    assert.equal(decodeProtoObject(undefined), undefined);
    const full = encodeProtoObject(secret('Opaque'));
    assert.equal(decodeProtoObject(full.subarray(0, full.length - 3)), undefined);
    assert.equal(decodeProtoObject(Buffer.concat([MAGIC, Buffer.from([0xff, 0xff, 0xff])])), undefined);
  });
});

describe('guardrails on protobuf bodies', () => {
  const cases: [string, string, string, Buffer, string][] = [
    ['legacy token Secret', 'POST', '/api/v1/namespaces/team-a/secrets', encodeProtoObject(secret('kubernetes.io/service-account-token')), 'guardrail:legacy-token-secret'],
    ['Opaque Secret', 'POST', '/api/v1/namespaces/team-a/secrets', encodeProtoObject(secret('Opaque'), { password: 'synthesized' }), 'allowed'],
    ['ConfigMap named like Chaperone\'s', 'POST', '/api/v1/namespaces/team-a/configmaps', encodeProtoObject(configMap('chaperone-agent')), 'guardrail:chaperone-objects'],
    ['ConfigMap claiming the operator label', 'POST', '/api/v1/namespaces/team-a/configmaps', encodeProtoObject(configMap('x', { 'app.kubernetes.io/managed-by': 'chaperone-operator' })), 'guardrail:chaperone-objects'],
    ['update of another ConfigMap relabelled as the operator\'s', 'PUT', '/api/v1/namespaces/team-a/configmaps/x', encodeProtoObject(configMap('x', { 'app.kubernetes.io/managed-by': 'chaperone-operator' })), 'guardrail:chaperone-objects'],
    ['plain ConfigMap', 'POST', '/api/v1/namespaces/team-a/configmaps', encodeProtoObject(configMap('app-settings'), { mode: 'fast' }), 'allowed'],
    ['malformed protobuf Secret (fail closed)', 'POST', '/api/v1/namespaces/team-a/secrets', Buffer.concat([MAGIC, Buffer.from([0x0a, 0x7f])]), 'guardrail:legacy-token-secret'],
  ];
  for (const [what, m, p, raw, want] of cases) it(`given ${what}, answers ${want}`, () => assert.equal(verdict(m, p, raw), want));
});
