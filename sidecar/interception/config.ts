// What init-network needs from the sidecar config: each connection's upstream host:port and listener, the admin port, and the optional `interception` section (pure; defensive reading).
//
// The init container reads the raw file instead of loadConfig: it must not depend on credential
// files (mounted into the sidecar only) or on the full schema, and it must still fail closed on
// anything it cannot make sense of. The `interception` section (config-schema.ts) is read when
// present; CLI flags override its egress settings.
import { parse as parseYaml } from 'yaml';
import type { AllowRule, EgressPolicy, Target } from './rules.ts';

/** Same defaults as sidecar/core/config-types.ts (not imported: that module pulls in the whole sidecar's types). */
export const DEFAULT_ADMIN_PORT = 9901;
export const DEFAULT_LISTEN_HOST = '127.0.0.1';
export const DEFAULT_POSTGRES_PORT = 5432;
export const DEFAULT_KUBERNETES_URL = 'https://kubernetes.default.svc';

export interface EgressSettings {
  readonly policy: EgressPolicy;
  readonly allowDNS: boolean;
  readonly allow: readonly AllowRule[];
}

export const DEFAULT_EGRESS: EgressSettings = { policy: 'allow', allowDNS: true, allow: [] };

export interface InterceptionConfig {
  readonly targets: readonly Target[];
  readonly adminPort: number;
  /** From the file's `interception.egress`; undefined when the file has none. */
  readonly egress: EgressSettings | undefined;
  /** `interception.mode: transparent`: the sidecar relays [::1]:<port> to its IPv4 listeners (loopback-v6.ts), so IPv6 redirects work. */
  readonly transparent: boolean;
}

export type ReadResult = { readonly ok: true; readonly config: InterceptionConfig } | { readonly ok: false; readonly errors: readonly string[] };

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function port(v: unknown, fallback: number | undefined): number | undefined {
  if (v === undefined) return fallback;
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 65535 ? v : undefined;
}

/** host:port of an http(s) URL (default port by scheme); IPv6 brackets removed. */
function urlTarget(url: string): { host: string; port: number } | undefined {
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
    const p = u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port);
    return { host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: p };
  } catch {
    return undefined;
  }
}

function upstreamOf(c: Json): { host: string; port: number } | string {
  const up = isObject(c.upstream) ? c.upstream : {};
  if (c.protocol === 'postgres') {
    const p = port(up.port, DEFAULT_POSTGRES_PORT);
    if (typeof up.host !== 'string' || up.host === '' || p === undefined) return 'upstream.host and upstream.port must name the PostgreSQL server';
    return { host: up.host, port: p };
  }
  if (c.protocol === 'http' || c.protocol === 'kubernetes') {
    const url = up.url ?? (c.protocol === 'kubernetes' ? DEFAULT_KUBERNETES_URL : undefined);
    const t = typeof url === 'string' ? urlTarget(url) : undefined;
    return t ?? 'upstream.url must be an http(s) URL';
  }
  return `unknown protocol ${JSON.stringify(c.protocol)}`;
}

function target(c: unknown, i: number, errors: string[]): Target | undefined {
  const at = `connections[${i}]`;
  if (!isObject(c)) {
    errors.push(`${at}: not an object`);
    return undefined;
  }
  const name = typeof c.name === 'string' ? c.name : `#${i}`;
  const up = upstreamOf(c);
  const listen = isObject(c.listen) ? c.listen : {};
  const listenPort = port(listen.port, undefined);
  const listenHost = typeof listen.host === 'string' ? listen.host : DEFAULT_LISTEN_HOST;
  if (typeof up === 'string') errors.push(`${at} (${name}): ${up}`);
  if (listenPort === undefined) errors.push(`${at} (${name}): listen.port must be a port number`);
  if (typeof up === 'string' || listenPort === undefined) return undefined;
  return { connection: name, host: up.host, port: up.port, listenHost, listenPort };
}

function allowRule(a: unknown, i: number, errors: string[]): AllowRule | undefined {
  const ports = isObject(a) ? (a.ports ?? []) : undefined;
  if (!isObject(a) || typeof a.cidr !== 'string' || !Array.isArray(ports) || !ports.every((p) => port(p, undefined) !== undefined && p !== 0)) {
    errors.push(`interception.egress.allow[${i}]: want { cidr: "10.0.0.0/8", ports: [443] }`);
    return undefined;
  }
  return { cidr: a.cidr, ports: ports as number[] };
}

/** `interception.egress` of the file (the AgentIdentity's spec.interception.egress, compiled). */
export function readEgress(section: unknown, errors: string[]): EgressSettings | undefined {
  if (section === undefined) return undefined;
  const egress = isObject(section) ? section.egress : undefined;
  if (egress === undefined) return undefined;
  if (!isObject(egress)) {
    errors.push('interception.egress: not an object');
    return undefined;
  }
  const policy = egress.policy ?? DEFAULT_EGRESS.policy;
  if (policy !== 'allow' && policy !== 'deny-by-default') errors.push(`interception.egress.policy: ${JSON.stringify(policy)} is not allow or deny-by-default`);
  const allowDNS = egress.allowDNS ?? true;
  if (typeof allowDNS !== 'boolean') errors.push('interception.egress.allowDNS: not a boolean');
  const list = egress.allow ?? [];
  if (!Array.isArray(list)) errors.push('interception.egress.allow: not a list');
  const allow = (Array.isArray(list) ? list : []).map((a, i) => allowRule(a, i, errors)).filter((a): a is AllowRule => a !== undefined);
  return { policy: policy === 'deny-by-default' ? 'deny-by-default' : 'allow', allowDNS: allowDNS !== false, allow };
}

/** Parses the config text (YAML or JSON). Every problem is listed; any problem means nothing is applied. */
export function readInterceptionConfig(text: string): ReadResult {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    return { ok: false, errors: [`not YAML or JSON: ${(e as Error).message}`] };
  }
  if (!isObject(doc) || !Array.isArray(doc.connections) || doc.connections.length === 0) return { ok: false, errors: ['connections: the config lists no connections'] };
  const errors: string[] = [];
  const targets = doc.connections.map((c, i) => target(c, i, errors)).filter((t): t is Target => t !== undefined);
  const adminPort = port(isObject(doc.admin) ? doc.admin.port : undefined, DEFAULT_ADMIN_PORT);
  if (adminPort === undefined) errors.push('admin.port: not a port number');
  const egress = readEgress(doc.interception, errors);
  const transparent = isObject(doc.interception) && doc.interception.mode === 'transparent';
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, config: { targets, adminPort: adminPort ?? DEFAULT_ADMIN_PORT, egress, transparent } };
}

/** `nameserver` lines of resolv.conf (addresses only; a zone suffix like `%eth0` is dropped). */
export function parseResolvConf(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m?.[1]) out.push(m[1].replace(/%.*$/, ''));
  }
  return out;
}
