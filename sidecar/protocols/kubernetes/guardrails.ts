// Built-in guardrails of the Kubernetes gateway: requests that would break the sidecar's isolation are refused whatever the policy says (pure).
//
// The `guardrails` pack is always on. It refuses credential minting (TokenRequest, legacy token Secrets,
// CertificateSigningRequests),
// writes to Chaperone's own objects (its ConfigMaps, the chaperone.dev resources), exec/attach/
// port-forward/proxy/ephemeral containers and writes on the agent's own pod, nodes/proxy, the API
// server as a relay to other pods and services (pods/proxy, services/proxy, pods/portforward), and
// impersonation headers. Token minting has an opt-out (`guardrails.allowTokenRequests`; even then a
// token for the connection's own ServiceAccount, the sidecar's credential, is refused) and so has the
// relay (`guardrails.allowProxy`; never to the agent's own pod, never nodes/proxy).
import type { CompiledHttpPolicy, HttpFacts } from '../../policy/http-rules.ts';
import { decodeProtoObject } from './proto-body.ts';
import type { KubeRequestInfo } from './request-info.ts';

export type GuardrailName = 'token-request' | 'legacy-token-secret' | 'certificate-signing' | 'chaperone-objects' | 'own-pod' | 'node-proxy' | 'proxy-subresource' | 'impersonation';

export interface ServiceAccountRef {
  readonly namespace: string;
  readonly name: string;
}

export interface GuardrailContext {
  /** The sidecar's own pod (downward API); unknown parts protect less, never more loosely elsewhere. */
  readonly pod: { readonly name: string | undefined; readonly namespace: string | undefined };
  /** `guardrails.allowTokenRequests` of the connection. */
  readonly allowTokenRequests: boolean;
  /** `guardrails.allowProxy` of the connection. */
  readonly allowProxy: boolean;
  /** The ServiceAccount of the connection's credential; undefined when it cannot be told (then no token is minted even with the opt-out). */
  readonly credentialServiceAccount: () => ServiceAccountRef | undefined;
}

/** What a guardrail is judged on: the RequestInfo (its `headers` set by the listener) and the body (parsed JSON, or what proto-body.ts decodes of a protobuf one). */
export interface GuardrailRequest {
  readonly info: KubeRequestInfo;
  readonly body: unknown;
}

export type GuardrailVerdict = { readonly refused: false } | { readonly refused: true; readonly guardrail: GuardrailName; readonly rule: string; readonly message: string };

interface Guardrail {
  readonly name: GuardrailName;
  readonly message: string;
  refuses(r: GuardrailRequest, ctx: GuardrailContext): boolean;
}

export const GUARDRAIL_PACK = 'guardrails';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_OPERATOR = 'chaperone-operator';
export const TOKEN_SECRET_TYPE = 'kubernetes.io/service-account-token';
const SA_NAME_ANNOTATION = 'kubernetes.io/service-account.name';
const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);
const READ_VERBS = new Set(['get', 'list', 'watch']);
/** Streams into a container, or requests relayed to it: from the agent's own pod they reach the sidecar's files and ports. */
const POD_STREAMS = new Set(['exec', 'attach', 'portforward', 'proxy', 'ephemeralcontainers']);
/** `chaperone-<identity>` (compiled config, audit ledgers) and `chaperone.audit-ca.<identity>` (operator/controllers/identity-desired.ts, operator/audit/names.ts). */
const PROTECTED_CONFIGMAP = /^chaperone[-.]/;

type Json = Readonly<Record<string, unknown>>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const lower = (s: string): string => s.toLowerCase();

function core(i: KubeRequestInfo, resource: string): boolean {
  return i.isResourceRequest && i.apiGroup === '' && lower(i.resource) === resource;
}

function metadataOf(body: unknown): Json | undefined {
  if (!isObject(body)) return undefined;
  const m = body['metadata'];
  return isObject(m) ? m : undefined;
}

function stringAt(o: Json | undefined, key: string): string | undefined {
  const v = o?.[key];
  return typeof v === 'string' ? v : undefined;
}

/** Server-side apply (`kubectl apply --server-side`) patches may create an object; its YAML body is not parsed. */
function isApplyPatch(i: KubeRequestInfo): boolean {
  return i.verb === 'patch' && /^application\/apply-patch/.test(i.headers?.contentType ?? '');
}

/**
 * The managed-by label set to the operator anywhere in the body (an object's labels, a merge patch,
 * a JSON Patch op on `/metadata/labels` or `/metadata/labels/app.kubernetes.io~1managed-by`). Bounded depth.
 */
function claimsOperator(v: unknown, depth = 0): boolean {
  if (depth > 8) return false;
  if (Array.isArray(v)) return v.some((x) => claimsOperator(x, depth + 1));
  if (!isObject(v)) return false;
  if (v[MANAGED_BY_LABEL] === MANAGED_BY_OPERATOR) return true;
  if (typeof v['path'] === 'string' && v['path'].endsWith('/app.kubernetes.io~1managed-by') && v['value'] === MANAGED_BY_OPERATOR) return true;
  return Object.values(v).some((x) => claimsOperator(x, depth + 1));
}

function isOwnSa(ctx: GuardrailContext, namespace: string, name: string): boolean | undefined {
  const own = ctx.credentialServiceAccount();
  if (own === undefined) return undefined;
  return own.namespace === namespace && own.name === name;
}

/** With the opt-out: refused only for the credential's own ServiceAccount, or when that cannot be told. */
function mintRefused(ctx: GuardrailContext, namespace: string, name: string): boolean {
  if (!ctx.allowTokenRequests) return true;
  return isOwnSa(ctx, namespace, name) !== false;
}

const tokenRequest: Guardrail = {
  name: 'token-request',
  message: 'minting ServiceAccount tokens (TokenRequest, `kubectl create token`) through the gateway would hand the agent a credential the sidecar does not see; set guardrails.allowTokenRequests on the connection for an agent whose job this is (never for the sidecar\'s own ServiceAccount)',
  refuses: ({ info: i }, ctx) => core(i, 'serviceaccounts') && lower(i.subresource) === 'token' && mintRefused(ctx, i.namespace, i.name),
};

const legacyTokenSecret: Guardrail = {
  name: 'legacy-token-secret',
  message: 'a Secret of type kubernetes.io/service-account-token mints a long-lived ServiceAccount token; set guardrails.allowTokenRequests on the connection for an agent whose job this is (Secret writes must be JSON for the gateway to check them)',
  refuses: ({ info: i, body }, ctx) => {
    if (!core(i, 'secrets') || i.subresource !== '' || !['create', 'update', 'patch'].includes(i.verb)) return false;
    // A body the gateway could not read could be a token Secret: refused on create and server-side apply (fail closed).
    if (body === undefined) return i.verb === 'create' || isApplyPatch(i);
    if (!isObject(body) || body['type'] !== TOKEN_SECRET_TYPE) return false;
    const sa = stringAt(isObject(metadataOf(body)?.['annotations']) ? (metadataOf(body)?.['annotations'] as Json) : undefined, SA_NAME_ANNOTATION) ?? '';
    return mintRefused(ctx, i.namespace, sa);
  },
};

const certificateSigning: Guardrail = {
  name: 'certificate-signing',
  message: 'creating or approving a CertificateSigningRequest mints a client certificate (a credential the sidecar does not see); approve CSRs outside the agent\'s connection',
  refuses: ({ info: i }) => {
    if (!i.isResourceRequest || lower(i.apiGroup) !== 'certificates.k8s.io' || lower(i.resource) !== 'certificatesigningrequests') return false;
    // Reads and deletes stay allowed; a create asks for a certificate, an approval (or a status write: the signer's output) grants one.
    return i.verb === 'create' || ((i.verb === 'update' || i.verb === 'patch') && ['approval', 'status'].includes(lower(i.subresource)));
  },
};

function configMapTouched(i: KubeRequestInfo, body: unknown): boolean {
  if (!core(i, 'configmaps') || !WRITE_VERBS.has(i.verb)) return false;
  // A collection delete would take Chaperone's ConfigMaps with it whatever its label selector says.
  if (i.verb === 'deletecollection') return true;
  if (PROTECTED_CONFIGMAP.test(i.name)) return true;
  const meta = metadataOf(body);
  if (PROTECTED_CONFIGMAP.test(stringAt(meta, 'name') ?? '') || PROTECTED_CONFIGMAP.test(stringAt(meta, 'generateName') ?? '')) return true;
  // A create whose body was not read has its name only there: refused (fail closed).
  if (i.verb === 'create' && body === undefined) return true;
  return claimsOperator(body);
}

const chaperoneObjects: Guardrail = {
  name: 'chaperone-objects',
  message: 'Chaperone\'s own objects (its chaperone-* and chaperone.audit-ca.* ConfigMaps, AgentIdentity, MaskingPolicy, ApprovalRule, ApprovalRequest) are read-only for the agent; delete ConfigMaps by name',
  refuses: ({ info: i, body }) => {
    if (i.isResourceRequest && lower(i.apiGroup) === 'chaperone.dev' && WRITE_VERBS.has(i.verb)) return true;
    return configMapTouched(i, body);
  },
};

/** A relayed request (`…/proxy` subresource or the legacy `/proxy/` verb). */
function isProxy(i: KubeRequestInfo): boolean {
  return i.verb === 'proxy' || lower(i.subresource) === 'proxy';
}

/**
 * The object a proxy request names: the API server reads `[scheme:]name[:port]` there
 * (`web:8080`, `https:web:8443`; apimachinery `SplitSchemeNamePort`), other requests name it plainly.
 */
function targetName(i: KubeRequestInfo): string {
  if (!isProxy(i)) return i.name;
  const parts = i.name.split(':');
  return (parts.length === 3 ? parts[1] : parts[0]) ?? '';
}

const ownPod: Guardrail = {
  name: 'own-pod',
  message: 'exec, attach, port-forward, proxy, ephemeral containers and writes on the agent\'s own pod would reach the sidecar\'s files, ports and credentials',
  refuses: ({ info: i }, ctx) => {
    if (!core(i, 'pods')) return false;
    const { name, namespace } = ctx.pod;
    const sameNs = namespace === undefined || i.namespace === namespace;
    // A collection delete in the pod's namespace deletes the pod.
    if (i.verb === 'deletecollection') return namespace !== undefined && i.namespace === namespace;
    if (name === undefined || targetName(i) !== name || !sameNs) return false;
    return !READ_VERBS.has(i.verb) || POD_STREAMS.has(lower(i.subresource));
  },
};

const nodeProxy: Guardrail = {
  name: 'node-proxy',
  message: 'nodes/proxy reaches the kubelet API, whose /run, /exec and /attach run commands in any pod on the node (the agent\'s own pod and its sidecar included) without an upgrade the gateway could refuse',
  // `/api/v1/nodes/<n>/proxy/…` and the legacy `/api/v1/proxy/nodes/<n>/…`.
  refuses: ({ info: i }) => core(i, 'nodes') && (lower(i.subresource) === 'proxy' || i.verb === 'proxy'),
};

/** Pod subresources through which the API server carries the agent's traffic to the pod's ports. */
const POD_RELAYS = new Set(['proxy', 'portforward']);

const proxySubresource: Guardrail = {
  name: 'proxy-subresource',
  message: 'pods/proxy, services/proxy (every verb, the legacy /api/v1/proxy/… paths and the <name>:<port> and https:<name>:<port> forms included) and pods/portforward make the API server relay the agent\'s traffic to any in-cluster endpoint, around the egress allow-list that confines it to the sidecar, and the answers are not Kubernetes objects the gateway can mask by meaning; set guardrails.allowProxy on the connection for an agent whose job this is (its answers are then masked as text; the agent\'s own pod and nodes/proxy stay refused)',
  // Core group: `/api/v1/namespaces/<ns>/pods|services/<name>/proxy/…`, `pods/<name>/portforward`, and any legacy
  // `/api/v1/proxy/…` (nodes are refused before, by node-proxy). Fail closed: a proxy subresource on any core resource.
  refuses: ({ info: i }, ctx) => {
    if (ctx.allowProxy || !i.isResourceRequest || i.apiGroup !== '') return false;
    return isProxy(i) || (lower(i.resource) === 'pods' && POD_RELAYS.has(lower(i.subresource)));
  },
};

const impersonation: Guardrail = {
  name: 'impersonation',
  message: 'Impersonate-* headers (kubectl --as, --as-group, --as-uid) would act as someone else with the sidecar\'s credential',
  refuses: ({ info: i }) => (i.headers?.impersonate.length ?? 0) > 0,
};

/** In the order they are checked (the first that refuses names the refusal). */
export const GUARDRAILS: readonly Guardrail[] = [impersonation, tokenRequest, legacyTokenSecret, certificateSigning, chaperoneObjects, ownPod, nodeProxy, proxySubresource];

export function guardrailRule(name: GuardrailName): string {
  return `guardrail:${name}`;
}

/** The verdict of the pack on one request. */
export function guardrailVerdict(r: GuardrailRequest, ctx: GuardrailContext): GuardrailVerdict {
  for (const g of GUARDRAILS) if (g.refuses(r, ctx)) return { refused: true, guardrail: g.name, rule: guardrailRule(g.name), message: g.message };
  return { refused: false };
}

/** The JSON body, or the guarded fields of a protobuf one (kubectl sends built-in objects as protobuf). */
export function bodyOf(f: Pick<HttpFacts, 'body' | 'rawBody'>): unknown {
  return f.body ?? decodeProtoObject(f.rawBody);
}

/** Above every rule priority a policy can have. */
export const GUARDRAIL_PRIORITY = Number.MAX_SAFE_INTEGER;

/**
 * The connection's compiled policy with the pack in front: one deny rule per guardrail at a priority no
 * rule reaches, so the policy's own allow rules cannot lift them. Bodies are read (Secret types and
 * ConfigMap names live there).
 */
export function withGuardrails(p: CompiledHttpPolicy, ctx: GuardrailContext): CompiledHttpPolicy {
  const rules = GUARDRAILS.map((g) => ({
    id: guardrailRule(g.name), action: 'deny' as const, priority: GUARDRAIL_PRIORITY, message: g.message, approval: {}, websocketOnly: false,
    matches: (f: HttpFacts): boolean => f.kube !== undefined && g.refuses({ info: f.kube, body: bodyOf(f) }, ctx),
  }));
  return { ...p, rules: [...rules, ...p.rules], needsBody: true };
}

/** `system:serviceaccount:<ns>:<name>` from a ServiceAccount JWT's payload (not verified: the API server does that); undefined otherwise. */
export function serviceAccountOfToken(token: string): ServiceAccountRef | undefined {
  const payload = token.trim().split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as unknown;
    const sub = isObject(claims) ? claims['sub'] : undefined;
    const m = typeof sub === 'string' ? /^system:serviceaccount:([^:]+):([^:]+)$/.exec(sub) : null;
    return m ? { namespace: m[1] ?? '', name: m[2] ?? '' } : undefined;
  } catch {
    return undefined;
  }
}
