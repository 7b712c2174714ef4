// The operator's composition root: API client, informers, identity controller, leader election, webhook server and TLS, plugins, admin server.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import pino, { type Logger } from 'pino';
import type { AgentIdentity } from './api/types.ts';
import { startAdminServer, DEFAULT_ADMIN_PORT, type AdminServer, type ReadyCheck } from './admin.ts';
import { watchCertDir } from './certs/files.ts';
import { startSelfManagedTls, type SelfManagedOptions } from './certs/self-managed.ts';
import type { CompileEnv, MountSpec } from './compile/index.ts';
import { CompileCache } from './controllers/compile-cache.ts';
import { allInformers, createIdentityInformers, IdentityController, type IdentityInformers } from './controllers/identity.ts';
import { Controller } from './kube/controller.ts';
import { FIELD_MANAGER, KubeClient, RESOURCES, resourcePath } from './kube/client.ts';
import { errText, Informer, type KubeObject } from './kube/informer.ts';
import { LeaderElector, RELEASE_TIMEOUT_MS, type LeaderCallbacks } from './kube/leader.ts';
import { OperatorMetrics } from './metrics.ts';
import type { OperatorContext, OperatorPlugin, OperatorPluginFactory } from './plugin.ts';
import { connectRoutes } from './server/connect-routes.ts';
import { podRoutes, type IdentityLookup } from './server/pod-routes.ts';
import { startWebhookServer, type TlsMaterial, type WebhookServer } from './server/webhook-server.ts';
import type { WebhookRoute } from './server/admission.ts';
import type { BuildOptions } from './webhooks/pod-mutate/build.ts';

export const DEFAULT_WEBHOOK_PORT = 9443;
export const DEFAULT_LEASE_NAME = 'chaperone-operator';
/** How long startup waits for the ServiceAccount issuer discovery before falling back to the compiler's defaults. */
const DISCOVERY_ATTEMPTS = 3;

/** Where the webhook serving certificate comes from. */
export type WebhookTlsSource =
  | { readonly kind: 'static'; readonly material: TlsMaterial }
  /** A mounted Secret (cert-manager): tls.crt, tls.key, ca.crt, hot-reloaded. */
  | { readonly kind: 'dir'; readonly dir: string }
  /** The operator's own CA in a Secret; caBundle patched into the webhook configurations. */
  | ({ readonly kind: 'self-managed' } & Omit<SelfManagedOptions, 'kubeConfig' | 'namespace' | 'log' | 'onChange'>);

export interface WebhookOptions {
  readonly host?: string;
  readonly port?: number;
  readonly tls: WebhookTlsSource;
  /** Sidecar image, native sidecars (the compiled mounts are added per identity). */
  readonly build?: Omit<BuildOptions, 'mounts' | 'configHash'>;
}

export interface LeaderElectionOptions {
  readonly leaseName?: string;
  /** This replica's identity in the Lease (default pod name + random suffix). */
  readonly identity?: string;
  readonly leaseDurationSeconds?: number;
  readonly renewIntervalMs?: number;
  readonly retryIntervalMs?: number;
}

export interface OperatorOptions {
  readonly kubeConfig: KubeConfig;
  /** Where the Lease, the webhook TLS Secret and the operator's own pods live (never injected). */
  readonly operatorNamespace: string;
  readonly log?: Logger;
  readonly metrics?: OperatorMetrics;
  /** false = this replica always leads (one replica, or tests). */
  readonly leaderElection?: false | LeaderElectionOptions;
  /** false = no webhook server (controllers only). */
  readonly webhook?: false | WebhookOptions;
  /** false = no admin server. */
  readonly admin?: false | { readonly host?: string; readonly port?: number };
  readonly plugins?: readonly OperatorPluginFactory[];
  /** Overrides what is read from the API server's ServiceAccount issuer discovery. */
  readonly compileEnv?: CompileEnv;
  /** Told the webhook's serving pair at start and on every rotation (the audit report server shares it). */
  readonly onWebhookTls?: (tls: TlsMaterial) => void;
  readonly resyncMs?: number;
  readonly watchTimeoutSeconds?: number;
  readonly concurrency?: number;
  /** Per-phase stop deadlines (ms); unset phases take DEFAULT_STOP_DEADLINES. */
  readonly stopDeadlines?: Partial<StopDeadlines>;
}

export interface RunningOperator {
  readonly client: KubeClient;
  readonly metrics: OperatorMetrics;
  readonly informers: IdentityInformers;
  readonly identityController: IdentityController;
  readonly compileEnv: CompileEnv;
  /** https://host:port of the webhook server, when it runs. */
  readonly webhookUrl: string | undefined;
  readonly webhook: WebhookServer | undefined;
  readonly adminUrl: string | undefined;
  readonly leaseIdentity: string;
  isLeader(): boolean;
  /** Informers synced and the webhook server listening. */
  ready(): boolean;
  /**
   * Graceful: stop leading (drain reconciles, release the Lease), stop plugins, close servers, stop
   * informers. Every phase has a deadline, so it always resolves; the report says which phase overran. Idempotent.
   */
  stop(): Promise<StopReport>;
}

/** The cluster's ServiceAccount issuer and JWKS from `/.well-known/openid-configuration` (what its projected tokens say). */
export async function discoverServiceAccountIssuer(client: KubeClient, log: Logger): Promise<CompileEnv> {
  for (let attempt = 1; attempt <= DISCOVERY_ATTEMPTS; attempt++) {
    try {
      const doc = await client.request<{ issuer?: string; jwks_uri?: string }>('GET', '/.well-known/openid-configuration');
      if (doc.issuer) return { serviceAccountIssuer: doc.issuer, ...(doc.jwks_uri ? { serviceAccountJwksUri: doc.jwks_uri } : {}) };
    } catch (err) {
      log.warn({ attempt, err: errText(err) }, 'reading the ServiceAccount issuer discovery failed');
    }
  }
  log.warn({}, 'no ServiceAccount issuer discovery: compiling with the default issuer; sidecars will refuse tokens if the cluster uses another (set --sa-issuer)');
  return {};
}

/** The compiled mounts per identity for the pod webhook: every replica compiles on demand, through the shared compile cache. */
class MountCache {
  constructor(private readonly informers: IdentityInformers, private readonly cache: CompileCache) {}

  mounts(identity: AgentIdentity): readonly MountSpec[] | undefined {
    const ns = identity.metadata.namespace ?? '';
    const r = this.cache.compile(identity, this.informers.maskingPolicies.list(ns), this.informers.approvalRules.list(ns));
    return r.ok ? r.mounts : undefined;
  }
}

function identityLookup(i: IdentityInformers, mounts: MountCache): IdentityLookup {
  return {
    identity: (ns, name) => i.identities.get(ns, name),
    identities: (ns) => i.identities.list(ns),
    // MaskingPolicy HMAC keys: only the compiled mounts name them.
    extraGuardedSecrets: (ns) => new Set(i.identities.list(ns).flatMap((id) => (mounts.mounts(id) ?? []).filter((m) => m.source === 'secret').map((m) => m.name))),
  };
}

interface Tls {
  readonly material: TlsMaterial;
  close(): void;
}

async function startTls(src: WebhookTlsSource, o: OperatorOptions, log: Logger, onChange: (t: TlsMaterial) => void): Promise<Tls> {
  if (src.kind === 'static') return { material: src.material, close: () => undefined };
  if (src.kind === 'dir') {
    const d = await watchCertDir({ dir: src.dir, log, onChange });
    return { material: d.current(), close: () => d.close() };
  }
  const { kind: _kind, ...rest } = src;
  const s = await startSelfManagedTls({ ...rest, kubeConfig: o.kubeConfig, namespace: o.operatorNamespace, log, onChange });
  return { material: s.current(), close: () => s.close() };
}

/** What startOperator needs of leadership: the Lease elector, or SoloLeader when leader election is off. */
interface Leadership {
  run(callbacks: LeaderCallbacks): void;
  stop(): Promise<void>;
  isLeader(): boolean;
}

/** Leader election off: this replica leads from start to stop. */
class SoloLeader implements Leadership {
  private leading = false;
  private readonly abort = new AbortController();
  private callbacks: LeaderCallbacks | undefined;
  private started: Promise<void> | undefined;

  constructor(private readonly metrics: OperatorMetrics) {}

  run(callbacks: LeaderCallbacks): void {
    this.callbacks = callbacks;
    this.leading = true;
    this.metrics.setLeader(true);
    this.started = Promise.resolve(callbacks.onStartedLeading(this.abort.signal));
  }

  async stop(): Promise<void> {
    if (!this.leading) return;
    this.abort.abort();
    await this.started?.catch(() => undefined);
    this.leading = false;
    this.metrics.setLeader(false);
    await this.callbacks?.onStoppedLeading();
  }

  isLeader(): boolean {
    return this.leading;
  }
}

/** Per-phase stop deadlines (ms). The defaults sum to 25 s: inside the kubelet's 30 s grace period, with room to exit. */
export interface StopDeadlines {
  /** Drain in-flight reconciles, then release the Lease (one GET + one PUT). */
  readonly leading: number;
  readonly plugins: number;
  /** In-flight admissions finish; idle keep-alive connections are closed at once. */
  readonly webhook: number;
  readonly informers: number;
  readonly admin: number;
}

export const DEFAULT_STOP_DEADLINES: StopDeadlines = { leading: 12_000, plugins: 5_000, webhook: 4_000, informers: 2_000, admin: 2_000 };

/** How one stop phase ended: `overran` = still running at its deadline (stop went on without it). */
export interface StopPhase {
  readonly name: keyof StopDeadlines;
  readonly ms: number;
  readonly outcome: 'done' | 'overran' | 'failed';
  readonly error?: string;
}

export interface StopReport {
  readonly ms: number;
  readonly phases: readonly StopPhase[];
  /** Every phase finished in time without error. */
  readonly clean: boolean;
}

/** Runs one phase against its deadline; never throws, so stop() always reaches its end. */
async function stopPhase(name: keyof StopDeadlines, deadlineMs: number, fn: () => Promise<void>, log: Logger): Promise<StopPhase> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const overran = new Promise<'overran'>((resolve) => {
    timer = setTimeout(() => resolve('overran'), deadlineMs);
  });
  let outcome: StopPhase['outcome'];
  let error: string | undefined;
  try {
    outcome = await Promise.race([fn().then(() => 'done' as const), overran]);
  } catch (err) {
    outcome = 'failed';
    error = errText(err);
  } finally {
    clearTimeout(timer);
  }
  const ms = Date.now() - started;
  if (outcome === 'overran') log.warn({ phase: name, deadlineMs }, `stop phase ${name} overran its deadline; going on without it (raise the deadline if this repeats)`);
  else if (outcome === 'failed') log.error({ phase: name, ms, err: error }, `stop phase ${name} failed; going on`);
  log.debug({ phase: name, ms, outcome }, 'stop phase');
  return { name, ms, outcome, ...(error !== undefined ? { error } : {}) };
}

/** The share of the leading phase left for the Lease release after the drain (RELEASE_TIMEOUT_MS and a margin). */
const RELEASE_BUDGET_MS = RELEASE_TIMEOUT_MS + 1_000;

function drainDeadlineMs(d: StopDeadlines): number {
  return Math.max(500, d.leading - RELEASE_BUDGET_MS);
}

/** Stops every controller (in-flight reconciles finish); returns the names of those still draining at the deadline. */
async function drainWithin(controllers: readonly { readonly name: string; stop(): Promise<void> }[], deadlineMs: number): Promise<string[]> {
  const pending = new Set(controllers.map((c) => c.name));
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, deadlineMs);
  });
  await Promise.race([
    Promise.all(controllers.map((c) => c.stop().finally(() => pending.delete(c.name)))),
    deadline,
  ]);
  clearTimeout(timer);
  return [...pending];
}

async function stopPlugins(plugins: readonly OperatorPlugin[], log: Logger): Promise<void> {
  for (const p of plugins) {
    try {
      await p.stop?.();
    } catch (err) {
      log.error({ plugin: p.name, err: errText(err) }, 'plugin stop failed');
    }
  }
}

interface Parts {
  readonly elector: Leadership;
  readonly plugins: readonly OperatorPlugin[];
  readonly webhook: WebhookServer | undefined;
  readonly tls: Tls | undefined;
  readonly informers: readonly Informer<KubeObject>[];
  readonly admin: AdminServer | undefined;
  readonly client: KubeClient;
  readonly log: Logger;
  readonly deadlines: StopDeadlines;
}

/** SIGTERM order: stop leading (drain reconciles, release the Lease), plugins, webhook server, informers, admin; each phase bounded. */
async function shutdown(p: Parts): Promise<StopReport> {
  p.log.info({}, 'shutting down');
  const started = Date.now();
  const d = p.deadlines;
  const phases: StopPhase[] = [
    await stopPhase('leading', d.leading, () => p.elector.stop(), p.log),
    await stopPhase('plugins', d.plugins, () => stopPlugins(p.plugins, p.log), p.log),
    await stopPhase('webhook', d.webhook, async () => {
      await p.webhook?.close();
      p.tls?.close();
    }, p.log),
    await stopPhase('informers', d.informers, async () => {
      await Promise.all(p.informers.map((i) => i.stop()));
    }, p.log),
    await stopPhase('admin', d.admin, async () => p.admin?.close(), p.log),
  ];
  // Also cuts whatever an overrun phase left in flight on the API client's sockets.
  p.client.close();
  const report: StopReport = { ms: Date.now() - started, phases, clean: phases.every((ph) => ph.outcome === 'done') };
  if (report.clean) p.log.info({ ms: report.ms }, 'stopped');
  else p.log.warn({ ms: report.ms, overran: phases.filter((ph) => ph.outcome !== 'done').map((ph) => ph.name) }, 'stopped, but some phases overran their deadline or failed (see the warnings above)');
  return report;
}

function observability(o: OperatorOptions): { log: Logger; metrics: OperatorMetrics } {
  return { log: o.log ?? pino({ name: 'chaperone-operator' }), metrics: o.metrics ?? new OperatorMetrics() };
}

async function startAdmin(o: OperatorOptions, metrics: OperatorMetrics, checks: () => ReadyCheck[]): Promise<AdminServer | undefined> {
  if (o.admin === false) return undefined;
  return startAdminServer({ host: o.admin?.host ?? '0.0.0.0', port: o.admin?.port ?? DEFAULT_ADMIN_PORT, metrics, checks });
}

function leaderElector(o: OperatorOptions, client: KubeClient, identity: string, log: Logger, metrics: OperatorMetrics): LeaderElector | undefined {
  const le = o.leaderElection;
  if (le === false || le === undefined) return undefined;
  return new LeaderElector({
    client, namespace: o.operatorNamespace, name: le.leaseName ?? DEFAULT_LEASE_NAME, identity, log,
    leaseDurationSeconds: le.leaseDurationSeconds, renewIntervalMs: le.renewIntervalMs, retryIntervalMs: le.retryIntervalMs,
    onLeaderChange: (l) => metrics.setLeader(l),
  });
}

interface WebhookParts {
  readonly server: WebhookServer;
  readonly tls: Tls;
}

async function startWebhooks(o: OperatorOptions, w: WebhookOptions, extraRoutes: readonly WebhookRoute[], deps: { client: KubeClient; informers: IdentityInformers; mounts: MountCache; log: Logger; metrics: OperatorMetrics }): Promise<WebhookParts> {
  const routes: WebhookRoute[] = [
    ...podRoutes({
      lookup: identityLookup(deps.informers, deps.mounts), operatorNamespace: o.operatorNamespace,
      build: (identity) => {
        const mounts = deps.mounts.mounts(identity);
        return { ...w.build, ...(mounts ? { mounts } : {}) };
      },
    }),
    // exec/attach: the pod is read per request (CONNECT carries only the options; few requests reach it, see the matchCondition).
    ...connectRoutes({ operatorNamespace: o.operatorNamespace, getPod: (namespace, name) => deps.client.get<V1Pod>(resourcePath(RESOURCES.pods, { namespace, name })) }),
    ...extraRoutes,
  ];
  const ref: { server?: WebhookServer } = {};
  const tls = await startTls(w.tls, o, deps.log, (t) => {
    ref.server?.setTls(t);
    o.onWebhookTls?.(t);
  });
  o.onWebhookTls?.(tls.material);
  const server = (ref.server = await startWebhookServer({ host: w.host ?? '0.0.0.0', port: w.port ?? DEFAULT_WEBHOOK_PORT, tls: tls.material, routes, log: deps.log, observe: deps.metrics.observeWebhook }));
  deps.log.info({ url: server.url, routes: routes.map((r) => r.path) }, 'webhook server listening');
  return { server, tls };
}

function leaseIdentity(o: OperatorOptions): string {
  const le = o.leaderElection;
  return (le && le.identity) || `${process.env.POD_NAME ?? hostname()}_${randomBytes(4).toString('hex')}`;
}

/** Starts everything; resolves once the informers have listed and the servers listen. */
export async function startOperator(o: OperatorOptions): Promise<RunningOperator> {
  const { log, metrics } = observability(o);
  const client = KubeClient.fromKubeConfig(o.kubeConfig, { log });
  const compileEnv: CompileEnv = { ...(await discoverServiceAccountIssuer(client, log)), ...o.compileEnv };
  log.info({ serviceAccountIssuer: compileEnv.serviceAccountIssuer, jwksUri: compileEnv.serviceAccountJwksUri }, 'compile environment');
  const informerOpts = { client, log, metrics, resyncMs: o.resyncMs, watchTimeoutSeconds: o.watchTimeoutSeconds };
  const informers = createIdentityInformers(informerOpts);
  const extraInformers: Informer<KubeObject>[] = [];
  const compileCache = new CompileCache(() => compileEnv);
  const identityController = new IdentityController({ client, informers, log: log.child({ controller: 'agentidentity' }), metrics, compileEnv, concurrency: o.concurrency, compileCache });
  const mountCache = new MountCache(informers, compileCache);

  const id = leaseIdentity(o);
  const elector: Leadership = leaderElector(o, client, id, log, metrics) ?? new SoloLeader(metrics);
  const isLeader = (): boolean => elector.isLeader();
  const pluginControllers: Controller[] = [];

  const ctx: OperatorContext = {
    kubeConfig: o.kubeConfig, client, log, metrics, operatorNamespace: o.operatorNamespace, fieldManager: FIELD_MANAGER, isLeader,
    identities: informers.identities,
    informer: <T extends KubeObject>(opts: Omit<ConstructorParameters<typeof Informer<T>>[0], 'client'>): Informer<T> => {
      const inf = new Informer<T>({ log, metrics, resyncMs: o.resyncMs, watchTimeoutSeconds: o.watchTimeoutSeconds, ...opts, client });
      extraInformers.push(inf as unknown as Informer<KubeObject>);
      inf.start();
      return inf;
    },
    controller: (opts) => {
      const c = new Controller({ ...opts, metrics, log: opts.log ?? log.child({ controller: opts.name }) });
      pluginControllers.push(c);
      return c;
    },
  };

  for (const inf of allInformers(informers)) inf.start();
  const plugins: OperatorPlugin[] = [];
  for (const f of o.plugins ?? []) plugins.push(await f(ctx));
  const everyInformer = (): Informer<KubeObject>[] => [...allInformers(informers), ...extraInformers];

  // Webhooks: every replica serves them, leader or not.
  const wh = o.webhook ? await startWebhooks(o, o.webhook, plugins.flatMap((p) => p.routes ?? []), { client, informers, mounts: mountCache, log, metrics }) : undefined;
  const webhook = wh?.server;
  const tls = wh?.tls;
  const checks = (): ReadyCheck[] => [
    ...everyInformer().map((i) => ({ name: `informer ${i.name}`, ready: () => i.hasSynced() })),
    ...(webhook ? [{ name: 'webhook server', ready: () => webhook.listening }] : []),
  ];
  const admin = await startAdmin(o, metrics, checks);

  const startLeading = async (signal: AbortSignal): Promise<void> => {
    await Promise.all(everyInformer().map((i) => i.waitForSync(signal)));
    if (signal.aborted) return;
    log.info({ identity: id }, 'leading: starting controllers');
    identityController.start();
    for (const p of plugins) {
      try {
        await p.startLeading?.(signal);
      } catch (err) {
        log.error({ plugin: p.name, err: errText(err) }, 'plugin failed to start leading');
      }
    }
  };
  const deadlines: StopDeadlines = { ...DEFAULT_STOP_DEADLINES, ...o.stopDeadlines };
  const stopLeading = async (): Promise<void> => {
    const controllers = [{ name: 'agentidentity', stop: () => identityController.stop() }, ...pluginControllers.splice(0)];
    const stuck = await drainWithin(controllers, drainDeadlineMs(deadlines));
    if (stuck.length === 0) log.info({ identity: id }, 'stopped leading: controllers drained');
    else log.warn({ identity: id, stuck }, 'stopped leading: some reconciles were still running at the drain deadline; releasing the Lease anyway (reconciles are idempotent, the next leader redoes them)');
  };

  elector.run({ onStartedLeading: startLeading, onStoppedLeading: stopLeading });
  await Promise.all(everyInformer().map((i) => i.waitForSync()));

  let stopping: Promise<StopReport> | undefined;
  const stop = (): Promise<StopReport> => shutdown({ elector, plugins, webhook, tls, informers: everyInformer(), admin, client, log, deadlines });
  return {
    client, metrics, informers, identityController, compileEnv, webhook,
    webhookUrl: webhook?.url, adminUrl: admin?.url, leaseIdentity: id, isLeader,
    ready: () => checks().every((c) => c.ready()),
    stop: () => (stopping ??= stop()),
  };
}
