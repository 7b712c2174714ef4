// Reads the CRDs in crds/ (the truth) and walks their OpenAPI schemas into named object types for the type and doc generators.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/** The repository's crds/ directory, next to operator/. */
export const DEFAULT_CRDS_DIR = fileURLToPath(new URL('../../crds/', import.meta.url));

/** The CRD files, in the order the generated types and docs list them. */
export const CRD_FILES = ['agentidentity.yaml', 'maskingpolicy.yaml', 'approvalrule.yaml', 'approvalrequest.yaml'] as const;

/** One `x-kubernetes-validations` entry. */
export interface CelRule {
  readonly rule: string;
  readonly message?: string;
  readonly messageExpression?: string;
  readonly fieldPath?: string;
  readonly reason?: string;
}

/** The subset of apiextensions/v1 JSONSchemaProps the CRDs use. */
export interface Schema {
  readonly type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  readonly description?: string;
  readonly properties?: Readonly<Record<string, Schema>>;
  readonly additionalProperties?: Schema | boolean;
  readonly items?: Schema;
  readonly required?: readonly string[];
  readonly enum?: readonly unknown[];
  readonly default?: unknown;
  readonly format?: string;
  readonly pattern?: string;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly maxProperties?: number;
  readonly anyOf?: readonly Schema[];
  readonly 'x-kubernetes-int-or-string'?: boolean;
  readonly 'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  readonly 'x-kubernetes-list-map-keys'?: readonly string[];
  readonly 'x-kubernetes-validations'?: readonly CelRule[];
}

export interface PrinterColumn {
  readonly name: string;
  readonly type: string;
  readonly jsonPath: string;
  readonly description?: string;
  readonly priority?: number;
}

export interface CrdNames {
  readonly kind: string;
  readonly listKind: string;
  readonly plural: string;
  readonly singular: string;
  readonly shortNames?: readonly string[];
  readonly categories?: readonly string[];
}

export interface CrdVersion {
  readonly name: string;
  readonly served: boolean;
  readonly storage: boolean;
  readonly subresources?: { readonly status?: object };
  readonly additionalPrinterColumns?: readonly PrinterColumn[];
  readonly schema: { readonly openAPIV3Schema: Schema };
}

/** A CustomResourceDefinition as read from crds/*.yaml. */
export interface Crd {
  readonly apiVersion: string;
  readonly kind: 'CustomResourceDefinition';
  readonly metadata: { readonly name: string; readonly labels?: Readonly<Record<string, string>> };
  readonly spec: {
    readonly group: string;
    readonly scope: 'Namespaced' | 'Cluster';
    readonly names: CrdNames;
    readonly versions: readonly CrdVersion[];
  };
}

/** A CRD with the file it came from and its single served version. */
export interface LoadedCrd {
  readonly file: string;
  readonly crd: Crd;
  readonly version: CrdVersion;
  readonly root: Schema;
}

/** One property of a named object type. */
export interface Field {
  readonly name: string;
  readonly schema: Schema;
  readonly required: boolean;
}

/** An object schema with the TypeScript/doc name the walker gave it. */
export interface NamedObject {
  readonly name: string;
  /** Where it sits, e.g. `AgentIdentity.spec.connections[]`. */
  readonly path: string;
  readonly schema: Schema;
  readonly fields: readonly Field[];
}

/** Every named object of one CRD, and the name of each object schema. */
export interface Catalog {
  readonly loaded: LoadedCrd;
  readonly objects: readonly NamedObject[];
  readonly names: ReadonlyMap<Schema, string>;
}

/**
 * Names the path-based scheme would make clash (`spec.review` vs `spec.reviews[]`), and short names for
 * the first occurrence of shapes that repeat (later copies become aliases of these).
 */
const NAME_OVERRIDES: Readonly<Record<string, string>> = {
  'AgentIdentity.spec.connections[].tls.clientCertificateSecretRef': 'SecretRef',
  'AgentIdentity.status.conditions[]': 'Condition',
  'MaskingPolicy.spec.selector': 'Selector',
  'MaskingPolicy.spec.patterns[].replacement': 'Replacement',
  'MaskingPolicy.spec.patterns[].replacement.keySecretRef': 'HmacKeySecretRef',
  'ApprovalRequest.spec.review': 'ApprovalRequestReviewInput',
  'ApprovalRequest.spec.reviews[]': 'ApprovalRequestReview',
};

/** Parses one CRD file; throws with the file name when it is not a single-version CRD. */
export function parseCrd(file: string, text: string): LoadedCrd {
  const crd = parse(text) as Crd;
  if (crd?.kind !== 'CustomResourceDefinition') throw new Error(`${file}: not a CustomResourceDefinition (kind ${String(crd?.kind)})`);
  const version = crd.spec.versions[0];
  if (version === undefined || crd.spec.versions.length !== 1) {
    throw new Error(`${file}: expected exactly one version, found ${crd.spec.versions.length}; teach operator/api/schema.ts about several`);
  }
  return { file, crd, version, root: version.schema.openAPIV3Schema };
}

/** Loads every CRD in CRD_FILES from dir. */
export function loadCrds(dir: string = DEFAULT_CRDS_DIR): LoadedCrd[] {
  return CRD_FILES.map((f) => parseCrd(f, readFileSync(join(dir, f), 'utf8')));
}

/** `connections` → `Connection`, `policies` → `Policy`, `matchExpressions` → `MatchExpression`. */
export function singular(word: string): string {
  if (word.endsWith('ies')) return `${word.slice(0, -3)}y`;
  if (word.endsWith('sses')) return word.slice(0, -2);
  if (word.endsWith('s') && !word.endsWith('ss') && word.length > 3) return word.slice(0, -1);
  return word;
}

export function pascal(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

/** True for schemas that become a named interface: objects with declared properties. */
export function isNamedObject(s: Schema): boolean {
  return s.type === 'object' && s.properties !== undefined;
}

/**
 * Walks a CRD's schema depth-first (parents before children, properties in file order) and names
 * every object with properties: the root is the kind, `spec` → `<Kind>Spec`, children of spec drop the
 * `Spec` (`<Kind>Connection`), array items are singular. Each schema object gets exactly one name.
 */
export function collectObjects(loaded: LoadedCrd): Catalog {
  const kind = loaded.crd.spec.names.kind;
  const out: NamedObject[] = [];
  const names = new Map<Schema, string>();
  const taken = new Set<string>();
  const visit = (schema: Schema, name: string, path: string): void => {
    const unique = NAME_OVERRIDES[path] ?? name;
    if (taken.has(unique)) throw new Error(`${loaded.file}: two objects would be named ${unique} (second at ${path}); add a NAME_OVERRIDES entry`);
    taken.add(unique);
    names.set(schema, unique);
    const required = new Set(schema.required ?? []);
    const fields = Object.entries(schema.properties ?? {}).map(([n, s]) => ({ name: n, schema: s, required: required.has(n) }));
    out.push({ name: unique, path, schema, fields });
    const base = unique === `${kind}Spec` ? kind : unique;
    for (const f of fields) {
      const child = objectOf(f.schema);
      if (child === undefined) continue;
      const isItem = f.schema.type === 'array';
      const childName = base + pascal(isItem ? singular(f.name) : f.name);
      visit(child, childName, `${path}.${f.name}${isItem ? '[]' : ''}`);
    }
  };
  visit(loaded.root, kind, kind);
  return { loaded, objects: out, names };
}

/** The named object a field holds directly or as array items, if any. */
export function objectOf(s: Schema): Schema | undefined {
  if (isNamedObject(s)) return s;
  if (s.type === 'array' && s.items !== undefined && isNamedObject(s.items)) return s.items;
  return undefined;
}

/** The name collectObjects gave a schema object; throws for a schema outside the catalog. */
export function nameOf(catalog: Catalog, s: Schema): string {
  const n = catalog.names.get(s);
  if (n === undefined) throw new Error(`${catalog.loaded.file}: an object schema has no name; is it from another CRD?`);
  return n;
}

/**
 * Converts a structural schema into plain JSON Schema (draft 7) for ajv: `x-kubernetes-*` keys
 * dropped (CEL runs only in the API server), int-or-string kept as its anyOf, and `metadata`
 * loosened to an object (the API server owns its schema).
 */
export function toJsonSchema(s: Schema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s)) {
    if (k.startsWith('x-kubernetes-')) continue;
    if (k === 'properties' && v !== undefined) {
      out[k] = Object.fromEntries(Object.entries(v as Record<string, Schema>).map(([pk, pv]) => [pk, toJsonSchema(pv)]));
    } else if ((k === 'items' || k === 'additionalProperties') && typeof v === 'object' && v !== null) {
      out[k] = toJsonSchema(v as Schema);
    } else if (k === 'anyOf') {
      out[k] = (v as Schema[]).map(toJsonSchema);
    } else {
      out[k] = v;
    }
  }
  // A structural schema with properties prunes unknown fields; JSON Schema must refuse them to match.
  if (s.type === 'object' && s.properties !== undefined && s.additionalProperties === undefined) out['additionalProperties'] = false;
  return out;
}

/** Walks every schema node (properties, items, additionalProperties, anyOf) with its dotted path. */
export function walkSchema(s: Schema, path: string, visit: (s: Schema, path: string) => void): void {
  visit(s, path);
  for (const [k, v] of Object.entries(s.properties ?? {})) walkSchema(v, `${path}.${k}`, visit);
  if (s.items !== undefined) walkSchema(s.items, `${path}[]`, visit);
  if (typeof s.additionalProperties === 'object') walkSchema(s.additionalProperties, `${path}{}`, visit);
  for (const [i, a] of (s.anyOf ?? []).entries()) walkSchema(a, `${path}|${i}`, visit);
}
