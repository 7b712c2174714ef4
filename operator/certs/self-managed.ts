// Self-managed webhook TLS: the CA and serving pair live in a Secret shared by every replica; caBundle is patched and re-patched on drift.
import { AdmissionregistrationV1Api, ApiException, CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import type { TlsMaterial, WebhookLog } from '../server/webhook-server.ts';
import { patchCaBundles, type BundleTargets } from './ca-bundle.ts';
import {
  DEFAULT_CA_RENEW_BEFORE_MS,
  DEFAULT_CA_VALIDITY_MS,
  DEFAULT_SERVING_RENEW_BEFORE_MS,
  DEFAULT_SERVING_VALIDITY_MS,
  apply,
  checkPlanOptions,
  fromSecretData,
  plan,
  toSecretData,
  type PlanOptions,
  type WebhookTls,
} from './plan.ts';

/** Drift of caBundle and another replica's rotation are noticed within this. */
export const DEFAULT_CHECK_INTERVAL_MS = 60_000;
export const DEFAULT_SECRET_NAME = 'chaperone-webhook-tls';
/** Optimistic-concurrency retries when replicas write the Secret at the same time. */
const MAX_CONFLICTS = 5;

export interface SelfManagedOptions {
  readonly kubeConfig: KubeConfig;
  /** Where the Secret lives (the operator's namespace). */
  readonly namespace: string;
  readonly secretName?: string;
  /** The webhook Service: its names `<service>.<ns>.svc` and `<service>.<ns>.svc.cluster.local` go into the SAN. */
  readonly service?: string;
  readonly extraDnsNames?: readonly string[];
  readonly ips?: readonly string[];
  /** Configurations whose webhooks get caBundle (all their webhooks, or only `webhooks` when given). */
  readonly targets: BundleTargets;
  readonly caValidityMs?: number;
  readonly caRenewBeforeMs?: number;
  readonly servingValidityMs?: number;
  readonly servingRenewBeforeMs?: number;
  readonly checkIntervalMs?: number;
  readonly log: WebhookLog;
  /** Called with the serving pair at start and whenever it changes (wire to WebhookServer.setTls). */
  readonly onChange?: (tls: TlsMaterial) => void;
  /** The clock rotation decisions read (tests jump it ahead); certificates are always dated by the real clock. */
  readonly now?: () => number;
}

export interface SelfManagedTls {
  /** The serving pair now (cert, key, ca = the bundle). */
  current(): TlsMaterial;
  /** base64 of the CA bundle, for a webhook configuration's caBundle. */
  caBundle(): string;
  /** One pass: re-read the Secret, rotate what is due, re-patch caBundle where it drifted. Resolves true when the serving pair changed. */
  check(): Promise<boolean>;
  /** Stops the periodic check. */
  close(): void;
}

function planOptions(o: SelfManagedOptions): PlanOptions {
  const svc = o.service ? [`${o.service}.${o.namespace}.svc`, `${o.service}.${o.namespace}.svc.cluster.local`] : [];
  const p: PlanOptions = {
    commonName: o.service ? `${o.service}.${o.namespace}.svc` : (o.extraDnsNames?.[0] ?? o.ips?.[0] ?? 'chaperone-webhook'),
    dnsNames: [...new Set([...svc, ...(o.extraDnsNames ?? [])])],
    ips: [...new Set(o.ips ?? [])],
    caValidityMs: o.caValidityMs ?? DEFAULT_CA_VALIDITY_MS,
    caRenewBeforeMs: o.caRenewBeforeMs ?? DEFAULT_CA_RENEW_BEFORE_MS,
    servingValidityMs: o.servingValidityMs ?? DEFAULT_SERVING_VALIDITY_MS,
    servingRenewBeforeMs: o.servingRenewBeforeMs ?? DEFAULT_SERVING_RENEW_BEFORE_MS,
  };
  checkPlanOptions(p);
  return p;
}

function status(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

function material(t: WebhookTls): TlsMaterial {
  return { cert: t.serving.certPem, key: t.serving.keyPem, ca: t.bundle };
}

class Store {
  constructor(
    private readonly core: CoreV1Api,
    private readonly namespace: string,
    private readonly name: string,
  ) {}

  async read(): Promise<V1Secret | undefined> {
    try {
      return await this.core.readNamespacedSecret({ name: this.name, namespace: this.namespace });
    } catch (err) {
      if (status(err) === 404) return undefined;
      throw new Error(`reading Secret ${this.namespace}/${this.name} for the webhook certificate failed: ${(err as Error).message}; the operator needs get/create/update on secrets in its namespace`, { cause: err });
    }
  }

  /** undefined = someone else wrote first (409): re-read and plan again. */
  async write(existing: V1Secret | undefined, t: WebhookTls): Promise<V1Secret | undefined> {
    const body: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: { ...existing?.metadata, managedFields: undefined, name: this.name, namespace: this.namespace, labels: { ...existing?.metadata?.labels, 'app.kubernetes.io/name': 'chaperone', 'app.kubernetes.io/component': 'webhook-tls' } },
      data: toSecretData(t),
    };
    try {
      // replace carries metadata.resourceVersion, so two replicas rotating at once cannot both win.
      return existing ? await this.core.replaceNamespacedSecret({ name: this.name, namespace: this.namespace, body }) : await this.core.createNamespacedSecret({ namespace: this.namespace, body });
    } catch (err) {
      if (status(err) === 409) return undefined;
      throw new Error(`writing Secret ${this.namespace}/${this.name} for the webhook certificate failed: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** Reads, plans, writes until the Secret holds good material (create-if-absent; on 409 the winner's material is used). */
async function converge(store: Store, p: PlanOptions, now: () => number, log: WebhookLog): Promise<WebhookTls> {
  for (let i = 0; i < MAX_CONFLICTS; i += 1) {
    const secret = await store.read();
    const stored = fromSecretData(secret?.data);
    const decision = plan(stored, p, now());
    if (decision.action === 'keep' && stored) return stored;
    if (decision.action === 'keep') continue;
    const next = await apply(stored, decision, p, Date.now());
    const written = await store.write(secret, next);
    if (written) {
      log.info({ action: decision.action, reason: decision.reason }, 'webhook TLS updated in its Secret');
      return next;
    }
    log.info({ action: decision.action }, 'another replica updated the webhook TLS Secret first; using theirs');
  }
  throw new Error(`the webhook TLS Secret kept changing under ${MAX_CONFLICTS} attempts to update it; another writer is fighting over it`);
}

/** Ensures the Secret, patches caBundle, reports the pair, and keeps checking on an interval. */
export async function startSelfManagedTls(o: SelfManagedOptions): Promise<SelfManagedTls> {
  const p = planOptions(o);
  const now = o.now ?? Date.now;
  const store = new Store(o.kubeConfig.makeApiClient(CoreV1Api), o.namespace, o.secretName ?? DEFAULT_SECRET_NAME);
  const admission = o.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  let tls = await converge(store, p, now, o.log);
  await patchCaBundles(admission, o.targets, tls.bundle, o.log);
  o.onChange?.(material(tls));
  let running: Promise<boolean> | undefined;
  const check = async (): Promise<boolean> => {
    const next = await converge(store, p, now, o.log);
    const changed = next.serving.certPem !== tls.serving.certPem || next.serving.keyPem !== tls.serving.keyPem;
    const bundleChanged = next.bundle !== tls.bundle;
    tls = next;
    // Bundle first: a new CA must be trusted before anyone serves a certificate it signed.
    await patchCaBundles(admission, o.targets, tls.bundle, o.log);
    if (changed || bundleChanged) o.onChange?.(material(tls));
    return changed;
  };
  const serialized = (): Promise<boolean> => (running ??= check().finally(() => (running = undefined)));
  const timer = setInterval(() => {
    serialized().catch((err: unknown) => o.log.error({ err }, 'webhook TLS check failed; keeping the current certificate and retrying at the next interval'));
  }, o.checkIntervalMs ?? DEFAULT_CHECK_INTERVAL_MS);
  timer.unref();
  return {
    current: () => material(tls),
    caBundle: () => Buffer.from(tls.bundle).toString('base64'),
    check: serialized,
    close: () => clearInterval(timer),
  };
}
