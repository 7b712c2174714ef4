// Shared types of the masking engine: detectors, findings, replacement settings and the masker API.

/** What a detector finds: credentials of machines, or personal data of people. */
export type DetectorCategory = 'secret' | 'pii';

/** How sure a match is a real secret once its pattern and validator passed. */
export type Confidence = 'high' | 'medium' | 'low';

/** A text that must be found, with the exact substring that must be masked. */
export interface PositiveExample {
  readonly text: string;
  /** The exact secret inside `text`; after masking none of it may remain beyond 4 characters. */
  readonly secret: string;
  readonly reason: string;
}

/** A text the detector must not fire on, with why it looks close but is not a secret. */
export interface NegativeExample {
  readonly text: string;
  readonly reason: string;
}

/** A deterministic pseudo-random source for the corpus generator (never Math.random). */
export interface Rng {
  /** Integer in [0, n). */
  int(n: number): number;
  /** `len` characters drawn from `alphabet`. */
  pick(alphabet: string, len: number): string;
}

/**
 * One built-in detector: one object literal in its own file under detectors/.
 * The pattern must carry the `g` flag. If it has a named group `secret`, only that span is
 * masked (e.g. the password inside a URL); otherwise the whole match is.
 */
export interface Detector {
  readonly id: string;
  readonly category: DetectorCategory;
  readonly description: string;
  /**
   * Lower-case literals; the pattern runs on a value only if the value contains one of them
   * (case-insensitively). Empty means "always run" and is allowed only for patterns with a cheap
   * literal or character-class anchor (e.g. email's `@`). This is the speed and precision lever.
   */
  readonly keywords: readonly string[];
  readonly pattern: RegExp;
  /** Checksum, entropy or structure check on the candidate (the masked span). */
  readonly validate?: (candidate: string) => boolean;
  readonly confidence: Confidence;
  /** Off unless a MaskingPolicy names it (e.g. IP addresses). Defaults to true. */
  readonly enabledByDefault?: boolean;
  /** Upper bound on the length of one match in characters; bounds the streaming carry-over. */
  readonly maxLength: number;
  /** Synthesizes a fake but format-correct secret for the corpus (prefix, length, charset, checksum). */
  readonly generate?: (rng: Rng) => string;
  readonly positives: readonly PositiveExample[];
  readonly negatives: readonly NegativeExample[];
}

/** How a masked span is replaced. */
export type Replacement =
  | { readonly kind: 'placeholder'; readonly format?: string } // default "[MASKED:{id}]"
  | { readonly kind: 'partial'; readonly keepLast: number; readonly maskChar?: string }
  | { readonly kind: 'hmac'; readonly prefix?: string; readonly length?: number };

/** Counts by detector id (or rule id); never the values. */
export type FindingCounts = Readonly<Record<string, number>>;

export interface MaskResult<T> {
  /** The masked value; the very same object as the input when nothing matched. */
  readonly value: T;
  readonly changed: boolean;
  readonly findings: FindingCounts;
}
