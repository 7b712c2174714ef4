// The admin listener: /healthz, /readyz, /metrics on its own port, plus routes registered by protocol code (local approvals).
//
// node:http, not fastify: fastify costs ~20 MB of RSS and ~170 ms to load here (measured), for
// three read-only routes. node:http is required through createRequire because the ESM namespace of
// node:http evaluates its lazy WebSocket getters (undici), which costs ~14 MB more (measured).
import { createRequire } from 'node:module';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RouteTable, type AdminMethod, type AdminResponse } from './routes.ts';

const http = createRequire(import.meta.url)('node:http') as typeof import('node:http');

/** Approval decisions are small JSON; anything bigger is refused before it is buffered. */
export const DEFAULT_MAX_ADMIN_BODY_BYTES = 64 * 1024;
export const DEFAULT_ADMIN_REQUEST_TIMEOUT_MS = 10_000;

export type ReadyStatus = 'ready' | 'degraded' | 'starting' | 'stopping' | 'not-ready';

/**
 * `degraded` is still ready (HTTP 200): the sidecar serves with its last good config and says why
 * the file on disk was refused. `starting`, `stopping` and `not-ready` are 503.
 */
export interface Readiness {
  readonly status: ReadyStatus;
  readonly reasons: readonly string[];
  readonly details?: Readonly<Record<string, unknown>>;
}

export interface AdminLog {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface AdminServerOptions {
  readonly host: string;
  readonly port: number;
  readonly readiness: () => Readiness;
  readonly metrics: () => Promise<{ readonly contentType: string; readonly body: string }>;
  readonly log: AdminLog;
  readonly routes?: RouteTable;
  readonly maxBodyBytes?: number;
}

export interface AdminServer {
  readonly routes: RouteTable;
  readonly address: { readonly host: string; readonly port: number };
  close(): Promise<void>;
}

const METHODS: ReadonlySet<string> = new Set<AdminMethod>(['GET', 'POST', 'PUT', 'DELETE']);

function send(res: ServerResponse, r: AdminResponse): void {
  const isJson = !(typeof r.body === 'string' || Buffer.isBuffer(r.body));
  const body = isJson ? JSON.stringify(r.body) + '\n' : r.body;
  res.writeHead(r.status, {
    'content-type': isJson ? 'application/json' : 'text/plain; charset=utf-8',
    'cache-control': 'no-store',
    ...r.headers,
    'content-length': String(Buffer.byteLength(body)),
  });
  res.end(body);
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > max) return resolve(null);
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        resolve(null);
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function builtins(table: RouteTable, opts: AdminServerOptions): void {
  table.add('GET', '/healthz', () => ({ status: 200, body: { status: 'ok' } }));
  table.add('GET', '/readyz', () => {
    const r = opts.readiness();
    const ok = r.status === 'ready' || r.status === 'degraded';
    return { status: ok ? 200 : 503, body: { status: r.status, reasons: r.reasons, ...r.details } };
  });
  table.add('GET', '/metrics', async () => {
    const m = await opts.metrics();
    return { status: 200, headers: { 'content-type': m.contentType }, body: m.body };
  });
}

async function handle(table: RouteTable, opts: AdminServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const method = req.method ?? 'GET';
  const url = new URL(req.url ?? '/', 'http://admin.invalid');
  const found = table.find(method === 'HEAD' ? 'GET' : method, url.pathname);
  if (!found.handler) {
    if (found.allowed.length > 0) return send(res, { status: 405, headers: { allow: found.allowed.join(', ') }, body: { error: `${method} is not allowed on ${url.pathname}` } });
    return send(res, { status: 404, body: { error: `no admin route ${url.pathname}; see /healthz, /readyz, /metrics` } });
  }
  const body = method === 'GET' || method === 'HEAD' ? Buffer.alloc(0) : await readBody(req, opts.maxBodyBytes ?? DEFAULT_MAX_ADMIN_BODY_BYTES);
  if (body === null) return send(res, { status: 413, body: { error: 'request body too large' } });
  const m = (METHODS.has(method) ? method : 'GET') as AdminMethod;
  send(res, await found.handler({ method: m, url, headers: req.headers, headersDistinct: req.headersDistinct, body }));
}

export function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  const table = opts.routes ?? new RouteTable();
  builtins(table, opts);
  const server: Server = http.createServer({ requestTimeout: DEFAULT_ADMIN_REQUEST_TIMEOUT_MS, headersTimeout: DEFAULT_ADMIN_REQUEST_TIMEOUT_MS, maxHeaderSize: 16 * 1024 }, (req, res) => {
    handle(table, opts, req, res).catch((e: unknown) => {
      opts.log.warn({ err: e, path: req.url }, 'admin request failed');
      if (!res.headersSent) send(res, { status: 500, body: { error: 'internal error; see the sidecar log' } });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      const a = server.address() as AddressInfo;
      resolve({
        routes: table,
        address: { host: a.address, port: a.port },
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
