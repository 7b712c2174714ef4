// The Kubernetes API gateway's listener module (main.ts imports it for `protocol: kubernetes`): kubectl → sidecar (agent token) → API server (scoped ServiceAccount token).
import { AsyncLocalStorage } from 'node:async_hooks';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { KubernetesConnectionConfig, ListenerContext, RunningListener } from '../../core/config-types.ts';
import type { Masker } from '../../masking/index.ts';
import type { HttpFacts } from '../../policy/http-rules.ts';
import { statusBody } from '../http/errors.ts';
import { Gateway, type GatewayDeps, type GatewayProfile } from '../http/gateway.ts';
import { depsOf, listenTls, maskingOptions, policyOrThrow, type ListenerTuning } from '../http/listener.ts';
import { mediaType, type BodyMaskOptions } from '../http/mask-body.ts';
import { startServer, type RunningServer, type ServerOptions } from '../http/server.ts';
import { serviceAccountOfToken, withGuardrails, type GuardrailContext, type ServiceAccountRef } from './guardrails.ts';
import { maskKubeDocument } from './mask-objects.ts';
import { requestInfo, type KubeRequestHeaders } from './request-info.ts';

/** One API response document (a list of every Secret in a big namespace included) is masked whole up to this; larger ones are cut off, never passed unmasked. */
export const DEFAULT_MAX_KUBE_DOCUMENT_BYTES = 64 * 1024 * 1024;

/** The API server's own request body limit (apiserver MaxRequestBodyBytes): the guardrails read write bodies up to it. */
export const KUBE_MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024;

/** The headers of the request being handled: the Gateway classifies by method and URL only, the guardrails also read headers. */
const requestHeaders = new AsyncLocalStorage<IncomingHttpHeaders>();

/** What the guardrails need from the headers. */
export function guardrailHeaders(h: IncomingHttpHeaders): KubeRequestHeaders {
  const ct = h['content-type'];
  return { impersonate: Object.keys(h).filter((k) => k.toLowerCase().startsWith('impersonate-')), contentType: typeof ct === 'string' ? ct.trim().toLowerCase() : '' };
}

/** Media types an object may be asked for in: JSON only (the masker reads Secrets by meaning in JSON; YAML, protobuf and CBOR would carry them past it). */
function acceptsJson(entry: string): boolean {
  const t = entry.split(';')[0]?.trim().toLowerCase() ?? '';
  return t === 'application/json' || t === '*/*' || t === 'application/*';
}

/** `Accept` with only JSON entries (`as=Table` and other parameters kept): protobuf, YAML and CBOR are dropped; nothing left asks for plain JSON. */
export function jsonAccept(accept: string | undefined): string {
  if (accept === undefined || accept.trim() === '') return 'application/json';
  const kept = accept.split(',').map((s) => s.trim()).filter((s) => s !== '' && acceptsJson(s) && !/protobuf|yaml|cbor/i.test(s));
  return kept.length > 0 ? kept.join(',') : 'application/json';
}

/** Requests the API server relays to a pod, service or node (their answers are whatever that endpoint sends: masked as text, never refused for their type). */
function relayed(f: HttpFacts): boolean {
  const k = f.kube;
  return k?.isResourceRequest === true && (k.verb === 'proxy' || k.subresource.toLowerCase() === 'proxy');
}

/** Headers that authenticate to the API server other than the credential: never from the agent. */
const AUTH_HEADERS = /^(impersonate-|x-remote-)/;

function adjustHeaders(h: OutgoingHttpHeaders, f: HttpFacts): void {
  // The agent must not act as someone else with the sidecar's credential (the impersonation guardrail refuses such requests first);
  // X-Remote-* are the front-proxy's identity headers (honoured only from its client certificate, dropped anyway).
  for (const k of Object.keys(h)) if (AUTH_HEADERS.test(k)) delete h[k];
  // Discovery and OpenAPI documents (non-resource URLs) carry no object data: protobuf stays allowed there.
  if (f.kube?.isResourceRequest === true && !relayed(f) && f.kube.subresource !== 'log') h['accept'] = jsonAccept(typeof h['accept'] === 'string' ? h['accept'] : undefined);
}

function bodyOptions(f: HttpFacts, ct: string | undefined, masker: Masker): BodyMaskOptions {
  const k = f.kube;
  const secrets = k?.resource === 'secrets';
  const t = mediaType(ct);
  const json = t === 'application/json' || t.endsWith('+json');
  const resource = k?.isResourceRequest === true;
  if (resource && k.subresource === 'log') return { mode: 'lines', masker, maskLine: (l) => masker.maskText(l), overflow: 'stream' };
  // One document or a watch stream (whatever the query said): every object is masked whole by meaning as soon as it is complete.
  if (json) return { mode: 'objects', masker, maskDocument: (d) => maskKubeDocument(masker, d, secrets), overflow: 'fail', maxUnitBytes: DEFAULT_MAX_KUBE_DOCUMENT_BYTES };
  // A resource answered in anything else that can carry an object (YAML, protobuf, CBOR …) cannot be masked by meaning: refused.
  if (resource && !relayed(f) && t !== '' && t !== 'text/plain') return { mode: 'refuse', masker };
  return { mode: 'text', masker, overflow: 'stream' };
}

export const KUBERNETES_PROFILE: GatewayProfile = {
  protocol: 'kubernetes',
  classify: (method, path, query) => {
    const h = requestHeaders.getStore();
    const kube = { ...requestInfo(method, path, query), ...(h !== undefined ? { headers: guardrailHeaders(h) } : {}) };
    const resource = kube.isResourceRequest ? `${kube.apiGroup === '' ? '' : `${kube.apiGroup}/`}${kube.resource}${kube.subresource === '' ? '' : `/${kube.subresource}`}` : undefined;
    return {
      kube,
      classification: {
        kind: kube.isResourceRequest ? 'kubernetes' : 'kubernetes-nonresource',
        verb: kube.verb,
        ...(resource !== undefined ? { resource } : {}),
        ...(kube.namespace !== '' ? { namespace: kube.namespace } : {}),
        ...(kube.name !== '' ? { name: kube.name } : {}),
      },
    };
  },
  adjustHeaders,
  bodyOptions,
  render: statusBody,
};

/**
 * The listener's certificate: the configured files, or (selfSignedTls) a pair made in memory whose CA
 * is written to caOut before the listener starts, so the sidecar is ready only once agents can trust it.
 */
async function listenerTls(conn: KubernetesConnectionConfig, deps: GatewayDeps): Promise<ServerOptions['tls']> {
  const self = conn.listen.selfSignedTls;
  if (self !== undefined) {
    const { loopbackTlsFor } = await import('../../tls/loopback.ts');
    const t = await loopbackTlsFor(conn.name, self.caOut);
    deps.logger.info({ connection: conn.name, caOut: self.caOut }, 'kubernetes listener serves TLS with a certificate made at start; its CA is written for the agents');
    return { cert: t.cert, key: t.key };
  }
  // kubectl (client-go) never sends a bearer token to a plain-HTTP server.
  if (conn.listen.tls === undefined) deps.logger.warn({ connection: conn.name }, 'kubernetes listener without listen.tls or listen.selfSignedTls: kubectl will not send its token over plain HTTP');
  return listenTls(conn.listen, deps.logger);
}

/** The Gateway with each request's headers in reach of the profile's classify (the guardrails read them). */
class KubernetesGateway extends Gateway {
  override handle(req: IncomingMessage, res: ServerResponse): void {
    requestHeaders.run(req.headers, () => super.handle(req, res));
  }
  override handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    requestHeaders.run(req.headers, () => super.handleUpgrade(req, socket, head));
  }
}

/** The credential's ServiceAccount, read from its token once it can be (it does not change when the token rotates). */
function credentialServiceAccount(tokenFile: string): () => ServiceAccountRef | undefined {
  let known: ServiceAccountRef | undefined;
  return () => {
    if (known !== undefined) return known;
    try {
      known = serviceAccountOfToken(readFileSync(tokenFile, 'utf8'));
    } catch {
      // Unreadable now: asked again next time; meanwhile no token is minted.
    }
    return known;
  };
}

/** The guardrails' view of this connection and pod. */
export function guardrailContext(conn: KubernetesConnectionConfig, pod: GuardrailContext['pod']): GuardrailContext {
  return { pod, allowTokenRequests: conn.guardrails?.allowTokenRequests === true, allowProxy: conn.guardrails?.allowProxy === true, credentialServiceAccount: credentialServiceAccount(conn.credentials.tokenFile) };
}

/** Starts the gateway for one kubernetes connection (tests call this directly; `pod` is the sidecar's own pod for the own-pod guardrail). */
export async function startKubernetesGateway(conn: KubernetesConnectionConfig, deps: GatewayDeps, tuning: ListenerTuning = {}, pod: GuardrailContext['pod'] = { name: undefined, namespace: undefined }): Promise<RunningServer & { gateway: Gateway }> {
  if (pod.name === undefined) deps.logger.warn({ connection: conn.name }, 'POD_NAME is not set: the own-pod guardrail cannot tell the agent\'s pod (set POD_NAME and POD_NAMESPACE from the downward API)');
  const gw = new KubernetesGateway(
    { name: conn.name, upstream: conn.upstream, credentials: { type: 'bearer', tokenFile: conn.credentials.tokenFile }, access: conn.access, limits: conn.limits, readOnly: conn.readOnly, masking: maskingOptions(conn.masking) },
    withGuardrails(policyOrThrow(conn.name, conn.policy.http, 'kubernetes'), guardrailContext(conn, pod)),
    KUBERNETES_PROFILE,
    { ...deps, maxJudgedBodyBytes: deps.maxJudgedBodyBytes ?? KUBE_MAX_REQUEST_BODY_BYTES },
  );
  const tls = await listenerTls(conn, deps);
  const s = await startServer(gw, { host: conn.listen.host, port: conn.listen.port, maxConnections: conn.limits.maxSessions, ...(tls !== undefined ? { tls } : {}), ...tuning });
  return { ...s, gateway: gw };
}

/** ProtocolModule entry (config-types.ts). */
export async function startListener(lc: ListenerContext): Promise<RunningListener> {
  const conn = lc.current().config;
  if (conn.protocol !== 'kubernetes') throw new Error(`connection ${lc.name} is ${conn.protocol}, not kubernetes`);
  const s = await startKubernetesGateway(conn, depsOf(lc, 'kubernetes'), {}, { name: lc.pod.name, namespace: lc.pod.namespace });
  return { address: s.address, sessions: () => s.sessions(), stop: (deadline) => s.close(deadline) };
}
