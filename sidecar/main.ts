// Composition root of the sidecar: config → logger, metrics, verifier, recorder, admin listener, one protocol listener per connection; hot reload; graceful stop.
import { readFileSync } from 'node:fs';
import { createLogger, setLevel, type Logger, type LogOptions } from './core/log.ts';
import { createMetrics, type ReloadResult, type SidecarMetrics } from './core/metrics.ts';
import { formatErrors, loadConfig, maskerOptions } from './core/config.ts';
import { watchConfig, type ConfigWatcher, type GoodConfig } from './core/config-watch.ts';
import type {
  ConfigError, ConnectionConfig, ConnectionState, ListenerContext, PodInfo, Protocol, ProtocolModule, RunningListener, SidecarConfig, SidecarServices,
} from './core/config-types.ts';
import { RouteTable } from './admin/routes.ts';
import { startAdminServer, type AdminServer, type Readiness } from './admin/server.ts';
import { createTokenVerifier, type TokenVerifier } from './identity/verify-token.ts';
import { createMasker, type Masker } from './masking/index.ts';
import { createRecorder, type Recorder } from './recording/writer.ts';
import { fileSink, streamSink, type Sink } from './recording/sinks.ts';
import { loadKey } from './recording/signing.ts';
import { failClosedApprovals, LocalApprovals, type ApprovalBackend as ApprovalBackendImpl } from './protocols/postgres/approval-hold.ts';
import { registerLocalApprovalRoutes } from './approvals/local-routes.ts';
import { KubernetesApprovals } from './approvals/kubernetes.ts';
import { startAudit, type Audit } from './audit/wiring.ts';
import { tapRecorder } from './audit/tap.ts';
import type { ReloadResult as WatchResult } from './core/metrics.ts';
import { configRelayTargets, NO_RELAYS, startLoopbackRelays, type LoopbackRelays } from './interception/loopback-v6.ts';

/**
 * Protocol → its listener module, imported only when a connection uses it (nothing heavy loads
 * at start). The specifiers are string literals so tsc rewrites `.ts` to `.js` in the build.
 */
export const PROTOCOL_MODULES: Readonly<Record<Protocol, () => Promise<ProtocolModule>>> = {
  postgres: () => import('./protocols/postgres/listener.ts'),
  http: () => import('./protocols/http/listener.ts'),
  kubernetes: () => import('./protocols/kubernetes/listener.ts'),
};

/** A start-up refusal: what is wrong, as lines a human can act on. */
export class StartupError extends Error {
  override readonly name = 'StartupError';
  constructor(
    message: string,
    readonly details: readonly string[] = [],
  ) {
    super(message);
  }
}

export interface StartOptions {
  readonly configPath: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly log?: LogOptions;
  /** Replaces the protocol table (tests). */
  readonly protocols?: Partial<Record<Protocol, () => Promise<ProtocolModule>>>;
  /** Hot-reload tuning (tests). */
  readonly reload?: { readonly debounceMs?: number; readonly pollIntervalMs?: number };
  /** Events flush/window tuning (tests). */
  readonly audit?: { readonly events?: { readonly flushMs?: number; readonly windowMs?: number; readonly maxNewPerWindow?: number } };
}

export interface Sidecar {
  readonly admin: AdminServer;
  readonly log: Logger;
  readonly metrics: SidecarMetrics;
  listeners(): ReadonlyMap<string, RunningListener>;
  readiness(): Readiness;
  config(): SidecarConfig;
  /** Re-reads the config file now (SIGHUP). */
  reload(): Promise<ReloadResult>;
  /** Stop accepting, drain sessions until the configured deadline, flush the recording, close the admin listener. */
  stop(reason?: string): Promise<void>;
  /** Kubernetes Events and counter reports (identity.events, identity.report). */
  readonly audit: Audit;
  /** The egress forward proxy when the config has `egress` (its bound address). */
  egress(): { readonly address: { readonly host: string; readonly port: number } } | undefined;
}

export function podFromEnv(env: NodeJS.ProcessEnv): PodInfo {
  return { name: env.POD_NAME || undefined, uid: env.POD_UID || undefined, namespace: env.POD_NAMESPACE || undefined };
}

/** Loads every protocol module the config needs, or refuses naming the protocol. */
export async function loadProtocols(config: SidecarConfig, table: Partial<Record<Protocol, () => Promise<ProtocolModule>>>): Promise<Map<Protocol, ProtocolModule>> {
  const out = new Map<Protocol, ProtocolModule>();
  for (const p of new Set(config.connections.map((c) => c.protocol))) {
    const names = config.connections.filter((c) => c.protocol === p).map((c) => c.name).join(', ');
    const load = table[p];
    let mod: ProtocolModule | undefined;
    try {
      mod = load ? await load() : undefined;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ERR_MODULE_NOT_FOUND') throw new StartupError(`the ${p} gateway failed to load: ${(e as Error).message}`);
    }
    if (typeof mod?.startListener !== 'function') {
      throw new StartupError(`protocol ${p} is not available in this sidecar build (connections: ${names}); remove those connections or use a build that includes the ${p} gateway`);
    }
    out.set(p, mod);
  }
  return out;
}

function readMasker(m: ConnectionConfig['masking']): Masker {
  return createMasker(maskerOptions(m, m.hmacKeyFile === undefined ? undefined : readFileSync(m.hmacKeyFile)));
}

function statesOf(good: GoodConfig): Map<string, ConnectionState> {
  const map = new Map<string, ConnectionState>();
  for (const c of good.config.connections) {
    map.set(c.name, { config: c, configHash: good.hash, approvals: good.config.approvals, sqlPolicy: good.sqlPolicies.get(c.name), masker: readMasker(c.masking), identityName: good.config.identity.name });
  }
  return map;
}

function buildVerifier(config: SidecarConfig, pod: PodInfo): TokenVerifier {
  const id = config.identity;
  return createTokenVerifier({
    issuers: id.issuers,
    self: pod,
    ...(id.verifiedCacheSize !== undefined ? { verifiedCacheSize: id.verifiedCacheSize } : {}),
    ...(id.verifiedCacheSeconds !== undefined ? { verifiedCacheSeconds: id.verifiedCacheSeconds } : {}),
    ...(id.maxTokenBytes !== undefined ? { maxTokenBytes: id.maxTokenBytes } : {}),
  });
}

/** Forwards to the current verifier, so a reloaded identity block applies to the next token. */
function verifierProxy(ref: { current: TokenVerifier }): TokenVerifier {
  return {
    verify: (t) => ref.current.verify(t),
    warmUp: () => ref.current.warmUp(),
    stats: () => ref.current.stats(),
    cacheStats: () => ref.current.cacheStats(),
  };
}

async function buildRecorder(config: SidecarConfig, pod: PodInfo, log: Logger): Promise<Recorder> {
  const rc = config.recording;
  const sinks: Sink[] = [];
  if (rc.stdout) sinks.push(streamSink(process.stdout));
  if (rc.file) sinks.push(fileSink({ path: rc.file.path, sync: rc.file.sync }));
  const signing = rc.signing
    ? { privateKey: loadKey(readFileSync(rc.signing.privateKeyFile, 'utf8'), 'private'), everyLines: rc.signing.checkpointEveryLines, everyMs: rc.signing.checkpointIntervalSeconds * 1000 }
    : undefined;
  // The recorder masks every free-text field again with the default detectors (a second wall).
  const wall = createMasker({});
  const origin: Record<string, string> = { component: 'chaperone-sidecar' };
  if (pod.namespace) origin.namespace = pod.namespace;
  if (pod.name) origin.pod = pod.name;
  return createRecorder({ sinks, ...(signing ? { signing } : {}), mask: (t) => wall.maskText(t).value, origin, log: log.child({ part: 'recording' }) });
}

/** The approval backend the config names; `local` also registers its admin routes. */
function buildApprovals(config: SidecarConfig, verifier: TokenVerifier, routes: RouteTable, log: Logger, pod: PodInfo): ApprovalBackendImpl {
  switch (config.approvals.backend) {
    case 'none':
      return failClosedApprovals;
    case 'local': {
      const backend = new LocalApprovals();
      registerLocalApprovalRoutes(routes, {
        backend,
        verifier,
        approverGroups: config.admin.approverGroups,
        audit: (e) => log.info({ approval: e.id, by: e.by, decision: e.decision, allowed: e.ok, why: e.why }, 'approval decision attempt'),
      });
      return backend;
    }
    case 'kubernetes': {
      // ApprovalRequests live in the pod's namespace; without it the sidecar cannot know where to create them.
      const k = config.approvals.kubernetes;
      const namespace = pod.namespace;
      if (k === undefined || namespace === undefined) throw new StartupError('approvals backend kubernetes needs the pod\'s namespace: set POD_NAMESPACE from the downward API (fieldRef metadata.namespace), as the injected sidecar does');
      let backend: KubernetesApprovals;
      try {
        backend = new KubernetesApprovals({ api: { apiServerUrl: k.apiServerUrl, ...(k.caFile ? { caFile: k.caFile } : {}), tokenFile: k.tokenFile }, pod: { ...pod, namespace }, log: log.child({ part: 'approvals' }) });
      } catch (e) {
        throw new StartupError(`approvals backend kubernetes cannot start: ${(e as Error).message}; check approvals.kubernetes.caFile`);
      }
      void backend.cancelStale().then(
        (n) => n > 0 && log.info({ cancelled: n }, 'cancelled ApprovalRequests left Pending by a previous sidecar process'),
        (e: unknown) => log.warn({ err: (e as Error).message }, 'could not look for stale ApprovalRequests of this pod'),
      );
      return backend;
    }
  }
}

/** What changed between two configs that this process cannot apply without a restart. */
export function restartOnlyChanges(prev: SidecarConfig, next: SidecarConfig): string[] {
  const out: string[] = [];
  if (prev.admin.host !== next.admin.host || prev.admin.port !== next.admin.port) out.push('admin.host/admin.port');
  if (JSON.stringify(prev.recording) !== JSON.stringify(next.recording)) out.push('recording');
  if (JSON.stringify(prev.admin.approverGroups) !== JSON.stringify(next.admin.approverGroups)) out.push('admin.approverGroups');
  const audit = (c: SidecarConfig): string => JSON.stringify([c.identity.name, c.identity.events, c.identity.report]);
  if (audit(prev) !== audit(next)) out.push('identity.name/events/report');
  if (prev.approvals.backend !== next.approvals.backend) out.push('approvals.backend');
  if ((prev.egress === undefined) !== (next.egress === undefined) || JSON.stringify(prev.egress?.listen) !== JSON.stringify(next.egress?.listen)) out.push('egress (on/off, listen)');
  return out;
}

type RunningEgress = import('./protocols/egress/listener.ts').RunningEgress;

/** The egress forward proxy (optional): its module loads only when the config has the section. */
async function startEgressIfConfigured(config: SidecarConfig, hash: string, services: SidecarServices, pod: PodInfo): Promise<RunningEgress | undefined> {
  if (!config.egress) return undefined;
  const { startEgress } = await import('./protocols/egress/listener.ts');
  return startEgress({ ...config, egress: config.egress }, hash, services, config.identity.name ?? pod.name ?? 'egress');
}

class Runtime {
  readonly listeners = new Map<string, RunningListener>();
  /** Listeners replaced by a reload, finishing their open sessions. */
  readonly draining = new Set<RunningListener>();
  states: Map<string, ConnectionState>;
  status: Readiness['status'] = 'starting';
  restartRequired: string[] = [];
  watcher: ConfigWatcher | undefined;

  constructor(
    public good: GoodConfig,
    readonly modules: Map<Protocol, ProtocolModule>,
    readonly services: SidecarServices,
    readonly pod: PodInfo,
    readonly protocols: Partial<Record<Protocol, () => Promise<ProtocolModule>>>,
  ) {
    this.states = statesOf(good);
  }

  context(name: string): ListenerContext {
    const self = this.states.get(name);
    if (!self) throw new Error(`no state for connection ${name}`);
    let last = self;
    return {
      name,
      // After the connection is removed, late callers keep its last state (they are being drained).
      current: () => (last = this.states.get(name) ?? last),
      pod: this.pod,
      services: this.services,
    };
  }

  async start(name: string): Promise<void> {
    const state = this.states.get(name);
    if (!state) return;
    const mod = this.modules.get(state.config.protocol);
    if (!mod) throw new StartupError(`protocol ${state.config.protocol} is not loaded`);
    const l = await mod.startListener(this.context(name));
    this.listeners.set(name, l);
    this.services.log.info({ connection: name, protocol: state.config.protocol, ...l.address }, 'listener started');
  }

  /** Applies a reloaded config: new, changed and removed connections. */
  async apply(next: GoodConfig): Promise<void> {
    const prev = this.good;
    const modules = await loadProtocols(next.config, this.protocols);
    for (const [p, m] of modules) this.modules.set(p, m);
    const prevByName = new Map(prev.config.connections.map((c) => [c.name, c]));
    this.good = next;
    this.states = statesOf(next);
    const drainUntil = Date.now() + next.config.shutdown.drainTimeoutSeconds * 1000;
    for (const [name, l] of [...this.listeners]) {
      if (this.states.has(name)) continue;
      this.listeners.delete(name);
      this.services.log.info({ connection: name }, 'connection removed: stopping its listener');
      void l.stop(drainUntil);
    }
    for (const c of next.config.connections) {
      const old = prevByName.get(c.name);
      const l = this.listeners.get(c.name);
      const same = old !== undefined && JSON.stringify(old) === JSON.stringify(c);
      const sameAddress = old !== undefined && old.protocol === c.protocol && old.listen.host === c.listen.host && old.listen.port === c.listen.port;
      if (l && (same || (l.followsReloads === true && sameAddress))) continue;
      if (l) {
        this.listeners.delete(c.name);
        this.draining.add(l);
        // Open sessions keep their config and end on their own; the port is free once stop() was called.
        void l.stop(Infinity).finally(() => this.draining.delete(l));
      }
      await this.start(c.name);
    }
    this.restartRequired = restartOnlyChanges(prev.config, next.config);
    setLevel(this.services.log, next.config.log.level);
  }

  readiness(): Readiness {
    const reasons: string[] = [];
    const rec = this.services.recorder.health();
    const missing = this.good.config.connections.filter((c) => !this.listeners.has(c.name)).map((c) => c.name);
    const degraded = this.watcher?.degraded();
    const details = {
      configHash: this.good.hash,
      listeners: Object.fromEntries([...this.listeners].map(([n, l]) => [n, { ...l.address, sessions: l.sessions() }])),
      recording: rec.ok ? 'ok' : `broken: ${rec.error ?? 'unknown'}`,
      ...(degraded ? { degraded: { reason: degraded.reason, errors: formatErrors(degraded.errors), since: degraded.since } } : {}),
      ...(this.restartRequired.length > 0 ? { restartRequired: this.restartRequired } : {}),
    };
    if (this.status !== 'ready') return { status: this.status, reasons: [`sidecar is ${this.status}`], details };
    if (missing.length > 0) reasons.push(`listeners not up: ${missing.join(', ')}`);
    if (!rec.ok) reasons.push(`recording is broken (${rec.error ?? 'unknown'}): commands are refused until it recovers`);
    if (reasons.length > 0) return { status: 'not-ready', reasons, details };
    if (degraded) return { status: 'degraded', reasons: [degraded.reason], details };
    if (this.restartRequired.length > 0) return { status: 'degraded', reasons: [`changed fields need a restart to apply: ${this.restartRequired.join(', ')}`], details };
    return { status: 'ready', reasons: [], details };
  }

  async stopAll(deadline: number): Promise<void> {
    const all = [...this.listeners.values(), ...this.draining];
    this.listeners.clear();
    await Promise.allSettled(all.map((l) => l.stop(deadline)));
  }
}

function configErrorLines(errors: readonly ConfigError[]): string[] {
  return formatErrors(errors);
}

/** Starts the sidecar; rejects with a StartupError on an invalid config or a missing protocol. */
export async function startSidecar(opts: StartOptions): Promise<Sidecar> {
  const env = opts.env ?? process.env;
  const loaded = loadConfig(opts.configPath);
  if (!loaded.ok) throw new StartupError(`the config ${opts.configPath} is invalid; nothing was started`, configErrorLines(loaded.errors));
  const config = loaded.config;
  const log = createLogger({ level: config.log.level, ...opts.log });
  const pod = podFromEnv(env);
  const protocols = { ...PROTOCOL_MODULES, ...opts.protocols };
  const modules = await loadProtocols(config, protocols);
  const metrics = createMetrics();
  const verifierRef = { current: buildVerifier(config, pod) };
  const audit = startAudit(config.identity, pod, log.child({ part: 'audit' }), opts.audit ?? {});
  let observerWarned = false;
  // Events and counters summarize what was recorded; the protocols record through this tap.
  const recorder = tapRecorder(await buildRecorder(config, pod, log), {
    ...(audit.identityName !== undefined ? { identityName: audit.identityName } : {}),
    observers: audit.observers,
    onObserverError: (e) => {
      if (!observerWarned) log.warn({ err: (e as Error).message }, 'an audit observer failed (the recording is unaffected)');
      observerWarned = true;
    },
  });
  const routes = new RouteTable();
  const verifier = verifierProxy(verifierRef);
  let approvals: ApprovalBackendImpl;
  try {
    approvals = buildApprovals(config, verifier, routes, log, pod);
  } catch (e) {
    await recorder.close('start-failed');
    await audit.close();
    throw e;
  }
  const services: SidecarServices = { verifier, recorder, metrics, log, admin: routes, approvals };
  const rt = new Runtime(loaded, modules, services, pod, protocols);
  let admin: AdminServer;
  let egress: RunningEgress | undefined;
  let relays: LoopbackRelays = NO_RELAYS;
  try {
    admin = await startAdminServer({ host: config.admin.host, port: config.admin.port, routes, readiness: () => rt.readiness(), metrics: () => metrics.render(), log });
    for (const c of config.connections) await rt.start(c.name);
    egress = await startEgressIfConfigured(config, loaded.hash, services, pod);
    // Transparent mode: ip6tables REDIRECT lands IPv6 dials on [::1]:<port>; relay them to the listeners.
    relays = await startLoopbackRelays(configRelayTargets(config), log.child({ part: 'interception' }));
  } catch (e) {
    await egress?.stop(Date.now());
    await relays.stop();
    await rt.stopAll(Date.now());
    await recorder.close('start-failed');
    await audit.close();
    throw e instanceof StartupError ? e : new StartupError(`the sidecar could not start: ${(e as Error).message}`);
  }
  log.info({ admin: admin.address, connections: config.connections.length, configHash: loaded.hash, pod: pod.name ?? null }, 'sidecar started');
  void verifierRef.current.warmUp().catch((e: unknown) => log.warn({ err: e }, 'issuer keys could not be fetched at start; tokens are checked when the keys are reachable'));
  rt.watcher = watchConfig({
    path: opts.configPath,
    initial: loaded,
    log,
    metric: (r) => {
      metrics.configReload(r);
      recordReload(r);
    },
    ...(opts.reload?.debounceMs !== undefined ? { debounceMs: opts.reload.debounceMs } : {}),
    ...(opts.reload?.pollIntervalMs !== undefined ? { pollIntervalMs: opts.reload.pollIntervalMs } : {}),
    onApply: async (next, prev) => {
      if (JSON.stringify(next.config.identity) !== JSON.stringify(prev.config.identity)) verifierRef.current = buildVerifier(next.config, pod);
      await rt.apply(next);
      egress?.update(next.config, next.hash);
      await relays.update(configRelayTargets(next.config));
    },
  });
  /** Every hot reload, good or refused, is a policy.reload line (and a PolicyReloaded/PolicyInvalid Event). */
  function recordReload(r: WatchResult): void {
    if (r === 'unchanged' || !rt.watcher) return;
    const hash = rt.watcher.current().hash;
    const bad = rt.watcher.degraded();
    const event = r === 'applied' ? { type: 'policy.reload' as const, ok: true, configHash: hash } : { type: 'policy.reload' as const, ok: false, configHash: hash, error: bad?.reason ?? 'invalid config' };
    recorder.record(event).catch((e: unknown) => log.warn({ err: (e as Error).message }, 'could not record the policy reload'));
  }
  rt.status = 'ready';
  let stopping: Promise<void> | undefined;
  return {
    admin,
    log,
    metrics,
    listeners: () => rt.listeners,
    readiness: () => rt.readiness(),
    config: () => rt.good.config,
    audit,
    egress: () => egress,
    reload: () => rt.watcher?.reload() ?? Promise.resolve('unchanged'),
    stop: (reason = 'shutdown') => {
      stopping ??= (async () => {
        rt.status = 'stopping';
        rt.watcher?.close();
        const deadline = Date.now() + rt.good.config.shutdown.drainTimeoutSeconds * 1000;
        log.info({ reason, drainTimeoutSeconds: rt.good.config.shutdown.drainTimeoutSeconds }, 'stopping: no new sessions; draining open ones');
        await Promise.all([rt.stopAll(deadline), egress?.stop(deadline)]);
        await relays.stop();
        await recorder.close(reason);
        await audit.close();
        await admin.close();
        log.info({ reason }, 'sidecar stopped');
      })();
      return stopping;
    },
  };
}
