// Streams a pod's log from the API server (GET pods/NAME/log, follow=false) chunk by chunk, so a recording of any size is read with bounded memory.
//
// KubeClient.request buffers whole bodies (right for JSON objects); a sidecar log can be gigabytes.
// Here the response body is handed on as it arrives; the caller's line splitter keeps at most one
// line. Back-pressure comes free: the socket is read only as fast as lines are verified.
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeApiError } from '../kube/client.ts';

/** No byte for this long ends the read (the API server or the kubelet is stuck). */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** An error answer is a Status object: read at most this much of it. */
const MAX_ERROR_BODY = 64 * 1024;

async function errorBody(res: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res) {
    if (n >= MAX_ERROR_BODY) continue;
    chunks.push(c as Buffer);
    n += (c as Buffer).length;
  }
  const text = Buffer.concat(chunks).toString('utf8').slice(0, MAX_ERROR_BODY);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * Opens `path` (an API path with its query) with the kubeconfig's cluster and credentials; resolves
 * with the response once its status is 2xx, or rejects with KubeApiError carrying the Status.
 */
export async function openStream(kc: KubeConfig, path: string, o: { idleTimeoutMs?: number } = {}): Promise<IncomingMessage> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster; pass --kubeconfig FILE or --context NAME');
  const server = new URL(cluster.server);
  const opts: RequestOptions = { method: 'GET', headers: { accept: '*/*' } };
  await kc.applyToHTTPSOptions(opts);
  const base = server.pathname.replace(/\/$/, '');
  const full: RequestOptions = { ...opts, protocol: server.protocol, hostname: server.hostname, port: server.port, path: `${base}${path}` };
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = (server.protocol === 'https:' ? httpsRequest : httpRequest)(full, resolve);
    req.setTimeout(o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, () => req.destroy(new Error(`GET ${path.split('?')[0] ?? ''}: no data from the API server for ${Math.round((o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS) / 1000)} s`)));
    req.on('error', reject);
    req.end();
  });
  const status = res.statusCode ?? 0;
  if (status >= 200 && status < 300) return res;
  const body = await errorBody(res);
  const reason = typeof body === 'object' && body !== null && typeof (body as { reason?: unknown }).reason === 'string' ? (body as { reason: string }).reason : String(status);
  throw new KubeApiError('GET', path, status, reason, body);
}
