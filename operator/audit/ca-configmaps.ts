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
import type { Informer } from '../kube/informer.ts';
import { ownerReference } from '../kube/status.ts';
import type { OperatorContext } from '../plugin.ts';
import { LABEL_IDENTITY } from '../webhooks/pod-mutate/layout.ts';
import { ANNOTATION_LEDGER_IDENTITY, AUDIT_CA_KEY, auditCaConfigMapName, LABEL_LEDGER, ledgerConfigMapName } from './names.ts';
import type { TlsRelay } from './tls-relay.ts';

export const CA_FIELD_MANAGER = 'chaperone-operator-audit';

/** The CA ConfigMap of one identity (pure). */
export function desiredCaConfigMap(identity: AgentIdentity, caPem: string): Record<string, unknown> {
  const name = identity.metadata.name ?? '';
  return {
    apiVersion: 'v1', kind: 'ConfigMap',
    metadata: {
      name: auditCaConfigMapName(name), namespace: identity.metadata.namespace ?? '',
      labels: { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_IDENTITY]: name, 'app.kubernetes.io/component': 'audit-ca' },
      ownerReferences: [ownerReference({ apiVersion: identity.apiVersion, kind: identity.kind, metadata: identity.metadata }, { controller: false, blockOwnerDeletion: false })],
    },
    data: { [AUDIT_CA_KEY]: caPem },
  };
}

interface Deps {
  readonly ctx: Pick<OperatorContext, 'client' | 'controller' | 'operatorNamespace'>;
  readonly identities: Informer<AgentIdentity>;
  readonly relay: TlsRelay;
  readonly log: Pick<Logger, 'info' | 'warn'>;
}

/** Started on the leader; the handlers only enqueue, so they are harmless on other replicas. */
export class CaDistributor {
  private controller: ReturnType<OperatorContext['controller']> | undefined;
  /** `ns/name` → the CA applied last (an unchanged CA costs no write). */
  private readonly applied = new Map<string, string>();

  constructor(private readonly d: Deps) {
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
    const ca = this.d.relay.current()?.ca;
    if (!ca) return;
    if (this.applied.get(key) === `${id.metadata.uid ?? ''}|${ca}`) return;
    await this.d.ctx.client.apply(desiredCaConfigMap(id, ca), RESOURCES.configMaps, { fieldManager: CA_FIELD_MANAGER, force: true });
    this.applied.set(key, `${id.metadata.uid ?? ''}|${ca}`);
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
