// A request body as the rules judge it: the JSON document an upstream could read out of it, or "unknown" when the gateway cannot be sure (pure).
//
// Upstreams are lax in ways a `JSON.parse` of `Content-Type: application/json` bodies is not: GitHub and
// many frameworks parse JSON whatever the Content-Type, Python's json reads a BOM, UTF-16 and NaN,
// middlewares inflate gzip request bodies, Go's encoding/json matches keys in any case and keeps the
// last of duplicate keys while other parsers keep the first. So the body is parsed whatever its type,
// after undoing its Content-Encoding and charset, and a body that may be JSON to someone but is not one
// unambiguous document to us is `unknown`: deny and require-approval body predicates match it.
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';

export interface JudgedBody {
  /** The parsed document; undefined when there is no body, it is not JSON, or it is unknown. */
  readonly parsed: unknown;
  readonly unknown: boolean;
}

const NONE: JudgedBody = { parsed: undefined, unknown: false };
const UNKNOWN: JudgedBody = { parsed: undefined, unknown: true };

function header(v: string | string[] | undefined): string {
  return (Array.isArray(v) ? v.join(',') : (v ?? '')).trim().toLowerCase();
}

/** The body with its Content-Encoding undone (bounded by `max`); undefined when it cannot be. */
function decoded(body: Buffer, encoding: string, max: number): Buffer | undefined {
  let b = body;
  // `gzip, br` was applied in that order: undone from the last.
  for (const e of encoding.split(',').map((x) => x.trim()).filter((x) => x !== '' && x !== 'identity').reverse()) {
    try {
      if (e === 'gzip' || e === 'x-gzip') b = gunzipSync(b, { maxOutputLength: max });
      else if (e === 'deflate') b = inflateSync(b, { maxOutputLength: max });
      else if (e === 'br') b = brotliDecompressSync(b, { maxOutputLength: max });
      else return undefined;
    } catch {
      return undefined;
    }
  }
  return b;
}

const BOMS: readonly [readonly number[], string][] = [
  [[0xef, 0xbb, 0xbf], 'utf-8'],
  [[0xff, 0xfe, 0, 0], 'utf-32le'],
  [[0xff, 0xfe], 'utf-16le'],
  [[0xfe, 0xff], 'utf-16be'],
];

/** The encoding a BOM or the RFC 4627 zero-byte pattern of the first bytes names, and the bytes to skip; undefined when neither does. */
function sniff(b: Buffer): [string, number] | undefined {
  for (const [bom, label] of BOMS) if (bom.every((x, i) => b[i] === x)) return [label, bom.length];
  if (b.length < 2 || (b[0] !== 0 && b[1] !== 0)) return undefined;
  // 00 xx: UTF-16BE; xx 00 xx: UTF-16LE; 00 00 or xx 00 00: UTF-32.
  if (b[0] === 0) return [b[1] === 0 ? 'utf-32be' : 'utf-16be', 0];
  return [b[2] === 0 ? 'utf-32le' : 'utf-16le', 0];
}

/** The text of the body: BOM, RFC 4627 zero-byte patterns, then the charset parameter; undefined when it cannot be decoded. */
function text(b: Buffer, contentType: string): string | undefined {
  const [label, start] = sniff(b) ?? [/;\s*charset\s*=\s*"?([^";\s]+)/.exec(contentType)?.[1] ?? 'utf-8', 0];
  if (/^utf-?32/.test(label)) return undefined;
  try {
    return new TextDecoder(label, { fatal: true, ignoreBOM: true }).decode(b.subarray(start));
  } catch {
    return undefined;
  }
}

/**
 * True when an object of `json` (valid JSON) has two keys that are equal, or equal but for case:
 * parsers differ on which one wins (and Go's reads both as the same field).
 */
export function hasAmbiguousKeys(json: string): boolean {
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < json.length; i++) {
    const ch = json[i];
    if (ch === '{') {
      stack.push(new Set());
      expectKey = true;
    } else if (ch === '[') {
      stack.push(null);
      expectKey = false;
    } else if (ch === '}' || ch === ']') {
      stack.pop();
      expectKey = false;
    } else if (ch === ',') expectKey = stack.at(-1) instanceof Set;
    else if (ch === '"') {
      let j = i + 1;
      while (json[j] !== '"') j += json[j] === '\\' ? 2 : 1;
      const keys = stack.at(-1);
      if (expectKey && keys instanceof Set) {
        const k = (JSON.parse(json.slice(i, j + 1)) as string).toLowerCase();
        if (keys.has(k)) return true;
        keys.add(k);
      }
      expectKey = false;
      i = j;
    }
  }
  return false;
}

/** The body judged: `max` bounds what a compressed body may inflate to. */
export function judgeBody(body: Buffer, headers: { readonly 'content-type'?: string | string[] | undefined; readonly 'content-encoding'?: string | string[] | undefined }, max: number): JudgedBody {
  if (body.length === 0) return NONE;
  const contentType = header(headers['content-type']);
  const media = contentType.split(';')[0]?.trim() ?? '';
  const saysJson = media === 'application/json' || media.endsWith('+json') || media.endsWith('/json');
  const raw = decoded(body, header(headers['content-encoding']), max);
  const t = raw === undefined ? undefined : text(raw, contentType);
  if (t === undefined) return UNKNOWN;
  const trimmed = t.trim();
  if (trimmed === '') return NONE;
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch {
    // Not JSON to us: unknown if it says or looks like JSON (a lax parser may take NaN, comments, trailing commas), otherwise simply not JSON.
    return saysJson || trimmed.startsWith('{') || trimmed.startsWith('[') ? UNKNOWN : NONE;
  }
  if (hasAmbiguousKeys(trimmed)) return UNKNOWN;
  return { parsed, unknown: false };
}
