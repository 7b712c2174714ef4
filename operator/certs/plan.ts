// What the webhook's stored TLS material needs now: keep, renew the serving certificate, rotate the CA (decision pure; issuing is async).
import { certFacts, createCa, issueServing, keyMatches, pairMatches, splitPemBundle, MS_PER_DAY, type KeyPairPem } from './pki.ts';

/** The Secret's keys: the serving pair, the current CA with its key, and the bundle the webhook configurations trust. */
export const KEY_TLS_CRT = 'tls.crt';
export const KEY_TLS_KEY = 'tls.key';
export const KEY_CA_CRT = 'ca.crt';
export const KEY_CA_KEY = 'ca.key';
export const KEY_CA_BUNDLE = 'ca-bundle.crt';

export const DEFAULT_CA_VALIDITY_MS = 5 * 365 * MS_PER_DAY;
export const DEFAULT_CA_RENEW_BEFORE_MS = 365 * MS_PER_DAY;
export const DEFAULT_SERVING_VALIDITY_MS = 90 * MS_PER_DAY;
export const DEFAULT_SERVING_RENEW_BEFORE_MS = 30 * MS_PER_DAY;

export interface WebhookTls {
  readonly ca: KeyPairPem;
  readonly serving: KeyPairPem;
  /** PEM bundle for caBundle: the current CA first, then older CAs that have not expired (rotation overlap). */
  readonly bundle: string;
}

export interface PlanOptions {
  readonly commonName: string;
  readonly dnsNames: readonly string[];
  readonly ips: readonly string[];
  readonly caValidityMs: number;
  readonly caRenewBeforeMs: number;
  readonly servingValidityMs: number;
  readonly servingRenewBeforeMs: number;
}

export type Plan =
  | { readonly action: 'keep' }
  | { readonly action: 'create'; readonly reason: string }
  | { readonly action: 'rotate-ca'; readonly reason: string; readonly reissueServing: boolean }
  | { readonly action: 'renew-serving'; readonly reason: string };

/** Rejects settings under which a rotation could never overlap. */
export function checkPlanOptions(o: PlanOptions): void {
  if (o.dnsNames.length === 0 && o.ips.length === 0) throw new Error('webhook TLS: give at least one DNS name or IP for the serving certificate');
  if (!(o.servingRenewBeforeMs < o.servingValidityMs)) throw new Error(`webhook TLS: servingRenewBefore (${o.servingRenewBeforeMs} ms) must be shorter than servingValidity (${o.servingValidityMs} ms)`);
  if (!(o.caRenewBeforeMs < o.caValidityMs)) throw new Error(`webhook TLS: caRenewBefore (${o.caRenewBeforeMs} ms) must be shorter than caValidity (${o.caValidityMs} ms)`);
  if (!(o.servingValidityMs <= o.caRenewBeforeMs)) {
    throw new Error(`webhook TLS: servingValidity (${o.servingValidityMs} ms) must not exceed caRenewBefore (${o.caRenewBeforeMs} ms), or a serving certificate could outlive its CA`);
  }
}

function servingProblem(t: WebhookTls, o: PlanOptions, now: number): string | undefined {
  if (!keyMatches(t.serving)) return 'the serving key does not match its certificate';
  if (!splitPemBundle(t.bundle).some((ca) => pairMatches(t.serving, ca))) return 'the serving certificate is not signed by a CA in the bundle';
  const f = certFacts(t.serving.certPem);
  if (f.notAfter.getTime() - now <= o.servingRenewBeforeMs) return `the serving certificate expires ${f.notAfter.toISOString()}`;
  const missing = [...o.dnsNames.filter((d) => !f.dnsNames.includes(d)), ...o.ips.filter((i) => !f.ips.includes(i))];
  if (missing.length > 0) return `the serving certificate lacks ${missing.join(', ')}`;
  return undefined;
}

/** The decision: CA first (a broken or expiring CA replaces everything it must), then the serving certificate. */
export function plan(t: WebhookTls | undefined, o: PlanOptions, now: number): Plan {
  if (!t) return { action: 'create', reason: 'no stored webhook TLS' };
  if (!keyMatches(t.ca)) return { action: 'create', reason: 'the stored CA key does not match its certificate' };
  const ca = certFacts(t.ca.certPem);
  const serving = servingProblem(t, o, now);
  if (ca.notAfter.getTime() - now <= o.caRenewBeforeMs) {
    // Keep serving the old CA's certificate while it is still good, so the new CA reaches every caBundle before it signs anything.
    const expired = certFacts(t.serving.certPem).notAfter.getTime() <= now;
    return { action: 'rotate-ca', reason: `the CA expires ${ca.notAfter.toISOString()}`, reissueServing: serving !== undefined && (expired || !keyMatches(t.serving)) };
  }
  return serving ? { action: 'renew-serving', reason: serving } : { action: 'keep' };
}

function stillValid(pemText: string, now: number): boolean {
  try {
    return certFacts(pemText).notAfter.getTime() > now;
  } catch {
    return false;
  }
}

async function serve(ca: KeyPairPem, o: PlanOptions, now: number): Promise<KeyPairPem> {
  return issueServing(ca, { commonName: o.commonName, dnsNames: o.dnsNames, ips: o.ips, validityMs: o.servingValidityMs, now: new Date(now) });
}

/** Carries out a plan that is not `keep`. */
export async function apply(t: WebhookTls | undefined, p: Exclude<Plan, { action: 'keep' }>, o: PlanOptions, now: number): Promise<WebhookTls> {
  const caOptions = { commonName: `${o.commonName}-ca`, validityMs: o.caValidityMs, now: new Date(now) };
  if (p.action === 'create' || !t) {
    const ca = await createCa(caOptions);
    return { ca, serving: await serve(ca, o, now), bundle: ca.certPem };
  }
  if (p.action === 'renew-serving') return { ...t, serving: await serve(t.ca, o, now) };
  const ca = await createCa(caOptions);
  const older = splitPemBundle(t.bundle).filter((c) => stillValid(c, now));
  return { ca, serving: p.reissueServing ? await serve(ca, o, now) : t.serving, bundle: [ca.certPem, ...older].join('') };
}

/** The Secret's data (base64) ⇄ WebhookTls. */
export function toSecretData(t: WebhookTls): Record<string, string> {
  const b = (s: string): string => Buffer.from(s).toString('base64');
  return { [KEY_TLS_CRT]: b(t.serving.certPem), [KEY_TLS_KEY]: b(t.serving.keyPem), [KEY_CA_CRT]: b(t.ca.certPem), [KEY_CA_KEY]: b(t.ca.keyPem), [KEY_CA_BUNDLE]: b(t.bundle) };
}

/** undefined when a key is missing (then the plan creates everything again). */
export function fromSecretData(data: Readonly<Record<string, string>> | undefined): WebhookTls | undefined {
  const get = (k: string): string | undefined => (data?.[k] ? Buffer.from(data[k], 'base64').toString('utf8') : undefined);
  const [crt, key, caCrt, caKey] = [get(KEY_TLS_CRT), get(KEY_TLS_KEY), get(KEY_CA_CRT), get(KEY_CA_KEY)];
  if (!crt || !key || !caCrt || !caKey) return undefined;
  return { serving: { certPem: crt, keyPem: key }, ca: { certPem: caCrt, keyPem: caKey }, bundle: get(KEY_CA_BUNDLE) ?? caCrt };
}
