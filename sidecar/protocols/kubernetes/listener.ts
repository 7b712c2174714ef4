// The Kubernetes API gateway's listener module (main.ts imports it for `protocol: kubernetes`): kubectl → sidecar (agent token) → API server (scoped ServiceAccount token).
import type { OutgoingHttpHeaders } from 'node:http';
import type { KubernetesConnectionConfig, ListenerContext, RunningListener } from '../../core/config-types.ts';
import type { Masker } from '../../masking/index.ts';
import type { HttpFacts } from '../../policy/http-rules.ts';
import { statusBody } from '../http/errors.ts';
import { Gateway, type GatewayDeps, type GatewayProfile } from '../http/gateway.ts';
import { depsOf, listenTls, maskingOptions, policyOrThrow, type ListenerTuning } from '../http/listener.ts';
import { mediaType, type BodyMaskOptions } from '../http/mask-body.ts';
import { startServer, type RunningServer, type ServerOptions } from '../http/server.ts';
import { maskKubeDocument } from './mask-objects.ts';
import { requestInfo } from './request-info.ts';

/** One API response document (a list of every Secret in a big namespace included) is masked whole up to this; larger ones are cut off, never passed unmasked. */
export const DEFAULT_MAX_KUBE_DOCUMENT_BYTES = 64 * 1024 * 1024;

/** `Accept` without protobuf (which the gateway cannot mask): JSON alternatives are kept, or plain JSON is asked for. */
export function jsonAccept(accept: string | undefined): string {
  if (accept === undefined || accept.trim() === '') return 'application/json';
  const kept = accept.split(',').map((s) => s.trim()).filter((s) => s !== '' && !/protobuf/i.test(s));
  return kept.length > 0 ? kept.join(',') : 'application/json';
}

function adjustHeaders(h: OutgoingHttpHeaders, f: HttpFacts): void {
  // The agent must not act as someone else with the sidecar's credential.
  for (const k of Object.keys(h)) if (k.startsWith('impersonate-')) delete h[k];
  // Discovery and OpenAPI documents (non-resource URLs) carry no object data: protobuf stays allowed there.
  if (f.kube?.isResourceRequest === true) h['accept'] = jsonAccept(typeof h['accept'] === 'string' ? h['accept'] : undefined);
}

function bodyOptions(f: HttpFacts, ct: string | undefined, masker: Masker): BodyMaskOptions {
  const k = f.kube;
  const secrets = k?.resource === 'secrets';
  const t = mediaType(ct);
  const json = t === 'application/json' || t.endsWith('+json');
  if (k?.isResourceRequest === true && k.subresource === 'log') return { mode: 'lines', masker, maskLine: (l) => masker.maskText(l), overflow: 'stream' };
  if (json && k?.verb === 'watch') return { mode: 'lines', masker, maskLine: (l) => maskKubeDocument(masker, l, secrets), overflow: 'fail', maxUnitBytes: DEFAULT_MAX_KUBE_DOCUMENT_BYTES };
  if (json) return { mode: 'json', masker, maskDocument: (d) => maskKubeDocument(masker, d, secrets), overflow: 'fail', maxUnitBytes: DEFAULT_MAX_KUBE_DOCUMENT_BYTES };
  // A resource answered in a format we did not ask for (protobuf, CBOR) cannot be masked by meaning: cut off at the first byte.
  if (k?.isResourceRequest === true && (/protobuf|cbor/.test(t))) return { mode: 'json', masker, overflow: 'fail', maxUnitBytes: 0 };
  return { mode: 'text', masker, overflow: 'stream' };
}

export const KUBERNETES_PROFILE: GatewayProfile = {
  protocol: 'kubernetes',
  classify: (method, path, query) => {
    const kube = requestInfo(method, path, query);
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

/** Starts the gateway for one kubernetes connection (tests call this directly). */
export async function startKubernetesGateway(conn: KubernetesConnectionConfig, deps: GatewayDeps, tuning: ListenerTuning = {}): Promise<RunningServer & { gateway: Gateway }> {
  const gw = new Gateway(
    { name: conn.name, upstream: conn.upstream, credentials: { type: 'bearer', tokenFile: conn.credentials.tokenFile }, access: conn.access, limits: conn.limits, readOnly: conn.readOnly, masking: maskingOptions(conn.masking) },
    policyOrThrow(conn.name, conn.policy.http, 'kubernetes'),
    KUBERNETES_PROFILE,
    deps,
  );
  const tls = await listenerTls(conn, deps);
  const s = await startServer(gw, { host: conn.listen.host, port: conn.listen.port, maxConnections: conn.limits.maxSessions, ...(tls !== undefined ? { tls } : {}), ...tuning });
  return { ...s, gateway: gw };
}

/** ProtocolModule entry (config-types.ts). */
export async function startListener(lc: ListenerContext): Promise<RunningListener> {
  const conn = lc.current().config;
  if (conn.protocol !== 'kubernetes') throw new Error(`connection ${lc.name} is ${conn.protocol}, not kubernetes`);
  const s = await startKubernetesGateway(conn, depsOf(lc, 'kubernetes'));
  return { address: s.address, sessions: () => s.sessions(), stop: (deadline) => s.close(deadline) };
}
