// The proxy's HTTP rules with `match.http.hosts` (which targets a rule judges): compiled once per egress config, narrowed per host for the gateways, and the host:port decision for CONNECT tunnels.
import type { HttpPolicyConfig } from '../../core/config-types.ts';
import { compileHttpPolicy, evaluateHttp, type CompiledHttpPolicy, type HttpDecision, type PolicyError } from '../../policy/http-rules.ts';
import { canonicalHost } from './allow-list.ts';

/** One `hosts` entry: an exact name or IP, `*.suffix` (subdomains, not the apex), or `*` (any host); with or without a port. */
interface HostPattern {
  readonly name: string;
  readonly wildcard: 'none' | 'suffix' | 'any';
  readonly port: number | undefined;
}

/** What the rule compiler cannot see: the rule's hosts and whether it can judge an opaque tunnel. */
interface RuleScope {
  readonly hosts: readonly HostPattern[] | undefined;
  /** No paths, query, body or websocket, and methods absent or listing CONNECT: it can judge `CONNECT host:port`. */
  readonly tunnel: boolean;
}

export interface EgressPolicy {
  /** Every rule (hosts ignored): for code that judges without a target. */
  readonly all: CompiledHttpPolicy;
  /** The rules whose hosts match (or that have none), for the gateway of one host:port. */
  forHost(host: string, port: number): CompiledHttpPolicy;
  /** The decision for `CONNECT host:port`: only rules that can judge a tunnel take part. */
  connect(host: string, port: number): HttpDecision;
}

export type EgressPolicyResult = { readonly ok: true; readonly policy: EgressPolicy } | { readonly ok: false; readonly errors: readonly PolicyError[] };

type Json = Readonly<Record<string, unknown>>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const TUNNEL_BLIND = ['paths', 'query', 'body', 'websocket'] as const;
const CONNECT_FACTS = { method: 'CONNECT', path: '/', body: undefined, websocket: false } as const;

/** `host`, `host:port`, `[v6]:port`, `*.suffix`, `*`: undefined when it is none of them. */
export function parseHostPattern(raw: string): HostPattern | undefined {
  const m = /^(\[[^\]]+\]|[^:[\]]+|[0-9a-fA-F:]+)(?::([0-9]{1,5}))?$/.exec(raw.trim());
  if (m === null) return undefined;
  let host = m[1] ?? '';
  let portText = m[2];
  // A bare IPv6 literal (no brackets): every colon belongs to the address.
  if (!host.startsWith('[') && host.includes(':')) {
    host = raw.trim();
    portText = undefined;
  }
  const port = portText === undefined ? undefined : Number(portText);
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  if (host === '*') return { name: '', wildcard: 'any', port };
  if (host.startsWith('*.')) {
    const suffix = canonicalHost(host.slice(2));
    return suffix === undefined ? undefined : { name: suffix, wildcard: 'suffix', port };
  }
  const name = canonicalHost(host.replace(/^\[|\]$/g, ''));
  return name === undefined ? undefined : { name, wildcard: 'none', port };
}

/** True when the `hosts` entry `raw` matches host:port (false for an entry that does not parse); the operator uses it to apply hosts to fixed-upstream connections. */
export function hostPatternMatches(raw: string, host: string, port: number): boolean {
  const p = parseHostPattern(raw);
  const h = canonicalHost(host);
  return p !== undefined && h !== undefined && hostMatches(p, h, port);
}

function hostMatches(p: HostPattern, host: string, port: number): boolean {
  if (p.port !== undefined && p.port !== port) return false;
  if (p.wildcard === 'any') return true;
  if (p.wildcard === 'suffix') return host.endsWith(`.${p.name}`);
  return host === p.name;
}

function hostList(hosts: unknown, at: string, errors: PolicyError[]): HostPattern[] {
  if (!Array.isArray(hosts) || hosts.length === 0 || hosts.some((h) => typeof h !== 'string')) {
    errors.push({ path: at, message: 'must be a non-empty list of host names (`api.example.com`, `*.example.com`, `*`, each optionally with :port)' });
    return [];
  }
  const out: HostPattern[] = [];
  (hosts as string[]).forEach((h, j) => {
    const p = parseHostPattern(h);
    if (p === undefined) errors.push({ path: `${at}[${j}]`, message: `${JSON.stringify(h)} is not a host, *.suffix or * with an optional :port 1-65535` });
    else out.push(p);
  });
  return out;
}

/** Takes `hosts` out of each rule's `match.http` (the rule compiler does not know it) and notes what each rule can judge. */
function splitScopes(rules: readonly unknown[], errors: PolicyError[]): { rules: unknown[]; scopes: Map<string, RuleScope> } {
  const scopes = new Map<string, RuleScope>();
  const out = rules.map((r, i) => {
    if (!isObject(r) || !isObject(r['match']) || !isObject(r['match']['http'])) {
      if (isObject(r) && typeof r['id'] === 'string') scopes.set(r['id'], { hosts: undefined, tunnel: !isObject(r['match']) || Object.keys(r['match']).length === 0 });
      return r;
    }
    const { hosts, ...http } = r['match']['http'];
    const at = `rules[${i}].match.http`;
    const patterns = hosts === undefined ? undefined : hostList(hosts, `${at}.hosts`, errors);
    const methods = Array.isArray(http['methods']) ? (http['methods'] as unknown[]).map((x) => String(x).toUpperCase()) : [];
    const blind = TUNNEL_BLIND.filter((k) => http[k] !== undefined);
    if (methods.includes('CONNECT') && blind.length > 0) errors.push({ path: at, message: `a CONNECT tunnel is opaque: it is judged by host and port only, so a rule with methods CONNECT cannot also match ${blind.join(', ')}; split it into two rules` });
    const tunnel = blind.length === 0 && (methods.length === 0 || methods.includes('CONNECT'));
    if (typeof r['id'] === 'string') scopes.set(r['id'], { hosts: patterns, tunnel });
    return { ...r, match: { ...r['match'], http } };
  });
  return { rules: out, scopes };
}

/** Validates and compiles the proxy's `policy.http` (rules may carry `match.http.hosts`). */
export function compileEgressPolicy(cfg: HttpPolicyConfig | undefined): EgressPolicyResult {
  const errors: PolicyError[] = [];
  const raw = cfg?.rules ?? [];
  const { rules, scopes } = splitScopes(Array.isArray(raw) ? raw : [], errors);
  const compiled = compileHttpPolicy({ ...(cfg ?? {}), ...(cfg?.rules !== undefined ? { rules: rules as Json[] } : {}) }, 'http');
  if (!compiled.ok) errors.push(...compiled.errors);
  if (!compiled.ok || errors.length > 0) return { ok: false, errors };
  const all = compiled.policy;
  const scoped = [...scopes.values()].some((s) => s.hosts !== undefined);
  const applies = (id: string, host: string, port: number): boolean => {
    const hosts = scopes.get(id)?.hosts;
    return hosts === undefined || hosts.some((p) => hostMatches(p, host, port));
  };
  return {
    ok: true,
    policy: {
      all,
      forHost: (host, port) => (scoped ? { ...all, rules: all.rules.filter((r) => applies(r.id, host, port)) } : all),
      connect: (host, port) => evaluateHttp(
        { ...all, rules: all.rules.filter((r) => scopes.get(r.id)?.tunnel === true && applies(r.id, host, port)) },
        { ...CONNECT_FACTS, query: new URLSearchParams() },
      ),
    },
  };
}
