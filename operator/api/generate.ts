// Generates operator/api/types.ts (TypeScript interfaces with JSDoc) from the CRD schemas in crds/; `--check` fails on drift.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { collectObjects, loadCrds, nameOf, type Catalog, type LoadedCrd, type Schema } from './schema.ts';

export const TYPES_FILE = fileURLToPath(new URL('./types.ts', import.meta.url));

/** JSDoc wraps here; long words (URLs) stay whole. */
const WRAP_AT = 100;

/** The TypeScript type of a schema; named objects by their catalog name. */
export function tsType(catalog: Catalog, s: Schema): string {
  if (s['x-kubernetes-int-or-string'] === true) return 'number | string';
  if (s.enum !== undefined) return s.enum.map(lit).join(' | ');
  switch (s.type) {
    case 'string':
      return 'string';
    case 'integer':
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'array': {
      if (s.items === undefined) return 'unknown[]';
      const item = tsType(catalog, s.items);
      return item.includes(' ') ? `Array<${item}>` : `${item}[]`;
    }
    case 'object':
      if (s.properties !== undefined) return nameOf(catalog, s);
      if (typeof s.additionalProperties === 'object') return `Record<string, ${tsType(catalog, s.additionalProperties)}>`;
      return 'Record<string, unknown>';
    default:
      return 'unknown';
  }
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** A JSDoc block (indented) from a description and an optional default. */
function jsdoc(indent: string, description: string | undefined, dflt: unknown): string[] {
  const body = wrap((description ?? '').replace(/\*\//g, '*\\/'), WRAP_AT - indent.length - 3);
  if (dflt !== undefined) body.push(`@default ${JSON.stringify(dflt)}`);
  if (body.length === 0) return [];
  if (body.length === 1) return [`${indent}/** ${body[0]} */`];
  return [`${indent}/**`, ...body.map((l) => `${indent} * ${l}`), `${indent} */`];
}

/** A single-quoted TypeScript string literal (the repo's style). */
function lit(v: unknown): string {
  if (typeof v !== 'string') return JSON.stringify(v);
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

const KEY_RE = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function renderObject(catalog: Catalog, name: string, s: Schema, fieldType: (field: string, s: Schema) => string): string[] {
  const lines = [...jsdoc('', s.description, undefined), `export interface ${name} {`];
  const required = new Set(s.required ?? []);
  for (const [field, fs] of Object.entries(s.properties ?? {})) {
    lines.push(...jsdoc('  ', fs.description, fs.default));
    const key = KEY_RE.test(field) ? field : lit(field);
    lines.push(`  ${key}${required.has(field) ? '' : '?'}: ${fieldType(field, fs)};`);
  }
  lines.push('}');
  return lines;
}

/**
 * What makes two object schemas the same TypeScript type with the same property docs: their
 * properties (descriptions and defaults included) and required list. The object's own description,
 * default and CEL rules belong to the field that holds it, so they do not count.
 */
function shapeOf(s: Schema): string {
  return JSON.stringify({ properties: s.properties, required: s.required ?? [] });
}

/** Repeated shapes (replacements, Secret refs, conditions, selectors) become aliases of the first one. */
type Shapes = Map<string, string>;

/** The interfaces of one CRD: the resource itself (apiVersion and kind as literals), its list, every nested object. */
function renderCrd(loaded: LoadedCrd, shapes: Shapes): string[] {
  const catalog = collectObjects(loaded);
  const { group, names } = loaded.crd.spec;
  const apiVersion = `${group}/${loaded.version.name}`;
  const lines: string[] = [`// ---- ${names.kind} (crds/${loaded.file}) ----`, ''];
  const aliased: string[] = [];
  for (const obj of catalog.objects) {
    // Children of an alias are covered by the alias target's own children.
    if (aliased.some((p) => obj.path.startsWith(`${p}.`))) continue;
    const isRoot = obj.schema === loaded.root;
    const shape = shapeOf(obj.schema);
    const same = shapes.get(shape);
    if (!isRoot && same !== undefined) {
      aliased.push(obj.path);
      lines.push(...jsdoc('', `${obj.schema.description ?? ''} (Same shape as ${same}.)`, undefined), `export type ${obj.name} = ${same};`, '');
      continue;
    }
    shapes.set(shape, obj.name);
    const fieldType = (field: string, fs: Schema): string => {
      if (isRoot && field === 'apiVersion') return lit(apiVersion);
      if (isRoot && field === 'kind') return lit(names.kind);
      if (isRoot && field === 'metadata') return 'ObjectMeta';
      return tsType(catalog, fs);
    };
    // The API server always returns apiVersion and kind; making them required keeps hand-built objects honest.
    const schema = isRoot ? { ...obj.schema, required: [...new Set(['apiVersion', 'kind', 'metadata', ...(obj.schema.required ?? [])])] } : obj.schema;
    lines.push(...renderObject(catalog, obj.name, schema, fieldType), '');
  }
  lines.push(
    `/** A list of ${names.kind} objects, as the API server returns it. */`,
    `export interface ${names.listKind} {`,
    `  apiVersion: ${lit(apiVersion)};`,
    `  kind: ${lit(names.listKind)};`,
    '  metadata?: ListMeta;',
    `  items: ${names.kind}[];`,
    '}',
    '',
  );
  return lines;
}

function renderResources(all: readonly LoadedCrd[]): string[] {
  const lines = [
    '/** Group, version, names and scope of every resource, for clients and RBAC. */',
    'export const RESOURCES = {',
  ];
  for (const l of all) {
    const { names, scope, group } = l.crd.spec;
    lines.push(
      `  ${names.kind}: {`,
      `    group: ${lit(group)},`,
      `    version: ${lit(l.version.name)},`,
      `    apiVersion: ${lit(`${group}/${l.version.name}`)},`,
      `    kind: ${lit(names.kind)},`,
      `    listKind: ${lit(names.listKind)},`,
      `    plural: ${lit(names.plural)},`,
      `    singular: ${lit(names.singular)},`,
      `    shortNames: [${(names.shortNames ?? []).map(lit).join(', ')}],`,
      `    namespaced: ${String(scope === 'Namespaced')},`,
      '  },',
    );
  }
  lines.push('} as const;', '');
  return lines;
}

const PRELUDE = [
  '// TypeScript types of the chaperone.dev resources, generated from crds/*.yaml by operator/api/generate.ts: do not edit.',
  '// Regenerate with `node --import tsx operator/api/generate.ts`; test/unit/crds-types.test.ts fails when this file drifts.',
  '// Type-only besides RESOURCES, so the sidecar may import it without pulling in a Kubernetes client.',
  '',
  '/** The subset of metav1.ObjectMeta that Chaperone reads and writes. */',
  'export interface ObjectMeta {',
  '  name?: string;',
  '  generateName?: string;',
  '  namespace?: string;',
  '  uid?: string;',
  '  resourceVersion?: string;',
  '  generation?: number;',
  '  creationTimestamp?: string;',
  '  deletionTimestamp?: string;',
  '  labels?: Record<string, string>;',
  '  annotations?: Record<string, string>;',
  '  finalizers?: string[];',
  '  ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }>;',
  '}',
  '',
  '/** metav1.ListMeta. */',
  'export interface ListMeta {',
  '  resourceVersion?: string;',
  '  continue?: string;',
  '  remainingItemCount?: number;',
  '}',
  '',
];

/** The whole of types.ts for these CRDs. */
export function renderTypes(all: readonly LoadedCrd[]): string {
  const lines = [...PRELUDE, ...renderResources(all)];
  const shapes: Shapes = new Map();
  for (const l of all) lines.push(...renderCrd(l, shapes));
  return `${lines.join('\n').trimEnd()}\n`;
}

function main(argv: readonly string[]): number {
  const text = renderTypes(loadCrds());
  if (argv.includes('--check')) {
    const current = readFileSync(TYPES_FILE, 'utf8');
    if (current === text) return 0;
    process.stderr.write(`${TYPES_FILE} is out of date with crds/*.yaml; run: node --import tsx operator/api/generate.ts\n`);
    return 1;
  }
  writeFileSync(TYPES_FILE, text);
  process.stdout.write(`wrote ${TYPES_FILE}\n`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main(process.argv.slice(2));
