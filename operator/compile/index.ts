// The policy compiler's public surface: what the controllers and the pod webhook import.
export { compileIdentity, canonicalJson, configHash, DEFAULT_SA_ISSUER, DEFAULT_SA_JWKS_URI, type CompileEnv, type CompileInput } from './compile.ts';
export type { CompileError, CompileResult } from './types.ts';
export {
  DEFAULT_MOUNT_ROOT, credentialMountPath, hmacKeyMountPath, issuerCaMountPath, signingKeyMountPath, tlsCaMountPath, tlsClientMountPath, type MountSpec,
} from './paths.ts';
export { matchesLabelSelector, selectApprovalRules, selectMaskingPolicies, selectedConnections, selectsIdentity } from './select.ts';
