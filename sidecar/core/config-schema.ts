// JSON Schema of the sidecar config file: the one definition that validation (config.ts) and docs/sidecar.md (config-docs.ts) both use.
//
// Every object refuses unknown fields (a typo must not silently disable a rule). `default` values
// are documentation: config.ts applies the same DEFAULT_* constants in code.
import { DEFAULT_ALGORITHMS, DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_FETCH_TIMEOUT_MS, DEFAULT_GROUPS_CLAIM, DEFAULT_JWKS_CACHE_TTL_SECONDS, DEFAULT_JWKS_MIN_REFETCH_SECONDS, DEFAULT_MAX_LIFETIME_SECONDS, DEFAULT_MAX_TOKEN_BYTES, DEFAULT_USERNAME_CLAIM, DEFAULT_VERIFIED_CACHE_SECONDS, DEFAULT_VERIFIED_CACHE_SIZE } from '../identity/options.ts';
import {
  CONFIG_VERSION, DEFAULT_ADMIN_HOST, DEFAULT_ADMIN_PORT, DEFAULT_APPROVAL_TIMEOUT_SECONDS, DEFAULT_CHECKPOINT_EVERY_LINES, DEFAULT_CHECKPOINT_INTERVAL_SECONDS,
  DEFAULT_CONNECT_TIMEOUT_SECONDS, DEFAULT_DRAIN_TIMEOUT_SECONDS, DEFAULT_IDLE_TIMEOUT_SECONDS, DEFAULT_LISTEN_HOST, DEFAULT_LOG_LEVEL, DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_SESSIONS, DEFAULT_POSTGRES_PORT, LOG_LEVELS, DEFAULT_EGRESS_NAME, DEFAULT_EGRESS_PORT, DEFAULT_TUNNEL_IDLE_TIMEOUT_SECONDS,
} from './config-types.ts';

export type JsonSchema = Readonly<Record<string, unknown>>;

export const DEFAULT_KUBERNETES_URL = 'https://kubernetes.default.svc';
export const DEFAULT_SA_TOKEN_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';
export const DEFAULT_SA_CA_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt';

const str = (description: string, extra: Record<string, unknown> = {}): JsonSchema => ({ type: 'string', minLength: 1, description, ...extra });
const file = (description: string): JsonSchema => str(`${description} (a file path; the file is read only when used, never logged)`);
const bool = (description: string, dflt?: boolean): JsonSchema => ({ type: 'boolean', description, ...(dflt === undefined ? {} : { default: dflt }) });
const int = (description: string, minimum: number, maximum: number, dflt?: number): JsonSchema => ({ type: 'integer', minimum, maximum, description, ...(dflt === undefined ? {} : { default: dflt }) });
const strings = (description: string): JsonSchema => ({ type: 'array', items: { type: 'string', minLength: 1 }, description, default: [] });
const enumOf = (description: string, values: readonly string[], dflt?: string): JsonSchema => ({ type: 'string', enum: [...values], description, ...(dflt === undefined ? {} : { default: dflt }) });

function obj(description: string, properties: Record<string, JsonSchema>, required: readonly string[] = []): JsonSchema {
  return { type: 'object', description, properties, required: [...required], additionalProperties: false };
}

const port = (description: string, dflt?: number): JsonSchema => int(description, 0, 65535, dflt);

const issuer = obj('One accepted token issuer (identity/options.ts IssuerOptions).', {
  issuer: str('Exact `iss` value of accepted tokens, e.g. `https://kubernetes.default.svc`.'),
  audiences: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1, description: 'Accepted `aud` values; a token must name at least one.' },
  kind: enumOf('`kubernetes`: a ServiceAccount issuer (pod binding checked against this pod); `oidc`: any OpenID Connect issuer.', ['oidc', 'kubernetes'], 'oidc'),
  jwksUri: str('JWKS URL; without it `<issuer>/.well-known/openid-configuration` names it.'),
  caFile: file('PEM CA bundle for TLS to the issuer'),
  bearerTokenFile: file('Bearer token sent when fetching discovery and JWKS (the API server serves them to authenticated callers); re-read on every fetch'),
  algorithms: { type: 'array', items: { type: 'string', enum: [...DEFAULT_ALGORITHMS] }, minItems: 1, description: 'Accepted signature algorithms (asymmetric only; `none` and HS* are never accepted).', default: [...DEFAULT_ALGORITHMS] },
  clockSkewSeconds: int('Allowed clock skew for `exp`, `nbf`, `iat`.', 0, 600, DEFAULT_CLOCK_SKEW_SECONDS),
  maxLifetimeSeconds: int('Longest token lifetime accepted (`exp` - `iat`).', 1, 31 * 86400, DEFAULT_MAX_LIFETIME_SECONDS),
  groupsClaim: str('Claim holding the groups (dotted path allowed).', { default: DEFAULT_GROUPS_CLAIM }),
  usernameClaim: str('Claim holding the username (dotted path allowed).', { default: DEFAULT_USERNAME_CLAIM }),
  usernamePrefix: { type: 'string', description: 'Prefix added to usernames from this issuer (e.g. `oidc:`).', default: '' },
  groupsPrefix: { type: 'string', description: 'Prefix added to every group from this issuer.', default: '' },
  actingForClaim: str('Claim naming the human the agent acts for (dotted path, e.g. `act.sub`).'),
  jwksCacheTtlSeconds: int('How long fetched keys are used before a refetch.', 0, 86400, DEFAULT_JWKS_CACHE_TTL_SECONDS),
  jwksMinRefetchSeconds: int('At most one JWKS fetch per this many seconds (unknown-kid floods do not flood the issuer).', 0, 3600, DEFAULT_JWKS_MIN_REFETCH_SECONDS),
  fetchTimeoutMs: int('Deadline for one discovery or JWKS fetch.', 1, 120_000, DEFAULT_FETCH_TIMEOUT_MS),
  requirePodBinding: bool('Kubernetes issuers: refuse tokens not bound to a pod.', true),
  requiredGroups: strings('Every one of these groups (after `groupsPrefix`; for `kubernetes` issuers the ServiceAccount groups) must be in the token, else it is refused (`missing-group`).'),
}, ['issuer', 'audiences']);

const identity = obj('How agent tokens are verified. The sidecar\'s own pod comes from the env `POD_NAME`, `POD_UID`, `POD_NAMESPACE` (downward API), not from this file.', {
  name: str('The AgentIdentity (in the pod\'s namespace) this sidecar enforces: recorded as `identity` in session.start, and the object Events and counter reports are about.', { maxLength: 253 }),
  events: obj('Kubernetes Events (SessionStarted/Ended, StatementDenied, Approval*, PolicyReloaded/Invalid) on the Pod and the AgentIdentity, folded and rate limited (docs/audit.md). Absent: off. Needs POD_NAME and POD_NAMESPACE.', {
    apiServerUrl: str('API server URL.', { pattern: '^https?://', default: DEFAULT_KUBERNETES_URL }),
    caFile: file('Cluster CA bundle; default the ServiceAccount CA'),
    tokenFile: file('The sidecar\'s own token (may create events.events.k8s.io); default the ServiceAccount token'),
  }),
  report: obj('Counter reports to the operator, which keeps AgentIdentity status.counters and lastSession (docs/audit.md). Absent: off. Needs `name` and POD_NAME, POD_NAMESPACE, POD_UID.', {
    url: str('The operator\'s report server (https).', { pattern: '^https?://' }),
    caFile: file('CA that signed the report server\'s certificate'),
    tokenFile: file('The sidecar\'s API-audience ServiceAccount token (the operator TokenReviews it; the agent only holds a `chaperone`-audience token); default the ServiceAccount token'),
    intervalSeconds: int('Report at most this often (counts accumulate in between).', 1, 3600, 30),
  }, ['url']),
  issuers: { type: 'array', items: issuer, minItems: 1, description: 'Accepted issuers; a token must verify against one of them.' },
  verifiedCacheSize: int('Verified tokens remembered (0 turns the cache off).', 0, 1_000_000, DEFAULT_VERIFIED_CACHE_SIZE),
  verifiedCacheSeconds: int('A remembered verification is redone after this long.', 0, 3600, DEFAULT_VERIFIED_CACHE_SECONDS),
  maxTokenBytes: int('Longer tokens are refused before any decoding.', 256, 1 << 20, DEFAULT_MAX_TOKEN_BYTES),
}, ['issuers']);

const listen = obj('Where the sidecar listens for the agent.', {
  host: str('Listen address; keep it loopback (the agent is in the same pod).', { default: DEFAULT_LISTEN_HOST }),
  port: port('Listen port (0: an ephemeral port, for tests).'),
  tls: obj('TLS on the listener (postgres: answers SSLRequest with `S`). Absent: plaintext only (SSLRequest is answered `N`).', {
    certFile: file('Server certificate chain (PEM); re-read when the file changes'),
    keyFile: file('Private key of the certificate (PEM); re-read when the file changes'),
    required: bool('Refuse a plaintext start-up (`CHAP_ERR_PG_TLS_REQUIRED`); clients must use `sslmode=require` or stricter.', false),
  }, ['certFile', 'keyFile']),
  selfSignedTls: obj('kubernetes connections: TLS with a CA and a serving certificate for 127.0.0.1, ::1 and localhost that the sidecar makes in memory at start (client-go sends its token over TLS only). Only the CA certificate leaves the process; not with `tls`.', {
    caOut: str('Where the CA certificate (public, PEM) is written for the agent\'s kubeconfig `certificate-authority` (a file path in a volume the agents mount read-only).'),
  }, ['caOut']),
}, ['port']);

const access = obj('Who may open the connection. With no groups, no subjects and anyAuthenticated false, nobody may (fail closed).', {
  allowedGroups: strings('A token carrying any of these groups may use the connection.'),
  allowedSubjects: strings('Usernames (`system:serviceaccount:ns:sa`, or a prefixed OIDC username) or `<issuer>#<sub>` pairs that may use the connection.'),
  anyAuthenticated: bool('Every verified token of an accepted issuer may use the connection.', false),
});

const limits = obj('Per-session bounds.', {
  maxMessageBytes: int('Largest single protocol message from either side; a larger one ends the session with a FATAL error.', 1024, 1 << 30, DEFAULT_MAX_MESSAGE_BYTES),
  idleTimeoutSeconds: int('Close a session after this long without a client message while it waits for the client outside a transaction (also before login) (0: never). A running statement never counts as idle.', 0, 7 * 86400, DEFAULT_IDLE_TIMEOUT_SECONDS),
  idleInTransactionTimeoutSeconds: int('Close a session after this long without a client message inside an open transaction (postgres; its locks are released by the rollback) (0: never).', 0, 7 * 86400, 0),
  maxSessionSeconds: int('Close a session this long after it was opened, whatever it is doing (0: no limit).', 0, 31 * 86400, 0),
  statementTimeoutSeconds: int('Sent upstream as `statement_timeout` (postgres); absent: the server\'s setting.', 1, 86400),
  connectTimeoutSeconds: int('Deadline for connecting and authenticating upstream.', 1, 600, DEFAULT_CONNECT_TIMEOUT_SECONDS),
  maxSessions: int('Concurrent sessions on this connection; the next one is refused.', 1, 100_000, DEFAULT_MAX_SESSIONS),
});

const replacement: JsonSchema = {
  type: 'object',
  description: 'How a finding is replaced: `placeholder` (`format`, `{id}` = rule id), `partial` (`keepLast`, `maskChar`) or `hmac` (`prefix`, `length`; needs hmacKeyFile).',
  properties: {
    kind: { type: 'string', enum: ['placeholder', 'partial', 'hmac'], description: 'Which replacement.' },
    format: { type: 'string', description: 'placeholder: the text; `{id}` becomes the rule id.', default: '[MASKED:{id}]' },
    keepLast: { type: 'integer', minimum: 0, maximum: 4, description: 'partial: characters kept at the end.' },
    maskChar: { type: 'string', minLength: 1, description: 'partial: the masking character.', default: '*' },
    prefix: { type: 'string', description: 'hmac: text before the keyed hash.' },
    length: { type: 'integer', minimum: 8, maximum: 64, description: 'hmac: hex characters of the keyed hash.' },
  },
  required: ['kind'],
  additionalProperties: false,
};

const masking = obj('Masking options for the masking engine (masking/options.ts MaskerOptions, with the HMAC key as a file). Absent: the default detectors.', {
  detectors: { ...strings('Built-in detectors that run: ids (docs/detectors.md), the categories `secret` / `pii`, `default` (those on by default) or `all`.'), default: ['default'] },
  disable: strings('Detector ids or categories removed after `detectors`.'),
  replacement,
  replacements: { type: 'object', additionalProperties: replacement, description: 'Replacement per rule id.' },
  hmacKeyFile: file('HMAC-SHA256 key for `hmac` replacements (at least 16 bytes)'),
  customPatterns: {
    type: 'array',
    description: 'User patterns (RE2 syntax).',
    items: obj('One custom pattern.', {
      id: str('Rule id (findings are counted under it).'),
      pattern: str('RE2 pattern.'),
      ignoreCase: bool('Case-insensitive.'),
      keywords: strings('The pattern runs only near one of these literals.'),
      maxLength: int('Longest match, for the streaming window.', 1, 65536),
      category: enumOf('Category of findings.', ['secret', 'pii']),
    }, ['id', 'pattern']),
  },
  keywordLists: {
    type: 'array',
    description: 'Literal words masked wherever they occur (case-insensitive).',
    items: obj('One keyword list.', { id: str('Rule id.'), words: { type: 'array', items: { type: 'string', minLength: 2 }, minItems: 1, description: 'The words (2 characters or more).' } }, ['id', 'words']),
  },
  fieldRules: {
    type: 'array',
    description: 'Column / JSON-field rules: a field whose name matches a glob is masked whole.',
    items: obj('One field rule.', { id: str('Rule id.'), names: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1, description: 'Globs over column or JSON field names (case-insensitive), e.g. `*password*`.' } }, ['names']),
  },
  decodeEscapes: bool('Decode JSON escapes and %XX before scanning text.', true),
  decodeBase64InJson: bool('Scan the plaintext of base64 string values in JSON.', true),
  maxWindow: int('Cap on the streaming carry-over window in bytes.', 256, 1 << 20, 4096),
});

const fileTls = {
  caFile: file('PEM CA bundle that signs the upstream certificate; absent: the system roots'),
  serverName: str('Name sent as SNI and checked in the certificate, when it differs from the upstream host.'),
  certFile: file('Client certificate (PEM) for mutual TLS; needs keyFile'),
  keyFile: file('Client private key (PEM) for mutual TLS; needs certFile'),
};

const common = (protocol: string): Record<string, JsonSchema> => ({
  name: str('Unique connection name; rules, metrics, logs and recordings name it.', { pattern: '^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$' }),
  protocol: { type: 'string', const: protocol, description: 'The wire protocol: `postgres`, `http` or `kubernetes`.' },
  listen,
  access,
  readOnly: bool('Refuse every write (postgres: adds the `read-only` pack, and read-only transactions upstream).', false),
  limits,
  masking,
});

const postgres = obj('A PostgreSQL connection.', {
  ...common('postgres'),
  upstream: obj('The real PostgreSQL server.', {
    host: str('Host name or IP address.'),
    port: port('TCP port.', DEFAULT_POSTGRES_PORT),
    database: str('The one database the sidecar connects to (the agent\'s startup database must match or be absent).'),
    tls: obj('TLS to the server.', {
      mode: enumOf('`disable`: plain TCP; `require`: TLS without certificate checks; `verify-full`: TLS with the CA and host name checked.', ['disable', 'require', 'verify-full'], 'verify-full'),
      ...fileTls,
    }),
  }, ['host', 'database']),
  credentials: obj('The upstream credential: `usernameFile` + `passwordFile`, or `urlFile` alone (a `postgresql://user:password@…` URL; only its user and password are used).', {
    usernameFile: file('Username'),
    passwordFile: file('Password'),
    urlFile: file('Connection URL with user and password'),
  }),
  policy: obj('Statement policy.', {
    sql: { type: 'object', description: 'SQL policy as policy/sql-rules.ts defines it (`default`, `packs`, `rules`, `unqualifiedSchema`); checked by its compiler. Absent: `{ "default": "allow" }` (the built-in invariants always apply).' },
  }),
}, ['name', 'protocol', 'listen', 'upstream', 'credentials']);

const httpPolicy = obj('Request policy (checked by the HTTP gateway\'s rule compiler).', {
  http: obj('HTTP rules.', {
    default: enumOf('What happens when no rule matches.', ['allow', 'deny'], 'allow'),
    rules: { type: 'array', items: { type: 'object' }, description: 'Rules by method, path, query and body (HTTP gateway).' },
  }),
});

const httpCredential: JsonSchema = {
  type: 'object',
  description: 'How the upstream credential is injected: `bearer` (tokenFile), `basic` (usernameFile, passwordFile), `header` (headerName, tokenFile), `query` (queryParam, tokenFile) or `none`.',
  discriminator: { propertyName: 'type' },
  required: ['type'],
  oneOf: [
    obj('Authorization: Bearer.', { type: { const: 'bearer' }, tokenFile: file('Token') }, ['type', 'tokenFile']),
    obj('Authorization: Basic.', { type: { const: 'basic' }, usernameFile: file('Username'), passwordFile: file('Password') }, ['type', 'usernameFile', 'passwordFile']),
    obj('A named header.', { type: { const: 'header' }, headerName: str('Header name.', { pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$' }), tokenFile: file('Token') }, ['type', 'headerName', 'tokenFile']),
    obj('A query parameter.', { type: { const: 'query' }, queryParam: str('Parameter name.'), tokenFile: file('Token') }, ['type', 'queryParam', 'tokenFile']),
    obj('No credential.', { type: { const: 'none' } }, ['type']),
  ],
};

const http = obj('An HTTP API connection.', {
  ...common('http'),
  upstream: obj('The real API.', { url: str('Base URL with scheme (`https://api.example.com/v1`); request paths are appended.', { pattern: '^https?://' }), tls: obj('TLS to the API.', fileTls) }, ['url']),
  credentials: httpCredential,
  policy: httpPolicy,
}, ['name', 'protocol', 'listen', 'upstream', 'credentials']);

const kubernetes = obj('A Kubernetes API connection.', {
  ...common('kubernetes'),
  upstream: obj('The API server.', { url: str('API server URL.', { pattern: '^https?://', default: DEFAULT_KUBERNETES_URL }), tls: obj('TLS to the API server.', fileTls) }),
  credentials: obj('The scoped ServiceAccount token the sidecar presents.', { tokenFile: file('Token (a projected token; re-read when it rotates)') }, ['tokenFile']),
  policy: httpPolicy,
  guardrails: obj('Opt-outs of the built-in guardrails, which refuse token minting, writes to Chaperone\'s objects, exec and writes on the agent\'s own pod, the API server as a proxy to pods and services, and impersonation whatever the policy says (docs/kubernetes-gateway.md). Only token minting and the proxy can be allowed.', {
    allowTokenRequests: bool('Let the agent mint ServiceAccount tokens (TokenRequest, `kubectl create token`, legacy token Secrets) for an agent whose job is cluster administration; a token for the connection\'s own ServiceAccount stays refused.', false),
    allowProxy: bool('Let the agent reach pods and services through the API server (pods/proxy, services/proxy, the legacy /api/v1/proxy/ paths, pods/portforward), for an agent whose job is to call in-cluster endpoints; this bypasses the egress allow-list for those endpoints. The agent\'s own pod and nodes/proxy stay refused; answers are masked as text.', false),
  }),
}, ['name', 'protocol', 'listen', 'credentials']);

const approvals = obj('How commands that need a human decision are held. `none`: every RequireApproval outcome is denied (fail closed).', {
  backend: enumOf('`none`, `local` (decided through the admin listener by a token of `admin.approverGroups`) or `kubernetes` (ApprovalRequest resources).', ['none', 'local', 'kubernetes'], 'none'),
  timeoutSeconds: int('A held command is denied after this long without a decision.', 1, 86400, DEFAULT_APPROVAL_TIMEOUT_SECONDS),
  kubernetes: obj('The `kubernetes` backend.', {
    apiServerUrl: str('API server URL.', { pattern: '^https?://', default: DEFAULT_KUBERNETES_URL }),
    caFile: file('Cluster CA bundle; default the ServiceAccount CA'),
    tokenFile: file('The sidecar\'s own token; default the ServiceAccount token'),
  }),
});

const recording = obj('The hash-chained JSON-lines recording. At least one of stdout and file must be on.', {
  stdout: bool('Write recording lines to stdout (the container log). Logs go to stderr.', true),
  file: obj('A file sink (append, fdatasync).', {
    path: str('Absolute path; its directory must exist.', { pattern: '^/' }),
    sync: enumOf('`fdatasync` after every batch; `none` only for benchmarks.', ['fdatasync', 'fsync', 'none'], 'fdatasync'),
  }, ['path']),
  signing: obj('Signed checkpoints.', {
    privateKeyFile: file('Ed25519 private key (PKCS#8 PEM)'),
    checkpointEveryLines: int('At most this many lines between checkpoints.', 1, 1_000_000, DEFAULT_CHECKPOINT_EVERY_LINES),
    checkpointIntervalSeconds: int('A checkpoint at least this often while lines are unsealed.', 1, 86400, DEFAULT_CHECKPOINT_INTERVAL_SECONDS),
  }, ['privateKeyFile']),
});

const admin = obj('The admin listener: `/healthz`, `/readyz`, `/metrics` (and local approvals).', {
  host: str('Listen address. Loopback by default; in a pod the operator sets `0.0.0.0` so kubelet probes and Prometheus reach it.', { default: DEFAULT_ADMIN_HOST }),
  port: port('Listen port (0: ephemeral).', DEFAULT_ADMIN_PORT),
  approverGroups: strings('Groups whose tokens may decide held commands (approvals backend `local`).'),
});

const egress = obj('The egress forward proxy (HTTP_PROXY / HTTPS_PROXY): plain-HTTP requests in absolute form are judged, masked and recorded like an http connection; CONNECT tunnels only to allow-listed hosts, opaque (no TLS interception), one result line each. The agent sends its token as `Proxy-Authorization: Bearer <token>` (or Basic with the token as password). Absent: off.', {
  name: str('Name in recordings, metrics and logs.', { pattern: '^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$', default: DEFAULT_EGRESS_NAME }),
  listen: obj('Where the proxy listens (keep it loopback).', {
    host: str('Listen address.', { default: DEFAULT_LISTEN_HOST }),
    port: port('Listen port (0: ephemeral, for tests).', DEFAULT_EGRESS_PORT),
  }),
  access,
  allow: {
    type: 'array',
    maxItems: 1024,
    description: 'Hosts the proxy lets through; everything else is refused with 403. The name is resolved once per request and the checked address is the one dialed.',
    items: obj('One allowed host.', {
      host: str('`api.example.com`, `*.example.com` (subdomains, not the apex) or an IP literal (the only way an IP-literal target passes).', { maxLength: 260 }),
      ports: { type: 'array', items: { type: 'integer', minimum: 1, maximum: 65535 }, maxItems: 64, description: 'Allowed ports; absent: 443 for CONNECT, 80 for plain HTTP.' },
      addresses: enumOf('Addresses the name may resolve to: `public`; `private` adds RFC 1918, ULA and CGNAT (in-cluster services); `any` adds loopback and link-local, the cloud metadata service included. The sidecar\'s own listeners are always refused.', ['public', 'private', 'any'], 'public'),
    }, ['host']),
  },
  limits,
  masking,
  policy: httpPolicy,
  tunnelIdleTimeoutSeconds: int('Close a CONNECT tunnel after this long without a byte in either direction.', 1, 86400, DEFAULT_TUNNEL_IDLE_TIMEOUT_SECONDS),
}, ['allow']);

const interception = obj('Transparent interception (docs/interception.md). init-network reads `egress` (its flags override it); the sidecar reads `mode`. Absent: explicit mode.', {
  mode: enumOf('`transparent`: iptables redirect the agent\'s dials to the listeners; the sidecar then also listens on [::1] at each loopback listener\'s port, where ip6tables REDIRECT sends IPv6 dials. `explicit`: the agent uses the loopback ports.', ['explicit', 'transparent'], 'explicit'),
  egress: obj('What else the agent may dial.', {
    policy: enumOf('`allow`: other outbound connections pass; `deny-by-default`: the agent\'s other TCP and UDP is refused, except DNS and `allow`.', ['allow', 'deny-by-default'], 'allow'),
    allowDNS: bool('With deny-by-default, still allow DNS to the pod\'s resolvers.', true),
    allow: {
      type: 'array',
      maxItems: 64,
      description: 'Networks the agent may still dial under deny-by-default.',
      items: obj('One allowed network.', {
        cidr: str('IPv4 or IPv6 network, e.g. `10.0.0.0/8`.'),
        ports: { type: 'array', items: { type: 'integer', minimum: 1, maximum: 65535 }, maxItems: 64, description: 'TCP ports; empty: every port and protocol.', default: [] },
      }, ['cidr']),
    },
  }),
});

export const CONFIG_SCHEMA: JsonSchema = obj('The Chaperone sidecar config (what the operator compiles into a ConfigMap).', {
  version: { type: 'integer', const: CONFIG_VERSION, description: 'Config format version; must be 1.' },
  identity,
  connections: {
    type: 'array',
    minItems: 1,
    description: 'The guarded upstreams, one loopback listener each.',
    items: { type: 'object', discriminator: { propertyName: 'protocol' }, required: ['protocol'], oneOf: [postgres, http, kubernetes] },
  },
  approvals,
  recording,
  admin,
  log: obj('Logging (JSON lines on stderr).', { level: enumOf('Log level.', LOG_LEVELS, DEFAULT_LOG_LEVEL) }),
  shutdown: obj('SIGTERM / SIGINT handling.', { drainTimeoutSeconds: int('Open sessions get this long to finish before they are closed.', 0, 3600, DEFAULT_DRAIN_TIMEOUT_SECONDS) }),
  egress,
  interception,
}, ['version', 'identity', 'connections']);
