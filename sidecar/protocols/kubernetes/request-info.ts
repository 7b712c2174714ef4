// Kubernetes API request → RequestInfo (verb, group, version, resource, subresource, namespace, name), as the API server's RequestInfoFactory does (pure).
//
// Port of k8s.io/apiserver/pkg/endpoints/request/requestinfo.go: the path prefix decides resource vs
// non-resource, the method gives the verb, a nameless get is list or watch, a nameless delete is
// deletecollection, `/watch/` and `/proxy/` path prefixes are verbs, a `fieldSelector` of
// `metadata.name=x` names the object of a list or watch.

export interface KubeRequestInfo {
  readonly isResourceRequest: boolean;
  /** Lower-case verb: get, list, watch, create, update, patch, delete, deletecollection, proxy; for non-resource URLs the lower-case method. */
  readonly verb: string;
  /** The URL path (non-resource requests). */
  readonly path: string;
  readonly apiPrefix: string;
  /** `""` is the core group. */
  readonly apiGroup: string;
  readonly apiVersion: string;
  readonly namespace: string;
  readonly resource: string;
  readonly subresource: string;
  readonly name: string;
  /** What the guardrails read from the request headers (set by the listener; absent when classified without them). */
  readonly headers?: KubeRequestHeaders;
}

export interface KubeRequestHeaders {
  /** Names of the `Impersonate-*` headers present (lower case). */
  readonly impersonate: readonly string[];
  /** The request's Content-Type, lower case, or `''`. */
  readonly contentType: string;
}

const METHOD_VERBS: Readonly<Record<string, string>> = { POST: 'create', GET: 'get', HEAD: 'get', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };
const SPECIAL_VERBS = new Set(['proxy', 'watch']);
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

/**
 * ListOptions' `watch` as the API server decodes it (apimachinery `Convert_Slice_string_To_bool`): absent,
 * `0` or `false` (any case) is false; any other value — `yes`, `on`, an empty `?watch` — is true.
 */
function watchParam(query: URLSearchParams): boolean {
  const v = query.get('watch');
  return v !== null && v !== '0' && v.toLowerCase() !== 'false';
}

/** `metadata.name=foo` (or `==`) inside a field selector, as the API server lifts it into the name. */
function nameFromFieldSelector(sel: string | null): string {
  if (sel === null) return '';
  for (const term of sel.split(',')) {
    const m = /^\s*metadata\.name\s*==?\s*(.*?)\s*$/.exec(term);
    if (m) return m[1] ?? '';
  }
  return '';
}

function nonResource(method: string, path: string): KubeRequestInfo {
  return { isResourceRequest: false, verb: method.toLowerCase(), path, apiPrefix: '', apiGroup: '', apiVersion: '', namespace: '', resource: '', subresource: '', name: '' };
}

/** Splits a path into segments, dropping the empty first and trailing parts (as the API server does). */
function splitPath(path: string): string[] {
  const trimmed = path.replace(/^\/+/, '').replace(/\/+$/, '');
  return trimmed === '' ? [] : trimmed.split('/');
}

interface Prefix {
  readonly prefix: string;
  readonly group: string;
  readonly version: string;
  readonly rest: string[];
}

/** `/api/<v>/…` or `/apis/<g>/<v>/…`; undefined for non-resource paths (discovery included). */
function apiPrefix(parts: string[]): Prefix | undefined {
  const prefix = parts[0];
  if (prefix === 'api') return parts.length < 3 ? undefined : { prefix, group: '', version: parts[1] ?? '', rest: parts.slice(2) };
  // /apis, /apis/<group>, /apis/<group>/<version> are discovery, not resources.
  if (prefix === 'apis') return parts.length < 4 ? undefined : { prefix, group: parts[1] ?? '', version: parts[2] ?? '', rest: parts.slice(3) };
  return undefined;
}

/** The namespace, and the parts after it (`/namespaces/<ns>/<resource>…`; `namespaces/<ns>/status` stays the namespace's own). */
function splitNamespace(parts: string[]): { namespace: string; parts: string[] } {
  if (parts[0] !== 'namespaces' || parts.length < 2) return { namespace: '', parts };
  const namespace = parts[1] ?? '';
  if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2] ?? '')) return { namespace, parts: parts.slice(2) };
  return { namespace, parts };
}

/** Nameless get → list or watch; nameless delete → deletecollection; a metadata.name field selector names the object. */
function refineVerb(verb: string, name: string, query: URLSearchParams): { verb: string; name: string } {
  if (name !== '') return { verb, name };
  if (verb === 'get') return { verb: watchParam(query) ? 'watch' : 'list', name: nameFromFieldSelector(query.get('fieldSelector')) };
  if (verb === 'watch') return { verb, name: nameFromFieldSelector(query.get('fieldSelector')) };
  if (verb === 'delete') return { verb: 'deletecollection', name };
  return { verb, name };
}

/** Classifies one request. `pathname` is the URL path (already normalized), `query` its parameters. */
export function requestInfo(method: string, pathname: string, query: URLSearchParams): KubeRequestInfo {
  const m = method.toUpperCase();
  const p = apiPrefix(splitPath(pathname));
  if (p === undefined) return nonResource(m, pathname);
  let parts = p.rest;
  let verb = METHOD_VERBS[m] ?? m.toLowerCase();
  if (SPECIAL_VERBS.has(parts[0] ?? '')) {
    if (parts.length < 2) return nonResource(m, pathname);
    verb = parts[0] ?? '';
    parts = parts.slice(1);
  }
  const ns = splitNamespace(parts);
  parts = ns.parts;
  const resource = parts[0] ?? '';
  const subresource = parts.length >= 3 && verb !== 'proxy' ? (parts[2] ?? '') : '';
  const r = refineVerb(verb, parts[1] ?? '', query);
  return { isResourceRequest: true, verb: r.verb, path: pathname, apiPrefix: p.prefix, apiGroup: p.group, apiVersion: p.version, namespace: ns.namespace, resource, subresource, name: r.name };
}

/** `apps/deployments/status` style label for logs and recordings. */
export function describeRequest(i: KubeRequestInfo): string {
  if (!i.isResourceRequest) return `${i.verb} ${i.path}`;
  const res = `${i.apiGroup === '' ? '' : `${i.apiGroup}/`}${i.resource}${i.subresource === '' ? '' : `/${i.subresource}`}`;
  const where = i.namespace === '' ? '' : ` -n ${i.namespace}`;
  return `${i.verb} ${res}${i.name === '' ? '' : ` ${i.name}`}${where}`;
}
