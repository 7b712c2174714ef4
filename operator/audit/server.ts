// The counter report endpoint: HTTPS POST /audit/v1/report from sidecars, TokenReview'd, checked against the pod, applied once through the identity's ledger, mirrored to AgentIdentity status (coalesced per identity).
import { createServer as createHttpsServer, Server as HttpsServer } from 'node:https';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { AgentIdentity } from '../api/types.ts';
import { isStatus, RESOURCES, resourcePath, type KubeClient } from '../kube/client.ts';
import { REPORT_PATH } from '../../sidecar/audit/reporter.ts';
import { applyReports, freshLedger, mirrorStatus, parseLedger, sameCounters, type LedgerState } from './ledger.ts';
import { ANNOTATION_LEDGER_IDENTITY, LABEL_LEDGER, LEDGER_KEY, ledgerConfigMapName } from './names.ts';
import { checkCaller, checkPod, identityKey, parseReport, type PodFacts, type ReportBody, type ReviewedCaller } from './report.ts';

export const DEFAULT_AUDIT_PORT = 8444;
/** Least time between two status writes of one identity (reports that arrive meanwhile share the next write). */
export const DEFAULT_MIN_WRITE_INTERVAL_MS = 2_000;
const MAX_BODY = 64 * 1024;
const MAX_CONFLICT_RETRIES = 5;

export interface AuditServerOptions {
  readonly client: KubeClient;
  readonly log: Pick<Logger, 'info' | 'warn'>;
  readonly host?: string;
  readonly port?: number;
  /** PEM; without it the server is plain HTTP (tests of the handler only: tokens would cross the network in clear). */
  readonly tls?: { readonly cert: string; readonly key: string };
  readonly minWriteIntervalMs?: number;
  /** Where the per-identity ledgers live (the operator's namespace: agents have no rights there). */
  readonly ledgerNamespace: string;
  readonly now?: () => number;
}

export interface AuditServer {
  readonly url: string;
  /** A rotated serving pair: new connections use it, open ones keep theirs. */
  setTls(tls: { readonly cert: string; readonly key: string }): void;
  readonly stats: { accepted: number; duplicates: number; refused: number; writes: number; writeFailures: number };
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(readonly status: number, readonly reason: string, message: string) {
    super(message);
  }
}

interface Pending {
  readonly r: ReportBody;
  readonly resolve: (applied: boolean) => void;
  readonly reject: (e: Error) => void;
}

interface Batch {
  readonly reports: Pending[];
}

interface LedgerObject {
  metadata?: { resourceVersion?: string };
  data?: Record<string, string>;
}

type IdentityStatus = { counters?: Record<string, number>; lastSession?: { endedAt: string } } & Record<string, unknown>;

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > MAX_BODY) throw new HttpError(413, 'too-large', `a report is at most ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'bad-json', 'the body is not JSON');
  }
}

/** TokenReview with no audiences: only a token for the API server itself (the sidecar's, never the agent's) is authenticated. */
async function review(client: KubeClient, token: string): Promise<ReviewedCaller> {
  const r = await client.request<{ status?: { authenticated?: boolean; error?: string; user?: { username?: string; extra?: Record<string, string[]> } } }>('POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } },
  });
  if (!r.status?.authenticated || !r.status.user?.username) throw new HttpError(401, 'unauthenticated', `the token was not accepted for the API server audience${r.status?.error ? ` (${r.status.error})` : ''}; reports carry the sidecar's ServiceAccount token`);
  return { username: r.status.user.username, ...(r.status.user.extra ? { extra: r.status.user.extra } : {}) };
}

async function podFacts(client: KubeClient, ns: string, name: string): Promise<PodFacts | undefined> {
  // list with a field selector: the operator may list pods already (podsGuarded), no get right needed.
  const l = await client.list<{ metadata?: { uid?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: { serviceAccountName?: string; initContainers?: { name: string; restartPolicy?: string }[] } }>(
    resourcePath(RESOURCES.pods, { namespace: ns }), { fieldSelector: `metadata.name=${name}` });
  const p = l.items[0];
  if (!p) return undefined;
  const initContainers = (p.spec?.initContainers ?? []).map((c) => ({ name: c.name, ...(c.restartPolicy ? { restartPolicy: c.restartPolicy } : {}) }));
  return { uid: p.metadata?.uid ?? '', labels: p.metadata?.labels ?? {}, annotations: p.metadata?.annotations ?? {}, serviceAccountName: p.spec?.serviceAccountName ?? 'default', initContainers };
}

export async function startAuditServer(o: AuditServerOptions): Promise<AuditServer> {
  const minGap = o.minWriteIntervalMs ?? DEFAULT_MIN_WRITE_INTERVAL_MS;
  const now = o.now ?? Date.now;
  const batches = new Map<string, Batch>();
  const lastWrite = new Map<string, number>();
  const running = new Set<string>();
  const stats = { accepted: 0, duplicates: 0, refused: 0, writes: 0, writeFailures: 0 };

  /** Create, or merge-patch with the resourceVersion read: a concurrent writer makes this 409. */
  async function writeLedger(cm: LedgerObject | undefined, ns: string, name: string, state: LedgerState): Promise<void> {
    const data = { [LEDGER_KEY]: JSON.stringify(state) };
    const cmName = ledgerConfigMapName(ns, name);
    if (cm) {
      await o.client.mergePatch(resourcePath(RESOURCES.configMaps, { namespace: o.ledgerNamespace, name: cmName }), { metadata: { resourceVersion: cm.metadata?.resourceVersion }, data });
      return;
    }
    await o.client.request('POST', resourcePath(RESOURCES.configMaps, { namespace: o.ledgerNamespace }), {
      body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: cmName, labels: { [LABEL_LEDGER]: 'true' }, annotations: { [ANNOTATION_LEDGER_IDENTITY]: `${ns}/${name}` } }, data },
    });
  }

  /** The ledger write is the commit point: a seq is applied exactly when it enters the ledger (resourceVersion-guarded). */
  async function commit(ns: string, name: string, reports: readonly ReportBody[]): Promise<{ state: LedgerState; applied: boolean[]; id: AgentIdentity }> {
    const ledgerPath = resourcePath(RESOURCES.configMaps, { namespace: o.ledgerNamespace, name: ledgerConfigMapName(ns, name) });
    for (let i = 0; ; i++) {
      const id = await o.client.get<AgentIdentity>(resourcePath(RESOURCES.agentIdentities, { namespace: ns, name }));
      if (!id) throw new HttpError(404, 'no-identity', `AgentIdentity ${ns}/${name} does not exist`);
      const cm = await o.client.get<LedgerObject>(ledgerPath);
      const stored = parseLedger(cm?.data?.[LEDGER_KEY]);
      const status = id.status as IdentityStatus | undefined;
      const base = stored && stored.uid === id.metadata.uid ? stored : freshLedger(id.metadata.uid ?? '', status?.counters, status?.lastSession as LedgerState['lastSession']);
      const { state, applied } = applyReports(base, reports, now());
      if (!applied.some(Boolean) && stored === base) return { state, applied, id };
      try {
        await writeLedger(cm, ns, name, state);
        return { state, applied, id };
      } catch (e) {
        // 409: another replica wrote the ledger (or created it) first; read it again and re-apply.
        if (!isStatus(e, 409) || i >= MAX_CONFLICT_RETRIES) throw e;
      }
    }
  }

  /** status.counters/lastSession := the ledger's totals (never lower than what status shows). */
  async function mirror(ns: string, name: string, state: LedgerState, first: AgentIdentity): Promise<void> {
    let id: AgentIdentity | undefined = first;
    for (let i = 0; id; i++) {
      const status = id.status as IdentityStatus | undefined;
      const want = mirrorStatus(status as Parameters<typeof mirrorStatus>[0], state);
      if (sameCounters(status?.counters, want.counters) && (status?.lastSession?.endedAt ?? '') === (want.lastSession?.endedAt ?? '')) return;
      try {
        await o.client.mergePatch(resourcePath(RESOURCES.agentIdentities, { namespace: ns, name, subresource: 'status' }), { metadata: { resourceVersion: id.metadata.resourceVersion }, status: want });
        stats.writes++;
        return;
      } catch (e) {
        if (!isStatus(e, 409) || i >= MAX_CONFLICT_RETRIES) throw e;
      }
      id = await o.client.get<AgentIdentity>(resourcePath(RESOURCES.agentIdentities, { namespace: ns, name }));
    }
  }

  async function write(ns: string, name: string, b: Batch): Promise<boolean[]> {
    const { state, applied, id } = await commit(ns, name, b.reports.map((x) => x.r));
    try {
      await mirror(ns, name, state, id);
    } catch (e) {
      // The counts are in the ledger: the next report of this identity (any replica) mirrors them.
      stats.writeFailures++;
      o.log.warn({ identity: `${ns}/${name}`, err: (e as Error).message }, 'could not mirror the ledger into AgentIdentity status (the next report retries)');
    }
    return applied;
  }

  function schedule(key: string, ns: string, name: string): void {
    if (running.has(key)) return;
    const wait = Math.max(0, (lastWrite.get(key) ?? 0) + minGap - Date.now());
    running.add(key);
    setTimeout(() => {
      const b = batches.get(key) ?? { reports: [] };
      batches.delete(key);
      lastWrite.set(key, Date.now());
      write(ns, name, b).then(
        (applied) => b.reports.forEach((x, i) => x.resolve(applied[i] ?? false)),
        (e: unknown) => {
          stats.writeFailures++;
          o.log.warn({ identity: key, err: (e as Error).message }, 'could not write the report ledger (the sidecars retry)');
          b.reports.forEach((x) => x.reject(e as Error));
        },
      ).finally(() => {
        running.delete(key);
        if (batches.has(key)) schedule(key, ns, name);
      });
    }, wait).unref();
  }

  function apply(r: ReportBody): Promise<boolean> {
    const key = identityKey(r.pod.namespace, r.identity);
    return new Promise((resolve, reject) => {
      const b = batches.get(key) ?? { reports: [] };
      b.reports.push({ r, resolve, reject });
      batches.set(key, b);
      schedule(key, r.pod.namespace, r.identity);
    });
  }

  async function handle(req: IncomingMessage): Promise<{ status: number; body: unknown }> {
    if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== REPORT_PATH) throw new HttpError(404, 'not-found', `this server answers POST ${REPORT_PATH}`);
    const auth = req.headers.authorization ?? '';
    if (!auth.startsWith('Bearer ')) throw new HttpError(401, 'no-token', 'a report needs Authorization: Bearer <the sidecar\'s ServiceAccount token>');
    const parsed = parseReport(await readBody(req));
    if ('error' in parsed) throw new HttpError(400, 'bad-report', parsed.error);
    const caller = await review(o.client, auth.slice(7).trim());
    const c1 = checkCaller(caller, parsed);
    if (!c1.ok) throw new HttpError(c1.status, c1.reason, c1.message);
    const c2 = checkPod(await podFacts(o.client, parsed.pod.namespace, parsed.pod.name), caller, parsed);
    if (!c2.ok) throw new HttpError(c2.status, c2.reason, c2.message);
    // Acknowledged only once the ledger holds the seq: a retry of it (any replica) is then a duplicate.
    if (!(await apply(parsed))) {
      stats.duplicates++;
      return { status: 200, body: { applied: false, reason: 'duplicate' } };
    }
    stats.accepted++;
    return { status: 200, body: { applied: true } };
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req).then(
      (r) => res.writeHead(r.status, { 'content-type': 'application/json' }).end(JSON.stringify(r.body)),
      (e: unknown) => {
        const status = e instanceof HttpError ? e.status : 503;
        const reason = e instanceof HttpError ? e.reason : 'unavailable';
        if (status === 401 || status === 403) {
          stats.refused++;
          o.log.warn({ reason, remote: req.socket.remoteAddress }, 'refused a counter report');
        }
        const message = e instanceof HttpError ? e.message : `the report could not be applied now (${(e as Error).message}); retry`;
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', status: 'Failure', code: status, reason, message }));
      },
    );
  };
  const server: HttpsServer | ReturnType<typeof createHttpServer> = o.tls ? createHttpsServer({ cert: o.tls.cert, key: o.tls.key }, onRequest) : createHttpServer(onRequest);
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? DEFAULT_AUDIT_PORT, o.host ?? '0.0.0.0', resolve);
  });
  const a = server.address() as AddressInfo;
  const url = `${o.tls ? 'https' : 'http'}://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`;
  o.log.info({ url }, 'audit report server listening');
  return {
    url, stats,
    setTls: (t) => {
      if (server instanceof HttpsServer) server.setSecureContext({ cert: t.cert, key: t.key });
    },
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
