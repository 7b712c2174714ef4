// How each column's cells are masked, by type OID and format: text-like values as text, bytea as bytes, numbers by their decimal text, binary arrays element by element, anything else fail-closed.
//
// Wire facts (PostgreSQL's *send/*recv functions): the binary form of text, varchar, bpchar, name,
// "char", unknown, json and xml is the text itself; bytea's is the raw bytes; jsonb's is a version
// byte (1) then the JSON text; int2/4/8, float4/8 are big-endian; numeric is ndigits, weight, sign,
// dscale (int16 each) then base-10000 digits; an array is ndim, flags, element OID, ndim × (size,
// lower bound), then each element as int32 length (-1 NULL) and bytes. In text format bytea is
// `\x` + hex (bytea_output=hex, the default) — a secret stored in bytea is invisible until decoded.

/** Binary form = the text (pg_type.dat: text, varchar, bpchar, name, char, unknown, json, xml). */
const TEXT_OIDS: ReadonlySet<number> = new Set([25, 1043, 1042, 19, 18, 705, 114, 142]);
export const BYTEA_OID = 17;
export const JSONB_OID = 3802;
/** Numbers whose decimal text could be PII (a card or account number): decoded and scanned; a finding cannot be re-encoded. */
const INT_OIDS: ReadonlySet<number> = new Set([21, 23, 20, 26]);
const FLOAT_OIDS: ReadonlySet<number> = new Set([700, 701]);
const NUMERIC_OID = 1700;
/**
 * Fixed-width binary values no detector pattern fits (bool, dates and times, uuid, network
 * addresses, geometric points, tid/xid/cid, money): passed without a scan; a column rule still applies.
 */
const FIXED_WIDTHS: ReadonlyMap<number, readonly number[]> = new Map([
  [16, [1]], [1082, [4]], [1083, [8]], [1114, [8]], [1184, [8]], [1186, [16]], [1266, [12]], [2950, [16]],
  // inet/cidr: family, bits, is_cidr, length, then 4 (IPv4) or 16 (IPv6) address bytes.
  [869, [8, 20]], [650, [8, 20]], [829, [6]], [774, [8]], [600, [16]], [27, [6]], [28, [4]], [29, [4]], [790, [8]], [3220, [8]], [5069, [8]],
]);

/** A binary fixed-width cell of exactly its type's size; any other length is scanned like an unknown type (a second wall). */
export function fitsFixedWidth(typeOid: number, length: number): boolean {
  return FIXED_WIDTHS.get(typeOid)?.includes(length) ?? false;
}
/** Array type OID → element type OID, for the element types masked element by element. */
const ARRAY_ELEMENTS: ReadonlyMap<number, number> = new Map([
  [1009, 25], [1015, 1043], [1014, 1042], [1003, 19], [1002, 18], [199, 114], [143, 142], [3807, 3802], [1001, 17],
  [1005, 21], [1007, 23], [1016, 20], [1028, 26], [1021, 700], [1022, 701], [1231, 1700],
]);

/**
 * - `text`: the cell's bytes are text (any type in text format; text-like types in binary).
 * - `bytea-hex`: bytea in text format: `\x` + hex, decoded before the scan, re-encoded after.
 * - `bytea`: bytea in binary: the raw bytes, masked as bytes (any replacement is a valid bytea).
 * - `jsonb`: binary jsonb: a version byte, then text.
 * - `number`: binary int/float/numeric: decoded to decimal text and scanned; a finding → NULL.
 * - `fixed`: binary fixed-width values that cannot hold a pattern: not scanned.
 * - `array`: a binary array of a maskable element type: element by element.
 * - `opaque`: binary of any other type (composites, ranges, extension types): scanned as bytes; a finding → NULL.
 */
export type CellKind = 'text' | 'bytea-hex' | 'bytea' | 'jsonb' | 'number' | 'fixed' | 'array' | 'opaque';

export function cellKind(typeOid: number, format: number): CellKind {
  if (format === 0) return typeOid === BYTEA_OID ? 'bytea-hex' : 'text';
  if (TEXT_OIDS.has(typeOid)) return 'text';
  if (typeOid === BYTEA_OID) return 'bytea';
  if (typeOid === JSONB_OID) return 'jsonb';
  if (INT_OIDS.has(typeOid) || FLOAT_OIDS.has(typeOid) || typeOid === NUMERIC_OID) return 'number';
  if (FIXED_WIDTHS.has(typeOid)) return 'fixed';
  if (ARRAY_ELEMENTS.has(typeOid)) return 'array';
  return 'opaque';
}

/** The element type of a binary array OID we mask element by element. */
export function arrayElementOid(typeOid: number): number | undefined {
  return ARRAY_ELEMENTS.get(typeOid);
}

/** Decimal text of a binary number cell, or undefined when the bytes do not fit the type (then it is treated as opaque). */
export function numberText(typeOid: number, b: Buffer): string | undefined {
  switch (typeOid) {
    case 21:
      return b.length === 2 ? String(b.readInt16BE(0)) : undefined;
    case 23:
      return b.length === 4 ? String(b.readInt32BE(0)) : undefined;
    case 26:
      return b.length === 4 ? String(b.readUInt32BE(0)) : undefined;
    case 20:
      return b.length === 8 ? b.readBigInt64BE(0).toString() : undefined;
    case 700:
      return b.length === 4 ? String(b.readFloatBE(0)) : undefined;
    case 701:
      return b.length === 8 ? String(b.readDoubleBE(0)) : undefined;
    case NUMERIC_OID:
      return numericText(b);
    default:
      return undefined;
  }
}

const NUMERIC_SPECIAL: ReadonlyMap<number, string> = new Map([[0xc000, 'NaN'], [0xd000, 'Infinity'], [0xf000, '-Infinity']]);

/** numeric_send: the digits as text (sign and point kept; enough for a detector to see the digit run). */
function numericText(b: Buffer): string | undefined {
  if (b.length < 8) return undefined;
  const ndigits = b.readInt16BE(0);
  const weight = b.readInt16BE(2);
  const sign = b.readUInt16BE(4);
  if (ndigits < 0 || b.length !== 8 + ndigits * 2) return undefined;
  const special = NUMERIC_SPECIAL.get(sign);
  if (special !== undefined) return special;
  const groups: string[] = [];
  for (let i = 0; i < ndigits; i++) {
    const d = b.readUInt16BE(8 + i * 2);
    if (d > 9999) return undefined;
    groups.push(String(d).padStart(4, '0'));
  }
  // Group i is worth 10000^(weight - i): groups 0..weight are the integer part.
  const intGroups = groups.slice(0, Math.max(0, weight + 1)).concat(Array<string>(Math.max(0, weight + 1 - ndigits)).fill('0000'));
  const frac = '0000'.repeat(Math.max(0, -weight - 1)) + groups.slice(Math.max(0, weight + 1)).join('');
  const int = intGroups.join('').replace(/^0+(?=\d)/, '') || '0';
  return `${sign === 0x4000 ? '-' : ''}${int}${frac === '' ? '' : `.${frac}`}`;
}

/** `\x4142…` (bytea_output=hex) → bytes; undefined when it is not that form (e.g. bytea_output=escape: then it is scanned as text). */
export function decodeByteaHex(cell: Buffer): Buffer | undefined {
  if (cell.length < 2 || cell[0] !== 0x5c || cell[1] !== 0x78 || cell.length % 2 !== 0) return undefined;
  const hex = cell.toString('latin1', 2);
  const out = Buffer.from(hex, 'hex');
  return out.length * 2 === hex.length ? out : undefined;
}

export function encodeByteaHex(bytes: Buffer): Buffer {
  return Buffer.from(`\\x${bytes.toString('hex')}`, 'latin1');
}

const BACKSLASH_X = Buffer.from('\\x', 'latin1');
/** `\x` then at least 6 bytes of hex (the scrubber's shortest secret); shorter runs hold no pattern. */
const HEX_RUN = /\\x((?:[0-9a-fA-F]{2}){6,})/g;

/**
 * bytea nested in text: an array (`{"\\x6768…"}`), a record (`("\\x6768…")`), a COPY text or csv
 * field (`\\x6768…`, `\x6768…`) carries bytea as hex, where no pattern can see it. Each `\x` hex run
 * is decoded and `scan`ned; a run whose bytes changed is replaced by the hex of the masked bytes (still
 * a valid bytea literal). The same Buffer when nothing changed (one indexOf when there is no `\x`).
 */
export function maskHexRuns(b: Buffer, scan: (bytes: Buffer) => Buffer): Buffer {
  if (b.indexOf(BACKSLASH_X) < 0) return b;
  let changed = false;
  const out = b.toString('latin1').replace(HEX_RUN, (all: string, hex: string) => {
    const bytes = Buffer.from(hex, 'hex');
    const m = scan(bytes);
    if (m === bytes) return all;
    changed = true;
    return `\\x${m.toString('hex')}`;
  });
  return changed ? Buffer.from(out, 'latin1') : b;
}

/** A binary array split into its header and elements (null = NULL element); undefined when malformed. */
export interface BinaryArray {
  readonly header: Buffer;
  readonly elementOid: number;
  readonly elements: (Buffer | null)[];
}

export function decodeBinaryArray(b: Buffer): BinaryArray | undefined {
  if (b.length < 12) return undefined;
  const ndim = b.readInt32BE(0);
  if (ndim < 0 || ndim > 6) return undefined;
  const elementOid = b.readUInt32BE(8);
  let pos = 12;
  let count = ndim === 0 ? 0 : 1;
  for (let d = 0; d < ndim; d++) {
    if (pos + 8 > b.length) return undefined;
    const size = b.readInt32BE(pos);
    if (size < 0) return undefined;
    count *= size;
    pos += 8;
  }
  const header = b.subarray(0, pos);
  const elements: (Buffer | null)[] = [];
  for (let i = 0; i < count; i++) {
    if (pos + 4 > b.length) return undefined;
    const len = b.readInt32BE(pos);
    pos += 4;
    if (len === -1) {
      elements.push(null);
      continue;
    }
    if (len < 0 || pos + len > b.length) return undefined;
    elements.push(b.subarray(pos, pos + len));
    pos += len;
  }
  return pos === b.length ? { header, elementOid, elements } : undefined;
}

export function encodeBinaryArray(a: BinaryArray): Buffer {
  let size = a.header.length;
  for (const e of a.elements) size += 4 + (e === null ? 0 : e.length);
  const out = Buffer.allocUnsafe(size);
  a.header.copy(out, 0);
  let pos = a.header.length;
  for (const e of a.elements) {
    out.writeInt32BE(e === null ? -1 : e.length, pos);
    pos += 4;
    if (e !== null) pos += e.copy(out, pos);
  }
  // A NULL introduced by masking must be visible in the header's has-null flag (array_recv checks it).
  if (a.elements.includes(null)) out.writeInt32BE(1, 4);
  return out;
}
