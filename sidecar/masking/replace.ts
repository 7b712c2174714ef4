// Replacement text for a masked region: placeholder, partial (last N kept) or a deterministic HMAC token.
import { createHmac } from 'node:crypto';
import type { Replacement } from './types.ts';
import { decodeSpan } from './decode.ts';
import { ruleId, type Compiled } from './options.ts';
import type { Group } from './scan.ts';

export const DEFAULT_PLACEHOLDER = '[MASKED:{id}]';
/** Partial masking shows a suffix only on secrets at least this long (shorter ones are masked whole). */
export const PARTIAL_MIN_LENGTH = 12;
const PARTIAL_PREFIX_LEN = 4; // fixed, so the mask does not tell the secret's length

export function placeholder(id: string, format = DEFAULT_PLACEHOLDER): string {
  return format.split('{id}').join(id);
}

/**
 * The replacement for `secret` (the region's text as a JS string) found by rule `id`.
 * `overLong`: the region is longer than the stream window, so only a placeholder is stable.
 */
export function replacementText(r: Replacement, id: string, secret: string, key: Uint8Array | undefined, overLong: boolean): string {
  if (overLong || r.kind === 'placeholder') return placeholder(id, r.kind === 'placeholder' ? r.format : undefined);
  if (r.kind === 'partial') {
    const chars = [...secret];
    const mask = (r.maskChar ?? '*').repeat(PARTIAL_PREFIX_LEN);
    if (chars.length < PARTIAL_MIN_LENGTH || r.keepLast === 0) return mask;
    return mask + chars.slice(-r.keepLast).join('');
  }
  // HMAC over the decoded secret, so the same secret gives the same token in any spelling.
  const mac = createHmac('sha256', key ?? new Uint8Array(0)).update(decodeSpan(secret), 'utf8').digest('hex');
  const token = mac.slice(0, r.length ?? 16);
  return r.prefix !== undefined ? r.prefix + token : `[MASKED:${id}:${token}]`;
}

export function countFindings(c: Compiled, groups: readonly Group[], into: Record<string, number> = {}): Record<string, number> {
  for (const g of groups) {
    const id = ruleId(c, g.rule);
    into[id] = (into[id] ?? 0) + 1;
  }
  return into;
}

/** Replacement for one group; `secret` is its text as a JS string. */
export function groupReplacement(c: Compiled, g: Group, secret: string): string {
  const id = ruleId(c, g.rule);
  const overLong = g.end - g.start > c.window || g.truncated;
  const rewritten = overLong || g.rule < 0 ? undefined : c.rules[g.rule]?.rewrite?.(secret);
  if (rewritten !== undefined) return rewritten;
  return replacementText(c.replacementFor(id), id, secret, c.hmacKey, overLong);
}

