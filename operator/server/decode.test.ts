// AdmissionReview decoding: what is accepted, and the message for each way a body can be wrong.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeReview } from './decode.ts';
import { allow, deny, patchResponse } from './admission.ts';

const request = { uid: 'u1', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, operation: 'CREATE', userInfo: { username: 'admin' } };

describe('decodeReview', () => {
  it('accepts an admission.k8s.io/v1 AdmissionReview', () => {
    const d = decodeReview({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request });
    assert.equal(d.ok, true);
  });
  const cases: [string, unknown, RegExp][] = [
    ['an array', [], /must be a JSON object/],
    ['another kind', { apiVersion: 'admission.k8s.io/v1', kind: 'Pod' }, /expected AdmissionReview/],
    ['v1beta1', { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request }, /speaks admission.k8s.io\/v1 only/],
    ['no request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, /request is missing/],
    ['no uid', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { ...request, uid: '' } }, /request.uid is missing/],
    ['a bad operation', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { ...request, operation: 'PATCH' } }, /request.operation "PATCH"/],
    ['no kind', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { ...request, kind: undefined } }, /request.kind is missing/],
    ['no userInfo', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { ...request, userInfo: undefined } }, /request.userInfo is missing/],
  ];
  for (const [name, body, message] of cases) {
    it(`refuses ${name}`, () => {
      const d = decodeReview(body);
      assert.equal(d.ok, false);
      if (!d.ok) assert.match(d.message, message);
    });
  }
});

describe('response helpers', () => {
  it('allow, deny with a reason, and a base64 JSONPatch (empty ops = plain allow)', () => {
    assert.deepEqual(allow('u'), { uid: 'u', allowed: true });
    assert.deepEqual(deny('u', 403, 'no'), { uid: 'u', allowed: false, status: { code: 403, reason: 'Forbidden', message: 'no' } });
    assert.deepEqual(patchResponse('u', []), { uid: 'u', allowed: true });
    const p = patchResponse('u', [{ op: 'add', path: '/a', value: 1 }]);
    assert.equal(p.patchType, 'JSONPatch');
    assert.deepEqual(JSON.parse(Buffer.from(p.patch ?? '', 'base64').toString()), [{ op: 'add', path: '/a', value: 1 }]);
  });
});
