// Names of the audit plugin's objects: the per-identity CA ConfigMap (sidecars trust the report server with it) and the per-identity report ledger.
import { createHash } from 'node:crypto';

/** Key of the CA bundle in the CA ConfigMap (mounted into the sidecar as <root>/_audit/ca.crt). */
export const AUDIT_CA_KEY = 'ca.crt';
/** Key of the ledger JSON in the ledger ConfigMap. */
export const LEDGER_KEY = 'ledger.json';
/** Labels the ledgers (operator namespace) so the leader can sweep those of deleted identities. */
export const LABEL_LEDGER = 'chaperone.dev/audit-ledger';
/** On a ledger: `<namespace>/<name>` of its AgentIdentity. */
export const ANNOTATION_LEDGER_IDENTITY = 'chaperone.dev/identity';

const MAX_NAME = 253;
const digest = (s: string, n: number): string => createHash('sha256').update(s).digest('hex').slice(0, n);

/**
 * `chaperone.audit-ca.<identity>` in the identity's namespace. Compiled ConfigMaps are `chaperone-<identity>`:
 * the `.` after `chaperone` keeps the two name spaces apart, whatever the identity is called.
 */
export function auditCaConfigMapName(identity: string): string {
  const name = `chaperone.audit-ca.${identity}`;
  return name.length <= MAX_NAME ? name : `chaperone.audit-ca.${digest(identity, 20)}`;
}

/** The ledger of one identity, in the operator's namespace (agents get no rights there). */
export function ledgerConfigMapName(namespace: string, identity: string): string {
  return `chaperone-audit-ledger-${digest(`${namespace}/${identity}`, 24)}`;
}
