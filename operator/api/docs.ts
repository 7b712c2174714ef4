// Generates docs/api.md (every field: type, default, description, validations, CEL rules) from crds/*.yaml; `--check` fails on drift.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { collectObjects, loadCrds, nameOf, type Catalog, type CelRule, type LoadedCrd, type NamedObject, type Schema } from './schema.ts';

export const DOCS_FILE = fileURLToPath(new URL('../../docs/api.md', import.meta.url));

/** GitHub's heading anchors: lower-case, spaces to dashes, punctuation dropped. */
function anchor(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-');
}

/** Text safe inside a Markdown table cell. */
function cell(text: string): string {
  return text.replace(/\s+/g, ' ').replace(/\|/g, '\\|').trim();
}

/** Inline code that survives backticks inside (CEL strings, patterns). */
function code(text: string): string {
  const fence = text.includes('`') ? '``' : '`';
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${text}${pad}${fence}`;
}

/** The documented type of a schema, with links to named objects. */
export function docType(catalog: Catalog, s: Schema): string {
  if (s['x-kubernetes-int-or-string'] === true) return 'integer or string';
  switch (s.type) {
    case 'array':
      return s.items === undefined ? 'array' : `${docType(catalog, s.items)}[]`;
    case 'object':
      if (s.properties !== undefined) {
        const n = nameOf(catalog, s);
        return `[${n}](#${anchor(n)})`;
      }
      if (typeof s.additionalProperties === 'object') return `map[string]${docType(catalog, s.additionalProperties)}`;
      return 'object';
    default:
      return s.format !== undefined && s.type === 'string' ? `string (${s.format})` : (s.type ?? 'any');
  }
}

function range(lo: number | undefined, hi: number | undefined, what: string): string | undefined {
  if (lo !== undefined && hi !== undefined) return `${lo} ≤ ${what} ≤ ${hi}`;
  if (lo !== undefined) return `${what} ≥ ${lo}`;
  if (hi !== undefined) return `${what} ≤ ${hi}`;
  return undefined;
}

function celText(r: CelRule): string {
  const msg = r.message ?? (r.messageExpression !== undefined ? `(message from ${code(r.messageExpression)})` : '');
  return `rule ${code(r.rule)}: “${msg}”`;
}

/** Validation notes of one schema node; array items' scalar constraints are prefixed with "each". */
function checks(s: Schema, prefix = ''): string[] {
  const out: (string | undefined)[] = [];
  if (s.enum !== undefined) out.push(`one of ${s.enum.map((v) => code(String(v))).join(', ')}`);
  if (s.pattern !== undefined) out.push(`pattern ${code(s.pattern)}`);
  out.push(range(s.minLength, s.maxLength, 'length'));
  out.push(range(s.minimum, s.maximum, 'value'));
  out.push(range(s.minItems, s.maxItems, 'items'));
  out.push(range(undefined, s.maxProperties, 'entries'));
  if (s['x-kubernetes-list-type'] === 'set') out.push('items unique');
  if (s['x-kubernetes-list-type'] === 'map') out.push(`unique by ${(s['x-kubernetes-list-map-keys'] ?? []).map(code).join(', ')}`);
  for (const r of s['x-kubernetes-validations'] ?? []) out.push(celText(r));
  const mine = out.filter((x): x is string => x !== undefined).map((x) => prefix + x);
  if (s.type === 'array' && s.items !== undefined && s.items.properties === undefined) mine.push(...checks(s.items, 'each: '));
  return mine;
}

function fieldRow(catalog: Catalog, name: string, s: Schema, required: boolean): string {
  const dflt = s.default === undefined ? '' : code(JSON.stringify(s.default));
  // An object's own CEL rules are listed under its section; here only the field's direct constraints.
  const own = s.properties !== undefined ? { ...s, 'x-kubernetes-validations': undefined } : s;
  return `| ${code(name)} | ${docType(catalog, s)} | ${required ? 'yes' : ''} | ${cell(dflt)} | ${cell(s.description ?? '')} | ${cell(checks(own).join('; '))} |`;
}

function objectSection(catalog: Catalog, obj: NamedObject): string[] {
  const title = obj.path === obj.name ? `${obj.name} (top level)` : obj.name;
  const lines = [`### ${title}`, '', `${code(obj.path)}${obj.schema.description !== undefined ? `: ${cell(obj.schema.description)}` : ''}`, ''];
  const rules = obj.schema['x-kubernetes-validations'] ?? [];
  if (rules.length > 0) {
    lines.push('Rules:', '');
    for (const r of rules) lines.push(`- ${celText(r)}`);
    lines.push('');
  }
  lines.push('| Field | Type | Required | Default | Description | Validation |', '|---|---|---|---|---|---|');
  for (const f of obj.fields) lines.push(fieldRow(catalog, f.name, f.schema, f.required));
  lines.push('');
  return lines;
}

function crdSection(loaded: LoadedCrd): string[] {
  const catalog = collectObjects(loaded);
  const { group, names, scope } = loaded.crd.spec;
  const v = loaded.version;
  const lines = [
    `## ${names.kind}`,
    '',
    cell(loaded.root.description ?? ''),
    '',
    '| | |',
    '|---|---|',
    `| API version | ${code(`${group}/${v.name}`)} |`,
    `| Scope | ${scope} |`,
    `| Plural / singular | ${code(names.plural)} / ${code(names.singular)} |`,
    `| Short names | ${(names.shortNames ?? []).map(code).join(', ')} |`,
    `| Categories | ${(names.categories ?? []).map(code).join(', ')} |`,
    `| Subresources | ${Object.keys(v.subresources ?? {}).map(code).join(', ')} |`,
    `| Source | [crds/${loaded.file}](../crds/${loaded.file}) |`,
    '',
    `\`kubectl get ${names.shortNames?.[0] ?? names.plural}\` columns (\`-o wide\` adds those with priority 1):`,
    '',
    '| Column | Type | JSONPath | Priority | Description |',
    '|---|---|---|---|---|',
  ];
  for (const c of v.additionalPrinterColumns ?? []) {
    lines.push(`| ${c.name} | ${c.type} | ${code(c.jsonPath)} | ${c.priority ?? 0} | ${cell(c.description ?? '')} |`);
  }
  lines.push('');
  for (const obj of catalog.objects) lines.push(...objectSection(catalog, obj));
  return lines;
}

/** The whole of docs/api.md for these CRDs. */
export function renderDocs(all: readonly LoadedCrd[]): string {
  const lines = [
    '# API reference: chaperone.dev/v1alpha1',
    '',
    '<!-- Generated from crds/*.yaml by operator/api/docs.ts: do not edit; run `node --import tsx operator/api/docs.ts`. -->',
    '',
    'Generated from the CRDs in [`crds/`](../crds/), which are the truth; the TypeScript types in',
    '[`operator/api/types.ts`](../operator/api/types.ts) are generated from the same schemas. Rules marked',
    '“rule” are CEL validations that the API server enforces on create and update (rules using `oldSelf`',
    'only on update). Every resource is in the `chaperone` category: `kubectl get chaperone` lists them all.',
    '',
    '## Contents',
    '',
  ];
  for (const l of all) {
    const k = l.crd.spec.names.kind;
    lines.push(`- [${k}](#${anchor(k)}) (${(l.crd.spec.names.shortNames ?? []).map(code).join(', ')})`);
  }
  lines.push('');
  for (const l of all) lines.push(...crdSection(l));
  return `${lines.join('\n').trimEnd()}\n`;
}

function main(argv: readonly string[]): number {
  const text = renderDocs(loadCrds());
  if (argv.includes('--check')) {
    if (readFileSync(DOCS_FILE, 'utf8') === text) return 0;
    process.stderr.write(`${DOCS_FILE} is out of date with crds/*.yaml; run: node --import tsx operator/api/docs.ts\n`);
    return 1;
  }
  writeFileSync(DOCS_FILE, text);
  process.stdout.write(`wrote ${DOCS_FILE}\n`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main(process.argv.slice(2));
