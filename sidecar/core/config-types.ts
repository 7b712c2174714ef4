// Types of the compiled sidecar config (the file the operator writes into a ConfigMap), after defaults are applied.
//
// The file format is `SidecarConfigFile` (fields with a default may be left out); `loadConfig` in
// config.ts validates it against the JSON Schema in config-schema.ts and returns a `SidecarConfig`,
// where every defaulted field is filled in. Credentials are never values here: always paths of
// files (mounted Secrets) that only the protocol code reads, when it connects.
import type { Logger } from 'pino';
import type { AdminRoutes } from '../admin/routes.ts';
import type { ApprovalBackend as ApprovalBackendImpl } from '../protocols/postgres/approval-hold.ts';
import type { IssuerOptions } from '../identity/options.ts';
import type { Masker } from '../masking/index.ts';
import type { TokenVerifier } from '../identity/verify-token.ts';
import type { Recorder } from '../recording/writer.ts';
import type { SidecarMetrics } from './metrics.ts';
import type { CompiledSqlPolicy, SqlPolicyJson } from '../policy/sql-rules.ts';

export const CONFIG_VERSION = 1;

export type Protocol = 'postgres' | 'http' | 'kubernetes';
export const PROTOCOLS: readonly Protocol[] = ['postgres', 'http', 'kubernetes'];

/** Connection listeners bind to loopback: the agent in the same pod reaches them, nothing else does. */
export const DEFAULT_LISTEN_HOST = '127.0.0.1';
/** Same default as AgentIdentity `spec.sidecar.adminPort`. Loopback by default; the operator sets `0.0.0.0` so kubelet probes reach it. */
export const DEFAULT_ADMIN_HOST = '127.0.0.1';
export const DEFAULT_ADMIN_PORT = 9901;
export const DEFAULT_POSTGRES_PORT = 5432;
/** Same as the PostgreSQL framers' DEFAULT_MAX_MESSAGE_SIZE (protocols/postgres/codes.ts). */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** A session with no traffic in either direction for this long is closed (0 = never). */
export const DEFAULT_IDLE_TIMEOUT_SECONDS = 3600;
export const DEFAULT_CONNECT_TIMEOUT_SECONDS = 10;
/** Concurrent sessions per connection; the next one is refused with a clear error. */
export const DEFAULT_MAX_SESSIONS = 100;
/** How long a held (RequireApproval) command waits for a decision before it is denied. */
export const DEFAULT_APPROVAL_TIMEOUT_SECONDS = 600;
/** SIGTERM: stop accepting, then give open sessions this long before closing them (Kubernetes' grace period is 30 s). */
export const DEFAULT_DRAIN_TIMEOUT_SECONDS = 20;
/** Hot reload: wait this long after the last file event before reading (a ConfigMap swap is several events). */
export const DEFAULT_RELOAD_DEBOUNCE_MS = 200;
export const DEFAULT_CHECKPOINT_EVERY_LINES = 1000;
export const DEFAULT_CHECKPOINT_INTERVAL_SECONDS = 60;
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

// ---------------------------------------------------------------------------------------------
// Identity

/** An accepted issuer: identity's IssuerOptions minus the inline CA (the config names files only). */
export type IssuerConfig = Omit<IssuerOptions, 'caPem'>;

/** Kubernetes Events on the Pod and the AgentIdentity (sidecar/audit): the sidecar's own API token and CA. */
export interface AuditEventsConfig {
  readonly apiServerUrl?: string;
  readonly caFile?: string;
  readonly tokenFile?: string;
}

/** Counter reports to the operator, which keeps AgentIdentity status (sidecar/audit/reporter.ts). */
export interface AuditReportConfig {
  /** The operator's report server, e.g. `https://chaperone-audit.chaperone-system.svc:8444`. */
  readonly url: string;
  readonly caFile?: string;
  /** The sidecar's API-audience ServiceAccount token (the agent never holds one). */
  readonly tokenFile?: string;
  readonly intervalSeconds?: number;
}

export interface IdentityConfig {
  /** The AgentIdentity (in the pod's namespace) this sidecar enforces: recorded in session.start, target of Events and reports. */
  readonly name?: string;
  readonly events?: AuditEventsConfig;
  readonly report?: AuditReportConfig;
  readonly issuers: readonly IssuerConfig[];
  /** Verified-token cache (identity DEFAULT_VERIFIED_CACHE_SIZE when absent; 0 turns it off). */
  readonly verifiedCacheSize?: number;
  readonly verifiedCacheSeconds?: number;
  readonly maxTokenBytes?: number;
}

/** The sidecar's own pod comes from the downward API env (POD_NAME, POD_UID, POD_NAMESPACE), never from the file. */
export interface PodInfo {
  readonly name: string | undefined;
  readonly uid: string | undefined;
  readonly namespace: string | undefined;
}

// ---------------------------------------------------------------------------------------------
// Connections

export interface ListenConfig {
  readonly host: string;
  readonly port: number;
  /** TLS on the listener (postgres); absent = plaintext only. */
  readonly tls?: ListenTlsConfig;
  /** kubernetes: TLS with a certificate the sidecar makes at start (sidecar/tls/loopback.ts); only its CA certificate is written, to `caOut`. */
  readonly selfSignedTls?: SelfSignedTlsConfig;
}

export interface SelfSignedTlsConfig {
  /** Where the CA certificate (public) is written, for the agent's kubeconfig `certificate-authority` (not `*File`: the sidecar writes it, nothing has to exist). */
  readonly caOut: string;
}

export interface ListenTlsConfig {
  readonly certFile: string;
  readonly keyFile: string;
  /** Refuse plaintext start-ups. */
  readonly required: boolean;
}

/** Who may open the connection (identity/authorize.ts `mayUseConnection`); empty lists and no anyAuthenticated = nobody. */
export interface AccessConfig {
  readonly allowedGroups: readonly string[];
  readonly allowedSubjects: readonly string[];
  readonly anyAuthenticated: boolean;
}

export interface LimitsConfig {
  /** Largest single protocol message (PostgreSQL frame) accepted from either side. */
  readonly maxMessageBytes: number;
  /** No client message for this long while the session waits for the client outside a transaction (0 = never). */
  readonly idleTimeoutSeconds: number;
  /** The same inside an open transaction (0 = never); optional so older literal configs still type-check. */
  readonly idleInTransactionTimeoutSeconds?: number;
  /** Hard bound on a session's age (0 or absent = none). */
  readonly maxSessionSeconds?: number;
  /** Sent upstream as `statement_timeout` when set (PostgreSQL); absent = the server's setting. */
  readonly statementTimeoutSeconds: number | undefined;
  readonly connectTimeoutSeconds: number;
  readonly maxSessions: number;
}

export type TlsMode = 'disable' | 'require' | 'verify-full';

export interface PostgresTlsConfig {
  readonly mode: TlsMode;
  /** PEM CA bundle (verify-full); absent = the system roots. */
  readonly caFile: string | undefined;
  /** SNI and the certificate name to check, when it differs from upstream.host. */
  readonly serverName: string | undefined;
  /** Client certificate for mutual TLS (both or neither). */
  readonly certFile: string | undefined;
  readonly keyFile: string | undefined;
}

export interface PostgresUpstreamConfig {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly tls: PostgresTlsConfig;
}

/** Either a username + password file pair, or a file holding a `postgresql://user:pass@…` URL (its host/port/db are ignored: upstream decides). */
export type PostgresCredentialsConfig =
  | { readonly usernameFile: string; readonly passwordFile: string; readonly urlFile?: undefined }
  | { readonly urlFile: string; readonly usernameFile?: undefined; readonly passwordFile?: undefined };

export interface HttpTlsConfig {
  readonly caFile: string | undefined;
  readonly serverName: string | undefined;
  readonly certFile: string | undefined;
  readonly keyFile: string | undefined;
}

export interface UrlUpstreamConfig {
  /** Base URL with scheme; request paths are appended. */
  readonly url: string;
  readonly tls: HttpTlsConfig;
}

export type HttpCredentialsConfig =
  | { readonly type: 'bearer'; readonly tokenFile: string }
  | { readonly type: 'basic'; readonly usernameFile: string; readonly passwordFile: string }
  | { readonly type: 'header'; readonly headerName: string; readonly tokenFile: string }
  | { readonly type: 'query'; readonly queryParam: string; readonly tokenFile: string }
  | { readonly type: 'none' };

export interface KubernetesCredentialsConfig {
  /** The scoped ServiceAccount token (a projected token file; re-read on rotation). */
  readonly tokenFile: string;
}

/** Masking options for `createMasker` (masking/options.ts) as JSON: the HMAC key is a file path, not bytes. */
export interface MaskingConfig {
  readonly detectors?: readonly string[];
  readonly disable?: readonly string[];
  readonly replacement?: ReplacementConfig;
  readonly replacements?: Readonly<Record<string, ReplacementConfig>>;
  /** File holding the HMAC key bytes for `hmac` replacements (at least 16 bytes). */
  readonly hmacKeyFile?: string;
  readonly customPatterns?: readonly {
    readonly id: string;
    readonly pattern: string;
    readonly ignoreCase?: boolean;
    readonly keywords?: readonly string[];
    readonly maxLength?: number;
    readonly category?: 'secret' | 'pii';
  }[];
  readonly keywordLists?: readonly { readonly id: string; readonly words: readonly string[] }[];
  readonly fieldRules?: readonly { readonly id?: string; readonly names: readonly string[] }[];
  readonly decodeEscapes?: boolean;
  readonly decodeBase64InJson?: boolean;
  readonly maxWindow?: number;
}

export type ReplacementConfig =
  | { readonly kind: 'placeholder'; readonly format?: string }
  | { readonly kind: 'partial'; readonly keepLast: number; readonly maskChar?: string }
  | { readonly kind: 'hmac'; readonly prefix?: string; readonly length?: number };

interface ConnectionCommon {
  /** Unique; rules, metrics, recordings and logs name the connection by it. */
  readonly name: string;
  readonly listen: ListenConfig;
  readonly access: AccessConfig;
  /** Refuse every write (postgres: read statements only and read-only transactions upstream). */
  readonly readOnly: boolean;
  readonly limits: LimitsConfig;
  /** Absent in the file = the default detectors (`{}`); masking cannot be switched off by leaving it out. */
  readonly masking: MaskingConfig;
}

export interface PostgresConnectionConfig extends ConnectionCommon {
  readonly protocol: 'postgres';
  readonly upstream: PostgresUpstreamConfig;
  readonly credentials: PostgresCredentialsConfig;
  /**
   * `sql` is the JSON `compileSqlPolicy` takes (policy/sql-rules.ts). Absent in the file =
   * `{ default: 'allow' }` (the connection itself is the grant; the built-in invariants always
   * apply). `readOnly: true` adds the `read-only` pack to `sql.packs` at load time.
   */
  readonly policy: { readonly sql: SqlPolicyJson };
}

/** HTTP rules are opaque here until the HTTP gateway's compiler exists; it validates them. */
export interface HttpPolicyConfig {
  readonly default?: 'allow' | 'deny';
  readonly rules?: readonly Readonly<Record<string, unknown>>[];
}

export interface HttpConnectionConfig extends ConnectionCommon {
  readonly protocol: 'http';
  readonly upstream: UrlUpstreamConfig;
  readonly credentials: HttpCredentialsConfig;
  readonly policy: { readonly http: HttpPolicyConfig };
}

export interface KubernetesConnectionConfig extends ConnectionCommon {
  readonly protocol: 'kubernetes';
  readonly upstream: UrlUpstreamConfig;
  readonly credentials: KubernetesCredentialsConfig;
  readonly policy: { readonly http: HttpPolicyConfig };
  /** Opt-outs of the gateway's built-in guardrails (docs/kubernetes-gateway.md "Built-in guardrails"). */
  readonly guardrails?: KubernetesGuardrailsConfig;
}

export interface KubernetesGuardrailsConfig {
  /** Let the agent mint ServiceAccount tokens (TokenRequest, legacy token Secrets), except for the connection's own ServiceAccount. Default false. */
  readonly allowTokenRequests?: boolean;
  /** Let the agent reach pods and services through the API server (pods/proxy, services/proxy, pods/portforward), except the agent's own pod; answers are masked as text. Default false. */
  readonly allowProxy?: boolean;
}

export type ConnectionConfig = PostgresConnectionConfig | HttpConnectionConfig | KubernetesConnectionConfig;

// ---------------------------------------------------------------------------------------------
// Egress forward proxy (protocols/egress; docs/http.md "Egress forward proxy")

export const DEFAULT_EGRESS_NAME = 'egress';
export const DEFAULT_EGRESS_PORT = 3128;
/** A CONNECT tunnel with no bytes in either direction for this long is closed. */
export const DEFAULT_TUNNEL_IDLE_TIMEOUT_SECONDS = 300;

/** `public`: public addresses only; `private`: also RFC 1918, ULA, CGNAT; `any`: also loopback and link-local (metadata). */
export type EgressAddressScope = 'public' | 'private' | 'any';

export interface EgressAllowConfig {
  /** `api.example.com`, `*.example.com` (subdomains) or an IP literal. */
  readonly host: string;
  /** Absent: 443 for CONNECT, 80 for plain HTTP. */
  readonly ports?: readonly number[];
  readonly addresses?: EgressAddressScope;
}

export interface EgressConfig {
  /** Recordings, metrics and logs name the proxy by it (like a connection name). */
  readonly name: string;
  readonly listen: { readonly host: string; readonly port: number };
  readonly access: AccessConfig;
  readonly allow: readonly EgressAllowConfig[];
  readonly limits: LimitsConfig;
  /** Masking of plain-HTTP responses (CONNECT tunnels are opaque). */
  readonly masking: MaskingConfig;
  /** Rules for plain-HTTP requests (the HTTP gateway's rule language); tunnels are judged by the allow-list only. */
  readonly policy: { readonly http: HttpPolicyConfig };
  readonly tunnelIdleTimeoutSeconds: number;
}

/** `interception` (docs/interception.md): what init-network reads besides the connections, and whether the sidecar serves redirected IPv6 dials. */
export interface InterceptionSectionConfig {
  /** `transparent`: the sidecar also listens on [::1] at each loopback listener's port (ip6tables REDIRECT lands there). */
  readonly mode: 'explicit' | 'transparent';
  readonly egress?: {
    readonly policy: 'allow' | 'deny-by-default';
    readonly allowDNS: boolean;
    readonly allow: readonly { readonly cidr: string; readonly ports: readonly number[] }[];
  };
}

// ---------------------------------------------------------------------------------------------
// Approvals, recording, admin, log, shutdown

/** `none`: no backend, so every RequireApproval outcome is denied (fail closed). */
export type ApprovalBackend = 'none' | 'local' | 'kubernetes';

export interface KubernetesApprovalsConfig {
  /** API server base URL (default in-cluster `https://kubernetes.default.svc`). */
  readonly apiServerUrl: string;
  readonly caFile: string | undefined;
  /** The sidecar's own ServiceAccount token file (may create/watch ApprovalRequests). */
  readonly tokenFile: string;
}

export interface ApprovalsConfig {
  readonly backend: ApprovalBackend;
  readonly timeoutSeconds: number;
  /** Only with backend `kubernetes`. */
  readonly kubernetes: KubernetesApprovalsConfig | undefined;
}

export type RecordingSync = 'fdatasync' | 'fsync' | 'none';

export interface RecordingConfig {
  /** JSON lines on stdout (the container log). Logs go to stderr so the two never mix. */
  readonly stdout: boolean;
  readonly file: { readonly path: string; readonly sync: RecordingSync } | undefined;
  readonly signing: {
    /** Ed25519 private key (PKCS#8 PEM) file. */
    readonly privateKeyFile: string;
    readonly checkpointEveryLines: number;
    readonly checkpointIntervalSeconds: number;
  } | undefined;
}

export interface AdminConfig {
  readonly host: string;
  readonly port: number;
  /** Groups whose tokens may decide held commands through the admin listener (approvals backend `local`). */
  readonly approverGroups: readonly string[];
}

export interface LogConfig {
  readonly level: LogLevel;
}

export interface ShutdownConfig {
  readonly drainTimeoutSeconds: number;
}

/** The loaded config, every default applied. */
export interface SidecarConfig {
  readonly version: typeof CONFIG_VERSION;
  readonly identity: IdentityConfig;
  readonly connections: readonly ConnectionConfig[];
  readonly approvals: ApprovalsConfig;
  readonly recording: RecordingConfig;
  readonly admin: AdminConfig;
  readonly log: LogConfig;
  readonly shutdown: ShutdownConfig;
  /** The egress forward proxy; absent = off. */
  readonly egress?: EgressConfig | undefined;
  /** Transparent interception settings; absent = explicit mode. */
  readonly interception?: InterceptionSectionConfig | undefined;
}

/** What a file may contain: the same shape with every defaulted field optional (the JSON Schema is exact). */
export type SidecarConfigFile = DeepPartialExcept<SidecarConfig>;

/** Recursive optional (loose on purpose: the JSON Schema, not this type, says what is required). */
export type DeepPartialExcept<T> = T extends readonly (infer U)[]
  ? readonly DeepPartialExcept<U>[]
  : T extends object
    ? { readonly [K in keyof T]?: DeepPartialExcept<T[K]> }
    : T;

/** One problem in a config: the field's path (`connections[1].upstream.port`) and what is wrong. */
export interface ConfigError {
  readonly path: string;
  readonly message: string;
}

export type LoadResult =
  | {
      readonly ok: true;
      readonly config: SidecarConfig;
      /** sha256 (hex) of the file's bytes. */
      readonly hash: string;
      /** Compiled SQL policy per postgres connection name (already checked; reuse it). */
      readonly sqlPolicies: ReadonlyMap<string, CompiledSqlPolicy>;
    }
  | { readonly ok: false; readonly errors: readonly ConfigError[] };

// ---------------------------------------------------------------------------------------------
// The contract between main.ts and a protocol's listener module (protocols/<p>/listener.ts).

/** One connection's compiled state from one good config (docs/sidecar.md "Hot reload"). */
export interface ConnectionState<C extends ConnectionConfig = ConnectionConfig> {
  readonly config: C;
  /** sha256 of the whole config file that produced this state (recorded with each session). */
  readonly configHash: string;
  readonly approvals: ApprovalsConfig;
  /** Compiled from `config.policy.sql` (postgres); undefined for other protocols. */
  readonly sqlPolicy: CompiledSqlPolicy | undefined;
  /** Built from `config.masking` with the HMAC key file read. */
  readonly masker: Masker;
  /** `identity.name`: the AgentIdentity this sidecar enforces (recordings, ApprovalRequests, Events). */
  readonly identityName?: string | undefined;
}

/**
 * Handed to a listener module's `startListener`. Reload semantics: a reloaded config applies to NEW
 * sessions; an open session keeps the state it started with (one policy and one configHash per
 * session, so its recording is judged by one config). A listener that calls `current()` for each
 * new session sets `followsReloads: true` and keeps running across reloads; for one that does not,
 * main.ts starts a fresh listener with the new config and lets the old one finish its open
 * sessions. A reload that removes the connection stops its listener; its sessions get
 * `shutdown.drainTimeoutSeconds` and are then closed.
 */
export interface ListenerContext<C extends ConnectionConfig = ConnectionConfig> {
  readonly name: string;
  current(): ConnectionState<C>;
  readonly pod: PodInfo;
  readonly services: SidecarServices;
}

export interface RunningListener {
  /** The bound address (port 0 in the config = an ephemeral port, for tests). */
  readonly address: { readonly host: string; readonly port: number };
  /** True if new sessions take `ctx.current()` (then a reload needs no new listener). */
  readonly followsReloads?: boolean;
  /** Open sessions right now. */
  sessions(): number;
  /**
   * Stop accepting at once (the port is free when this returns its promise or earlier); let open
   * sessions finish until `deadline` (ms since the epoch; Infinity = let them end on their own),
   * then close them. May be called again with an earlier deadline.
   */
  stop(deadline: number): Promise<void>;
}

/** What `protocols/<protocol>/listener.ts` exports; main.ts imports it only when a connection uses the protocol. */
export interface ProtocolModule {
  startListener(ctx: ListenerContext): Promise<RunningListener>;
}

/** The runtime services main.ts hands every listener (`ListenerContext.services`). */
export interface SidecarServices {
  readonly verifier: TokenVerifier;
  readonly recorder: Recorder;
  readonly metrics: SidecarMetrics;
  /** The process logger; make a per-session child with core/log.ts `sessionLogger`. */
  readonly log: Logger;
  /** Register admin routes here (e.g. local approval endpoints); see admin/routes.ts. */
  readonly admin: AdminRoutes;
  /** Where held (RequireApproval) commands wait: built once from `approvals.backend`. */
  readonly approvals: ApprovalBackendImpl;
}
