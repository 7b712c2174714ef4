// The loopback node:http server in front of a Gateway: bounded headers, slowloris timeouts, malformed input answered 400/431/408, session count, graceful close.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { refusal, type HttpRefusal } from './errors.ts';
import type { Gateway } from './gateway.ts';

const require = createRequire(import.meta.url);
const http = require('node:http') as typeof import('node:http');
const https = require('node:https') as typeof import('node:https');

/** Request headers larger than this are answered 431 (node's default is 16 KiB; kubectl and LLM SDKs stay far below). */
export const DEFAULT_MAX_HEADER_BYTES = 32 * 1024;
/** The whole header block must arrive within this (slowloris). */
export const DEFAULT_HEADERS_TIMEOUT_MS = 15_000;
/** An idle keep-alive socket is closed after this. */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 30_000;

export interface ServerOptions {
  readonly host: string;
  readonly port: number;
  readonly maxConnections: number;
  readonly maxHeaderBytes?: number;
  readonly headersTimeoutMs?: number;
  readonly keepAliveTimeoutMs?: number;
  /**
   * TLS on the listener (PEM). kubectl sends its bearer token only over TLS, so kubernetes listeners need it.
   * `reload` is asked on each new connection (before its handshake) and returns a new pair when the files changed.
   */
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer; readonly reload?: () => { readonly cert: Buffer; readonly key: Buffer } | undefined };
}

export interface RunningServer {
  readonly address: { readonly host: string; readonly port: number };
  sessions(): number;
  close(deadline: number): Promise<void>;
}

function rawRefusal(socket: Duplex, r: HttpRefusal): void {
  const body = JSON.stringify({ error: { code: r.code, message: r.message } });
  if (!socket.writable) return void socket.destroy();
  socket.end(`HTTP/1.1 ${r.status} ${http.STATUS_CODES[r.status] ?? 'Error'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

/** Parser errors → the error the client can act on. */
export function clientErrorRefusal(code: string | undefined): HttpRefusal {
  if (code === 'HPE_HEADER_OVERFLOW') return refusal('CHAP_ERR_HTTP_HEADERS_TOO_LARGE', { detail: `at most ${DEFAULT_MAX_HEADER_BYTES} bytes of headers` });
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return refusal('CHAP_ERR_HTTP_REQUEST_TIMEOUT', { detail: 'the headers did not arrive in time' });
  return refusal('CHAP_ERR_HTTP_BAD_REQUEST', { detail: `HTTP parse error ${code ?? 'unknown'}` });
}

export async function startServer(gw: Gateway, o: ServerOptions): Promise<RunningServer> {
  const sockets = new Set<Socket>();
  const headersTimeout = o.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
  const options = {
      maxHeaderSize: o.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES,
      headersTimeout,
      // Held requests (approval) may wait minutes before their body is read: no whole-request deadline.
      requestTimeout: 0,
      keepAliveTimeout: o.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
      // How often node checks the headers deadline (default 30 s would let slowloris sit that long).
      connectionsCheckingInterval: Math.max(250, Math.min(1000, Math.floor(headersTimeout / 2))),
      noDelay: true,
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => gw.handle(req, res);
  const server: Server = o.tls !== undefined ? https.createServer({ ...options, cert: o.tls.cert, key: o.tls.key }, onRequest) : http.createServer(options, onRequest);
  const reload = o.tls?.reload;
  if (reload !== undefined) {
    // Prepended: it runs before the TLS server wraps the socket, so this very connection gets the new pair.
    server.prependListener('connection', () => {
      const p = reload();
      if (p !== undefined) (server as HttpsServer).setSecureContext({ cert: p.cert, key: p.key });
    });
  }
  // A TLS handshake failure (wrong CA, plain HTTP to a TLS port) only closes that socket.
  server.on('tlsClientError', (_e: Error, s: Duplex) => s.destroy());
  server.on('connection', (s: Socket) => {
    if (sockets.size >= o.maxConnections) {
      rawRefusal(s, refusal('CHAP_ERR_HTTP_TOO_MANY_REQUESTS', { connection: gw.cfg.name, n: sockets.size }));
      return;
    }
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => gw.handleUpgrade(req, socket, head));
  server.on('connect', (req: IncomingMessage, socket: Duplex) => rawRefusal(socket, refusal('CHAP_ERR_HTTP_BAD_REQUEST', { detail: 'CONNECT is not served here: this listener is a reverse proxy' })));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => rawRefusal(socket, clientErrorRefusal(err.code)));
  const address = await listenOn(server, o.host, o.port);
  return {
    address,
    sessions: () => sockets.size,
    close: async (deadline: number): Promise<void> => {
      await drainAndClose(server, sockets, deadline);
      gw.close();
    },
  };
}

/** Listens on host:port (0: any free port) and resolves the address bound. */
export function listenOn(server: Server | HttpsServer, host: string, port: number): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      const a = server.address();
      resolve(typeof a === 'object' && a !== null ? { host: a.address, port: a.port } : { host, port });
    });
  });
}

/**
 * Graceful close: stop accepting, close idle keep-alive sockets until none is left or the deadline
 * passes, then cut the rest. `onCut` runs after the cut, before the close completes.
 */
export async function drainAndClose(server: Server | HttpsServer, sockets: ReadonlySet<Duplex>, deadline: number, onCut?: () => void): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  while (sockets.size > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    server.closeIdleConnections();
  }
  server.closeAllConnections();
  for (const s of sockets) s.destroy();
  onCut?.();
  await closed;
}
