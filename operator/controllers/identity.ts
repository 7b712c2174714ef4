// The AgentIdentity controller: compile each identity with the policies that select it, check its references, apply its ConfigMap, write its status.
import type { Logger } from 'pino';
import type { AgentIdentity, AgentIdentityStatus, ApprovalRule, MaskingPolicy } from '../api/types.ts';
import { selectsIdentity, type CompileEnv } from '../compile/index.ts';
import { CompileCache } from './compile-cache.ts';
import { applyObject } from '../kube/apply.ts';
import { resourcePath, RESOURCES, type KubeClient } from '../kube/client.ts';
import { Controller } from '../kube/controller.ts';
import { Informer, objectKey, splitKey, type KubeObject } from '../kube/informer.ts';
import type { KubeMetrics } from '../kube/metrics.ts';
import { patchStatus } from '../kube/status.ts';
import { LABEL_IDENTITY } from '../webhooks/pod-mutate/layout.ts';
import {
  checkReferences, configMapNameFor, countGuardedPods, desiredConfigMap, desiredStatus, identitiesSelectedBy, MANAGED_BY, LABEL_MANAGED_BY,
  MANAGED_CONFIGMAP_SELECTOR, referencedSecrets, statusUnchanged, type IdentityOutcome, type KeyLookup,
} from './identity-desired.ts';

export const CONTROLLER_NAME = 'agentidentity';
export const DEFAULT_IDENTITY_CONCURRENCY = 8;

/** Metadata as the metadata-only informers hold it. */
export interface MetaObject extends KubeObject {
  metadata?: {
    name?: string; namespace?: string; resourceVersion?: string; uid?: string; generation?: number;
    labels?: Record<string, string>; annotations?: Record<string, string>; deletionTimestamp?: string; ownerReferences?: { uid: string }[];
  };
}

/** The informers the controller reads; they run on every replica (webhooks read identities too). */
export interface IdentityInformers {
  readonly identities: Informer<AgentIdentity>;
  readonly maskingPolicies: Informer<MaskingPolicy>;
  readonly approvalRules: Informer<ApprovalRule>;
  /** Metadata only: the operator never caches Secret data. */
  readonly secrets: Informer<MetaObject>;
  /** Our ConfigMaps (managed-by label), metadata only. */
  readonly configMaps: Informer<MetaObject>;
  /** Labelled pods, metadata only (the injected annotation is in metadata). */
  readonly pods: Informer<MetaObject>;
}

export interface InformerFactoryOptions {
  readonly client: KubeClient;
  readonly log?: Logger;
  readonly metrics?: KubeMetrics;
  readonly resyncMs?: number;
  readonly watchTimeoutSeconds?: number;
}

export function createIdentityInformers(o: InformerFactoryOptions): IdentityInformers {
  const common = { client: o.client, log: o.log, metrics: o.metrics, resyncMs: o.resyncMs, watchTimeoutSeconds: o.watchTimeoutSeconds };
  return {
    identities: new Informer<AgentIdentity>({ ...common, resource: RESOURCES.agentIdentities }),
    maskingPolicies: new Informer<MaskingPolicy>({ ...common, resource: RESOURCES.maskingPolicies }),
    approvalRules: new Informer<ApprovalRule>({ ...common, resource: RESOURCES.approvalRules }),
    secrets: new Informer<MetaObject>({ ...common, resource: RESOURCES.secrets, metadataOnly: true }),
    configMaps: new Informer<MetaObject>({ ...common, resource: RESOURCES.configMaps, name: 'configmaps-managed', metadataOnly: true, labelSelector: MANAGED_CONFIGMAP_SELECTOR }),
    pods: new Informer<MetaObject>({ ...common, resource: RESOURCES.pods, name: 'pods-labelled', metadataOnly: true, labelSelector: LABEL_IDENTITY }),
  };
}

export function allInformers(i: IdentityInformers): Informer<KubeObject>[] {
  return [i.identities, i.maskingPolicies, i.approvalRules, i.secrets, i.configMaps, i.pods] as Informer<KubeObject>[];
}

export interface IdentityControllerOptions {
  readonly client: KubeClient;
  readonly informers: IdentityInformers;
  readonly log: Logger;
  readonly metrics: KubeMetrics;
  /** The cluster's ServiceAccount issuer and JWKS (from its discovery document), the approvals backend. */
  readonly compileEnv: CompileEnv;
  readonly concurrency?: number;
  /** Shared with the pod webhook's mount lookup (default: a cache of its own). */
  readonly compileCache?: CompileCache;
}

function keyOf(namespace: string | undefined, name: string | undefined): string {
  return `${namespace ?? ''}/${name ?? ''}`;
}

function keysOf(obj: { data?: Record<string, unknown>; binaryData?: Record<string, unknown> } | undefined): Set<string> | undefined {
  if (!obj) return undefined;
  return new Set([...Object.keys(obj.data ?? {}), ...Object.keys(obj.binaryData ?? {})]);
}

/** Handlers are wired once; they enqueue only while this replica leads (the controller exists). */
export class IdentityController {
  private controller: Controller | undefined;
  /** namespace/secret → identity keys whose compiled config names it. */
  private readonly secretIndex = new Map<string, Set<string>>();
  private readonly secretsOf = new Map<string, string[]>();
  /** ConfigMap key → what we last applied (skip a no-op apply unless someone else changed it). */
  private readonly applied = new Map<string, { rv: string; hash: string; owner: string }>();
  /** namespace/secret → its key names at a resourceVersion (names only, never values). */
  private readonly secretKeyCache = new Map<string, { rv: string; keys: ReadonlySet<string> }>();
  /** Identity key → resourceVersion our own status patch produced (its watch echo needs no reconcile). */
  private readonly ownWrites = new Map<string, string>();

  readonly compileCache: CompileCache;

  constructor(private readonly o: IdentityControllerOptions) {
    this.compileCache = o.compileCache ?? new CompileCache(() => o.compileEnv);
    this.wire();
  }

  /** Leader only: reconcile every identity, sweep orphaned ConfigMaps, then follow changes. */
  start(): void {
    if (this.controller) return;
    this.controller = new Controller({
      name: CONTROLLER_NAME, concurrency: this.o.concurrency ?? DEFAULT_IDENTITY_CONCURRENCY, metrics: this.o.metrics, log: this.o.log,
      reconcile: (key) => this.reconcile(key),
    });
    this.controller.start();
    for (const id of this.o.informers.identities.list()) this.enqueue(objectKey(id));
    for (const cm of this.o.informers.configMaps.list()) this.enqueue(keyOf(cm.metadata?.namespace, cm.metadata?.labels?.[LABEL_IDENTITY]));
  }

  async stop(): Promise<void> {
    const c = this.controller;
    this.controller = undefined;
    await c?.stop();
  }

  idle(): Promise<void> {
    return this.controller?.idle() ?? Promise.resolve();
  }

  get running(): boolean {
    return this.controller !== undefined;
  }

  enqueue(key: string): void {
    if (!key.endsWith('/')) this.controller?.enqueue(key);
  }

  private wire(): void {
    const i = this.o.informers;
    i.identities.addHandler({
      onAdd: (id) => this.enqueue(objectKey(id)),
      onUpdate: (old, id) => {
        const key = objectKey(id);
        // The echo of our own status write changes nothing we compile from.
        if (old !== id && this.ownWrites.get(key) === id.metadata.resourceVersion && old.metadata.generation === id.metadata.generation
          && JSON.stringify(old.metadata.labels ?? {}) === JSON.stringify(id.metadata.labels ?? {})) return;
        this.enqueue(key);
      },
      onDelete: (id) => this.enqueue(objectKey(id)),
    });
    const fanOut = (objs: (MaskingPolicy | ApprovalRule | undefined)[]): void => {
      const ns = objs.find((o) => o)?.metadata.namespace;
      for (const k of identitiesSelectedBy(objs, i.identities.list(ns), selectsIdentity)) this.enqueue(k);
    };
    for (const inf of [i.maskingPolicies, i.approvalRules] as Informer<MaskingPolicy | ApprovalRule>[]) {
      inf.addHandler({ onAdd: (p) => fanOut([p]), onUpdate: (old, p) => fanOut(old === p ? [p] : [old, p]), onDelete: (p) => fanOut([p]) });
    }
    const secretChanged = (s: MetaObject): void => {
      if (!i.secrets.get(s.metadata?.namespace ?? '', s.metadata?.name ?? '')) this.secretKeyCache.delete(keyOf(s.metadata?.namespace, s.metadata?.name));
      for (const k of this.secretIndex.get(keyOf(s.metadata?.namespace, s.metadata?.name)) ?? []) this.enqueue(k);
    };
    i.secrets.addHandler({ onAdd: secretChanged, onUpdate: (old, s) => old !== s && secretChanged(s), onDelete: secretChanged });
    const cmChanged = (cm: MetaObject): void => this.enqueue(keyOf(cm.metadata?.namespace, cm.metadata?.labels?.[LABEL_IDENTITY]));
    // The echo of our own apply (same resourceVersion as it returned) needs no reconcile; anything else does.
    const ownApply = (cm: MetaObject): boolean => this.applied.get(objectKey(cm))?.rv === cm.metadata?.resourceVersion;
    i.configMaps.addHandler({ onAdd: (cm) => !ownApply(cm) && cmChanged(cm), onUpdate: (old, cm) => old !== cm && !ownApply(cm) && cmChanged(cm), onDelete: cmChanged });
    const podChanged = (p: MetaObject): void => this.enqueue(keyOf(p.metadata?.namespace, p.metadata?.labels?.[LABEL_IDENTITY]));
    i.pods.addHandler({ onAdd: podChanged, onUpdate: (old, p) => { if (old !== p) { podChanged(old); podChanged(p); } }, onDelete: podChanged });
  }

  /** Level-triggered and idempotent: an unchanged identity costs no write. */
  async reconcile(key: string): Promise<void> {
    const { namespace, name } = splitKey(key);
    const id = this.o.informers.identities.get(namespace, name);
    if (!id || id.metadata.deletionTimestamp !== undefined) return this.removed(namespace, name);
    const outcome = await this.compile(id);
    const podsGuarded = countGuardedPods(this.o.informers.pods.list(namespace), namespace, name);
    const status = desiredStatus(id, outcome, podsGuarded);
    if (statusUnchanged(id.status, status)) return;
    const updated = await patchStatus<AgentIdentity>(this.o.client, RESOURCES.agentIdentities, namespace, name, status);
    if (updated.metadata.resourceVersion !== undefined) this.ownWrites.set(key, updated.metadata.resourceVersion);
    this.o.log.info({ identity: key, ready: outcome.kind === 'ready', configHash: status.configHash, podsGuarded }, outcome.kind === 'ready' ? 'identity compiled' : 'identity invalid');
  }

  private async compile(id: AgentIdentity): Promise<IdentityOutcome> {
    const namespace = id.metadata.namespace ?? '';
    const key = objectKey(id);
    const result = this.compileCache.compile(id, this.o.informers.maskingPolicies.list(namespace), this.o.informers.approvalRules.list(namespace));
    if (!result.ok) {
      this.index(key, namespace, this.secretsOf.get(key) ?? []);
      return { kind: 'invalid', reason: 'CompileError', problems: result.errors.map((e) => `${e.path}: ${e.message}`) };
    }
    this.index(key, namespace, referencedSecrets(result.mounts));
    const problems = await checkReferences(namespace, result.mounts, this.lookup(namespace));
    if (problems.length > 0) return { kind: 'invalid', reason: 'MissingReference', problems: problems.map((p) => p.message) };
    const cm = desiredConfigMap(id, result);
    await this.applyConfigMap(cm);
    return { kind: 'ready', configMapName: cm.metadata.name, hash: result.hash, maskingPolicies: result.maskingPolicies, approvalRules: result.approvalRules, warnings: result.warnings };
  }

  private async applyConfigMap(cm: ReturnType<typeof desiredConfigMap>): Promise<void> {
    const cmKey = keyOf(cm.metadata.namespace, cm.metadata.name);
    const cached = this.o.informers.configMaps.getByKey(cmKey);
    const last = this.applied.get(cmKey);
    const hash = cm.metadata.annotations['chaperone.dev/config-hash'] ?? '';
    const owner = cm.metadata.ownerReferences[0]?.uid ?? '';
    if (cached && last && cached.metadata?.resourceVersion === last.rv && last.hash === hash && last.owner === owner) return;
    const out = await applyObject<MetaObject>(this.o.client, RESOURCES.configMaps, cm);
    this.applied.set(cmKey, { rv: out.metadata?.resourceVersion ?? '', hash, owner });
  }

  /**
   * Reads only which keys exist: values are dropped at once and never cached. A Secret's key names
   * are remembered per resourceVersion (the metadata-only informer says when it changed), so a
   * fan-out over many identities sharing a Secret does not GET it once per identity.
   */
  private lookup(namespace: string): KeyLookup {
    const seen = new Map<string, ReadonlySet<string> | undefined>();
    return async (source, name) => {
      const k = `${source}/${name}`;
      if (seen.has(k)) return seen.get(k);
      const keys = name === '' ? undefined : source === 'secret' ? await this.secretKeys(namespace, name) : await this.fetchKeys(RESOURCES.configMaps, namespace, name);
      seen.set(k, keys);
      return keys;
    };
  }

  private async secretKeys(namespace: string, name: string): Promise<ReadonlySet<string> | undefined> {
    const key = keyOf(namespace, name);
    const rv = this.o.informers.secrets.get(namespace, name)?.metadata?.resourceVersion;
    const cached = this.secretKeyCache.get(key);
    if (rv !== undefined && cached?.rv === rv) return cached.keys;
    const obj = await this.o.client.get<{ metadata?: { resourceVersion?: string }; data?: Record<string, unknown> }>(resourcePath(RESOURCES.secrets, { namespace, name }));
    const keys = keysOf(obj);
    if (obj?.metadata?.resourceVersion !== undefined && keys) this.secretKeyCache.set(key, { rv: obj.metadata.resourceVersion, keys });
    else this.secretKeyCache.delete(key);
    return keys;
  }

  private async fetchKeys(r: typeof RESOURCES.configMaps, namespace: string, name: string): Promise<ReadonlySet<string> | undefined> {
    return keysOf(await this.o.client.get<{ data?: Record<string, unknown>; binaryData?: Record<string, unknown> }>(resourcePath(r, { namespace, name })));
  }

  private index(identityKey: string, namespace: string, secrets: readonly string[]): void {
    for (const s of this.secretsOf.get(identityKey) ?? []) this.secretIndex.get(keyOf(namespace, s))?.delete(identityKey);
    for (const s of secrets) {
      const k = keyOf(namespace, s);
      let set = this.secretIndex.get(k);
      if (!set) this.secretIndex.set(k, (set = new Set()));
      set.add(identityKey);
    }
    if (secrets.length > 0) this.secretsOf.set(identityKey, [...secrets]);
    else this.secretsOf.delete(identityKey);
  }

  /**
   * The identity is gone: delete the ConfigMaps we labelled for it. ownerReferences do this on real
   * clusters; without a garbage collector (or if it lags) this does. Confirmed with a GET first, so a
   * stale cache never deletes a live identity's config.
   */
  private async removed(namespace: string, name: string): Promise<void> {
    const key = keyOf(namespace, name);
    this.index(key, namespace, []);
    this.ownWrites.delete(key);
    const live = await this.o.client.get<AgentIdentity>(resourcePath(RESOURCES.agentIdentities, { namespace, name }));
    if (live && live.metadata.deletionTimestamp === undefined) return;
    const ours = this.o.informers.configMaps.list(namespace).filter((cm) => cm.metadata?.labels?.[LABEL_IDENTITY] === name && cm.metadata.labels[LABEL_MANAGED_BY] === MANAGED_BY);
    for (const cm of ours) {
      const cmName = cm.metadata?.name ?? configMapNameFor(name);
      const deleted = await this.o.client.delete(resourcePath(RESOURCES.configMaps, { namespace, name: cmName }), {
        apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: cm.metadata?.uid },
      });
      this.applied.delete(keyOf(namespace, cmName));
      if (deleted) this.o.log.info({ identity: key, configMap: cmName }, 'deleted the ConfigMap of a deleted identity');
    }
  }
}

export type { AgentIdentityStatus };
