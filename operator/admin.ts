// The operator's admin HTTP server (plain node:http, read-only): /healthz, /readyz (informers synced, webhook server listening), /metrics.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { OperatorMetrics } from './metrics.ts';

export const DEFAULT_ADMIN_PORT = 8081;

/** One readiness condition: `name` is shown in the /readyz body when it fails. */
export interface ReadyCheck {
  readonly name: string;
  ready(): boolean;
}

export interface AdminServerOptions {
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  readonly metrics: OperatorMetrics;
  readonly checks: () => readonly ReadyCheck[];
}

export interface AdminServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

function text(res: import('node:http').ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

export async function startAdminServer(o: AdminServerOptions): Promise<AdminServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(res, 405, 'only GET\n');
    if (path === '/healthz') return text(res, 200, 'ok\n');
    if (path === '/readyz') {
      const failing = o.checks().filter((c) => !c.ready()).map((c) => c.name);
      return failing.length === 0 ? text(res, 200, 'ok\n') : text(res, 503, `not ready: ${failing.join(', ')}\n`);
    }
    if (path === '/metrics') {
      o.metrics.text().then((body) => text(res, 200, body, o.metrics.contentType), (err: unknown) => text(res, 500, `metrics failed: ${String(err)}\n`));
      return;
    }
    text(res, 404, 'not found: try /healthz, /readyz or /metrics\n');
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`, port,
    close: () => (closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    })),
  };
}
