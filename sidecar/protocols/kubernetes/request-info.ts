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
}

const METHOD_VERBS: Readonly<Record<string, string>> = { POST: 'create', GET: 'get', HEAD: 'get', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };
const SPECIAL_VERBS = new Set(['proxy', 'watch']);
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

/** strconv.ParseBool's true values (what ListOptions' `watch` accepts). */
function parseBool(v: string | null): boolean {
  return v !== null && ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v);
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

/** Classifies one request. `pathname` is the URL path (already normalized), `query` its parameters. */
export function requestInfo(method: string, pathname: string, query: URLSearchParams): KubeRequestInfo {
  const m = method.toUpperCase();
  let parts = splitPath(pathname);
  const prefix = parts[0];
  if (prefix !== 'api' && prefix !== 'apis') return nonResource(m, pathname);
  parts = parts.slice(1);
  let group = '';
  if (prefix === 'apis') {
    // /apis, /apis/<group>, /apis/<group>/<version> are discovery, not resources.
    if (parts.length < 3) return nonResource(m, pathname);
    group = parts[0] ?? '';
    parts = parts.slice(1);
  } else if (parts.length < 2) {
    return nonResource(m, pathname);
  }
  const version = parts[0] ?? '';
  parts = parts.slice(1);
  let verb: string;
  const first = parts[0] ?? '';
  if (SPECIAL_VERBS.has(first)) {
    if (parts.length < 2) return nonResource(m, pathname);
    verb = first;
    parts = parts.slice(1);
  } else {
    verb = METHOD_VERBS[m] ?? m.toLowerCase();
  }
  let namespace = '';
  if (parts[0] === 'namespaces') {
    if (parts.length > 1) {
      namespace = parts[1] ?? '';
      // /namespaces/<ns>/<resource>…: the resource inside it; /namespaces/<ns>/status stays the namespace's subresource.
      if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2] ?? '')) parts = parts.slice(2);
    }
  }
  const resource = parts[0] ?? '';
  let name = parts.length >= 2 ? (parts[1] ?? '') : '';
  const subresource = parts.length >= 3 && verb !== 'proxy' ? (parts[2] ?? '') : '';
  if (name === '' && verb === 'get') {
    verb = parseBool(query.get('watch')) ? 'watch' : 'list';
    name = nameFromFieldSelector(query.get('fieldSelector'));
  } else if (name === '' && verb === 'watch') {
    name = nameFromFieldSelector(query.get('fieldSelector'));
  }
  if (name === '' && verb === 'delete') verb = 'deletecollection';
  return { isResourceRequest: true, verb, path: pathname, apiPrefix: prefix, apiGroup: group, apiVersion: version, namespace, resource, subresource, name };
}

/** `apps/deployments/status` style label for logs and recordings. */
export function describeRequest(i: KubeRequestInfo): string {
  if (!i.isResourceRequest) return `${i.verb} ${i.path}`;
  const res = `${i.apiGroup === '' ? '' : `${i.apiGroup}/`}${i.resource}${i.subresource === '' ? '' : `/${i.subresource}`}`;
  const where = i.namespace === '' ? '' : ` -n ${i.namespace}`;
  return `${i.verb} ${res}${i.name === '' ? '' : ` ${i.name}`}${where}`;
}
