// The egress proxy's host allow-list (pure): exact hosts, `*.suffix` wildcards, IP literals only when listed, ports per entry.
import { isIP } from 'node:net';
import type { EgressAddressScope, EgressAllowConfig } from '../../core/config-types.ts';

/** Which resolved addresses a name of the entry may connect to (address.ts classifies them). */
export type AddressScope = EgressAddressScope;

/** One allow-list entry as the config holds it (`host`, optional `ports`, `addresses`). */
export type AllowEntryConfig = EgressAllowConfig;

export interface AllowEntry {
  readonly index: number;
  readonly kind: 'exact' | 'suffix' | 'ip';
  /** Lower-case host, the suffix with its leading dot (`.example.com`), or the canonical IP. */
  readonly value: string;
  readonly ports: ReadonlySet<number> | undefined;
  readonly addresses: AddressScope;
  /** The rule name recordings and refusals show: `egress.allow[2]` plus the entry. */
  readonly rule: string;
}

export const DEFAULT_CONNECT_PORT = 443;
export const DEFAULT_HTTP_PORT = 80;

/** Host names as DNS has them: labels of letters, digits and hyphens (punycode for IDNs), no trailing dot. */
const NAME = /^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;

/**
 * A host as every matcher compares it: lower case, no trailing dot, IPv6 without brackets and
 * canonical (WHATWG URL parsing also turns `0x7f.1` or `2130706433` into `127.0.0.1`), or undefined
 * when it is not a host at all.
 */
export function canonicalHost(raw: string): string | undefined {
  const h = raw.trim().replace(/\.$/, '');
  if (h === '' || /[\s/\\@?#%]/.test(h)) return undefined;
  let parsed: string;
  try {
    parsed = new URL(`http://${h.includes(':') && !h.startsWith('[') ? `[${h}]` : h}/`).hostname;
  } catch {
    return undefined;
  }
  const bare = parsed.replace(/^\[(.*)\]$/, '$1');
  if (isIP(bare) !== 0) return bare;
  return NAME.test(bare) ? bare : undefined;
}

export type CompileResult = { readonly ok: true; readonly entries: readonly AllowEntry[] } | { readonly ok: false; readonly errors: readonly { readonly path: string; readonly message: string }[] };

/** One entry compiled, or what is wrong with its host. */
export function compileEntry(e: AllowEntryConfig, index: number): AllowEntry | string {
  const wild = e.host.startsWith('*.');
  const host = canonicalHost(wild ? e.host.slice(2) : e.host);
  if (host === undefined) return `${JSON.stringify(e.host)} is not a host name, a *.suffix wildcard or an IP address`;
  const ip = isIP(host) !== 0;
  if (wild && ip) return `${JSON.stringify(e.host)}: a wildcard needs a domain suffix, not an IP address`;
  if (wild && !host.includes('.')) return `${JSON.stringify(e.host)} would match a whole top-level domain; name a longer suffix`;
  const ports = e.ports === undefined || e.ports.length === 0 ? undefined : new Set(e.ports);
  const kind = ip ? 'ip' : wild ? 'suffix' : 'exact';
  return { index, kind, value: kind === 'suffix' ? `.${host}` : host, ports, addresses: e.addresses ?? 'public', rule: `egress.allow[${index}] ${shownEntry(kind, host, ports)}` };
}

function shownEntry(kind: AllowEntry['kind'], host: string, ports: ReadonlySet<number> | undefined): string {
  const portText = ports ? `:${[...ports].sort((a, b) => a - b).join(',')}` : '';
  if (kind === 'suffix') return `*.${host}${portText}`;
  return `${host.includes(':') ? `[${host}]` : host}${portText}`;
}

/** Checks and compiles the entries; every problem is named by its index. */
export function compileAllowList(list: readonly AllowEntryConfig[]): CompileResult {
  const entries: AllowEntry[] = [];
  const errors: { path: string; message: string }[] = [];
  list.forEach((e, index) => {
    const c = compileEntry(e, index);
    if (typeof c === 'string') errors.push({ path: `allow[${index}].host`, message: c });
    else entries.push(c);
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, entries };
}

export type HostDecision =
  | { readonly ok: true; readonly entry: AllowEntry }
  | { readonly ok: false; readonly reason: 'host-not-allowed' | 'port-not-allowed' | 'ip-not-listed'; readonly message: string };

function hostMatches(e: AllowEntry, host: string, ip: boolean): boolean {
  if (ip) return e.kind === 'ip' && e.value === host;
  if (e.kind === 'exact') return e.value === host;
  return e.kind === 'suffix' && host.endsWith(e.value) && host.length > e.value.length;
}

function portAllowed(e: AllowEntry, port: number, mode: 'connect' | 'http'): boolean {
  return e.ports === undefined ? port === (mode === 'connect' ? DEFAULT_CONNECT_PORT : DEFAULT_HTTP_PORT) : e.ports.has(port);
}

/**
 * Whether `host:port` (host already canonical) may be reached. The first entry that matches host and
 * port wins; a host that matches only with other ports is refused as `port-not-allowed`.
 */
export function matchHost(entries: readonly AllowEntry[], host: string, port: number, mode: 'connect' | 'http'): HostDecision {
  const ip = isIP(host) !== 0;
  const byHost = entries.filter((e) => hostMatches(e, host, ip));
  const hit = byHost.find((e) => portAllowed(e, port, mode));
  if (hit !== undefined) return { ok: true, entry: hit };
  const shown = ip && host.includes(':') ? `[${host}]` : host;
  if (byHost.length > 0) {
    const ports = [...new Set(byHost.flatMap((e) => (e.ports ? [...e.ports] : [mode === 'connect' ? DEFAULT_CONNECT_PORT : DEFAULT_HTTP_PORT])))].sort((a, b) => a - b);
    return { ok: false, reason: 'port-not-allowed', message: `${shown} is allowed on port ${ports.join(', ')} only, not ${port}` };
  }
  if (ip) return { ok: false, reason: 'ip-not-listed', message: `${shown} is an IP address; the allow-list names hosts, and an IP address only passes when it is listed itself` };
  return { ok: false, reason: 'host-not-allowed', message: `${shown} is not on this identity's egress allow-list` };
}
