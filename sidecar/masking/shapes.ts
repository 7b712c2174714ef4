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

/** The regex sources the gates were derived from, by detector id. */
export const GATED_SOURCES: Readonly<Record<string, { readonly source: string; readonly bit: number }>> = {
  'payment-card': { bit: SHAPE_CARD, source: String.raw`[2-6](?<![0-9A-Za-z_.-][2-6])[0-9]{3}(?:[ -]?[0-9]){10,15}(?![0-9A-Za-z_]|[-.][0-9A-Za-z])` },
  'phone-number': {
    bit: SHAPE_PHONE,
    source: String.raw`(?<![A-Za-z0-9+_.-])(?:\+[1-9](?:[ .-]?[0-9]|[ .-]?\([0-9]{1,4}\)){7,16}|\(?[2-9][0-9]{2}\)?[ .-][2-9][0-9]{2}[ .-][0-9]{4}|0[1-9](?:[ .][0-9]{2}){4}|0[1-9][0-9]{1,4}[ -][0-9]{3,4}[ -]?[0-9]{3,4})(?![0-9]|[.-][0-9])`,
  },
  'us-ssn': { bit: SHAPE_SSN, source: String.raw`(?<![0-9A-Za-z-])[0-8][0-9]{2}([- ])[0-9]{2}\1[0-9]{4}(?![0-9A-Za-z]|-[0-9])` },
  iban: { bit: SHAPE_IBAN, source: String.raw`(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])` },
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

/**
 * Separator codes between two digit groups: one character → its code; ')' + one character →
 * 0x2900 | that code; anything longer → -1.
 */
const isSpDotDash = (s: number): boolean => s === 0x20 || s === 0x2e || s === 0x2d;
const isSpDash = (s: number): boolean => s === 0x20 || s === 0x2d;
const isSpDot = (s: number): boolean => s === 0x20 || s === 0x2e;

/** Digit groups seen so far: g1..g4 the last completed groups (g1 newest), s1..s4 the separators after each. */
interface Groups {
  g1: number;
  g2: number;
  g3: number;
  g4: number;
  s1: number;
  s2: number;
  s3: number;
  s4: number;
}

/** us-ssn: ddd S dd S dddd, S one of '-' ' '. */
function ssnShape(h: Groups, g0: number): boolean {
  return g0 >= 4 && h.g1 === 2 && h.g2 >= 3 && h.s1 === h.s2 && isSpDash(h.s1);
}

/** phone: (ddd) ddd-dddd (the separator after the area code may be ')' + one of ' .-'). */
function nanpShape(h: Groups, g0: number): boolean {
  if (g0 < 4 || h.g1 < 3 || h.g2 < 3 || !isSpDotDash(h.s1)) return false;
  return isSpDotDash(h.s2) || (h.s2 >> 8 === 0x29 && isSpDotDash(h.s2 & 255));
}

/** phone: 0d dd dd dd dd, separators ' ' or '.'. */
function pairsShape(h: Groups, g0: number): boolean {
  if (g0 < 2 || h.g1 < 2 || h.g2 < 2 || h.g3 < 2 || h.g4 < 2) return false;
  return isSpDot(h.s1) && isSpDot(h.s2) && isSpDot(h.s3) && isSpDot(h.s4);
}

/** phone: 0dd[d…] ddd[ -]ddd or 0dd[d…] dddddd. */
function trunkShape(h: Groups, g0: number): boolean {
  if (!isSpDash(h.s1) || h.g1 < 3) return false;
  return g0 >= 6 || (g0 >= 3 && h.g2 >= 3 && isSpDash(h.s2));
}

/** Phone (three of its four alternatives; '+' is seen elsewhere) and SSN, judged when a digit group of length g0 ends. */
function groupShapes(h: Groups, g0: number): number {
  const phone = nanpShape(h, g0) || pairsShape(h, g0) || trunkShape(h, g0);
  return (ssnShape(h, g0) ? SHAPE_SSN : 0) | (phone ? SHAPE_PHONE : 0);
}

/** Scanner state across characters. */
interface State extends Groups {
  out: number;
  /** Digits in the current group (0 = not in a group). */
  cur: number;
  /** Consecutive A-Z right before the current group started. */
  uppersBefore: number;
  upperRun: number;
  /** Consecutive [A-Za-z0-9_-]. */
  urlRun: number;
  /** Digits chained with at most one ' ' or '-' between neighbours (card numbers). */
  chain: number;
  /** Non-digits since the last digit: 0, 1 (one ' ' or '-'), 2 (chain broken). */
  gap: number;
  /** Separator being read since the last group: its length and code. */
  sepLen: number;
  sep: number;
  prevPlus: boolean;
}

function fresh(): State {
  return { out: 0, cur: 0, uppersBefore: 0, upperRun: 0, urlRun: 0, chain: 0, gap: 2, sepLen: 0, sep: -1, prevPlus: false, g1: 0, g2: 0, g3: 0, g4: 0, s1: -1, s2: -1, s3: -1, s4: -1 };
}

function digit(st: State, ch: number): void {
  if (st.cur === 0) {
    st.uppersBefore = st.upperRun;
    // The separator just read sits between g1 and this group.
    st.s1 = st.sepLen === 1 || st.sepLen === 2 ? st.sep : -1;
    if (st.prevPlus && ch !== 48) st.out |= SHAPE_PHONE; // '+' and [1-9]: an E.164 start
  }
  st.cur++;
  if (st.cur === 2 && st.uppersBefore >= 2) st.out |= SHAPE_IBAN;
  st.chain = st.gap <= 1 ? st.chain + 1 : 1;
  if (st.chain >= 14) st.out |= SHAPE_CARD;
  st.gap = 0;
  st.upperRun = 0;
  st.urlRun++;
  st.prevPlus = false;
}

function other(st: State, ch: number, k: number): void {
  if (st.cur > 0) {
    st.out |= groupShapes(st, st.cur);
    // Shift the completed-group history; s1 is filled when the next group starts.
    st.g4 = st.g3;
    st.g3 = st.g2;
    st.g2 = st.g1;
    st.g1 = st.cur;
    st.s4 = st.s3;
    st.s3 = st.s2;
    st.s2 = st.s1;
    st.s1 = -1;
    st.cur = 0;
    st.sepLen = 0;
  }
  st.sepLen++;
  if (st.sepLen === 1) st.sep = ch;
  else if (st.sepLen === 2) st.sep = st.sep === 0x29 ? 0x2900 | ch : -1;
  st.gap = st.gap === 0 && (k & (32 | 64)) !== 0 ? 1 : 2;
  st.upperRun = k === 2 ? st.upperRun + 1 : 0;
  if ((k & (1 | 2 | 4)) !== 0) st.urlRun++;
  else {
    if (k === 16 && st.urlRun >= 24) st.out |= SHAPE_DISCORD;
    st.urlRun = 0;
  }
  st.prevPlus = k === 8;
}

function finish(st: State): number {
  if (st.cur > 0) st.out |= groupShapes(st, st.cur);
  return st.out;
}

/** Gates passed by bytes [start, end) (latin1, as the scanner reads them). */
export function shapesOfBytes(buf: Uint8Array, start = 0, end = buf.length): number {
  const st = fresh();
  for (let i = start; i < end; i++) {
    const ch = buf[i]!;
    const k = CLS[ch]!;
    if (k === 1) digit(st, ch);
    else other(st, ch, k);
    if (st.out === SHAPE_ALL) return SHAPE_ALL;
  }
  return finish(st);
}

/** Gates passed by a text; characters above U+00FF are none of the classes, like their latin1 bytes would not be. */
export function shapesOfText(text: string): number {
  const st = fresh();
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    const ch = c < 256 ? c : 0;
    const k = CLS[ch]!;
    if (k === 1) digit(st, ch);
    else other(st, ch, k);
    if (st.out === SHAPE_ALL) return SHAPE_ALL;
  }
  return finish(st);
}
