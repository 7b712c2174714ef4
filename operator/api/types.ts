// TypeScript types of the chaperone.dev resources, generated from crds/*.yaml by operator/api/generate.ts: do not edit.
// Regenerate with `node --import tsx operator/api/generate.ts`; test/unit/crds-types.test.ts fails when this file drifts.
// Type-only besides RESOURCES, so the sidecar may import it without pulling in a Kubernetes client.

/** The subset of metav1.ObjectMeta that Chaperone reads and writes. */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }>;
}

/** metav1.ListMeta. */
export interface ListMeta {
  resourceVersion?: string;
  continue?: string;
  remainingItemCount?: number;
}

/** Group, version, names and scope of every resource, for clients and RBAC. */
export const RESOURCES = {
  AgentIdentity: {
    group: 'chaperone.dev',
    version: 'v1alpha1',
    apiVersion: 'chaperone.dev/v1alpha1',
    kind: 'AgentIdentity',
    listKind: 'AgentIdentityList',
    plural: 'agentidentities',
    singular: 'agentidentity',
    shortNames: ['aid'],
    namespaced: true,
  },
  MaskingPolicy: {
    group: 'chaperone.dev',
    version: 'v1alpha1',
    apiVersion: 'chaperone.dev/v1alpha1',
    kind: 'MaskingPolicy',
    listKind: 'MaskingPolicyList',
    plural: 'maskingpolicies',
    singular: 'maskingpolicy',
    shortNames: ['mp'],
    namespaced: true,
  },
  ApprovalRule: {
    group: 'chaperone.dev',
    version: 'v1alpha1',
    apiVersion: 'chaperone.dev/v1alpha1',
    kind: 'ApprovalRule',
    listKind: 'ApprovalRuleList',
    plural: 'approvalrules',
    singular: 'approvalrule',
    shortNames: ['ar'],
    namespaced: true,
  },
  ApprovalRequest: {
    group: 'chaperone.dev',
    version: 'v1alpha1',
    apiVersion: 'chaperone.dev/v1alpha1',
    kind: 'ApprovalRequest',
    listKind: 'ApprovalRequestList',
    plural: 'approvalrequests',
    singular: 'approvalrequest',
    shortNames: ['areq'],
    namespaced: true,
  },
} as const;

// ---- AgentIdentity (crds/agentidentity.yaml) ----

/**
 * AgentIdentity says who an AI agent is and what it may reach. Pods opt in with the label
 * `chaperone.dev/identity: <name>`; the operator injects a sidecar that holds the credentials,
 * verifies the agent's short-lived token, and proxies each connection on a loopback port.
 */
export interface AgentIdentity {
  /** APIVersion of this object; always `chaperone.dev/v1alpha1`. */
  apiVersion: 'chaperone.dev/v1alpha1';
  /** Kind of this object; always `AgentIdentity`. */
  kind: 'AgentIdentity';
  metadata: ObjectMeta;
  /** What the agent is and what it may reach. */
  spec: AgentIdentitySpec;
  /** What the operator observed; written only by the operator. */
  status?: AgentIdentityStatus;
}

/** What the agent is and what it may reach. */
export interface AgentIdentitySpec {
  /**
   * Token issuers the sidecar accepts for the agent's own identity token. By default only the
   * cluster's ServiceAccount issuer, with audience `chaperone` (the webhook projects such a token
   * into the agent containers). A token must verify against one of these issuers.
   * @default [{"name":"kubernetes","type":"kubernetes","audiences":["chaperone"]}]
   */
  issuers?: AgentIdentityIssuer[];
  /**
   * ServiceAccounts (in this namespace) whose pods may use this identity. Empty means any pod in
   * the namespace carrying the label; the pod webhook refuses others.
   */
  allowedServiceAccounts?: string[];
  /**
   * The upstreams the agent may reach, each served by the sidecar on its own loopback port. The
   * credential for each is mounted only into the sidecar container.
   */
  connections: AgentIdentityConnection[];
  /**
   * How the agent's traffic is brought to the sidecar.
   * @default {}
   */
  interception?: AgentIdentityInterception;
  /**
   * The injected sidecar container.
   * @default {}
   */
  sidecar?: AgentIdentitySidecar;
  /**
   * Where the sidecar writes its hash-chained JSON-lines recording of sessions, commands and
   * decisions (always masked), and how it signs checkpoints.
   * @default {}
   */
  recording?: AgentIdentityRecording;
  /**
   * How commands that need a human decision are held and decided.
   * @default {}
   */
  approvals?: AgentIdentityApprovals;
}

/** One accepted token issuer. */
export interface AgentIdentityIssuer {
  /** Unique name of this issuer within the identity (used in status and logs). */
  name: string;
  /**
   * `kubernetes`: the cluster's ServiceAccount issuer (tokens bound to a pod, groups
   * `system:serviceaccounts[:<namespace>]`). `oidc`: any OpenID Connect issuer, found through its
   * discovery document.
   */
  type: 'kubernetes' | 'oidc';
  /**
   * The issuer's exact `iss` value. Required for `oidc`; for `kubernetes` it overrides the issuer
   * the sidecar discovers from the API server.
   */
  issuerURL?: string;
  /** JWKS URL; without it `<issuerURL>/.well-known/openid-configuration` names it. */
  jwksURL?: string;
  /**
   * Accepted `aud` values; a token must name at least one.
   * @default ["chaperone"]
   */
  audiences?: string[];
  /**
   * Claim (dotted path allowed) that holds the agent's username.
   * @default "sub"
   */
  usernameClaim?: string;
  /** Prefix added to the username so issuers cannot impersonate each other (e.g. `oidc:`). */
  usernamePrefix?: string;
  /**
   * Claim (dotted path allowed, e.g. `realm_access.roles`) that holds the agent's groups.
   * @default "groups"
   */
  groupsClaim?: string;
  /** Prefix added to every group from this issuer. */
  groupsPrefix?: string;
  /**
   * Claim (dotted path, e.g. `act.sub`) naming the human the agent acts for. That human, like the
   * agent itself, can never approve the agent's own ApprovalRequests.
   */
  actingForClaim?: string;
  /** The token must carry every one of these groups (after groupsPrefix). */
  requiredGroups?: string[];
  /** ConfigMap (in this namespace) holding the PEM CA bundle for TLS to an oidc issuer. */
  caConfigMapRef?: AgentIdentityIssuerCaConfigMapRef;
  /**
   * Longest lifetime (`exp` − `iat`) a token may have; longer-lived tokens are refused. Go
   * duration, e.g. `1h`.
   * @default "1h"
   */
  maxTokenLifetime?: string;
}

/** ConfigMap (in this namespace) holding the PEM CA bundle for TLS to an oidc issuer. */
export interface AgentIdentityIssuerCaConfigMapRef {
  /** Name of the ConfigMap. */
  name: string;
  /**
   * Key in the ConfigMap that holds the PEM bundle.
   * @default "ca.crt"
   */
  key?: string;
}

/** One guarded upstream. */
export interface AgentIdentityConnection {
  /** Unique name of the connection within the identity; rules and policies select by it. */
  name: string;
  /**
   * `postgres`: the PostgreSQL wire protocol; `http`: an HTTP(S) API reverse-proxied from the local
   * port to upstream.url; `kubernetes`: a Kubernetes API server (the agent gets a kubeconfig
   * pointing at the sidecar).
   */
  protocol: 'postgres' | 'http' | 'kubernetes';
  /**
   * Where the sidecar connects. postgres: host and port. http: url. kubernetes: url, default the
   * in-cluster API server (`https://kubernetes.default.svc`).
   */
  upstream?: AgentIdentityConnectionUpstream;
  /** The one PostgreSQL database the sidecar connects to (postgres only; required there). */
  database?: string;
  /**
   * Loopback port the sidecar listens on for this connection (127.0.0.1); injected into the agent
   * as PGPORT, a base URL or a kubeconfig. Unique within the identity.
   */
  localPort: number;
  /**
   * TLS from the sidecar to the upstream. Without this block: verify-full for postgres, https://
   * and kubernetes upstreams, with the system roots (kubernetes: the cluster CA).
   */
  tls?: AgentIdentityConnectionTls;
  /**
   * The upstream credential. The Secret is mounted only into the sidecar container; its values
   * never reach the agent, the ConfigMap, a log or a recording. postgres: secretRef with username
   * and password keys. http: secretRef and type. kubernetes: serviceAccountName.
   */
  credential?: AgentIdentityConnectionCredential;
  /**
   * The agent's token must carry at least one of these groups to use this connection. Empty means
   * any verified agent.
   */
  allowedGroups?: string[];
  /**
   * Token subjects (e.g. `system:serviceaccount:team-a:agent`) that may use this connection, in
   * addition to allowedGroups. Empty (with allowedGroups empty) means any verified agent.
   */
  allowedSubjects?: string[];
  /**
   * Refuse every write. postgres: read-only transactions and only read statements; http: only GET,
   * HEAD and OPTIONS; kubernetes: only get, list and watch.
   * @default false
   */
  readOnly?: boolean;
  /**
   * kubernetes connections: opt-outs of the gateway's built-in guardrails, which refuse token
   * minting, writes to Chaperone's own objects, exec and writes on the agent's own pod, the API
   * server as a proxy to pods and services, and impersonation whatever the rules say
   * (docs/kubernetes-gateway.md). Only token minting and the proxy can be allowed.
   */
  guardrails?: AgentIdentityConnectionGuardrails;
}

/**
 * Where the sidecar connects. postgres: host and port. http: url. kubernetes: url, default the
 * in-cluster API server (`https://kubernetes.default.svc`).
 */
export interface AgentIdentityConnectionUpstream {
  /** Hostname or IP address of a postgres upstream. */
  host?: string;
  /** TCP port of a postgres upstream. Default 5432. */
  port?: number;
  /**
   * Base URL of an http or kubernetes upstream, with scheme (`https://api.example.com/v1`). Request
   * paths are appended to it.
   */
  url?: string;
}

/**
 * TLS from the sidecar to the upstream. Without this block: verify-full for postgres, https:// and
 * kubernetes upstreams, with the system roots (kubernetes: the cluster CA).
 */
export interface AgentIdentityConnectionTls {
  /**
   * `disable`: plain TCP; `require`: TLS without certificate checks; `verify-full`: TLS with the CA
   * and the host name checked.
   * @default "verify-full"
   */
  mode?: 'disable' | 'require' | 'verify-full';
  /** Secret (in this namespace) holding the PEM CA bundle that signs the upstream's certificate. */
  caSecretRef?: AgentIdentityConnectionTlsCaSecretRef;
  /** ConfigMap (in this namespace) holding the PEM CA bundle that signs the upstream's certificate. */
  caConfigMapRef?: AgentIdentityConnectionTlsCaConfigMapRef;
  /** Name to send as SNI and to check in the certificate, when it differs from the upstream host. */
  serverName?: string;
  /**
   * A `kubernetes.io/tls` Secret (keys `tls.crt`, `tls.key`) the sidecar presents to the upstream
   * (mutual TLS).
   */
  clientCertificateSecretRef?: SecretRef;
}

/** Secret (in this namespace) holding the PEM CA bundle that signs the upstream's certificate. */
export interface AgentIdentityConnectionTlsCaSecretRef {
  /** Name of the Secret. */
  name: string;
  /**
   * Key in the Secret that holds the PEM bundle.
   * @default "ca.crt"
   */
  key?: string;
}

/**
 * ConfigMap (in this namespace) holding the PEM CA bundle that signs the upstream's certificate.
 * (Same shape as AgentIdentityIssuerCaConfigMapRef.)
 */
export type AgentIdentityConnectionTlsCaConfigMapRef = AgentIdentityIssuerCaConfigMapRef;

/**
 * A `kubernetes.io/tls` Secret (keys `tls.crt`, `tls.key`) the sidecar presents to the upstream
 * (mutual TLS).
 */
export interface SecretRef {
  /** Name of the Secret. */
  name: string;
}

/**
 * The upstream credential. The Secret is mounted only into the sidecar container; its values never
 * reach the agent, the ConfigMap, a log or a recording. postgres: secretRef with username and
 * password keys. http: secretRef and type. kubernetes: serviceAccountName.
 */
export interface AgentIdentityConnectionCredential {
  /** The Secret (in this namespace) holding the credential. */
  secretRef?: AgentIdentityConnectionCredentialSecretRef;
  /**
   * How an http credential is sent: `Bearer` (Authorization: Bearer <tokenKey>), `Basic`
   * (usernameKey and passwordKey), `Header` (headerName: <tokenKey>), `Query`
   * (?queryParam=<tokenKey>).
   */
  type?: 'Bearer' | 'Basic' | 'Header' | 'Query';
  /** Secret key holding the username (postgres, http Basic). Default `username`. */
  usernameKey?: string;
  /** Secret key holding the password (postgres, http Basic). Default `password`. */
  passwordKey?: string;
  /** Secret key holding the token (http Bearer, Header, Query). Default `token`. */
  tokenKey?: string;
  /** Request header that carries the token (type Header). */
  headerName?: string;
  /** Query parameter that carries the token (type Query). */
  queryParam?: string;
  /**
   * ServiceAccount (in this namespace) whose token the sidecar presents to the Kubernetes API
   * (kubernetes only). Its RBAC is the ceiling of what the agent can do there.
   */
  serviceAccountName?: string;
}

/** The Secret (in this namespace) holding the credential. (Same shape as SecretRef.) */
export type AgentIdentityConnectionCredentialSecretRef = SecretRef;

/**
 * kubernetes connections: opt-outs of the gateway's built-in guardrails, which refuse token
 * minting, writes to Chaperone's own objects, exec and writes on the agent's own pod, the API
 * server as a proxy to pods and services, and impersonation whatever the rules say
 * (docs/kubernetes-gateway.md). Only token minting and the proxy can be allowed.
 */
export interface AgentIdentityConnectionGuardrails {
  /**
   * Let the agent mint ServiceAccount tokens (TokenRequest, `kubectl create token`, legacy token
   * Secrets), for an agent whose job is cluster administration. A token for the connection's own
   * ServiceAccount stays refused, and minted tokens still pass the masker.
   * @default false
   */
  allowTokenRequests?: boolean;
  /**
   * Let the agent reach pods and services through the API server (pods/proxy, services/proxy, the
   * legacy /api/v1/proxy/ paths, pods/portforward), for an agent whose job is to call in-cluster
   * endpoints. This goes around the egress allow-list for those endpoints; the agent's own pod and
   * nodes/proxy stay refused, and the answers are masked as text.
   * @default false
   */
  allowProxy?: boolean;
}

/** How the agent's traffic is brought to the sidecar. */
export interface AgentIdentityInterception {
  /**
   * `explicit`: the agent uses the loopback ports it is told about (env, kubeconfig).
   * `transparent`: additionally an init container installs iptables rules that redirect the agent's
   * connections to each upstream to the sidecar, so dialing the upstream directly still lands
   * there.
   * @default "explicit"
   */
  mode?: 'explicit' | 'transparent';
  /** What else the agent may dial (transparent mode). */
  egress?: AgentIdentityInterceptionEgress;
  /**
   * An HTTP forward proxy on a loopback port (set as HTTP_PROXY/HTTPS_PROXY, and lower case, in the
   * agent). Plain HTTP is inspected (rules, masking, recording); CONNECT is allowed only to
   * allowedHosts and recorded as opaque (no TLS interception). The agent authenticates with its
   * token in `Proxy-Authorization: Bearer <token>` (or as the proxy URL's password); without it the
   * proxy answers 407. With egress deny-by-default it is the agent's way out to these hosts.
   * MaskingPolicies and ApprovalRules select it as the connection `egress` (protocol `http`); rules
   * narrow by `match.http.hosts`.
   */
  forwardProxy?: AgentIdentityInterceptionForwardProxy;
}

/** What else the agent may dial (transparent mode). */
export interface AgentIdentityInterceptionEgress {
  /**
   * `allow`: other outbound connections pass. `deny-by-default`: every other outbound TCP and UDP
   * connection of the agent is rejected, except DNS (allowDNS) and the allow list.
   * @default "allow"
   */
  policy?: 'allow' | 'deny-by-default';
  /**
   * With deny-by-default, still allow DNS (UDP and TCP port 53).
   * @default true
   */
  allowDNS?: boolean;
  /** Destinations the agent may still dial directly under deny-by-default. */
  allow?: AgentIdentityInterceptionEgressAllow[];
}

/** One allowed destination. */
export interface AgentIdentityInterceptionEgressAllow {
  /** IPv4 or IPv6 network, e.g. `10.0.0.0/8` or `fd00::/8`. */
  cidr: string;
  /** TCP ports; empty means every port. */
  ports?: number[];
}

/**
 * An HTTP forward proxy on a loopback port (set as HTTP_PROXY/HTTPS_PROXY, and lower case, in the
 * agent). Plain HTTP is inspected (rules, masking, recording); CONNECT is allowed only to
 * allowedHosts and recorded as opaque (no TLS interception). The agent authenticates with its token
 * in `Proxy-Authorization: Bearer <token>` (or as the proxy URL's password); without it the proxy
 * answers 407. With egress deny-by-default it is the agent's way out to these hosts.
 * MaskingPolicies and ApprovalRules select it as the connection `egress` (protocol `http`); rules
 * narrow by `match.http.hosts`.
 */
export interface AgentIdentityInterceptionForwardProxy {
  /** Loopback port of the forward proxy. */
  localPort: number;
  /**
   * Hosts the proxy lets through, everything else is refused with 403: `api.example.com`,
   * `*.example.com` (subdomains, not the apex), an IPv4 address (the only way an IP target passes);
   * `:port` limits the port (without one: 443 for CONNECT, 80 for plain HTTP; list a host once per
   * port).
   */
  allowedHosts: string[];
  /**
   * Which addresses the allowed names may resolve to (checked on the address the proxy dials, so
   * DNS rebinding cannot reach inside). `public`: public addresses only. `private`: also RFC 1918,
   * ULA and CGNAT (in-cluster Services). `any`: also loopback and link-local, the cloud metadata
   * service included. An IP address written in allowedHosts is always reachable; the sidecar's own
   * ports never are.
   * @default "public"
   */
  addresses?: 'public' | 'private' | 'any';
}

/** The injected sidecar container. */
export interface AgentIdentitySidecar {
  /** Sidecar image; default the operator's configured image. */
  image?: string;
  /** Image pull policy of the sidecar container. */
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /**
   * Sidecar log level.
   * @default "info"
   */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /**
   * Port of the sidecar's admin server (/healthz, /readyz, /metrics); not a connection port.
   * @default 9901
   */
  adminPort?: number;
  /** CPU and memory of the sidecar container; default the operator's settings. */
  resources?: AgentIdentitySidecarResources;
}

/** CPU and memory of the sidecar container; default the operator's settings. */
export interface AgentIdentitySidecarResources {
  /** Requested resources. */
  requests?: AgentIdentitySidecarResourcesRequests;
  /** Resource limits. */
  limits?: AgentIdentitySidecarResourcesLimits;
}

/** Requested resources. */
export interface AgentIdentitySidecarResourcesRequests {
  /** CPU quantity, e.g. `50m`. */
  cpu?: number | string;
  /** Memory quantity, e.g. `64Mi`. */
  memory?: number | string;
}

/** Resource limits. */
export interface AgentIdentitySidecarResourcesLimits {
  /** CPU quantity, e.g. `500m`. */
  cpu?: number | string;
  /** Memory quantity, e.g. `256Mi`. */
  memory?: number | string;
}

/**
 * Where the sidecar writes its hash-chained JSON-lines recording of sessions, commands and
 * decisions (always masked), and how it signs checkpoints.
 */
export interface AgentIdentityRecording {
  /**
   * `stdout`: the sidecar container's log (read with kubectl logs). `file`: a file on a volume
   * mounted only into the sidecar.
   * @default "stdout"
   */
  sink?: 'stdout' | 'file';
  /** File sink settings. */
  file?: AgentIdentityRecordingFile;
  /**
   * Sign periodic checkpoint lines with an Ed25519 key mounted only into the sidecar, so a
   * recording can be proven whole without trusting the log pipeline.
   */
  signing?: AgentIdentityRecordingSigning;
}

/** File sink settings. */
export interface AgentIdentityRecordingFile {
  /** Absolute path of the recording file inside the sidecar container. */
  path: string;
  /**
   * Rotate the file when it reaches this size.
   * @default 100
   */
  maxSizeMiB?: number;
  /**
   * Rotated files to keep.
   * @default 5
   */
  maxFiles?: number;
}

/**
 * Sign periodic checkpoint lines with an Ed25519 key mounted only into the sidecar, so a recording
 * can be proven whole without trusting the log pipeline.
 */
export interface AgentIdentityRecordingSigning {
  /** Secret (in this namespace) holding the Ed25519 private key (PKCS#8 PEM). */
  secretRef: AgentIdentityRecordingSigningSecretRef;
  /**
   * Write a signed checkpoint after this many lines.
   * @default 1000
   */
  checkpointEveryLines?: number;
  /**
   * Write a signed checkpoint at least this often while lines are written (Go duration).
   * @default "1m"
   */
  checkpointInterval?: string;
}

/** Secret (in this namespace) holding the Ed25519 private key (PKCS#8 PEM). */
export interface AgentIdentityRecordingSigningSecretRef {
  /** Name of the Secret. */
  name: string;
  /**
   * Key in the Secret that holds the PEM private key.
   * @default "ed25519.pem"
   */
  key?: string;
}

/** How commands that need a human decision are held and decided. */
export interface AgentIdentityApprovals {
  /**
   * `kubernetes`: the sidecar creates an ApprovalRequest in the pod's namespace and watches it.
   * @default "kubernetes"
   */
  backend?: 'kubernetes';
  /**
   * HTTP request header in which the agent may state why it runs a command; copied into the
   * ApprovalRequest's purpose. (For postgres the purpose is the session's application_name.)
   * @default "X-Chaperone-Purpose"
   */
  purposeHeader?: string;
}

/** What the operator observed; written only by the operator. */
export interface AgentIdentityStatus {
  /** The metadata.generation this status describes. */
  observedGeneration?: number;
  /**
   * `Ready` (the policy compiled and its ConfigMap is current) and `Invalid` (a reference or a
   * pattern is wrong; message says which).
   */
  conditions?: Condition[];
  /** SHA-256 of the compiled sidecar config; pods record the hash they run. */
  configHash?: string;
  /** The ConfigMap (in this namespace, owned by this identity) that holds the compiled config. */
  configMapName?: string;
  /** Pods that currently run this identity's sidecar. */
  podsGuarded?: number;
  /** Totals the sidecars reported since the identity was created. */
  counters?: AgentIdentityStatusCounters;
  /** Summary of the most recently ended session. */
  lastSession?: AgentIdentityStatusLastSession;
}

/** One condition, as metav1.Condition. */
export interface Condition {
  /** Condition type; the conditions field lists the types in use. */
  type: string;
  /** True, False or Unknown. */
  status: 'True' | 'False' | 'Unknown';
  /** The metadata.generation the condition was set for. */
  observedGeneration?: number;
  /** When the status last changed. */
  lastTransitionTime: string;
  /** CamelCase reason code, e.g. `Compiled` or `Expired`. */
  reason: string;
  /** What is wrong and how to fix it. */
  message: string;
}

/** Totals the sidecars reported since the identity was created. */
export interface AgentIdentityStatusCounters {
  /** Sessions opened. */
  sessions?: number;
  /** Statements and requests evaluated. */
  statements?: number;
  /** Statements and requests refused. */
  denied?: number;
  /** ApprovalRequests created. */
  approvals?: number;
  /** Values masked in responses. */
  masked?: number;
}

/** Summary of the most recently ended session. */
export interface AgentIdentityStatusLastSession {
  /** Session id, as in the recording. */
  id?: string;
  /** Pod that ran the session. */
  pod?: string;
  /** Connection name. */
  connection?: string;
  /** The agent's token subject. */
  subject?: string;
  /** When the session started. */
  startedAt?: string;
  /** When the session ended. */
  endedAt?: string;
  /** Statements or requests in the session. */
  statements?: number;
  /** Of which refused. */
  denied?: number;
  /** Values masked in the session. */
  masked?: number;
  /** One-line human summary. */
  summary?: string;
}

/** A list of AgentIdentity objects, as the API server returns it. */
export interface AgentIdentityList {
  apiVersion: 'chaperone.dev/v1alpha1';
  kind: 'AgentIdentityList';
  metadata?: ListMeta;
  items: AgentIdentity[];
}

// ---- MaskingPolicy (crds/maskingpolicy.yaml) ----

/**
 * MaskingPolicy selects AgentIdentities (and optionally some of their connections) and says what
 * their sidecars mask in every byte returned to the agent and in the recordings: built-in detectors
 * for secrets and personal data, custom RE2 patterns, column and JSON-field rules, and how a value
 * is replaced. Several policies may select the same identity; their rules add up.
 */
export interface MaskingPolicy {
  /** APIVersion of this object; always `chaperone.dev/v1alpha1`. */
  apiVersion: 'chaperone.dev/v1alpha1';
  /** Kind of this object; always `MaskingPolicy`. */
  kind: 'MaskingPolicy';
  metadata: ObjectMeta;
  /** What to mask, where, and how. */
  spec: MaskingPolicySpec;
  /** What the operator observed; written only by the operator. */
  status?: MaskingPolicyStatus;
}

/** What to mask, where, and how. */
export interface MaskingPolicySpec {
  /**
   * Which identities (in this namespace) and connections the policy applies to. An identity is
   * selected if it is named in identities or matched by identitySelector; connections and protocols
   * then narrow the connections.
   */
  selector: Selector;
  /**
   * Which built-in detectors run (see docs/detectors.md for ids and categories). Evaluated in this
   * order: baseline, enableCategories, disableCategories, enable, disable.
   * @default {}
   */
  detectors?: MaskingPolicyDetectors;
  /** Custom detectors. Findings are counted under `custom:<name>`. */
  patterns?: MaskingPolicyPattern[];
  /** Rules for PostgreSQL result columns, applied before the detectors. */
  columns?: MaskingPolicyColumn[];
  /** Rules for JSON fields in HTTP and Kubernetes API responses, applied before the detectors. */
  fields?: MaskingPolicyField[];
  /** Rules for HTTP response headers (credential echoes, cookies), applied before the detectors. */
  headers?: MaskingPolicyHeader[];
  /**
   * The default replacement for detector findings and for rules without their own.
   * @default {}
   */
  replacement?: MaskingPolicyReplacement;
  /**
   * Encodings the detectors also look through, so an encoded secret is still found.
   * @default {}
   */
  decode?: MaskingPolicyDecode;
}

/**
 * Which identities (in this namespace) and connections the policy applies to. An identity is
 * selected if it is named in identities or matched by identitySelector; connections and protocols
 * then narrow the connections.
 */
export interface Selector {
  /** AgentIdentity names. */
  identities?: string[];
  /** Label selector over AgentIdentities; `{}` selects all of them. */
  identitySelector?: SelectorIdentitySelector;
  /**
   * Connection names; empty means every connection of a selected identity. `egress` names the
   * identity's forward proxy (spec.interception.forwardProxy), which counts as an `http`
   * connection.
   */
  connections?: string[];
  /** Protocols; empty means all. The forward proxy (connection `egress`) is `http`. */
  protocols?: Array<'postgres' | 'http' | 'kubernetes'>;
}

/** Label selector over AgentIdentities; `{}` selects all of them. */
export interface SelectorIdentitySelector {
  /** Labels the identity must carry, all of them. */
  matchLabels?: Record<string, string>;
  /** Label requirements, all of which must hold. */
  matchExpressions?: SelectorIdentitySelectorMatchExpression[];
}

/** One label requirement. */
export interface SelectorIdentitySelectorMatchExpression {
  /** Label key. */
  key: string;
  /** How the key relates to the values. */
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  /** Values for In and NotIn. */
  values?: string[];
}

/**
 * Which built-in detectors run (see docs/detectors.md for ids and categories). Evaluated in this
 * order: baseline, enableCategories, disableCategories, enable, disable.
 */
export interface MaskingPolicyDetectors {
  /**
   * `default`: start from the detectors that are on by default. `none`: start from no detector.
   * @default "default"
   */
  baseline?: 'default' | 'none';
  /** Turn on every detector of these categories (including those off by default). */
  enableCategories?: Array<'secret' | 'pii'>;
  /** Turn off every detector of these categories. */
  disableCategories?: Array<'secret' | 'pii'>;
  /** Detector ids to turn on (e.g. one that is off by default). */
  enable?: string[];
  /** Detector ids to turn off. */
  disable?: string[];
}

/** One custom detector. */
export interface MaskingPolicyPattern {
  /** Unique name of the pattern within the policy. */
  name: string;
  /** What the pattern finds, for humans. */
  description?: string;
  /**
   * RE2 syntax (linear time: no backreferences or lookaround); the operator refuses a pattern that
   * does not compile. With a named group `secret` (`(?P<secret>…)`) only that span is masked.
   */
  regex: string;
  /**
   * Lower-case literals; the regex runs on a value only if it contains one of them
   * (case-insensitively). Empty means always run: keep such regexes anchored on a literal.
   */
  keywords?: string[];
  /**
   * Category the findings count under.
   * @default "secret"
   */
  category?: 'secret' | 'pii';
  /**
   * Longest match in characters; bounds the carry-over between streamed chunks.
   * @default 256
   */
  maxMatchLength?: number;
  /** How this pattern's matches are replaced; default spec.replacement. */
  replacement?: Replacement;
}

/** How this pattern's matches are replaced; default spec.replacement. */
export interface Replacement {
  /**
   * `placeholder`: a fixed text. `partial`: mask characters, keeping the last keepLast. `hmac`: a
   * keyed hash token, so equal values stay equal (joins still work) without revealing them.
   * @default "placeholder"
   */
  type?: 'placeholder' | 'partial' | 'hmac';
  /** Placeholder text; `{id}` becomes the detector or rule id. Default `[MASKED:{id}]`. */
  format?: string;
  /**
   * Characters kept at the end (partial). Default 4; values shorter than twice this are masked
   * whole.
   */
  keepLast?: number;
  /** Character that replaces masked characters (partial). Default `*`. */
  maskChar?: string;
  /** Secret (in the identity's namespace) holding the HMAC key (hmac); mounted only into sidecars. */
  keySecretRef?: HmacKeySecretRef;
  /** Hex characters of the HMAC token (hmac). Default 16. */
  length?: number;
}

/** Secret (in the identity's namespace) holding the HMAC key (hmac); mounted only into sidecars. */
export interface HmacKeySecretRef {
  /** Name of the Secret. */
  name: string;
  /**
   * Key in the Secret that holds the HMAC key.
   * @default "hmac-key"
   */
  key?: string;
}

/** One column rule. */
export interface MaskingPolicyColumn {
  /** Glob over the column name, case-insensitive (`*` any run of characters), e.g. `*password*`. */
  name: string;
  /** Glob over the source table (`schema.table` or `table`); empty means any table. */
  table?: string;
  /**
   * `Mask`: replace the whole value. `Skip`: exempt the column from the detectors (known false
   * positives).
   * @default "Mask"
   */
  action?: 'Mask' | 'Skip';
  /** How values are replaced (Mask); default spec.replacement. */
  replacement?: MaskingPolicyColumnReplacement;
}

/** How values are replaced (Mask); default spec.replacement. (Same shape as Replacement.) */
export type MaskingPolicyColumnReplacement = Replacement;

/** One JSON field rule. */
export interface MaskingPolicyField {
  /**
   * Dot-separated path of object keys; `*` matches one key or array index, `**` any depth. E.g.
   * `**.password`, `data.*`, `items.*.spec.token`.
   */
  path: string;
  /**
   * `Mask`: replace the whole value (strings, numbers; objects and arrays are masked leaf by leaf).
   * `Skip`: exempt from the detectors.
   * @default "Mask"
   */
  action?: 'Mask' | 'Skip';
  /** How values are replaced (Mask); default spec.replacement. */
  replacement?: MaskingPolicyFieldReplacement;
}

/** How values are replaced (Mask); default spec.replacement. (Same shape as Replacement.) */
export type MaskingPolicyFieldReplacement = Replacement;

/** One header rule. */
export interface MaskingPolicyHeader {
  /** Glob over the header name, case-insensitive, e.g. `set-cookie` or `x-*-token`. */
  name: string;
  /**
   * `Mask`: replace the value with the placeholder. `Remove`: drop the header.
   * @default "Mask"
   */
  action?: 'Mask' | 'Remove';
}

/**
 * The default replacement for detector findings and for rules without their own. (Same shape as
 * Replacement.)
 */
export type MaskingPolicyReplacement = Replacement;

/** Encodings the detectors also look through, so an encoded secret is still found. */
export interface MaskingPolicyDecode {
  /**
   * Decode base64 and base64url runs (24 characters or more) and scan the decoded text; a finding
   * masks the whole encoded run.
   * @default true
   */
  base64?: boolean;
  /**
   * Decode %XX escapes (URLs, form bodies) before scanning.
   * @default true
   */
  percentEncoding?: boolean;
  /**
   * How many nested encodings to look through (base64 inside base64 …).
   * @default 2
   */
  maxDepth?: number;
}

/** What the operator observed; written only by the operator. */
export interface MaskingPolicyStatus {
  /** The metadata.generation this status describes. */
  observedGeneration?: number;
  /**
   * `Ready` (compiled; every pattern is valid RE2 and every Secret reference resolves) and
   * `Invalid` (message says what is wrong).
   */
  conditions?: MaskingPolicyStatusCondition[];
  /** How many AgentIdentities the policy currently applies to. */
  selectedIdentities?: number;
  /** Names of the selected AgentIdentities (at most 256 are listed). */
  identities?: string[];
}

/** One condition, as metav1.Condition. (Same shape as Condition.) */
export type MaskingPolicyStatusCondition = Condition;

/** A list of MaskingPolicy objects, as the API server returns it. */
export interface MaskingPolicyList {
  apiVersion: 'chaperone.dev/v1alpha1';
  kind: 'MaskingPolicyList';
  metadata?: ListMeta;
  items: MaskingPolicy[];
}

// ---- ApprovalRule (crds/approvalrule.yaml) ----

/**
 * ApprovalRule selects AgentIdentities (and optionally connections) and matches the commands their
 * agents send: SQL statements (classified by the real PostgreSQL parser), HTTP requests, Kubernetes
 * API requests. A matching command is refused (Deny), held until enough approvers approve it
 * (RequireApproval), or let through (Allow, to carve exceptions out of lower-priority rules). Per
 * command, the matching rule with the highest priority decides; at equal priority Deny wins over
 * RequireApproval over Allow.
 */
export interface ApprovalRule {
  /** APIVersion of this object; always `chaperone.dev/v1alpha1`. */
  apiVersion: 'chaperone.dev/v1alpha1';
  /** Kind of this object; always `ApprovalRule`. */
  kind: 'ApprovalRule';
  metadata: ObjectMeta;
  /** Which commands, and what happens to them. */
  spec: ApprovalRuleSpec;
  /** What the operator observed; written only by the operator. */
  status?: ApprovalRuleStatus;
}

/** Which commands, and what happens to them. */
export interface ApprovalRuleSpec {
  /**
   * Which identities (in this namespace) and connections the rule applies to. An identity is
   * selected if it is named in identities or matched by identitySelector; connections and protocols
   * then narrow the connections.
   */
  selector: ApprovalRuleSelector;
  /**
   * Higher priorities are evaluated first; the first matching rule decides.
   * @default 500
   */
  priority?: number;
  /**
   * `Deny`: refuse the command with message. `RequireApproval`: hold it, create an ApprovalRequest,
   * and run it only once approved. `Allow`: let it through (also allows WebSocket upgrades matched
   * by http.websocket).
   */
  action: 'Deny' | 'RequireApproval' | 'Allow';
  /**
   * Shown to the agent when the rule denies or holds a command, and copied into the
   * ApprovalRequest.
   */
  message?: string;
  /**
   * Which commands match. A command matches when the block for its protocol is present and every
   * field set in that block matches (within a list, any entry may match). An empty block (`sql:
   * {}`) matches every command of that protocol.
   */
  match: ApprovalRuleMatch;
  /**
   * Who decides a held command, how many must agree, for how long the request waits, and what an
   * approval covers.
   */
  approval?: ApprovalRuleApproval;
}

/**
 * Which identities (in this namespace) and connections the rule applies to. An identity is selected
 * if it is named in identities or matched by identitySelector; connections and protocols then
 * narrow the connections. (Same shape as Selector.)
 */
export type ApprovalRuleSelector = Selector;

/**
 * Which commands match. A command matches when the block for its protocol is present and every
 * field set in that block matches (within a list, any entry may match). An empty block (`sql: {}`)
 * matches every command of that protocol.
 */
export interface ApprovalRuleMatch {
  /**
   * SQL statements on postgres connections, as classified by the PostgreSQL parser (each statement
   * of a multi-statement query separately).
   */
  sql?: ApprovalRuleMatchSql;
  /**
   * HTTP requests on http connections and through the forward proxy (connection `egress`). A
   * CONNECT tunnel through the proxy is opaque: only rules without paths, query, body and
   * websocket, whose methods are empty or list CONNECT, judge it, by hosts alone.
   */
  http?: ApprovalRuleMatchHttp;
  /**
   * Kubernetes API requests on kubernetes connections, classified like the API server's
   * RequestInfo.
   */
  kubernetes?: ApprovalRuleMatchKubernetes;
}

/**
 * SQL statements on postgres connections, as classified by the PostgreSQL parser (each statement of
 * a multi-statement query separately).
 */
export interface ApprovalRuleMatchSql {
  /**
   * Statement kinds, as the sidecar classifies them (a statement takes the most restrictive kind of
   * anything it runs): `read` (SELECT, VALUES, COPY … TO STDOUT); `transaction` (BEGIN, COMMIT,
   * ROLLBACK, SAVEPOINT); `utility` (SET, SHOW, EXPLAIN, LISTEN, FETCH …); `write` (INSERT, UPDATE,
   * DELETE, MERGE, TRUNCATE, COPY … FROM STDIN, LOCK, nextval); `ddl` (CREATE, ALTER, DROP,
   * COMMENT, SELECT INTO); `dcl` (GRANT, REVOKE, roles, SET ROLE, row security policies); `admin`
   * (ALTER SYSTEM, VACUUM, extensions, DO, CALL, server files, COPY PROGRAM, unknown statements).
   * Use commands for one statement type, e.g. `DELETE`.
   */
  kinds?: Array<'read' | 'transaction' | 'utility' | 'write' | 'ddl' | 'dcl' | 'admin'>;
  /**
   * Commands the statement runs, its own and nested ones (a DELETE in a CTE counts), as the sidecar
   * names them: `SELECT`, `INSERT`, `UPDATE`, `DELETE`, `MERGE`, `TRUNCATE`, `COPY_FROM`,
   * `DROP_TABLE`, `ALTER_ROLE` … (`DROP TABLE` is accepted for `DROP_TABLE`); `*` globs, e.g.
   * `DROP_*`.
   */
  commands?: string[];
  /**
   * Globs over the tables the statement reads or writes, matched against `schema.table` and the
   * bare table name (`*` any run of characters), e.g. `public.orders`, `*.payments`, `audit_*`.
   */
  tables?: string[];
  /** Globs over the functions the statement calls, e.g. `pg_terminate_backend`, `pg_read_*`. */
  functions?: string[];
  /**
   * Statement properties (the statement has at least one of them): `deleteWithoutWhere` /
   * `updateWithoutWhere` (no WHERE, or one that names no column of the target or is constant-true,
   * anywhere in the statement), `trivialWhere`, `writesInCte` (a data-modifying WITH),
   * `explainAnalyze`, `copyProgram` (COPY … PROGRAM), `serverFileAccess` (COPY to or from a server
   * file, pg_read_file, lo_export …), `remoteAccess` (dblink), `roleChange` (SET ROLE, SET SESSION
   * AUTHORIZATION), `dynamicCode` (DO, function bodies, SQL in strings), `rowLocks` (FOR UPDATE,
   * LOCK, advisory locks), `selectInto`, `sequenceWrite`, `largeObjectWrite`, `adminFunction`
   * (pg_terminate_backend …), `readWriteOverride` (undoes a read-only session), `parserDivergence`,
   * `unresolvedExecute`, `unrecognized`, `sleep`, `setConfig` (SET, RESET, set_config).
   * docs/sql-policy.md has the details.
   */
  flags?: Array<'writesInCte' | 'explainAnalyze' | 'copyProgram' | 'serverFileAccess' | 'remoteAccess' | 'roleChange' | 'dynamicCode' | 'rowLocks' | 'selectInto' | 'sequenceWrite' | 'largeObjectWrite' | 'adminFunction' | 'readWriteOverride' | 'parserDivergence' | 'unresolvedExecute' | 'unrecognized' | 'trivialWhere' | 'deleteWithoutWhere' | 'updateWithoutWhere' | 'sleep' | 'setConfig'>;
  /**
   * RE2 regular expression, matched case-insensitively against the normalized statement (comments
   * removed, whitespace collapsed, unquoted words lower-cased, every literal shown as `?`), e.g.
   * `\bcascade\b`.
   */
  pattern?: string;
}

/**
 * HTTP requests on http connections and through the forward proxy (connection `egress`). A CONNECT
 * tunnel through the proxy is opaque: only rules without paths, query, body and websocket, whose
 * methods are empty or list CONNECT, judge it, by hosts alone.
 */
export interface ApprovalRuleMatchHttp {
  /**
   * Globs over the target host: `api.example.com`, `*.example.com` (subdomains, not the apex), `*`
   * (any), each optionally with `:port` (without one: any port). Through the forward proxy this is
   * the host the agent asked for; on an http connection the upstream URL's host (a rule whose hosts
   * do not match it does not apply to that connection). Empty means any host.
   */
  hosts?: string[];
  /** Request methods. */
  methods?: Array<'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS' | 'CONNECT' | 'TRACE'>;
  /**
   * Globs over the request path relative to the connection's base URL (through the forward proxy:
   * the URL's path) (`*` one segment, `**` any number of segments), e.g. `/repos/*\/*\/pulls`,
   * `/admin/**`.
   */
  paths?: string[];
  /** Query parameter predicates; all must hold. */
  query?: ApprovalRuleMatchHttpQuery[];
  /** Predicates over a JSON request body; all must hold. A body that is not JSON never matches them. */
  body?: ApprovalRuleMatchHttpBody[];
  /**
   * `true`: match only WebSocket upgrade requests (refused unless an Allow rule matches them);
   * `false`: only other requests.
   */
  websocket?: boolean;
}

/** One query parameter predicate. */
export interface ApprovalRuleMatchHttpQuery {
  /** Parameter name. */
  name: string;
  /** Globs; the parameter must equal one of them. Empty means any value. */
  values?: string[];
  /**
   * `true` (default): the parameter must be present. `false`: it must be absent.
   * @default true
   */
  present?: boolean;
}

/** One JSON body predicate. */
export interface ApprovalRuleMatchHttpBody {
  /** Dot-separated path of object keys (`*` one key or array index), e.g. `force`, `spec.replicas`. */
  path: string;
  /** The value, rendered as text (`true`, `42`, `main`), must equal one of these. */
  values?: string[];
  /** RE2 regular expression the value (rendered as text) must match. */
  pattern?: string;
  /**
   * `true` (default): the path must exist. `false`: it must not.
   * @default true
   */
  present?: boolean;
}

/** Kubernetes API requests on kubernetes connections, classified like the API server's RequestInfo. */
export interface ApprovalRuleMatchKubernetes {
  /** Request verbs. */
  verbs?: Array<'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection' | 'proxy'>;
  /** API groups; `""` is the core group. */
  apiGroups?: string[];
  /** Resources (plural, lower-case), e.g. `secrets`, `deployments`. */
  resources?: string[];
  /** Subresources, e.g. `exec`, `attach`, `portforward`, `log`, `scale`. */
  subresources?: string[];
  /** Globs over the request's namespace; cluster-scoped requests never match a namespace list. */
  namespaces?: string[];
  /** Globs over the object name. */
  names?: string[];
}

/**
 * Who decides a held command, how many must agree, for how long the request waits, and what an
 * approval covers.
 */
export interface ApprovalRuleApproval {
  /**
   * Who may decide. The requester (the agent's subject, and the human it acts for) can never decide
   * its own request, even if listed.
   */
  approvers: ApprovalRuleApprovalApprovers;
  /**
   * Approvals needed, from distinct approvers (mode any) or from each listed group (mode each).
   * @default 1
   */
  required?: number;
  /**
   * `any`: approvals from any listed approvers count. `each`: every listed group must give
   * `required` approvals.
   * @default "any"
   */
  mode?: 'any' | 'each';
  /**
   * How long the command waits for a decision before the request expires and the command is refused
   * (Go duration).
   * @default "10m"
   */
  timeout?: string;
  /**
   * `statement`: an approval covers exactly the held command, once (bound by its SHA-256).
   * `window`: once approved, the same identity may run commands matching this rule on that
   * connection for window without asking again (just-in-time access, revocable on the request).
   * @default "statement"
   */
  scope?: 'statement' | 'window';
  /** How long a window approval lasts (Go duration; scope window only). */
  window?: string;
  /** POST a JSON notification (Slack-compatible) when a request is created and when it is decided. */
  notification?: ApprovalRuleApprovalNotification;
}

/**
 * Who may decide. The requester (the agent's subject, and the human it acts for) can never decide
 * its own request, even if listed.
 */
export interface ApprovalRuleApprovalApprovers {
  /** Groups as the API server authenticates them (e.g. `db-approvers`). */
  groups?: string[];
  /** Usernames as the API server authenticates them. */
  users?: string[];
}

/** POST a JSON notification (Slack-compatible) when a request is created and when it is decided. */
export interface ApprovalRuleApprovalNotification {
  /** Where the operator POSTs; retried with backoff. */
  webhookURL: string;
  /**
   * Secret (in this namespace) with the HMAC-SHA256 key that signs each body (header
   * `X-Chaperone-Signature`).
   */
  secretRef?: ApprovalRuleApprovalNotificationSecretRef;
  /**
   * `slack`: a Slack incoming-webhook body (`text`, `blocks`). `json`: the ApprovalRequest summary
   * as plain JSON.
   * @default "slack"
   */
  format?: 'slack' | 'json';
}

/**
 * Secret (in this namespace) with the HMAC-SHA256 key that signs each body (header
 * `X-Chaperone-Signature`). (Same shape as HmacKeySecretRef.)
 */
export type ApprovalRuleApprovalNotificationSecretRef = HmacKeySecretRef;

/** What the operator observed; written only by the operator. */
export interface ApprovalRuleStatus {
  /** The metadata.generation this status describes. */
  observedGeneration?: number;
  /**
   * `Ready` (compiled; patterns valid and references resolve) and `Invalid` (message says what is
   * wrong).
   */
  conditions?: ApprovalRuleStatusCondition[];
  /** How many AgentIdentities the rule currently applies to. */
  selectedIdentities?: number;
  /** Names of the selected AgentIdentities (at most 256 are listed). */
  identities?: string[];
}

/** One condition, as metav1.Condition. (Same shape as Condition.) */
export type ApprovalRuleStatusCondition = Condition;

/** A list of ApprovalRule objects, as the API server returns it. */
export interface ApprovalRuleList {
  apiVersion: 'chaperone.dev/v1alpha1';
  kind: 'ApprovalRuleList';
  metadata?: ListMeta;
  items: ApprovalRule[];
}

// ---- ApprovalRequest (crds/approvalrequest.yaml) ----

/**
 * ApprovalRequest is one command held by a sidecar until humans decide. The sidecar creates it; an
 * approver decides with `kubectl chaperone approve|deny NAME` or plain `kubectl patch
 * approvalrequest NAME --type=merge -p '{"spec":{"review":{"decision":"Approve","reason":"…"}}}'`:
 * the admission webhook turns spec.review into an entry of spec.reviews stamped with the
 * authenticated reviewer and time (a reviewer sent by the client is never trusted), and refuses
 * reviewers outside the rule's approvers and the requester itself. The operator sets status.phase.
 */
export interface ApprovalRequest {
  /** APIVersion of this object; always `chaperone.dev/v1alpha1`. */
  apiVersion: 'chaperone.dev/v1alpha1';
  /** Kind of this object; always `ApprovalRequest`. */
  kind: 'ApprovalRequest';
  metadata: ObjectMeta;
  /**
   * The held command, who sent it, which rule held it, and the reviews so far. Everything but
   * reviews (and the one-time cancel) is immutable.
   */
  spec: ApprovalRequestSpec;
  /** The request's state; written only by the operator. */
  status?: ApprovalRequestStatus;
}

/**
 * The held command, who sent it, which rule held it, and the reviews so far. Everything but reviews
 * (and the one-time cancel) is immutable.
 */
export interface ApprovalRequestSpec {
  /** Name of the AgentIdentity (in this namespace) whose agent sent the command. */
  identity: string;
  /** Name of the connection the command is for. */
  connection: string;
  /** Id of the sidecar session that holds the command, as in the recording. */
  session: string;
  /** The agent pod whose sidecar holds the command. */
  pod?: ApprovalRequestPod;
  /** Who sent the command, from its verified token. Neither the subject nor actingFor may approve. */
  requester: ApprovalRequestRequester;
  /** The held command, masked; the SHA-256 binds an approval to the exact bytes. */
  command: ApprovalRequestCommand;
  /**
   * Why the agent says it runs the command (postgres application_name, or the HTTP purpose header);
   * masked.
   */
  purpose?: string;
  /** The ApprovalRule that held the command, as it was then. */
  rule: ApprovalRequestRule;
  /**
   * Snapshot of the rule's approval settings when the command was held; decisions are judged
   * against it.
   */
  approval: ApprovalRequestApproval;
  /** When the request expires if still undecided; the sidecar then refuses the command. */
  expiresAt: string;
  /**
   * Set by the sidecar holding the command when its client disconnected or cancelled the statement
   * (or the sidecar restarted); the operator then sets status.phase Cancelled. Only the request's
   * creator may set it (admission webhook), only while Pending, and never change or remove it.
   */
  cancel?: ApprovalRequestCancel;
  /**
   * Input slot for an approver's decision. The admission webhook moves it into reviews with the
   * authenticated reviewer and the time; it is never stored.
   */
  review?: ApprovalRequestReviewInput;
  /**
   * Decisions so far, oldest first; append-only. Each is stamped by the admission webhook. A JSON
   * patch (`op: add, path: /spec/reviews/-`) with just decision and reason works too: the webhook
   * stamps it.
   */
  reviews?: ApprovalRequestReview[];
}

/** The agent pod whose sidecar holds the command. */
export interface ApprovalRequestPod {
  /** Pod name. */
  name: string;
  /** Pod UID. */
  uid?: string;
}

/** Who sent the command, from its verified token. Neither the subject nor actingFor may approve. */
export interface ApprovalRequestRequester {
  /** The token's `sub` (for ServiceAccounts `system:serviceaccount:<ns>:<name>`). */
  subject: string;
  /** Username after the issuer's usernameClaim and usernamePrefix. */
  username?: string;
  /** The token's `iss`. */
  issuer?: string;
  /** Groups from the token. */
  groups?: string[];
  /** The human the agent acts for, when the token says so (the issuer's actingForClaim). */
  actingFor?: string;
}

/** The held command, masked; the SHA-256 binds an approval to the exact bytes. */
export interface ApprovalRequestCommand {
  /** Protocol of the connection. */
  protocol: 'postgres' | 'http' | 'kubernetes';
  /**
   * The command with secrets masked (SQL text; HTTP method, path and query; Kubernetes method and
   * path), cut at 16 KiB.
   */
  text: string;
  /** Whether text was cut. */
  truncated?: boolean;
  /** One line for listings, e.g. `DELETE FROM orders WHERE …`. */
  summary?: string;
  /**
   * Hex SHA-256 of the exact unmasked command (for SQL with its bound parameters). The sidecar runs
   * only a command with this hash on approval.
   */
  sha256: string;
  /** How the PostgreSQL parser classified the statement. */
  sql?: ApprovalRequestCommandSql;
  /** The HTTP request. */
  http?: ApprovalRequestCommandHttp;
  /** The Kubernetes API request, as the API server's RequestInfo. */
  kubernetes?: ApprovalRequestCommandKubernetes;
}

/** How the PostgreSQL parser classified the statement. */
export interface ApprovalRequestCommandSql {
  /** Statement kind, as in ApprovalRule match.sql.kinds. */
  kind?: 'read' | 'transaction' | 'utility' | 'write' | 'ddl' | 'dcl' | 'admin';
  /** Command tag, e.g. `DELETE`. */
  commandTag?: string;
  /** Tables the statement touches. */
  tables?: string[];
  /** Functions the statement calls. */
  functions?: string[];
  /** Statement flags, as in ApprovalRule match.sql.flags. */
  flags?: Array<'writesInCte' | 'explainAnalyze' | 'copyProgram' | 'serverFileAccess' | 'remoteAccess' | 'roleChange' | 'dynamicCode' | 'rowLocks' | 'selectInto' | 'sequenceWrite' | 'largeObjectWrite' | 'adminFunction' | 'readWriteOverride' | 'parserDivergence' | 'unresolvedExecute' | 'unrecognized' | 'trivialWhere' | 'deleteWithoutWhere' | 'updateWithoutWhere' | 'sleep' | 'setConfig'>;
}

/** The HTTP request. */
export interface ApprovalRequestCommandHttp {
  /** Request method. */
  method?: string;
  /** Request path, masked. */
  path?: string;
}

/** The Kubernetes API request, as the API server's RequestInfo. */
export interface ApprovalRequestCommandKubernetes {
  /** Request verb. */
  verb?: string;
  /** API group; empty for core. */
  apiGroup?: string;
  /** Resource. */
  resource?: string;
  /** Subresource. */
  subresource?: string;
  /** Namespace of the request. */
  namespace?: string;
  /** Object name. */
  name?: string;
}

/** The ApprovalRule that held the command, as it was then. */
export interface ApprovalRequestRule {
  /** ApprovalRule name. */
  name: string;
  /** The rule's metadata.generation. */
  generation?: number;
  /** The rule's message. */
  message?: string;
}

/**
 * Snapshot of the rule's approval settings when the command was held; decisions are judged against
 * it.
 */
export interface ApprovalRequestApproval {
  /** Who may decide. */
  approvers: ApprovalRequestApprovalApprovers;
  /** Approvals needed. */
  required: number;
  /** `any` or `each` (see ApprovalRule). */
  mode: 'any' | 'each';
  /** `statement` or `window` (see ApprovalRule). */
  scope: 'statement' | 'window';
  /** The rule's timeout (Go duration); expiresAt is creation plus this. */
  timeout: string;
  /** Length of the approved window (scope window). */
  window?: string;
}

/** Who may decide. */
export interface ApprovalRequestApprovalApprovers {
  /** Approver groups. */
  groups?: string[];
  /** Approver usernames. */
  users?: string[];
}

/**
 * Set by the sidecar holding the command when its client disconnected or cancelled the statement
 * (or the sidecar restarted); the operator then sets status.phase Cancelled. Only the request's
 * creator may set it (admission webhook), only while Pending, and never change or remove it.
 */
export interface ApprovalRequestCancel {
  /** Why the wait ended, e.g. `client disconnected`. */
  reason: string;
  /** When the sidecar cancelled. */
  time?: string;
}

/**
 * Input slot for an approver's decision. The admission webhook moves it into reviews with the
 * authenticated reviewer and the time; it is never stored.
 */
export interface ApprovalRequestReviewInput {
  /** `Approve`, `Deny`, or `Revoke` (ends an approved window early). */
  decision: 'Approve' | 'Deny' | 'Revoke';
  /** Why; required by the webhook for Deny and Revoke. */
  reason?: string;
}

/** One decision. */
export interface ApprovalRequestReview {
  /** `Approve`, `Deny` or `Revoke`. */
  decision: 'Approve' | 'Deny' | 'Revoke';
  /** Why. */
  reason?: string;
  /** The authenticated reviewer, from the API server's userInfo (set by the webhook only). */
  reviewer: ApprovalRequestReviewReviewer;
  /** When the webhook admitted the review. */
  time: string;
}

/** The authenticated reviewer, from the API server's userInfo (set by the webhook only). */
export interface ApprovalRequestReviewReviewer {
  /** Username. */
  username: string;
  /** User UID, when the authenticator provides one. */
  uid?: string;
  /** Groups. */
  groups?: string[];
}

/** The request's state; written only by the operator. */
export interface ApprovalRequestStatus {
  /** The metadata.generation this status describes. */
  observedGeneration?: number;
  /**
   * `Pending` (waiting), `Approved` (enough approvals), `Denied` (any Deny), `Expired` (expiresAt
   * passed, or an approved window ended), `Cancelled` (the client went away), `Revoked` (an
   * approved window ended by a Revoke review).
   */
  phase?: 'Pending' | 'Approved' | 'Denied' | 'Expired' | 'Cancelled' | 'Revoked';
  /** Why the request ended as it did, e.g. the deny reason. */
  reason?: string;
  /** Approvals counted so far. */
  approvals?: number;
  /** When the phase left Pending. */
  decidedAt?: string;
  /** The approved window (scope window). */
  window?: ApprovalRequestStatusWindow;
  /** `Decided` (the phase is final) and `Notified` (the rule's notification was delivered). */
  conditions?: ApprovalRequestStatusCondition[];
}

/** The approved window (scope window). */
export interface ApprovalRequestStatusWindow {
  /** When the window ends. */
  expiresAt?: string;
  /** When a Revoke review ended it. */
  revokedAt?: string;
}

/** One condition, as metav1.Condition. (Same shape as Condition.) */
export type ApprovalRequestStatusCondition = Condition;

/** A list of ApprovalRequest objects, as the API server returns it. */
export interface ApprovalRequestList {
  apiVersion: 'chaperone.dev/v1alpha1';
  kind: 'ApprovalRequestList';
  metadata?: ListMeta;
  items: ApprovalRequest[];
}
