// AgentIdentity + the MaskingPolicies and ApprovalRules in its namespace → the sidecar config file, its canonical text and hash (pure).
//
// Credentials are never values in the output: only paths of files the webhook mounts into the
// sidecar container (paths.ts); `mounts` lists them. The output passes the sidecar's own
// `checkConfig(…, { checkFiles: false })`, run here before anything is returned.
import { createHash } from 'node:crypto';
import type { AgentIdentity, AgentIdentityConnection, AgentIdentityIssuer, ApprovalRule, MaskingPolicy } from '../api/types.ts';
import type {
  ApprovalBackend, ConnectionConfig, HttpCredentialsConfig, IssuerConfig, MaskingConfig, SidecarConfigFile,
} from '../../sidecar/core/config-types.ts';
import { checkConfig } from '../../sidecar/core/config.ts';
import { DEFAULT_KUBERNETES_URL, DEFAULT_SA_CA_FILE, DEFAULT_SA_TOKEN_FILE } from '../../sidecar/core/config-schema.ts';
import { listenerCaFile } from '../webhooks/pod-mutate/layout.ts';
import { egressSection, interceptionSection, type EgressPolicies } from './egress.ts';
import { compilePolicyPart, mergeMasking, type PolicyPart } from './masking.ts';
import {
  credentialMountPath, DEFAULT_MOUNT_ROOT, issuerCaMountPath, MountSet, signingKeyMountPath, tlsCaMountPath, tlsClientMountPath,
} from './paths.ts';
import { compileHttpPolicy, compileSqlPolicy, durationSeconds, fixedUpstream } from './rules.ts';
import { EGRESS_CONNECTION, missingConnections, selectableConnections, selectApprovalRules, selectedConnections, selectMaskingPolicies } from './select.ts';
import type { CompileError, CompileResult } from './types.ts';

export type { CompileError, CompileResult } from './types.ts';

/** kubeadm's default `--service-account-issuer`; other clusters differ: pass `env.serviceAccountIssuer` (the operator reads it from the API server's discovery). */
export const DEFAULT_SA_ISSUER = 'https://kubernetes.default.svc.cluster.local';
export const DEFAULT_SA_JWKS_URI = `${DEFAULT_KUBERNETES_URL}/openid/v1/jwks`;
/** What the CRD defaults `spec.issuers` to. */
const DEFAULT_ISSUERS: readonly AgentIdentityIssuer[] = [{ name: 'kubernetes', type: 'kubernetes', audiences: ['chaperone'] }];

export interface CompileEnv {
  /** The cluster's ServiceAccount issuer (`iss` of projected tokens). Default DEFAULT_SA_ISSUER. */
  readonly serviceAccountIssuer?: string;
  /** Its JWKS URL as the sidecar reaches it. Default DEFAULT_SA_JWKS_URI (the API server, with the pod's CA and token). */
  readonly serviceAccountJwksUri?: string;
  /**
   * Backend for held commands when a RequireApproval rule applies (default `kubernetes`). The sidecar
   * does not start with `kubernetes` yet: `local` (decided on the admin listener) or `none` (held
   * commands are denied) work today.
   */
  readonly approvalsBackend?: ApprovalBackend;
  /** Admin listen host (default `0.0.0.0`, so kubelet probes and Prometheus reach it). */
  readonly adminHost?: string;
  /**
   * Kubernetes Events from the sidecar (SessionStarted, StatementDenied, …) with the pod's own
   * ServiceAccount token; the agent's ServiceAccount needs the chaperone-agent role. Default true.
   */
  readonly auditEvents?: boolean;
  /** The operator's counter report server (docs/audit.md) and the CA file, as the sidecar reaches them; absent: no reports. */
  readonly auditReport?: AuditReportEnv;
}

/**
 * Where sidecars send counter reports. `caConfigMap`: the report server's CA is in a ConfigMap per
 * identity (in its namespace, kept by the operator's audit plugin) that the webhook mounts into the
 * sidecar; it wins over `caFile`.
 */
export interface AuditReportEnv {
  readonly url: string;
  readonly caFile?: string;
  readonly caConfigMap?: { readonly nameFor: (identity: string) => string; readonly key: string };
}

export interface CompileInput {
  readonly identity: AgentIdentity;
  /** Every MaskingPolicy / ApprovalRule the operator knows; selection (namespace, selectors) happens here. */
  readonly maskingPolicies: readonly MaskingPolicy[];
  readonly approvalRules: readonly ApprovalRule[];
  /** Where the webhook mounts Secret keys in the sidecar (default DEFAULT_MOUNT_ROOT). */
  readonly mountRoot?: string;
  readonly env?: CompileEnv;
}

interface Ctx {
  readonly identity: AgentIdentity;
  readonly root: string;
  readonly env: CompileEnv;
  readonly errors: CompileError[];
  readonly warnings: string[];
  readonly mounts: MountSet;
}

function idPath(ctx: Ctx, field: string): string {
  return `AgentIdentity/${ctx.identity.metadata.name ?? ''}.${field}`;
}

// ---------------------------------------------------------------------------------------------
// JSON canonical form and hash

/** JSON with object keys sorted at every level and no whitespace: the same config always gives the same bytes. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export function configHash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Identity

/** The API server serves discovery and JWKS to authenticated callers: the sidecar uses its pod's CA and token. */
function kubernetesIssuer(ctx: Ctx, i: AgentIdentityIssuer, claims: Partial<IssuerConfig>): IssuerConfig {
  return {
    ...claims, kind: 'kubernetes', issuer: i.issuerURL ?? ctx.env.serviceAccountIssuer ?? DEFAULT_SA_ISSUER,
    audiences: claims.audiences ?? ['chaperone'],
    jwksUri: i.jwksURL ?? ctx.env.serviceAccountJwksUri ?? DEFAULT_SA_JWKS_URI,
    caFile: DEFAULT_SA_CA_FILE, bearerTokenFile: DEFAULT_SA_TOKEN_FILE,
  };
}

function issuer(ctx: Ctx, i: AgentIdentityIssuer, index: number): IssuerConfig {
  const lifetime = durationSeconds(i.maxTokenLifetime ?? '1h');
  if (lifetime === undefined) ctx.errors.push({ path: idPath(ctx, `spec.issuers[${index}].maxTokenLifetime`), message: 'is not a duration such as 1h' });
  // Undefined fields vanish in the canonical JSON, so optional claims are copied as they are.
  const claims = {
    audiences: [...(i.audiences ?? ['chaperone'])],
    maxLifetimeSeconds: lifetime ?? 3600,
    usernameClaim: i.usernameClaim, usernamePrefix: i.usernamePrefix, groupsClaim: i.groupsClaim, groupsPrefix: i.groupsPrefix, actingForClaim: i.actingForClaim,
    requiredGroups: (i.requiredGroups ?? []).length > 0 ? [...(i.requiredGroups ?? [])] : undefined,
  };
  if (i.type === 'kubernetes') return kubernetesIssuer(ctx, i, claims);
  if (i.issuerURL === undefined) ctx.errors.push({ path: idPath(ctx, `spec.issuers[${index}].issuerURL`), message: 'an oidc issuer needs issuerURL (the exact iss claim)' });
  const ca = i.caConfigMapRef;
  return {
    kind: 'oidc', issuer: i.issuerURL ?? '', jwksUri: i.jwksURL,
    caFile: ca ? ctx.mounts.add(issuerCaMountPath(i.name, ca.key ?? 'ca.crt', ctx.root), 'configMap', ca.name) : undefined,
    ...claims,
  };
}

// ---------------------------------------------------------------------------------------------
// Connections

function tlsFiles(ctx: Ctx, c: AgentIdentityConnection): Record<string, string> {
  const t = c.tls;
  const out: Record<string, string> = {};
  if (t?.caSecretRef) out.caFile = ctx.mounts.add(tlsCaMountPath(c.name, t.caSecretRef.key ?? 'ca.crt', ctx.root), 'secret', t.caSecretRef.name);
  else if (t?.caConfigMapRef) out.caFile = ctx.mounts.add(tlsCaMountPath(c.name, t.caConfigMapRef.key ?? 'ca.crt', ctx.root), 'configMap', t.caConfigMapRef.name);
  else if (c.protocol === 'kubernetes' && c.upstream?.url === undefined) out.caFile = DEFAULT_SA_CA_FILE;
  if (t?.serverName !== undefined) out.serverName = t.serverName;
  if (t?.clientCertificateSecretRef) {
    out.certFile = ctx.mounts.add(tlsClientMountPath(c.name, 'tls.crt', ctx.root), 'secret', t.clientCertificateSecretRef.name);
    out.keyFile = ctx.mounts.add(tlsClientMountPath(c.name, 'tls.key', ctx.root), 'secret', t.clientCertificateSecretRef.name);
  }
  return out;
}

function secretFile(ctx: Ctx, c: AgentIdentityConnection, key: string): string {
  return ctx.mounts.add(credentialMountPath(c.name, key, ctx.root), 'secret', c.credential?.secretRef?.name ?? '');
}

function httpCredentials(ctx: Ctx, c: AgentIdentityConnection): HttpCredentialsConfig {
  const cr = c.credential;
  if (cr?.secretRef === undefined || cr.type === undefined) return { type: 'none' };
  const token = (): string => secretFile(ctx, c, cr.tokenKey ?? 'token');
  switch (cr.type) {
    case 'Bearer':
      return { type: 'bearer', tokenFile: token() };
    case 'Basic':
      return { type: 'basic', usernameFile: secretFile(ctx, c, cr.usernameKey ?? 'username'), passwordFile: secretFile(ctx, c, cr.passwordKey ?? 'password') };
    case 'Header':
      return { type: 'header', headerName: cr.headerName ?? '', tokenFile: token() };
    case 'Query':
      return { type: 'query', queryParam: cr.queryParam ?? '', tokenFile: token() };
  }
}

type Common = Pick<ConnectionConfig, 'name' | 'listen' | 'access' | 'readOnly'> & { masking?: MaskingConfig };

function postgres(ctx: Ctx, c: AgentIdentityConnection, common: Common, rules: readonly ApprovalRule[]): ConnectionConfig {
  const cr = c.credential;
  return {
    ...common, protocol: 'postgres',
    upstream: { host: c.upstream?.host ?? '', port: c.upstream?.port ?? 5432, database: c.database ?? '', tls: { mode: c.tls?.mode ?? 'verify-full', ...tlsFiles(ctx, c) } },
    credentials: { usernameFile: secretFile(ctx, c, cr?.usernameKey ?? 'username'), passwordFile: secretFile(ctx, c, cr?.passwordKey ?? 'password') },
    policy: { sql: compileSqlPolicy(rules, c.readOnly ?? false, ctx.errors) },
  } as unknown as ConnectionConfig;
}

function kubernetes(ctx: Ctx, c: AgentIdentityConnection, common: Common, rules: readonly ApprovalRule[]): ConnectionConfig {
  // The scoped ServiceAccount's token: the operator/webhook provide it (a pod projects tokens of its own ServiceAccount only).
  const tokenFile = ctx.mounts.add(credentialMountPath(c.name, 'token', ctx.root), 'serviceAccountToken', c.credential?.serviceAccountName ?? '');
  return {
    ...common, protocol: 'kubernetes',
    // client-go sends its token over TLS only: the sidecar makes a loopback certificate and writes its CA where the agent's kubeconfig looks.
    listen: { ...common.listen, selfSignedTls: { caOut: listenerCaFile(c.name) } },
    upstream: { url: c.upstream?.url ?? DEFAULT_KUBERNETES_URL, tls: tlsFiles(ctx, c) },
    credentials: { tokenFile },
    policy: { http: compileHttpPolicy(rules, 'kubernetes', ctx.errors) },
    // The opt-outs of the gateway's guardrails; absent unless asked for, so existing configs compile byte for byte as before.
    ...kubernetesGuardrails(c),
  } as unknown as ConnectionConfig;
}

/** `guardrails` with only the opt-outs set to true; nothing when none is. */
function kubernetesGuardrails(c: AgentIdentityConnection): { guardrails?: { allowTokenRequests?: true; allowProxy?: true } } {
  const g = {
    ...(c.guardrails?.allowTokenRequests === true ? { allowTokenRequests: true as const } : {}),
    ...(c.guardrails?.allowProxy === true ? { allowProxy: true as const } : {}),
  };
  return Object.keys(g).length > 0 ? { guardrails: g } : {};
}

function connection(ctx: Ctx, c: AgentIdentityConnection, masking: MaskingConfig | undefined, rules: readonly ApprovalRule[]): ConnectionConfig {
  const groups = c.allowedGroups ?? [];
  const subjects = c.allowedSubjects ?? [];
  const common: Common = {
    name: c.name,
    listen: { host: '127.0.0.1', port: c.localPort },
    // CRD: no groups and no subjects = any verified agent of an accepted issuer.
    access: { allowedGroups: [...groups], allowedSubjects: [...subjects], anyAuthenticated: groups.length === 0 && subjects.length === 0 },
    readOnly: c.readOnly ?? false,
    masking,
  };
  if (c.protocol === 'postgres') return postgres(ctx, c, common, rules);
  if (c.protocol === 'kubernetes') return kubernetes(ctx, c, common, rules);
  const policy = { http: compileHttpPolicy(rules, 'http', ctx.errors, fixedUpstream(c.upstream?.url)) };
  return { ...common, protocol: 'http', upstream: { url: c.upstream?.url ?? '', tls: tlsFiles(ctx, c) }, credentials: httpCredentials(ctx, c), policy } as unknown as ConnectionConfig;
}

// ---------------------------------------------------------------------------------------------
// Top level

function recording(ctx: Ctx): Record<string, unknown> {
  const r = ctx.identity.spec.recording ?? {};
  const out: Record<string, unknown> = {};
  if (r.sink === 'file' && r.file) {
    out.stdout = false;
    out.file = { path: r.file.path, sync: 'fdatasync' };
    if (r.file.maxSizeMiB !== undefined || r.file.maxFiles !== undefined) ctx.warnings.push(`${idPath(ctx, 'spec.recording.file')}: the sidecar does not rotate recording files yet (maxSizeMiB, maxFiles ignored)`);
  } else out.stdout = true;
  const s = r.signing;
  if (s) {
    const interval = durationSeconds(s.checkpointInterval ?? '1m');
    if (interval === undefined) ctx.errors.push({ path: idPath(ctx, 'spec.recording.signing.checkpointInterval'), message: 'is not a duration such as 1m' });
    out.signing = {
      privateKeyFile: ctx.mounts.add(signingKeyMountPath(s.secretRef.key ?? 'ed25519.pem', ctx.root), 'secret', s.secretRef.name),
      checkpointEveryLines: s.checkpointEveryLines ?? 1000,
      checkpointIntervalSeconds: Math.max(1, interval ?? 60),
    };
  }
  return out;
}

interface Selection {
  readonly policies: readonly MaskingPolicy[];
  readonly rules: readonly ApprovalRule[];
  readonly parts: ReadonlyMap<MaskingPolicy, PolicyPart>;
}

function select(ctx: Ctx, input: CompileInput): Selection {
  const policies = selectMaskingPolicies(ctx.identity, input.maskingPolicies);
  const rules = selectApprovalRules(ctx.identity, input.approvalRules);
  for (const [kind, list] of [['MaskingPolicy', policies], ['ApprovalRule', rules]] as const) {
    for (const o of list) {
      for (const n of missingConnections(o.spec.selector, ctx.identity)) {
        ctx.errors.push({ path: `${kind}/${o.metadata.name ?? ''}.spec.selector.connections`, message: `names connection ${JSON.stringify(n)}, which AgentIdentity ${ctx.identity.metadata.name ?? ''} does not have (it has ${selectableConnections(ctx.identity).map((c) => c.name).join(', ')})${n === EGRESS_CONNECTION ? '; egress is the forward proxy, which the identity has only with spec.interception.forwardProxy' : ''}` });
      }
    }
  }
  const parts = new Map(policies.map((p) => [p, compilePolicyPart(p, ctx.errors, ctx.warnings)] as const));
  return { policies, rules, parts };
}

function approvals(ctx: Ctx, held: readonly ApprovalRule[]): { approvals: Record<string, unknown>; approverGroups: string[] } {
  if (held.length === 0) return { approvals: { backend: 'none' }, approverGroups: [] };
  const backend = ctx.env.approvalsBackend ?? 'kubernetes';
  const timeouts = held.map((r) => durationSeconds(r.spec.approval?.timeout ?? '10m') ?? 600);
  const approverGroups = [...new Set(held.flatMap((r) => r.spec.approval?.approvers.groups ?? []))].sort();
  const out: Record<string, unknown> = { backend, timeoutSeconds: Math.min(86400, Math.max(1, ...timeouts)) };
  if (backend === 'kubernetes') {
    out.kubernetes = { apiServerUrl: DEFAULT_KUBERNETES_URL, caFile: DEFAULT_SA_CA_FILE, tokenFile: DEFAULT_SA_TOKEN_FILE };
    ctx.warnings.push('approvals backend kubernetes: the sidecar does not start with it yet; compile with env.approvalsBackend local or none until it does');
  }
  if (backend === 'local' && approverGroups.length === 0) ctx.errors.push({ path: 'approvals', message: 'backend local needs approver groups, but the RequireApproval rules name users only; add approvers.groups or use backend none' });
  if (backend === 'none') ctx.warnings.push('approvals backend none: commands matching a RequireApproval rule are denied');
  return { approvals: out, approverGroups: backend === 'local' ? approverGroups : [] };
}

function connectionRules(rules: readonly ApprovalRule[], c: AgentIdentityConnection, identity: AgentIdentity): ApprovalRule[] {
  return rules.filter((r) => selectedConnections(r.spec.selector, identity).some((x) => x.name === c.name));
}

/** The report target; a CA ConfigMap becomes a sidecar-only mount under <root>/_audit (rotated in place: the path never changes). */
function auditReport(ctx: Ctx, r: AuditReportEnv): { url: string; caFile?: string; tokenFile: string } {
  const cm = r.caConfigMap;
  const caFile = cm ? ctx.mounts.add(`${ctx.root.replace(/\/+$/, '')}/_audit/${cm.key}`, 'configMap', cm.nameFor(ctx.identity.metadata.name ?? '')) : r.caFile;
  // The sidecar's own API token (the report server TokenReviews it), named like the issuers' bearerTokenFile.
  return { url: r.url, ...(caFile ? { caFile } : {}), tokenFile: DEFAULT_SA_TOKEN_FILE };
}

/** The masking and rules selecting one connection (the forward proxy included); RequireApproval rules that can hold its commands join `held`. */
function policiesFor(ctx: Ctx, sel: Selection, c: AgentIdentityConnection, held: ApprovalRule[]): { masking: MaskingConfig | undefined; rules: ApprovalRule[] } {
  const id = ctx.identity;
  const parts = sel.policies
    .filter((p) => selectedConnections(p.spec.selector, id).some((x) => x.name === c.name))
    .map((p) => ({ policy: p, part: sel.parts.get(p) as PolicyPart }));
  const masking = mergeMasking(parts, { connection: c.name, protocol: c.protocol, errors: ctx.errors, warnings: ctx.warnings, mounts: ctx.mounts, mountRoot: ctx.root });
  const rules = connectionRules(sel.rules, c, id);
  const block = c.protocol === 'postgres' ? 'sql' : c.protocol;
  held.push(...rules.filter((r) => r.spec.action === 'RequireApproval' && r.spec.match[block] !== undefined && !held.includes(r)));
  return { masking, rules };
}

/** The forward proxy's MaskingPolicies and ApprovalRules (it is the http connection `egress` to selectors); undefined without a proxy. */
function proxyPolicies(ctx: Ctx, sel: Selection, held: ApprovalRule[]): EgressPolicies | undefined {
  const id = ctx.identity;
  const fp = id.spec.interception?.forwardProxy;
  if (fp === undefined) return undefined;
  if (id.spec.connections.some((c) => c.name === EGRESS_CONNECTION)) {
    ctx.errors.push({ path: idPath(ctx, 'spec.connections'), message: `a connection is named ${EGRESS_CONNECTION}, the name of the forward proxy (spec.interception.forwardProxy) to MaskingPolicies and ApprovalRules; rename the connection` });
  }
  const { masking, rules } = policiesFor(ctx, sel, { name: EGRESS_CONNECTION, protocol: 'http', localPort: fp.localPort }, held);
  return { masking, policy: { http: compileHttpPolicy(rules, 'http', ctx.errors, 'proxy') } };
}

function build(ctx: Ctx, sel: Selection): SidecarConfigFile {
  const id = ctx.identity;
  const held: ApprovalRule[] = [];
  const connections = id.spec.connections.map((c) => {
    const { masking, rules } = policiesFor(ctx, sel, c, held);
    return connection(ctx, c, masking, rules);
  });
  const proxy = proxyPolicies(ctx, sel, held);
  const a = approvals(ctx, held);
  const egress = egressSection(id, ctx.errors, proxy);
  const interception = interceptionSection(id);
  const level = id.spec.sidecar?.logLevel;
  return {
    version: 1,
    identity: {
      name: id.metadata.name,
      ...(ctx.env.auditEvents ?? true ? { events: {} } : {}),
      ...(ctx.env.auditReport ? { report: auditReport(ctx, ctx.env.auditReport) } : {}),
      issuers: (id.spec.issuers ?? DEFAULT_ISSUERS).map((i, n) => issuer(ctx, i, n)),
    },
    connections,
    approvals: a.approvals,
    recording: recording(ctx),
    admin: { host: ctx.env.adminHost ?? '0.0.0.0', port: id.spec.sidecar?.adminPort ?? 9901, approverGroups: a.approverGroups },
    log: { level: level ?? 'info' },
    ...(egress !== undefined ? { egress } : {}),
    ...(interception !== undefined ? { interception } : {}),
  };
}

/** Compiles one identity's sidecar config; errors name the resource and field, and what to change. */
export function compileIdentity(input: CompileInput): CompileResult {
  const ctx: Ctx = {
    identity: input.identity, root: input.mountRoot ?? DEFAULT_MOUNT_ROOT, env: input.env ?? {}, errors: [], warnings: [], mounts: new MountSet(),
  };
  const sel = select(ctx, input);
  const config = build(ctx, sel);
  if (ctx.errors.length > 0) return { ok: false, errors: ctx.errors };
  const text = canonicalJson(config);
  const hash = configHash(text);
  // The sidecar's own validator is the contract: anything it refuses is a compiler bug or an unsupported combination.
  const checked = checkConfig(JSON.parse(text) as unknown, hash, { checkFiles: false });
  if (!checked.ok) return { ok: false, errors: checked.errors.map((e) => ({ path: `compiled config ${e.path}`, message: e.message })) };
  return {
    ok: true, config: JSON.parse(text) as SidecarConfigFile, text, hash, mounts: ctx.mounts.list(),
    maskingPolicies: sel.policies.map((p) => p.metadata.name ?? ''), approvalRules: sel.rules.map((r) => r.metadata.name ?? ''),
    warnings: [...new Set(ctx.warnings)],
  };
}
