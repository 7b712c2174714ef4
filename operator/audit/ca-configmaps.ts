// Leader: keeps one ConfigMap per AgentIdentity holding the report server's CA (mounted into the sidecar only), re-applied when the CA rotates; sweeps the ledgers of deleted identities.
//
// Why per identity, labelled like the compiled ConfigMap: the identity controller re-checks an
// identity's references when a ConfigMap with its label changes, so an identity that was compiled
// before its CA ConfigMap existed becomes Ready as soon as it does; and deleting the identity deletes
// it (ownerReference, and the controller's own cleanup of labelled ConfigMaps).
import type { Logger } from 'pino';
import type { AgentIdentity } from '../api/types.ts';
import { LABEL_MANAGED_BY, MANAGED_BY } from '../controllers/identity-desired.ts';
import { isStatus, RESOURCES, resourcePath, type KubeClient } from '../kube/client.ts';
import type { Informer, KubeObject } from '../kube/informer.ts';
import { ownerReference } from '../kube/status.ts';
import type { OperatorContext } from '../plugin.ts';
import { LABEL_IDENTITY } from '../webhooks/pod-mutate/layout.ts';
import { ANNOTATION_LEDGER_IDENTITY, AUDIT_CA_KEY, auditCaConfigMapName, LABEL_LEDGER, ledgerConfigMapName } from './names.ts';
import type { TlsRelay } from './tls-relay.ts';

export const CA_FIELD_MANAGER = 'chaperone-operator-audit';
export const CA_COMPONENT = 'audit-ca';
/** Selects the CA ConfigMaps (a metadata-only informer notices edits and deletions by others). */
export const CA_CONFIGMAP_SELECTOR = `app.kubernetes.io/component=${CA_COMPONENT}`;

/** The CA ConfigMap of one identity (pure). */
export function desiredCaConfigMap(identity: AgentIdentity, caPem: string): Record<string, unknown> {
  const name = identity.metadata.name ?? '';
  return {
    apiVersion: 'v1', kind: 'ConfigMap',
    metadata: {
      name: auditCaConfigMapName(name), namespace: identity.metadata.namespace ?? '',
      labels: { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_IDENTITY]: name, 'app.kubernetes.io/component': CA_COMPONENT },
      ownerReferences: [ownerReference({ apiVersion: identity.apiVersion, kind: identity.kind, metadata: identity.metadata }, { controller: false, blockOwnerDeletion: false })],
    },
    data: { [AUDIT_CA_KEY]: caPem },
  };
}

type CaObject = KubeObject & { metadata?: { namespace?: string; name?: string; resourceVersion?: string; labels?: Record<string, string> } };

interface Deps {
  readonly ctx: Pick<OperatorContext, 'client' | 'controller' | 'operatorNamespace' | 'informer'>;
  readonly identities: Informer<AgentIdentity>;
  readonly relay: TlsRelay;
  readonly log: Pick<Logger, 'info' | 'warn'>;
}

/** Started on the leader; the handlers only enqueue, so they are harmless on other replicas. */
export class CaDistributor {
  private controller: ReturnType<OperatorContext['controller']> | undefined;
  /** `ns/name` → what we applied last and the resourceVersion it got (an unchanged, untouched ConfigMap costs no write). */
  private readonly applied = new Map<string, { want: string; rv: string }>();
  private readonly caMaps: Informer<CaObject>;
  private warnedNoCa = false;

  constructor(private readonly d: Deps) {
    // Someone else edited or deleted a CA ConfigMap (an agent's kubernetes connection, a person): put it back.
    this.caMaps = d.ctx.informer<CaObject>({ resource: RESOURCES.configMaps, name: 'configmaps-audit-ca', metadataOnly: true, labelSelector: CA_CONFIGMAP_SELECTOR });
    const changed = (cm: CaObject): void => {
      const key = `${cm.metadata?.namespace ?? ''}/${cm.metadata?.labels?.[LABEL_IDENTITY] ?? ''}`;
      if (this.applied.get(key)?.rv !== cm.metadata?.resourceVersion) this.controller?.enqueue(key);
    };
    this.caMaps.addHandler({ onUpdate: (old, cm) => old !== cm && changed(cm), onDelete: (cm) => this.controller?.enqueue(`${cm.metadata?.namespace ?? ''}/${cm.metadata?.labels?.[LABEL_IDENTITY] ?? ''}`) });
    d.identities.addHandler({
      onAdd: (id) => this.enqueue(id),
      onUpdate: (old, id) => old.metadata.uid !== id.metadata.uid && this.enqueue(id),
      onDelete: (id) => this.enqueue(id),
    });
    d.relay.subscribe(() => {
      for (const id of d.identities.list()) this.enqueue(id);
    });
  }

  private enqueue(id: AgentIdentity): void {
    this.controller?.enqueue(`${id.metadata.namespace ?? ''}/${id.metadata.name ?? ''}`);
  }

  start(): void {
    this.applied.clear();
    this.controller = this.d.ctx.controller({ name: 'audit-ca', reconcile: (key) => this.reconcile(key) });
    this.controller.start();
    for (const id of this.d.identities.list()) this.enqueue(id);
    void this.sweepLedgers().catch((e: unknown) => this.d.log.warn({ err: (e as Error).message }, 'could not sweep the report ledgers of deleted identities'));
  }

  stop(): void {
    this.controller = undefined;
  }

  private async reconcile(key: string): Promise<void> {
    const slash = key.indexOf('/');
    const [ns, name] = [key.slice(0, slash), key.slice(slash + 1)];
    const id = this.d.identities.get(ns, name);
    if (!id || id.metadata.deletionTimestamp !== undefined) {
      this.applied.delete(key);
      // The CA ConfigMap goes with the identity (ownerReference; the identity controller's cleanup); the ledger is ours.
      await deleteIfThere(this.d.ctx.client, resourcePath(RESOURCES.configMaps, { namespace: this.d.ctx.operatorNamespace, name: ledgerConfigMapName(ns, name) }));
      return;
    }
    const tls = this.d.relay.current();
    const ca = tls?.ca;
    if (!ca) {
      if (tls && !this.warnedNoCa) {
        this.warnedNoCa = true;
        this.d.log.warn({}, 'the webhook certificate came without a CA (ca.crt): sidecars cannot verify the report server, so identities stay not Ready (missing chaperone.audit-ca.* ConfigMap); use an Issuer that sets ca.crt, or run with --no-audit');
      }
      return;
    }
    const want = `${id.metadata.uid ?? ''}|${ca}`;
    const last = this.applied.get(key);
    const cached = this.caMaps.get(ns, auditCaConfigMapName(name));
    if (last?.want === want && cached?.metadata?.resourceVersion === last.rv) return;
    const out = await this.d.ctx.client.apply<CaObject>(desiredCaConfigMap(id, ca), RESOURCES.configMaps, { fieldManager: CA_FIELD_MANAGER, force: true });
    this.applied.set(key, { want, rv: out.metadata?.resourceVersion ?? '' });
    this.d.log.info({ identity: key, configMap: auditCaConfigMapName(name) }, 'report server CA written for the identity\'s sidecars');
  }

  /** Ledgers whose identity is gone (deleted while no leader ran). */
  private async sweepLedgers(): Promise<void> {
    const l = await this.d.ctx.client.list<{ metadata?: { name?: string; annotations?: Record<string, string> } }>(
      resourcePath(RESOURCES.configMaps, { namespace: this.d.ctx.operatorNamespace }), { labelSelector: `${LABEL_LEDGER}=true` });
    for (const cm of l.items) {
      const owner = cm.metadata?.annotations?.[ANNOTATION_LEDGER_IDENTITY] ?? '';
      const slash = owner.indexOf('/');
      if (slash < 0 || this.d.identities.get(owner.slice(0, slash), owner.slice(slash + 1))) continue;
      await deleteIfThere(this.d.ctx.client, resourcePath(RESOURCES.configMaps, { namespace: this.d.ctx.operatorNamespace, name: cm.metadata?.name ?? '' }));
    }
  }
}

async function deleteIfThere(client: KubeClient, path: string): Promise<void> {
  try {
    await client.delete(path);
  } catch (e) {
    if (!isStatus(e, 404)) throw e;
  }
}
