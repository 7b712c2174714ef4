// The masking engine: createMasker(options) compiles once; mask values, texts, bytes, JSON, base64 and streams.
import type { Detector, MaskResult } from './types.ts';
import { createRequire } from 'node:module';
import { maskBase64With, maskJsonWith } from './json.ts';
import { compile, maskBytes, maskString, unchanged } from './mask.ts';
import type { Compiled, Masker, MaskerOptions } from './options.ts';
import { replacementText } from './replace.ts';
import { createStream } from './stream.ts';

function fieldMask(c: Compiled, value: string, fieldName: string | undefined): MaskResult<string> | undefined {
  if (fieldName === undefined || c.fields.empty || value.length === 0) return undefined;
  const id = c.fields.match(fieldName);
  if (id === undefined) return undefined;
  return { value: replacementText(c.replacementFor(id), id, value, c.hmacKey, false), changed: true, findings: { [id]: 1 } };
}

const BYTEA_HEX = /^\\x(?:[0-9a-fA-F]{2})+$/;

/** PostgreSQL bytea in hex output (`\x4142…`): the bytes are masked and written back as hex. */
function byteaHex(c: Compiled, value: string): MaskResult<string> | undefined {
  if (value.length < 14 || value.charCodeAt(0) !== 0x5c || value.charCodeAt(1) !== 0x78 || !BYTEA_HEX.test(value)) return undefined;
  const r = maskBytes(c, Buffer.from(value.slice(2), 'hex'));
  return r.changed ? { value: '\\x' + r.value.toString('hex'), changed: true, findings: r.findings } : undefined;
}

function guarded<T>(input: T, f: () => MaskResult<T>, fallback: () => MaskResult<T>): MaskResult<T> {
  try {
    return f();
  } catch {
    // An engine bug must not pass a value through unmasked: fall back to masking it whole.
    void input;
    return fallback();
  }
}

/** The compiled default options, shared: a sidecar builds them for config checks, each default connection and the recorder's wall. */
let defaultCompiled: Compiled | undefined;

function isDefault(options: MaskerOptions): boolean {
  for (const k in options) if (options[k as keyof MaskerOptions] !== undefined) return false;
  return true;
}

let builtInTable: readonly Detector[] | undefined;

/**
 * The built-in detector table, loaded on first need: importing it costs ~14 MB of RSS and ~50 ms
 * (bench/sidecar-footprint.ts), so a sidecar with default masking pays it at its first masked value,
 * not at start. Synchronous (require of the ES module: masking calls are synchronous).
 */
function builtInDetectors(): readonly Detector[] {
  builtInTable ??= (createRequire(import.meta.url)(`./detectors/index${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`) as typeof import('./detectors/index.ts')).DETECTORS;
  return builtInTable;
}

/**
 * Compiles `options`; the built-in defaults only once per process (~3.5 MB retained and ~150 ms per
 * build). Sharing is safe: a Compiled holds no per-call state (a masker already serves every
 * session with one; streams keep their own state).
 */
function compiled(options: MaskerOptions, table: readonly Detector[] | undefined): Compiled {
  if (table !== undefined || !isDefault(options)) return compile(options, table ?? builtInDetectors());
  defaultCompiled ??= compile(options, builtInDetectors());
  return defaultCompiled;
}

/** The last text maskText found nothing in, and for which compiled options (one entry: a memo of a pure function). */
const lastClean: { c: Compiled | undefined; text: string } = { c: undefined, text: '' };

/**
 * Compiles the options once (throws an Error naming the bad field) and returns the masker. The
 * default options (nothing to validate) with the built-in table compile on the masker's first use.
 */
export function createMasker(options: MaskerOptions = {}, table?: readonly Detector[]): Masker {
  if (table === undefined && isDefault(options)) return lazyMasker();
  return maskerOf(compiled(options, table));
}

/** The default masker: every call compiles (once per process, shared) before it masks. */
function lazyMasker(): Masker {
  let m: Masker | undefined;
  const get = (): Masker => (m ??= maskerOf(compiled({}, undefined)));
  return {
    get ruleIds(): readonly string[] {
      return get().ruleIds;
    },
    get window(): number {
      return get().window;
    },
    maskText: (text) => get().maskText(text),
    maskValue: (value, fieldName) => get().maskValue(value, fieldName),
    maskBuffer: (buf, fieldName) => get().maskBuffer(buf, fieldName),
    maskJson: (text) => get().maskJson(text),
    maskBase64Value: (b64, fieldName) => get().maskBase64Value(b64, fieldName),
    stream: () => get().stream(),
  };
}

function maskerOf(c: Compiled): Masker {
  const wholeString = (v: string): MaskResult<string> => ({ value: '[MASKED:error]', changed: v.length > 0, findings: { error: 1 } });
  const wholeBuffer = (b: Buffer): MaskResult<Buffer> => ({ value: Buffer.from('[MASKED:error]'), changed: b.length > 0, findings: { error: 1 } });
  const maskText = (text: string): MaskResult<string> => {
    // The same text twice in a row (the recorder's second wall re-masks what a session just masked):
    // masking is a pure function of (compiled options, text), so a clean text stays clean.
    if (text === lastClean.text && c === lastClean.c) return unchanged(text);
    try {
      const r = maskString(c, text);
      if (!r.changed) {
        lastClean.c = c;
        lastClean.text = text;
      }
      return r;
    } catch {
      return wholeString(text);
    }
  };
  return {
    ruleIds: [...new Set(c.rules.map((r) => r.id))],
    window: c.window,
    maskText,
    maskValue: (value, fieldName): MaskResult<string> => {
      try {
        return fieldMask(c, value, fieldName) ?? byteaHex(c, value) ?? maskString(c, value);
      } catch {
        return wholeString(value);
      }
    },
    // The per-cell hot path: no closures allocated per call.
    maskBuffer: (buf, fieldName): MaskResult<Buffer> => {
      try {
        if (fieldName !== undefined && !c.fields.empty && buf.length > 0 && c.fields.match(fieldName) !== undefined) {
          const r = fieldMask(c, buf.toString('utf8'), fieldName)!;
          return { value: Buffer.from(r.value, 'utf8'), changed: true, findings: r.findings };
        }
        if (buf.length > 2 && buf[0] === 0x5c && buf[1] === 0x78) {
          const r = byteaHex(c, buf.toString('latin1'));
          if (r !== undefined) return { value: Buffer.from(r.value, 'latin1'), changed: true, findings: r.findings };
        }
        return maskBytes(c, buf);
      } catch {
        return wholeBuffer(buf);
      }
    },
    maskJson: (text) => guarded(text, () => maskJsonWith(c, text), () => maskText(text)),
    maskBase64Value: (b64, fieldName) => guarded(b64, () => maskBase64With(c, b64, fieldName), () => wholeString(b64)),
    stream: () => createStream(c),
  };
}
