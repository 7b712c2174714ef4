// The admission webhook HTTPS server: fastify over TLS, decodes AdmissionReview v1, calls the route, fails closed, hot-reloads its certificate.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo, Socket } from 'node:net';
import fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { deny, reviewResponse, type AdmissionOutcome, type AdmissionRequest, type AdmissionResponse, type WebhookRoute } from './admission.ts';
import { decodeReview } from './decode.ts';

/** An AdmissionReview of a large pod is a few tens of KiB; the API server caps objects at 3 MiB (etcd's request limit is 1.5 MiB). */
export const DEFAULT_MAX_BODY_BYTES = 3 * 1024 * 1024;
/** Below the API server's webhook timeout (10 s by default), so a hung handler is refused by us with a message, not by the timeout. */
export const DEFAULT_HANDLER_TIMEOUT_MS = 8_000;
/** Slow or stuck clients (not the API server) are cut off after this. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;
/**
 * close() lets in-flight admissions answer for this long, then cuts every connection left. Without
 * it a keep-alive connection whose request was in flight at close stays open for fastify's
 * keepAliveTimeout (72 s): longer than the kubelet's grace period.
 */
export const DEFAULT_CLOSE_GRACE_MS = 3_000;

/** PEMs the server presents; `ca` is informational (what the caBundle should hold). */
export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  readonly ca?: string;
}

/** The subset of a pino logger the server uses (object first, fixed message). */
export interface WebhookLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface WebhookServerOptions {
  /** Interface to bind: 0.0.0.0 in a pod, 127.0.0.1 in tests. */
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  readonly tls: TlsMaterial;
  readonly routes: readonly WebhookRoute[];
  readonly log: WebhookLog;
  /** Called once per admission answered (also for refusals and internal errors): the latency metric. */
  readonly observe?: (webhook: string, outcome: string, seconds: number) => void;
  readonly maxBodyBytes?: number;
  readonly handlerTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  readonly closeGraceMs?: number;
}

export interface WebhookServer {
  /** https://<host>:<port> (host as bound; 0.0.0.0 stays as is). */
  readonly url: string;
  readonly port: number;
  /** True between listen and close. */
  readonly listening: boolean;
  /** How many times the certificate was swapped since start (tests and logs). */
  readonly tlsReloads: number;
  /** TLS handshakes completed since start: with keep-alive working, a few per API server, not one per admission. */
  readonly handshakes: number;
  /** Presents new certificate material to new TLS handshakes; open connections keep theirs. Throws on an unusable pair (the old one stays). */
  setTls(tls: TlsMaterial): void;
  /**
   * Stops accepting, closes connections with no request in flight at once, answers in-flight
   * admissions with `Connection: close`, and after closeGraceMs cuts what is left. Idempotent.
   */
  close(): Promise<void>;
}

interface Options {
  readonly maxBodyBytes: number;
  readonly handlerTimeoutMs: number;
  readonly requestTimeoutMs: number;
}

function checkOptions(o: WebhookServerOptions): Options {
  const paths = new Set<string>();
  for (const r of o.routes) {
    if (!r.path.startsWith('/')) throw new Error(`webhook route ${r.name}: path ${JSON.stringify(r.path)} must start with /`);
    if (paths.has(r.path)) throw new Error(`webhook route ${r.name}: path ${r.path} is registered twice; give each route its own path`);
    paths.add(r.path);
  }
  if (!o.tls.cert || !o.tls.key) throw new Error('webhook server needs a TLS certificate and key (PEM): the API server only calls webhooks over HTTPS');
  const maxBodyBytes = o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!(maxBodyBytes > 0)) throw new Error(`webhook server maxBodyBytes must be positive, got ${maxBodyBytes}`);
  return { maxBodyBytes, handlerTimeoutMs: o.handlerTimeoutMs ?? DEFAULT_HANDLER_TIMEOUT_MS, requestTimeoutMs: o.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS };
}

function errorBody(code: number, error: string, message: string): string {
  return JSON.stringify({ code, error, message });
}

/** Races a handler's promise against a deadline, so a hung dependency becomes a refusal with a reason. */
async function withDeadline(p: Promise<AdmissionOutcome>, ms: number, route: string): Promise<AdmissionOutcome> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`webhook ${route} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function failClosed(route: WebhookRoute, req: AdmissionRequest, err: unknown): AdmissionResponse {
  const why = err instanceof Error ? err.message : String(err);
  return deny(req.uid, 500, `chaperone: webhook ${route.name} failed while admitting ${req.kind.kind} ${req.namespace ?? ''}/${req.name ?? '(new)'}: ${why}; the request was refused (fail closed) — retry, and if it persists check the chaperone operator's logs`);
}

function registerRoute(app: FastifyInstance, route: WebhookRoute, o: WebhookServerOptions, opts: Options): void {
  app.post(route.path, async (request: FastifyRequest, reply: FastifyReply) => {
    const start = process.hrtime.bigint();
    const decoded = decodeReview(request.body);
    if (!decoded.ok) {
      o.log.warn({ webhook: route.name, error: decoded.message }, 'malformed AdmissionReview');
      o.observe?.(route.name, 'malformed', Number(process.hrtime.bigint() - start) / 1e9);
      return reply.code(400).type('application/json').send(errorBody(400, 'BadRequest', decoded.message));
    }
    const req = decoded.request;
    let answer: AdmissionOutcome;
    try {
      const r = route.handle(req);
      answer = r instanceof Promise ? await withDeadline(r, opts.handlerTimeoutMs, route.name) : r;
    } catch (err) {
      o.log.error({ webhook: route.name, uid: req.uid, namespace: req.namespace, name: req.name, operation: req.operation, err }, 'webhook handler failed; refusing');
      answer = { outcome: 'error', response: failClosed(route, req, err) };
    }
    // The response must carry the request's uid whatever the handler did.
    const response = answer.response.uid === req.uid ? answer.response : { ...answer.response, uid: req.uid };
    const body = JSON.stringify(reviewResponse(response, decoded.apiVersion));
    o.observe?.(route.name, answer.outcome, Number(process.hrtime.bigint() - start) / 1e9);
    return reply.type('application/json').send(body);
  });
}

function errorHandler(log: WebhookLog) {
  return (err: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    const code = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    let message = err.message;
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') message = `request body is larger than the webhook's limit: ${err.message}`;
    else if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') message = `content-type ${String(request.headers['content-type'])} is not supported; send an AdmissionReview as application/json`;
    else if (code === 400) message = `request body is not valid JSON (${err.message}); send an admission.k8s.io/v1 AdmissionReview`;
    if (code >= 500) log.error({ url: request.url, err }, 'webhook request failed');
    else log.warn({ url: request.url, code, error: message }, 'webhook request refused');
    void reply.code(code).type('application/json').send(errorBody(code, err.code ?? 'Error', message));
  };
}

/**
 * The server's sockets, for a bounded close. Node's closeIdleConnections skips a connection that
 * finished its TLS handshake but never sent a request (it counts as active until a first message
 * completes), and server.close() stops the timer that would expire it: the API server's transport
 * leaves such spare connections in its pool, and they held close() open until the client dropped
 * them (seen in test/integration/approvals-flow: two, zero requests each).
 */
class Connections {
  /** Every TCP socket, handshaking ones included. */
  readonly raw = new Set<Socket>();
  /** TLS sockets past the handshake → requests in flight on each. */
  private readonly inFlight = new Map<TLSSocket, number>();

  constructor(server: HttpsServer) {
    server.on('connection', (s: Socket) => {
      this.raw.add(s);
      s.once('close', () => this.raw.delete(s));
    });
    server.on('secureConnection', (t: TLSSocket) => {
      this.inFlight.set(t, 0);
      t.once('close', () => this.inFlight.delete(t));
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const t = req.socket as TLSSocket;
      this.inFlight.set(t, (this.inFlight.get(t) ?? 0) + 1);
      res.once('close', () => {
        if (this.inFlight.has(t)) this.inFlight.set(t, (this.inFlight.get(t) ?? 1) - 1);
      });
    });
  }

  /** Ends the connections with no request in flight (those with one end after their answer: Connection: close). */
  closeQuiet(): void {
    for (const [t, n] of this.inFlight) if (n === 0) t.destroy();
  }
}

/** fastify's close, bounded: quiet connections end now, in-flight admissions answer, and after `graceMs` what is left is cut (those admissions fail; the API server refuses or retries). */
async function closeWithin(app: FastifyInstance, conns: Connections, graceMs: number, log: WebhookLog, port: number): Promise<void> {
  const closed = app.close();
  conns.closeQuiet();
  // Once more after fastify stopped the listener: a connection accepted in between would wait for the grace period.
  const sweep = setTimeout(() => conns.closeQuiet(), 100);
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<'grace'>((resolve) => {
    timer = setTimeout(() => resolve('grace'), graceMs);
  });
  const first = await Promise.race([closed.then(() => 'closed' as const), grace]);
  clearTimeout(timer);
  clearTimeout(sweep);
  if (first === 'grace') {
    log.warn({ port, connections: conns.raw.size, graceMs }, 'webhook server: connections still open after the close grace period; cutting them');
    for (const s of conns.raw) s.destroy();
    await closed;
  }
  log.info({ port }, 'webhook server closed');
}

/** Starts the server and resolves once it listens. */
export async function startWebhookServer(o: WebhookServerOptions): Promise<WebhookServer> {
  const opts = checkOptions(o);
  const app = fastify({
    https: { cert: o.tls.cert, key: o.tls.key, minVersion: 'TLSv1.2' },
    logger: false,
    bodyLimit: opts.maxBodyBytes,
    requestTimeout: opts.requestTimeoutMs,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  app.setErrorHandler(errorHandler(o.log));
  const paths = o.routes.map((r) => r.path).join(', ');
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).type('application/json').send(errorBody(404, 'NotFound', `no webhook at ${request.method} ${request.url}; this server answers POST on ${paths || '(no routes)'}`));
  });
  let closing: Promise<void> | undefined;
  // A response finishing during close ends its connection, instead of leaving it idle until keepAliveTimeout.
  app.addHook('onSend', async (_request, reply, payload) => {
    if (closing) void reply.header('connection', 'close');
    return payload;
  });
  for (const r of o.routes) registerRoute(app, r, o, opts);
  await app.listen({ host: o.host, port: o.port });
  const server: HttpsServer = app.server;
  const conns = new Connections(server);
  const port = (server.address() as AddressInfo).port;
  let reloads = 0;
  let handshakes = 0;
  server.on('secureConnection', () => {
    handshakes += 1;
  });
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  o.log.info({ host: o.host, port, routes: o.routes.map((r) => r.path) }, 'webhook server listening');
  return {
    url: `https://${host}:${port}`,
    port,
    get listening() {
      return server.listening && closing === undefined;
    },
    get tlsReloads() {
      return reloads;
    },
    get handshakes() {
      return handshakes;
    },
    setTls(tls: TlsMaterial): void {
      // setSecureContext throws on a key that does not match the certificate; the old context stays in place then.
      server.setSecureContext({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' });
      reloads += 1;
      o.log.info({ reloads }, 'webhook serving certificate reloaded');
    },
    close(): Promise<void> {
      closing ??= closeWithin(app, conns, o.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS, o.log, port);
      return closing;
    },
  };
}
