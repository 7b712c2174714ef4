// The counter report endpoint: HTTPS POST /audit/v1/report from sidecars, TokenReview'd, checked against the pod, applied once, written to AgentIdentity status (coalesced per identity).
import { createServer as createHttpsServer, type Server } from 'node:https';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { AgentIdentity } from '../api/types.ts';
import { isStatus, RESOURCES, resourcePath, type KubeClient } from '../kube/client.ts';
import { REPORT_PATH } from '../../sidecar/audit/reporter.ts';
import { addTotals, checkCaller, checkPod, identityKey, Ledger, parseReport, type PodFacts, type ReportBody, type ReviewedCaller } from './report.ts';

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
}

export interface AuditServer {
  readonly url: string;
  readonly stats: { accepted: number; duplicates: number; refused: number; writes: number; writeFailures: number };
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(readonly status: number, readonly reason: string, message: string) {
    super(message);
  }
}

interface Batch {
  readonly reports: { r: ReportBody; resolve: () => void; reject: (e: Error) => void }[];
}

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
  const l = await client.list<{ metadata?: { uid?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: { serviceAccountName?: string } }>(
    resourcePath(RESOURCES.pods, { namespace: ns }), { fieldSelector: `metadata.name=${name}` });
  const p = l.items[0];
  if (!p) return undefined;
  return { uid: p.metadata?.uid ?? '', labels: p.metadata?.labels ?? {}, annotations: p.metadata?.annotations ?? {}, serviceAccountName: p.spec?.serviceAccountName ?? 'default' };
}

export async function startAuditServer(o: AuditServerOptions): Promise<AuditServer> {
  const ledger = new Ledger();
  const minGap = o.minWriteIntervalMs ?? DEFAULT_MIN_WRITE_INTERVAL_MS;
  const batches = new Map<string, Batch>();
  const lastWrite = new Map<string, number>();
  const running = new Set<string>();
  const stats = { accepted: 0, duplicates: 0, refused: 0, writes: 0, writeFailures: 0 };

  async function write(key: string, ns: string, name: string): Promise<void> {
    const sum = ledger.take(key);
    if (!sum) return;
    const path = resourcePath(RESOURCES.agentIdentities, { namespace: ns, name });
    for (let i = 0; ; i++) {
      const id = await o.client.get<AgentIdentity>(path);
      if (!id) throw new HttpError(404, 'no-identity', `AgentIdentity ${ns}/${name} does not exist`);
      const status = id.status as { counters?: Record<string, number>; lastSession?: { endedAt?: string } } | undefined;
      const newer = sum.lastSession && (status?.lastSession?.endedAt ?? '') <= sum.lastSession.endedAt;
      const patch = { metadata: { resourceVersion: id.metadata.resourceVersion }, status: { counters: addTotals(status?.counters, sum.counters), ...(newer ? { lastSession: sum.lastSession } : {}) } };
      try {
        await o.client.mergePatch(resourcePath(RESOURCES.agentIdentities, { namespace: ns, name, subresource: 'status' }), patch);
        stats.writes++;
        return;
      } catch (e) {
        if (!isStatus(e, 409) || i >= MAX_CONFLICT_RETRIES) throw e;
      }
    }
  }

  function schedule(key: string, ns: string, name: string): void {
    if (running.has(key)) return;
    const wait = Math.max(0, (lastWrite.get(key) ?? 0) + minGap - Date.now());
    running.add(key);
    setTimeout(() => {
      const b = batches.get(key);
      batches.delete(key);
      lastWrite.set(key, Date.now());
      write(key, ns, name).then(
        () => b?.reports.forEach((x) => x.resolve()),
        (e: unknown) => {
          stats.writeFailures++;
          o.log.warn({ identity: key, err: (e as Error).message }, 'could not write AgentIdentity status counters (the sidecars retry)');
          b?.reports.forEach((x) => { ledger.forget(x.r); x.reject(e as Error); });
        },
      ).finally(() => {
        running.delete(key);
        if (batches.has(key)) schedule(key, ns, name);
      });
    }, wait).unref();
  }

  function apply(r: ReportBody): Promise<void> {
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
    if (ledger.add(parsed) === 'duplicate') {
      stats.duplicates++;
      return { status: 200, body: { applied: false, reason: 'duplicate' } };
    }
    await apply(parsed);
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
  const server: Server | ReturnType<typeof createHttpServer> = o.tls ? createHttpsServer({ cert: o.tls.cert, key: o.tls.key }, onRequest) : createHttpServer(onRequest);
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
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
