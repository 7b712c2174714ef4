// A small Kubernetes API client over node:https: JSON requests, paged lists, streaming watches, server-side apply.
import { Agent, request as httpsRequest, type RequestOptions } from 'node:https';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';

/** Our server-side apply field manager (KFC's Apply hard-codes `pepr`, so the operator applies itself). */
export const FIELD_MANAGER = 'chaperone-operator';
/** Requests that hang longer than this are aborted (watches have their own server-side timeout). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** Sockets per API server: watches hold one each, so leave room for the reconcilers. */
export const DEFAULT_MAX_SOCKETS = 64;
const LIST_PAGE = 500;

export interface ResourceRef {
  /** '' for the core group. */
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

export const RESOURCES = {
  configMaps: { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', namespaced: true },
  secrets: { group: '', version: 'v1', plural: 'secrets', kind: 'Secret', namespaced: true },
  pods: { group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true },
  events: { group: '', version: 'v1', plural: 'events', kind: 'Event', namespaced: true },
  leases: { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', kind: 'Lease', namespaced: true },
  agentIdentities: { group: 'chaperone.dev', version: 'v1alpha1', plural: 'agentidentities', kind: 'AgentIdentity', namespaced: true },
  maskingPolicies: { group: 'chaperone.dev', version: 'v1alpha1', plural: 'maskingpolicies', kind: 'MaskingPolicy', namespaced: true },
  approvalRules: { group: 'chaperone.dev', version: 'v1alpha1', plural: 'approvalrules', kind: 'ApprovalRule', namespaced: true },
  approvalRequests: { group: 'chaperone.dev', version: 'v1alpha1', plural: 'approvalrequests', kind: 'ApprovalRequest', namespaced: true },
} as const satisfies Record<string, ResourceRef>;

export interface PathParts {
  readonly namespace?: string | undefined;
  readonly name?: string | undefined;
  readonly subresource?: string | undefined;
}

/** `/api/v1/namespaces/<ns>/configmaps/<name>` or `/apis/<group>/<version>/…`; no namespace = all namespaces. */
export function resourcePath(r: ResourceRef, p: PathParts = {}): string {
  const base = r.group === '' ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
  const ns = r.namespaced && p.namespace !== undefined ? `/namespaces/${encodeURIComponent(p.namespace)}` : '';
  const name = p.name !== undefined ? `/${encodeURIComponent(p.name)}` : '';
  const sub = p.name !== undefined && p.subresource !== undefined ? `/${p.subresource}` : '';
  return `${base}${ns}/${r.plural}${name}${sub}`;
}

/** A non-2xx answer: `reason` is the Status reason (`NotFound`, `Conflict`, `Expired`, `Gone`…). */
export class KubeApiError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly reason: string,
    readonly body: unknown,
  ) {
    const msg = typeof body === 'object' && body !== null && 'message' in body ? String((body).message) : String(body).slice(0, 300);
    super(`${method} ${path}: ${status} ${reason}: ${msg}`);
    this.name = 'KubeApiError';
  }
}

export function isStatus(err: unknown, status: number): boolean {
  return err instanceof KubeApiError && err.status === status;
}

export interface KubeList<T> {
  readonly items: T[];
  readonly metadata: { readonly resourceVersion?: string; readonly continue?: string };
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
export interface WatchEvent {
  readonly type: WatchEventType;
  readonly object: Record<string, unknown>;
}

export interface RequestOptionsLite {
  readonly body?: unknown;
  readonly contentType?: string;
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>;
  readonly signal?: AbortSignal | undefined;
  readonly accept?: string;
  readonly timeoutMs?: number;
}

export interface ListOptions {
  readonly labelSelector?: string | undefined;
  readonly fieldSelector?: string | undefined;
  readonly limit?: number;
  readonly resourceVersion?: string;
  /** PartialObjectMetadata only (no data or spec). */
  readonly metadataOnly?: boolean;
  readonly signal?: AbortSignal | undefined;
}

export interface WatchOptions extends ListOptions {
  readonly resourceVersion: string;
  /** Server closes the watch after this; the informer then re-watches from its last resourceVersion. */
  readonly timeoutSeconds?: number;
}

export interface ApplyOptions {
  readonly fieldManager?: string;
  /** Take fields over from other managers (default true: the operator owns what it applies). */
  readonly force?: boolean;
  readonly subresource?: string;
}

export interface KubeClientOptions {
  readonly log?: Logger;
  readonly maxSockets?: number;
  readonly requestTimeoutMs?: number;
}

/** Lists and watches negotiate different kinds: a watch offered PartialObjectMetadataList first ends with no event at its first change. */
const METADATA_LIST_ACCEPT = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';
const METADATA_WATCH_ACCEPT = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';

function query(q: RequestOptionsLite['query']): string {
  if (!q) return '';
  const parts = Object.entries(q).filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  return parts.length > 0 ? `?${parts.join('&')}` : '';
}

function parseBody(text: string, res: IncomingMessage): unknown {
  if (text === '') return undefined;
  if ((res.headers['content-type'] ?? '').includes('json')) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}

function statusReason(body: unknown, status: number): string {
  if (typeof body === 'object' && body !== null && 'reason' in body && typeof (body).reason === 'string') return (body as { reason: string }).reason;
  return String(status);
}

/** One API server, one credential; every request re-applies the kubeconfig's auth (rotating tokens). */
export class KubeClient {
  private readonly agents = new Map<string, Agent>();
  private readonly maxSockets: number;
  private readonly server: URL;
  private readonly timeoutMs: number;

  private constructor(
    readonly kubeConfig: KubeConfig,
    opts: KubeClientOptions,
  ) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster; pass --kubeconfig or run in a pod with a ServiceAccount');
    this.server = new URL(cluster.server);
    this.maxSockets = opts.maxSockets ?? DEFAULT_MAX_SOCKETS;
    this.timeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  static fromKubeConfig(kc: KubeConfig, opts: KubeClientOptions = {}): KubeClient {
    return new KubeClient(kc, opts);
  }

  /** The API server's base URL (`https://host:port`). */
  get serverUrl(): string {
    return this.server.origin;
  }

  private async options(method: string, path: string, headers: Record<string, string>): Promise<RequestOptions> {
    const opts: RequestOptions = { method, headers: { ...headers } };
    await this.kubeConfig.applyToHTTPSOptions(opts);
    const base = this.server.pathname.replace(/\/$/, '');
    // applyToHTTPSOptions sets its own agent; ours keeps TLS sessions alive and bounds sockets.
    return {
      ...opts, agent: this.server.protocol === 'https:' ? this.agentFor(opts) : undefined,
      protocol: this.server.protocol, hostname: this.server.hostname, port: this.server.port, path: `${base}${path}`,
    };
  }

  /** One keep-alive agent per distinct TLS material (it changes only when certificates rotate). */
  private agentFor(opts: RequestOptions): Agent {
    const key = JSON.stringify([opts.ca, opts.cert, opts.key, opts.rejectUnauthorized, opts.servername].map((v) => (Buffer.isBuffer(v) ? v.toString('base64') : v ?? null)));
    let a = this.agents.get(key);
    if (!a) {
      a = new Agent({
        keepAlive: true, maxSockets: this.maxSockets, ca: opts.ca, cert: opts.cert, key: opts.key,
        ...(opts.rejectUnauthorized !== undefined ? { rejectUnauthorized: opts.rejectUnauthorized } : {}),
        ...(opts.servername !== undefined ? { servername: opts.servername } : {}),
      });
      this.agents.set(key, a);
    }
    return a;
  }

  private async send(method: string, path: string, o: RequestOptionsLite): Promise<{ res: IncomingMessage }> {
    const headers: Record<string, string> = { accept: o.accept ?? 'application/json' };
    let payload: string | undefined;
    if (o.body !== undefined) {
      payload = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
      headers['content-type'] = o.contentType ?? 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    const opts = await this.options(method, `${path}${query(o.query)}`, headers);
    return new Promise((resolve, reject) => {
      const req = (this.server.protocol === 'https:' ? httpsRequest : httpRequest)({ ...opts, signal: o.signal, timeout: o.timeoutMs ?? this.timeoutMs }, (res) => resolve({ res }));
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer from the API server within ${o.timeoutMs ?? this.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** A JSON request; non-2xx throws KubeApiError with the Status reason. */
  async request<T = unknown>(method: string, path: string, o: RequestOptionsLite = {}): Promise<T> {
    const { res } = await this.send(method, path, o);
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const body = parseBody(Buffer.concat(chunks).toString('utf8'), res);
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) throw new KubeApiError(method, path, status, statusReason(body, status), body);
    return body as T;
  }

  /** GET; 404 → undefined. */
  async get<T = unknown>(path: string, o: RequestOptionsLite = {}): Promise<T | undefined> {
    try {
      return await this.request<T>('GET', path, o);
    } catch (err) {
      if (isStatus(err, 404)) return undefined;
      throw err;
    }
  }

  /** Every page of a list (`limit` + `continue`); the resourceVersion is the first page's (a consistent snapshot). */
  async list<T = unknown>(path: string, o: ListOptions = {}): Promise<KubeList<T>> {
    const items: T[] = [];
    let cont: string | undefined;
    let rv: string | undefined;
    do {
      const page = await this.request<KubeList<T>>('GET', path, {
        query: { labelSelector: o.labelSelector, fieldSelector: o.fieldSelector, limit: o.limit ?? LIST_PAGE, continue: cont, resourceVersion: cont ? undefined : o.resourceVersion },
        accept: o.metadataOnly ? METADATA_LIST_ACCEPT : undefined, signal: o.signal,
      });
      items.push(...(page.items ?? []));
      rv ??= page.metadata?.resourceVersion;
      cont = page.metadata?.continue || undefined;
    } while (cont !== undefined);
    return { items, metadata: { resourceVersion: rv } };
  }

  /**
   * A watch from `resourceVersion`; resolves when the server ends it (timeoutSeconds) or `signal`
   * aborts; rejects with KubeApiError 410 when the version is too old. `onEvent` sees every line
   * (ERROR events included: code 410 there means relist).
   */
  async watch(path: string, o: WatchOptions, onEvent: (e: WatchEvent) => void): Promise<void> {
    const { res } = await this.send('GET', path, {
      query: { watch: 1, resourceVersion: o.resourceVersion, timeoutSeconds: o.timeoutSeconds, allowWatchBookmarks: true, labelSelector: o.labelSelector, fieldSelector: o.fieldSelector },
      accept: o.metadataOnly ? METADATA_WATCH_ACCEPT : undefined, signal: o.signal, timeoutMs: ((o.timeoutSeconds ?? 300) + 30) * 1000,
    });
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) {
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      const body = parseBody(Buffer.concat(chunks).toString('utf8'), res);
      throw new KubeApiError('WATCH', path, status, statusReason(body, status), body);
    }
    let rest = '';
    try {
      for await (const chunk of res) {
        rest += (chunk as Buffer).toString('utf8');
        let nl: number;
        while ((nl = rest.indexOf('\n')) >= 0) {
          const line = rest.slice(0, nl);
          rest = rest.slice(nl + 1);
          if (line.trim() !== '') onEvent(JSON.parse(line) as WatchEvent);
        }
      }
    } catch (err) {
      if (o.signal?.aborted) return;
      throw err;
    }
  }

  /** Server-side apply: the desired object as the whole intent of our field manager. */
  async apply<T = unknown>(obj: { apiVersion?: string; kind?: string; metadata?: { name?: string; namespace?: string } }, r: ResourceRef, o: ApplyOptions = {}): Promise<T> {
    const path = resourcePath(r, { namespace: obj.metadata?.namespace, name: obj.metadata?.name, subresource: o.subresource });
    return this.request<T>('PATCH', path, {
      body: obj, contentType: 'application/apply-patch+yaml',
      query: { fieldManager: o.fieldManager ?? FIELD_MANAGER, force: o.force ?? true },
    });
  }

  async mergePatch<T = unknown>(path: string, patch: unknown): Promise<T> {
    return this.request<T>('PATCH', path, { body: patch, contentType: 'application/merge-patch+json', query: { fieldManager: FIELD_MANAGER } });
  }

  /** DELETE; false when the object was already gone. */
  async delete(path: string, body?: unknown): Promise<boolean> {
    try {
      await this.request('DELETE', path, { body });
      return true;
    } catch (err) {
      if (isStatus(err, 404)) return false;
      throw err;
    }
  }

  /** Closes idle keep-alive sockets (watches end with their signals). */
  close(): void {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }
}
