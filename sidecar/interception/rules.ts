// The iptables rules of transparent interception, built from a plan (pure): nat redirects of the agent's dials to guarded upstreams, filter deny-by-default egress.
//
// Rules are written in the exact form iptables-save prints them (`-p tcp -m tcp --dport`, canonical
// addresses), so what we plan, what --dry-run prints and what the kernel holds compare as text.
// Idempotency: each run declares our two chains (`:CHAIN - [0:0]` under --noflush flushes an
// existing chain), refills them, and adds the jump from OUTPUT only when it is not there yet, all
// in one iptables-restore transaction per family.
import { canonicalIp, formatCidr, ipFamily, isLoopback, listensOn, parseCidr, type Family } from './addr.ts';

export const NAT_CHAIN = 'CHAPERONE_OUTPUT';
export const FILTER_CHAIN = 'CHAPERONE_EGRESS';
/** iptables' multiport takes at most 15 ports per rule. */
export const MULTIPORT_MAX = 15;
export const DNS_PORT = 53;

/** One guarded upstream as the config names it (host may be a name; resolved before planning). */
export interface Target {
  readonly connection: string;
  readonly host: string;
  readonly port: number;
  readonly listenHost: string;
  readonly listenPort: number;
}

/** The agent's dial to address:port lands on the sidecar's listener at toPort. */
export interface Redirect {
  readonly connection: string;
  readonly family: Family;
  readonly address: string;
  readonly port: number;
  readonly toPort: number;
}

export interface AllowRule {
  readonly cidr: string;
  /** TCP ports; empty = every port and protocol to that network. */
  readonly ports: readonly number[];
}

export type EgressPolicy = 'allow' | 'deny-by-default';

export interface EgressPlan {
  readonly policy: EgressPolicy;
  readonly allowDNS: boolean;
  /** The pod's resolvers (resolv.conf `nameserver`s); DNS is allowed to these only. */
  readonly dnsServers: readonly string[];
  readonly allow: readonly AllowRule[];
}

export interface RulePlan {
  /** The sidecar process's UID: its own connections are never redirected or refused (the loop breaker). */
  readonly sidecarUid: number;
  /** Optional: a GID excluded the same way (any process whose primary GID it is bypasses the rules). */
  readonly sidecarGid?: number | undefined;
  readonly adminPort: number;
  readonly redirects: readonly Redirect[];
  readonly egress: EgressPlan;
}

/** How many jumps from OUTPUT to our chain exist now (from iptables-save); 0 = add one, >1 = remove the extras. */
export interface ExistingJumps {
  readonly nat: number;
  readonly filter: number;
}

export interface Planned {
  readonly redirects: readonly Redirect[];
  readonly warnings: readonly string[];
  readonly errors: readonly string[];
}

/**
 * Each target's resolved addresses → redirects. An unresolved name is an error (the agent could dial
 * the upstream unguarded); so is a redirect that would loop into the sidecar's own ports.
 * `v6Relay`: the sidecar relays [::1]:<port> to its IPv4 loopback listeners (interception.mode
 * transparent in its config), so an IPv6 redirect to a 127.0.0.1 listener is served.
 */
export function planRedirects(targets: readonly Target[], resolved: ReadonlyMap<string, readonly string[]>, adminPort: number, v6Relay = false): Planned {
  const redirects: Redirect[] = [];
  const warnings: string[] = [];
  const errors: string[] = [];
  const ownPorts = new Set([adminPort, ...targets.map((t) => t.listenPort)]);
  const seen = new Map<string, string>();
  for (const t of targets) {
    const addresses = ipFamily(t.host) !== undefined ? [t.host] : (resolved.get(t.host) ?? []);
    if (addresses.length === 0) {
      errors.push(`connection ${t.connection}: upstream host ${t.host} resolved to no address; the agent could reach it unguarded, so nothing is applied (fix DNS, or use an IP address in the upstream)`);
      continue;
    }
    if (t.listenPort <= 0) errors.push(`connection ${t.connection}: listen.port ${t.listenPort} is not a fixed port; transparent interception needs one`);
    for (const raw of [...new Set(addresses.map(canonicalIp))].sort()) {
      const family = ipFamily(raw) as Family;
      const key = `${raw}:${t.port}`;
      const other = seen.get(key);
      if (other !== undefined) {
        errors.push(`connections ${other} and ${t.connection} both guard ${family === 6 ? `[${raw}]` : raw}:${t.port}; one address:port can be redirected to one listener only`);
        continue;
      }
      seen.set(key, t.connection);
      if (isLoopback(raw) && ownPorts.has(t.port)) {
        errors.push(`connection ${t.connection}: upstream ${raw}:${t.port} is one of the sidecar's own loopback ports; redirecting it would loop`);
        continue;
      }
      const unserved = unservedWarning(t, family, raw, v6Relay);
      if (unserved !== undefined) warnings.push(unserved);
      redirects.push({ connection: t.connection, family, address: raw, port: t.port, toPort: t.listenPort });
    }
  }
  return { redirects, warnings, errors };
}

/** Why the agent's dials to raw:port would be refused after the redirect (nothing listens where REDIRECT sends them), or undefined. */
function unservedWarning(t: Target, family: Family, raw: string, v6Relay: boolean): string | undefined {
  if (listensOn(t.listenHost, family) || (family === 6 && v6Relay && listensOn(t.listenHost, 4))) return undefined;
  const shown = family === 6 ? `[${raw}]` : raw;
  const hint = family === 6 ? ' (set interception.mode: transparent in the sidecar config: it then relays [::1])' : '';
  return `connection ${t.connection}: the agent's IPv${family} dials to ${shown}:${t.port} are redirected to ${family === 4 ? '127.0.0.1' : '[::1]'}:${t.listenPort}, where the sidecar does not listen (listen.host ${t.listenHost}), so they are refused: the upstream stays unreachable to the agent (fail closed) but not usable through the redirect${hint}`;
}

function hostPrefix(family: Family): number {
  return family === 4 ? 32 : 128;
}

function ownerReturns(plan: RulePlan, chain: string): string[] {
  const out = [`-A ${chain} -m owner --uid-owner ${plan.sidecarUid} -j RETURN`];
  if (plan.sidecarGid !== undefined) out.push(`-A ${chain} -m owner --gid-owner ${plan.sidecarGid} -j RETURN`);
  return out;
}

function redirectRule(r: Redirect): string {
  return `-A ${NAT_CHAIN} -d ${r.address}/${hostPrefix(r.family)} -p tcp -m tcp --dport ${r.port} -j REDIRECT --to-ports ${r.toPort}`;
}

/**
 * nat: the sidecar's own sockets first (RETURN), then upstreams that live on loopback, then
 * everything else routed through lo (loopback, the pod's own addresses, the admin port) returns,
 * then the guarded upstreams. No catch-all: only guarded address:port pairs are redirected.
 */
export function natRules(plan: RulePlan, family: Family): string[] {
  const mine = plan.redirects.filter((r) => r.family === family);
  return [
    ...ownerReturns(plan, NAT_CHAIN),
    ...mine.filter((r) => isLoopback(r.address)).map(redirectRule),
    `-A ${NAT_CHAIN} -o lo -j RETURN`,
    ...mine.filter((r) => !isLoopback(r.address)).map(redirectRule),
  ];
}

function chunks<T>(list: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

function allowRules(rule: AllowRule, family: Family): string[] {
  const c = parseCidr(rule.cidr);
  if (c.family !== family) return [];
  const dest = `-A ${FILTER_CHAIN} -d ${formatCidr(c)}`;
  if (rule.ports.length === 0) return [`${dest} -j RETURN`];
  const ports = [...new Set(rule.ports)].sort((a, b) => a - b);
  if (ports.length === 1) return [`${dest} -p tcp -m tcp --dport ${ports[0]} -j RETURN`];
  return chunks(ports, MULTIPORT_MAX).map((p) => `${dest} -p tcp -m multiport --dports ${p.join(',')} -j RETURN`);
}

function dnsRules(egress: EgressPlan, family: Family): string[] {
  if (!egress.allowDNS) return [];
  const servers = [...new Set(egress.dnsServers.filter((s) => ipFamily(s) === family && !isLoopback(s)).map(canonicalIp))].sort();
  return servers.flatMap((s) => {
    const d = `-A ${FILTER_CHAIN} -d ${s}/${hostPrefix(family)}`;
    return [`${d} -p udp -m udp --dport ${DNS_PORT} -j RETURN`, `${d} -p tcp -m tcp --dport ${DNS_PORT} -j RETURN`];
  });
}

/**
 * filter (deny-by-default only; empty otherwise): the sidecar, packets the kernel sends without a
 * socket (neighbour discovery, resets, ICMP errors), loopback (the device, and the loopback
 * addresses where redirected dials now go: `-o` keeps the device routed before nat),
 * replies on connections already allowed, DNS to the pod's resolvers, the allow list; the agent's
 * remaining TCP is reset and everything else gets port-unreachable.
 */
export function filterRules(plan: RulePlan, family: Family): string[] {
  if (plan.egress.policy !== 'deny-by-default') return [];
  const unreachable = family === 4 ? 'icmp-port-unreachable' : 'icmp6-port-unreachable';
  return [
    ...ownerReturns(plan, FILTER_CHAIN),
    `-A ${FILTER_CHAIN} -m owner ! --socket-exists -j RETURN`,
    `-A ${FILTER_CHAIN} -o lo -j RETURN`,
    // A redirected dial: -o still names the device routed before nat rewrote it, the address is already loopback.
    `-A ${FILTER_CHAIN} -d ${family === 4 ? '127.0.0.0/8' : '::1/128'} -j RETURN`,
    `-A ${FILTER_CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`,
    ...dnsRules(plan.egress, family),
    ...plan.egress.allow.flatMap((a) => allowRules(a, family)),
    `-A ${FILTER_CHAIN} -p tcp -j REJECT --reject-with tcp-reset`,
    `-A ${FILTER_CHAIN} -j REJECT --reject-with ${unreachable}`,
  ];
}

function jumpLines(chain: string, existing: number): string[] {
  if (existing === 0) return [`-I OUTPUT 1 -j ${chain}`];
  return new Array<string>(existing - 1).fill(`-D OUTPUT -j ${chain}`);
}

/** The iptables-restore --noflush input for one family: one transaction that leaves exactly our rules in our chains. */
export function restoreInput(plan: RulePlan, family: Family, jumps: ExistingJumps): string {
  return [
    '*nat',
    `:${NAT_CHAIN} - [0:0]`,
    ...jumpLines(NAT_CHAIN, jumps.nat),
    ...natRules(plan, family),
    'COMMIT',
    '*filter',
    `:${FILTER_CHAIN} - [0:0]`,
    ...jumpLines(FILTER_CHAIN, jumps.filter),
    ...filterRules(plan, family),
    'COMMIT',
    '',
  ].join('\n');
}

/** Our chains' rules as iptables-save prints them (`-A …` lines, in order), per table. */
export interface SavedChains {
  readonly nat: readonly string[] | undefined;
  readonly filter: readonly string[] | undefined;
  readonly jumps: ExistingJumps;
}

/** Reads our chains and the OUTPUT jumps to them out of `iptables-save` output (all tables). */
export function parseSave(text: string): SavedChains {
  const rules: Record<'nat' | 'filter', string[] | undefined> = { nat: undefined, filter: undefined };
  const jumps = { nat: 0, filter: 0 };
  let table = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) table = line.slice(1);
    if (table !== 'nat' && table !== 'filter') continue;
    const chain = table === 'nat' ? NAT_CHAIN : FILTER_CHAIN;
    if (line === `:${chain} - [0:0]` || line.startsWith(`:${chain} `)) rules[table] ??= [];
    else if (line.startsWith(`-A ${chain} `)) (rules[table] ??= []).push(line);
    else if (line === `-A OUTPUT -j ${chain}`) jumps[table]++;
  }
  return { nat: rules.nat, filter: rules.filter, jumps };
}

/** The `-A` lines of our chains out of a restoreInput (what --dry-run printed) — to compare with parseSave. */
export function plannedChains(restore: string): { readonly nat: string[]; readonly filter: string[] } {
  const lines = restore.split('\n');
  return { nat: lines.filter((l) => l.startsWith(`-A ${NAT_CHAIN} `)), filter: lines.filter((l) => l.startsWith(`-A ${FILTER_CHAIN} `)) };
}
