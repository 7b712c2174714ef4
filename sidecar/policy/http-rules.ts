// HTTP and Kubernetes request rules: compile the connection's `policy.http` (what operator/compile/rules.ts emits) and judge a request (pure).
//
// Rule shape: `{ id, action: allow|deny|require-approval, priority?, message?, match: { http | kubernetes }, approval? }`.
// The highest priority level with a matching rule decides; inside that level deny beats
// require-approval beats allow (the CRD's reading). No match: the policy default. A WebSocket upgrade
// is allowed only by an allow rule that names it (`http.websocket: true`); the default never allows one.
import { createRequire } from 'node:module';
import type { HttpPolicyConfig } from '../core/config-types.ts';
import type { KubeRequestInfo } from '../protocols/kubernetes/request-info.ts';

export type HttpAction = 'allow' | 'deny' | 'require-approval';
export type HttpBlock = 'http' | 'kubernetes';
export const DEFAULT_RULE_PRIORITY = 500;

/** What a rule is judged on. `body` is the parsed JSON request body, or undefined (absent, not JSON, or not read). */
export interface HttpFacts {
  readonly method: string;
  /** Normalized path relative to the connection's base URL (dot segments resolved, percent-decoded per segment). */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly body: unknown;
  /**
   * A body was sent that the gateway could not read as one unambiguous JSON document although an
   * upstream might (it looks like JSON, says it is JSON, has duplicate or case-colliding keys, an
   * encoding the gateway cannot undo). Body predicates of deny and require-approval rules match it
   * (fail closed); those of allow rules do not.
   */
  readonly bodyUnknown?: boolean;
  /** The body as read, when the policy reads bodies (the Kubernetes guardrails decode protobuf bodies from it). */
  readonly rawBody?: Buffer;
  readonly websocket: boolean;
  /** Kubernetes connections: the request's RequestInfo. */
  readonly kube?: KubeRequestInfo;
}

export type HttpDecision =
  | { readonly action: 'allow'; readonly rule: string | null; readonly reason: string }
  | { readonly action: 'deny'; readonly rule: string; readonly reason: string; readonly message: string }
  | { readonly action: 'require-approval'; readonly rule: string; readonly reason: string; readonly message: string; readonly approval: Readonly<Record<string, unknown>> };

interface CompiledRule {
  readonly id: string;
  readonly action: HttpAction;
  readonly priority: number;
  readonly message: string;
  readonly approval: Readonly<Record<string, unknown>>;
  /** True when the rule matches only WebSocket upgrades. */
  readonly websocketOnly: boolean;
  readonly matches: (f: HttpFacts) => boolean;
}

export interface CompiledHttpPolicy {
  readonly block: HttpBlock;
  readonly default: 'allow' | 'deny';
  /** Highest priority first (stable). */
  readonly rules: readonly CompiledRule[];
  /** Some rule reads the JSON body: the gateway must buffer bodies to judge them. */
  readonly needsBody: boolean;
}

export interface PolicyError {
  readonly path: string;
  readonly message: string;
}

export type HttpCompileResult = { readonly ok: true; readonly policy: CompiledHttpPolicy } | { readonly ok: false; readonly errors: readonly PolicyError[] };

const ACTIONS: readonly HttpAction[] = ['allow', 'deny', 'require-approval'];
const RULE_FIELDS = new Set(['id', 'action', 'priority', 'message', 'match', 'approval']);
const HTTP_FIELDS = new Set(['methods', 'paths', 'query', 'body', 'websocket']);
const KUBE_FIELDS = new Set(['verbs', 'apiGroups', 'resources', 'subresources', 'namespaces', 'names']);
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE']);
const VERBS = new Set(['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection', 'proxy']);
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$/;

type Json = Readonly<Record<string, unknown>>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function escapeRe(s: string): string {
  return s.replace(/[.+^${}()|[\]\\?]/g, '\\$&');
}

/** A name or value glob: `*` any run of characters (anchored). */
export function simpleGlob(glob: string, ignoreCase = false): RegExp {
  return new RegExp(`^${glob.split('*').map(escapeRe).join('.*')}$`, ignoreCase ? 'is' : 's');
}

/** A path glob: `*` one segment (no `/`), `**` any number of segments (also none). `ignoreCase` for deny and require-approval rules (an upstream may not care about case). */
export function pathGlob(glob: string, ignoreCase = false): RegExp {
  const segs = glob.split('/');
  let re = '';
  segs.forEach((s, i) => {
    if (i === 0) {
      re += s.split('*').map(escapeRe).join('[^/]*');
      return;
    }
    if (s === '**') {
      // `/**` at any position: zero or more whole segments.
      re += '(?:/[^/]*)*';
      return;
    }
    re += '/' + s.split('*').map(escapeRe).join('[^/]*');
  });
  return new RegExp(`^${re}$`, ignoreCase ? 'is' : 's');
}

// re2-wasm holds ~18 MB of WASM memory once loaded: required only when a rule has a body pattern.
interface Re2Like {
  test(s: string): boolean;
}
let re2Ctor: (new (p: string, f: string) => Re2Like) | undefined;
function re2(pattern: string): Re2Like {
  re2Ctor ??= (createRequire(import.meta.url)('re2-wasm') as { RE2: new (p: string, f: string) => Re2Like }).RE2;
  return new re2Ctor(pattern, 'u');
}

class Ctx {
  readonly errors: PolicyError[] = [];
  needsBody = false;
  /**
   * The action of the rule being compiled. Deny and require-approval rules match every reading an
   * upstream could have (path case, body key case, an unreadable body); allow rules only the strict one.
   */
  action: HttpAction = 'allow';
  get strict(): boolean {
    return this.action === 'allow';
  }
  err(path: string, message: string): void {
    this.errors.push({ path, message });
  }
  unknownFields(path: string, o: Json, allowed: ReadonlySet<string>): void {
    for (const k of Object.keys(o)) if (!allowed.has(k)) this.err(`${path}.${k}`, `unknown field; expected one of ${[...allowed].join(', ')}`);
  }
  strings(path: string, v: unknown, check?: (s: string) => string | undefined): string[] | undefined {
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
      this.err(path, 'must be a list of strings');
      return undefined;
    }
    const list = v as string[];
    if (check) list.forEach((s, i) => {
      const problem = check(s);
      if (problem !== undefined) this.err(`${path}[${i}]`, problem);
    });
    return list;
  }
}

/** The values of an object's keys equal to `key` (`fold`: in any case, as Go's encoding/json reads them). */
function keyValues(v: Json, key: string, fold: boolean): unknown[] {
  if (!fold) return Object.hasOwn(v, key) ? [v[key]] : [];
  const k = key.toLowerCase();
  return Object.keys(v).filter((x) => x.toLowerCase() === k).map((x) => v[x]);
}

/** A dotted body path's values (`*` = every key or index at that level; `fold`: keys in any case). */
export function bodyValues(body: unknown, path: readonly string[], fold = false): unknown[] {
  let level: unknown[] = [body];
  for (const key of path) {
    const next: unknown[] = [];
    for (const v of level) {
      if (Array.isArray(v)) {
        if (key === '*') next.push(...(v as unknown[]));
        else if (/^\d+$/.test(key) && Number(key) < v.length) next.push(v[Number(key)]);
      } else if (isObject(v)) {
        if (key === '*') next.push(...Object.values(v));
        else next.push(...keyValues(v, key, fold));
      }
    }
    level = next;
    if (level.length === 0) break;
  }
  return level;
}

function asText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === null) return 'null';
  return JSON.stringify(v);
}

type Pred = (f: HttpFacts) => boolean;

function queryPred(c: Ctx, path: string, q: unknown): Pred | undefined {
  if (!isObject(q)) {
    c.err(path, 'must be an object with name, values, present');
    return undefined;
  }
  c.unknownFields(path, q, new Set(['name', 'values', 'present']));
  const name = q['name'];
  if (typeof name !== 'string' || name === '') {
    c.err(`${path}.name`, 'must be a non-empty string');
    return undefined;
  }
  const values = (c.strings(`${path}.values`, q['values']) ?? []).map((g) => simpleGlob(g));
  const present = q['present'] !== false;
  if (!present && values.length > 0) c.err(path, 'a query predicate with present: false takes no values');
  return (f) => {
    const got = f.query.getAll(name);
    if (!present) return got.length === 0;
    if (got.length === 0) return false;
    return values.length === 0 || got.some((v) => values.some((re) => re.test(v)));
  };
}

function bodyPred(c: Ctx, path: string, b: unknown): Pred | undefined {
  if (!isObject(b)) {
    c.err(path, 'must be an object with path, values, pattern, present');
    return undefined;
  }
  c.unknownFields(path, b, new Set(['path', 'values', 'pattern', 'present']));
  const p = b['path'];
  if (typeof p !== 'string' || !/^[^.\s]+(\.[^.\s]+)*$/.test(p)) {
    c.err(`${path}.path`, 'must be a dot-separated path of keys, e.g. spec.replicas');
    return undefined;
  }
  c.needsBody = true;
  const keys = p.split('.');
  const values = c.strings(`${path}.values`, b['values']);
  let pattern: Re2Like | undefined;
  if (b['pattern'] !== undefined) {
    if (typeof b['pattern'] !== 'string' || b['pattern'] === '') c.err(`${path}.pattern`, 'must be a non-empty RE2 pattern');
    else {
      try {
        pattern = re2(b['pattern']);
      } catch (e) {
        c.err(`${path}.pattern`, `is not valid RE2 (${(e as Error).message})`);
      }
    }
  }
  const present = b['present'] !== false;
  if (!present && (values !== undefined || pattern !== undefined)) c.err(path, 'a body predicate with present: false takes no values or pattern');
  const strict = c.strict;
  return (f) => {
    // No body, or one that is not JSON, never matches (present: false included: nothing is known about it);
    // one that may be JSON to the upstream but not to us matches deny and require-approval rules.
    if (f.body === undefined) return f.bodyUnknown === true && !strict;
    const got = bodyValues(f.body, keys, !strict);
    if (!present) return got.length === 0;
    return got.some((v) => {
      const t = asText(v);
      return (values === undefined || values.includes(t)) && (pattern === undefined || pattern.test(t));
    });
  };
}

function listPred<T>(list: readonly T[] | undefined, test: (f: HttpFacts, item: T) => boolean): Pred | undefined {
  if (list === undefined || list.length === 0) return undefined;
  return (f) => list.some((item) => test(f, item));
}

function httpMatch(c: Ctx, path: string, m: Json): { preds: Pred[]; websocket: boolean | undefined } {
  c.unknownFields(path, m, HTTP_FIELDS);
  const preds: Pred[] = [];
  const methods = c.strings(`${path}.methods`, m['methods'], (s) => (METHODS.has(s.toUpperCase()) ? undefined : `unknown method ${JSON.stringify(s)}`))?.map((s) => s.toUpperCase());
  // HEAD is a GET without the body (most servers run the GET handler): a rule on GET covers it.
  const mp = listPred(methods, (f, x) => f.method === x || (x === 'GET' && f.method === 'HEAD'));
  if (mp) preds.push(mp);
  const ignoreCase = !c.strict;
  const paths = c.strings(`${path}.paths`, m['paths'], (s) => (s.startsWith('/') ? undefined : 'a path glob starts with /'))?.map((g) => pathGlob(g, ignoreCase));
  const pp = listPred(paths, (f, re) => re.test(f.path));
  if (pp) preds.push(pp);
  for (const [key, make] of [['query', queryPred], ['body', bodyPred]] as const) {
    const v = m[key];
    if (v === undefined) continue;
    if (!Array.isArray(v)) {
      c.err(`${path}.${key}`, 'must be a list');
      continue;
    }
    (v as unknown[]).forEach((q, i) => {
      const p = make(c, `${path}.${key}[${i}]`, q);
      if (p) preds.push(p);
    });
  }
  const ws = m['websocket'];
  if (ws !== undefined && typeof ws !== 'boolean') c.err(`${path}.websocket`, 'must be true or false');
  const websocket = typeof ws === 'boolean' ? ws : undefined;
  if (websocket !== undefined) preds.push((f) => f.websocket === websocket);
  return { preds, websocket };
}

/** `pods/exec` in resources is RBAC's resource/subresource form. */
function resourceMatches(k: KubeRequestInfo, r: string): boolean {
  if (r === '*') return true;
  const slash = r.indexOf('/');
  if (slash < 0) return k.resource === r;
  const sub = r.slice(slash + 1);
  return k.resource === r.slice(0, slash) && (sub === '*' ? k.subresource !== '' : k.subresource === sub);
}

function kubeMatch(c: Ctx, path: string, m: Json): Pred[] {
  c.unknownFields(path, m, KUBE_FIELDS);
  const preds: Pred[] = [];
  const kube = (t: (k: KubeRequestInfo) => boolean): Pred => (f) => f.kube !== undefined && t(f.kube);
  const verbs = c.strings(`${path}.verbs`, m['verbs'], (s) => (VERBS.has(s) || s === '*' ? undefined : `unknown verb ${JSON.stringify(s)}`));
  if (verbs && verbs.length > 0) preds.push(kube((k) => verbs.includes('*') || verbs.includes(k.verb)));
  const groups = c.strings(`${path}.apiGroups`, m['apiGroups']);
  if (groups && groups.length > 0) preds.push(kube((k) => k.isResourceRequest && (groups.includes('*') || groups.includes(k.apiGroup))));
  const resources = c.strings(`${path}.resources`, m['resources'], (s) => (s === '' ? 'must not be empty' : undefined));
  if (resources && resources.length > 0) preds.push(kube((k) => k.isResourceRequest && resources.some((r) => resourceMatches(k, r))));
  const subs = c.strings(`${path}.subresources`, m['subresources']);
  if (subs && subs.length > 0) preds.push(kube((k) => k.isResourceRequest && (subs.includes('*') ? k.subresource !== '' : subs.includes(k.subresource))));
  const nss = c.strings(`${path}.namespaces`, m['namespaces'])?.map((g) => simpleGlob(g));
  // Cluster-scoped requests never match a namespace list.
  if (nss && nss.length > 0) preds.push(kube((k) => k.namespace !== '' && nss.some((re) => re.test(k.namespace))));
  const names = c.strings(`${path}.names`, m['names'])?.map((g) => simpleGlob(g));
  if (names && names.length > 0) preds.push(kube((k) => k.name !== '' && names.some((re) => re.test(k.name))));
  return preds;
}

/** The rule's `match`: its predicates (all must hold) and whether it names WebSocket upgrades only. */
function compileMatch(c: Ctx, block: HttpBlock, path: string, match: unknown): { preds: Pred[]; websocketOnly: boolean } {
  if (!isObject(match)) {
    c.err(`${path}.match`, 'must be an object');
    return { preds: [], websocketOnly: false };
  }
  const other = block === 'http' ? 'kubernetes' : 'http';
  for (const k of Object.keys(match)) {
    if (k === other || k === 'sql') c.err(`${path}.match.${k}`, `a ${block} connection judges ${block} requests only; move this rule to a ${k} connection`);
    else if (k !== block) c.err(`${path}.match.${k}`, `unknown field; expected ${block}`);
  }
  const m = match[block] ?? {};
  if (!isObject(m)) {
    c.err(`${path}.match.${block}`, 'must be an object');
    return { preds: [], websocketOnly: false };
  }
  if (block === 'kubernetes') return { preds: kubeMatch(c, `${path}.match.kubernetes`, m), websocketOnly: false };
  const h = httpMatch(c, `${path}.match.http`, m);
  return { preds: h.preds, websocketOnly: h.websocket === true };
}

function ruleHeader(c: Ctx, path: string, r: Json): { id: string; action: HttpAction; priority: number; message: string; approval: Json } {
  const id = r['id'];
  if (typeof id !== 'string' || !ID_RE.test(id)) c.err(`${path}.id`, 'must be 1-128 letters, digits, or _.:/-');
  const action = r['action'] as HttpAction;
  if (!ACTIONS.includes(action)) c.err(`${path}.action`, `must be one of ${ACTIONS.join(', ')}`);
  const priority = r['priority'] ?? DEFAULT_RULE_PRIORITY;
  if (typeof priority !== 'number' || !Number.isInteger(priority)) c.err(`${path}.priority`, 'must be an integer');
  const message = r['message'] ?? '';
  if (typeof message !== 'string') c.err(`${path}.message`, 'must be a string');
  const approval = r['approval'] ?? {};
  if (!isObject(approval)) c.err(`${path}.approval`, 'must be an object');
  return { id: String(id), action, priority: Number(priority), message: typeof message === 'string' ? message : '', approval: isObject(approval) ? approval : {} };
}

function compileRule(c: Ctx, block: HttpBlock, r: unknown, i: number): CompiledRule | undefined {
  const path = `rules[${i}]`;
  if (!isObject(r)) {
    c.err(path, 'must be an object');
    return undefined;
  }
  c.unknownFields(path, r, RULE_FIELDS);
  const head = ruleHeader(c, path, r);
  c.action = head.action;
  const { preds, websocketOnly } = compileMatch(c, block, path, r['match'] ?? {});
  return { ...head, websocketOnly, matches: (f) => preds.every((p) => p(f)) };
}

/** Validates and compiles one connection's rules; every problem is reported with its path. */
export function compileHttpPolicy(cfg: HttpPolicyConfig | undefined, block: HttpBlock): HttpCompileResult {
  const c = new Ctx();
  const def = cfg?.default ?? 'allow';
  if (def !== 'allow' && def !== 'deny') c.err('default', 'must be allow or deny');
  const raw: unknown = cfg?.rules ?? [];
  if (!Array.isArray(raw)) c.err('rules', 'must be a list');
  const rules: CompiledRule[] = [];
  const seen = new Set<string>();
  (Array.isArray(raw) ? (raw as unknown[]) : []).forEach((r, i) => {
    const cr = compileRule(c, block, r, i);
    if (!cr) return;
    if (seen.has(cr.id)) c.err(`rules[${i}].id`, `id ${JSON.stringify(cr.id)} is used twice`);
    seen.add(cr.id);
    rules.push(cr);
  });
  if (c.errors.length > 0) return { ok: false, errors: c.errors };
  // Stable sort: equal priorities keep their order.
  rules.sort((a, b) => b.priority - a.priority);
  return { ok: true, policy: { block, default: def, rules, needsBody: c.needsBody } };
}

const STRENGTH: Readonly<Record<HttpAction, number>> = { deny: 3, 'require-approval': 2, allow: 1 };

function decisionOf(r: CompiledRule): HttpDecision {
  const message = r.message === '' ? (r.action === 'deny' ? 'the connection\'s policy denies it' : 'the connection\'s policy requires an approval') : r.message;
  if (r.action === 'allow') return { action: 'allow', rule: r.id, reason: 'allowed' };
  if (r.action === 'deny') return { action: 'deny', rule: r.id, reason: 'denied', message };
  return { action: 'require-approval', rule: r.id, reason: 'requires-approval', message, approval: r.approval };
}

/** Judges one request. An exception inside a rule is a deny (fail closed). */
export function evaluateHttp(p: CompiledHttpPolicy, f: HttpFacts): HttpDecision {
  try {
    let best: CompiledRule | undefined;
    for (const r of p.rules) {
      if (best !== undefined && r.priority < best.priority) break;
      if (!r.matches(f)) continue;
      if (best === undefined || STRENGTH[r.action] > STRENGTH[best.action]) best = r;
    }
    if (f.websocket) {
      // An upgrade turns the connection into an opaque stream: only an explicit allow may open one.
      if (best === undefined || best.action === 'allow') {
        if (best !== undefined && best.websocketOnly) return decisionOf(best);
        return { action: 'deny', rule: 'chaperone.websocket', reason: 'websocket-refused', message: 'WebSocket upgrades are refused unless an Allow rule matches them with http.websocket: true' };
      }
      return decisionOf(best);
    }
    if (best !== undefined) return decisionOf(best);
    if (p.default === 'allow') return { action: 'allow', rule: null, reason: 'default-allow' };
    return { action: 'deny', rule: 'chaperone.default-deny', reason: 'default-deny', message: 'no rule allows this request and the connection\'s policy default is deny' };
  } catch (e) {
    return { action: 'deny', rule: 'chaperone.policy-error', reason: 'policy-error', message: `the policy failed on this request (${(e as Error).message}); refused` };
  }
}
