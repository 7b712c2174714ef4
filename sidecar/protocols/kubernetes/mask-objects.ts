// Kubernetes API responses masked by meaning: Secret `data`/`stringData` values (single objects, lists, Tables, watch events, last-applied annotations), then the detectors over the whole document.
import type { Masker, MaskResult } from '../../masking/index.ts';

/** Rule id counted for every Secret value replaced. */
export const SECRET_RULE = 'kubernetes-secret-data';
/** What a Secret value becomes (base64 of it in `data`, so clients that decode `data` still can). */
export const SECRET_PLACEHOLDER = `[MASKED:${SECRET_RULE}]`;
const SECRET_PLACEHOLDER_B64 = Buffer.from(SECRET_PLACEHOLDER).toString('base64');
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class Counter {
  n = 0;
}

function maskValues(m: unknown, replacement: string, c: Counter): void {
  if (!isObj(m)) return;
  for (const k of Object.keys(m)) {
    if (m[k] === '' || m[k] === null) continue;
    m[k] = replacement;
    c.n++;
  }
}

/** One Secret (or something that may be one): its values, and the copy of them kubectl keeps in an annotation. */
function maskSecret(o: Obj, c: Counter): void {
  maskValues(o['data'], SECRET_PLACEHOLDER_B64, c);
  maskValues(o['stringData'], SECRET_PLACEHOLDER, c);
  maskLastApplied(o, c, true);
}

/**
 * The last-applied annotation (kubectl's copy of what it applied, Secret values in clear). Masked when
 * its holder is a Secret (`holderIsSecret`: a Secret, or the metadata-only view of one in a Table row or
 * a PartialObjectMetadata answer) or when the copy itself says `kind: Secret`, whatever holds it.
 */
function maskLastApplied(o: Obj, c: Counter, holderIsSecret: boolean): void {
  const meta = o['metadata'];
  const ann = isObj(meta) ? meta['annotations'] : undefined;
  if (!isObj(ann) || typeof ann[LAST_APPLIED] !== 'string') return;
  let inner: unknown;
  try {
    inner = JSON.parse(ann[LAST_APPLIED]);
  } catch {
    inner = undefined;
  }
  if (isObj(inner) && (holderIsSecret || inner['kind'] === 'Secret')) {
    const before = c.n;
    maskSecret(inner, c);
    if (c.n !== before) ann[LAST_APPLIED] = JSON.stringify(inner);
  } else if (holderIsSecret) {
    ann[LAST_APPLIED] = SECRET_PLACEHOLDER;
    c.n++;
  }
}

/** Kinds that stand for a Secret when the request was for `secrets`: list items without a kind, and the metadata-only views (`as=PartialObjectMetadata`, Table rows' `includeObject=Metadata`). */
const SECRET_VIEWS = new Set<unknown>([undefined, 'PartialObjectMetadata']);

/**
 * Walks a decoded response. `secrets`: the request was for the `secrets` resource, so objects without
 * a `kind` (list items, Table row objects) and metadata-only views are Secrets too.
 */
function walkKube(v: unknown, secrets: boolean, c: Counter, depth = 0): void {
  if (!isObj(v) || depth > 8) return;
  const kind = v['kind'];
  if (kind === 'Secret' || (secrets && SECRET_VIEWS.has(kind) && ('data' in v || 'stringData' in v || 'metadata' in v))) maskSecret(v, c);
  else maskLastApplied(v, c, false);
  for (const [child, childSecrets] of children(v, kind, secrets)) walkKube(child, childSecrets, c, depth + 1);
}

/** Objects nested in a response: a watch event's object, list items, Table row objects. */
function children(v: Obj, kind: unknown, secrets: boolean): [unknown, boolean][] {
  const out: [unknown, boolean][] = [];
  if (typeof v['type'] === 'string' && isObj(v['object'])) out.push([v['object'], secrets]);
  if (Array.isArray(v['items'])) {
    const itemsAreSecrets = secrets || kind === 'SecretList';
    for (const it of v['items'] as unknown[]) out.push([it, itemsAreSecrets]);
  }
  if (kind === 'Table' && Array.isArray(v['rows'])) {
    for (const row of v['rows'] as unknown[]) if (isObj(row)) out.push([row['object'], secrets]);
  }
  return out;
}

/**
 * Masks one JSON document from the API server: Secret values by meaning, then the detectors over
 * everything (ConfigMap values, annotations, status messages, Table cells). Invalid JSON is masked as text.
 */
export function maskKubeDocument(masker: Masker, text: string, secrets: boolean): MaskResult<string> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return masker.maskJson(text);
  }
  const c = new Counter();
  walkKube(doc, secrets, c);
  const out = c.n > 0 ? JSON.stringify(doc) : text;
  const r = masker.maskJson(out);
  if (c.n === 0) return r;
  return { value: r.value, changed: true, findings: { ...r.findings, [SECRET_RULE]: (r.findings[SECRET_RULE] ?? 0) + c.n } };
}
