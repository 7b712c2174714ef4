// Verified claims → Principal: username, groups (as the API server derives them for ServiceAccounts), pod binding.
import type { JWTPayload } from 'jose';
import type { ResolvedIssuer, SelfPod } from './options.ts';
import { quote, refuse, type Refusal } from './reasons.ts';

export interface Principal {
  readonly issuer: string;
  readonly subject: string;
  readonly username: string;
  readonly groups: readonly string[];
  readonly serviceAccount?: { readonly namespace: string; readonly name: string; readonly uid: string };
  readonly pod?: { readonly name: string; readonly uid: string };
  /** The human the agent acts for (from the configured claim), for self-approval checks. */
  readonly actingFor?: string;
  /** When the token expires (ms since the epoch): a session must not outlive it unnoticed. */
  readonly expiresAt: number;
}

export type PrincipalResult = { readonly ok: true; readonly principal: Principal } | Refusal<'claim-invalid' | 'wrong-pod'>;

/** Reads a claim by exact name first (claims like `https://x/groups` contain dots), then as a dotted path. */
export function claimAt(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  let cur: unknown = claims;
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur) || !Object.hasOwn(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function stringList(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
  return undefined;
}

function nonEmpty(v: unknown): v is string {
  return typeof v === 'string' && v !== '';
}

/** A JSON object (not null, not an array), or undefined: claims are untrusted shapes even once signed. */
function record(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

interface KubeClaims {
  readonly namespace: string;
  readonly serviceaccount: { readonly name: string; readonly uid: string };
  readonly pod?: { readonly name: string; readonly uid: string };
}

/** The `kubernetes.io` claim of a ServiceAccount token, or a message saying what is wrong with it. */
function kubeClaims(claims: JWTPayload): KubeClaims | string {
  const k = record(claims['kubernetes.io']);
  if (k === undefined) return 'the token has no "kubernetes.io" claim: it is not a ServiceAccount token';
  const sa = record(k['serviceaccount']);
  if (!nonEmpty(k['namespace']) || !nonEmpty(sa?.['name']) || !nonEmpty(sa['uid'])) {
    return 'the "kubernetes.io" claim lacks namespace or serviceaccount name/uid';
  }
  // Present but null, a string or an array is not "unbound": it is a claim we cannot read (refused, never an internal error).
  const podClaim = k['pod'];
  const pod = record(podClaim);
  if (podClaim !== undefined && (!nonEmpty(pod?.['name']) || !nonEmpty(pod['uid']))) return 'the "kubernetes.io".pod claim lacks name or uid';
  return {
    namespace: k['namespace'],
    serviceaccount: { name: sa['name'], uid: sa['uid'] },
    ...(pod !== undefined ? { pod: { name: pod['name'] as string, uid: pod['uid'] as string } } : {}),
  };
}

/** A bound pod must be this sidecar's own pod, name AND uid (a pod re-created under the same name has a new uid). */
export function checkPodBinding(kc: KubeClaims, self: SelfPod | undefined, required: boolean): Refusal<'wrong-pod'> | undefined {
  if (kc.pod === undefined) {
    return required ? refuse('wrong-pod', 'the ServiceAccount token is not bound to a pod; use the token projected into this pod (audience chaperone)') : undefined;
  }
  if (!nonEmpty(self?.name) || !nonEmpty(self.uid)) {
    return refuse('wrong-pod', 'the token is bound to a pod, but the sidecar does not know its own pod (set POD_NAME and POD_UID from the downward API)');
  }
  if (kc.pod.name !== self.name || kc.pod.uid !== self.uid) {
    return refuse('wrong-pod', `the token is bound to pod ${quote(kc.pod.name)} (uid ${quote(kc.pod.uid)}), not to this pod ${quote(self.name)}; a token from another pod is refused`);
  }
  if (nonEmpty(self.namespace) && kc.namespace !== self.namespace) {
    return refuse('wrong-pod', `the token belongs to namespace ${quote(kc.namespace)}, not this pod's namespace ${quote(self.namespace)}`);
  }
  return undefined;
}

function kubePrincipal(claims: JWTPayload, cfg: ResolvedIssuer, self: SelfPod | undefined, expiresAt: number): PrincipalResult {
  const kc = kubeClaims(claims);
  if (typeof kc === 'string') return refuse('claim-invalid', kc);
  const username = `system:serviceaccount:${kc.namespace}:${kc.serviceaccount.name}`;
  if (claims.sub !== username) return refuse('claim-invalid', `the token's sub ${quote(claims.sub)} does not match its kubernetes.io claim (${username})`);
  const podRefusal = checkPodBinding(kc, self, cfg.requirePodBinding);
  if (podRefusal !== undefined) return podRefusal;
  // The groups the API server's ServiceAccount authenticator assigns; a groups claim in the token is not trusted.
  const groups = ['system:serviceaccounts', `system:serviceaccounts:${kc.namespace}`, username];
  const acting = actingFor(claims, cfg);
  if (acting === null) return refuse('claim-invalid', `the ${quote(cfg.actingForClaim)} claim is not a string`);
  return {
    ok: true,
    principal: {
      issuer: cfg.issuer,
      subject: username,
      username,
      groups,
      serviceAccount: { namespace: kc.namespace, name: kc.serviceaccount.name, uid: kc.serviceaccount.uid },
      ...(kc.pod !== undefined ? { pod: kc.pod } : {}),
      ...(acting !== undefined ? { actingFor: acting } : {}),
      expiresAt,
    },
  };
}

/** undefined: not configured or absent; null: present but not a non-empty string. */
function actingFor(claims: JWTPayload, cfg: ResolvedIssuer): string | undefined | null {
  if (cfg.actingForClaim === undefined) return undefined;
  const v = claimAt(claims, cfg.actingForClaim);
  if (v === undefined) return undefined;
  return nonEmpty(v) ? v : null;
}

function oidcPrincipal(claims: JWTPayload, cfg: ResolvedIssuer, expiresAt: number): PrincipalResult {
  const user = claimAt(claims, cfg.usernameClaim);
  if (!nonEmpty(user)) return refuse('claim-invalid', `the username claim ${quote(cfg.usernameClaim)} is missing or not a string`);
  // `system:` usernames belong to the cluster (system:serviceaccount:<ns>:<name> is a Kubernetes issuer's): an external IdP
  // naming one would match allowedSubjects meant for a ServiceAccount. Refused, as the API server's OIDC authenticator does.
  if ((cfg.usernamePrefix + user).startsWith('system:')) {
    return refuse('claim-invalid', `the username ${quote(cfg.usernamePrefix + user)} (claim ${quote(cfg.usernameClaim)}) starts with system:, which only the cluster may assign; an OIDC issuer cannot name a ServiceAccount or system user`);
  }
  const raw = stringList(claimAt(claims, cfg.groupsClaim));
  if (raw === undefined) return refuse('claim-invalid', `the groups claim ${quote(cfg.groupsClaim)} is not a string or a list of strings`);
  // `system:` names belong to the cluster (ServiceAccount groups): an external IdP cannot grant them.
  const groups = [...new Set(raw.filter((g) => g !== '' && !g.startsWith('system:')).map((g) => cfg.groupsPrefix + g))];
  const acting = actingFor(claims, cfg);
  if (acting === null) return refuse('claim-invalid', `the ${quote(cfg.actingForClaim)} claim is not a string`);
  return {
    ok: true,
    principal: {
      issuer: cfg.issuer,
      subject: claims.sub as string,
      username: cfg.usernamePrefix + user,
      groups,
      ...(acting !== undefined ? { actingFor: acting } : {}),
      expiresAt,
    },
  };
}

/** Frozen all the way down: one Principal is shared by every cache hit. */
function freeze(p: Principal): Principal {
  Object.freeze(p.groups);
  if (p.serviceAccount !== undefined) Object.freeze(p.serviceAccount);
  if (p.pod !== undefined) Object.freeze(p.pod);
  return Object.freeze(p);
}

/** Claims must already be verified (signature, iss, aud, time). */
export function toPrincipal(claims: JWTPayload, cfg: ResolvedIssuer, self?: SelfPod): PrincipalResult {
  if (!nonEmpty(claims.sub)) return refuse('claim-invalid', 'the token has no sub claim');
  if (typeof claims.exp !== 'number') return refuse('claim-invalid', 'the token has no exp claim');
  const expiresAt = claims.exp * 1000;
  const r = cfg.kind === 'kubernetes' ? kubePrincipal(claims, cfg, self, expiresAt) : oidcPrincipal(claims, cfg, expiresAt);
  return r.ok ? { ok: true, principal: freeze(r.principal) } : r;
}
