// The operator's webhooks on the test control plane: a static serving certificate, the two webhook configurations scoped to one namespace, and a wait until admission really calls them.
import type { V1Pod } from '@kubernetes/client-node';
import { createCa, issueServing } from '../../operator/certs/pki.ts';
import type { WebhookTlsSource } from '../../operator/main.ts';
import { mutatingWebhookConfiguration, validatingWebhookConfiguration } from '../../operator/manifests/webhooks.ts';
import { SIDECAR_CONTAINER_NAME } from '../../operator/webhooks/pod-mutate/layout.ts';
import { eventually } from '../env/wait.ts';
import type { ControlPlane } from './control-plane.ts';

const ADMISSION = '/apis/admissionregistration.k8s.io/v1';
const DAY_MS = 86_400_000;

export interface StaticWebhookTls {
  /** For `webhook.tls` in the operator options. */
  readonly tls: WebhookTlsSource;
  /** The CA that signed the serving certificate: the webhook configurations' caBundle. */
  readonly caPem: string;
}

/** A one-day CA and a serving certificate for 127.0.0.1/localhost (the API server calls the webhook on loopback). */
export async function staticWebhookTls(commonName = 'chaperone-test-ca'): Promise<StaticWebhookTls> {
  const ca = await createCa({ commonName, validityMs: DAY_MS });
  const serving = await issueServing(ca, { commonName: 'chaperone-webhook', dnsNames: ['localhost'], ips: ['127.0.0.1'], validityMs: DAY_MS });
  return { tls: { kind: 'static', material: { cert: serving.certPem, key: serving.keyPem, ca: ca.certPem } }, caPem: ca.certPem };
}

export interface RegisterWebhooksOptions {
  /** The webhook server's https URL (a 0.0.0.0 host is rewritten to 127.0.0.1). */
  readonly url: string;
  readonly caPem: string;
  readonly operatorNamespace: string;
  /** Only this namespace's objects are sent to the webhooks, so a shared control plane is not disturbed. */
  readonly namespace: string;
  /** Register the ApprovalRequest webhooks too (default false). */
  readonly approvals?: boolean;
  /** Configuration names (default chaperone-{mutating,validating}-<namespace>). */
  readonly names?: { readonly mutating: string; readonly validating: string };
}

export interface RegisteredWebhooks {
  /** Deletes both configurations (idempotent). */
  unregister(): Promise<void>;
}

async function applyObject(cp: ControlPlane, path: string, obj: unknown): Promise<void> {
  const r = await cp.request('admin', 'PATCH', `${path}?fieldManager=chaperone-test&force=true`, obj, { contentType: 'application/apply-patch+yaml' });
  if (r.status !== 200 && r.status !== 201) throw new Error(`applying ${path} failed: ${r.status} ${r.text.slice(0, 300)}`);
}

/** Applies the mutating and validating webhook configurations the chart would install, scoped to one namespace. */
export async function registerWebhooks(cp: ControlPlane, o: RegisterWebhooksOptions): Promise<RegisteredWebhooks> {
  const names = o.names ?? { mutating: `chaperone-mutating-${o.namespace}`, validating: `chaperone-validating-${o.namespace}` };
  const mo = {
    client: { url: o.url.replace('0.0.0.0', '127.0.0.1') }, operatorNamespace: o.operatorNamespace, caBundle: Buffer.from(o.caPem).toString('base64'),
    approvals: o.approvals ?? false, mutatingName: names.mutating, validatingName: names.validating,
    scope: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [o.namespace] }] },
  };
  await applyObject(cp, `${ADMISSION}/mutatingwebhookconfigurations/${names.mutating}`, mutatingWebhookConfiguration(mo));
  await applyObject(cp, `${ADMISSION}/validatingwebhookconfigurations/${names.validating}`, validatingWebhookConfiguration(mo));
  return {
    async unregister() {
      for (const [kind, name] of [['mutatingwebhookconfigurations', names.mutating], ['validatingwebhookconfigurations', names.validating]] as const) {
        await cp.request('admin', 'DELETE', `${ADMISSION}/${kind}/${name}`).catch(() => undefined);
      }
    },
  };
}

/** Webhook configurations reach the admission chain asynchronously: dry-run a labelled probe Pod until it comes back with the sidecar. */
export async function waitForInjection(cp: ControlPlane, probe: V1Pod): Promise<void> {
  const ns = probe.metadata?.namespace ?? 'default';
  let last = '';
  await eventually(async () => {
    const r = await cp.request<V1Pod>('admin', 'POST', `/api/v1/namespaces/${ns}/pods?dryRun=All`, probe);
    last = `${r.status} ${r.text.slice(0, 300)}`;
    return r.status === 201 && r.body.spec?.initContainers?.some((c) => c.name === SIDECAR_CONTAINER_NAME) ? true : undefined;
  }, { what: () => `the mutating webhook to inject ${probe.metadata?.name ?? 'the probe'} (last answer: ${last})` });
}
