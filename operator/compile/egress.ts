// AgentIdentity spec.interception.forwardProxy → the sidecar config's `egress` section (pure).
import type { AgentIdentity } from '../api/types.ts';
import type { HttpPolicyConfig, MaskingConfig } from '../../sidecar/core/config-types.ts';
import type { CompileError } from './types.ts';

/** Name of the proxy in recordings and metrics (the sidecar's default). */
export const EGRESS_NAME = 'egress';

interface AllowOut {
  host: string;
  ports?: number[];
  addresses: string;
}

/**
 * `allowedHosts` (`host` or `host:port`, `*.suffix` allowed) grouped by host: a host listed without a
 * port keeps the per-mode default (443 for CONNECT, 80 for plain HTTP) in its own entry; its listed
 * ports go into one entry, sorted. Entry order follows first appearance (the config hash is stable).
 */
export function egressAllow(hosts: readonly string[], addresses: string, errors: CompileError[], at: string): AllowOut[] {
  const byHost = new Map<string, { bare: boolean; ports: Set<number> }>();
  hosts.forEach((raw, i) => {
    const m = /^(.*?)(?::([0-9]{1,5}))?$/.exec(raw.trim());
    const host = (m?.[1] ?? '').toLowerCase();
    const port = m?.[2] === undefined ? undefined : Number(m[2]);
    if (host === '' || (port !== undefined && (port < 1 || port > 65535))) {
      errors.push({ path: `${at}.allowedHosts[${i}]`, message: `${JSON.stringify(raw)} is not host or host:port with a port 1-65535` });
      return;
    }
    const cur = byHost.get(host) ?? { bare: false, ports: new Set<number>() };
    if (port === undefined) cur.bare = true;
    else cur.ports.add(port);
    byHost.set(host, cur);
  });
  const out: AllowOut[] = [];
  for (const [host, v] of byHost) {
    if (v.bare) out.push({ host, addresses });
    if (v.ports.size > 0) out.push({ host, ports: [...v.ports].sort((a, b) => a - b), addresses });
  }
  return out;
}

/** What MaskingPolicies and ApprovalRules selecting the proxy (connection `egress`) compiled to; masking undefined = the sidecar's defaults. */
export interface EgressPolicies {
  readonly masking: MaskingConfig | undefined;
  readonly policy: { readonly http: HttpPolicyConfig };
}

/** The `egress` section, or undefined when the identity has no forward proxy. Any verified agent token of the identity's issuers may use it. */
export function egressSection(identity: AgentIdentity, errors: CompileError[], policies?: EgressPolicies): Record<string, unknown> | undefined {
  const fp = identity.spec.interception?.forwardProxy;
  if (fp === undefined) return undefined;
  const at = `AgentIdentity/${identity.metadata.name ?? ''}.spec.interception.forwardProxy`;
  return {
    name: EGRESS_NAME,
    listen: { host: '127.0.0.1', port: fp.localPort },
    access: { anyAuthenticated: true },
    allow: egressAllow(fp.allowedHosts, fp.addresses ?? 'public', errors, at),
    // Undefined fields vanish in the canonical JSON; no rules = the sidecar's default-allow (the allow-list is the grant).
    masking: policies?.masking,
    ...(policies?.policy.http.rules !== undefined ? { policy: policies.policy } : {}),
  };
}

/**
 * The `interception` section for a transparent identity (undefined for explicit): the sidecar then
 * relays [::1] to its listeners (IPv6 redirects work), and init-network reads the egress settings
 * here too (the init container's flags, built from the same spec, take precedence).
 */
export function interceptionSection(identity: AgentIdentity): Record<string, unknown> | undefined {
  const i = identity.spec.interception;
  if (i?.mode !== 'transparent') return undefined;
  const e = i.egress;
  if (e === undefined) return { mode: 'transparent' };
  const allow = (e.allow ?? []).map((a) => ({ cidr: a.cidr, ports: [...new Set(a.ports ?? [])].sort((x, y) => x - y) }));
  return { mode: 'transparent', egress: { policy: e.policy ?? 'allow', allowDNS: e.allowDNS ?? true, allow } };
}
