// Offline schema validation of chaperone.dev objects with ajv (the CEL rules run only in the API server; see test/integration/crds.test.ts).
import { isIP } from 'node:net';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { loadCrds, toJsonSchema, type LoadedCrd } from './schema.ts';

/** RFC 3339 as the API server's date-time format accepts it (fractional seconds and offsets allowed). */
const DATE_TIME_RE = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function isCidr(s: string): boolean {
  const slash = s.indexOf('/');
  if (slash < 0) return false;
  const ip = isIP(s.slice(0, slash));
  const bits = s.slice(slash + 1);
  if (ip === 0 || !/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (ip === 4 ? 32 : 128);
}

export interface ValidationProblem {
  /** JSON pointer into the object, e.g. `/spec/connections/0/protocol`. */
  readonly path: string;
  readonly message: string;
}

export type Validator = (obj: unknown) => readonly ValidationProblem[];

function problems(errors: ErrorObject[] | null | undefined): ValidationProblem[] {
  return (errors ?? []).map((e) => {
    const extra = e.keyword === 'additionalProperties' ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})` : '';
    const allowed = e.keyword === 'enum' ? ` (${((e.params as { allowedValues?: unknown[] }).allowedValues ?? []).join(', ')})` : '';
    return { path: e.instancePath === '' ? '/' : e.instancePath, message: `${e.message ?? e.keyword}${extra}${allowed}` };
  });
}

/** One validator per kind, compiled from the CRDs' structural schemas (x-kubernetes-* ignored). */
export function compileValidators(crds: readonly LoadedCrd[] = loadCrds()): ReadonlyMap<string, Validator> {
  const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false });
  ajv.addFormat('date-time', { type: 'string', validate: (s: string) => DATE_TIME_RE.test(s) && !Number.isNaN(Date.parse(s)) });
  ajv.addFormat('cidr', { type: 'string', validate: isCidr });
  ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isSafeInteger(n) });
  const out = new Map<string, Validator>();
  for (const l of crds) {
    const fn: ValidateFunction = ajv.compile(toJsonSchema(l.root));
    out.set(l.crd.spec.names.kind, (obj) => (fn(obj) ? [] : problems(fn.errors)));
  }
  return out;
}

/** Validates any chaperone.dev object by its kind; unknown kinds and apiVersions are problems too. */
export function validateObject(validators: ReadonlyMap<string, Validator>, obj: unknown): readonly ValidationProblem[] {
  const o = obj as { apiVersion?: unknown; kind?: unknown } | null;
  if (o === null || typeof o !== 'object') return [{ path: '/', message: 'not an object' }];
  const v = typeof o.kind === 'string' ? validators.get(o.kind) : undefined;
  if (v === undefined) return [{ path: '/kind', message: `unknown kind ${String(o.kind)}; expected one of ${[...validators.keys()].join(', ')}` }];
  if (o.apiVersion !== 'chaperone.dev/v1alpha1') return [{ path: '/apiVersion', message: `expected chaperone.dev/v1alpha1, got ${String(o.apiVersion)}` }];
  return v(obj);
}
