// Shared helpers of the detector table: charsets, checksums, entropy, placeholders and the token factory.
import type { Confidence, Detector, NegativeExample, PositiveExample, Rng } from '../types.ts';
import { createRng } from './rng.ts';

export const DIGITS = '0123456789';
export const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
export const LOWER = 'abcdefghijklmnopqrstuvwxyz';
export const HEX = '0123456789abcdef';
export const HEX_UPPER = '0123456789ABCDEF';
export const ALNUM = UPPER + LOWER + DIGITS;
export const ALNUM_LOWER = LOWER + DIGITS;
export const ALNUM_UPPER = UPPER + DIGITS;
export const B64 = ALNUM + '+/';
export const B64URL = ALNUM + '-_';
/** GitHub's base62 order (digits, upper, lower) as used by its CRC32 token checksum. */
export const BASE62 = DIGITS + UPPER + LOWER;

/** Escapes a literal for use inside a RegExp source. */
export function esc(literal: string): string {
  return literal.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

const CRC_TABLE = ((): Uint32Array => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE) of the UTF-16 code units of an ASCII string. */
export function crc32(s: string): number {
  let crc = 0xffffffff;
  for (let i = 0; i < s.length; i++) crc = (crc >>> 8) ^ (CRC_TABLE[(crc ^ s.charCodeAt(i)) & 0xff] ?? 0);
  return (crc ^ 0xffffffff) >>> 0;
}

/** Base62 (digits, upper, lower) of a non-negative integer, left-padded with '0' to `width`. */
export function base62(n: number, width: number): string {
  let out = '';
  let v = n;
  while (v > 0) {
    out = BASE62.charAt(v % 62) + out;
    v = Math.floor(v / 62);
  }
  return out.padStart(width, '0');
}

/** GitHub/npm checksum: the last 6 chars are base62(CRC32(the 30 random chars)). */
export function crcTokenValid(token: string, prefixLen: number): boolean {
  const body = token.slice(prefixLen, -6);
  return body.length > 0 && base62(crc32(body), 6) === token.slice(-6);
}

/**
 * What a masker accepts for a checksummed token: a valid checksum, or a random-looking body that
 * fails it. Leaking a real token costs more than masking a look-alike (a mistyped or test token),
 * so only low-entropy placeholders (`ghp_xxxx…000000`) are let through.
 */
export function crcTokenOrRandom(token: string, prefixLen: number): boolean {
  return crcTokenValid(token, prefixLen) || entropy(token.slice(prefixLen)) >= 3;
}

/** Luhn mod-10 over the digits of `s` (other characters ignored). */
export function luhnValid(s: string): boolean {
  let sum = 0;
  let dbl = false;
  let count = 0;
  for (let i = s.length - 1; i >= 0; i--) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) continue;
    count++;
    let v = dbl ? c * 2 : c;
    if (v > 9) v -= 9;
    sum += v;
    dbl = !dbl;
  }
  return count > 0 && sum % 10 === 0;
}

/** The digit that completes `digits` to a Luhn-valid number. */
export function luhnCheckDigit(digits: string): string {
  for (let d = 0; d <= 9; d++) if (luhnValid(digits + String(d))) return String(d);
  return '0';
}

/** Shannon entropy in bits per character. */
export function entropy(s: string): number {
  if (s.length === 0) return 0;
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let h = 0;
  for (const c of counts.values()) {
    const p = c / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

/** Number of character classes (lower, upper, digit, other) present. */
export function charClasses(s: string): number {
  return (
    (/[a-z]/.test(s) ? 1 : 0) + (/[A-Z]/.test(s) ? 1 : 0) + (/[0-9]/.test(s) ? 1 : 0) + (/[^A-Za-z0-9]/.test(s) ? 1 : 0)
  );
}

const PLACEHOLDER_WORDS = new Set([
  'null', 'nil', 'none', 'true', 'false', 'undefined', 'empty', 'string', 'str', 'number', 'int', 'bool',
  'boolean', 'redacted', 'masked', 'hidden', 'secret', 'password', 'xxx', 'xxxx', 'xxxxx', 'xxxxxx', 'xxxxxxxx',
  'example', 'placeholder', 'your_password', 'yourpassword', 'your-password', 'required', 'optional', 'env',
  'process.env', 'os.environ', 'getenv', 'todo', 'tbd', 'changeit_placeholder', 'value', 'default',
]);

// Each rule recognizes one kind of non-value: env/template references, masks, documented examples, our own placeholder.
const PLACEHOLDER_RULES: readonly RegExp[] = [
  /^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$/,
  /^(?:\$\{|\$\(|%\(|\{\{|<%|#\{|\[MASKED)/,
  /EXAMPLE/,
  /^(?:x{3,}|X{3,})[-_]?/,
  /^<[^<>]*>?$/,
  /^\[[^\]]*\]?$/,
  /^%[A-Za-z_]+%$/,
  /^(.)\1*$/,
  /^(?:process\.env|os\.environ|os\.getenv|env\.|secrets\.|vault:|ref\+|sm:\/\/)/i,
  /^(?:your|my|the|some|enter|insert|replace)[_-]?[a-z_-]*$/i,
];

/** Obvious non-values after a secret-named key: references, templates, masks, type names, our own placeholder. */
export function isPlaceholder(v: string): boolean {
  const s = v.trim();
  if (s.length === 0 || PLACEHOLDER_WORDS.has(s.toLowerCase()) || isDocumentedExample(s)) return true;
  return PLACEHOLDER_RULES.some((r) => r.test(s));
}

// Keys printed in vendor documentation and tutorials: public, not secrets (and a false-positive class of the corpus).
const DOCUMENTED_EXAMPLES = new Set([
  'AKIAIOSFODNN7EXAMPLE',
  'sk_test_4eC39HqLyjWDarjtT1zdp7dc',
  'sk_test_BQokikJOvBiI2HlWgH4olfQ2',
  'xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy',
  'AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe',
  'ghp_16C7e42F292c6912E7710c838347Ae178B4a',
  // the jwt.io sample token
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c',
]);

/** True for keys copied from vendor docs (exact list) or carrying the docs' EXAMPLE marker. */
export function isDocumentedExample(candidate: string): boolean {
  return DOCUMENTED_EXAMPLES.has(candidate) || /EXAMPLE/.test(candidate);
}

/** A regex run segment: `cls` is the character class body, `alphabet` what generate() draws from. */
export interface Run {
  readonly cls: string;
  readonly alphabet: string;
  readonly min: number;
  readonly max?: number;
}
export type Segment = string | Run;

export function run(cls: string, alphabet: string, min: number, max?: number): Run {
  return max === undefined ? { cls, alphabet, min } : { cls, alphabet, min, max };
}
export const alnum = (min: number, max?: number): Run => run('A-Za-z0-9', ALNUM, min, max);
export const alnumLower = (min: number, max?: number): Run => run('a-z0-9', ALNUM_LOWER, min, max);
export const alnumUpper = (min: number, max?: number): Run => run('A-Z0-9', ALNUM_UPPER, min, max);
export const hex = (min: number, max?: number): Run => run('a-f0-9', HEX, min, max);
export const hexAny = (min: number, max?: number): Run => run('a-fA-F0-9', HEX, min, max);
export const digits = (min: number, max?: number): Run => run('0-9', DIGITS, min, max);
export const b64url = (min: number, max?: number): Run => run('A-Za-z0-9_-', B64URL, min, max);
export const b64 = (min: number, max?: number): Run => run('A-Za-z0-9+/', B64, min, max);

function segSource(s: Segment): string {
  if (typeof s === 'string') return esc(s);
  const q = s.max === undefined || s.max === s.min ? `{${s.min}}` : `{${s.min},${s.max}}`;
  return `[${s.cls}]${q}`;
}

function segGenerate(s: Segment, rng: Rng): string {
  if (typeof s === 'string') return s;
  const len = s.max === undefined ? s.min : s.min + rng.int(s.max - s.min + 1);
  return rng.pick(s.alphabet, len);
}

function segMaxLen(s: Segment): number {
  return typeof s === 'string' ? s.length : (s.max ?? s.min);
}

export interface TokenSpec {
  readonly id: string;
  readonly description: string;
  /** The literal the token starts with (case-sensitive in the pattern). */
  readonly prefix: string;
  readonly body: readonly Segment[];
  readonly keywords?: readonly string[];
  readonly confidence?: Confidence;
  readonly category?: 'secret' | 'pii';
  readonly validate?: (candidate: string) => boolean;
  /** Makes generate() output valid (e.g. appends a checksum). */
  readonly finish?: (token: string) => string;
  /** Class that may not touch the token on the left / right (default A-Za-z0-9_ / the last run's class plus _). */
  readonly before?: string;
  readonly after?: string;
  readonly flags?: string;
  readonly positives?: readonly PositiveExample[];
  readonly negatives?: readonly NegativeExample[];
}

/** Deterministic sample of a spec's format, for examples written into the table. */
export function sampleOf(d: Pick<Detector, 'generate'>, seed: number): string {
  if (d.generate === undefined) throw new Error('detector has no generate(); give explicit examples instead');
  return d.generate(createRng(seed));
}

function lastClass(body: readonly Segment[]): string {
  for (let i = body.length - 1; i >= 0; i--) {
    const s = body[i];
    if (s !== undefined && typeof s !== 'string') return s.cls;
  }
  return 'A-Za-z0-9';
}

function autoNegatives(spec: TokenSpec, sample: string): NegativeExample[] {
  const negs: NegativeExample[] = [
    { text: `Tokens of this kind start with "${spec.prefix}" followed by random characters.`, reason: 'the bare prefix in prose' },
  ];
  const minLen = spec.prefix.length + spec.body.reduce((n, s) => n + (typeof s === 'string' ? s.length : s.min), 0);
  if (minLen - 3 > spec.prefix.length) {
    const cut = Math.min(minLen - 3, spec.prefix.length + 6);
    negs.push({ text: `value=${sample.slice(0, cut)} end`, reason: 'prefix with a body that is too short' });
  }
  if (spec.validate !== undefined) {
    const last = sample.charAt(sample.length - 1);
    const flipped = sample.slice(0, -1) + (last === 'A' ? 'B' : 'A');
    if (!spec.validate(flipped)) negs.push({ text: `token: ${flipped}`, reason: 'right shape but the checksum/structure check fails' });
  }
  return negs;
}

const STRONG_PREFIX = /^(?=.{4})[A-Za-z][A-Za-z0-9]*[_.-][A-Za-z0-9_.-]*$/;

/** Builds a prefixed-token detector: literal prefix, bounded runs, boundaries on both sides (see `strong`). */
export function token(spec: TokenSpec): Detector {
  const before = spec.before ?? 'A-Za-z0-9_';
  const after = spec.after ?? `_${lastClass(spec.body)}`;
  // A distinctive prefix (a letter, 4+ characters, with a separator: ghp_, xoxb-, sk_live_) needs no
  // boundary before it, and a fixed-length body none after it: the token is found inside a longer
  // identifier and next to another token (two pasted together), where boundaries hid both.
  const strong = spec.before === undefined && STRONG_PREFIX.test(spec.prefix);
  const fixed = spec.body.every((s) => typeof s === 'string' || s.max === undefined || s.max === s.min);
  const lookbehind = strong ? '' : `(?<![${before}])`;
  const lookahead = strong && fixed && spec.after === undefined ? '' : `(?![${after}])`;
  const src = `${lookbehind}${esc(spec.prefix)}${spec.body.map(segSource).join('')}${lookahead}`;
  const finish = spec.finish ?? ((t: string): string => t);
  const generate = (rng: Rng): string => finish(spec.prefix + spec.body.map((s) => segGenerate(s, rng)).join(''));
  const maxLength = spec.prefix.length + spec.body.reduce((n, s) => n + segMaxLen(s), 0);
  const a = generate(createRng(1));
  const b = generate(createRng(2));
  const positives: PositiveExample[] = [
    { text: `export TOKEN=${a}`, secret: a, reason: 'generated token in an env assignment' },
    { text: `{"data":{"value":"${b}"},"ok":true}`, secret: b, reason: 'generated token at the end of a JSON string' },
    ...(spec.positives ?? []),
  ];
  const d: Detector = {
    id: spec.id,
    category: spec.category ?? 'secret',
    description: spec.description,
    keywords: spec.keywords ?? [spec.prefix.toLowerCase()],
    pattern: new RegExp(src, `g${spec.flags ?? ''}`),
    confidence: spec.confidence ?? 'high',
    maxLength,
    generate,
    positives,
    negatives: [...autoNegatives(spec, a), ...(spec.negatives ?? [])],
    validate: (c: string): boolean => !isDocumentedExample(c) && (spec.validate?.(c) ?? true),
  };
  return d;
}

/** An opening quote: plain, backslash-escaped, or doubled (JSON inside a CSV field: `""key"": ""value""`). */
const QUOTE_OPEN = String.raw`(?:\\?["'\x60]|"")`;
/**
 * What may follow `:` / `=`: a YAML block scalar indicator (`|`, `>-`) and the line break and
 * indentation before its first line; spaces (or `+`, a space in a form body, before a quote) and
 * an opening quote; or a line break before a quoted value (pretty-printed JSON). At most 27 characters.
 */
export const AFTER_SEP = String.raw`(?:[ \t]{0,3}[|>][-+]?[ \t]{0,3}\r?\n[ \t]{1,16}|(?:\+{1,3}(?=\\?["'])|[ \t]{0,3})${QUOTE_OPEN}?|[ \t]{0,3}\r?\n[ \t]{0,16}(?:\\?["']|""))`;
/** A closing quote after a key name, as QUOTE_OPEN. */
export const KEY_CLOSE = String.raw`(?:\\?["']|"")?`;
/** Separator between a key name and its value: quotes, `=`, `:`, `:=`, `=>` (then AFTER_SEP), or plain spaces (CLI flags). */
export const ASSIGN = String.raw`${KEY_CLOSE}(?:[ \t]{0,3}(?::=|=>|[:=])${AFTER_SEP}|[ \t][ \t]{0,3}${QUOTE_OPEN}?)`;

export interface ContextSpec {
  readonly id: string;
  readonly description: string;
  /** Lower-case literals that must appear in the key name, e.g. `datadog`; they double as prefilter keywords. */
  readonly names: readonly string[];
  /** Value segments (runs and literals) that form the secret. */
  readonly value: readonly Segment[];
  /** Key names generate() writes in front of the value. */
  readonly sampleKeys: readonly string[];
  readonly confidence?: Confidence;
  readonly validate?: (candidate: string) => boolean;
  /** Characters that may not follow the value (default: the last run's class plus _ and -). */
  readonly after?: string;
  readonly minEntropy?: number;
  readonly positives?: readonly PositiveExample[];
  readonly negatives?: readonly NegativeExample[];
}

/**
 * Builds a context-only detector: a vendor name inside the key, an assignment, then a value of a
 * fixed shape; only the value (group `secret`) is masked. Used where the value has no prefix.
 */
export function contextual(spec: ContextSpec): Detector {
  const names = spec.names.map(esc).join('|');
  const after = spec.after ?? `_\\-${lastClass(spec.value)}`;
  const val = spec.value.map(segSource).join('');
  const src = `(?:${names})[A-Za-z0-9_.-]{0,30}${ASSIGN}(?<secret>${val})(?![${after}])`;
  const minEntropy = spec.minEntropy ?? 3;
  const validate = (c: string): boolean =>
    entropy(c) >= minEntropy && !isPlaceholder(c) && !isDocumentedExample(c) && !/example|sample|dummy/i.test(c) && (spec.validate?.(c) ?? true);
  const genValue = (rng: Rng): string => spec.value.map((s) => segGenerate(s, rng)).join('');
  const generate = (rng: Rng): string => {
    const key = spec.sampleKeys[rng.int(spec.sampleKeys.length)] ?? spec.names[0] ?? 'key';
    const forms = [`${key}=${genValue(rng)}`, `"${key}": "${genValue(rng)}"`, `${key}: ${genValue(rng)}`];
    return forms[rng.int(forms.length)] ?? forms[0] ?? '';
  };
  const v1 = genValue(createRng(31));
  const v2 = genValue(createRng(32));
  const k = spec.sampleKeys[0] ?? 'key';
  // Whole match: the longest name, up to 30 name characters, the separator (at most 36), then the value.
  const valueMax = spec.value.reduce((n, s) => n + segMaxLen(s), 0);
  const maxLength = Math.max(...spec.names.map((n) => n.length)) + 30 + 36 + valueMax;
  const minLength = spec.value.reduce((n, s) => n + (typeof s === 'string' ? s.length : s.min), 0);
  return {
    id: spec.id,
    category: 'secret',
    description: spec.description,
    keywords: spec.names,
    pattern: new RegExp(src, 'gid'),
    validate,
    confidence: spec.confidence ?? 'medium',
    maxLength,
    generate,
    positives: [
      { text: `export ${k.toUpperCase()}="${v1}"`, secret: v1, reason: 'shell export of the named key' },
      { text: `{"config":{"${k.toLowerCase()}":"${v2}"}}`, secret: v2, reason: 'JSON field named after the vendor' },
      ...(spec.positives ?? []),
    ],
    negatives: [
      { text: `${k}=${v1.slice(0, Math.max(1, minLength - 3))}`, reason: 'value too short for the format' },
      { text: `${k}: \${${k.toUpperCase()}}`, reason: 'an environment reference, not a value' },
      { text: `token=${v1}`, reason: 'right shape but no vendor name in the key' },
      ...(spec.negatives ?? []),
    ],
  };
}

/** A fixed fake string: `len` characters of `alphabet` from a seeded generator (never a real secret). */
export function fake(seed: number, alphabet: string, len: number): string {
  return createRng(seed).pick(alphabet, len);
}
