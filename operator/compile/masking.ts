// MaskingPolicies selecting one connection → the connection's `masking` block (merged: detectors, patterns and field rules add up).
import { createHash } from 'node:crypto';
import type { MaskingPolicy, MaskingPolicySpec, Replacement } from '../api/types.ts';
import type { MaskingConfig, ReplacementConfig } from '../../sidecar/core/config-types.ts';
import { createMasker, type MaskerOptions } from '../../sidecar/masking/index.ts';
import { DETECTORS } from '../../sidecar/masking/detectors/index.ts';
import { hmacKeyMountPath, type MountSet } from './paths.ts';
import type { CompileError } from './types.ts';

const DEFAULT_HMAC_KEY = 'hmac-key';
/** The masker checks hmac replacements against some key; the real one is read only by the sidecar. */
const PLACEHOLDER_HMAC_KEY = new Uint8Array(32);
const MASKER_ID_MAX = 63;

export function policyPath(p: MaskingPolicy, field: string): string {
  return `MaskingPolicy/${p.metadata.name ?? ''}.${field}`;
}

/** A rule id the masker accepts (≤ 63 of [a-z0-9._-]); long policy names are shortened with a hash. */
function ruleId(policy: string, suffix: string): string {
  const id = `${policy}.${suffix}`;
  if (id.length <= MASKER_ID_MAX) return id;
  return `mp-${createHash('sha256').update(policy).digest('hex').slice(0, 12)}.${suffix}`;
}

/** The detector ids one policy turns on, in the CRD's order: baseline, +categories, −categories, +ids, −ids. */
function detectorSet(p: MaskingPolicy, errors: CompileError[]): Set<string> {
  const d = p.spec.detectors ?? {};
  const ids = new Set(DETECTORS.map((x) => x.id));
  const on = new Set<string>(d.baseline === 'none' ? [] : DETECTORS.filter((x) => x.enabledByDefault !== false).map((x) => x.id));
  for (const c of d.enableCategories ?? []) for (const x of DETECTORS) if (x.category === c) on.add(x.id);
  for (const c of d.disableCategories ?? []) for (const x of DETECTORS) if (x.category === c) on.delete(x.id);
  const check = (list: readonly string[] | undefined, field: string, apply: (id: string) => void): void => {
    (list ?? []).forEach((id, i) => {
      if (ids.has(id)) apply(id);
      else errors.push({ path: policyPath(p, `spec.detectors.${field}[${i}]`), message: `unknown detector ${JSON.stringify(id)}; see docs/detectors.md for the ids` });
    });
  };
  check(d.enable, 'enable', (id) => on.add(id));
  check(d.disable, 'disable', (id) => on.delete(id));
  return on;
}

export interface HmacRef {
  readonly secret: string;
  readonly key: string;
}

function replacement(r: Replacement, hmac: HmacRef[]): ReplacementConfig {
  const type = r.type ?? 'placeholder';
  if (type === 'partial') return { kind: 'partial', keepLast: r.keepLast ?? 4, ...(r.maskChar === undefined ? {} : { maskChar: r.maskChar }) };
  if (type === 'hmac') {
    if (r.keySecretRef) hmac.push({ secret: r.keySecretRef.name, key: r.keySecretRef.key ?? DEFAULT_HMAC_KEY });
    return { kind: 'hmac', ...(r.length === undefined ? {} : { length: r.length }) };
  }
  return { kind: 'placeholder', ...(r.format === undefined ? {} : { format: r.format }) };
}

function hasReplacement(r: Replacement | undefined): r is Replacement {
  return r !== undefined && Object.keys(r).length > 0;
}

/** `**.password` → the name `password` anywhere; other paths stay dotted globs (`*` in the masker spans dots: broader, never narrower). */
function fieldGlob(path: string): string {
  const m = /^\*\*\.([^.]+)$/.exec(path);
  return m?.[1] ?? path.replace(/\*\*/g, '*');
}

/** One policy's own contribution (everything but detectors), checked alone so errors name the policy and field. */
export interface PolicyPart {
  readonly detectors: Set<string>;
  readonly customPatterns: NonNullable<MaskingConfig['customPatterns']>[number][];
  /** PostgreSQL result columns (postgres connections only). */
  readonly columnRules: NonNullable<MaskingConfig['fieldRules']>[number][];
  /** JSON fields (http and kubernetes connections only). */
  readonly fieldRules: NonNullable<MaskingConfig['fieldRules']>[number][];
  readonly replacements: Record<string, ReplacementConfig>;
  readonly replacement: ReplacementConfig | undefined;
  readonly hmac: HmacRef[];
  readonly decodeBase64: boolean;
  readonly decodeEscapes: boolean;
  readonly hasHeaders: boolean;
}

function partialKeepLastErrors(p: MaskingPolicy, errors: CompileError[]): void {
  const check = (r: Replacement | undefined, field: string): void => {
    if (r?.type === 'partial' && (r.keepLast ?? 4) > 4) errors.push({ path: policyPath(p, `${field}.keepLast`), message: 'the sidecar keeps at most 4 characters (more would show too much of a secret); use 0-4' });
  };
  check(p.spec.replacement, 'spec.replacement');
  p.spec.patterns?.forEach((x, i) => check(x.replacement, `spec.patterns[${i}].replacement`));
  p.spec.columns?.forEach((x, i) => check(x.replacement, `spec.columns[${i}].replacement`));
  p.spec.fields?.forEach((x, i) => check(x.replacement, `spec.fields[${i}].replacement`));
}

function collectRules(p: MaskingPolicy, spec: MaskingPolicySpec, part: PolicyPart, warnings: string[]): void {
  const name = p.metadata.name ?? '';
  for (const x of spec.patterns ?? []) {
    const id = ruleId('custom', x.name);
    part.customPatterns.push({
      id, pattern: x.regex, category: x.category ?? 'secret', maxLength: x.maxMatchLength ?? 256,
      ...(x.keywords && x.keywords.length > 0 ? { keywords: [...x.keywords] } : {}),
    });
    if (hasReplacement(x.replacement)) part.replacements[id] = replacement(x.replacement, part.hmac);
  }
  (spec.columns ?? []).forEach((c, i) => {
    if (c.action === 'Skip') {
      warnings.push(`${policyPath(p, `spec.columns[${i}]`)}: action Skip is not supported by the sidecar yet; the column is scanned by the detectors as usual`);
      return;
    }
    if (c.table !== undefined) warnings.push(`${policyPath(p, `spec.columns[${i}].table`)}: the sidecar matches columns by name only; ${JSON.stringify(c.name)} is masked in every table`);
    const id = ruleId(name, `columns-${i}`);
    part.columnRules.push({ id, names: [c.name] });
    if (hasReplacement(c.replacement)) part.replacements[id] = replacement(c.replacement, part.hmac);
  });
  (spec.fields ?? []).forEach((f, i) => {
    if (f.action === 'Skip') {
      warnings.push(`${policyPath(p, `spec.fields[${i}]`)}: action Skip is not supported by the sidecar yet; the field is scanned by the detectors as usual`);
      return;
    }
    const id = ruleId(name, `fields-${i}`);
    part.fieldRules.push({ id, names: [fieldGlob(f.path)] });
    if (hasReplacement(f.replacement)) part.replacements[id] = replacement(f.replacement, part.hmac);
  });
}

/** Maps a masker error about the policy checked alone back to the CRD field. */
function maskerErrorPath(p: MaskingPolicy, message: string): CompileError {
  const m = /^masking options: ([^:]+): (.*)$/s.exec(message);
  const field = m?.[1] ?? '';
  const detail = m?.[2] ?? message;
  const custom = /^customPatterns\[(\d+)\]/.exec(field);
  if (custom) return { path: policyPath(p, `spec.patterns[${custom[1]}].regex`), message: detail };
  return { path: policyPath(p, 'spec'), message: `${field === '' ? '' : `${field}: `}${detail}` };
}

/** Compiles one policy's part and checks it with the masker's own options compiler (RE2 patterns, ids, replacements). */
export function compilePolicyPart(p: MaskingPolicy, errors: CompileError[], warnings: string[]): PolicyPart {
  const spec = p.spec;
  const before = errors.length;
  const hmac: HmacRef[] = [];
  const withDefault: PolicyPart = {
    detectors: detectorSet(p, errors), customPatterns: [], columnRules: [], fieldRules: [], replacements: {}, hmac,
    replacement: hasReplacement(spec.replacement) ? replacement(spec.replacement, hmac) : undefined,
    decodeBase64: spec.decode?.base64 ?? true, decodeEscapes: spec.decode?.percentEncoding ?? true, hasHeaders: (spec.headers ?? []).length > 0,
  };
  collectRules(p, spec, withDefault, warnings);
  partialKeepLastErrors(p, errors);
  if (errors.length > before) return withDefault;
  const opts: MaskerOptions = {
    detectors: [], customPatterns: withDefault.customPatterns, fieldRules: [...withDefault.columnRules, ...withDefault.fieldRules], replacements: withDefault.replacements,
    ...(withDefault.replacement ? { replacement: withDefault.replacement } : {}),
    ...(withDefault.hmac.length > 0 ? { hmacKey: PLACEHOLDER_HMAC_KEY } : {}),
  };
  try {
    createMasker(opts);
  } catch (e) {
    errors.push(maskerErrorPath(p, (e as Error).message));
  }
  return withDefault;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The default detectors as `detectors`/`disable` lists that yield exactly `on` (stays short when `on` is near the default). */
function detectorLists(on: ReadonlySet<string>): Pick<MaskingConfig, 'detectors' | 'disable'> {
  const defaults = new Set(DETECTORS.filter((x) => x.enabledByDefault !== false).map((x) => x.id));
  const extra = [...on].filter((id) => !defaults.has(id)).sort();
  const missing = [...defaults].filter((id) => !on.has(id)).sort();
  return { detectors: ['default', ...extra], ...(missing.length > 0 ? { disable: missing } : {}) };
}

export interface MergeContext {
  readonly connection: string;
  readonly protocol: string;
  readonly errors: CompileError[];
  readonly warnings: string[];
  readonly mounts: MountSet;
  readonly mountRoot: string;
}

/** Merges the parts of the policies (sorted by name) selecting one connection; undefined when none does (the sidecar's defaults). */
export function mergeMasking(parts: readonly { policy: MaskingPolicy; part: PolicyPart }[], ctx: MergeContext): MaskingConfig | undefined {
  if (parts.length === 0) return undefined;
  const m: Merged = { on: new Set(), customPatterns: [], fieldRules: [], replacements: {}, hmac: new Map(), def: undefined };
  for (const { policy, part } of parts) mergeOne(m, policy, part, ctx);
  if (m.hmac.size > 1) ctx.errors.push({ path: `connections.${ctx.connection}.masking`, message: `the MaskingPolicies selecting this connection name ${m.hmac.size} different HMAC keys (${[...m.hmac.keys()].sort().join(', ')}); the sidecar takes one per connection: use the same keySecretRef` });
  const key = [...m.hmac.values()][0];
  // Undefined fields vanish in the canonical JSON.
  return {
    ...detectorLists(m.on),
    replacement: m.def?.r,
    replacements: Object.keys(m.replacements).length > 0 ? m.replacements : undefined,
    hmacKeyFile: key ? ctx.mounts.add(hmacKeyMountPath(key.secret, key.key, ctx.mountRoot), 'secret', key.secret) : undefined,
    customPatterns: m.customPatterns.length > 0 ? m.customPatterns : undefined,
    fieldRules: m.fieldRules.length > 0 ? m.fieldRules : undefined,
    decodeEscapes: parts.some((x) => x.part.decodeEscapes),
    decodeBase64InJson: parts.some((x) => x.part.decodeBase64),
  };
}

interface Merged {
  readonly on: Set<string>;
  readonly customPatterns: PolicyPart['customPatterns'];
  readonly fieldRules: PolicyPart['fieldRules'];
  readonly replacements: Record<string, ReplacementConfig>;
  readonly hmac: Map<string, HmacRef>;
  def: { policy: string; r: ReplacementConfig } | undefined;
}

function mergeOne(m: Merged, policy: MaskingPolicy, part: PolicyPart, ctx: MergeContext): void {
  part.detectors.forEach((id) => m.on.add(id));
  for (const cp of part.customPatterns) {
    const prev = m.customPatterns.find((x) => x.id === cp.id);
    if (prev === undefined) m.customPatterns.push(cp);
    else if (!sameJson(prev, cp)) ctx.errors.push({ path: policyPath(policy, 'spec.patterns'), message: `pattern id ${JSON.stringify(cp.id)} is defined differently by another MaskingPolicy selecting connection ${ctx.connection}; rename one` });
  }
  const own = ctx.protocol === 'postgres' ? part.columnRules : part.fieldRules;
  m.fieldRules.push(...own);
  // Replacements only for rules this connection has (the masker refuses a replacement for an unknown id).
  const ids = new Set([...part.customPatterns.map((x) => x.id), ...own.map((x) => x.id)]);
  for (const [id, r] of Object.entries(part.replacements)) if (ids.has(id)) m.replacements[id] = r;
  part.hmac.forEach((h) => m.hmac.set(`${h.secret}/${h.key}`, h));
  const name = policy.metadata.name ?? '';
  if (part.replacement) {
    if (m.def === undefined) m.def = { policy: name, r: part.replacement };
    else if (!sameJson(m.def.r, part.replacement)) ctx.warnings.push(`connection ${ctx.connection}: MaskingPolicies ${m.def.policy} and ${name} set different spec.replacement; ${m.def.policy}'s (first by name) is used`);
  }
  if (part.hasHeaders && ctx.protocol !== 'postgres') ctx.warnings.push(`${policyPath(policy, 'spec.headers')}: header rules are not compiled yet (the HTTP gateway has no header masking config); connection ${ctx.connection} scans headers with the detectors only`);
}
