// Memoized compileIdentity: the same identity generation with the same selected policies compiles once (replays, resyncs and webhook lookups reuse it).
//
// Why: a compile costs ~6-10 ms of CPU here, and each one with a custom masking pattern leaves
// re2-wasm objects behind in a fixed 16 MB WASM heap (the validator never frees them), so
// recompiling unchanged inputs would slowly exhaust it. Only a real change compiles again.
import type { AgentIdentity, ApprovalRule, MaskingPolicy } from '../api/types.ts';
import { compileIdentity, selectApprovalRules, selectMaskingPolicies, type CompileEnv, type CompileResult } from '../compile/index.ts';

/** Entries kept (least recently used dropped first): a few per identity is plenty. */
export const DEFAULT_COMPILE_CACHE_SIZE = 4096;

export interface CompileCacheStats {
  hits: number;
  misses: number;
}

function version(o: { metadata: { name?: string | undefined; resourceVersion?: string | undefined; generation?: number | undefined } }): string {
  return `${o.metadata.name ?? ''}@${o.metadata.generation ?? ''}/${o.metadata.resourceVersion ?? ''}`;
}

/** What the result depends on: the identity's spec generation and labels, and each selected policy's version. */
export function compileKey(identity: AgentIdentity, policies: readonly MaskingPolicy[], rules: readonly ApprovalRule[]): string {
  const m = identity.metadata;
  return [m.namespace, m.name, m.uid, m.generation, JSON.stringify(m.labels ?? {}), policies.map(version).join(','), rules.map(version).join(',')].join('|');
}

export class CompileCache {
  readonly stats: CompileCacheStats = { hits: 0, misses: 0 };
  private readonly entries = new Map<string, CompileResult>();

  constructor(private readonly env: () => CompileEnv, private readonly max = DEFAULT_COMPILE_CACHE_SIZE) {}

  /** Selects the policies and rules that apply (in the identity's namespace), then compiles or reuses. */
  compile(identity: AgentIdentity, allPolicies: readonly MaskingPolicy[], allRules: readonly ApprovalRule[]): CompileResult {
    const policies = selectMaskingPolicies(identity, allPolicies);
    const rules = selectApprovalRules(identity, allRules);
    const key = compileKey(identity, policies, rules);
    const hit = this.entries.get(key);
    if (hit) {
      this.stats.hits += 1;
      // Map order is insertion order: re-inserting marks it most recently used.
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    this.stats.misses += 1;
    const result = compileIdentity({ identity, maskingPolicies: policies, approvalRules: rules, env: this.env() });
    this.entries.set(key, result);
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value as string);
    return result;
  }

  get size(): number {
    return this.entries.size;
  }
}
