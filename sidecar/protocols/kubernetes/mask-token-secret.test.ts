// A legacy ServiceAccount token Secret read back through the gateway: token, ca.crt and namespace are masked in get, list, Table and watch shapes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMasker } from '../../masking/index.ts';
import { maskKubeDocument, SECRET_PLACEHOLDER } from './mask-objects.ts';

const masker = createMasker({});
const b64 = (s: string): string => Buffer.from(s).toString('base64');
// Synthesized: a JWT-shaped value and a PEM-shaped CA, never a real credential.
const TOKEN = ['eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3QifQ', Buffer.from(JSON.stringify({ sub: 'system:serviceaccount:team-a:default' })).toString('base64url'), 'c3ludGhlc2l6ZWQtc2lnbmF0dXJl'].join('.');
const CA = '-----BEGIN CERTIFICATE-----\nMIIBsynthesizedTestCaOnlyAAAAAAAAAAAAAAAAAAAAAAAA\n-----END CERTIFICATE-----\n';
const NAMESPACE = 'team-a-namespace-value';

const tokenSecret = (name: string): Record<string, unknown> => ({
  kind: 'Secret', apiVersion: 'v1', type: 'kubernetes.io/service-account-token',
  metadata: { name, namespace: 'team-a', annotations: { 'kubernetes.io/service-account.name': 'default' } },
  data: { token: b64(TOKEN), 'ca.crt': b64(CA), namespace: b64(NAMESPACE) },
});
const { kind: _k, apiVersion: _a, ...itemWithoutKind } = tokenSecret('tok-item');

const SHAPES: readonly [string, unknown, boolean][] = [
  ['get', tokenSecret('tok'), false],
  ['list (SecretList, items without kind)', { kind: 'SecretList', apiVersion: 'v1', items: [itemWithoutKind] }, true],
  ['Table with full objects', { kind: 'Table', apiVersion: 'meta.k8s.io/v1', columnDefinitions: [], rows: [{ cells: ['tok', 'kubernetes.io/service-account-token', 3, '1m'], object: tokenSecret('tok') }] }, true],
  ['watch event', { type: 'ADDED', object: tokenSecret('tok') }, true],
  ['watch event without kind', { type: 'MODIFIED', object: itemWithoutKind }, true],
];

describe('a legacy token Secret read through the gateway', () => {
  for (const [shape, doc, secretsRequest] of SHAPES) {
    it(`given a ${shape}, masks token, ca.crt and namespace`, () => {
      const text = maskKubeDocument(masker, JSON.stringify(doc), secretsRequest).value;
      for (const clear of [TOKEN, b64(TOKEN), CA, b64(CA), b64(NAMESPACE)]) assert.ok(!text.includes(clear), `${shape}: ${text}`);
      assert.ok(text.includes(b64(SECRET_PLACEHOLDER)), text);
    });
  }
});
