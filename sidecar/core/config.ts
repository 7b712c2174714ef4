// Loads the sidecar config: parse (JSON or YAML), validate against the schema, semantic checks, defaults → a SidecarConfig or errors naming each field.
//
// Never reads a credential file: it only checks that each named file exists and is readable.
import { createHash } from 'node:crypto';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { validate as generatedValidate } from './config-validator.generated.ts';
import { createMasker } from '../masking/index.ts';
import type { MaskerOptions } from '../masking/index.ts';
import { resolveIssuers, IdentityOptionsError, type IssuerOptions } from '../identity/options.ts';
import { compileSqlPolicy } from '../policy/evaluate-sql.ts';
import type { CompiledSqlPolicy, SqlPolicyJson } from '../policy/sql-rules.ts';
import { checkEgress, resolveEgress, resolveInterception } from './config-egress.ts';
import { CONFIG_SCHEMA, DEFAULT_KUBERNETES_URL, DEFAULT_SA_CA_FILE, DEFAULT_SA_TOKEN_FILE } from './config-schema.ts';
import {
  DEFAULT_ADMIN_HOST, DEFAULT_ADMIN_PORT, DEFAULT_APPROVAL_TIMEOUT_SECONDS, DEFAULT_CHECKPOINT_EVERY_LINES, DEFAULT_CHECKPOINT_INTERVAL_SECONDS,
  DEFAULT_CONNECT_TIMEOUT_SECONDS, DEFAULT_DRAIN_TIMEOUT_SECONDS, DEFAULT_IDLE_TIMEOUT_SECONDS, DEFAULT_LISTEN_HOST, DEFAULT_LOG_LEVEL,
  DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_SESSIONS, DEFAULT_POSTGRES_PORT,
  type AccessConfig, type ApprovalsConfig, type ConfigError, type ConnectionConfig, type HttpCredentialsConfig, type HttpTlsConfig, type LimitsConfig, type ListenTlsConfig,
  type LoadResult, type LogLevel, type MaskingConfig, type PostgresCredentialsConfig, type RecordingConfig, type RecordingSync, type SidecarConfig, type TlsMode,
} from './config-types.ts';

export interface CheckOptions {
  /** Check that every named file exists and is readable (default true; the operator checks compiled output without the files). */
  readonly checkFiles?: boolean;
}

/** Config files are small; a huge one is a mistake (or an attack on the parser). */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

type Json = Record<string, unknown>;

/** The schema compiled ahead of time (config-validator-gen.ts): no ajv at run time. */
const validate = generatedValidate as unknown as ValidateFunction;

/** The schema object at an ajv schemaPath (`#/properties/x/...`), to list the fields an object allows. */
function schemaAt(schemaPath: string): Json | undefined {
  let node: unknown = CONFIG_SCHEMA;
  for (const raw of schemaPath.replace(/^#/, '').split('/').filter((x) => x !== '')) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Json)[raw.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return node !== null && typeof node === 'object' ? (node as Json) : undefined;
}

/** `/connections/1/upstream/port` → `connections[1].upstream.port`. */
export function toFieldPath(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(part)) out += `[${part}]`;
    else out += out === '' ? part : /^[A-Za-z_$][\w$-]*$/.test(part) ? `.${part}` : `[${JSON.stringify(part)}]`;
  }
  return out;
}

function join(path: string, field: string): string {
  return path === '' ? field : `${path}.${field}`;
}

function describe(e: ErrorObject): ConfigError {
  const path = toFieldPath(e.instancePath);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const parent = schemaAt(e.schemaPath.replace(/\/additionalProperties$/, ''));
      const known = Object.keys((parent?.properties as Json | undefined) ?? {});
      return { path: join(path, String(p.additionalProperty)), message: `unknown field; expected one of ${known.join(', ')}` };
    }
    case 'required':
      return { path: join(path, String(p.missingProperty)), message: 'is required' };
    case 'enum':
      return { path, message: `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` };
    case 'const':
      return { path, message: `must be ${JSON.stringify(p.allowedValue)}` };
    case 'discriminator': {
      const tag = String(p.tag);
      const values = tag === 'protocol' ? '"postgres", "http", "kubernetes"' : tag === 'type' ? '"bearer", "basic", "header", "query", "none"' : 'a known value';
      return { path: join(path, tag), message: p.error === 'mapping' ? `must be one of ${values}` : `must be a string: one of ${values}` };
    }
    default:
      return { path: path === '' ? '(root)' : path, message: e.message ?? 'is invalid' };
  }
}

function schemaErrors(errors: readonly ErrorObject[]): ConfigError[] {
  const seen = new Set<string>();
  const out: ConfigError[] = [];
  for (const e of errors) {
    const d = describe(e);
    const key = `${d.path}\u0000${d.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(d);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parsing

/** JSON when the text starts with `{` (what the operator writes; no YAML parser loaded), else YAML. */
export function parseConfigText(text: string): { ok: true; value: unknown } | { ok: false; errors: ConfigError[] } {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{')) {
    try {
      return { ok: true, value: JSON.parse(text) as unknown };
    } catch (e) {
      return { ok: false, errors: [{ path: '(file)', message: `not valid JSON: ${(e as Error).message}` }] };
    }
  }
  const yaml = createRequire(import.meta.url)('yaml') as typeof import('yaml');
  const doc = yaml.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return { ok: false, errors: doc.errors.map((e) => ({ path: '(file)', message: `not valid YAML: ${e.message.split('\n')[0] ?? e.message}` })) };
  }
  return { ok: true, value: doc.toJS({ maxAliasCount: 100 }) as unknown };
}

// ---------------------------------------------------------------------------------------------
// Semantic checks

interface Ctx {
  readonly errors: ConfigError[];
  readonly checkFiles: boolean;
}

function checkFile(ctx: Ctx, path: string, file: unknown): void {
  if (!ctx.checkFiles || typeof file !== 'string') return;
  try {
    if (!statSync(file).isFile()) {
      ctx.errors.push({ path, message: `${file} is not a regular file` });
      return;
    }
    accessSync(file, constants.R_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    const what = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable by the sidecar' : `cannot be checked (${code})`;
    ctx.errors.push({ path, message: `${file} ${what}; mount the Secret or file there, or fix the path` });
  }
}

/** Every `*File` field anywhere below `value`, except inside policies (rules are not files). */
function checkFilesBelow(ctx: Ctx, path: string, value: unknown): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => checkFilesBelow(ctx, `${path}[${i}]`, v));
    return;
  }
  if (value === null || typeof value !== 'object') return;
  for (const [k, v] of Object.entries(value as Json)) {
    if (k === 'policy') continue;
    const p = join(path, k);
    if (k.endsWith('File') && typeof v === 'string') checkFile(ctx, p, v);
    else checkFilesBelow(ctx, p, v);
  }
}

function checkIdentity(ctx: Ctx, identity: Json): void {
  const issuers = (identity.issuers as IssuerOptions[]).map((i) => ({ ...i, caFile: undefined }));
  try {
    resolveIssuers({ issuers });
  } catch (e) {
    if (!(e instanceof IdentityOptionsError)) throw e;
    const m = /^identity options (\S+): (.*)$/s.exec(e.message);
    ctx.errors.push({ path: `identity.${m?.[1] ?? 'issuers'}`, message: m?.[2] ?? e.message });
  }
}

function checkUnique(ctx: Ctx, conns: readonly Json[], admin: Json | undefined): void {
  const names = new Map<string, number>();
  const ports = new Map<string, string>();
  const adminPort = (admin?.port as number | undefined) ?? DEFAULT_ADMIN_PORT;
  if (adminPort !== 0) ports.set(String(adminPort), 'admin.port');
  conns.forEach((c, i) => {
    const name = c.name as string;
    const first = names.get(name);
    if (first !== undefined) ctx.errors.push({ path: `connections[${i}].name`, message: `${JSON.stringify(name)} is already the name of connections[${first}]; names must be unique` });
    else names.set(name, i);
    const port = (c.listen as Json).port as number;
    if (port === 0) return;
    const other = ports.get(String(port));
    if (other !== undefined) ctx.errors.push({ path: `connections[${i}].listen.port`, message: `port ${port} is already used by ${other}; every listener needs its own port` });
    else ports.set(String(port), `connections[${i}].listen.port`);
  });
}

function effectiveSqlPolicy(c: Json): SqlPolicyJson {
  const given = ((c.policy as Json | undefined)?.sql ?? { default: 'allow' }) as SqlPolicyJson;
  if (c.readOnly !== true) return given;
  const packs: readonly string[] = Array.isArray(given.packs) ? given.packs : [];
  return packs.includes('read-only') ? given : { ...given, packs: [...packs, 'read-only'] };
}

function checkSql(ctx: Ctx, c: Json, i: number, out: Map<string, CompiledSqlPolicy>): void {
  const r = compileSqlPolicy(effectiveSqlPolicy(c));
  if (r.ok) {
    out.set(c.name as string, r.policy);
    return;
  }
  for (const e of r.errors) ctx.errors.push({ path: `connections[${i}].policy.sql${e.path === '' ? '' : e.path.startsWith('[') ? e.path : `.${e.path}`}`, message: e.message });
}

/** A stand-in key: the real one is read only by the runtime, but hmac replacements need some key to validate. */
const PLACEHOLDER_HMAC_KEY = new Uint8Array(32);

export function maskerOptions(m: MaskingConfig, hmacKey: Uint8Array | undefined): MaskerOptions {
  const { hmacKeyFile, ...rest } = m;
  void hmacKeyFile;
  return { ...rest, ...(hmacKey ? { hmacKey } : {}) };
}

function checkMasking(ctx: Ctx, c: Json, i: number): void {
  const m = (c.masking ?? {}) as MaskingConfig;
  try {
    createMasker(maskerOptions(m, m.hmacKeyFile === undefined ? undefined : PLACEHOLDER_HMAC_KEY));
  } catch (e) {
    const msg = (e as Error).message;
    const hit = /^masking options: ([^:]+): (.*)$/s.exec(msg);
    const field = hit?.[1]?.replace(/ \(".*"\)$/, '').replace(/^hmacKey$/, 'hmacKeyFile');
    ctx.errors.push({ path: `connections[${i}].masking${field ? `.${field}` : ''}`, message: hit?.[2] ?? msg });
  }
}

function checkPostgresCredentials(ctx: Ctx, c: Json, p: string): void {
  const cred = c.credentials as Json;
  const pair = cred.usernameFile !== undefined || cred.passwordFile !== undefined;
  if (cred.urlFile !== undefined && pair) ctx.errors.push({ path: `${p}.credentials`, message: 'give either urlFile or usernameFile + passwordFile, not both' });
  else if (cred.urlFile === undefined && (cred.usernameFile === undefined || cred.passwordFile === undefined)) {
    ctx.errors.push({ path: `${p}.credentials`, message: 'needs usernameFile and passwordFile, or urlFile' });
  }
}

function checkListenTls(ctx: Ctx, c: Json, p: string): void {
  const listen = c.listen as Json | undefined;
  if (c.protocol === 'http' && listen?.tls !== undefined) {
    ctx.errors.push({ path: `${p}.listen.tls`, message: 'listener TLS is implemented for postgres and kubernetes connections only; drop it for an http connection' });
  }
  if (listen?.selfSignedTls !== undefined && c.protocol !== 'kubernetes') {
    ctx.errors.push({ path: `${p}.listen.selfSignedTls`, message: `is implemented for kubernetes connections only; drop it for a ${String(c.protocol)} connection` });
  }
  if (listen?.selfSignedTls !== undefined && listen.tls !== undefined) {
    ctx.errors.push({ path: `${p}.listen`, message: 'has both tls and selfSignedTls; keep one (tls: your certificate files; selfSignedTls: the sidecar makes its own)' });
  }
}

function checkConnection(ctx: Ctx, c: Json, i: number, sql: Map<string, CompiledSqlPolicy>): void {
  const p = `connections[${i}]`;
  if (c.protocol === 'postgres') {
    checkPostgresCredentials(ctx, c, p);
    checkSql(ctx, c, i, sql);
  }
  checkListenTls(ctx, c, p);
  const tls = ((c.upstream as Json | undefined)?.tls ?? {}) as Json;
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) ctx.errors.push({ path: `${p}.upstream.tls`, message: 'certFile and keyFile go together (mutual TLS needs both)' });
  if (c.protocol === 'postgres' && tls.mode === 'disable' && (tls.caFile !== undefined || tls.certFile !== undefined)) {
    ctx.errors.push({ path: `${p}.upstream.tls.mode`, message: 'is disable, but caFile/certFile are set; use require or verify-full, or drop them' });
  }
  checkMasking(ctx, c, i);
}

function checkRecording(ctx: Ctx, rec: Json): void {
  if (rec.stdout === false && rec.file === undefined) ctx.errors.push({ path: 'recording', message: 'stdout is off and no file is set: the sidecar must record somewhere' });
  const file = rec.file as Json | undefined;
  if (ctx.checkFiles && typeof file?.path === 'string') {
    const dir = dirname(file.path);
    try {
      accessSync(dir, constants.W_OK);
    } catch {
      ctx.errors.push({ path: 'recording.file.path', message: `directory ${dir} does not exist or is not writable by the sidecar` });
    }
  }
}

function checkTopLevel(ctx: Ctx, raw: Json): void {
  checkRecording(ctx, (raw.recording ?? {}) as Json);
  const approvals = (raw.approvals ?? {}) as Json;
  const groups = ((raw.admin as Json | undefined)?.approverGroups ?? []) as unknown[];
  if (approvals.backend === 'local' && groups.length === 0) ctx.errors.push({ path: 'admin.approverGroups', message: 'approvals backend local needs at least one approver group (nobody could approve)' });
  if (approvals.kubernetes !== undefined && approvals.backend !== 'kubernetes') ctx.errors.push({ path: 'approvals.kubernetes', message: `is set but backend is ${JSON.stringify(approvals.backend ?? 'none')}; set backend: kubernetes or drop it` });
}

// ---------------------------------------------------------------------------------------------
// Defaults

function access(a: Json | undefined): AccessConfig {
  return {
    allowedGroups: (a?.allowedGroups as string[] | undefined) ?? [],
    allowedSubjects: (a?.allowedSubjects as string[] | undefined) ?? [],
    anyAuthenticated: (a?.anyAuthenticated as boolean | undefined) ?? false,
  };
}

function limits(l: Json | undefined): LimitsConfig {
  return {
    maxMessageBytes: (l?.maxMessageBytes as number | undefined) ?? DEFAULT_MAX_MESSAGE_BYTES,
    idleTimeoutSeconds: (l?.idleTimeoutSeconds as number | undefined) ?? DEFAULT_IDLE_TIMEOUT_SECONDS,
    idleInTransactionTimeoutSeconds: (l?.idleInTransactionTimeoutSeconds as number | undefined) ?? 0,
    maxSessionSeconds: (l?.maxSessionSeconds as number | undefined) ?? 0,
    statementTimeoutSeconds: l?.statementTimeoutSeconds as number | undefined,
    connectTimeoutSeconds: (l?.connectTimeoutSeconds as number | undefined) ?? DEFAULT_CONNECT_TIMEOUT_SECONDS,
    maxSessions: (l?.maxSessions as number | undefined) ?? DEFAULT_MAX_SESSIONS,
  };
}

function fileTls(t: Json | undefined): HttpTlsConfig {
  return {
    caFile: t?.caFile as string | undefined,
    serverName: t?.serverName as string | undefined,
    certFile: t?.certFile as string | undefined,
    keyFile: t?.keyFile as string | undefined,
  };
}

function listenTls(t: Json | undefined, s: Json | undefined): { tls?: ListenTlsConfig; selfSignedTls?: { caOut: string } } {
  const self = s === undefined ? {} : { selfSignedTls: { caOut: s.caOut as string } };
  if (t === undefined) return self;
  return { tls: { certFile: t.certFile as string, keyFile: t.keyFile as string, required: (t.required as boolean | undefined) ?? false }, ...self };
}

function resolveConnection(c: Json): ConnectionConfig {
  const listen = c.listen as Json;
  const base = {
    name: c.name as string,
    listen: { host: (listen.host as string | undefined) ?? DEFAULT_LISTEN_HOST, port: listen.port as number, ...listenTls(listen.tls as Json | undefined, listen.selfSignedTls as Json | undefined) },
    access: access(c.access as Json | undefined),
    readOnly: (c.readOnly as boolean | undefined) ?? false,
    limits: limits(c.limits as Json | undefined),
    masking: (c.masking ?? {}) as MaskingConfig,
  };
  const up = (c.upstream ?? {}) as Json;
  const tls = up.tls as Json | undefined;
  if (c.protocol === 'postgres') {
    return {
      ...base,
      protocol: 'postgres',
      upstream: {
        host: up.host as string,
        port: (up.port as number | undefined) ?? DEFAULT_POSTGRES_PORT,
        database: up.database as string,
        tls: { mode: (tls?.mode as TlsMode | undefined) ?? 'verify-full', ...fileTls(tls) },
      },
      credentials: c.credentials as PostgresCredentialsConfig,
      policy: { sql: effectiveSqlPolicy(c) },
    };
  }
  const policy = { http: ((c.policy as Json | undefined)?.http ?? {}) as Json };
  if (c.protocol === 'http') {
    return { ...base, protocol: 'http', upstream: { url: up.url as string, tls: fileTls(tls) }, credentials: c.credentials as HttpCredentialsConfig, policy };
  }
  return {
    ...base,
    protocol: 'kubernetes',
    upstream: { url: (up.url as string | undefined) ?? DEFAULT_KUBERNETES_URL, tls: fileTls(tls) },
    credentials: c.credentials as { tokenFile: string },
    policy,
  };
}

function resolveApprovals(a: Json | undefined): ApprovalsConfig {
  const k = a?.kubernetes as Json | undefined;
  const backend = (a?.backend as ApprovalsConfig['backend'] | undefined) ?? 'none';
  return {
    backend,
    timeoutSeconds: (a?.timeoutSeconds as number | undefined) ?? DEFAULT_APPROVAL_TIMEOUT_SECONDS,
    kubernetes: backend !== 'kubernetes' ? undefined : {
      apiServerUrl: (k?.apiServerUrl as string | undefined) ?? DEFAULT_KUBERNETES_URL,
      caFile: (k?.caFile as string | undefined) ?? DEFAULT_SA_CA_FILE,
      tokenFile: (k?.tokenFile as string | undefined) ?? DEFAULT_SA_TOKEN_FILE,
    },
  };
}

function resolveRecording(r: Json | undefined): RecordingConfig {
  const f = r?.file as Json | undefined;
  const s = r?.signing as Json | undefined;
  return {
    stdout: (r?.stdout as boolean | undefined) ?? true,
    file: f === undefined ? undefined : { path: f.path as string, sync: (f.sync as RecordingSync | undefined) ?? 'fdatasync' },
    signing: s === undefined ? undefined : {
      privateKeyFile: s.privateKeyFile as string,
      checkpointEveryLines: (s.checkpointEveryLines as number | undefined) ?? DEFAULT_CHECKPOINT_EVERY_LINES,
      checkpointIntervalSeconds: (s.checkpointIntervalSeconds as number | undefined) ?? DEFAULT_CHECKPOINT_INTERVAL_SECONDS,
    },
  };
}

function resolve(raw: Json): SidecarConfig {
  const admin = raw.admin as Json | undefined;
  return {
    version: 1,
    identity: raw.identity as SidecarConfig['identity'],
    connections: (raw.connections as Json[]).map(resolveConnection),
    approvals: resolveApprovals(raw.approvals as Json | undefined),
    recording: resolveRecording(raw.recording as Json | undefined),
    admin: {
      host: (admin?.host as string | undefined) ?? DEFAULT_ADMIN_HOST,
      port: (admin?.port as number | undefined) ?? DEFAULT_ADMIN_PORT,
      approverGroups: (admin?.approverGroups as string[] | undefined) ?? [],
    },
    log: { level: ((raw.log as Json | undefined)?.level as LogLevel | undefined) ?? DEFAULT_LOG_LEVEL },
    shutdown: { drainTimeoutSeconds: ((raw.shutdown as Json | undefined)?.drainTimeoutSeconds as number | undefined) ?? DEFAULT_DRAIN_TIMEOUT_SECONDS },
    ...(raw.egress !== undefined ? { egress: resolveEgress(raw.egress as Json) } : {}),
    ...(raw.interception !== undefined ? { interception: resolveInterception(raw.interception as Json) } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Entry points

/** Validates a parsed config object (schema, then semantics) and applies the defaults. */
export function checkConfig(value: unknown, hash: string, opts: CheckOptions = {}): LoadResult {
  if (!validate(value)) return { ok: false, errors: schemaErrors(validate.errors ?? []) };
  const raw = structuredClone(value) as Json;
  const ctx: Ctx = { errors: [], checkFiles: opts.checkFiles ?? true };
  const conns = raw.connections as Json[];
  checkIdentity(ctx, raw.identity as Json);
  checkUnique(ctx, conns, raw.admin as Json | undefined);
  const sql = new Map<string, CompiledSqlPolicy>();
  conns.forEach((c, i) => checkConnection(ctx, c, i, sql));
  checkTopLevel(ctx, raw);
  checkEgress(raw, ctx.errors);
  checkFilesBelow(ctx, '', raw);
  if (ctx.errors.length > 0) return { ok: false, errors: ctx.errors };
  return { ok: true, config: deepFreeze(resolve(raw)), hash, sqlPolicies: sql };
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Parses and checks config text (JSON or YAML). */
export function parseConfig(text: string, opts: CheckOptions = {}): LoadResult {
  const parsed = parseConfigText(text);
  if (!parsed.ok) return { ok: false, errors: parsed.errors };
  return checkConfig(parsed.value, sha256(text), opts);
}

/** Reads and checks a config file. */
export function loadConfig(path: string, opts: CheckOptions = {}): LoadResult {
  let buf: Buffer;
  try {
    if (statSync(path).size > MAX_CONFIG_BYTES) return { ok: false, errors: [{ path: '(file)', message: `${path} is larger than ${MAX_CONFIG_BYTES} bytes` }] };
    buf = readFileSync(path);
  } catch (e) {
    return { ok: false, errors: [{ path: '(file)', message: `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` }] };
  }
  return parseConfig(buf.toString('utf8'), opts);
}

/** One line per error, `path: message` (what --check prints and the log carries). */
export function formatErrors(errors: readonly ConfigError[]): string[] {
  return errors.map((e) => `${e.path}: ${e.message}`);
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v as object)) deepFreeze(x);
  }
  return v;
}
