// The `egress` and `interception` sections of the sidecar config: semantic checks (allow-list, rules, ports) and defaults, called by config.ts.
import { createMasker } from '../masking/index.ts';
import { compileAllowList } from '../protocols/egress/allow-list.ts';
import { compileEgressPolicy } from '../protocols/egress/rules.ts';
import {
  DEFAULT_ADMIN_PORT, DEFAULT_CONNECT_TIMEOUT_SECONDS, DEFAULT_EGRESS_NAME, DEFAULT_EGRESS_PORT, DEFAULT_LISTEN_HOST, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_SESSIONS,
  DEFAULT_TUNNEL_IDLE_TIMEOUT_SECONDS,
  type AccessConfig, type ConfigError, type EgressAllowConfig, type InterceptionSectionConfig, type LimitsConfig, type EgressConfig, type MaskingConfig,
} from './config-types.ts';

type Json = Record<string, unknown>;

/** Idle keep-alive proxy connections (no request in flight) are closed after this by default (tunnels have their own timeout). */
export const DEFAULT_EGRESS_IDLE_TIMEOUT_SECONDS = 300;

/** Problems with `egress` that the schema cannot see: the allow-list entries, the HTTP rules, a port another listener has. */
export function checkEgress(raw: Json, errors: ConfigError[]): void {
  const e = raw.egress as Json | undefined;
  if (e === undefined) return;
  const allow = compileAllowList((e.allow ?? []) as EgressAllowConfig[]);
  if (!allow.ok) for (const x of allow.errors) errors.push({ path: `egress.${x.path}`, message: x.message });
  // Rules may name hosts (match.http.hosts): the proxy's own compiler takes them out before the HTTP rule compiler runs.
  const policy = compileEgressPolicy(((e.policy as Json | undefined)?.http ?? {}));
  if (!policy.ok) for (const x of policy.errors) errors.push({ path: `egress.policy.http.${x.path}`, message: x.message });
  checkMasking(e, errors);
  checkPort(raw, e, errors);
}

function checkMasking(e: Json, errors: ConfigError[]): void {
  const { hmacKeyFile, ...masking } = (e.masking ?? {}) as MaskingConfig;
  try {
    createMasker({ ...masking, ...(hmacKeyFile !== undefined ? { hmacKey: new Uint8Array(32) } : {}) });
  } catch (err) {
    errors.push({ path: 'egress.masking', message: (err as Error).message });
  }
}

function checkPort(raw: Json, e: Json, errors: ConfigError[]): void {
  const port = ((e.listen as Json | undefined)?.port as number | undefined) ?? DEFAULT_EGRESS_PORT;
  if (port === 0) return;
  const adminPort = ((raw.admin as Json | undefined)?.port as number | undefined) ?? DEFAULT_ADMIN_PORT;
  if (port === adminPort) errors.push({ path: 'egress.listen.port', message: `port ${port} is already used by admin.port; every listener needs its own port` });
  ((raw.connections ?? []) as Json[]).forEach((c, i) => {
    if ((c.listen as Json | undefined)?.port === port) errors.push({ path: 'egress.listen.port', message: `port ${port} is already used by connections[${i}].listen.port; every listener needs its own port` });
  });
}

/** `egress` with every default applied (undefined when the section is absent). */
export function resolveEgress(e: Json | undefined): EgressConfig | undefined {
  if (e === undefined) return undefined;
  const listen = (e.listen ?? {}) as Json;
  return {
    name: (e.name as string | undefined) ?? DEFAULT_EGRESS_NAME,
    listen: { host: (listen.host as string | undefined) ?? DEFAULT_LISTEN_HOST, port: (listen.port as number | undefined) ?? DEFAULT_EGRESS_PORT },
    access: access((e.access ?? {}) as Json),
    allow: (e.allow ?? []) as EgressAllowConfig[],
    limits: limits((e.limits ?? {}) as Json),
    masking: (e.masking ?? {}),
    policy: { http: ((e.policy as Json | undefined)?.http ?? {}) },
    tunnelIdleTimeoutSeconds: (e.tunnelIdleTimeoutSeconds as number | undefined) ?? DEFAULT_TUNNEL_IDLE_TIMEOUT_SECONDS,
  };
}

function access(a: Json): AccessConfig {
  return {
    allowedGroups: (a.allowedGroups as string[] | undefined) ?? [],
    allowedSubjects: (a.allowedSubjects as string[] | undefined) ?? [],
    anyAuthenticated: (a.anyAuthenticated as boolean | undefined) ?? false,
  };
}

function limits(l: Json): LimitsConfig {
  return {
      maxMessageBytes: (l.maxMessageBytes as number | undefined) ?? DEFAULT_MAX_MESSAGE_BYTES,
      idleTimeoutSeconds: (l.idleTimeoutSeconds as number | undefined) ?? DEFAULT_EGRESS_IDLE_TIMEOUT_SECONDS,
      idleInTransactionTimeoutSeconds: 0,
      maxSessionSeconds: (l.maxSessionSeconds as number | undefined) ?? 0,
      statementTimeoutSeconds: undefined,
      connectTimeoutSeconds: (l.connectTimeoutSeconds as number | undefined) ?? DEFAULT_CONNECT_TIMEOUT_SECONDS,
    maxSessions: (l.maxSessions as number | undefined) ?? DEFAULT_MAX_SESSIONS,
  };
}

/** `interception` with its defaults (undefined when absent: explicit mode). */
export function resolveInterception(i: Json | undefined): InterceptionSectionConfig | undefined {
  if (i === undefined) return undefined;
  const e = i.egress as Json | undefined;
  const mode = (i.mode as InterceptionSectionConfig['mode'] | undefined) ?? 'explicit';
  if (e === undefined) return { mode };
  const allow = ((e.allow ?? []) as Json[]).map((a) => ({ cidr: a.cidr as string, ports: (a.ports as number[] | undefined) ?? [] }));
  return { mode, egress: { policy: (e.policy as 'allow' | 'deny-by-default' | undefined) ?? 'allow', allowDNS: (e.allowDNS as boolean | undefined) ?? true, allow } };
}
