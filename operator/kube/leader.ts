// Leader election on a coordination.k8s.io/v1 Lease (client-go's algorithm): acquire, renew, lose on a missed deadline, release on stop.
import type { Logger } from 'pino';
import { sleep } from './backoff.ts';
import { isStatus, resourcePath, RESOURCES, type KubeClient } from './client.ts';
import { errText } from './informer.ts';

export const DEFAULT_LEASE_DURATION_SECONDS = 15;
export const DEFAULT_RENEW_INTERVAL_MS = 5_000;
export const DEFAULT_RETRY_INTERVAL_MS = 2_000;
/** The release (GET + PUT) on stop, in all: past it the Lease simply expires (leaseDurationSeconds) and a standby takes over then. */
export const RELEASE_TIMEOUT_MS = 3_000;

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string; labels?: Record<string, string> };
  spec?: LeaseSpec;
}

export interface LeaderElectorOptions {
  readonly client: KubeClient;
  readonly namespace: string;
  /** The Lease's name, shared by every replica. */
  readonly name: string;
  /** This replica (pod name + a random suffix): unique among the candidates. */
  readonly identity: string;
  readonly leaseDurationSeconds?: number;
  readonly renewIntervalMs?: number;
  /** How often a standby tries to acquire. */
  readonly retryIntervalMs?: number;
  readonly log?: Logger;
  /** 1 while leading, 0 otherwise. */
  readonly onLeaderChange?: (leading: boolean) => void;
}

export interface LeaderCallbacks {
  /** Leader-only work; `signal` aborts when leadership ends. */
  onStartedLeading(signal: AbortSignal): Promise<void> | void;
  /** Awaited before the Lease is released or given up, so no two leaders run at once. */
  onStoppedLeading(): Promise<void> | void;
}

/** metav1.MicroTime: RFC 3339 with microseconds. */
function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  private leading = false;
  private leadAbort: AbortController | undefined;
  private readonly stopAbort = new AbortController();
  private running: Promise<void> | undefined;
  private callbacks: LeaderCallbacks | undefined;
  /** What we last saw of the Lease and when (our clock): expiry is judged by observation time, not the holder's clock. */
  private observed: { key: string; at: number } | undefined;
  private readonly path: string;
  private readonly durationMs: number;

  constructor(private readonly o: LeaderElectorOptions) {
    this.path = resourcePath(RESOURCES.leases, { namespace: o.namespace, name: o.name });
    this.durationMs = (o.leaseDurationSeconds ?? DEFAULT_LEASE_DURATION_SECONDS) * 1000;
  }

  isLeader(): boolean {
    return this.leading;
  }

  get identity(): string {
    return this.o.identity;
  }

  /** Starts campaigning; returns at once (the loop runs until stop()). */
  run(callbacks: LeaderCallbacks): void {
    if (this.running) return;
    this.callbacks = callbacks;
    this.running = this.loop();
  }

  /** Stops leading (awaiting onStoppedLeading), releases the Lease so a standby takes over now, and ends the loop. */
  async stop(): Promise<void> {
    this.stopAbort.abort();
    await this.running;
  }

  private async loop(): Promise<void> {
    const signal = this.stopAbort.signal;
    while (!signal.aborted) {
      if (!(await this.tryAcquireOrRenew())) {
        await sleep(this.o.retryIntervalMs ?? DEFAULT_RETRY_INTERVAL_MS, signal);
        continue;
      }
      await this.lead(signal);
    }
  }

  private async lead(signal: AbortSignal): Promise<void> {
    this.leading = true;
    this.leadAbort = new AbortController();
    this.o.onLeaderChange?.(true);
    this.o.log?.info({ lease: `${this.o.namespace}/${this.o.name}`, identity: this.o.identity }, 'became leader');
    const started = Promise.resolve()
      .then(() => this.callbacks?.onStartedLeading(this.leadAbort?.signal ?? signal))
      .catch((err: unknown) => this.o.log?.error({ err: errText(err) }, 'leader work failed to start'));
    let lastRenew = Date.now();
    const deadline = this.renewDeadlineMs();
    while (!signal.aborted) {
      await sleep(this.o.renewIntervalMs ?? DEFAULT_RENEW_INTERVAL_MS, signal);
      if (signal.aborted) break;
      if (await this.tryAcquireOrRenew()) lastRenew = Date.now();
      else if (!this.stillHolder() || Date.now() - lastRenew > deadline) {
        this.o.log?.warn({ lease: `${this.o.namespace}/${this.o.name}` }, 'lost the Lease (renewal failed or another replica holds it); stopping leader work');
        break;
      }
    }
    // Abort first: leader work still starting (waiting for a sync, a plugin's startLeading) ends now instead of holding stop.
    this.leadAbort?.abort();
    await started;
    await this.stepDown();
    if (signal.aborted) await this.release();
  }

  /** client-go's renew deadline: leadership is given up when no renewal succeeded for this long. */
  private renewDeadlineMs(): number {
    return Math.round(this.durationMs * 2 / 3);
  }

  /** Per Lease request: one that outlives half the renew deadline cannot help keep the Lease anyway. */
  private requestTimeoutMs(): number {
    return Math.max(1_000, Math.round(this.renewDeadlineMs() / 2));
  }

  private async stepDown(): Promise<void> {
    this.leadAbort?.abort();
    try {
      await this.callbacks?.onStoppedLeading();
    } catch (err) {
      this.o.log?.error({ err: errText(err) }, 'stopping leader work failed');
    }
    this.leading = false;
    this.o.onLeaderChange?.(false);
  }

  private holderSeen: string | undefined;

  private stillHolder(): boolean {
    return this.holderSeen === undefined || this.holderSeen === this.o.identity;
  }

  /** One attempt: create, take over an expired or released Lease, or renew our own. Conflicts and errors → false. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date();
    // Bounded, and cut by stop(): a renew in flight must not hold the shutdown for the client's 30 s timeout.
    const req = { timeoutMs: this.requestTimeoutMs(), signal: this.stopAbort.signal };
    try {
      const lease = await this.o.client.get<Lease>(this.path, req);
      if (!lease) {
        await this.o.client.request('POST', resourcePath(RESOURCES.leases, { namespace: this.o.namespace }), { ...req, body: this.desired(undefined, now) });
        this.holderSeen = this.o.identity;
        return true;
      }
      const spec = lease.spec ?? {};
      this.holderSeen = spec.holderIdentity;
      this.observe(spec);
      const mine = spec.holderIdentity === this.o.identity;
      if (!mine && (spec.holderIdentity ?? '') !== '' && !this.expired(spec)) return false;
      await this.o.client.request('PUT', this.path, { ...req, body: this.desired(lease, now) });
      this.holderSeen = this.o.identity;
      return true;
    } catch (err) {
      if (this.stopAbort.signal.aborted) return false;
      if (!isStatus(err, 409)) this.o.log?.warn({ lease: `${this.o.namespace}/${this.o.name}`, err: errText(err) }, 'Lease request failed');
      return false;
    }
  }

  private observe(spec: LeaseSpec): void {
    const key = `${spec.holderIdentity ?? ''}|${spec.renewTime ?? ''}`;
    if (this.observed?.key !== key) this.observed = { key, at: Date.now() };
  }

  private expired(spec: LeaseSpec): boolean {
    const duration = (spec.leaseDurationSeconds ?? DEFAULT_LEASE_DURATION_SECONDS) * 1000;
    return (this.observed?.at ?? 0) + duration < Date.now();
  }

  private desired(lease: Lease | undefined, now: Date): Lease {
    const spec = lease?.spec ?? {};
    const takeover = spec.holderIdentity !== this.o.identity;
    return {
      apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
      metadata: { name: this.o.name, namespace: this.o.namespace, ...(lease?.metadata.resourceVersion ? { resourceVersion: lease.metadata.resourceVersion } : {}) },
      spec: {
        holderIdentity: this.o.identity,
        leaseDurationSeconds: this.durationMs / 1000,
        acquireTime: takeover || !spec.acquireTime ? microTime(now) : spec.acquireTime,
        renewTime: microTime(now),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (lease && takeover ? 1 : 0),
      },
    };
  }

  /** Gives the Lease up (holder empty, 1 s) so a standby acquires at its next retry. Only if it is still ours. */
  private async release(): Promise<void> {
    // Not the stop signal (already aborted): one budget for both requests, so a slow API server cannot hold the shutdown.
    const req = { timeoutMs: RELEASE_TIMEOUT_MS, signal: AbortSignal.timeout(RELEASE_TIMEOUT_MS) };
    try {
      const lease = await this.o.client.get<Lease>(this.path, req);
      if (!lease || lease.spec?.holderIdentity !== this.o.identity) return;
      const spec: LeaseSpec = { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(new Date()) };
      await this.o.client.request('PUT', this.path, { ...req, body: { ...lease, spec } });
      this.o.log?.info({ lease: `${this.o.namespace}/${this.o.name}` }, 'released the Lease');
    } catch (err) {
      this.o.log?.warn({ err: errText(err) }, 'releasing the Lease failed; a standby takes over when it expires');
    }
  }
}
