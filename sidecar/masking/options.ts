// Masker options as a MaskingPolicy gives them, validated and compiled once (errors name the bad field).
import { createRequire } from 'node:module';
import type { RE2 } from 're2-wasm';
import type { Detector, DetectorCategory, FindingCounts, MaskResult, Replacement } from './types.ts';
import { compileFieldRules, type FieldMatcher, type FieldRule } from './columns.ts';
import { compilePrefilter, type Prefilter } from './prefilter.ts';
import { maxReadLength, minMatchLength } from './regex-length.ts';
import { shapeBitOf } from './shapes.ts';

/** A user pattern from a MaskingPolicy (RE2 syntax: no backreferences, no lookaround). */
export interface CustomPattern {
  readonly id: string;
  readonly pattern: string;
  /** Case-insensitive match (RE2 `i` flag). */
  readonly ignoreCase?: boolean;
  /** Optional prefilter: the pattern runs only near one of these literals. */
  readonly keywords?: readonly string[];
  /** Upper bound on one match, for the streaming window. Default 256. */
  readonly maxLength?: number;
  readonly category?: DetectorCategory;
}

/** Literal words masked wherever they occur (case-insensitive), e.g. internal host or project names. */
export interface KeywordList {
  readonly id: string;
  readonly words: readonly string[];
}

export interface MaskerOptions {
  /**
   * Which built-in detectors run: ids, or the categories `secret` / `pii`, or `default` (all enabled
   * by default) or `all`. Default `['default']`.
   */
  readonly detectors?: readonly string[];
  /** Ids or categories removed after `detectors` is applied. */
  readonly disable?: readonly string[];
  /** Replacement for every rule without its own. Default placeholder `[MASKED:<id>]`. */
  readonly replacement?: Replacement;
  /** Replacement per rule id (detector id, custom pattern id, keyword list id, field rule id). */
  readonly replacements?: Readonly<Record<string, Replacement>>;
  /** HMAC-SHA256 key for `hmac` replacements (bytes, e.g. read from a Secret). Required if any is used. */
  readonly hmacKey?: Uint8Array;
  readonly customPatterns?: readonly CustomPattern[];
  readonly keywordLists?: readonly KeywordList[];
  /** Column / JSON-field rules: globs on names (case-insensitive); a matching field is masked whole. */
  readonly fieldRules?: readonly FieldRule[];
  /** Decode JSON escapes and %XX before scanning text (default true). */
  readonly decodeEscapes?: boolean;
  /** In maskJson, scan the plaintext of string values that are base64 (default true). */
  readonly decodeBase64InJson?: boolean;
  /** In text, bytes and streams, decode base64 runs and mask those whose plaintext holds a secret (default true). */
  readonly decodeBase64InText?: boolean;
  /** Cap on the streaming carry-over window in bytes (default 4096, at least 256). */
  readonly maxWindow?: number;
  /** The detector table (default: the built-in DETECTORS); tests pass their own. */
  readonly detectorTable?: readonly Detector[];
}

/** A compiled matcher over one text: a RegExp (V8) or an RE2 (user patterns). */
export interface RuleRegex {
  lastIndex: number;
  exec(input: string): (RegExpExecArray & { indices?: RegExpIndicesArray }) | (ReturnType<RE2['exec']>) | null;
}

/** One scanning rule: a built-in detector or a user pattern. */
export interface Rule {
  readonly index: number;
  readonly id: string;
  readonly category: DetectorCategory;
  readonly re: RuleRegex;
  /** True for V8 RegExps compiled with the `d` flag (exact `secret` group offsets). */
  readonly indices: boolean;
  readonly validate: ((candidate: string) => boolean) | undefined;
  /** Keyword indices in the prefilter; empty = runs on every text that passes `minDigits`. */
  readonly keywords: readonly number[];
  /** For keywordless rules: skip texts with fewer digits (derived from the rule's own examples). */
  readonly minDigits: number;
  /** For keywordless rules: skip texts shorter than this (half the shortest example secret). */
  readonly minTextLength: number;
  /** No match is shorter (computed from the regex source): shorter texts are not scanned by this rule. */
  readonly minMatch?: number;
  /** Most characters an attempt of its regex reads past its start (Infinity or absent: unbounded); lets a stream resume past text that can begin no match. */
  readonly readMax?: number;
  /** For keywordless rules: its digit-shape gate bit (`shapes.ts`); 0 = no gate, always runs past `minDigits`. */
  readonly shape?: number;
  /** Matches start where the keyword hit starts (base64 runs): scan windows are that position only. */
  readonly startsAtKeyword?: boolean;
  /**
   * For a candidate cut short by the end of the data seen so far (stream): false rejects it. Without
   * it such candidates are masked unvalidated (a checksum cannot be checked on half a token).
   */
  readonly validatePartial?: (candidate: string) => boolean;
  /**
   * Replacement text computed from the region itself (a bytea `\\x…` hex run is written back as the
   * hex of its masked bytes, as a whole bytea value is); undefined: the rule's usual replacement.
   */
  readonly rewrite?: (region: string) => string | undefined;
  readonly maxLength: number;
}

export interface CompiledReplacement {
  readonly replacement: Replacement;
}

export interface Compiled {
  readonly rules: readonly Rule[];
  readonly prefilter: Prefilter;
  /** For each prefilter keyword: the rules it enables (-1 entries never). */
  readonly rulesByKeyword: readonly (readonly number[])[];
  /** For each prefilter keyword: the keyword list id if it is a literal to mask, else undefined. */
  readonly literalOf: readonly (string | undefined)[];
  readonly keywordlessRules: readonly number[];
  /** Fewest digits and shortest text any keywordless rule runs on (a fast reject before the per-rule gates). */
  readonly keywordlessMinDigits: number;
  readonly keywordlessMinLength: number;
  /** Keyword list ids; a literal hit of list j is a span with rule -1 - j. */
  readonly literalIds: readonly string[];
  readonly maxKeywordLength: number;
  /** For each prefilter keyword: 1 when it is a distinctive token prefix a view splits off a token glued before it (decode.ts gluePoints). */
  readonly glue: Uint8Array;
  readonly fields: FieldMatcher;
  readonly replacementFor: (id: string) => Replacement;
  readonly hmacKey: Uint8Array | undefined;
  readonly decodeEscapes: boolean;
  readonly decodeBase64InJson: boolean;
  /** Longest match the stream guarantees to see whole. */
  readonly window: number;
  /** The configured cap on the window. */
  readonly cap: number;
}

export interface StreamMasker {
  /** Masked output that is final so far (possibly empty: bytes held back for the window). */
  push(chunk: Buffer): Buffer;
  /** Flushes the rest; the stream is unusable afterwards. */
  end(): Buffer;
  /** Counts so far, by rule id. */
  findings(): FindingCounts;
}

export interface Masker {
  maskValue(value: string, fieldName?: string): MaskResult<string>;
  maskText(text: string): MaskResult<string>;
  maskBuffer(buf: Buffer, fieldName?: string): MaskResult<Buffer>;
  maskJson(text: string): MaskResult<string>;
  /** Decodes a base64 value (Kubernetes Secret `data`, docker `auth`), masks the plaintext, re-encodes. */
  maskBase64Value(b64: string, fieldName?: string): MaskResult<string>;
  stream(): StreamMasker;
  /** Ids of the rules that run (detectors and custom patterns), for status and docs. */
  readonly ruleIds: readonly string[];
  readonly window: number;
}

export const DEFAULT_MAX_WINDOW = 4096;
export const MIN_WINDOW = 256;
export const DEFAULT_CUSTOM_MAX_LENGTH = 256;
const ID_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/i;

function fail(field: string, what: string): never {
  throw new Error(`masking options: ${field}: ${what}`);
}

function selectDetectors(table: readonly Detector[], opts: MaskerOptions): Detector[] {
  const ids = new Set(table.map((d) => d.id));
  const matches = (d: Detector, sel: string): boolean =>
    sel === 'all' || sel === d.id || sel === d.category || (sel === 'default' && d.enabledByDefault !== false);
  const checkSel = (field: string, sel: string): void => {
    if (!(sel === 'all' || sel === 'default' || sel === 'secret' || sel === 'pii' || ids.has(sel))) {
      fail(field, `unknown detector or category ${JSON.stringify(sel)}; use a detector id, "secret", "pii", "default" or "all"`);
    }
  };
  const include = opts.detectors ?? ['default'];
  include.forEach((s, i) => checkSel(`detectors[${i}]`, s));
  const exclude = opts.disable ?? [];
  exclude.forEach((s, i) => checkSel(`disable[${i}]`, s));
  return table.filter((d) => include.some((s) => matches(d, s)) && !exclude.some((s) => matches(d, s)));
}

function checkPartial(field: string, r: Extract<Replacement, { kind: 'partial' }>): void {
  if (!Number.isInteger(r.keepLast) || r.keepLast < 0 || r.keepLast > 4) fail(field, 'keepLast must be an integer from 0 to 4 (more would show the secret)');
  if (r.maskChar !== undefined && [...r.maskChar].length !== 1) fail(field, 'maskChar must be one character');
}

function checkHmac(field: string, r: Extract<Replacement, { kind: 'hmac' }>, hasKey: boolean): void {
  if (!hasKey) fail(field, 'hmac replacement needs hmacKey (the key bytes from a Secret)');
  if (r.length !== undefined && (!Number.isInteger(r.length) || r.length < 8 || r.length > 64)) fail(field, 'length must be an integer from 8 to 64');
}

function checkReplacement(field: string, r: Replacement, hasKey: boolean): void {
  if (r.kind === 'placeholder') {
    if (r.format !== undefined && typeof r.format !== 'string') fail(field, 'format must be a string');
  } else if (r.kind === 'partial') checkPartial(field, r);
  else if (r.kind === 'hmac') checkHmac(field, r, hasKey);
  else fail(field, `unknown replacement kind ${JSON.stringify((r as { kind: unknown }).kind)}; use placeholder, partial or hmac`);
}

/** Digits in the rule's own examples: a keywordless rule is skipped on texts with fewer than half of the fewest. */
function deriveMinDigits(d: Detector): number {
  const secrets = d.positives.map((p) => p.secret);
  if (secrets.length === 0) return 0;
  let min = Infinity;
  for (const s of secrets) {
    let n = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 48 && c <= 57) n++;
    }
    min = Math.min(min, n);
  }
  return Math.floor(min / 2);
}

/** Half the shortest example secret: a keywordless rule skips shorter texts and rejects shorter matches. */
function deriveMinLength(d: Detector): number {
  if (d.positives.length === 0) return 0;
  return Math.floor(Math.min(...d.positives.map((p) => p.secret.length)) / 2);
}

function withIndicesFlag(re: RegExp): RegExp {
  const flags = re.flags.includes('g') ? re.flags : re.flags + 'g';
  return new RegExp(re.source, flags.includes('d') ? flags : flags + 'd');
}

// re2-wasm holds ~18 MB of WASM memory once loaded: required only when a policy has a custom pattern.
let re2Ctor: typeof RE2 | undefined;
function loadRE2(): typeof RE2 {
  re2Ctor ??= (createRequire(import.meta.url)('re2-wasm') as typeof import('re2-wasm')).RE2;
  return re2Ctor;
}

/**
 * Compiled RE2 objects by flags and source, shared by every masker in the process. re2-wasm keeps each
 * object's memory in a fixed WASM heap that the JS garbage collector never frees, so compiling the same
 * pattern on every hot reload (sidecar) or every reconcile (operator) would fill it. Sharing is safe:
 * a scan sets lastIndex before each synchronous exec. The cap bounds the heap a flood of distinct
 * patterns could take; past it a pattern is refused with a clear error rather than leaking.
 */
const RE2_CACHE = new Map<string, RE2>();
export const MAX_DISTINCT_CUSTOM_PATTERNS = 2048;

function compileCustom(p: CustomPattern, i: number): RE2 {
  const field = `customPatterns[${i}] (${JSON.stringify(p.id)})`;
  if (typeof p.pattern !== 'string' || p.pattern.length === 0) fail(field, 'pattern must be a non-empty string');
  const flags = p.ignoreCase === true ? 'giu' : 'gu';
  const key = `${flags}\u0000${p.pattern}`;
  const cached = RE2_CACHE.get(key);
  if (cached) return cached;
  if (RE2_CACHE.size >= MAX_DISTINCT_CUSTOM_PATTERNS) {
    fail(field, `more than ${MAX_DISTINCT_CUSTOM_PATTERNS} distinct custom patterns were compiled in this process; restart it, or reuse patterns`);
  }
  try {
    const Re2 = loadRE2();
    const re = new Re2(p.pattern, flags);
    RE2_CACHE.set(key, re);
    return re;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    return fail(field, `pattern ${JSON.stringify(p.pattern)} is not valid RE2 (no backreferences or lookaround; linear-time syntax only): ${msg}`);
  }
}

interface KeywordTable {
  readonly words: string[];
  readonly index: Map<string, number>;
  readonly rulesByKeyword: number[][];
  readonly literalOf: (string | undefined)[];
  readonly glue: number[];
}

// A distinctive token prefix: a letter, 4+ characters, a separator (ghp_, xoxb-, sk_live_, glpat-).
const GLUE_PREFIX = /^(?=.{4})[a-z][a-z0-9]*[_.-][a-z0-9_.-]*$/;
// Keywords of that shape that are also ordinary words, name parts or hosts, not where a token starts.
const GLUE_EXCLUDED = new Set(['api-', 'pat.', 'sat.', 'secret_', 'private-lines', 'v1.0-', 'hooks.slack.com', 'webhook.office.com', 'hooks.zapier.com']);

/** Keywords a detector's whole match starts with (no `secret` group: the match is the token). */
function markGluePrefixes(t: KeywordTable, d: Detector, keywords: readonly number[]): void {
  if (d.pattern.source.includes('(?<secret>')) return;
  for (const k of keywords) {
    const w = t.words[k]!;
    if (GLUE_PREFIX.test(w) && !GLUE_EXCLUDED.has(w)) t.glue[k] = 1;
  }
}

function keywordIndex(t: KeywordTable, word: string): number {
  const w = word.toLowerCase();
  let k = t.index.get(w);
  if (k === undefined) {
    k = t.words.length;
    t.words.push(w);
    t.index.set(w, k);
    t.rulesByKeyword.push([]);
    t.literalOf.push(undefined);
    t.glue.push(0);
  }
  return k;
}

function checkId(field: string, id: string, seen: Set<string>): void {
  if (typeof id !== 'string' || !ID_RE.test(id)) fail(field, `id ${JSON.stringify(id)} must be 1-63 letters, digits, '.', '_' or '-'`);
  if (seen.has(id)) fail(field, `id ${JSON.stringify(id)} is used twice`);
  seen.add(id);
}

function buildRules(opts: MaskerOptions, table: readonly Detector[], kt: KeywordTable, seen: Set<string>): Rule[] {
  const rules: Rule[] = [];
  for (const d of selectDetectors(table, opts)) {
    const index = rules.length;
    const keywords = d.keywords.map((w) => keywordIndex(kt, w));
    keywords.forEach((k) => kt.rulesByKeyword[k]!.push(index));
    markGluePrefixes(kt, d, keywords);
    seen.add(d.id);
    rules.push({
      index,
      id: d.id,
      category: d.category,
      re: withIndicesFlag(d.pattern),
      indices: true,
      validate: d.validate,
      keywords,
      minDigits: keywords.length === 0 ? deriveMinDigits(d) : 0,
      minTextLength: keywords.length === 0 ? deriveMinLength(d) : 0,
      minMatch: minMatchLength(d.pattern.source),
      readMax: maxReadLength(d.pattern.source),
      shape: keywords.length === 0 ? shapeBitOf(d.id, d.pattern) : 0,
      maxLength: d.maxLength,
    });
  }
  (opts.customPatterns ?? []).forEach((p, i) => {
    const field = `customPatterns[${i}]`;
    checkId(field, p.id, seen);
    const re = compileCustom(p, i);
    const maxLength = p.maxLength ?? DEFAULT_CUSTOM_MAX_LENGTH;
    if (!Number.isInteger(maxLength) || maxLength < 1 || maxLength > 65536) fail(`${field}.maxLength`, 'must be an integer from 1 to 65536');
    const index = rules.length;
    const keywords = (p.keywords ?? []).map((w, j) => {
      if (typeof w !== 'string' || w.length === 0) fail(`${field}.keywords[${j}]`, 'must be a non-empty string');
      return keywordIndex(kt, w);
    });
    keywords.forEach((k) => kt.rulesByKeyword[k]!.push(index));
    rules.push({ index, id: p.id, category: p.category ?? 'secret', re, indices: false, validate: undefined, keywords, minDigits: 0, minTextLength: 0, maxLength });
  });
  return rules;
}

/** The id a span's rule number stands for (detectors and patterns >= 0, keyword lists < 0). */
export function ruleId(c: Compiled, rule: number): string {
  return rule >= 0 ? (c.rules[rule]?.id ?? 'unknown') : (c.literalIds[-1 - rule] ?? 'keyword');
}

function addKeywordLists(opts: MaskerOptions, kt: KeywordTable, seen: Set<string>): void {
  (opts.keywordLists ?? []).forEach((l, i) => {
    checkId(`keywordLists[${i}]`, l.id, seen);
    if (!Array.isArray(l.words) || l.words.length === 0) fail(`keywordLists[${i}].words`, 'must be a non-empty list of strings');
    l.words.forEach((w, j) => {
      if (typeof w !== 'string' || w.length < 2) fail(`keywordLists[${i}].words[${j}]`, 'must be a string of at least 2 characters');
      kt.literalOf[keywordIndex(kt, w)] = l.id;
    });
  });
}

/** Rule ids the engine itself produces (base64 runs in text, docker auth passwords). */
export const ENGINE_RULE_IDS = ['base64-encoded-secret', 'docker-auth-password'] as const;

function replacementTable(opts: MaskerOptions, seen: ReadonlySet<string>): (id: string) => Replacement {
  const hasKey = opts.hmacKey !== undefined;
  const base: Replacement = opts.replacement ?? { kind: 'placeholder' };
  checkReplacement('replacement', base, hasKey);
  const per = new Map<string, Replacement>();
  for (const [id, r] of Object.entries(opts.replacements ?? {})) {
    if (!seen.has(id) && !(ENGINE_RULE_IDS as readonly string[]).includes(id)) {
      fail(`replacements.${id}`, `no rule has id ${JSON.stringify(id)}; use the id of an enabled detector, custom pattern, keyword list or field rule`);
    }
    checkReplacement(`replacements.${id}`, r, hasKey);
    per.set(id, r);
  }
  return (id) => per.get(id) ?? base;
}

function windowCap(opts: MaskerOptions): number {
  const cap = opts.maxWindow ?? DEFAULT_MAX_WINDOW;
  if (!Number.isInteger(cap) || cap < MIN_WINDOW || cap > 1 << 20) fail('maxWindow', `must be an integer from ${MIN_WINDOW} to 1048576`);
  return cap;
}

/** Validates and compiles options; throws an Error naming the field on anything wrong. */
export function compileOptions(opts: MaskerOptions, defaultTable: readonly Detector[]): Compiled {
  const table = opts.detectorTable ?? defaultTable;
  const hmacKey = opts.hmacKey;
  if (hmacKey !== undefined && (!(hmacKey instanceof Uint8Array) || hmacKey.length < 16)) fail('hmacKey', 'must be bytes (Uint8Array/Buffer) of at least 16 bytes');
  const kt: KeywordTable = { words: [], index: new Map(), rulesByKeyword: [], literalOf: [], glue: [] };
  const seen = new Set<string>();
  const rules = buildRules(opts, table, kt, seen);
  addKeywordLists(opts, kt, seen);
  const fields = compileFieldRules(opts.fieldRules ?? [], seen);
  const replacementFor = replacementTable(opts, seen);
  const cap = windowCap(opts);
  const longest = Math.max(64, ...rules.map((r) => r.maxLength), ...kt.words.map((w) => w.length));
  return {
    rules,
    prefilter: compilePrefilter(kt.words),
    rulesByKeyword: kt.rulesByKeyword,
    literalOf: kt.literalOf,
    keywordlessRules: rules.filter((r) => r.keywords.length === 0).map((r) => r.index),
    keywordlessMinDigits: Math.min(Infinity, ...rules.filter((r) => r.keywords.length === 0).map((r) => r.minDigits)),
    keywordlessMinLength: Math.min(Infinity, ...rules.filter((r) => r.keywords.length === 0).map((r) => Math.max(r.minTextLength, r.minMatch ?? 0))),
    literalIds: (opts.keywordLists ?? []).map((l) => l.id),
    maxKeywordLength: Math.max(1, ...kt.words.map((w) => w.length)),
    glue: Uint8Array.from(kt.glue),
    fields,
    replacementFor,
    hmacKey,
    decodeEscapes: opts.decodeEscapes ?? true,
    decodeBase64InJson: opts.decodeBase64InJson ?? true,
    window: Math.min(cap, longest),
    cap,
  };
}
