// List + watch one resource into a local store keyed namespace/name: relist on 410 Gone, periodic resync, jittered backoff, replay-safe events.
import type { Logger } from 'pino';
import { backoffDelay, DEFAULT_BACKOFF, sleep, type BackoffOptions } from './backoff.ts';
import { isStatus, KubeApiError, resourcePath, type KubeClient, type ResourceRef, type WatchEvent } from './client.ts';
import type { KubeMetrics } from './metrics.ts';

/** What the informer needs of an object. */
export interface KubeObject {
  metadata?: { name?: string | undefined; namespace?: string | undefined; resourceVersion?: string | undefined } | undefined;
}

export const DEFAULT_RESYNC_MS = 5 * 60_000;
/** Server-side watch timeout: the API server closes the watch, we re-watch from the last resourceVersion. */
export const DEFAULT_WATCH_TIMEOUT_SECONDS = 300;
/** A watch shorter than this that saw no event counts as a failure (backoff), so a misbehaving server cannot make us spin. */
const MIN_WATCH_MS = 1_000;

export interface InformerHandler<T> {
  onAdd?(obj: T): void;
  /** Also called as onUpdate(obj, obj) on every resync. */
  onUpdate?(old: T, obj: T): void;
  onDelete?(obj: T): void;
}

export interface InformerOptions<T> {
  readonly client: KubeClient;
  readonly resource: ResourceRef;
  /** For logs and metrics (default the plural). */
  readonly name?: string;
  /** Watch one namespace; default all. */
  readonly namespace?: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  /** PartialObjectMetadata only: the store holds no spec/data (Secrets, Pods). */
  readonly metadataOnly?: boolean;
  readonly resyncMs?: number;
  readonly watchTimeoutSeconds?: number;
  readonly backoff?: BackoffOptions;
  readonly log?: Logger;
  readonly metrics?: KubeMetrics;
  /** Drops objects before they reach the store (e.g. only ConfigMaps we labelled). */
  readonly filter?: (obj: T) => boolean;
}

export interface InformerStats {
  lists: number;
  watches: number;
  /** Relists because the watch's resourceVersion had expired (410 Gone). */
  gone: number;
  errors: number;
  /** Watch events dropped because the store already had that resourceVersion (or a newer one). */
  replayed: number;
  events: number;
}

export function objectKey(obj: KubeObject): string {
  const ns = obj.metadata?.namespace ?? '';
  return ns === '' ? (obj.metadata?.name ?? '') : `${ns}/${obj.metadata?.name ?? ''}`;
}

/** Key of `namespace/name` (or `name` for a cluster-scoped object). */
export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return i < 0 ? { namespace: '', name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

/**
 * resourceVersions are opaque by contract, but etcd's are decimal integers: when both are, an older
 * one is a replay (a watch resumed from a stale version) and must not roll the store back.
 */
export function isNotNewer(incoming: string | undefined, stored: string | undefined): boolean {
  if (incoming === undefined || stored === undefined) return false;
  if (incoming === stored) return true;
  if (/^\d+$/.test(incoming) && /^\d+$/.test(stored)) return BigInt(incoming) <= BigInt(stored);
  return false;
}

class Gone extends Error {}

export class Informer<T extends KubeObject> {
  readonly stats: InformerStats = { lists: 0, watches: 0, gone: 0, errors: 0, replayed: 0, events: 0 };
  readonly name: string;
  private readonly store = new Map<string, T>();
  private readonly handlers: InformerHandler<T>[] = [];
  private readonly abort = new AbortController();
  private readonly path: string;
  private resourceVersion: string | undefined;
  private synced = false;
  private readonly syncWaiters: (() => void)[] = [];
  private running: Promise<void> | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private watchAbort: AbortController | undefined;

  constructor(private readonly o: InformerOptions<T>) {
    this.name = o.name ?? o.resource.plural;
    this.path = resourcePath(o.resource, { namespace: o.namespace });
  }

  addHandler(h: InformerHandler<T>): void {
    this.handlers.push(h);
  }

  start(): void {
    if (this.running) return;
    this.running = this.loop();
    const every = this.o.resyncMs ?? DEFAULT_RESYNC_MS;
    if (every > 0) {
      this.resyncTimer = setInterval(() => this.resync(), every);
      this.resyncTimer.unref();
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    await this.running;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves after the first complete list (or when `signal` aborts). */
  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => {
      this.syncWaiters.push(resolve);
      signal?.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  get(namespace: string, name: string): T | undefined {
    return this.store.get(namespace === '' ? name : `${namespace}/${name}`);
  }

  getByKey(key: string): T | undefined {
    return this.store.get(key);
  }

  list(namespace?: string): T[] {
    const all = [...this.store.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata?.namespace === namespace);
  }

  keys(): string[] {
    return [...this.store.keys()];
  }

  /** onUpdate(obj, obj) for every stored object: level-triggered controllers catch anything missed. */
  resync(): void {
    for (const obj of this.store.values()) this.emit('update', obj, obj);
  }

  /** Test hook: feed a watch event as if the server sent it (replays must leave the store unchanged). */
  injectEvent(e: WatchEvent): void {
    this.onEvent(e);
  }

  /**
   * Test hook: ends the current watch and resumes from `resourceVersion` (an old one makes the API
   * server answer 410 Gone, exercising the relist path); undefined = relist now.
   */
  restartWatch(resourceVersion?: string): void {
    this.resourceVersion = resourceVersion;
    this.watchAbort?.abort();
  }

  private async loop(): Promise<void> {
    const signal = this.abort.signal;
    let attempt = 0;
    while (!signal.aborted) {
      try {
        // A watch the server ends at once with nothing in it would spin: back off as after an error.
        if (await this.watchOnce(signal)) attempt = 0;
        else await sleep(backoffDelay(attempt++, this.o.backoff ?? DEFAULT_BACKOFF), signal);
      } catch (err) {
        if (signal.aborted) break;
        if (this.watchAbort?.signal.aborted) continue;
        const wait = this.failed(err, attempt++);
        if (wait > 0) await sleep(wait, signal);
      }
    }
  }

  /** (Re)lists when needed, then watches until the server ends the watch; false = it ended at once, empty. */
  private async watchOnce(signal: AbortSignal): Promise<boolean> {
    if (this.resourceVersion === undefined) await this.relist();
    this.stats.watches += 1;
    const started = Date.now();
    const eventsBefore = this.stats.events;
    const own = (this.watchAbort = new AbortController());
    await this.o.client.watch(this.path, {
      resourceVersion: this.resourceVersion ?? '', timeoutSeconds: this.o.watchTimeoutSeconds ?? DEFAULT_WATCH_TIMEOUT_SECONDS,
      labelSelector: this.o.labelSelector, fieldSelector: this.o.fieldSelector, metadataOnly: this.o.metadataOnly,
      signal: AbortSignal.any([signal, own.signal]),
    }, (e) => this.onEvent(e));
    return own.signal.aborted || this.stats.events > eventsBefore || Date.now() - started >= MIN_WATCH_MS;
  }

  /** Counts and logs a failure; returns how long to wait (0: relist at once, after 410 Gone). */
  private failed(err: unknown, attempt: number): number {
    if (err instanceof Gone || isStatus(err, 410)) {
      this.stats.gone += 1;
      this.o.metrics?.informerRelist(this.name, 'gone');
      this.o.log?.info({ informer: this.name }, 'watch resourceVersion expired (410 Gone); relisting');
      this.resourceVersion = undefined;
      // The first relist is immediate; 410 again right after a relist backs off.
      return attempt === 0 ? 0 : backoffDelay(attempt - 1, this.o.backoff ?? DEFAULT_BACKOFF);
    }
    this.stats.errors += 1;
    this.o.metrics?.informerRelist(this.name, 'error');
    const wait = backoffDelay(attempt, this.o.backoff ?? DEFAULT_BACKOFF);
    this.o.log?.warn({ informer: this.name, err: errText(err), retryInMs: wait }, 'list/watch failed; retrying');
    // An API error may mean our version is no good any more; a cut connection resumes from it.
    if (err instanceof KubeApiError) this.resourceVersion = undefined;
    return wait;
  }

  /** A fresh list, diffed against the store: only real changes reach the handlers. */
  private async relist(): Promise<void> {
    this.stats.lists += 1;
    const list = await this.o.client.list<T>(this.path, {
      labelSelector: this.o.labelSelector, fieldSelector: this.o.fieldSelector, metadataOnly: this.o.metadataOnly, signal: this.abort.signal,
    });
    const seen = new Set<string>();
    for (const obj of list.items) {
      if (this.o.filter && !this.o.filter(obj)) continue;
      const key = objectKey(obj);
      seen.add(key);
      this.upsert(key, obj);
    }
    for (const [key, old] of [...this.store]) {
      if (!seen.has(key)) {
        this.store.delete(key);
        this.emit('delete', old, old);
      }
    }
    this.resourceVersion = list.metadata.resourceVersion;
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  private upsert(key: string, obj: T): void {
    const old = this.store.get(key);
    if (old && isNotNewer(obj.metadata?.resourceVersion, old.metadata?.resourceVersion)) {
      this.stats.replayed += 1;
      return;
    }
    this.store.set(key, obj);
    this.emit(old ? 'update' : 'add', old ?? obj, obj);
  }

  private onEvent(e: WatchEvent): void {
    this.stats.events += 1;
    if (e.type === 'ERROR') {
      const code = (e.object as { code?: number }).code;
      if (code === 410) throw new Gone('watch resourceVersion expired');
      throw new Error(`watch error event: ${JSON.stringify(e.object).slice(0, 300)}`);
    }
    const obj = e.object as T;
    const rv = obj.metadata?.resourceVersion;
    if (e.type === 'BOOKMARK') {
      this.resourceVersion = rv ?? this.resourceVersion;
      return;
    }
    const key = objectKey(obj);
    if (e.type === 'DELETED') {
      const old = this.store.get(key);
      if (old) {
        this.store.delete(key);
        this.emit('delete', old, old);
      }
    } else if (!this.o.filter || this.o.filter(obj)) this.upsert(key, obj);
    else if (this.store.has(key)) {
      // It no longer passes the filter: for us it is gone.
      const old = this.store.get(key) as T;
      this.store.delete(key);
      this.emit('delete', old, old);
    }
    if (rv !== undefined) this.resourceVersion = rv;
  }

  private emit(kind: 'add' | 'update' | 'delete', old: T, obj: T): void {
    for (const h of this.handlers) {
      try {
        if (kind === 'add') h.onAdd?.(obj);
        else if (kind === 'update') h.onUpdate?.(old, obj);
        else h.onDelete?.(obj);
      } catch (err) {
        this.o.log?.error({ informer: this.name, err: errText(err) }, 'informer handler threw; the event is dropped for this handler');
      }
    }
  }
}

export function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
