// Keeps caBundle of the named webhook configurations equal to the CA bundle: a JSON patch per configuration that drifted, guarded by `test` ops.
import { ApiException, setHeaderOptions, PatchStrategy, type AdmissionregistrationV1Api, type AdmissionregistrationV1WebhookClientConfig } from '@kubernetes/client-node';
import type { WebhookLog } from '../server/webhook-server.ts';

export interface BundleTargets {
  readonly mutating?: readonly string[];
  readonly validating?: readonly string[];
  /** Only these webhook names inside the configurations (default: every webhook in them). */
  readonly webhooks?: readonly string[];
}

interface Hooked {
  readonly webhooks?: { readonly name: string; readonly clientConfig: AdmissionregistrationV1WebhookClientConfig }[];
}

type Op = { op: 'test' | 'add' | 'replace'; path: string; value: string };

/** JSON patch ops for the webhooks whose caBundle differs from `bundleB64` (empty when none did). */
export function caBundleOps(config: Hooked, bundleB64: string, only?: readonly string[]): Op[] {
  const ops: Op[] = [];
  (config.webhooks ?? []).forEach((w, i) => {
    if (only && !only.includes(w.name)) return;
    if (w.clientConfig.caBundle === bundleB64) return;
    // The test op makes the patch fail rather than hit another webhook if the list was reordered meanwhile.
    ops.push({ op: 'test', path: `/webhooks/${i}/name`, value: w.name });
    ops.push({ op: w.clientConfig.caBundle === undefined ? 'add' : 'replace', path: `/webhooks/${i}/clientConfig/caBundle`, value: bundleB64 });
  });
  return ops;
}

const JSON_PATCH = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);

function code(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

async function one(kind: 'mutating' | 'validating', name: string, api: AdmissionregistrationV1Api, bundleB64: string, t: BundleTargets): Promise<number> {
  const config: Hooked = kind === 'mutating' ? await api.readMutatingWebhookConfiguration({ name }) : await api.readValidatingWebhookConfiguration({ name });
  const ops = caBundleOps(config, bundleB64, t.webhooks);
  if (ops.length === 0) return 0;
  if (kind === 'mutating') await api.patchMutatingWebhookConfiguration({ name, body: ops }, JSON_PATCH);
  else await api.patchValidatingWebhookConfiguration({ name, body: ops }, JSON_PATCH);
  return ops.length / 2;
}

/**
 * Patches every drifted caBundle; returns how many webhooks were patched. A missing configuration (not installed yet) or a
 * lost race is logged and left to the next check; any other failure is logged too, so the caller's loop keeps running.
 */
export async function patchCaBundles(api: AdmissionregistrationV1Api, t: BundleTargets, bundlePem: string, log: WebhookLog): Promise<number> {
  const b64 = Buffer.from(bundlePem).toString('base64');
  const jobs = [...(t.mutating ?? []).map((n) => ['mutating', n] as const), ...(t.validating ?? []).map((n) => ['validating', n] as const)];
  let patched = 0;
  for (const [kind, name] of jobs) {
    try {
      const n = await one(kind, name, api, b64, t);
      if (n > 0) log.info({ configuration: `${kind}/${name}`, webhooks: n }, 'caBundle patched (it was missing or had drifted)');
      patched += n;
    } catch (err) {
      const c = code(err);
      const why = c === 404 ? 'it does not exist yet' : c === 409 || c === 422 ? 'it changed while patching' : `the API call failed (${(err as Error).message})`;
      log.warn({ configuration: `${kind}/${name}`, code: c }, `caBundle not patched: ${why}; retrying at the next check (the operator needs get/patch on ${kind}webhookconfigurations)`);
    }
  }
  return patched;
}
