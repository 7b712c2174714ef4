// The few Kubernetes API calls the approvals backend makes, over node:https with the mounted ServiceAccount token and CA (no client library in the sidecar).
//
// node:http(s) are required through createRequire, not imported (the ESM namespace pulls undici's
// WebSocket getters, ~9-14 MB of RSS; see identity/http-json.ts).
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Agent as HttpsAgent, RequestOptions } from 'node:https';
import type { IncomingMessage } from 'node:http';

const require = createRequire(import.meta.url);
const https = require('node:https') as typeof import('node:https');
const http = require('node:http') as typeof import('node:http');

/** One object or list answer stays small; a watch line is one object. */
export const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

export interface KubeHttpOptions {
  readonly apiServerUrl: string;
  readonly caFile?: string;
  /** Re-read on every request: projected tokens rotate. */
  readonly tokenFile?: string;
  readonly timeoutMs?: number;
}

export interface KubeResponse {
  readonly status: number;
  readonly body: unknown;
}

/** A watch event as the API server streams it, one JSON object per line. */
export interface WatchEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  readonly object: Record<string, unknown>;
}

/** What went wrong with an API call: the status (0 when no answer), the Status message if any. */
export class KubeHttpError extends Error {
  override readonly name = 'KubeHttpError';
  constructor(
    message: string,
    readonly status: number,
    readonly reason: string | undefined,
  ) {
    super(message);
  }
}

function statusMessage(body: unknown): { message?: string; reason?: string } {
  if (typeof body !== 'object' || body === null) return {};
  const b = body as { message?: unknown; reason?: unknown };
  return { ...(typeof b.message === 'string' ? { message: b.message } : {}), ...(typeof b.reason === 'string' ? { reason: b.reason } : {}) };
}

interface Send {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly onResponse: (res: IncomingMessage) => void;
  readonly onError: (e: Error) => void;
  readonly body?: string;
  readonly signal?: AbortSignal;
}

export class KubeHttp {
  private readonly base: URL;
  private readonly agent: HttpsAgent | undefined;
  private readonly timeoutMs: number;

  constructor(private readonly o: KubeHttpOptions) {
    this.base = new URL(o.apiServerUrl);
    this.timeoutMs = o.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    // Keep-alive: a held statement's create, watch and patch reuse connections (latency of the approval path).
    this.agent = this.base.protocol === 'https:' ? new https.Agent({ keepAlive: true, maxSockets: 64, ...(o.caFile ? { ca: readFileSync(o.caFile) } : {}) }) : undefined;
  }

  private async headers(extra: Record<string, string>): Promise<Record<string, string>> {
    const h: Record<string, string> = { accept: 'application/json', ...extra };
    if (this.o.tokenFile) {
      const t = (await readFile(this.o.tokenFile, 'utf8')).trim();
      if (t !== '') h.authorization = `Bearer ${t}`;
    }
    return h;
  }

  private send(s: Send): () => void {
    const url = new URL(s.path, this.base);
    const opts: RequestOptions = { method: s.method, headers: s.headers, ...(s.signal ? { signal: s.signal } : {}), ...(this.agent ? { agent: this.agent } : {}) };
    const req = (url.protocol === 'https:' ? https.request : http.request)(url, opts, s.onResponse);
    req.on('error', s.onError);
    req.end(s.body);
    return () => req.destroy();
  }

  /** One request; resolves with any HTTP status (the caller decides), rejects when the API server cannot be reached in time. */
  async request(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<KubeResponse> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers = await this.headers(payload === undefined ? {} : { 'content-type': contentType });
    return new Promise((resolve, reject) => {
      const fail = (e: Error): void => reject(new KubeHttpError(`the Kubernetes API at ${this.base.host} could not be reached (${method} ${path.split('?')[0] ?? ''}): ${e.message}`, 0, undefined));
      const destroy = this.send({ method, path, headers, onError: fail, ...(payload !== undefined ? { body: payload } : {}), onResponse: (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) res.destroy(new Error(`response larger than ${MAX_RESPONSE_BYTES} bytes`));
          else chunks.push(c);
        });
        res.on('error', fail);
        res.on('end', () => {
          clearTimeout(timer);
          let parsed: unknown;
          try {
            parsed = chunks.length === 0 ? undefined : JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      } });
      const timer = setTimeout(() => { destroy(); fail(new Error(`no answer within ${this.timeoutMs} ms`)); }, this.timeoutMs);
    });
  }

  /** Like request, but a non-2xx answer rejects with the API server's own message. */
  async call(method: string, path: string, body?: unknown, contentType?: string): Promise<unknown> {
    const r = await this.request(method, path, body, contentType);
    if (r.status >= 200 && r.status < 300) return r.body;
    const s = statusMessage(r.body);
    throw new KubeHttpError(`${method} ${path.split('?')[0] ?? ''}: HTTP ${r.status}${s.message ? `: ${s.message}` : ''}`, r.status, s.reason);
  }

  /**
   * Streams a watch until the server ends it (resolves), the connection breaks (rejects) or `signal`
   * aborts (resolves). Each complete line is one event.
   */
  async watch(path: string, onEvent: (e: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    const headers = await this.headers({});
    if (signal.aborted) return;
    return new Promise((resolve, reject) => {
      const fail = (e: Error): void => (signal.aborted ? resolve() : reject(new KubeHttpError(`watch ${path.split('?')[0] ?? ''}: ${e.message}`, 0, undefined)));
      this.send({ method: 'GET', path, headers, onError: fail, signal, onResponse: (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          return reject(new KubeHttpError(`watch ${path.split('?')[0] ?? ''}: HTTP ${res.statusCode ?? 0}`, res.statusCode ?? 0, undefined));
        }
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          buf += c;
          if (buf.length > MAX_RESPONSE_BYTES) return res.destroy(new Error('a watch event larger than the limit'));
          for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line.trim() === '') continue;
            try {
              onEvent(JSON.parse(line) as WatchEvent);
            } catch (e) {
              return res.destroy(e as Error);
            }
          }
        });
        res.on('error', fail);
        res.on('end', () => resolve());
        res.on('close', () => resolve());
      } });
    });
  }

  close(): void {
    this.agent?.destroy();
  }
}
