// The `kubernetes` approval backend: a held command becomes an ApprovalRequest in the pod's namespace; the sidecar watches it and forwards only an approval bound to the exact hash.
import type { ApprovalBackend, ApprovalOutcome, ApprovalRequest as HeldCommand } from '../protocols/postgres/approval-hold.ts';
import { ABORT_CLIENT_GONE } from '../protocols/postgres/approval-hold.ts';
import type { ApprovalRequest as ApprovalRequestObject } from '../../operator/api/types.ts';
import { KubeHttp, KubeHttpError, type KubeHttpOptions, type WatchEvent } from './kube-http.ts';
import { LABEL_POD_UID, requestObject, type PodRef } from './request-body.ts';
import { bindingOf, verdictOf, windowKey, type Binding, type Verdict } from './verdict.ts';

export const DEFAULT_WATCH_BACKOFF = { baseMs: 100, maxMs: 5000 } as const;
/** Server-side watch timeout: the sidecar reconnects from the last resourceVersion when it ends. */
export const DEFAULT_WATCH_TIMEOUT_SECONDS = 300;

export interface BackendLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface KubernetesApprovalsOptions {
  readonly api: KubeHttpOptions | KubeHttp;
  readonly pod: PodRef;
  readonly log?: BackendLog;
  readonly now?: () => number;
  readonly backoff?: { readonly baseMs: number; readonly maxMs: number };
  readonly watchTimeoutSeconds?: number;
}

interface Window {
  readonly name: string;
  readonly expiresAt: number;
  /** The object that opened the window: a recreated request of that name does not keep it open. */
  readonly bound: Binding;
}

const NOOP_LOG: BackendLog = { info: () => undefined, warn: () => undefined };

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export class KubernetesApprovals implements ApprovalBackend {
  readonly name = 'kubernetes';
  private readonly api: KubeHttp;
  private readonly ownsApi: boolean;
  private readonly log: BackendLog;
  private readonly now: () => number;
  private readonly backoff: { readonly baseMs: number; readonly maxMs: number };
  /** Approved windows: (identity, connection, rule, requester) → the request that opened it. */
  private readonly windows = new Map<string, Window>();
  readonly stats = { created: 0, approved: 0, refused: 0, cancelled: 0, reconnects: 0, windowHits: 0 };

  constructor(private readonly o: KubernetesApprovalsOptions) {
    this.ownsApi = !(o.api instanceof KubeHttp);
    this.api = o.api instanceof KubeHttp ? o.api : new KubeHttp(o.api);
    this.log = o.log ?? NOOP_LOG;
    this.now = o.now ?? Date.now;
    this.backoff = o.backoff ?? DEFAULT_WATCH_BACKOFF;
  }

  private path(name?: string): string {
    const base = `/apis/chaperone.dev/v1alpha1/namespaces/${encodeURIComponent(this.o.pod.namespace)}/approvalrequests`;
    return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
  }

  howToApprove(req: HeldCommand): string {
    const w = this.windows.get(windowKey(req));
    if (w !== undefined && w.expiresAt > this.now()) return `the approved window of request ${w.name} covers this statement until ${new Date(w.expiresAt).toISOString()}; it is checked and run now`;
    return `ask an approver to run: kubectl chaperone approve ${req.id} -n ${this.o.pod.namespace} (or deny it: kubectl chaperone deny ${req.id} -n ${this.o.pod.namespace} --reason …)`;
  }

  async requestApproval(req: HeldCommand, signal: AbortSignal): Promise<ApprovalOutcome> {
    const covered = await this.inWindow(req);
    if (covered) return covered;
    const body = requestObject(req, this.o.pod, this.now());
    let created: ApprovalRequestObject;
    try {
      created = (await this.api.call('POST', this.path(), body)) as ApprovalRequestObject;
    } catch (e) {
      throw new Error(`could not create ApprovalRequest ${req.id} in namespace ${this.o.pod.namespace}: ${(e as Error).message}; check that the API server is reachable and the pod's ServiceAccount may create approvalrequests (operator/rbac/agent.yaml)`);
    }
    this.stats.created++;
    this.log.info({ request: req.id, namespace: this.o.pod.namespace, rule: req.rule }, 'approval request created');
    const v = await this.follow(req, created, signal);
    if (v === undefined) {
      if (signal.reason === ABORT_CLIENT_GONE) await this.cancel(req.id, 'the client disconnected or cancelled the statement while it waited');
      return { outcome: 'expired', reason: `no decision on ApprovalRequest ${req.id} in time` };
    }
    return this.settle(req, v, bindingOf(created));
  }

  /** A still-open window of the same identity, connection, rule and requester: re-read (revocation must stop it now). */
  private async inWindow(req: HeldCommand): Promise<ApprovalOutcome | undefined> {
    const key = windowKey(req);
    const w = this.windows.get(key);
    if (w === undefined) return undefined;
    this.windows.delete(key);
    if (w.expiresAt <= this.now()) return undefined;
    let obj: ApprovalRequestObject;
    try {
      obj = (await this.api.call('GET', this.path(w.name))) as ApprovalRequestObject;
    } catch (e) {
      this.log.warn({ request: w.name, err: (e as Error).message }, 'approved window could not be re-read; asking again');
      return undefined;
    }
    const v = verdictOf(obj, req, this.now(), { window: true, bound: w.bound });
    if (v.kind !== 'approved' || v.windowEndsAt === undefined) return undefined;
    this.windows.set(key, { name: w.name, expiresAt: v.windowEndsAt, bound: w.bound });
    this.stats.windowHits++;
    return { outcome: 'approved', reason: `covered by the approved window of ApprovalRequest ${w.name} (until ${new Date(v.windowEndsAt).toISOString()})`, by: v.by };
  }

  private settle(req: HeldCommand, v: Exclude<Verdict, { kind: 'pending' }>, bound: Binding): ApprovalOutcome {
    if (v.kind === 'approved') {
      this.stats.approved++;
      if (v.windowEndsAt !== undefined) this.windows.set(windowKey(req), { name: req.id, expiresAt: v.windowEndsAt, bound });
      return { outcome: 'approved', reason: v.reason, by: v.by };
    }
    this.stats.refused++;
    return { outcome: v.kind === 'expired' ? 'expired' : 'denied', reason: v.reason, by: v.by };
  }

  /** Watches the request until it is decided (a verdict) or the signal aborts (undefined). Reconnects with backoff. */
  private async follow(req: HeldCommand, created: ApprovalRequestObject, signal: AbortSignal): Promise<Exclude<Verdict, { kind: 'pending' }> | undefined> {
    let rv = created.metadata.resourceVersion ?? '';
    let failures = 0;
    // Every later look (watch events, re-reads after 410 or a broken stream) must be this very object.
    const bound = bindingOf(created);
    let verdict: Exclude<Verdict, { kind: 'pending' }> | undefined;
    const stop = new AbortController();
    const onAbort = (): void => stop.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const see = (obj: ApprovalRequestObject): void => {
      if (obj.metadata.resourceVersion) rv = obj.metadata.resourceVersion;
      const v = verdictOf(obj, req, this.now(), { window: false, bound });
      if (v.kind !== 'pending') {
        verdict = v;
        stop.abort();
      }
    };
    try {
      see(created);
      while (!stop.signal.aborted) {
        let gone = false;
        try {
          const q = `?watch=1&allowWatchBookmarks=true&fieldSelector=${encodeURIComponent(`metadata.name=${req.id}`)}&resourceVersion=${encodeURIComponent(rv)}&timeoutSeconds=${this.o.watchTimeoutSeconds ?? DEFAULT_WATCH_TIMEOUT_SECONDS}`;
          await this.api.watch(this.path() + q, (e: WatchEvent) => {
            failures = 0;
            const next = this.onEvent(req, e, see);
            if (next.gone) gone = true;
            if (next.rv !== undefined) rv = next.rv;
            if (next.verdict) {
              verdict = next.verdict;
              stop.abort();
            }
          }, stop.signal);
        } catch (e) {
          failures++;
          this.log.warn({ request: req.id, err: (e as Error).message, failures }, 'approval watch broke; reconnecting');
        }
        if (stop.signal.aborted) break;
        this.stats.reconnects++;
        if (failures > 0) await sleep(Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** Math.min(failures - 1, 10)), stop.signal);
        // After 410 or a broken stream the object itself tells the state and a fresh resourceVersion.
        if (gone || failures > 0) await this.refetch(req.id, see, () => failures++);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    return verdict;
  }

  /** One watch event: 410 → refetch, a bookmark moves the resourceVersion, a deletion refuses, an object is looked at. */
  private onEvent(req: HeldCommand, e: WatchEvent, see: (o: ApprovalRequestObject) => void): { gone?: boolean; rv?: string; verdict?: Exclude<Verdict, { kind: 'pending' }> } {
    if (e.type === 'ERROR') return { gone: (e.object as { code?: number }).code === 410 };
    if (e.type === 'BOOKMARK') {
      const rv = (e.object as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion;
      return rv === undefined ? {} : { rv };
    }
    if (e.type === 'DELETED') return { verdict: { kind: 'denied', reason: `ApprovalRequest ${req.id} was deleted before it was decided`, by: [] } };
    see(e.object as unknown as ApprovalRequestObject);
    return {};
  }

  private async refetch(name: string, see: (o: ApprovalRequestObject) => void, failed: () => void): Promise<void> {
    try {
      see((await this.api.call('GET', this.path(name))) as ApprovalRequestObject);
    } catch (e) {
      failed();
      this.log.warn({ request: name, err: (e as Error).message }, 'approval request could not be re-read');
    }
  }

  /** Sets spec.cancel (the operator turns it into phase Cancelled). Best effort: the request also expires by itself. */
  async cancel(name: string, reason: string): Promise<boolean> {
    try {
      await this.api.call('PATCH', this.path(name), { spec: { cancel: { reason, time: new Date(this.now()).toISOString() } } }, 'application/merge-patch+json');
      this.stats.cancelled++;
      this.log.info({ request: name, reason }, 'approval request cancelled');
      return true;
    } catch (e) {
      this.log.warn({ request: name, err: (e as Error).message }, 'approval request could not be cancelled; it expires by itself');
      return false;
    }
  }

  /** At start: this pod's requests still Pending belong to statements whose clients are gone with the old process. */
  async cancelStale(): Promise<number> {
    const uid = this.o.pod.uid;
    if (uid === undefined || uid === '') return 0;
    const list = (await this.api.call('GET', `${this.path()}?labelSelector=${encodeURIComponent(`${LABEL_POD_UID}=${uid}`)}`)) as { items?: ApprovalRequestObject[] };
    let n = 0;
    for (const item of list.items ?? []) {
      const phase = item.status?.phase ?? 'Pending';
      if (phase !== 'Pending' || item.spec.cancel !== undefined || item.metadata.name === undefined) continue;
      if (Date.parse(item.spec.expiresAt) <= this.now()) continue;
      if (await this.cancel(item.metadata.name, 'the sidecar restarted while the statement waited; the client was disconnected')) n++;
    }
    return n;
  }

  close(): void {
    if (this.ownsApi) this.api.close();
  }
}

export { KubeHttpError };
