// Secret values masked in every shape the API server returns them; other documents go through the detectors.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMasker } from '../../masking/index.ts';
import { maskKubeDocument, SECRET_PLACEHOLDER, SECRET_RULE } from './mask-objects.ts';

const masker = createMasker({});
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const PW = 'hunter2-but-longer';
const MASKED_B64 = b64(SECRET_PLACEHOLDER);
const GH = 'ghp_' + 'a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8'.slice(0, 36);

function mask(doc: unknown, secrets = false): { text: string; findings: Readonly<Record<string, number>> } {
  const r = maskKubeDocument(masker, JSON.stringify(doc), secrets);
  return { text: r.value, findings: r.findings };
}

describe('maskKubeDocument', () => {
  it('given a single Secret, replaces every data and stringData value and keeps valid base64', () => {
    const { text, findings } = mask({ kind: 'Secret', apiVersion: 'v1', metadata: { name: 's' }, data: { password: b64(PW), empty: '' }, stringData: { token: PW } });
    const o = JSON.parse(text) as { data: Record<string, string>; stringData: Record<string, string> };
    assert.equal(o.data['password'], MASKED_B64);
    assert.equal(o.data['empty'], '');
    assert.equal(o.stringData['token'], SECRET_PLACEHOLDER);
    assert.equal(findings[SECRET_RULE], 2);
    assert.ok(!text.includes(b64(PW)) && !text.includes(PW));
  });
  it('given a SecretList (items without kind), masks each item', () => {
    const { text } = mask({ kind: 'SecretList', apiVersion: 'v1', items: [{ metadata: { name: 'a' }, data: { k: b64(PW) } }, { metadata: { name: 'b' }, data: { k: b64('other-value-1') } }] });
    assert.ok(!text.includes(b64(PW)) && !text.includes(b64('other-value-1')), text);
  });
  it('given a kubectl List of mixed kinds, masks only the Secrets', () => {
    const { text } = mask({ kind: 'List', items: [{ kind: 'Secret', data: { k: b64(PW) } }, { kind: 'ConfigMap', data: { k: 'plain-value' } }] });
    assert.ok(!text.includes(b64(PW)));
    assert.ok(text.includes('plain-value'));
  });
  it('given a Table with full objects, masks the row objects', () => {
    const { text } = mask({ kind: 'Table', apiVersion: 'meta.k8s.io/v1', columnDefinitions: [], rows: [{ cells: ['s', 'Opaque', 1, '1m'], object: { kind: 'Secret', data: { k: b64(PW) } } }] });
    assert.ok(!text.includes(b64(PW)));
  });
  it('given a watch event, masks its object', () => {
    const { text } = mask({ type: 'ADDED', object: { kind: 'Secret', metadata: { name: 's' }, data: { k: b64(PW) } } });
    assert.ok(!text.includes(b64(PW)));
  });
  it('given a request for secrets, an object without kind is treated as a Secret', () => {
    const { text } = mask({ type: 'MODIFIED', object: { metadata: { name: 's' }, data: { k: b64(PW) } } }, true);
    assert.ok(!text.includes(b64(PW)));
  });
  it('given the last-applied annotation of a Secret, masks the values inside it', () => {
    const inner = JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, stringData: { password: PW } });
    const { text } = mask({ kind: 'Secret', metadata: { name: 's', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': inner } }, data: { password: b64(PW) } });
    assert.ok(!text.includes(PW) && !text.includes(b64(PW)), text);
    const o = JSON.parse(text) as { metadata: { annotations: Record<string, string> } };
    assert.equal((JSON.parse(o.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']!) as { stringData: { password: string } }).stringData.password, SECRET_PLACEHOLDER);
  });
  // kubectl get secrets asks for a Table whose rows carry metadata-only objects: the last-applied copy of an applied Secret was in clear there.
  it('given metadata-only views of applied Secrets (Table rows, PartialObjectMetadata, a watch of them), masks the last-applied copy', () => {
    const LA = 'kubectl.kubernetes.io/last-applied-configuration';
    const inner = JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data: { k: b64(PW) } });
    const pom = { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: { name: 's', annotations: { [LA]: inner } } };
    for (const [doc, secrets] of [
      [{ kind: 'Table', apiVersion: 'meta.k8s.io/v1', columnDefinitions: [], rows: [{ cells: ['s', 'Opaque', 1, '1m'], object: pom }] }, true],
      [pom, true],
      [{ kind: 'PartialObjectMetadataList', apiVersion: 'meta.k8s.io/v1', items: [pom] }, true],
      [{ type: 'ADDED', object: { kind: 'Table', rows: [{ cells: [], object: pom }] } }, true],
      // Not asked as secrets: the copy says kind Secret, that is enough.
      [{ kind: 'Table', rows: [{ cells: [], object: pom }] }, false],
      [{ kind: 'ConfigMap', metadata: { name: 'c', annotations: { [LA]: inner } } }, false],
    ] as [unknown, boolean][]) {
      const { text, findings } = mask(doc, secrets);
      assert.ok(!text.includes(b64(PW)), text);
      assert.ok((findings[SECRET_RULE] ?? 0) >= 1, JSON.stringify(findings));
    }
  });
  it('given a ConfigMap holding a token, the detectors mask it', () => {
    const { text, findings } = mask({ kind: 'ConfigMap', data: { config: `token: ${GH}` } });
    assert.ok(!text.includes(GH));
    assert.ok(Object.keys(findings).length > 0);
  });
  it('given invalid JSON, masks it as text', () => {
    const r = maskKubeDocument(masker, `{"data": "${GH}"`, false);
    assert.ok(!r.value.includes(GH));
  });
  it('given nothing to mask, returns the same text', () => {
    const text = JSON.stringify({ kind: 'Pod', metadata: { name: 'p' } });
    assert.equal(maskKubeDocument(masker, text, false).value, text);
  });
});
