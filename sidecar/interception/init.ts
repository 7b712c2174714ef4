// `chaperone-sidecar init-network`: resolve the guarded upstreams, build the rules, apply them with iptables-restore (IPv4 and IPv6), verify, or print them with --dry-run.
//
// Runs once in the init container (UID 0, NET_ADMIN + NET_RAW) before the sidecar and the agent
// start. Any failure exits non-zero, so the kubelet retries the init container and the pod never
// starts unguarded.
import { spawnSync } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { existsSync, readFileSync } from 'node:fs';
import { ipFamily, parseCidr } from './addr.ts';
import { DEFAULT_EGRESS, parseResolvConf, readInterceptionConfig, type EgressSettings } from './config.ts';
import { filterRules, natRules, parseSave, planRedirects, restoreInput, type AllowRule, type EgressPolicy, type RulePlan } from './rules.ts';
import type { Family } from './addr.ts';

/** The distroless `nonroot` user the webhook runs the sidecar as (operator/webhooks/pod-mutate/layout.ts SIDECAR_UID; a test checks both). */
export const DEFAULT_SIDECAR_UID = 65532;
export const DEFAULT_RESOLV_CONF = '/etc/resolv.conf';
/** A name that does not resolve in this long fails the init (the kubelet retries it). */
export const DEFAULT_RESOLVE_TIMEOUT_MS = 10_000;
export const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;

export const INIT_USAGE = `Usage: chaperone-sidecar init-network --config FILE [--dry-run] [--uid N] [--gid N]
                                    [--egress allow|deny-by-default] [--allow CIDR[:PORT,...]]... [--no-dns]
                                    [--resolv-conf FILE]

Installs the transparent-interception iptables/ip6tables rules in this network namespace
(docs/interception.md): the agent's TCP dials to each guarded upstream go to that connection's
sidecar listener; with deny-by-default every other outbound connection of the agent is refused,
except DNS to the pod's resolvers and the allow list. Connections of --uid (the sidecar) pass.

  --config FILE        the sidecar config (connections, admin port, optional interception.egress)
  --dry-run            print the iptables-restore input for IPv4 and IPv6 and change nothing
  --uid N              the sidecar's UID (default ${DEFAULT_SIDECAR_UID})
  --gid N              also exclude this primary GID (off by default: any process with it would bypass)
  --egress POLICY      override interception.egress.policy of the config
  --allow CIDR[:PORTS] with deny-by-default, also allow this network (TCP PORTS only, comma separated; repeatable)
  --no-dns             with deny-by-default, do not allow DNS
  --resolv-conf FILE   where the pod's resolvers are listed (default ${DEFAULT_RESOLV_CONF})

Exit 0: rules applied and verified (or printed). 1: nothing usable was applied; the reason is on stderr. 2: usage.`;

export interface InitArgs {
  readonly config: string | undefined;
  readonly dryRun: boolean;
  readonly uid: number;
  readonly gid: number | undefined;
  readonly egressPolicy: EgressPolicy | undefined;
  readonly allow: readonly AllowRule[];
  readonly noDns: boolean;
  readonly resolvConf: string;
  readonly help: boolean;
}

function id(v: string | undefined): number | undefined {
  return v !== undefined && /^\d{1,10}$/.test(v) && Number(v) < 2 ** 32 ? Number(v) : undefined;
}

/** `10.0.0.0/8`, `10.0.0.0/8:443,5432`, `fd00::/8:443` (the port list follows the prefix length). */
export function parseAllow(text: string): AllowRule | string {
  const m = /^(.+\/\d{1,3})(?::([\d,]+))?$/.exec(text) ?? /^([^/]+)$/.exec(text);
  if (!m?.[1]) return `--allow ${JSON.stringify(text)}: want CIDR or CIDR:PORT,PORT (e.g. 10.0.0.0/8:443)`;
  try {
    parseCidr(m[1]);
  } catch (e) {
    return `--allow: ${(e as Error).message}`;
  }
  const ports = (m[2] ?? '').split(',').filter((p) => p !== '').map(Number);
  if (ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) return `--allow ${JSON.stringify(text)}: ports must be 1..65535`;
  return { cidr: m[1], ports };
}

interface MutableArgs {
  config: string | undefined;
  dryRun: boolean;
  uid: number;
  gid: number | undefined;
  egressPolicy: EgressPolicy | undefined;
  allow: AllowRule[];
  noDns: boolean;
  resolvConf: string;
  help: boolean;
}

/** One flag with its value (`--x v` or `--x=v`); returns an error text or undefined. */
function applyFlag(a: MutableArgs, flag: string, value: string | undefined): string | undefined {
  if (value === undefined || value.startsWith('--')) return `${flag} needs a value`;
  switch (flag) {
    case '--config':
      a.config = value;
      return undefined;
    case '--resolv-conf':
      a.resolvConf = value;
      return undefined;
    case '--uid':
    case '--gid': {
      const n = id(value);
      if (n === undefined) return `${flag} ${JSON.stringify(value)}: want a numeric ID`;
      if (flag === '--uid') a.uid = n;
      else a.gid = n;
      return undefined;
    }
    case '--egress':
      if (value !== 'allow' && value !== 'deny-by-default') return `--egress ${JSON.stringify(value)}: want allow or deny-by-default`;
      a.egressPolicy = value;
      return undefined;
    case '--allow': {
      const r = parseAllow(value);
      if (typeof r === 'string') return r;
      a.allow.push(r);
      return undefined;
    }
    default:
      return `unknown argument ${JSON.stringify(flag)}`;
  }
}

const VALUE_FLAGS = new Set(['--config', '--resolv-conf', '--uid', '--gid', '--egress', '--allow']);

export function parseInitArgs(argv: readonly string[], env: NodeJS.ProcessEnv): InitArgs | { readonly error: string } {
  const a: MutableArgs = { config: env.CHAPERONE_CONFIG || undefined, dryRun: false, uid: DEFAULT_SIDECAR_UID, gid: undefined, egressPolicy: undefined, allow: [], noDns: false, resolvConf: DEFAULT_RESOLV_CONF, help: false };
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    const eq = raw.indexOf('=');
    const flag = raw.startsWith('--') && eq > 0 ? raw.slice(0, eq) : raw === '-c' ? '--config' : raw;
    if (flag === '--dry-run') a.dryRun = true;
    else if (flag === '--no-dns') a.noDns = true;
    else if (flag === '--help' || flag === '-h') a.help = true;
    else if (!VALUE_FLAGS.has(flag)) return { error: `unknown argument ${JSON.stringify(raw)}` };
    else {
      const value = eq > 0 && raw.startsWith('--') ? raw.slice(eq + 1) : argv[++i];
      const err = applyFlag(a, flag, value);
      if (err !== undefined) return { error: err };
    }
  }
  return a;
}

/** Flags override the file's interception.egress; the file's section overrides the default (allow). */
export function effectiveEgress(args: InitArgs, fromFile: EgressSettings | undefined): EgressSettings {
  const base = fromFile ?? DEFAULT_EGRESS;
  return {
    policy: args.egressPolicy ?? base.policy,
    allowDNS: args.noDns ? false : base.allowDNS,
    allow: args.allow.length > 0 ? args.allow : base.allow,
  };
}

/** What init-network does to the outside world; tests replace it. */
export interface InitIo {
  readFile(path: string): string;
  resolve(host: string): Promise<string[]>;
  /** Runs a command to completion (stdin = input); a missing binary is status undefined with error set. */
  run(command: string, args: readonly string[], input?: string): { status: number | null | undefined; stdout: string; stderr: string; error?: string };
  hasIpv6(): boolean;
  out(text: string): void;
  err(text: string): void;
}

async function resolveWithTimeout(host: string, ms: number): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
  });
  try {
    const r = await Promise.race([lookup(host, { all: true, family: 0 }), timeout]);
    return r.map((x) => x.address);
  } finally {
    clearTimeout(timer);
  }
}

export const SYSTEM_IO: InitIo = {
  readFile: (path) => readFileSync(path, 'utf8'),
  resolve: (host) => resolveWithTimeout(host, DEFAULT_RESOLVE_TIMEOUT_MS),
  run(command, args, input) {
    const r = spawnSync(command, [...args], { input, encoding: 'utf8', timeout: DEFAULT_COMMAND_TIMEOUT_MS });
    return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', ...(r.error ? { error: r.error.message } : {}) };
  },
  // Per network namespace: /proc/net follows the reader's netns; absent when IPv6 is off in the kernel.
  hasIpv6: () => existsSync('/proc/net/if_inet6'),
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

const TOOLS: Record<Family, { save: string; restore: string }> = {
  4: { save: 'iptables-save', restore: 'iptables-restore' },
  6: { save: 'ip6tables-save', restore: 'ip6tables-restore' },
};

class InitError extends Error {}

/** Resolves every non-IP upstream host (A and AAAA); a failure is an error naming the host. */
async function resolveAll(hosts: readonly string[], io: InitIo): Promise<{ map: Map<string, string[]>; errors: string[] }> {
  const map = new Map<string, string[]>();
  const errors: string[] = [];
  for (const h of [...new Set(hosts)]) {
    try {
      map.set(h, await io.resolve(h));
    } catch (e) {
      errors.push(`cannot resolve upstream host ${h}: ${(e as Error).message}; without its addresses the agent could dial it unguarded, so nothing is applied (the kubelet retries this init container)`);
    }
  }
  return { map, errors };
}

function dnsServers(args: InitArgs, egress: EgressSettings, io: InitIo): string[] {
  if (egress.policy !== 'deny-by-default' || !egress.allowDNS) return [];
  try {
    return parseResolvConf(io.readFile(args.resolvConf));
  } catch (e) {
    io.err(`chaperone-sidecar init-network: cannot read ${args.resolvConf} (${(e as Error).message}); DNS is allowed to loopback resolvers only\n`);
    return [];
  }
}

/** Builds the plan from the config file and flags; throws InitError listing every problem. */
export async function buildPlan(args: InitArgs, io: InitIo): Promise<{ plan: RulePlan; warnings: readonly string[] }> {
  if (args.config === undefined) throw new InitError('no config given: pass --config FILE or set CHAPERONE_CONFIG');
  let text: string;
  try {
    text = io.readFile(args.config);
  } catch (e) {
    throw new InitError(`cannot read the config ${args.config}: ${(e as Error).message}`);
  }
  const read = readInterceptionConfig(text);
  if (!read.ok) throw new InitError(`${args.config}: ${read.errors.join('; ')}`);
  const { targets, adminPort } = read.config;
  const egress = effectiveEgress(args, read.config.egress);
  const resolved = await resolveAll(targets.map((t) => t.host).filter((h) => ipFamily(h) === undefined), io);
  const planned = planRedirects(targets, resolved.map, adminPort, read.config.transparent);
  const errors = [...resolved.errors, ...planned.errors];
  if (errors.length > 0) throw new InitError(errors.join('; '));
  const plan: RulePlan = {
    sidecarUid: args.uid,
    sidecarGid: args.gid,
    adminPort,
    redirects: planned.redirects,
    egress: { ...egress, dnsServers: dnsServers(args, egress, io) },
  };
  return { plan, warnings: planned.warnings };
}

/** Current jumps to our chains; undefined when the tool cannot run (no binary, no permission, no table). */
function currentState(family: Family, io: InitIo): ReturnType<typeof parseSave> | { failed: string } {
  const r = io.run(TOOLS[family].save, []);
  if (r.status !== 0) return { failed: r.error ?? (r.stderr.trim() || `exit ${String(r.status)}`) };
  return parseSave(r.stdout);
}

function sameLines(a: readonly string[] | undefined, b: readonly string[]): boolean {
  return a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Applies one family and reads it back; returns an error text or undefined. */
function applyFamily(plan: RulePlan, family: Family, io: InitIo): string | undefined {
  const before = currentState(family, io);
  if ('failed' in before) return `${TOOLS[family].save} failed: ${before.failed}`;
  const input = restoreInput(plan, family, before.jumps);
  const r = io.run(TOOLS[family].restore, ['--noflush', '--wait'], input);
  if (r.status !== 0) return `${TOOLS[family].restore} failed: ${r.error ?? (r.stderr.trim() || `exit ${String(r.status)}`)}`;
  const after = currentState(family, io);
  if ('failed' in after) return `${TOOLS[family].save} failed after applying: ${after.failed}`;
  if (!sameLines(after.nat, natRules(plan, family)) || !sameLines(after.filter, filterRules(plan, family)) || after.jumps.nat !== 1 || after.jumps.filter !== 1) {
    return `the rules read back with ${TOOLS[family].save} differ from the rules applied (another writer at the same time?); re-run init-network`;
  }
  return undefined;
}

function dryRunFamily(plan: RulePlan, family: Family, io: InitIo): string {
  const state = currentState(family, io);
  const jumps = 'failed' in state ? { nat: 0, filter: 0 } : state.jumps;
  if ('failed' in state) io.err(`chaperone-sidecar init-network: cannot read the current IPv${family} rules (${state.failed}); printing the input for a namespace without them\n`);
  return `# IPv${family}: ${TOOLS[family].restore} --noflush\n${restoreInput(plan, family, jumps)}`;
}

/** IPv6 cannot be applied: fine only when nothing over IPv6 needs guarding (no v6 upstream, no deny-by-default). */
function ipv6Unavailable(plan: RulePlan, why: string): string | undefined {
  const needed = plan.egress.policy === 'deny-by-default' ? 'egress is deny-by-default' : plan.redirects.some((r) => r.family === 6) ? 'an upstream has an IPv6 address' : undefined;
  if (needed === undefined) return undefined;
  return `IPv6 rules could not be applied (${why}) and ${needed}: the agent could go around the sidecar over IPv6; install ip6tables (Debian package iptables) in the image or disable IPv6 for the pod`;
}

function applyAll(plan: RulePlan, io: InitIo): number {
  const v4 = applyFamily(plan, 4, io);
  if (v4 !== undefined) throw new InitError(`IPv4: ${v4}`);
  const summary = [`IPv4 ${natRules(plan, 4).length} nat + ${filterRules(plan, 4).length} filter rules`];
  if (!io.hasIpv6()) {
    summary.push('IPv6 skipped: this network namespace has no IPv6');
  } else {
    const v6 = applyFamily(plan, 6, io);
    const fatal = v6 === undefined ? undefined : ipv6Unavailable(plan, v6);
    if (fatal !== undefined) throw new InitError(fatal);
    summary.push(v6 === undefined ? `IPv6 ${natRules(plan, 6).length} nat + ${filterRules(plan, 6).length} filter rules` : `IPv6 skipped (${v6}); nothing needed guarding over IPv6`);
  }
  io.err(`chaperone-sidecar init-network: applied and verified: ${summary.join('; ')}; egress ${plan.egress.policy}; sidecar UID ${plan.sidecarUid}\n`);
  return 0;
}

export async function initNetwork(argv: readonly string[], env: NodeJS.ProcessEnv, io: InitIo = SYSTEM_IO): Promise<number> {
  const args = parseInitArgs(argv, env);
  if ('error' in args) {
    io.err(`chaperone-sidecar init-network: ${args.error}\n\n${INIT_USAGE}\n`);
    return 2;
  }
  if (args.help) {
    io.out(`${INIT_USAGE}\n`);
    return 0;
  }
  try {
    const { plan, warnings } = await buildPlan(args, io);
    for (const w of warnings) io.err(`chaperone-sidecar init-network: warning: ${w}\n`);
    if (!args.dryRun) return applyAll(plan, io);
    io.out(dryRunFamily(plan, 4, io));
    io.out(io.hasIpv6() ? dryRunFamily(plan, 6, io) : '# IPv6: skipped, this network namespace has no IPv6\n');
    return 0;
  } catch (e) {
    if (!(e instanceof InitError)) throw e;
    io.err(`chaperone-sidecar init-network: ${e.message}\n`);
    return 1;
  }
}
