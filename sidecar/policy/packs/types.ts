// The shape of a built-in SQL pack: named rules plus the examples that prove them (gitleaks-style).
import type { SqlRuleJson } from '../sql-rules.ts';

export interface PackExample {
  readonly sql: string;
  /** The decision under `{ default: 'allow', packs: [this pack] }`. */
  readonly expect: 'allow' | 'deny';
  /** The reason code a deny must carry. */
  readonly reason?: string;
  readonly why: string;
}

export interface SqlPack {
  readonly name: string;
  readonly description: string;
  readonly rules: readonly SqlRuleJson[];
  readonly examples: readonly PackExample[];
}
