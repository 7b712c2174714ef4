// Drift and hygiene checks for the CRDs: types.ts and docs/api.md regenerate identically, and every schema field is described and bounded.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { renderTypes, TYPES_FILE } from '../../operator/api/generate.ts';
import { renderDocs, DOCS_FILE } from '../../operator/api/docs.ts';
import { collectObjects, loadCrds, singular, toJsonSchema, walkSchema, type Schema } from '../../operator/api/schema.ts';
import { RESOURCES } from '../../operator/api/types.ts';

const crds = loadCrds();

/** Short names of the built-in resources of kube-apiserver 1.34 (kubectl api-resources), which ours must not shadow. */
const BUILTIN_SHORT_NAMES = ['cs', 'cm', 'ep', 'ev', 'limits', 'ns', 'no', 'pvc', 'pv', 'po', 'rc', 'quota', 'sa', 'svc', 'crd', 'crds', 'ds', 'deploy', 'rs', 'sts', 'hpa', 'cj', 'csr', 'ing', 'ip', 'netpol', 'pdb', 'pc', 'sc', 'vac'];

describe('generated files match crds/*.yaml', () => {
  it('operator/api/types.ts is what generate.ts renders (run `node --import tsx operator/api/generate.ts` after a CRD change)', () => {
    assert.equal(readFileSync(TYPES_FILE, 'utf8'), renderTypes(crds));
  });

  it('docs/api.md is what docs.ts renders (run `node --import tsx operator/api/docs.ts` after a CRD change)', () => {
    assert.equal(readFileSync(DOCS_FILE, 'utf8'), renderDocs(crds));
  });

  it('RESOURCES lists every CRD with its names', () => {
    for (const { crd } of crds) {
      const r = RESOURCES[crd.spec.names.kind as keyof typeof RESOURCES];
      assert.ok(r, `${crd.spec.names.kind} missing from RESOURCES`);
      assert.equal(r.plural, crd.spec.names.plural);
      assert.equal(`${r.plural}.${r.group}`, crd.metadata.name);
    }
  });
});

describe('CRD conventions', () => {
  for (const { file, crd, version } of crds) {
    it(`${file}: chaperone.dev/v1alpha1, namespaced, category chaperone, status subresource, short name, printer columns`, () => {
      assert.equal(crd.apiVersion, 'apiextensions.k8s.io/v1');
      assert.equal(crd.spec.group, 'chaperone.dev');
      assert.equal(version.name, 'v1alpha1');
      assert.ok(version.served && version.storage);
      assert.equal(crd.spec.scope, 'Namespaced');
      assert.deepEqual(crd.spec.names.categories, ['chaperone']);
      assert.ok(version.subresources?.status, 'status subresource');
      assert.equal(crd.spec.names.shortNames?.length, 1);
      assert.ok((version.additionalPrinterColumns ?? []).some((c) => c.name === 'Age'));
    });
  }

  it('short names are unique and shadow no built-in resource', () => {
    const mine = crds.flatMap(({ crd }) => crd.spec.names.shortNames ?? []);
    assert.equal(new Set(mine).size, mine.length);
    for (const s of mine) assert.ok(!BUILTIN_SHORT_NAMES.includes(s), `${s} shadows a built-in short name`);
  });
});

/** Every problem of one schema node, as "path: what"; the checks the CEL cost budget and the docs rely on. */
function hygiene(s: Schema, path: string): string[] {
  const out: string[] = [];
  const isRootMeta = /^[A-Za-z]+\.metadata$/.test(path);
  // The API server owns apiVersion and kind; anyOf branches (int-or-string) share their parent's bounds.
  if (/^[A-Za-z]+\.(apiVersion|kind)$/.test(path) || path.includes('|')) return [];
  if (s.description === undefined && !isRootMeta) out.push(`${path}: no description`);
  if (s.type === 'array' && s.maxItems === undefined) out.push(`${path}: array without maxItems`);
  if (s.type === 'string' && s.maxLength === undefined && s.enum === undefined && s.format !== 'date-time' && s.pattern === undefined) {
    out.push(`${path}: string without maxLength, enum, pattern or date-time format`);
  }
  if (s.type === 'string' && s.pattern !== undefined && s.maxLength === undefined && !/^\^[^*+]*\$$/.test(s.pattern) && s.enum === undefined) {
    // A pattern with * or + does not bound the length; CEL cost estimates need maxLength then.
    out.push(`${path}: unbounded pattern without maxLength`);
  }
  if ((s['x-kubernetes-validations'] ?? []).some((r) => r.message === undefined && r.messageExpression === undefined)) out.push(`${path}: CEL rule without message`);
  if (s.type === 'object' && s.properties === undefined && s.additionalProperties === undefined && !isRootMeta) out.push(`${path}: free-form object`);
  return out;
}

describe('schema hygiene', () => {
  for (const { file, crd, root } of crds) {
    it(`${file}: every field has a description, every list maxItems, every string a bound, every CEL rule a message`, () => {
      const problems: string[] = [];
      walkSchema(root, crd.spec.names.kind, (s, p) => problems.push(...hygiene(s, p)));
      assert.deepEqual(problems, []);
    });
  }

  it('the type walker names every object uniquely', () => {
    const names = crds.flatMap((l) => collectObjects(l).objects.map((o) => o.name));
    assert.equal(new Set(names).size, names.length);
  });

  it('singular() handles the plural field names the CRDs use', () => {
    const cases: Array<[string, string]> = [['connections', 'connection'], ['policies', 'policy'], ['matchExpressions', 'matchExpression'], ['addresses', 'address'], ['allow', 'allow'], ['body', 'body'], ['ids', 'ids']];
    for (const [plural, one] of cases) assert.equal(singular(plural), one, plural);
  });

  it('toJsonSchema drops x-kubernetes-* keys and closes objects with properties', () => {
    const js = toJsonSchema({ type: 'object', properties: { a: { type: 'string', maxLength: 3, 'x-kubernetes-validations': [{ rule: 'true', message: 'm' }] } }, 'x-kubernetes-validations': [{ rule: 'true', message: 'm' }] });
    assert.deepEqual(js, { type: 'object', properties: { a: { type: 'string', maxLength: 3 } }, additionalProperties: false });
  });
});
