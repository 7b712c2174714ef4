// Shared result types of the policy compiler (operator/compile).
import type { SidecarConfigFile } from '../../sidecar/core/config-types.ts';
import type { MountSpec } from './paths.ts';

/** One problem: where (`MaskingPolicy/<name>.spec.patterns[0].regex`, `AgentIdentity/<name>.spec…`, or the compiled config path) and what to do. */
export interface CompileError {
  readonly path: string;
  readonly message: string;
}

export type CompileResult =
  | {
      readonly ok: true;
      readonly config: SidecarConfigFile;
      /** The canonical JSON of `config` (sorted keys): write exactly this into the ConfigMap, so the sidecar's file hash equals `hash`. */
      readonly text: string;
      /** sha256 (hex) of `text`. */
      readonly hash: string;
      /** What the pod webhook must mount into the sidecar container (only there) for the paths in `config`. */
      readonly mounts: readonly MountSpec[];
      /** Names of the MaskingPolicies and ApprovalRules that apply (for their status). */
      readonly maskingPolicies: readonly string[];
      readonly approvalRules: readonly string[];
      /** Things compiled with a loss (a CRD field the sidecar cannot enforce yet); for Events / status messages. */
      readonly warnings: readonly string[];
    }
  | { readonly ok: false; readonly errors: readonly CompileError[] };
