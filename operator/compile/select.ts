// Which MaskingPolicies and ApprovalRules apply to an AgentIdentity, and to which of its connections (pure; Kubernetes label-selector semantics).
import type {
  AgentIdentity, AgentIdentityConnection, ApprovalRule, MaskingPolicy, Selector, SelectorIdentitySelector, SelectorIdentitySelectorMatchExpression,
} from '../api/types.ts';

/**
 * Kubernetes LabelSelector semantics (apimachinery `LabelSelectorAsSelector`): every matchLabels
 * pair and every expression must hold; `In` needs the key present with one of the values; `NotIn`
 * holds when the key is absent or its value is not listed; `Exists` / `DoesNotExist` test the key.
 * An empty selector `{}` matches everything.
 */
export function matchesLabelSelector(sel: SelectorIdentitySelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  return (sel.matchExpressions ?? []).every((e) => requirementHolds(e, labels));
}

function requirementHolds(e: SelectorIdentitySelectorMatchExpression, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.hasOwn(labels, e.key);
  const listed = has && (e.values ?? []).includes(labels[e.key] ?? '');
  switch (e.operator) {
    case 'In':
      return listed;
    case 'NotIn':
      return !listed;
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
    default:
      // An unknown operator selects nothing (the API server would have refused it).
      return false;
  }
}

/** True if the selector picks the identity: same namespace, and named in `identities` or matched by `identitySelector`. */
export function selectsIdentity(sel: Selector, selectorNamespace: string | undefined, identity: AgentIdentity): boolean {
  if ((selectorNamespace ?? '') !== (identity.metadata.namespace ?? '')) return false;
  const name = identity.metadata.name ?? '';
  if (sel.identities?.includes(name) === true) return true;
  return sel.identitySelector !== undefined && matchesLabelSelector(sel.identitySelector, identity.metadata.labels ?? {});
}

/** The connection name of the identity's forward proxy (the sidecar's `egress` section), as selectors and recordings name it. */
export const EGRESS_CONNECTION = 'egress';

/**
 * The identity's connections as selectors see them: its own, then the forward proxy (when it has
 * one) as the `http` connection `egress` — so `connections: [egress]`, `protocols: [http]` and an
 * unnarrowed selector reach it like any HTTP connection.
 */
export function selectableConnections(identity: AgentIdentity): AgentIdentityConnection[] {
  const fp = identity.spec.interception?.forwardProxy;
  if (fp === undefined) return identity.spec.connections;
  return [...identity.spec.connections, { name: EGRESS_CONNECTION, protocol: 'http', localPort: fp.localPort }];
}

/** The identity's connections a selector narrows to (connections and protocols both, when given), in the identity's order, the forward proxy last. */
export function selectedConnections(sel: Selector, identity: AgentIdentity): AgentIdentityConnection[] {
  return selectableConnections(identity).filter(
    (c) => (sel.connections === undefined || sel.connections.length === 0 || sel.connections.includes(c.name))
      && (sel.protocols === undefined || sel.protocols.length === 0 || sel.protocols.includes(c.protocol)),
  );
}

/** Connection names a selector lists that the identity does not have (a typo would silently select nothing). */
export function missingConnections(sel: Selector, identity: AgentIdentity): string[] {
  const have = new Set(selectableConnections(identity).map((c) => c.name));
  return (sel.connections ?? []).filter((n) => !have.has(n));
}

function byName(a: { metadata: { name?: string } }, b: { metadata: { name?: string } }): number {
  const x = a.metadata.name ?? '';
  const y = b.metadata.name ?? '';
  return x < y ? -1 : x > y ? 1 : 0;
}

/** MaskingPolicies selecting the identity, by name (they have no priority; their rules add up). */
export function selectMaskingPolicies(identity: AgentIdentity, policies: readonly MaskingPolicy[]): MaskingPolicy[] {
  return policies.filter((p) => selectsIdentity(p.spec.selector, p.metadata.namespace, identity)).sort(byName);
}

export const DEFAULT_RULE_PRIORITY = 500;

/** ApprovalRules selecting the identity: highest priority first, then by name (the order the rules are evaluated in). */
export function selectApprovalRules(identity: AgentIdentity, rules: readonly ApprovalRule[]): ApprovalRule[] {
  return rules
    .filter((r) => selectsIdentity(r.spec.selector, r.metadata.namespace, identity))
    .sort((a, b) => (b.spec.priority ?? DEFAULT_RULE_PRIORITY) - (a.spec.priority ?? DEFAULT_RULE_PRIORITY) || byName(a, b));
}
