// Digit-shape gates for the keywordless detectors: one pass over bytes or text proves a regex cannot match anywhere.
//
// Each gate is a necessary condition of its detector's regex (lookarounds and exact lengths are
// dropped, so a gate may pass where the regex then finds nothing, never the reverse). A gate
// applies only to the exact regex source it was written for: an edited pattern loses its gate
// (slower, never less exact) and shapes.test.ts fails until the gate is brought up to date.

export const SHAPE_CARD = 1;
export const SHAPE_PHONE = 2;
export const SHAPE_SSN = 4;
export const SHAPE_IBAN = 8;
export const SHAPE_DISCORD = 16;
/** Every gate passes (what a text gets when its shapes were not computed). */
export const SHAPE_ALL = 31;
/**
 * Longest text the engine computes shapes for. The pass costs a few ns a character; V8 runs the
 * gated regexes over a long clean text faster than that (measured: 4 MiB of logs 45 -> 33 MiB/s
 * with shapes on), while on short values it saves the string decode and four regex calls.
 */
export const SHAPE_MAX_TEXT = 256;

/** The regex sources the gates were derived from, by detector id. */
export const GATED_SOURCES: Readonly<Record<string, { readonly source: string; readonly bit: number }>> = {
  'payment-card': { bit: SHAPE_CARD, source: String.raw`[2-6](?<![0-9A-Za-z_.-][2-6])[0-9]{3}(?:[ -]?[0-9]){10,15}(?![0-9_]|[A-Za-z](?![A-Za-z])|[A-Za-z]{2,24}[0-9_]|[-.][0-9A-Za-z])` },
  'phone-number': {
    bit: SHAPE_PHONE,
    source: String.raw`(?<![A-Za-z0-9+_.-])(?:\+[1-9](?:[ .-]?[0-9]|[ .-]?\([0-9]{1,4}\)){7,16}|\(?[2-9][0-9]{2}\)?[ .-][2-9][0-9]{2}[ .-][0-9]{4}|0[1-9](?:[ .][0-9]{2}){4}|0[1-9][0-9]{1,4}[ -][0-9]{3,4}[ -]?[0-9]{3,4})(?![0-9]|[.-][0-9])`,
  },
  'us-ssn': { bit: SHAPE_SSN, source: String.raw`(?<![0-9A-Za-z-])[0-8][0-9]{2}([- ])[0-9]{2}\1[0-9]{4}(?![0-9A-Za-z]|-[0-9])` },
  iban: {
    bit: SHAPE_IBAN,
    source: String.raw`(?<![A-Za-z0-9])(?:(?:NO)[0-9]{2}(?: ?[A-Z0-9]{4}){2}(?: ?[A-Z0-9]{3})|(?:BE)[0-9]{2}(?: ?[A-Z0-9]{4}){3}|(?:DK|FI|FO|GL|NL)[0-9]{2}(?: ?[A-Z0-9]{4}){3}(?: ?[A-Z0-9]{2})|(?:MK|SI)[0-9]{2}(?: ?[A-Z0-9]{4}){3}(?: ?[A-Z0-9]{3})|(?:AT|BA|EE|KZ|LT|LU|XK)[0-9]{2}(?: ?[A-Z0-9]{4}){4}|(?:CH|HR|LI|LV)[0-9]{2}(?: ?[A-Z0-9]{4}){4}(?: ?[A-Z0-9]{1})|(?:BG|BH|CR|DE|GB|GE|IE|ME|RS|VA)[0-9]{2}(?: ?[A-Z0-9]{4}){4}(?: ?[A-Z0-9]{2})|(?:AE|GI|IL|IQ|TL)[0-9]{2}(?: ?[A-Z0-9]{4}){4}(?: ?[A-Z0-9]{3})|(?:AD|CZ|ES|MD|PK|RO|SA|SE|SK|TN|VG)[0-9]{2}(?: ?[A-Z0-9]{4}){5}|(?:PT|ST)[0-9]{2}(?: ?[A-Z0-9]{4}){5}(?: ?[A-Z0-9]{1})|(?:IS|TR)[0-9]{2}(?: ?[A-Z0-9]{4}){5}(?: ?[A-Z0-9]{2})|(?:FR|GR|IT|MC|MR|SM)[0-9]{2}(?: ?[A-Z0-9]{4}){5}(?: ?[A-Z0-9]{3})|(?:AL|AZ|BY|CY|DO|GT|HU|LB|PL|SV)[0-9]{2}(?: ?[A-Z0-9]{4}){6}|(?:BR|EG|PS|QA|UA)[0-9]{2}(?: ?[A-Z0-9]{4}){6}(?: ?[A-Z0-9]{1})|(?:JO|KW|MU)[0-9]{2}(?: ?[A-Z0-9]{4}){6}(?: ?[A-Z0-9]{2})|(?:MT|SC)[0-9]{2}(?: ?[A-Z0-9]{4}){6}(?: ?[A-Z0-9]{3})|(?:LC)[0-9]{2}(?: ?[A-Z0-9]{4}){7})(?![0-9_]|[A-Za-z](?![A-Za-z])|[A-Za-z]{2,24}[0-9_])`,
  },
  'discord-bot-token': { bit: SHAPE_DISCORD, source: String.raw`[MNO](?<![A-Za-z0-9_-][MNO])[A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,40}(?![A-Za-z0-9_-])` },
};

/** The gate bit of a detector's regex, 0 when it has none (unknown detector or edited pattern). */
export function shapeBitOf(id: string, re: RegExp): number {
  const g = GATED_SOURCES[id];
  return g !== undefined && g.source === re.source && !re.flags.includes('i') && !re.flags.includes('x') ? g.bit : 0;
}

// Character classes, one table lookup per character: 1 digit, 2 upper A-Z, 4 other [a-z_-] (the
// Discord token alphabet), 8 '+', 16 '.', 32 ' ', 64 '-', 128 ')'.
const CLS = new Uint8Array(256);
for (let c = 48; c <= 57; c++) CLS[c] = 1;
for (let c = 65; c <= 90; c++) CLS[c] = 2;
for (let c = 97; c <= 122; c++) CLS[c] = 4;
CLS[0x5f] = 4;
CLS[0x2d] = 4 | 64;
CLS[0x2b] = 8;
CLS[0x2e] = 16;
CLS[0x20] = 32;
CLS[0x29] = 128;

/** Separator codes between two digit groups: one character → its code; ')' + one character → 0x2900 | that code; else NO_SEP. */
const NO_SEP = 0x7fff; // 15 bits: packed pairs stay small integers (no heap numbers)
const isSpDotDash = (s: number): boolean => s === 0x20 || s === 0x2e || s === 0x2d;
const isSpDash = (s: number): boolean => s === 0x20 || s === 0x2d;
const isSpDot = (s: number): boolean => s === 0x20 || s === 0x2e;

/**
 * The last four completed digit groups, packed so the scan loop keeps them in registers:
 * `lens` holds their lengths (capped at 127) one per byte, g1 (the newest) lowest; `sepsA` the
 * separators after g2 (high half) and after g1 (low half, i.e. before the current group);
 * `sepsB` those after g4 (high) and after g3 (low).
 */
interface History {
  readonly lens: number;
  readonly sepsA: number;
  readonly sepsB: number;
}

/** us-ssn: ddd S dd S dddd, S one of '-' ' '. */
function ssnShape(h: History, g0: number): boolean {
  const s1 = h.sepsA & 0xffff;
  return g0 >= 4 && (h.lens & 255) === 2 && ((h.lens >>> 8) & 255) >= 3 && s1 === h.sepsA >>> 16 && isSpDash(s1);
}

/** phone: (ddd) ddd-dddd (the separator after the area code may be ')' + one of ' .-'). */
function nanpShape(h: History, g0: number): boolean {
  const s2 = h.sepsA >>> 16;
  if (g0 < 4 || (h.lens & 255) < 3 || ((h.lens >>> 8) & 255) < 3 || !isSpDotDash(h.sepsA & 0xffff)) return false;
  return isSpDotDash(s2) || (s2 >> 8 === 0x29 && isSpDotDash(s2 & 255));
}

/** phone: 0d dd dd dd dd, separators ' ' or '.'. */
function pairsShape(h: History, g0: number): boolean {
  const l = h.lens;
  if (g0 < 2 || (l & 255) < 2 || ((l >>> 8) & 255) < 2 || ((l >>> 16) & 255) < 2 || ((l >>> 24) & 255) < 2) return false;
  return isSpDot(h.sepsA & 0xffff) && isSpDot(h.sepsA >>> 16) && isSpDot(h.sepsB & 0xffff) && isSpDot(h.sepsB >>> 16);
}

/** phone: 0dd[d…] ddd[ -]ddd or 0dd[d…] dddddd. */
function trunkShape(h: History, g0: number): boolean {
  if (!isSpDash(h.sepsA & 0xffff) || (h.lens & 255) < 3) return false;
  return g0 >= 6 || (g0 >= 3 && ((h.lens >>> 8) & 255) >= 3 && isSpDash(h.sepsA >>> 16));
}

/** Phone (three of its four alternatives; '+' is seen by the scan) and SSN, judged when a digit group of length g0 ends. */
function groupShapes(h: History, g0: number): number {
  const phone = nanpShape(h, g0) || pairsShape(h, g0) || trunkShape(h, g0);
  return (ssnShape(h, g0) ? SHAPE_SSN : 0) | (phone ? SHAPE_PHONE : 0);
}

// Per-class tables that turn the scan loop's branches into lookups.
/** 1 for A-Z. */
const IS_UPPER = new Uint8Array(256);
IS_UPPER[2] = 1;
/** 1 for the Discord token alphabet [A-Za-z0-9_-]. */
const IS_URL = new Uint8Array(256);
for (const k of [1, 2, 4, 4 | 64]) IS_URL[k] = 1;
/** SHAPE_PHONE after a '+'. */
const PLUS_MASK = new Uint8Array(256);
PLUS_MASK[8] = SHAPE_PHONE;
/** SHAPE_DISCORD on a '.' (after 24+ token characters). */
const DOT_MASK = new Uint8Array(256);
DOT_MASK[16] = SHAPE_DISCORD;
/** 0xff for the digits 1-9 (an E.164 number after '+' starts with one). */
const NONZERO_DIGIT = new Uint8Array(256);
for (let c = 49; c <= 57; c++) NONZERO_DIGIT[c] = 0xff;
/** Card-chain gap after a non-digit of class k, given the gap before (row): 1 only for one ' ' or '-' right after a digit. */
const GAP_AFTER = new Uint8Array(3 * 256).fill(2);
GAP_AFTER[32] = 1;
GAP_AFTER[4 | 64] = 1;

/** History of the last digit groups, plus what the current group needs when it ends. */
interface Hist extends History {
  lens: number;
  sepsA: number;
  sepsB: number;
  /** Consecutive A-Z right before the current group. */
  uppersBefore: number;
}

const hist: Hist = { lens: 0, sepsA: 0, sepsB: 0, uppersBefore: 0 };

/** A digit group starts: note the separator since the last group (between g1 and it) and the capitals before it. */
function groupStart(h: Hist, sepLen: number, sep: number, upperRun: number): void {
  h.sepsA = (h.sepsA & 0x7fff0000) | (sepLen === 1 || sepLen === 2 ? sep : NO_SEP);
  h.uppersBefore = upperRun;
}

/** A digit group of length g0 ends (chain = card digits chained up to here): the gates it proves; the history shifts. */
function groupEnd(h: Hist, g0: number, chain: number): number {
  const out = groupShapes(h, g0) | (chain >= 14 ? SHAPE_CARD : 0) | (g0 >= 2 && h.uppersBefore >= 2 ? SHAPE_IBAN : 0);
  // The separator after this group is filled in when the next one starts.
  h.lens = (h.lens << 8) | (g0 < 127 ? g0 : 127);
  h.sepsB = ((h.sepsB & 0x7fff) << 16) | (h.sepsA >>> 16);
  h.sepsA = ((h.sepsA & 0x7fff) << 16) | NO_SEP;
  return out;
}

/** The separator code after reading its sepLen-th character ch. */
function nextSep(sep: number, sepLen: number, ch: number): number {
  if (sepLen === 1) return ch;
  return sepLen === 2 && sep === 0x29 ? 0x2900 | ch : NO_SEP;
}

/**
 * Gates passed by bytes [start, end) (latin1, as the scanner reads them). Per-character state
 * lives in locals and branches are table lookups (this runs per DataRow cell); groups end rarely.
 */
export function shapesOfBytes(buf: Uint8Array, start = 0, end = buf.length): number {
  hist.lens = 0;
  hist.sepsA = NO_SEP | (NO_SEP << 16);
  hist.sepsB = NO_SEP | (NO_SEP << 16);
  let out = 0;
  let cur = 0; // digits in the current group (0 = not in a group)
  let upperRun = 0; // consecutive A-Z
  let urlRun = 0; // consecutive [A-Za-z0-9_-]
  let chain = 0; // digits chained with at most one ' ' or '-' between neighbours (card numbers)
  let gap = 2; // non-digits since the last digit: 0, 1 (one ' ' or '-'), 2 (chain broken)
  let sepLen = 0; // separator read since the last group: its length and code
  let sep = NO_SEP;
  let plus = 0; // SHAPE_PHONE right after a '+'
  for (let i = start; i < end; i++) {
    const ch = buf[i]!;
    const k = CLS[ch]!;
    if (k === 1) {
      if (cur === 0) {
        groupStart(hist, sepLen, sep, upperRun);
        out |= plus & NONZERO_DIGIT[ch]!; // '+' and [1-9]: an E.164 start
      }
      cur++;
      chain = gap <= 1 ? chain + 1 : 1;
      gap = 0;
      upperRun = 0;
      urlRun++;
      plus = 0;
      continue;
    }
    if (cur > 0) {
      out |= groupEnd(hist, cur, chain);
      cur = 0;
      sepLen = 0;
    }
    sep = nextSep(sep, ++sepLen, ch);
    gap = GAP_AFTER[gap * 256 + k]!;
    upperRun = (upperRun + 1) * IS_UPPER[k]!;
    if (urlRun >= 24) out |= DOT_MASK[k]!;
    urlRun = (urlRun + 1) * IS_URL[k]!;
    plus = PLUS_MASK[k]!;
  }
  return cur > 0 ? out | groupEnd(hist, cur, chain) : out;
}

let scratch = new Uint8Array(256);

/** Gates passed by a text; characters above U+00FF are none of the classes (read as NUL), as their UTF-8 bytes would not be. */
export function shapesOfText(text: string): number {
  const n = text.length;
  if (scratch.length < n) scratch = new Uint8Array(Math.max(n, scratch.length * 2));
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    scratch[i] = c < 256 ? c : 0;
  }
  const out = shapesOfBytes(scratch, 0, n);
  if (n > 65536) scratch = new Uint8Array(256); // do not pin a large text's worth of memory
  return out;
}
