// The egress proxy's loopback server (main.ts starts it when the config has `egress`): bounded headers, slowloris timeouts, session cap, CONNECT and absolute-form requests to EgressProxy.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Duplex } from 'node:stream';
import type { EgressConfig, SidecarConfig, SidecarServices } from '../../core/config-types.ts';
import type { MaskerOptions } from '../../masking/index.ts';
import { refusal } from '../http/errors.ts';
import { metricsOf } from '../http/listener.ts';
import { clientErrorRefusal, DEFAULT_HEADERS_TIMEOUT_MS, DEFAULT_MAX_HEADER_BYTES, drainAndClose, listenOn } from '../http/server.ts';
import type { OwnListeners } from './address.ts';
import { compileAllowList } from './allow-list.ts';
import { EgressProxy, rawResponse, type EgressDeps, type EgressState } from './proxy.ts';
import { compileEgressPolicy } from './rules.ts';

const require = createRequire(import.meta.url);
const http = require('node:http') as typeof import('node:http');

export interface EgressTuning {
  readonly maxHeaderBytes?: number;
  readonly headersTimeoutMs?: number;
}

export interface RunningEgress {
  readonly address: { readonly host: string; readonly port: number };
  readonly proxy: EgressProxy;
  sessions(): number;
  /** A reloaded config: the allow-list, rules, masking and the sidecar's own ports apply to new requests (the listen address needs a restart). */
  update(config: SidecarConfig, hash: string): void;
  stop(deadline: number): Promise<void>;
}

/** Compiles one `egress` section (the config loader already checked it; a failure here is a bug and throws). */
export function egressState(config: EgressConfig, hash: string): EgressState {
  const allow = compileAllowList(config.allow);
  if (!allow.ok) throw new Error(`egress: ${allow.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`);
  const { hmacKeyFile, ...rest } = config.masking;
  const masking: MaskerOptions = { ...rest, ...(hmacKeyFile !== undefined ? { hmacKey: readFileSync(hmacKeyFile) } : {}) };
  const policy = compileEgressPolicy(config.policy.http);
  if (!policy.ok) throw new Error(`egress.policy.http: ${policy.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`);
  return { config, entries: allow.entries, policy: policy.policy, masking, hash };
}

/** The sidecar's listener ports and this host's own addresses: what the proxy never dials. */
export function ownListeners(config: SidecarConfig): OwnListeners & { readonly ports: Set<number> } {
  const ports = new Set<number>([config.admin.port, ...config.connections.map((c) => c.listen.port)]);
  if (config.egress) ports.add(config.egress.listen.port);
  ports.delete(0);
  const localAddresses = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) localAddresses.add(a.address.toLowerCase().replace(/%.*$/, ''));
  return { ports, localAddresses };
}

export async function startEgressProxy(state: EgressState, deps: EgressDeps & { readonly own: OwnListeners & { readonly ports: Set<number> } }, tuning: EgressTuning = {}): Promise<RunningEgress> {
  const proxy = new EgressProxy(state, deps);
  const c = state.config;
  const sockets = new Set<Socket>();
  const headersTimeout = tuning.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
  const server: Server = http.createServer(
    {
      maxHeaderSize: tuning.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES,
      headersTimeout,
      // Held requests (approval) may wait minutes before their body is read: no whole-request deadline.
      requestTimeout: 0,
      keepAliveTimeout: c.limits.idleTimeoutSeconds * 1000,
      connectionsCheckingInterval: Math.max(250, Math.min(1000, Math.floor(headersTimeout / 2))),
      noDelay: true,
    },
    (req: IncomingMessage, res: ServerResponse) => proxy.handleRequest(req, res),
  );
  server.on('connection', (s: Socket) => {
    if (sockets.size >= c.limits.maxSessions) return rawResponse(s, refusal('CHAP_ERR_HTTP_TOO_MANY_REQUESTS', { connection: c.name, n: sockets.size }));
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => proxy.handleConnect(req, socket, head));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => proxy.handleUpgrade(req, socket, head));
  // Oversized headers → 431, slow headers → 408, conflicting framing and other parse errors → 400; the socket is closed.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => rawResponse(socket, clientErrorRefusal(err.code)));
  const address = await listenOn(server, c.listen.host, c.listen.port);
  deps.own.ports.add(address.port);
  return {
    address,
    proxy,
    sessions: () => sockets.size,
    update: (config, hash) => {
      if (config.egress === undefined) return;
      for (const p of ownListeners(config).ports) deps.own.ports.add(p);
      proxy.update(egressState(config.egress, hash));
    },
    stop: (deadline: number): Promise<void> => drainAndClose(server, sockets, deadline, () => proxy.close()),
  };
}

/** main.ts entry: the proxy for `config.egress` with the sidecar's services. */
export async function startEgress(config: SidecarConfig & { readonly egress: EgressConfig }, hash: string, services: SidecarServices, identity: string): Promise<RunningEgress> {
  const e = config.egress;
  const deps = {
    verifier: services.verifier,
    recorder: services.recorder,
    approvals: services.approvals,
    approvalTimeoutMs: config.approvals.timeoutSeconds * 1000,
    logger: services.log.child({ connection: e.name, protocol: 'egress' }),
    metrics: metricsOf(services, 'egress'),
    identity,
    own: ownListeners(config),
  };
  return startEgressProxy(egressState(e, hash), deps);
}
